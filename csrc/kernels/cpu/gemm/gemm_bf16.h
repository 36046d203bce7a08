#pragma once
// bfloat16 GEMM with float32 accumulation: vdpbf16ps (AVX512_BF16) where the CPU has it, the
// float32 micro-kernels on bf16-rounded panels elsewhere. Design, blocking and measured
// figures: Note [bf16 GEMM] in gemm_bf16.cpp.
#include <cstdint>

#include "kernels/cpu/gemm/gemm.h"

namespace dc::cpu {

// True when the bf16 GEMM runs on vdpbf16ps here: the CPU reports AVX512_BF16 (cpuid) and the
// active ISA (kernels/cpu/isa.h) is avx512.
bool gemm_bf16_native();

// C[m, n] = alpha * sum_k A[m, k] * B[k, n] + beta * C[m, n], then the epilogue (bias in C's
// dtype, activation as GemmEpilogue in gemm.h). A and B are each bfloat16 (a_bf16 / b_bf16) or
// float32, which is rounded to bfloat16 as it is packed; products are accumulated in float32;
// C is bfloat16 (c_bf16, rounded once when stored) or float32. Element strides as gemm_f32
// (transposed and sliced operands without copies); beta == 0: C not read; alpha == 0: A and B
// not read; M, N, K may be 0. C must not overlap A or B.
void gemm_bf16(int64_t M, int64_t N, int64_t K, float alpha, const void* A, bool a_bf16,
               int64_t rsa, int64_t csa, const void* B, bool b_bf16, int64_t rsb, int64_t csb,
               float beta, void* C, bool c_bf16, int64_t rsc, int64_t csc,
               const GemmEpilogue& ep = {});

// Batched as gemm_batched_f32 (batch strides in elements; sc == 0 accumulates in batch order).
void gemm_batched_bf16(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
                       bool a_bf16, int64_t sa, int64_t rsa, int64_t csa, const void* B,
                       bool b_bf16, int64_t sb, int64_t rsb, int64_t csb, float beta, void* C,
                       bool c_bf16, int64_t sc, int64_t rsc, int64_t csc);

// The vdpbf16ps kernels (gemm_bf16_avx512bf16.cpp), for the driver only. Declarations: the
// definitions are compiled with -mavx512bf16 and may run only where gemm_bf16_native().
namespace avx512bf16 {

// Micro-tile: 12 rows x 32 columns = 24 zmm accumulators (Note [bf16 GEMM]).
constexpr int kGemmMrBf16 = 12, kGemmNrBf16 = 32;

// Packs ceil(lines / width) micro-panels for vdpbf16ps, one after another, each
// ceil(k / 2) * width words: word q * width + r of panel t holds the bfloat16 values
// (low half, high half) = (x[l, 2q], x[l, 2q + 1]) of line l = t * width + r, where
// x[l, p] = src[l * rs + p * ks] for l < lines and p < k, and zero past either edge (so k is
// padded to even and the last panel to `width` lines). src holds bfloat16 (src_bf16) or
// float32, rounded to nearest even.
void gemm_bf16_pack(int64_t k, int64_t lines, const void* src, bool src_bf16, int64_t rs,
                    int64_t ks, uint32_t* dst, int64_t width);

// c[i * rsc + j * csc] = alpha * sum_{q < ceil(k / 2)} dot2(a[q * MR + i], b[q * NR + j])
// + beta * c (beta == 0: c not read), for i < m, j < n: a and b packed by gemm_bf16_pack
// (widths MR and NR), b 64-byte aligned.
void gemm_bf16_ukernel(int64_t k, const uint32_t* a, const uint32_t* b, float* c, int64_t rsc,
                       int64_t csc, int64_t m, int64_t n, float alpha, float beta);

// The same product into a bfloat16 C, rounded once: c[i * rsc + j * csc] = bf16(alpha * sum).
void gemm_bf16_ukernel_c16(int64_t k, const uint32_t* a, const uint32_t* b, uint16_t* c,
                           int64_t rsc, int64_t csc, int64_t m, int64_t n, float alpha);

// The last step of a bfloat16 C: c[i * rsc + j * csc] = bf16(act(w[i * ldw + j]
// + beta * c + bias[i * bias_rs + j * bias_cs])) for i < m, j < n, with bias bfloat16 (or
// nullptr) and act a GemmActivation; beta == 0: c not read. w is used as scratch.
void gemm_bf16_store(float* w, int64_t ldw, uint16_t* c, int64_t rsc, int64_t csc, int64_t m,
                     int64_t n, float beta, const uint16_t* bias, int64_t bias_rs, int64_t bias_cs,
                     int act);

}  // namespace avx512bf16

}  // namespace dc::cpu
