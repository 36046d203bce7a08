// 3x3 unit-stride convolutions by Winograd's minimal filtering F(2x2, 3x3) and F(4x4, 3x3).
//
// Note [Winograd convolution]
// Each 2x2 block of output pixels (a tile) of a 3x3 convolution needs 36 multiply-adds per
// input channel directly, and 16 in Winograd's transformed space: with the 4x4 input patch d
// under the tile, the 3x3 kernel g and the matrices B^T, G and A^T of WinogradF2 (winograd.h),
// the tile is Y = A^T [ sum_c (G g_kc G^T) (.) (B^T d_c B) ] A, (.) elementwise. Summed over
// the channels, each of the 16 positions xi of the transformed tile is a matrix product
//     M_xi (K, tiles) = U_xi (K, C) @ V_xi (C, tiles),
// so the convolution becomes 16 GEMMs with 2.25x fewer multiply-adds than the direct one, plus
// the transforms, which only add. On the layers of a CNN (3-512 channels on 4x4 to 56x56
// images) the GEMMs dominate and this beats the implicit GEMM, which already runs near the
// FMA peak, by 1.2-2.4x (Note [Choosing a convolution algorithm], bench/README.md). The
// transformed values mix up to 16 inputs with coefficients 1 and 1/2 only, so the rounding
// error stays near that of a direct sum of the same products (float32 weight gradients of
// 5-512 channels: 0.7-2.3x the channels-last error, relative to the output's scale); the C++
// and Python tests hold it to the other algorithms' tolerances. In bfloat16 the transformed
// operands would have to be rounded to bfloat16, which costs far more (bench/README.md), so
// 16-bit convolutions run it in float32.
//
// F(4x4, 3x3) (WinogradF4, ConvAlgo::Winograd4) takes 4x4 output tiles from 6x6 patches: 36
// GEMMs, 36 / 16 = 2.25 multiply-adds per output and channel against F(2x2, 3x3)'s 4, 1.78x
// fewer. Its matrices have entries up to 8 (A^T) and 5 (B^T), and G's 1/6, 1/12 and 1/24 are
// not binary fractions, so its float32 error grows: a numpy model of one 64-channel tile
// (random operands, weights scaled by 1/sqrt(9 C)) gave a mean / max error of 2.5e-6 / 9.6e-6
// of the output's largest value, against 1.9e-7 / 4.3e-7 for a direct float32 sum, about 14x
// (the C++ tests hold float32 to 2e-4 instead of 2e-5). A float32 convolution therefore keeps
// F(2x2, 3x3); a 16-bit one, whose result is rounded to 8 or 11 bits (half a step is 2e-3 or
// 2.4e-4 of the value), takes F(4x4, 3x3) where it pays (Note [16-bit convolution] in
// conv.cpp). U = G g G^T and the weight gradient's G^T dU G are computed in double for either
// type and rounded once.
//
// The GEMMs run on the GEMM's micro-kernel and blocking (gemm_blocks), as the implicit GEMM
// does (Note [Convolution as implicit GEMM]): U is computed straight into the micro-kernel's
// A panels once per call, one per position and (K block, C slice), and the tiles of the batch
// are cut into column blocks of at most kMaxBlockPanels micro-panels, taken by the threads from
// a dynamic schedule. Per block and C slice, the input transform writes V straight into B
// micro-panels (winograd.h, vectorised per ISA), the GEMMs fill M_xi (K, block) in a
// per-thread buffer, and after the last slice the output transform writes the block's tiles
// into y, so V and M are only ever one block's worth (about 2 MB at 256 channels for F(2x2,
// 3x3)), mostly in the L2 cache. The input gradient of a unit-stride 3x3 convolution is itself
// such a convolution (of gy with the flipped, transposed weights; conv_implicit.cpp), so it
// takes this path too, and the weight gradient is the adjoint in g (backward_weight_tiles): one
// GEMM per position summing over the tiles. Which shapes take which: Note [Choosing a
// convolution algorithm] in conv.cpp.
#include "kernels/cpu/conv_common.h"
#include "kernels/cpu/winograd.h"

namespace dc::cpu::conv_detail {
namespace {

// Column blocks of at most this many micro-panels: V and M of a block then take at most
// P (kc + K) 2 nr floats (P = 16 or 36 positions), 2 MB for 256 channels and F(2x2, 3x3).
constexpr int64_t kMaxBlockPanels = 2;
// The weight gradient's blocks of tiles: V and Z of a block take at most this many bytes.
constexpr int64_t kWeightBlockBytes = int64_t(2) << 20;

thread_local ScratchBuffer tl_wino_v("conv2d");
thread_local ScratchBuffer tl_wino_m("conv2d");

// The per-ISA tile transforms of Tile (winograd.h) for T.
#define DC_PICK(NAME)                                                                           \
  if constexpr (std::is_same_v<Tile, WinogradF2> && std::is_same_v<T, float>)                   \
    return for_active_isa(&generic::winograd_##NAME##_f32, &avx2::winograd_##NAME##_f32,        \
                          &avx512::winograd_##NAME##_f32);                                      \
  else if constexpr (std::is_same_v<Tile, WinogradF2>)                                          \
    return for_active_isa(&generic::winograd_##NAME##_f64, &avx2::winograd_##NAME##_f64,        \
                          &avx512::winograd_##NAME##_f64);                                      \
  else if constexpr (std::is_same_v<T, float>)                                                  \
    return for_active_isa(&generic::winograd4_##NAME##_f32, &avx2::winograd4_##NAME##_f32,      \
                          &avx512::winograd4_##NAME##_f32);                                     \
  else                                                                                          \
    return for_active_isa(&generic::winograd4_##NAME##_f64, &avx2::winograd4_##NAME##_f64,      \
                          &avx512::winograd4_##NAME##_f64);
template <typename Tile, typename T> auto input_transform() { DC_PICK(input) }
template <typename Tile, typename T> auto output_transform() { DC_PICK(output) }
template <typename Tile, typename T> auto output_adjoint() { DC_PICK(output_adjoint) }
#undef DC_PICK

// U = G g G^T of one 3x3 kernel g (row-major), u[alpha r + b]. In double for either type: it
// runs once per kernel, and F(4x4, 3x3)'s G has coefficients 1/6, 1/12 and 1/24.
template <typename Tile, typename T>
void transform_kernel(const T* g, T* u) {
  constexpr int a = Tile::alpha;
  double t[a][3];  // G g, column by column
  for (int c = 0; c < 3; ++c) {
    const double col[3] = {g[c], g[3 + c], g[6 + c]};
    double o[a];
    Tile::g(col, o);
    for (int r = 0; r < a; ++r) t[r][c] = o[r];
  }
  for (int r = 0; r < a; ++r) {  // (G g) G^T, row by row
    double o[a];
    Tile::g(t[r], o);
    for (int b = 0; b < a; ++b) u[a * r + b] = static_cast<T>(o[b]);
  }
}

// gw = G^T dU G of one alpha x alpha gradient dU (du[alpha r + b] at du[(alpha r + b) * stride]),
// in double as transform_kernel.
template <typename Tile, typename T>
void transform_kernel_adjoint(const T* du, int64_t stride, T* gw) {
  constexpr int a = Tile::alpha;
  double t[3][a];  // G^T dU, column by column
  for (int c = 0; c < a; ++c) {
    double col[a], o[3];
    for (int r = 0; r < a; ++r) col[r] = du[(a * r + c) * stride];
    Tile::gt(col, o);
    for (int r = 0; r < 3; ++r) t[r][c] = o[r];
  }
  for (int r = 0; r < 3; ++r) {  // (G^T dU) G, row by row
    double o[3];
    Tile::gt(t[r], o);
    for (int b = 0; b < 3; ++b) gw[3 * r + b] = static_cast<T>(o[b]);
  }
}

// Calls f(n, ti, tj, j, len) for the runs of tiles [t0, t0 + count) of the batch (tile t is
// image t / (TH TW), tile row ti, tile column tj), each run within one tile row and, with
// split > 0, within one `split`-aligned group of local indices j (a B micro-panel).
template <typename F>
void for_tile_runs(int64_t t0, int64_t count, int64_t TH, int64_t TW, int64_t split, F&& f) {
  for (int64_t j = 0; j < count;) {
    const int64_t t = t0 + j, tj = t % TW, ti = t / TW % TH, n = t / (TW * TH);
    int64_t len = std::min(TW - tj, count - j);
    if (split > 0) len = std::min(len, split - j % split);
    f(n, ti, tj, j, len);
    j += len;
  }
}

}  // namespace

bool winograd_applies(const ConvGeom& g) {
  return g.groups == 1 && g.KH == 3 && g.KW == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 &&
         g.dw == 1 && g.N * g.OH * g.OW > 0 && g.C > 0 && g.K > 0;
}

namespace {

template <typename Tile, typename T>
void forward_tiles(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  constexpr int64_t m = Tile::m, P = Tile::alpha * Tile::alpha;
  GemmBlocks<T> gb = gemm_blocks<T>();
  const int64_t mr = gb.mr, nr = gb.nr, C = g.C, K = g.K, hw = g.H * g.W, ohw = g.OH * g.OW;
  const int64_t TH = (g.OH + m - 1) / m, TW = (g.OW + m - 1) / m, tiles = g.N * TH * TW;
  // C slices of equal depth, as in the implicit GEMM.
  const int64_t kslices = (C + gb.kc - 1) / gb.kc;
  gb.kc = (C + kslices - 1) / kslices;
  const int64_t kpad = round_up(K, mr);

  // U_xi in A micro-panels: block (ic, pc) of position xi starts at a_block(xi, ic, pc);
  // within it, row k - ic and column c - pc sit at ((k - ic) / mr * kcb + c - pc) mr +
  // (k - ic) % mr (gemm.h's pack_a layout), rows past K zero.
  ScratchBuffer apack_buf("conv2d");
  const int64_t axi = kpad * C + 16;  // a cache line past the block: see vxi below
  T* apack = apack_buf.get<T>(P * axi);
  auto a_block = [&](int64_t xi, int64_t ic, int64_t pc) {
    return apack + xi * axi + ic * C + pc * round_up(std::min(gb.mc, K - ic), mr);
  };
  // One micro-panel of mr rows at a time: for each channel c its mr kernels are transformed
  // and each position's mr values are stored together, P sequential streams.
  const int64_t panels = kpad / mr;
  const int64_t grain = std::max<int64_t>(1, kGrainSize / (P * mr * C));
  parallel_for(0, panels, grain, [&](int64_t p0, int64_t p1) {
    T u[P];
    for (int64_t panel = p0; panel < p1; ++panel) {
      const int64_t k0 = panel * mr, ic = k0 / gb.mc * gb.mc;
      for (int64_t c = 0; c < C; ++c) {
        const int64_t pc = c / gb.kc * gb.kc, kcb = std::min(gb.kc, C - pc);
        const int64_t off = ((k0 - ic) / mr * kcb + c - pc) * mr;
        for (int64_t i = 0; i < mr; ++i) {
          const int64_t k = k0 + i;
          if (k < K) transform_kernel<Tile>(w + (k * C + c) * 9, u);
          else std::fill(u, u + P, T(0));
          for (int64_t xi = 0; xi < P; ++xi) a_block(xi, ic, pc)[off + i] = u[xi];
        }
      }
    }
  });

  const int64_t nt = get_num_threads();
  const int64_t tb = std::min(std::clamp(round_up((tiles + 4 * nt - 1) / (4 * nt), nr), nr,
                                         kMaxBlockPanels * nr),
                              round_up(tiles, nr));
  const int64_t nblk = (tiles + tb - 1) / tb;
  const auto input = input_transform<Tile, T>();
  const auto output = output_transform<Tile, T>();
  auto run_block = [&](int64_t it) {
    const int64_t t0 = it * tb, nb = std::min(tb, tiles - t0), ld = round_up(nb, nr);
    // Strides between positions xi, one micro-panel row past a multiple of the block: the
    // transforms touch all P positions at once, and P streams 4 KiB apart would share
    // one L1 set.
    const int64_t vxi = ld * gb.kc + nr, mxi = K * ld + nr;
    T* v = tl_wino_v.get<T>(P * vxi);
    T* mm = tl_wino_m.get<T>(P * mxi);
    for (int64_t pc = 0; pc < C; pc += gb.kc) {
      const int64_t kcb = std::min(gb.kc, C - pc);
      if (nb < ld)  // the last micro-panel's columns past the block
        for (int64_t xi = 0; xi < P; ++xi)
          for (int64_t p = 0; p < kcb; ++p) {
            T* row = v + xi * vxi + (ld - nr) * kcb + p * nr;
            std::fill(row + nb % nr, row + nr, T(0));
          }
      for_tile_runs(t0, nb, TH, TW, nr, [&](int64_t n, int64_t ti, int64_t tj, int64_t j,
                                            int64_t len) {
        input(kcb, x + (n * C + pc) * hw, hw, g.H, g.W, m * ti - g.ph, m * tj - g.pw, len,
              v + j / nr * nr * kcb + j % nr, vxi, nr);
      });
      const T beta = pc == 0 ? T(0) : T(1);
      for (int64_t xi = 0; xi < P; ++xi)
        for (int64_t jr = 0; jr < nb; jr += nr) {
          const T* bp = v + xi * vxi + jr * kcb;
          const int64_t n = std::min(nr, nb - jr);
          for (int64_t ic = 0; ic < K; ic += gb.mc) {
            const int64_t mc = std::min(gb.mc, K - ic);
            const T* ab = a_block(xi, ic, pc);
            for (int64_t ir = 0; ir < mc; ir += mr)
              gb.ukernel(kcb, ab + ir * kcb, bp, mm + xi * mxi + (ic + ir) * ld + jr, ld, 1,
                         std::min(mr, mc - ir), n, T(1), beta);
          }
        }
    }
    for_tile_runs(t0, nb, TH, TW, kWinogradMaxRun, [&](int64_t n, int64_t ti, int64_t tj,
                                                       int64_t j, int64_t len) {
      output(K, mm + j, mxi, ld, len, bias, y + n * K * ohw + m * ti * g.OW + m * tj, ohw, g.OW,
             std::min(m, g.OH - m * ti), std::min(m * len, g.OW - m * tj));
    });
  };
  if (P * K * C * tiles < 4 * kMinFlopsPerTask) {
    for (int64_t it = 0; it < nblk; ++it) run_block(it);
  } else {
    parallel_items(0, nblk, run_block);
  }
}

// The weight gradient: the adjoint of the forward in g. With Z = A gy_tile A^T per tile,
//     dU_xi (K, C) = sum over tiles Z_xi (K, tiles) @ V_xi (C, tiles)^T,   gw = G^T dU G,
// one GEMM per position whose inner dimension is the tiles. The tiles are cut into kWeightParts
// parts at most (fixed by the shape, not the threads), each summing its blocks of tiles into
// its own dU, and the parts are added in order (add_parts_in_order): the result does not
// depend on the thread count.
template <typename Tile, typename T>
void backward_weight_tiles(const ConvGeom& g, const T* gy, const T* x, T* gw) {
  constexpr int64_t m = Tile::m, P = Tile::alpha * Tile::alpha;
  const int64_t C = g.C, K = g.K, hw = g.H * g.W, ohw = g.OH * g.OW;
  const int64_t TH = (g.OH + m - 1) / m, TW = (g.OW + m - 1) / m, tiles = g.N * TH * TW;
  const int64_t usize = P * K * C;
  const int64_t tb = std::clamp<int64_t>(
      kWeightBlockBytes / (P * (C + K) * static_cast<int64_t>(sizeof(T))), 64, 2048);
  const int64_t cap =
      std::max<int64_t>(1, kWeightPartsBytes / (usize * static_cast<int64_t>(sizeof(T))));
  const int64_t parts = std::max<int64_t>(1, std::min({kWeightParts, cap, (tiles + tb - 1) / tb}));
  ScratchBuffer du_buf("conv2d");
  T* du = du_buf.get<T>(parts * usize);
  const auto input = input_transform<Tile, T>();
  const auto adjoint = output_adjoint<Tile, T>();
  parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t part = p0; part < p1; ++part) {
      const int64_t t_begin = tiles * part / parts, t_end = tiles * (part + 1) / parts;
      T* dup = du + part * usize;
      for (int64_t t0 = t_begin; t0 < t_end; t0 += tb) {
        const int64_t nb = std::min(tb, t_end - t0), ld = nb;
        // Strides between positions a cache line past the blocks, as in the forward.
        const int64_t vxi = C * ld + 16, zxi = K * ld + 16;
        T* v = tl_wino_v.get<T>(P * vxi);
        T* z = tl_wino_m.get<T>(P * zxi);
        for_tile_runs(t0, nb, TH, TW, kWinogradMaxRun, [&](int64_t n, int64_t ti, int64_t tj,
                                                           int64_t j, int64_t len) {
          input(C, x + n * C * hw, hw, g.H, g.W, m * ti - g.ph, m * tj - g.pw, len, v + j, vxi,
                ld);
          adjoint(K, gy + n * K * ohw + m * ti * g.OW + m * tj, ohw, g.OW,
                  std::min(m, g.OH - m * ti), std::min(m * len, g.OW - m * tj), len,
                  z + j, zxi, ld);
        });
        const T beta = t0 == t_begin ? T(0) : T(1);
        for (int64_t xi = 0; xi < P; ++xi)
          gemm(K, C, nb, T(1), z + xi * zxi, ld, 1, v + xi * vxi, 1, ld, beta,
               dup + xi * K * C, C, 1);
      }
    }
  });
  add_parts_in_order<T>(parts, usize, [&](int64_t i) { return du + i * usize; });
  parallel_for(0, K * C, std::max<int64_t>(1, kGrainSize / 64), [&](int64_t b, int64_t e) {
    for (int64_t kc = b; kc < e; ++kc)
      transform_kernel_adjoint<Tile>(du + kc, K * C, gw + kc * 9);
  });
}

}  // namespace

template <typename T>
void forward_winograd(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  forward_tiles<WinogradF2>(g, x, w, bias, y);
}
template <typename T>
void forward_winograd4(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  forward_tiles<WinogradF4>(g, x, w, bias, y);
}
template <typename T>
void backward_weight_winograd(const ConvGeom& g, const T* gy, const T* x, T* gw) {
  backward_weight_tiles<WinogradF2>(g, gy, x, gw);
}
template <typename T>
void backward_weight_winograd4(const ConvGeom& g, const T* gy, const T* x, T* gw) {
  backward_weight_tiles<WinogradF4>(g, gy, x, gw);
}

// The input gradient's forward convolution (input_gradient_by_forward) is 3x3 with unit
// stride whenever g is.
template <typename T>
void backward_input_winograd(const ConvGeom& g, const T* gy, const T* w, T* gx) {
  input_gradient_by_forward(g, gy, w, gx, [](auto&&... a) { forward_winograd<T>(a...); });
}
template <typename T>
void backward_input_winograd4(const ConvGeom& g, const T* gy, const T* w, T* gx) {
  input_gradient_by_forward(g, gy, w, gx, [](auto&&... a) { forward_winograd4<T>(a...); });
}

#define DC_INSTANTIATE(T)                                                                      \
  template void forward_winograd<T>(const ConvGeom&, const T*, const T*, const T*, T*);       \
  template void backward_input_winograd<T>(const ConvGeom&, const T*, const T*, T*);          \
  template void backward_weight_winograd<T>(const ConvGeom&, const T*, const T*, T*);         \
  template void forward_winograd4<T>(const ConvGeom&, const T*, const T*, const T*, T*);      \
  template void backward_input_winograd4<T>(const ConvGeom&, const T*, const T*, T*);         \
  template void backward_weight_winograd4<T>(const ConvGeom&, const T*, const T*, T*);
DC_INSTANTIATE(float)
DC_INSTANTIATE(double)
#undef DC_INSTANTIATE

}  // namespace dc::cpu::conv_detail
