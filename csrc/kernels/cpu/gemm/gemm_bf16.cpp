// bf16 GEMM driver: argument checks, orientation, threading, cache blocking, packing (with the
// float32 -> bfloat16 rounding) and the bfloat16 store. The arithmetic is in the vdpbf16ps
// micro-kernel (gemm_bf16_avx512bf16.cpp) or, without AVX512_BF16, in the active ISA's float32
// micro-kernel (gemm_kernels.h). Compiled for baseline x86-64.
//
// Note [bf16 GEMM]
// The structure is Note [GEMM design] (gemm.cpp): NC-wide column blocks of C (jc), KC-deep
// slices of K (pc), MC-high row blocks (ic); B packed per (jc, pc), A per (jc, pc, ic); an
// MR x NR micro-kernel walks the packed panels; each thread runs this on its own block of a
// tm x tn grid over C, with thread-local buffers.
//
// Layout. vdpbf16ps multiplies pairs of bfloat16 along k and adds both products to one
// float32 lane, so a packed line (a row of an A panel, a column of a B panel) is a sequence
// of 32-bit words, word q = (x[2q], x[2q + 1]), k zero-padded to even. The A micro-panel is
// ceil(kc / 2) x MR words, the B micro-panel ceil(kc / 2) x NR words; the micro-kernel
// broadcasts one A word per row against the 2 zmm (32 columns) of the B row: a 12 x 32 tile,
// 24 accumulators, 24 vdpbf16ps per k pair. In L1 that k loop runs at 232 GFLOP/s on one
// Zen 4 core (64 flop/cycle, twice the FMA peak); 8 x 32, 14 x 32 and 15 x 32 tiles, and A
// broadcasts folded into the instruction ({1to16}), measured the same.
//
// Packing converts. A float32 operand is rounded to bfloat16 (nearest even) as it is packed,
// so mixed bf16/f32 inputs cost no extra pass. Lines contiguous along k (row-major A, a
// transposed weight as B) are a transpose of 32-bit words, 16 x 16 in registers; lines
// contiguous across the panel (row-major B) interleave two k-rows with vpermt2w; other strides
// go value by value.
//
// Blocking (Zen 4: 32 KB L1d, 1 MB L2 per core, 32 MB L3). KC = 2048, far past the float32
// GEMM's 256: with 64 flops per instruction and 2-byte elements, the 12 x 32 kernel needs
// only ~7 bytes per cycle of A and B, which L2 delivers, so the B micro-panel (KC x 32 x 2 B =
// 128 KB) may stream from L2 instead of sitting in L1. In exchange K up to 2048 is one slice:
// C is written once, from the registers, and a bfloat16 C needs no float32 sums. A replay of
// the macro-kernel (MC x KC block of A, KC x 1024 slice of B, C rows 4 KB apart) ran at
// 227-230 GFLOP/s for KC = 256-512 and 219-225 for KC = 2048, but whole 2048^3 products on
// one core went from 206-209 (KC = 512 or 1024: several slices) to 219-222 (KC = 2048).
// MC = 48, 96 or 144 measured the same (A block 192-576 KB in L2); NC = 1024 keeps the B slice
// (4 MB) in L3 and the A block packed ceil(N / 1024) times. K over KC runs in equal slices.
//
// C in bfloat16 is rounded once, so over several K slices the sums stay float32: in a
// thread-local buffer of R rows x NC (R whole MC blocks, at most 4 MB), to which each slice
// adds its tile and which the last slice rounds into C with beta, bias and activation applied
// in float32 (gemm_bf16_store). Rows are processed R at a time, so B is packed ceil(M / R)
// times per slice instead of once (about 2 % of a product per extra pack).
//
// Without AVX512_BF16 (or with the active ISA forced below avx512) the same driver packs
// bf16-rounded values as float32 panels for the active ISA's float32 micro-kernel and blocking
// (gemm_blocks<float>()). Products of two bfloat16 values are exact in float32, so both paths
// agree up to the order of the float32 sums, and subnormals: the native path treats them as
// zero (gemm_bf16_avx512bf16.cpp).
//
// Measured on a 2-core Zen 4 EPYC (GCC 12), GFLOP/s of n^3 products, row-major operands; medians
// of 7 runs, then over 3 rounds interleaved with torch 2.13 (torch.matmul of bf16 tensors):
//                                 n = 1024          n = 2048
//                              1 thread  2 thr.  1 thread  2 thr.
//   gemm_f32                      102     191       100     197
//   bf16 A, B, C (vdpbf16ps)      212     404       215     437
//   bf16 A, B, C (fallback)        96     193        91     188   (float32 kernels, avx512)
//   torch bf16                    212     411       208     405
// bf16 A and B with a float32 C, float32 A and B, and x @ W^T (B transposed) run within 5 % of
// the bf16 row. Against torch at n = 1024 the difference is within this machine's noise
// (six interleaved pairs: 202 vs 197 on one thread, 388 vs 383 on two).
#include "kernels/cpu/gemm/gemm_bf16.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "kernels/cpu/gemm/gemm_kernels.h"
#include "kernels/cpu/isa.h"

namespace dc::cpu {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Cap on the float32 buffer that carries a bfloat16 C's sums across K slices.
constexpr int64_t kMaxSumBytes = int64_t(4) << 20;

// Note [bf16 GEMM] blocking of the vdpbf16ps path.
constexpr int64_t kMcBf16 = 96, kKcBf16 = 2048, kNcBf16 = 1024;

bool cpu_has_avx512bf16() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") != 0;
  }();
  return has;
}

using EpilogueF32 = void (*)(float*, int64_t, int64_t, int64_t, int64_t, const float*, int64_t,
                             int64_t, int);

// The kernels of one call: vdpbf16ps, or the active ISA's float32 set on bf16-rounded panels.
struct Kernels {
  bool native = false;
  int mr = 0, nr = 0;
  int64_t mc = 0, kc = 0, nc = 0;
  GemmBlocks<float> f32{};  // the fallback's micro-kernel
  EpilogueF32 epilogue = nullptr;

  // Bytes of one packed line (a row of an A panel, a column of a B panel) of k values.
  int64_t line_bytes(int64_t k) const { return native ? (k + 1) / 2 * 4 : k * 4; }
};

Kernels select_kernels() {
  Kernels ks;
  ks.epilogue = for_active_isa<EpilogueF32>(&generic::gemm_epilogue_f32, &avx2::gemm_epilogue_f32,
                                            &avx512::gemm_epilogue_f32);
  if (gemm_bf16_native()) {
    ks.native = true;
    ks.mr = avx512bf16::kGemmMrBf16;
    ks.nr = avx512bf16::kGemmNrBf16;
    ks.mc = kMcBf16;
    ks.kc = kKcBf16;
    ks.nc = kNcBf16;
  } else {
    ks.f32 = gemm_blocks<float>();
    ks.mr = ks.f32.mr;
    ks.nr = ks.f32.nr;
    ks.mc = ks.f32.mc;
    ks.kc = ks.f32.kc;
    ks.nc = ks.f32.nc;
  }
  return ks;
}

const void* offset(const void* p, bool bf16, int64_t elements) {
  return static_cast<const char*>(p) + elements * (bf16 ? 2 : 4);
}

float load_value(const void* p, bool bf16, int64_t at) {
  return bf16 ? bf16_bits_to_float(static_cast<const uint16_t*>(p)[at])
              : static_cast<const float*>(p)[at];
}

// The fallback's pack, as avx512bf16::gemm_bf16_pack but into float32 panels of k x width:
// panel t holds dst[p * width + r] = bf16(x[t * width + r, p]) as float32, zero past the edge.
template <bool kBf16>
void pack_rounded(int64_t k, int64_t lines, const void* src, int64_t rs, int64_t ks, float* dst,
                  int64_t width) {
  auto value = [src](int64_t at) {
    return kBf16 ? bf16_bits_to_float(static_cast<const uint16_t*>(src)[at])
                 : bf16_bits_to_float(float_to_bf16_bits(static_cast<const float*>(src)[at]));
  };
  // Read the source in order: along each line when lines run along k, else k-line by k-line
  // across all panels. Panel t starts at dst + t * width * k.
  for (int64_t l0 = 0; l0 < lines; l0 += width) {
    float* panel = dst + l0 * k;
    const int64_t rows = std::min(width, lines - l0);
    for (int64_t r = rows; r < width; ++r)
      for (int64_t p = 0; p < k; ++p) panel[p * width + r] = 0.0f;
    if (ks == 1) {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t p = 0; p < k; ++p) panel[p * width + r] = value((l0 + r) * rs + p);
    }
  }
  if (ks != 1) {
    for (int64_t p = 0; p < k; ++p)
      for (int64_t l0 = 0; l0 < lines; l0 += width) {
        float* d = dst + l0 * k + p * width;
        const int64_t rows = std::min(width, lines - l0), at = l0 * rs + p * ks;
        for (int64_t r = 0; r < rows; ++r) d[r] = value(at + r * rs);
      }
  }
}

// Packs ceil(lines / width) micro-panels of k values per line (line l at src + l * rs, step
// kstride along k), one after another.
void pack_panels(const Kernels& ks, int64_t k, int64_t lines, const void* src, bool bf16,
                 int64_t rs, int64_t kstride, char* dst, int64_t width) {
  if (ks.native) {
    avx512bf16::gemm_bf16_pack(k, lines, src, bf16, rs, kstride, reinterpret_cast<uint32_t*>(dst),
                               width);
  } else if (bf16) {
    pack_rounded<true>(k, lines, src, rs, kstride, reinterpret_cast<float*>(dst), width);
  } else {
    pack_rounded<false>(k, lines, src, rs, kstride, reinterpret_cast<float*>(dst), width);
  }
}

// The fallback's bfloat16 store, as avx512bf16::gemm_bf16_store.
void store_bf16_portable(const Kernels& ks, float* w, int64_t ldw, uint16_t* c, int64_t rsc,
                         int64_t csc, int64_t m, int64_t n, float beta, const uint16_t* bias,
                         int64_t bias_rs, int64_t bias_cs, int act) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float x = w[i * ldw + j];
      if (beta != 0.0f) x += beta * bf16_bits_to_float(c[i * rsc + j * csc]);
      if (bias) x += bf16_bits_to_float(bias[i * bias_rs + j * bias_cs]);
      w[i * ldw + j] = x;
    }
  if (act != 0) ks.epilogue(w, ldw, 1, m, n, nullptr, 0, 0, act);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * rsc + j * csc] = float_to_bf16_bits(w[i * ldw + j]);
}

// One product after argument handling; bias[i * bias_rs + j * bias_cs] in C's dtype (or null).
struct Problem {
  int64_t M, N, K;
  float alpha, beta;
  const void* A;
  bool a_bf16;
  int64_t rsa, csa;
  const void* B;
  bool b_bf16;
  int64_t rsb, csb;
  void* C;
  bool c_bf16;
  int64_t rsc, csc;
  const void* bias;
  int64_t bias_rs, bias_cs;
  int act;

  // The sub-problem of rows [i0, i0 + m) and columns [j0, j0 + n) of C.
  Problem block(int64_t i0, int64_t m, int64_t j0, int64_t n) const {
    Problem s = *this;
    s.M = m;
    s.N = n;
    s.A = offset(A, a_bf16, i0 * rsa);
    s.B = offset(B, b_bf16, j0 * csb);
    s.C = const_cast<void*>(offset(C, c_bf16, i0 * rsc + j0 * csc));
    if (bias) s.bias = offset(bias, c_bf16, i0 * bias_rs + j0 * bias_cs);
    return s;
  }
  // C^T = B^T A^T: the roles of M and N swap.
  Problem transposed() const {
    return Problem{N,   M,   K, alpha,  beta, B,   b_bf16, csb,     rsb,     A,  a_bf16,
                   csa, rsa, C, c_bf16, csc,  rsc, bias,   bias_cs, bias_rs, act};
  }
};

thread_local ScratchBuffer tl_pack_a("gemm_bf16");
thread_local ScratchBuffer tl_pack_b("gemm_bf16");
thread_local ScratchBuffer tl_sums("gemm_bf16");

// Where a bfloat16 C's float32 sums live between K slices (Note [bf16 GEMM]): element (i, j)
// of C at sums[(i - i0) * ld + (j - jc)], or one tile (tile_only) when K is one slice.
struct Sums {
  float* p;
  int64_t ld, i0, jc;
  bool tile_only;
  float* at(int64_t i, int64_t j) const { return tile_only ? p : p + (i - i0) * ld + (j - jc); }
};

// The m x n tile of C at (i, j) from the packed panels of one K slice (first / last: whether
// the slice is the first / last of K).
void compute_tile(const Kernels& ks, const Problem& pr, const Sums& sums, int64_t kc,
                  const char* a_panel, const char* b_panel, int64_t i, int64_t j, int64_t m,
                  int64_t n, bool first, bool last) {
  const auto* a32 = reinterpret_cast<const uint32_t*>(a_panel);
  const auto* b32 = reinterpret_cast<const uint32_t*>(b_panel);
  const int64_t at_c = i * pr.rsc + j * pr.csc;
  const bool epilogue = pr.bias || pr.act != 0;
  // A bfloat16 C in one slice without beta or epilogue is rounded straight from the registers.
  if (pr.c_bf16 && ks.native && first && last && pr.beta == 0.0f && !epilogue) {
    avx512bf16::gemm_bf16_ukernel_c16(kc, a32, b32, static_cast<uint16_t*>(pr.C) + at_c, pr.rsc,
                                      pr.csc, m, n, pr.alpha);
    return;
  }
  // Otherwise the float32 result goes to C, or to the sums of a bfloat16 C.
  float* c = pr.c_bf16 ? sums.at(i, j) : static_cast<float*>(pr.C) + at_c;
  const int64_t rsc = pr.c_bf16 ? sums.ld : pr.rsc, csc = pr.c_bf16 ? 1 : pr.csc;
  const float beta = !first ? 1.0f : pr.c_bf16 ? 0.0f : pr.beta;
  if (ks.native) {
    avx512bf16::gemm_bf16_ukernel(kc, a32, b32, c, rsc, csc, m, n, pr.alpha, beta);
  } else {
    ks.f32.ukernel(kc, reinterpret_cast<const float*>(a_panel),
                   reinterpret_cast<const float*>(b_panel), c, rsc, csc, m, n, pr.alpha, beta);
  }
  if (!last) return;
  const int64_t at_bias = i * pr.bias_rs + j * pr.bias_cs;
  if (pr.c_bf16) {
    uint16_t* cb = static_cast<uint16_t*>(pr.C) + at_c;
    const uint16_t* bias = pr.bias ? static_cast<const uint16_t*>(pr.bias) + at_bias : nullptr;
    if (ks.native) {
      avx512bf16::gemm_bf16_store(c, rsc, cb, pr.rsc, pr.csc, m, n, pr.beta, bias, pr.bias_rs,
                                  pr.bias_cs, pr.act);
    } else {
      store_bf16_portable(ks, c, rsc, cb, pr.rsc, pr.csc, m, n, pr.beta, bias, pr.bias_rs,
                          pr.bias_cs, pr.act);
    }
  } else if (epilogue) {
    const float* bias = pr.bias ? static_cast<const float*>(pr.bias) + at_bias : nullptr;
    ks.epilogue(c, rsc, csc, m, n, bias, pr.bias_rs, pr.bias_cs, pr.act);
  }
}

// The blocked algorithm of Note [bf16 GEMM] on the calling thread.
void gemm_blocked(const Kernels& ks, const Problem& pr) {
  const int64_t mr = ks.mr, nr = ks.nr;
  // K in equal slices of at most KC, even so that no k pair straddles two slices.
  const int64_t kc_max = std::min(pr.K, ceil_div(ceil_div(pr.K, ceil_div(pr.K, ks.kc)), 2) * 2);
  const int64_t nc_max = std::min(ks.nc, ceil_div(pr.N, nr) * nr);
  const int64_t mc_max = std::min(ks.mc, ceil_div(pr.M, mr) * mr);
  char* pack_b = tl_pack_b.get<char>(ks.line_bytes(kc_max) * nc_max);
  char* pack_a = tl_pack_a.get<char>(ks.line_bytes(kc_max) * mc_max);
  // A bfloat16 C over several K slices keeps the sums of R rows of the column block, R the
  // fewest equal chunks of whole MC blocks under kMaxSumBytes; the row stride is padded off a
  // power of two so that the rows of a tile do not share L1 sets.
  Sums sums{nullptr, nr, 0, 0, kc_max == pr.K};
  int64_t R = pr.M;
  if (pr.c_bf16 && sums.tile_only) {
    sums.p = tl_sums.get<float>(mr * nr);
  } else if (pr.c_bf16) {
    sums.ld = nc_max + 16;
    const int64_t max_rows = std::max<int64_t>(1, kMaxSumBytes / (4 * sums.ld) / ks.mc) * ks.mc;
    R = std::min(pr.M, ceil_div(ceil_div(pr.M, ceil_div(pr.M, max_rows)), ks.mc) * ks.mc);
    sums.p = tl_sums.get<float>(R * sums.ld);
  }

  for (int64_t jc = 0; jc < pr.N; jc += ks.nc) {
    const int64_t nc = std::min(ks.nc, pr.N - jc);
    sums.jc = jc;
    for (int64_t i0 = 0; i0 < pr.M; i0 += R) {
      const int64_t i1 = std::min(pr.M, i0 + R);
      sums.i0 = i0;
      for (int64_t pc = 0; pc < pr.K; pc += kc_max) {
        const int64_t kc = std::min(kc_max, pr.K - pc);
        const int64_t line = ks.line_bytes(kc);
        pack_panels(ks, kc, nc, offset(pr.B, pr.b_bf16, pc * pr.rsb + jc * pr.csb), pr.b_bf16,
                    pr.csb, pr.rsb, pack_b, nr);
        for (int64_t ic = i0; ic < i1; ic += ks.mc) {
          const int64_t mc = std::min(ks.mc, i1 - ic);
          pack_panels(ks, kc, mc, offset(pr.A, pr.a_bf16, ic * pr.rsa + pc * pr.csa), pr.a_bf16,
                      pr.rsa, pr.csa, pack_a, mr);
          for (int64_t jr = 0; jr < nc; jr += nr)
            for (int64_t ir = 0; ir < mc; ir += mr)
              compute_tile(ks, pr, sums, kc, pack_a + ir * line, pack_b + jr * line, ic + ir,
                           jc + jr, std::min(mr, mc - ir), std::min(nr, nc - jr), pc == 0,
                           pc + kc == pr.K);
        }
      }
    }
  }
}

// Runs pr on nt threads, each on one block of a tm x tn grid over C, as gemm_parallel in
// gemm.cpp: the grid whose busiest thread does the least padded work plus packing.
void gemm_parallel(const Kernels& ks, const Problem& pr, int nt) {
  const int tm = gemm_thread_grid(pr.M, pr.N, pr.K, nt, ks.mr, ks.nr, ks.mc, ks.nc);
  if (tm == 0) {
    gemm_blocked(ks, pr);
    return;
  }
  const int tn = nt / tm;
  const int64_t m_chunk = ceil_div(ceil_div(pr.M, tm), ks.mr) * ks.mr;
  const int64_t n_chunk = ceil_div(ceil_div(pr.N, tn), ks.nr) * ks.nr;
  parallel_items(0, nt, [&](int64_t blk) {
    const int64_t i0 = (blk / tn) * m_chunk, j0 = (blk % tn) * n_chunk;
    const int64_t m = std::min(m_chunk, pr.M - i0), n = std::min(n_chunk, pr.N - j0);
    if (m > 0 && n > 0) gemm_blocked(ks, pr.block(i0, m, j0, n));
  });
}

// Whether to compute C^T = B^T A^T instead, as transpose_pays in gemm.cpp: the micro-kernel's
// vectors run along N, so a column-major C gets vector stores and a narrow N stops wasting
// most of the NR lanes.
bool transpose_pays(const Kernels& ks, int64_t M, int64_t N, int64_t K, int64_t rsc, int64_t csc) {
  auto cost = [&](int64_t m, int64_t n, int64_t cs) {
    const double padded = double(ceil_div(m, ks.mr) * ks.mr) * double(ceil_div(n, ks.nr) * ks.nr);
    return padded * double(K) + (cs != 1 ? 8.0 * double(m) * double(n) : 0.0);
  };
  return cost(N, M, rsc) < 0.8 * cost(M, N, csc);
}

// C = beta * C, then the epilogue: the whole answer when K == 0 or alpha == 0.
void scale_c(const Kernels& ks, const Problem& pr) {
  std::vector<float> row(static_cast<size_t>(pr.N));
  for (int64_t i = 0; i < pr.M; ++i) {
    for (int64_t j = 0; j < pr.N; ++j) {
      float x =
          pr.beta == 0.0f ? 0.0f : pr.beta * load_value(pr.C, pr.c_bf16, i * pr.rsc + j * pr.csc);
      if (pr.bias) x += load_value(pr.bias, pr.c_bf16, i * pr.bias_rs + j * pr.bias_cs);
      row[j] = x;
    }
    if (pr.act != 0) ks.epilogue(row.data(), 0, 1, 1, pr.N, nullptr, 0, 0, pr.act);
    for (int64_t j = 0; j < pr.N; ++j) {
      const int64_t at = i * pr.rsc + j * pr.csc;
      if (pr.c_bf16) {
        static_cast<uint16_t*>(pr.C)[at] = float_to_bf16_bits(row[j]);
      } else {
        static_cast<float*>(pr.C)[at] = row[j];
      }
    }
  }
}

void gemm_impl(int64_t M, int64_t N, int64_t K, float alpha, const void* A, bool a_bf16,
               int64_t rsa, int64_t csa, const void* B, bool b_bf16, int64_t rsb, int64_t csb,
               float beta, void* C, bool c_bf16, int64_t rsc, int64_t csc, const GemmEpilogue& ep,
               bool threaded) {
  DC_CHECK(M >= 0 && N >= 0 && K >= 0, ValueError, "[gemm_bf16] sizes must be >= 0, got M=", M,
           ", N=", N, ", K=", K);
  if (M == 0 || N == 0) return;
  DC_CHECK(C != nullptr && (K == 0 || alpha == 0.0f || (A != nullptr && B != nullptr)), ValueError,
           "[gemm_bf16] null operand for a ", M, "x", N, "x", K, " product");
  const Kernels ks = select_kernels();
  Problem pr{M,      N,   K,   alpha,   beta, A,   a_bf16,
             rsa,    csa, B,   b_bf16,  rsb,  csb, C,
             c_bf16, rsc, csc, ep.bias, 0,    1,   static_cast<int>(ep.act)};
  if (transpose_pays(ks, M, N, K, rsc, csc)) pr = pr.transposed();
  if (K == 0 || alpha == 0.0f) {
    scale_c(ks, pr);
    return;
  }
  const int nt = threaded ? gemm_threads(M, N, K) : 1;
  if (nt > 1) {
    gemm_parallel(ks, pr, nt);
  } else {
    gemm_blocked(ks, pr);
  }
}

}  // namespace

bool gemm_bf16_native() { return cpu_has_avx512bf16() && active_isa() == Isa::avx512; }

void gemm_bf16(int64_t M, int64_t N, int64_t K, float alpha, const void* A, bool a_bf16,
               int64_t rsa, int64_t csa, const void* B, bool b_bf16, int64_t rsb, int64_t csb,
               float beta, void* C, bool c_bf16, int64_t rsc, int64_t csc, const GemmEpilogue& ep) {
  gemm_impl(M, N, K, alpha, A, a_bf16, rsa, csa, B, b_bf16, rsb, csb, beta, C, c_bf16, rsc, csc, ep,
            /*threaded=*/true);
}

void gemm_batched_bf16(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
                       bool a_bf16, int64_t sa, int64_t rsa, int64_t csa, const void* B,
                       bool b_bf16, int64_t sb, int64_t rsb, int64_t csb, float beta, void* C,
                       bool c_bf16, int64_t sc, int64_t rsc, int64_t csc) {
  DC_CHECK(batch >= 0, ValueError, "[gemm_batched_bf16] batch must be >= 0, got ", batch);
  if (batch == 0 || M == 0 || N == 0) return;
  auto one = [&](int64_t b, bool threaded) {
    gemm_impl(M, N, K, alpha, offset(A, a_bf16, b * sa), a_bf16, rsa, csa,
              offset(B, b_bf16, b * sb), b_bf16, rsb, csb, beta,
              const_cast<void*>(offset(C, c_bf16, b * sc)), c_bf16, rsc, csc, GemmEpilogue{},
              threaded);
  };
  // One whole product per thread beats splitting each one when there are enough of them, as
  // in gemm_batched_impl (gemm.cpp); a shared C (sc == 0) is updated in batch order.
  const int nt = gemm_threads(batch * M, N, K);
  const bool per_batch =
      nt > 1 && sc != 0 && batch >= nt && (gemm_threads(M, N, K) < nt || batch >= 4 * nt);
  if (per_batch) {
    parallel_for(0, batch, std::max<int64_t>(1, batch / nt), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) one(b, false);
    });
    return;
  }
  for (int64_t b = 0; b < batch; ++b) one(b, true);
}

}  // namespace dc::cpu
