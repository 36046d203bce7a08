// Convolutions as one implicit GEMM over the whole batch: no im2col matrix ever exists.
//
// Note [Convolution as implicit GEMM]
// The forward pass of a group is, for the whole batch, one product
//     y[:, g] (Kg, N*OH*OW) = w[g] (Kg, ckk) @ col (ckk, N*OH*OW),
// run with the GEMM's own micro-kernel and blocking (gemm_blocks): the weights are packed into
// the micro-kernel's A panels once per call, and each KC x NR micro-panel of B is packed
// straight from x (pack_im2col), so the im2col matrix only ever exists one L1-sized panel at a
// time, and every pixel of the batch is one column whatever the image size (no per-image GEMMs
// that are too skinny for the small deep-layer images). Columns run over (n, oh, ow), so a
// micro-tile of C is contiguous in y unless it crosses into the next image; when some would,
// a column block accumulates in a staging buffer that is copied out once. Threads take whole
// column blocks (at most NC wide, about four per thread) from a dynamic schedule, each with
// its own B pack: on a shared machine one core can run much slower than the other for a
// while, and a static split would leave the fast one waiting.
// With unit stride, the input gradient is the same kind of convolution, of gy with the
// weights flipped and transposed (backward_input_implicit), so it takes this path too. Which
// shapes take it: Note [Choosing a convolution algorithm] in conv.cpp.
#include "kernels/cpu/conv_common.h"

namespace dc::cpu::conv_detail {

thread_local ScratchBuffer tl_conv_bpack("conv2d");

namespace {

// The staging buffer of a column block whose micro-tiles cross images (see the Note).
thread_local ScratchBuffer tl_conv_stage("conv2d");

// Packs rows [pc, pc + kc) and columns [q0, q0 + nc) of the batch's im2col matrix into
// NR-wide micro-panels (dst[panel][p][j], columns past nc zeroed). Column q is output pixel
// q % OHW of image q / OHW; xg points at the group's first channel of image 0.
template <typename T>
void pack_im2col(const ConvGeom& g, SegmentPacker<T>& pack, const T* xg, int64_t q0, int64_t nc,
                 int64_t pc, int64_t kc, int64_t nr, T* dst) {
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W;
  for (int64_t j0 = 0; j0 < nc; j0 += nr, dst += nr * kc) {
    const int64_t n = std::min(nr, nc - j0);
    if (n < nr)
      for (int64_t p = 0; p < kc; ++p) std::fill(dst + p * nr + n, dst + (p + 1) * nr, T(0));
    for (int64_t j = 0; j < n;) {
      const int64_t q = q0 + j0 + j, img = q / ohw, pix = q % ohw, ow = pix % g.OW;
      const int64_t len = std::min(n - j, g.OW - ow);
      pack({j, len, xg + img * g.C * hw, (pix / g.OW) * g.sh - g.ph, ow * g.sw - g.pw}, pc, kc,
           dst, nr);
      j += len;
    }
  }
}

}  // namespace

template <typename T>
void forward_implicit(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  GemmBlocks<T> gb = gemm_blocks<T>();
  const int64_t mr = gb.mr, nr = gb.nr, ohw = g.OH * g.OW, hw = g.H * g.W, Q = g.N * ohw;
  const int64_t ckk = g.ckk(), Kg = g.Kg(), G = g.groups, kg_pad = round_up(Kg, mr);
  // K slices of equal depth (576 = 3 x 192 rather than 256 + 256 + 64): each slice costs a
  // read-modify-write of the C tiles, so a thin last slice is as dear as a full one.
  const int64_t kslices = (ckk + gb.kc - 1) / gb.kc;
  gb.kc = (ckk + kslices - 1) / kslices;
  const int64_t kc_max = std::min(gb.kc, ckk);

  // The weights in A micro-panels: block (ic, pc) of group grp starts at a_block(grp, ic, pc).
  ScratchBuffer apack_buf("conv2d");
  T* apack = apack_buf.get<T>(G * kg_pad * ckk);
  auto a_block = [&](int64_t grp, int64_t ic, int64_t pc) {
    return apack + grp * kg_pad * ckk + ic * ckk + pc * round_up(std::min(gb.mc, Kg - ic), mr);
  };
  const int64_t mblocks = (Kg + gb.mc - 1) / gb.mc, kblocks = (ckk + gb.kc - 1) / gb.kc;
  parallel_for(0, G * mblocks * kblocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t it = begin; it < end; ++it) {
      const int64_t grp = it / (mblocks * kblocks), ic = it / kblocks % mblocks * gb.mc;
      const int64_t pc = it % kblocks * gb.kc;
      gb.pack_a(std::min(gb.mc, Kg - ic), std::min(gb.kc, ckk - pc),
                w + (grp * Kg + ic) * ckk + pc, ckk, 1, a_block(grp, ic, pc));
    }
  });

  // Column blocks: at most NC wide, at least 8 micro-panels, and about four per thread so
  // that the dynamic schedule can even out threads that run at different speeds.
  const int64_t nt = get_num_threads();
  const int64_t ncb = std::min(std::clamp(round_up((Q + 4 * nt - 1) / (4 * nt), nr), 8 * nr, gb.nc),
                               round_up(Q, nr));
  const int64_t nblk = (Q + ncb - 1) / ncb;
  // Whole micro-tiles are contiguous in y when no panel crosses an image (OHW a multiple of
  // NR; blocks start at multiples of NR). Otherwise each block accumulates in a staging
  // buffer (Kg, ncb) and is copied out once, image by image, after its last K slice.
  const bool staged = ohw % nr != 0;
  const int64_t work = Kg * ckk * Q;
  auto run_block = [&](int64_t it) {
    T* bpack = tl_conv_bpack.get<T>(kc_max * round_up(ncb, nr));
    T* stage = staged ? tl_conv_stage.get<T>(Kg * ncb) : nullptr;
    SegmentPacker<T> pack(g);
    const int64_t grp = it / nblk, q0 = it % nblk * ncb, nc = std::min(ncb, Q - q0);
    const T* bias_g = bias ? bias + grp * Kg : nullptr;
    for (int64_t pc = 0; pc < ckk; pc += gb.kc) {
      const int64_t kc = std::min(gb.kc, ckk - pc);
      const T beta = pc == 0 ? T(0) : T(1);
      const bool last = pc + kc == ckk;
      pack_im2col(g, pack, x + grp * g.Cg() * hw, q0, nc, pc, kc, nr, bpack);
      for (int64_t ic = 0; ic < Kg; ic += gb.mc) {
        const int64_t mc = std::min(gb.mc, Kg - ic);
        const T* ab = a_block(grp, ic, pc);
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t n = std::min(nr, nc - jr), q = q0 + jr;
          const T* bp = bpack + jr * kc;
          // Row r of the tile is output channel grp * Kg + ic + r.
          T* c = staged ? stage + ic * ncb + jr
                        : y + (q / ohw * g.K + grp * Kg + ic) * ohw + q % ohw;
          const int64_t rsc = staged ? ncb : ohw;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t m = std::min(mr, mc - ir);
            gb.ukernel(kc, ab + ir * kc, bp, c + ir * rsc, rsc, 1, m, n, T(1), beta);
            if (last && bias_g && !staged)
              for (int64_t i = 0; i < m; ++i) {
                T* ci = c + (ir + i) * rsc;
                const T b = bias_g[ic + ir + i];
                for (int64_t j = 0; j < n; ++j) ci[j] += b;
              }
          }
        }
      }
    }
    if (!staged) return;
    for (int64_t q = q0; q < q0 + nc;) {  // one image's run of columns at a time
      const int64_t img = q / ohw, pix = q % ohw, len = std::min(ohw - pix, q0 + nc - q);
      for (int64_t k = 0; k < Kg; ++k) {
        const T* src = stage + k * ncb + (q - q0);
        T* dst = y + (img * g.K + grp * Kg + k) * ohw + pix;
        const T b = bias_g ? bias_g[k] : T(0);
        for (int64_t j = 0; j < len; ++j) dst[j] = src[j] + b;
      }
      q += len;
    }
  };
  if (work < 4 * kMinFlopsPerTask) {
    for (int64_t it = 0; it < G * nblk; ++it) run_block(it);
  } else {
    parallel_items(0, G * nblk, run_block);
  }
}

// Blocks of kCBlock input channels at a time: each k reads one contiguous run of w and writes a
// run into each of the block's rows (2.4M elements for a 512-channel 3x3 layer: worth the
// threads).
template <typename T>
void flipped_transposed_taps(const ConvGeom& g, const T* w, int64_t th, int64_t h0, int64_t tw,
                             int64_t w0, T* wt) {
  constexpr int64_t kCBlock = 16;
  const int64_t Kg = g.Kg(), Cg = g.Cg(), kk = g.KH * g.KW, tt = th * tw;
  const int64_t cblocks = (Cg + kCBlock - 1) / kCBlock;
  parallel_for(0, g.groups * cblocks, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(1, Kg * kk * kCBlock)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t blk = begin; blk < end; ++blk) {
                   const int64_t grp = blk / cblocks, c0 = blk % cblocks * kCBlock;
                   const int64_t c1 = std::min(Cg, c0 + kCBlock);
                   for (int64_t k = 0; k < Kg; ++k) {
                     const T* src = w + ((grp * Kg + k) * Cg + c0) * kk;
                     for (int64_t c = c0; c < c1; ++c, src += kk) {
                       T* dst = wt + ((grp * Cg + c) * Kg + k) * tt;
                       for (int64_t i = 0; i < th; ++i)
                         for (int64_t j = 0; j < tw; ++j)
                           dst[i * tw + j] =
                               src[(h0 + g.sh * (th - 1 - i)) * g.KW + w0 + g.sw * (tw - 1 - j)];
                     }
                   }
                 }
               });
}

// The geometry of the input gradient as a forward convolution: gy (N, K, OH, OW) padded by
// dh (KH - 1) - ph (dw (KW - 1) - pw across), convolved with the flipped, transposed weights
// into gx (N, C, H, W). Unit stride only; the padding is negative when the forward padding
// exceeds the dilated kernel's reach (conv_algo_applies then refuses Implicit).
ConvGeom input_gradient_as_conv(const ConvGeom& g) {
  ConvGeom t = g;
  t.C = g.K;
  t.H = g.OH;
  t.W = g.OW;
  t.K = g.C;
  t.OH = g.H;
  t.OW = g.W;
  t.ph = g.dh * (g.KH - 1) - g.ph;
  t.pw = g.dw * (g.KW - 1) - g.pw;
  return t;
}

template <typename T>
void backward_input_implicit(const ConvGeom& g, const T* gy, const T* w, T* gx) {
  input_gradient_by_forward(g, gy, w, gx, [](auto&&... a) { forward_implicit<T>(a...); });
}

#define DC_INSTANTIATE(T)                                                                      \
  template void forward_implicit<T>(const ConvGeom&, const T*, const T*, const T*, T*);       \
  template void backward_input_implicit<T>(const ConvGeom&, const T*, const T*, T*);          \
  template void flipped_transposed_taps<T>(const ConvGeom&, const T*, int64_t, int64_t,       \
                                           int64_t, int64_t, T*);
DC_INSTANTIATE(float)
DC_INSTANTIATE(double)
#undef DC_INSTANTIATE

}  // namespace dc::cpu::conv_detail
