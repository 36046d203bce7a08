// bf16 GEMM driver: argument checks, orientation, threading, cache blocking, packing (with the
// float32 -> bfloat16 rounding) and the bfloat16 store. The arithmetic is in the vdpbf16ps
// micro-kernel (gemm_bf16_avx512bf16.cpp) or, without AVX512_BF16, in the active ISA's float32
// micro-kernel (gemm_kernels.h). Compiled for baseline x86-64.
//
// Note [bf16 GEMM]
// The structure is Note [GEMM design] (gemm.cpp): NC-wide column blocks of C (jc), KC-deep
// slices of K (pc), MC-high row blocks (ic); B packed per (jc, pc), A per (jc, pc, ic); an
// MR x NR micro-kernel walks the packed panels; each thread runs this on its own block of a
// tm x tn grid over C with thread-local buffers.
//
// Layout. vdpbf16ps multiplies pairs of bfloat16 along k and adds both products to one
// float32 lane, so a packed line (a row of an A panel, a column of a B panel) is a sequence
// of 32-bit words, word q = (x[2q], x[2q + 1]), k zero-padded to even. The A micro-panel is
// ceil(kc/2) x MR words, the B micro-panel ceil(kc/2) x NR words; the micro-kernel broadcasts
// one A word per row and multiplies it with the 2 zmm (32 columns) of the B row: 12 x 32 tile,
// 24 accumulators, 24 vdpbf16ps per k pair. In L1 that k loop runs at 232 GFLOP/s on one
// Zen 4 core (64 flop/cycle, twice the FMA peak); 8 x 32 and 14 x 32 tiles, and broadcasts
// folded into the instruction ({1to16}), measured the same.
//
// Packing converts. A float32 operand is rounded to bfloat16 (nearest even) while it is
// packed, so mixed bf16/f32 inputs cost no extra pass. Lines contiguous along k (row-major A,
// a transposed weight as B) are a transpose of 32-bit words (16 x 16 in registers); lines
// contiguous across the panel (row-major B) interleave two k-rows with vpermt2w; other strides
// go value by value.
//
// Blocking (Zen 4: 32 KB L1d, 1 MB L2 per core). Elements are half the bytes of float32, so
// for the same cache footprint KC could double; it is set by the measurements below.
//   - B micro-panel KC x NR x 2 B reused by every ir step, in L1: KC = 256 gives 16 KB, plus
//     the 6 KB A micro-panel streaming past.
//   - A block MC x KC x 2 B in L2: MC = 144.
//   - B slice KC x NC x 2 B: NC = 1024.
//
// C in bfloat16 is rounded once, so sums must stay float32 across the K slices: they go to a
// thread-local float32 buffer of R rows x NC (R a multiple of MC, at most 4 MB), which the
// last slice adds to its tile and rounds into C with beta, bias and activation applied in
// float32 (gemm_bf16_store). The rows are processed R at a time, so B is packed
// ceil(M / R) times per slice instead of once. When K fits one slice, the buffer is one tile.
//
// Without AVX512_BF16 (or with the active ISA forced below avx512) the same driver packs
// bf16-rounded values as float32 panels for the active ISA's float32 micro-kernel
// (gemm_blocks<float>()). Products of two bfloat16 values are exact in float32, so both paths
// agree up to the order of the float32 sums.
//
// Measured (one and two Zen 4 cores, GFLOP/s, median of 7): see the table at the end of
// this Note's commit message; summary: TBD.
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

// Below this many multiply-adds per thread, waking another thread costs more than it saves
// (the float32 GEMM's figure, gemm.cpp).
constexpr int64_t kMinFlopsPerThread = int64_t(1) << 17;

// Cap on the float32 buffer that carries a bfloat16 C's sums across K slices.
constexpr int64_t kMaxSumBytes = int64_t(4) << 20;

// Note [bf16 GEMM] blocking of the vdpbf16ps path.
constexpr int64_t kMcBf16 = 144, kKcBf16 = 256, kNcBf16 = 1024;

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
  ks.epilogue = for_active_isa<EpilogueF32>(&generic::gemm_epilogue_f32,
                                            &avx2::gemm_epilogue_f32, &avx512::gemm_epilogue_f32);
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

// The fallback's pack: dst[p * width + r] = bf16(x[r, p]) as float32, x[r, p] =
// src[r * rs + p * ks], zero for r >= rows.
template <bool kBf16>
void pack_rounded(int64_t k, int64_t rows, const void* src, int64_t rs, int64_t ks, float* dst,
                  int64_t width) {
  auto value = [src](int64_t at) {
    return kBf16 ? bf16_bits_to_float(static_cast<const uint16_t*>(src)[at])
                 : bf16_bits_to_float(float_to_bf16_bits(static_cast<const float*>(src)[at]));
  };
  if (ks == 1) {  // lines contiguous along k: read each line in order
    for (int64_t r = 0; r < width; ++r)
      for (int64_t p = 0; p < k; ++p) dst[p * width + r] = r < rows ? value(r * rs + p) : 0.0f;
  } else {
    for (int64_t p = 0; p < k; ++p)
      for (int64_t r = 0; r < width; ++r)
        dst[p * width + r] = r < rows ? value(r * rs + p * ks) : 0.0f;
  }
}

// Packs one micro-panel of `width` lines of k values (line r at src + r * rs, step ks).
void pack_panel(const Kernels& ks, int64_t k, int64_t rows, const void* src, bool bf16,
                int64_t rs, int64_t kstride, char* dst, int64_t width) {
  if (ks.native) {
    avx512bf16::gemm_bf16_pack(k, rows, src, bf16, rs, kstride, reinterpret_cast<uint32_t*>(dst),
                               width);
  } else if (bf16) {
    pack_rounded<true>(k, rows, src, rs, kstride, reinterpret_cast<float*>(dst), width);
  } else {
    pack_rounded<false>(k, rows, src, rs, kstride, reinterpret_cast<float*>(dst), width);
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
    return Problem{N,      M,   K,   alpha, beta, B,       b_bf16,  csb, rsb, A,  a_bf16,
                   csa,    rsa, C,   c_bf16, csc, rsc,     bias,    bias_cs, bias_rs, act};
  }
};

thread_local ScratchBuffer tl_pack_a("gemm_bf16");
thread_local ScratchBuffer tl_pack_b("gemm_bf16");
thread_local ScratchBuffer tl_sums("gemm_bf16");

// The blocked algorithm of Note [bf16 GEMM] on the calling thread.
void gemm_blocked(const Kernels& ks, const Problem& pr) {
  const int64_t mr = ks.mr, nr = ks.nr;
  const int64_t kc_max = std::min(ks.kc, pr.K);
  const int64_t nc_max = std::min(ks.nc, ceil_div(pr.N, nr) * nr);
  const int64_t mc_max = std::min(ks.mc, ceil_div(pr.M, mr) * mr);
  char* pack_b = tl_pack_b.get<char>(ks.line_bytes(kc_max) * nc_max);
  char* pack_a = tl_pack_a.get<char>(ks.line_bytes(kc_max) * mc_max);
  // A bfloat16 C keeps its float32 sums in `sums` (Note [bf16 GEMM]): R rows of the column
  // block, row stride padded off a power of two so a tile's rows do not share L1 sets.
  const bool one_slice = pr.K <= ks.kc;
  int64_t R = pr.M, ld_sums = 0;
  float* sums = nullptr;
  if (pr.c_bf16) {
    if (one_slice) {
      ld_sums = nr;
      sums = tl_sums.get<float>(mr * nr);
    } else {
      ld_sums = nc_max + 16;
      R = std::min(pr.M, std::max<int64_t>(1, kMaxSumBytes / (4 * ld_sums) / ks.mc) * ks.mc);
      sums = tl_sums.get<float>(R * ld_sums);
    }
  }
  const int64_t bias_rs = pr.bias_rs, bias_cs = pr.bias_cs;

  for (int64_t jc = 0; jc < pr.N; jc += ks.nc) {
    const int64_t nc = std::min(ks.nc, pr.N - jc);
    for (int64_t i0 = 0; i0 < pr.M; i0 += R) {
      const int64_t i1 = std::min(pr.M, i0 + R);
      for (int64_t pc = 0; pc < pr.K; pc += ks.kc) {
        const int64_t kc = std::min(ks.kc, pr.K - pc);
        const int64_t line = ks.line_bytes(kc);
        const bool first = pc == 0, last = pc + kc == pr.K;
        for (int64_t j0 = 0; j0 < nc; j0 += nr)
          pack_panel(ks, kc, std::min(nr, nc - j0),
                     offset(pr.B, pr.b_bf16, pc * pr.rsb + (jc + j0) * pr.csb), pr.b_bf16, pr.csb,
                     pr.rsb, pack_b + j0 * line, nr);
        for (int64_t ic = i0; ic < i1; ic += ks.mc) {
          const int64_t mc = std::min(ks.mc, i1 - ic);
          for (int64_t r0 = 0; r0 < mc; r0 += mr)
            pack_panel(ks, kc, std::min(mr, mc - r0),
                       offset(pr.A, pr.a_bf16, (ic + r0) * pr.rsa + pc * pr.csa), pr.a_bf16,
                       pr.rsa, pr.csa, pack_a + r0 * line, mr);
          for (int64_t jr = 0; jr < nc; jr += nr) {
            const int64_t n = std::min(nr, nc - jr);
            const char* b_panel = pack_b + jr * line;
            for (int64_t ir = 0; ir < mc; ir += mr) {
              const int64_t m = std::min(mr, mc - ir);
              const char* a_panel = pack_a + ir * line;
              const int64_t i = ic + ir, j = jc + jr;
              // Where the tile's float32 result goes, with what alpha and beta.
              float* c;
              int64_t rsc, csc;
              float beta;
              if (pr.c_bf16) {
                c = one_slice ? sums : sums + (i - i0) * ld_sums + jr;
                rsc = ld_sums;
                csc = 1;
                beta = first ? 0.0f : 1.0f;
              } else {
                c = static_cast<float*>(pr.C) + i * pr.rsc + j * pr.csc;
                rsc = pr.rsc;
                csc = pr.csc;
                beta = first ? pr.beta : 1.0f;
              }
              if (ks.native) {
                avx512bf16::gemm_bf16_ukernel(kc, reinterpret_cast<const uint32_t*>(a_panel),
                                              reinterpret_cast<const uint32_t*>(b_panel), c, rsc,
                                              csc, m, n, pr.alpha, beta);
              } else {
                ks.f32.ukernel(kc, reinterpret_cast<const float*>(a_panel),
                               reinterpret_cast<const float*>(b_panel), c, rsc, csc, m, n,
                               pr.alpha, beta);
              }
              if (!last) continue;
              if (pr.c_bf16) {
                uint16_t* cb = static_cast<uint16_t*>(pr.C) + i * pr.rsc + j * pr.csc;
                const uint16_t* bias =
                    pr.bias ? static_cast<const uint16_t*>(pr.bias) + i * bias_rs + j * bias_cs
                            : nullptr;
                if (ks.native) {
                  avx512bf16::gemm_bf16_store(c, rsc, cb, pr.rsc, pr.csc, m, n, pr.beta, bias,
                                              bias_rs, bias_cs, pr.act);
                } else {
                  store_bf16_portable(ks, c, rsc, cb, pr.rsc, pr.csc, m, n, pr.beta, bias,
                                      bias_rs, bias_cs, pr.act);
                }
              } else if (pr.bias || pr.act != 0) {
                const float* bias =
                    pr.bias ? static_cast<const float*>(pr.bias) + i * bias_rs + j * bias_cs
                            : nullptr;
                ks.epilogue(c, rsc, csc, m, n, bias, bias_rs, bias_cs, pr.act);
              }
            }
          }
        }
      }
    }
  }
}

// Threads for a problem: all of them unless the problem is too small to feed them.
int gemm_threads(int64_t M, int64_t N, int64_t K) {
  if (in_parallel_region()) return 1;
  const int64_t flops = M * N * K;
  return static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(get_num_threads(), flops / kMinFlopsPerThread)));
}

// Runs pr on nt threads, each on one block of a tm x tn grid over C, as gemm_parallel in
// gemm.cpp: the grid whose busiest thread does the least padded work plus packing.
void gemm_parallel(const Kernels& ks, const Problem& pr, int nt) {
  int best_tm = 1;
  double best_cost = -1;
  for (int tm = 1; tm <= nt; ++tm) {
    if (nt % tm) continue;
    const int tn = nt / tm;
    const int64_t m = ceil_div(ceil_div(pr.M, tm), ks.mr) * ks.mr;
    const int64_t n = ceil_div(ceil_div(pr.N, tn), ks.nr) * ks.nr;
    if ((tm > 1 && m * (tm - 1) >= pr.M) || (tn > 1 && n * (tn - 1) >= pr.N)) continue;
    const double cost = double(m) * n * pr.K + 32.0 * pr.K * (double(m) * ceil_div(n, ks.nc) +
                                                             double(n) * ceil_div(m, ks.mc));
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best_tm = tm;
    }
  }
  if (best_cost < 0) {
    gemm_blocked(ks, pr);
    return;
  }
  const int tm = best_tm, tn = nt / best_tm;
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
bool transpose_pays(const Kernels& ks, int64_t M, int64_t N, int64_t K, int64_t rsc,
                    int64_t csc) {
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
      float x = pr.beta == 0.0f ? 0.0f : pr.beta * load_value(pr.C, pr.c_bf16, i * pr.rsc + j * pr.csc);
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
  DC_CHECK(C != nullptr && (K == 0 || alpha == 0.0f || (A != nullptr && B != nullptr)),
           ValueError, "[gemm_bf16] null operand for a ", M, "x", N, "x", K, " product");
  const Kernels ks = select_kernels();
  Problem pr{M,      N,   K,   alpha, beta, A,  a_bf16, rsa,     csa, B, b_bf16,
             rsb,    csb, C,   c_bf16, rsc, csc, ep.bias, 0,      1,   static_cast<int>(ep.act)};
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
               float beta, void* C, bool c_bf16, int64_t rsc, int64_t csc,
               const GemmEpilogue& ep) {
  gemm_impl(M, N, K, alpha, A, a_bf16, rsa, csa, B, b_bf16, rsb, csb, beta, C, c_bf16, rsc, csc,
            ep, /*threaded=*/true);
}

void gemm_batched_bf16(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                       const void* A, bool a_bf16, int64_t sa, int64_t rsa, int64_t csa,
                       const void* B, bool b_bf16, int64_t sb, int64_t rsb, int64_t csb,
                       float beta, void* C, bool c_bf16, int64_t sc, int64_t rsc, int64_t csc) {
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
