#pragma once
// deepcore's own GEMM (no external BLAS). Design and blocking constants: Note [GEMM design]
// in gemm.cpp.
#include <cstdint>

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

}  // namespace dc::cpu
