// Portable micro-kernels: plain C++ the compiler vectorizes for baseline x86-64 (SSE2), used
// when the CPU has neither AVX2+FMA nor AVX-512. Layout contract: gemm_kernels.h.
#include "kernels/cpu/gemm/gemm_kernels.h"
#include "kernels/cpu/gemm/gemm_tile_scalar.h"

namespace dc::cpu::generic {
namespace {

// acc[MR, NR] = sum_p a(i, p) * b[p * NR + j]; a(i, p) = a[p * MR + i] packed, or
// a[i * rsa + p] when reading rows of A directly. Rows i >= m of unpacked A do not exist: they
// re-read row 0, and their results are never stored.
template <typename T, int MR, int NR, bool kPackedA>
inline void ukernel(int64_t k, const T* a, int64_t rsa, const T* b, T* c, int64_t rsc,
                    int64_t csc, int64_t m, int64_t n, T alpha, T beta) {
  int64_t row[MR];
  for (int i = 0; i < MR; ++i) row[i] = kPackedA ? i : (i < m ? i : 0) * rsa;
  const int64_t a_step = kPackedA ? MR : 1;
  T acc[MR * NR] = {};
  for (int64_t p = 0; p < k; ++p, a += a_step, b += NR) {
    for (int i = 0; i < MR; ++i) {
      const T ai = a[row[i]];
      for (int j = 0; j < NR; ++j) acc[i * NR + j] += ai * b[j];
    }
  }
  store_tile_scalar<T, NR>(acc, c, rsc, csc, m, n, alpha, beta);
}

}  // namespace

void gemm_ukernel_f32(int64_t k, const float* a, const float* b, float* c, int64_t rsc,
                      int64_t csc, int64_t m, int64_t n, float alpha, float beta) {
  ukernel<float, kGemmMrF32, kGemmNrF32, true>(k, a, 0, b, c, rsc, csc, m, n, alpha, beta);
}
void gemm_ukernel_f64(int64_t k, const double* a, const double* b, double* c, int64_t rsc,
                      int64_t csc, int64_t m, int64_t n, double alpha, double beta) {
  ukernel<double, kGemmMrF64, kGemmNrF64, true>(k, a, 0, b, c, rsc, csc, m, n, alpha, beta);
}
void gemm_ukernel_rows_f32(int64_t k, const float* a, int64_t rsa, const float* b, float* c,
                           int64_t rsc, int64_t csc, int64_t m, int64_t n, float alpha,
                           float beta) {
  ukernel<float, kGemmMrF32, kGemmNrF32, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta);
}
void gemm_ukernel_rows_f64(int64_t k, const double* a, int64_t rsa, const double* b, double* c,
                           int64_t rsc, int64_t csc, int64_t m, int64_t n, double alpha,
                           double beta) {
  ukernel<double, kGemmMrF64, kGemmNrF64, false>(k, a, rsa, b, c, rsc, csc, m, n, alpha, beta);
}

void gemm_epilogue_f32(float* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,
                       const float* bias, int64_t bias_rs, int64_t bias_cs, int act) {
  epilogue_scalar(c, rsc, csc, m, n, bias, bias_rs, bias_cs, act);
}
void gemm_epilogue_f64(double* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,
                       const double* bias, int64_t bias_rs, int64_t bias_cs, int act) {
  epilogue_scalar(c, rsc, csc, m, n, bias, bias_rs, bias_cs, act);
}

}  // namespace dc::cpu::generic
