#pragma once
// Micro-kernels of the GEMM, one set per ISA (see Note [GEMM design] in gemm.cpp).
//
// Every micro-kernel computes one MR x NR tile of C from packed panels:
//   c[i, j] = alpha * sum_p a[p * MR + i] * b[p * NR + j] + beta * c[i, j]
//   a: packed A micro-panel (k, MR), column i = row i of the A block, zero-padded to MR rows
//   b: packed B micro-panel (k, NR), zero-padded to NR columns, 64-byte aligned
//   c: addressed c[i * rsc + j * csc]; only i < m, j < n are touched; beta == 0: not read.
// gemm_pack_transposed_* (avx512 f32/f64, avx2 f32) packs a micro-panel from an operand whose panel rows are
// contiguous along k (row-major A, or a transposed B such as a Linear weight): a blocked
// transpose in registers.
// The *_rows variants read A unpacked: a[i * rsa + p] (rows of A with unit column stride),
// which skips packing A on small problems where the pack would cost as much as the math.
//
// Declarations only: the definitions are compiled with their ISA's flags, and only code
// under dc::cpu::<isa> may contain that ISA's instructions.
#include <cstdint>

namespace dc::cpu {

#define DC_GEMM_UKERNEL_DECLS(ISA, MR32, NR32, MR64, NR64)                                     \
  namespace ISA {                                                                             \
  constexpr int kGemmMrF32 = MR32, kGemmNrF32 = NR32, kGemmMrF64 = MR64, kGemmNrF64 = NR64;  \
  void gemm_ukernel_f32(int64_t k, const float* a, const float* b, float* c, int64_t rsc,     \
                        int64_t csc, int64_t m, int64_t n, float alpha, float beta);          \
  void gemm_ukernel_f64(int64_t k, const double* a, const double* b, double* c, int64_t rsc,  \
                        int64_t csc, int64_t m, int64_t n, double alpha, double beta);        \
  void gemm_ukernel_rows_f32(int64_t k, const float* a, int64_t rsa, const float* b, float* c, \
                             int64_t rsc, int64_t csc, int64_t m, int64_t n, float alpha,     \
                             float beta);                                                     \
  void gemm_ukernel_rows_f64(int64_t k, const double* a, int64_t rsa, const double* b,        \
                             double* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,       \
                             double alpha, double beta);                                      \
  /* c[m, n] = act(c + bias[i * bias_rs + j * bias_cs]); act is a GemmActivation. */          \
  void gemm_epilogue_f32(float* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,            \
                         const float* bias, int64_t bias_rs, int64_t bias_cs, int act);       \
  void gemm_epilogue_f64(double* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,           \
                         const double* bias, int64_t bias_rs, int64_t bias_cs, int act);      \
  }

// MR x NR per ISA and dtype: the accumulators fill the register file but for the B vectors and
// one broadcast of A (avx512: 12 x 2 zmm of 32, avx2: 6 x 2 ymm of 16, generic: 4 x 2 xmm).
DC_GEMM_UKERNEL_DECLS(avx512, 12, 32, 12, 16)
DC_GEMM_UKERNEL_DECLS(avx2, 6, 16, 6, 8)
DC_GEMM_UKERNEL_DECLS(generic, 4, 8, 4, 4)

#undef DC_GEMM_UKERNEL_DECLS

// dst[p * width + r] = src[r * ld + p] for r < rows (<= width), p < k; 0 for rows <= r < width.
namespace avx512 {
// The *_rows kernel with B read in place too: b[p * ldb + j] (the n <= NR columns of a
// row-major B), for products too small to amortise packing B.
void gemm_ukernel_rows_b_f32(int64_t k, const float* a, int64_t rsa, const float* b, int64_t ldb,
                             float* c, int64_t rsc, int64_t csc, int64_t m, int64_t n,
                             float alpha, float beta);
// C[i, j] = alpha * sum_p A[i * rsa + p] * B[j * csb + p] + beta * C[i * rsc + j * csc] (beta == 0:
// C not read), K >= 1: Note [Dot-product GEMM] in gemm_avx512.cpp.
void gemm_dot_f32(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
                  const float* B, int64_t csb, float beta, float* C, int64_t rsc, int64_t csc);
void gemm_pack_transposed_f32(int64_t k, int64_t rows, const float* src, int64_t ld, float* dst,
                              int64_t width);
void gemm_pack_transposed_f64(int64_t k, int64_t rows, const double* src, int64_t ld,
                              double* dst, int64_t width);
}  // namespace avx512
namespace avx2 {
void gemm_pack_transposed_f32(int64_t k, int64_t rows, const float* src, int64_t ld, float* dst,
                              int64_t width);
}  // namespace avx2

}  // namespace dc::cpu
