// GEMM driver: argument checks, orientation, threading, cache blocking and packing. The
// arithmetic is in the per-ISA micro-kernels (gemm_kernels.h).
//
// Note [GEMM design]
// BLIS-style: C is cut into NC-wide column blocks (jc), K into KC-deep slices (pc), rows into
// MC-high blocks (ic). For each (jc, pc) the KC x NC slice of B is packed into NR-wide
// micro-panels; for each ic the MC x KC block of A is packed into MR-high micro-panels; then
// the macro-kernel walks jr over the B micro-panels and, inside, ir over the A micro-panels,
// calling the MR x NR micro-kernel. The packs read A and B through any (row, column) strides,
// so transposed and sliced operands cost no copy beyond the pack itself, and they zero-pad to
// whole micro-panels, so the micro-kernel never sees a ragged k loop.
//
// Where each operand lives (this machine: Xeon, 48 KB L1d and 2 MB L2 per core):
//   - the B micro-panel (KC x NR) is reused by every ir step: it must stay in L1.
//     avx512 f32: 256 x 32 x 4 B = 32 KB, leaving room in the 48 KB L1 for the A micro-panel
//     streaming past (12 x 256 x 4 B = 12 KB). f64 takes KC = 192 (24 + 18 KB).
//   - the packed A block (MC x KC) is reused by every jr step: it stays in L2. MC = 144 is
//     small on purpose: each jr step also walks a 144-row column strip of C, and with a
//     power-of-two row stride (N = 1024, 2048, ...) those rows fall into a few L2 sets and
//     evict the A block. Measured with a macro-kernel replay (1024-wide C, KC = 256):
//     MC = 336: 87-104 GFLOP/s, MC = 144: 145-165, MC = 96: 154 (one core, peak ~155).
//   - the packed B slice (KC x NC) is reused by every ic step: NC = 1024 keeps it at 1 MB, in
//     L2 next to the A block; NC = 2048 measured 25 % slower in the same replay.
// The constants per ISA and dtype are in kernel_set() below.
//
// Small problems: with K <= KC, N <= NC and M <= MC there is one block and no loop overhead;
// when A has unit column stride and B is narrow (few NR panels share each A panel) packing A
// costs as much as the FMAs, so the micro-kernel reads the rows of A in place instead
// (the *_rows kernels), and for few rows of C in one K slice, the rows of B as well.
// Problems below kMinFlopsPerThread stay on the calling thread.
//
// Threading: the C matrix is cut into a tm x tn grid of MR/NR-aligned blocks, one per thread,
// and each thread runs the blocked algorithm above on its block with its own thread-local
// pack buffers: no synchronization inside, each core's L2 holds only its own panels, at the
// price of every thread packing its own copy of the shared operand (about 1-2 % of the time
// at 2048^3 on two threads). Inside an OpenMP parallel region the call runs single-threaded.
//
// Orientation: C = A B is computed as C^T = B^T A^T (swapping the roles of M and N) when C is
// column-major, so the micro-kernel's vector stores run along C's unit stride, or when N is
// much narrower than NR and M is not (see transpose_pays).
#include "kernels/cpu/gemm/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <exception>

#include "core/error.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "kernels/cpu/gemm/gemm_kernels.h"
#include "kernels/cpu/isa.h"

namespace dc::cpu {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// B is read in place (see gemm_blocked) only with rows at most this many bytes apart, and
// for at most this many rows of C.
constexpr int64_t kMaxInPlaceRowStride = 1024, kMaxInPlaceRows = 96;

// Below this many multiply-adds per thread, waking another thread costs more than it saves.
// 2^17 (about 1 us of one core's FMAs) puts 64x128x64 on two threads: 9.4-11.0 us against
// numpy's 12.7-17.7 us in three interleaved runs, where one thread took 11.4 us.
constexpr int64_t kMinFlopsPerThread = int64_t(1) << 17;

template <typename T>
using UKernel = void (*)(int64_t, const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, T,
                         T);
template <typename T>
using UKernelRows = void (*)(int64_t, const T*, int64_t, const T*, T*, int64_t, int64_t,
                             int64_t, int64_t, T, T);
template <typename T>
using UKernelRowsB = void (*)(int64_t, const T*, int64_t, const T*, int64_t, T*, int64_t, int64_t,
                              int64_t, int64_t, T, T);
template <typename T>
using Epilogue = void (*)(T*, int64_t, int64_t, int64_t, int64_t, const T*, int64_t, int64_t,
                          int);
template <typename T>
using PackFn = void (*)(int64_t, int64_t, const T*, int64_t, int64_t, T*);

// Packs the mc x kc block a[i * rsa + p * csa] into ceil(mc / MR) micro-panels of kc x MR
// (dst[panel][p][i]), rows past mc zero-filled.
template <typename T, int MR>
void pack_a(int64_t mc, int64_t kc, const T* a, int64_t rsa, int64_t csa, T* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kc) {
    const int64_t m = std::min<int64_t>(MR, mc - i0);
    const T* src = a + i0 * rsa;
    if (m == MR && csa == 1) {
      // Row-major A: each row is contiguous along p; write MR interleaved streams.
      for (int i = 0; i < MR; ++i) {
        const T* s = src + i * rsa;
        for (int64_t p = 0; p < kc; ++p) dst[p * MR + i] = s[p];
      }
    } else if (m == MR && rsa == 1) {
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = src[p * csa + i];
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = i < m ? src[i * rsa + p * csa] : T(0);
    }
  }
}

// Packs the kc x nc slice b[p * rsb + j * csb] into ceil(nc / NR) micro-panels of kc x NR
// (dst[panel][p][j]), columns past nc zero-filled.
template <typename T, int NR>
void pack_b(int64_t kc, int64_t nc, const T* b, int64_t rsb, int64_t csb, T* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += NR * kc) {
    const int64_t n = std::min<int64_t>(NR, nc - j0);
    const T* src = b + j0 * csb;
    if (n == NR && csb == 1) {
      for (int64_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) dst[p * NR + j] = src[p * rsb + j];
    } else if (n == NR && rsb == 1) {
      // Column-major B (a transposed weight): each column is contiguous along p.
      for (int j = 0; j < NR; ++j) {
        const T* s = src + j * csb;
        for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = s[p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) dst[p * NR + j] = j < n ? src[p * rsb + j * csb] : T(0);
    }
  }
}

template <typename T>
using PackTransposedFn = void (*)(int64_t, int64_t, const T*, int64_t, T*, int64_t);

template <typename T>
using DotFn = void (*)(int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*,
                       int64_t, int64_t);

template <typename T>
struct KernelSet {
  int mr, nr;
  int64_t mc, kc, nc;  // cache blocking, see Note [GEMM design]
  UKernel<T> ukernel;
  UKernelRows<T> ukernel_rows;
  Epilogue<T> epilogue;
  PackFn<T> pack_a, pack_b;
  // Faster pack for panels whose rows are contiguous along k, or nullptr.
  PackTransposedFn<T> pack_transposed;
  // Note [Dot-product GEMM] (gemm_avx512.cpp), or nullptr.
  DotFn<T> dot;
  // The *_rows kernel reading B in place too, or nullptr.
  UKernelRowsB<T> ukernel_rows_b;
};

#define DC_GEMM_KERNEL_SET(ISA, T, SUFFIX, MR, NR, MC, KC, NC, TRANSPOSED, DOT, ROWS_B)       \
  KernelSet<T> {                                                                              \
    ISA::MR, ISA::NR, MC, KC, NC, &ISA::gemm_ukernel_##SUFFIX, &ISA::gemm_ukernel_rows_##SUFFIX, \
        &ISA::gemm_epilogue_##SUFFIX, &pack_a<T, ISA::MR>, &pack_b<T, ISA::NR>, TRANSPOSED,   \
        DOT, ROWS_B                                                                           \
  }

template <typename T>
const KernelSet<T>& kernel_set();

template <>
const KernelSet<float>& kernel_set<float>() {
  static const KernelSet<float> sets[] = {
      DC_GEMM_KERNEL_SET(generic, float, f32, kGemmMrF32, kGemmNrF32, 128, 256, 2048, nullptr,
                         nullptr, nullptr),
      DC_GEMM_KERNEL_SET(avx2, float, f32, kGemmMrF32, kGemmNrF32, 144, 256, 1024,
                         &avx2::gemm_pack_transposed_f32, nullptr, nullptr),
      DC_GEMM_KERNEL_SET(avx512, float, f32, kGemmMrF32, kGemmNrF32, 144, 256, 1024,
                         &avx512::gemm_pack_transposed_f32, &avx512::gemm_dot_f32,
                         &avx512::gemm_ukernel_rows_b_f32),
  };
  return sets[static_cast<int>(active_isa())];
}

template <>
const KernelSet<double>& kernel_set<double>() {
  static const KernelSet<double> sets[] = {
      DC_GEMM_KERNEL_SET(generic, double, f64, kGemmMrF64, kGemmNrF64, 128, 256, 2048, nullptr,
                         nullptr, nullptr),
      DC_GEMM_KERNEL_SET(avx2, double, f64, kGemmMrF64, kGemmNrF64, 96, 256, 512, nullptr, nullptr,
                         nullptr),
      DC_GEMM_KERNEL_SET(avx512, double, f64, kGemmMrF64, kGemmNrF64, 144, 192, 512,
                         &avx512::gemm_pack_transposed_f64, nullptr, nullptr),
  };
  return sets[static_cast<int>(active_isa())];
}

#undef DC_GEMM_KERNEL_SET

// Pack buffers per thread (core/scratch.h).
thread_local ScratchBuffer tl_pack_a("gemm");
thread_local ScratchBuffer tl_pack_b("gemm");

// One GEMM problem after argument handling; bias[i * bias_rs + j * bias_cs] (or nullptr).
template <typename T>
struct Problem {
  int64_t M, N, K;
  T alpha;
  const T* A;
  int64_t rsa, csa;
  const T* B;
  int64_t rsb, csb;
  T beta;
  T* C;
  int64_t rsc, csc;
  const T* bias;
  int64_t bias_rs, bias_cs;
  int act;

  // The sub-problem of rows [i0, i0 + m) and columns [j0, j0 + n) of C.
  Problem block(int64_t i0, int64_t m, int64_t j0, int64_t n) const {
    Problem s = *this;
    s.M = m;
    s.N = n;
    s.A = A + i0 * rsa;
    s.B = B + j0 * csb;
    s.C = C + i0 * rsc + j0 * csc;
    if (bias) s.bias = bias + i0 * bias_rs + j0 * bias_cs;
    return s;
  }
};

// Packs the mc x kc block of A (see pack_a), through the transposing pack when its rows are
// contiguous along k.
template <typename T>
void pack_a_block(const KernelSet<T>& ks, int64_t mc, int64_t kc, const T* a, int64_t rsa,
                  int64_t csa, T* dst) {
  if (csa != 1 || !ks.pack_transposed) {
    ks.pack_a(mc, kc, a, rsa, csa, dst);
    return;
  }
  for (int64_t i0 = 0; i0 < mc; i0 += ks.mr, dst += ks.mr * kc)
    ks.pack_transposed(kc, std::min<int64_t>(ks.mr, mc - i0), a + i0 * rsa, rsa, dst, ks.mr);
}

// Packs the kc x nc slice of B (see pack_b), through the transposing pack when its columns are
// contiguous along k (a transposed weight).
template <typename T>
void pack_b_slice(const KernelSet<T>& ks, int64_t kc, int64_t nc, const T* b, int64_t rsb,
                  int64_t csb, T* dst) {
  if (rsb != 1 || csb == 1 || !ks.pack_transposed) {
    ks.pack_b(kc, nc, b, rsb, csb, dst);
    return;
  }
  for (int64_t j0 = 0; j0 < nc; j0 += ks.nr, dst += ks.nr * kc)
    ks.pack_transposed(kc, std::min<int64_t>(ks.nr, nc - j0), b + j0 * csb, csb, dst, ks.nr);
}

// The blocked algorithm of Note [GEMM design] on the calling thread.
template <typename T>
void gemm_blocked(const KernelSet<T>& ks, const Problem<T>& pr) {
  const int64_t mr = ks.mr, nr = ks.nr;
  const int64_t kc_max = std::min(ks.kc, pr.K);
  const int64_t nc_max = std::min(ks.nc, (pr.N + nr - 1) / nr * nr);
  const int64_t mc_max = std::min(ks.mc, (pr.M + mr - 1) / mr * mr);
  // Reading A in place pays when the rows of A are contiguous along k and either few B
  // micro-panels reuse each packed A panel (narrow N) or there are fewer rows than MR.
  const bool rows_a = pr.csa == 1 && (pr.N <= 4 * nr || pr.M < mr);
  // Then B too, for few rows of C (each B panel used by few A panels) in one K slice, with
  // B's rows contiguous and close together (few pages per panel): there the pack of B costs
  // about a fifth of the product. Medians (us, in place / packed): 36x64x128 4.3 / 5.2,
  // 64x64x128 on two threads 5.9-7.6 / 6.6-8.5, 8x64x200 2.1 / 3.5, 128x64x128 21.2 / 21.3,
  // 256x64x128 32.8 / 31.1.
  const bool rows_b = rows_a && ks.ukernel_rows_b && pr.csb == 1 && pr.rsb > 0 &&
                      pr.rsb * int64_t(sizeof(T)) <= kMaxInPlaceRowStride && pr.K <= ks.kc &&
                      pr.M <= kMaxInPlaceRows;
  T* pack_b = rows_b ? nullptr : tl_pack_b.get<T>(kc_max * nc_max);
  T* pack_a = rows_a ? nullptr : tl_pack_a.get<T>(kc_max * mc_max);

  for (int64_t jc = 0; jc < pr.N; jc += ks.nc) {
    const int64_t nc = std::min(ks.nc, pr.N - jc);
    for (int64_t pc = 0; pc < pr.K; pc += ks.kc) {
      const int64_t kc = std::min(ks.kc, pr.K - pc);
      const T beta = pc == 0 ? pr.beta : T(1);
      const bool last_k = pc + kc == pr.K;
      if (!rows_b) pack_b_slice(ks, kc, nc, pr.B + pc * pr.rsb + jc * pr.csb, pr.rsb, pr.csb, pack_b);
      for (int64_t ic = 0; ic < pr.M; ic += ks.mc) {
        const int64_t mc = std::min(ks.mc, pr.M - ic);
        const T* a_block = pr.A + ic * pr.rsa + pc * pr.csa;
        if (!rows_a) pack_a_block(ks, mc, kc, a_block, pr.rsa, pr.csa, pack_a);
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t n = std::min(nr, nc - jr);
          const T* b_panel = rows_b ? pr.B + pc * pr.rsb + jc + jr : pack_b + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t m = std::min(mr, mc - ir);
            T* c_tile = pr.C + (ic + ir) * pr.rsc + (jc + jr) * pr.csc;
            if (rows_b) {
              ks.ukernel_rows_b(kc, a_block + ir * pr.rsa, pr.rsa, b_panel, pr.rsb, c_tile, pr.rsc,
                                pr.csc, m, n, pr.alpha, beta);
            } else if (rows_a) {
              ks.ukernel_rows(kc, a_block + ir * pr.rsa, pr.rsa, b_panel, c_tile, pr.rsc, pr.csc,
                              m, n, pr.alpha, beta);
            } else {
              ks.ukernel(kc, pack_a + ir * kc, b_panel, c_tile, pr.rsc, pr.csc, m, n, pr.alpha,
                         beta);
            }
            if (last_k && (pr.bias || pr.act != 0)) {
              const T* bias = pr.bias ? pr.bias + (ic + ir) * pr.bias_rs + (jc + jr) * pr.bias_cs
                                      : nullptr;
              ks.epilogue(c_tile, pr.rsc, pr.csc, m, n, bias, pr.bias_rs, pr.bias_cs, pr.act);
            }
          }
        }
      }
    }
  }
}

}  // namespace

int gemm_threads(int64_t M, int64_t N, int64_t K) {
  if (in_parallel_region()) return 1;
  const int64_t flops = M * N * K;
  return static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(get_num_threads(), flops / kMinFlopsPerThread)));
}

int gemm_thread_grid(int64_t M, int64_t N, int64_t K, int nt, int64_t mr, int64_t nr,
                     int64_t mc, int64_t nc) {
  // The grid whose busiest thread does the least padded work plus packing (each thread packs
  // its own rows of A once per NC block and its own columns of B once per MC block; packing an
  // element costs about as much as a micro-kernel row of FMAs on it, ~32 flops).
  int best_tm = 0;
  double best_cost = -1;
  for (int tm = 1; tm <= nt; ++tm) {
    if (nt % tm) continue;
    const int tn = nt / tm;
    const int64_t m = ceil_div(ceil_div(M, tm), mr) * mr;
    const int64_t n = ceil_div(ceil_div(N, tn), nr) * nr;
    if ((tm > 1 && m * (tm - 1) >= M) || (tn > 1 && n * (tn - 1) >= N)) continue;
    const double cost =
        double(m) * n * K + 32.0 * K * (double(m) * ceil_div(n, nc) + double(n) * ceil_div(m, mc));
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best_tm = tm;
    }
  }
  return best_tm;
}

namespace {

// Runs pr on nt threads, each on one block of a tm x tn grid over C (Note [GEMM design]).
template <typename T>
void gemm_parallel(const KernelSet<T>& ks, const Problem<T>& pr, int nt) {
  const int tm = gemm_thread_grid(pr.M, pr.N, pr.K, nt, ks.mr, ks.nr, ks.mc, ks.nc);
  if (tm == 0) {
    gemm_blocked(ks, pr);
    return;
  }
  const int tn = nt / tm;
  const int64_t m_chunk = ceil_div(ceil_div(pr.M, tm), ks.mr) * ks.mr;
  const int64_t n_chunk = ceil_div(ceil_div(pr.N, tn), ks.nr) * ks.nr;
  // Exceptions cannot cross an OpenMP region: keep the first one and rethrow after.
  std::exception_ptr error;
#pragma omp parallel num_threads(nt)
  {
    // OpenMP may grant fewer threads than asked (nested regions, thread limits): each thread
    // then takes every omp_get_num_threads()-th block.
    for (int blk = omp_get_thread_num(); blk < nt; blk += omp_get_num_threads()) {
      const int64_t i0 = (blk / tn) * m_chunk, j0 = (blk % tn) * n_chunk;
      const int64_t m = std::min(m_chunk, pr.M - i0), n = std::min(n_chunk, pr.N - j0);
      if (m <= 0 || n <= 0) continue;
      try {
        gemm_blocked(ks, pr.block(i0, m, j0, n));
      } catch (...) {
#pragma omp critical(dc_gemm_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

// Whether to compute C^T = B^T A^T instead (M and N swap roles). The micro-kernel's vectors
// run along N, so: a column-major C gets vector stores instead of scalar ones, and a narrow
// N (the 10 classes of a classifier layer) stops wasting most of the NR lanes. Cost in
// lane-multiply-adds: the padded tile work, plus ~8 per element stored through the scalar
// path when C's column stride is not 1.
template <typename T>
bool transpose_pays(const KernelSet<T>& ks, int64_t M, int64_t N, int64_t K, int64_t rsc,
                    int64_t csc) {
  auto cost = [&](int64_t m, int64_t n, int64_t cs) {
    const double padded = double(ceil_div(m, ks.mr) * ks.mr) * double(ceil_div(n, ks.nr) * ks.nr);
    return padded * double(K) + (cs != 1 ? 8.0 * double(m) * double(n) : 0.0);
  };
  return cost(N, M, rsc) < 0.8 * cost(M, N, csc);
}

// Note [Dot-product GEMM] (gemm_avx512.cpp) takes products with A rows and B columns
// contiguous along k and one narrow side: at most kDotNarrow wide with k >= kDotLongK, or at
// most kDotVeryNarrow wide with k >= kDotMinK. Below that the lane reductions cost more than
// the packed path's padding and transposing pack. Single-threaded medians (us, dot / packed):
// 64x10x128 5.5 / 5.1, 64x10x256 7.1 / 8.2, 128x10x512 20.5 / 28.3, 32x10x512 5.3 / 6.0,
// 4x100x256 3.8 / 7.5, 256x2x64 5.8 / 6.7, 8x1000x512 135 / 260. On nt > 1 threads the wide
// side is cut into nt chunks of whole 4-blocks.
constexpr int64_t kDotNarrow = 16, kDotLongK = 256, kDotVeryNarrow = 4, kDotMinK = 32;

template <typename T>
bool dot_applies(const KernelSet<T>& ks, const Problem<T>& pr) {
  const int64_t narrow = std::min(pr.M, pr.N);
  return ks.dot && pr.csa == 1 && pr.rsb == 1 &&
         ((narrow <= kDotNarrow && pr.K >= kDotLongK) ||
          (narrow <= kDotVeryNarrow && pr.K >= kDotMinK));
}

template <typename T>
void gemm_dot(const KernelSet<T>& ks, const Problem<T>& pr, int nt) {
  auto run = [&](const Problem<T>& p) {
    ks.dot(p.M, p.N, p.K, p.alpha, p.A, p.rsa, p.B, p.csb, p.beta, p.C, p.rsc, p.csc);
    if (p.bias || p.act != 0)
      ks.epilogue(p.C, p.rsc, p.csc, p.M, p.N, p.bias, p.bias_rs, p.bias_cs, p.act);
  };
  const bool by_rows = pr.M >= pr.N;
  const int64_t wide = by_rows ? pr.M : pr.N;
  const int64_t chunk = ceil_div(ceil_div(wide, nt), 4) * 4;
  if (nt == 1 || chunk >= wide) {
    run(pr);
    return;
  }
  const int64_t chunks = ceil_div(wide, chunk);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = c * chunk, len = std::min(chunk, wide - lo);
    run(by_rows ? pr.block(lo, len, 0, pr.N) : pr.block(0, pr.M, lo, len));
  }
}

// C = beta * C, then the epilogue: the whole answer when K == 0 or alpha == 0.
template <typename T>
void scale_c(const KernelSet<T>& ks, const Problem<T>& pr) {
  for (int64_t i = 0; i < pr.M; ++i) {
    T* ci = pr.C + i * pr.rsc;
    for (int64_t j = 0; j < pr.N; ++j) ci[j * pr.csc] = pr.beta == T(0) ? T(0) : pr.beta * ci[j * pr.csc];
  }
  if (pr.bias || pr.act != 0)
    ks.epilogue(pr.C, pr.rsc, pr.csc, pr.M, pr.N, pr.bias, pr.bias_rs, pr.bias_cs, pr.act);
}

template <typename T>
void gemm_impl(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa, int64_t csa,
               const T* B, int64_t rsb, int64_t csb, T beta, T* C, int64_t rsc, int64_t csc,
               const GemmEpilogue& ep, bool threaded) {
  DC_CHECK(M >= 0 && N >= 0 && K >= 0, ValueError, "[gemm] sizes must be >= 0, got M=", M,
           ", N=", N, ", K=", K);
  if (M == 0 || N == 0) return;
  DC_CHECK(C != nullptr && (K == 0 || alpha == T(0) || (A != nullptr && B != nullptr)), ValueError,
           "[gemm] null operand for a ", M, "x", N, "x", K, " product");
  const int act = static_cast<int>(ep.act);
  const KernelSet<T>& ks = kernel_set<T>();
  Problem<T> pr{M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc,
                static_cast<const T*>(ep.bias), 0, 1, act};
  if (K > 0 && alpha != T(0) && dot_applies(ks, pr)) {
    gemm_dot(ks, pr, threaded ? gemm_threads(M, N, K) : 1);
    return;
  }
  if (transpose_pays(ks, M, N, K, rsc, csc)) {
    pr = Problem<T>{N, M, K, alpha, B, csb, rsb, A, csa, rsa, beta, C, csc, rsc,
                    static_cast<const T*>(ep.bias), 1, 0, act};
  }
  if (K == 0 || alpha == T(0)) {
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

template <typename T>
void gemm_batched_impl(int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                       int64_t sa, int64_t rsa, int64_t csa, const T* B, int64_t sb,
                       int64_t rsb, int64_t csb, T beta, T* C, int64_t sc, int64_t rsc,
                       int64_t csc) {
  DC_CHECK(batch >= 0, ValueError, "[gemm_batched] batch must be >= 0, got ", batch);
  if (batch == 0 || M == 0 || N == 0) return;
  // Many small products: one whole product per thread beats splitting each one. A shared C
  // (sc == 0) must be updated in batch order, so it stays sequential. With at least four
  // products per thread the batch split wins even when each product could use every thread:
  // one parallel region instead of one per product, and no thread waits on another inside
  // a product (attention's per-head products, 384 of 113x32x113 in a MiniLM batch, took
  // longer on two threads than on one when each opened its own region).
  const int nt = gemm_threads(batch * M, N, K);
  const bool per_batch =
      nt > 1 && sc != 0 && batch >= nt && (gemm_threads(M, N, K) < nt || batch >= 4 * nt);
  if (per_batch) {
    std::exception_ptr error;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < batch; ++i) {
      try {
        gemm_impl(M, N, K, alpha, A + i * sa, rsa, csa, B + i * sb, rsb, csb, beta, C + i * sc,
                  rsc, csc, GemmEpilogue{}, /*threaded=*/false);
      } catch (...) {
#pragma omp critical(dc_gemm_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
  for (int64_t i = 0; i < batch; ++i) {
    gemm_impl(M, N, K, alpha, A + i * sa, rsa, csa, B + i * sb, rsb, csb, beta, C + i * sc, rsc,
              csc, GemmEpilogue{}, /*threaded=*/true);
  }
}

template <typename T>
void pack_a_active(int64_t mc, int64_t kc, const T* a, int64_t rsa, int64_t csa, T* dst) {
  pack_a_block(kernel_set<T>(), mc, kc, a, rsa, csa, dst);
}

template <typename T>
void transpose_scalar(int64_t k, int64_t rows, const T* src, int64_t ld, T* dst, int64_t width) {
  for (int64_t p = 0; p < k; ++p)
    for (int64_t r = 0; r < width; ++r) dst[p * width + r] = r < rows ? src[r * ld + p] : T(0);
}

}  // namespace

// Not cached: the active ISA can change at run time (set_active_isa).
template <typename T>
GemmBlocks<T> gemm_blocks() {
  const KernelSet<T>& ks = kernel_set<T>();
  return GemmBlocks<T>{ks.mr, ks.nr, ks.mc, ks.kc, ks.nc, ks.ukernel, &pack_a_active<T>,
                       ks.pack_transposed ? ks.pack_transposed : &transpose_scalar<T>};
}
template GemmBlocks<float> gemm_blocks<float>();
template GemmBlocks<double> gemm_blocks<double>();

void gemm_f32(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
              int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
              int64_t rsc, int64_t csc, const GemmEpilogue& ep) {
  gemm_impl(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, ep, true);
}

void gemm_f64(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa,
              int64_t csa, const double* B, int64_t rsb, int64_t csb, double beta, double* C,
              int64_t rsc, int64_t csc, const GemmEpilogue& ep) {
  gemm_impl(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, ep, true);
}

void gemm_batched_f32(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t sa, int64_t rsa, int64_t csa, const float* B,
                      int64_t sb, int64_t rsb, int64_t csb, float beta, float* C, int64_t sc,
                      int64_t rsc, int64_t csc) {
  gemm_batched_impl(batch, M, N, K, alpha, A, sa, rsa, csa, B, sb, rsb, csb, beta, C, sc, rsc,
                    csc);
}

void gemm_batched_f64(int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                      const double* A, int64_t sa, int64_t rsa, int64_t csa, const double* B,
                      int64_t sb, int64_t rsb, int64_t csb, double beta, double* C, int64_t sc,
                      int64_t rsc, int64_t csc) {
  gemm_batched_impl(batch, M, N, K, alpha, A, sa, rsa, csa, B, sb, rsb, csb, beta, C, sc, rsc,
                    csc);
}

}  // namespace dc::cpu
