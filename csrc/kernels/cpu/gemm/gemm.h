#pragma once
// deepcore's own GEMM (no external BLAS). Design and blocking constants: Note [GEMM design]
// in gemm.cpp.
#include <cstdint>

#include "core/tensor.h"

namespace dc::cpu {

enum class GemmActivation { none, relu, gelu_tanh, gelu_erf };

// Applied after alpha/beta: C = act(C + bias[n]).
struct GemmEpilogue {
  const void* bias = nullptr;  // length N, same dtype as C, or nullptr
  GemmActivation act = GemmActivation::none;
};

// C[m, n] = alpha * sum_k A[m, k] * B[k, n] + beta * C[m, n]   (then the epilogue)
// Every operand is addressed by element strides (row stride, column stride), so transposed,
// sliced and non-unit-leading-dimension operands need no copy. beta == 0 means C is not read
// (it may hold NaN/garbage); alpha == 0 means A and B are not read. M, N or K may be 0
// (K == 0: C = beta*C, then the epilogue). C must not overlap A or B.
void gemm_f32(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
              int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
              int64_t rsc, int64_t csc, const GemmEpilogue& ep = {});
void gemm_f64(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa,
              int64_t csa, const double* B, int64_t rsb, int64_t csb, double beta, double* C,
              int64_t rsc, int64_t csc, const GemmEpilogue& ep = {});

// Batched: batch i uses A + i*sa, B + i*sb, C + i*sc (element strides; a stride of 0
// broadcasts). With sc == 0 every batch updates the same C, in batch order.
void gemm_batched_f32(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t sa, int64_t rsa, int64_t csa, const float* B,
                      int64_t sb, int64_t rsb, int64_t csb, float beta, float* C, int64_t sc,
                      int64_t rsc, int64_t csc);
void gemm_batched_f64(int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                      const double* A, int64_t sa, int64_t rsa, int64_t csa, const double* B,
                      int64_t sb, int64_t rsb, int64_t csb, double beta, double* C, int64_t sc,
                      int64_t rsc, int64_t csc);

// C[b] = alpha * A[b] @ B[b] + beta * C[b] over a batch in dim 0 (3-D operands) or none (2-D),
// any strides; the float GEMMs above for float32 / float64, a plain loop for integer dtypes.
// The epilogue applies to 2-D float products only.
void matmul_into(const Tensor& a, const Tensor& b, const Tensor& c, double alpha, double beta,
                 const GemmEpilogue& ep);

// Building blocks for kernels that pack their own B operand (the convolutions' implicit im2col,
// Note [Convolution as implicit GEMM] in conv_implicit.cpp): the active ISA's micro-kernel
// with its tile and cache-blocking sizes (contract in gemm_kernels.h), and the pack of an A
// block into its MR-high micro-panels. The packed B panels a caller builds must be 64-byte
// aligned.
template <typename T>
struct GemmBlocks {
  int mr, nr;          // micro-kernel tile
  int64_t mc, kc, nc;  // cache blocking (Note [GEMM design] in gemm.cpp)
  void (*ukernel)(int64_t k, const T* a, const T* b, T* c, int64_t rsc, int64_t csc, int64_t m,
                  int64_t n, T alpha, T beta);
  // dst: ceil(mc / mr) micro-panels of kc x mr from a[i * rsa + p * csa], rows past mc zeroed.
  void (*pack_a)(int64_t mc, int64_t kc, const T* a, int64_t rsa, int64_t csa, T* dst);
  // dst[p * width + r] = src[r * ld + p] for r < rows (<= width) and p < k, 0 for
  // rows <= r < width: a blocked transpose in registers where the ISA has one.
  void (*transpose)(int64_t k, int64_t rows, const T* src, int64_t ld, T* dst, int64_t width);
};
template <typename T>
GemmBlocks<T> gemm_blocks();

// Threads for a problem of M x N x K: all of them unless it is too small to feed them (1
// inside a parallel region).
int gemm_threads(int64_t M, int64_t N, int64_t K);
// The thread grid of a GEMM on nt threads (Note [GEMM design], Threading): tm, for a grid of
// tm x (nt / tm) blocks of C aligned to the mr x nr tile, that minimises the busiest thread's
// padded work plus packing with mc x nc cache blocks; 0 when no grid gives every thread rows
// and columns (run on one thread then).
int gemm_thread_grid(int64_t M, int64_t N, int64_t K, int nt, int64_t mr, int64_t nr,
                     int64_t mc, int64_t nc);

}  // namespace dc::cpu
