// The CUDA matmul on cuBLAS (cuda/cublas.h), where it applies: float32 (TF32 when the float32
// matmul precision allows, as in torch), float64, bfloat16 and float16 with float32
// accumulation, operands in any layout cuBLAS takes without a copy (Note [Row-major matmul on a
// column-major BLAS] in blas_layout.h). A bias epilogue is folded into the GEMM: C is filled
// with the bias rows and cuBLAS adds the product with beta = 1, so a 16-bit result is rounded
// once, as the fused kernels round it; relu then runs over C (rounding commutes with it).
// Anything else -- integers, a layout needing a copy, a bias with beta != 0, K == 0 -- returns
// false and runs on deepcore's own kernels.
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "core/matmul_precision.h"
#include "core/tensor.h"
#include "cuda/cublas.h"
#include "kernels/cpu/gemm/gemm.h"
#include "kernels/cuda/blas_layout.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace {

// C[b, i, j] for a thread's linear index over (batch, M, N).
struct CIndex {
  int64_t M, N, sb, rs, cs;
  __device__ int64_t offset(int64_t e, int64_t* col) const {
    const int64_t j = e % N, r = e / N;
    *col = j;
    return (r / M) * sb + (r % M) * rs + j * cs;
  }
};

template <typename T>
__global__ void fill_bias_rows(T* c, CIndex ix, int64_t n, const T* bias) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n; e += step) {
    int64_t j = 0;
    const int64_t o = ix.offset(e, &j);
    c[o] = bias[j];
  }
}

template <typename T>
__global__ void relu_rows(T* c, CIndex ix, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n; e += step) {
    int64_t j = 0;
    const int64_t o = ix.offset(e, &j);
    if (static_cast<float>(c[o]) < 0.0f) c[o] = T(0.0f);  // NaN stays NaN, as torch's relu
  }
}

template <typename T>
void epilogue_launch(bool bias_pass, const Tensor& c, const CIndex& ix, int64_t n,
                     const void* bias) {
  const LaunchConfig l = elementwise_launch(n, max_blocks(c.device()));
  if (l.blocks == 0) return;
  T* p = static_cast<T*>(c.data_ptr());
  const auto blocks = static_cast<unsigned>(l.blocks);
  if (bias_pass)
    fill_bias_rows<T><<<blocks, l.threads, 0, stream()>>>(p, ix, n, static_cast<const T*>(bias));
  else
    relu_rows<T><<<blocks, l.threads, 0, stream()>>>(p, ix, n);
  check_launch(bias_pass ? "matmul bias" : "matmul relu");
}

void epilogue(DType dtype, bool bias_pass, const Tensor& c, const CIndex& ix, int64_t n,
              const void* bias) {
  switch (dtype) {
    case DType::Float32: return epilogue_launch<float>(bias_pass, c, ix, n, bias);
    case DType::Float64: return epilogue_launch<double>(bias_pass, c, ix, n, bias);
    case DType::BFloat16: return epilogue_launch<__nv_bfloat16>(bias_pass, c, ix, n, bias);
    case DType::Float16: return epilogue_launch<__half>(bias_pass, c, ix, n, bias);
    default: break;
  }
}

StridedMatrix strided(const Tensor& t, int64_t rows, int64_t cols) {
  const bool batched = t.dim() == 3;
  const int off = batched ? 1 : 0;
  return {rows, cols, batched ? t.strides()[0] : 0, t.strides()[off], t.strides()[off + 1]};
}

}  // namespace

bool cublas_matmul_into(const Tensor& a, const Tensor& b, const Tensor& c, double alpha,
                        double beta, const cpu::GemmEpilogue& epi) {
  namespace cb = cuda::cublas;
  if (cb::preferred() != cb::Library::cublas) return false;
  const DType dt = c.dtype();
  if (a.dtype() != dt || b.dtype() != dt) return false;
  cudaDataType type;
  int compute = cb::kCompute32F;
  switch (dt) {
    case DType::Float32:
      type = CUDA_R_32F;
      if (float32_matmul_precision() != Float32MatmulPrecision::highest)
        compute = cb::kCompute32FFastTF32;
      break;
    case DType::Float64: type = CUDA_R_64F, compute = cb::kCompute64F; break;
    case DType::BFloat16: type = CUDA_R_16BF; break;
    case DType::Float16: type = CUDA_R_16F; break;
    default: return false;
  }
  if (epi.act != cpu::GemmActivation::none && epi.act != cpu::GemmActivation::relu) return false;
  if (epi.bias && beta != 0.0) return false;
  const bool batched = c.dim() == 3;
  const int off = batched ? 1 : 0;
  const int64_t batch = batched ? c.sizes()[0] : 1;
  const int64_t M = c.sizes()[off], N = c.sizes()[off + 1], K = a.sizes()[off + 1];
  if (K == 0) return false;
  const StridedMatrix sc = strided(c, M, N);
  const BlasGemmPlan p = plan_blas_gemm(strided(a, M, K), strided(b, K, N), sc, batch);
  if (!p.ok || !cb::available()) return false;
  if (M == 0 || N == 0 || batch == 0) return true;
  const CIndex ix{M, N, sc.batch, sc.row, sc.col};
  const int64_t n = batch * M * N;
  if (epi.bias) {
    epilogue(dt, true, c, ix, n, epi.bias);
    beta = 1.0;
  }
  const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
  const bool wide = compute == cb::kCompute64F;
  const void* al = wide ? static_cast<const void*>(&alpha) : &alpha_f;
  const void* be = wide ? static_cast<const void*>(&beta) : &beta_f;
  const void* first = p.swap ? b.data_ptr() : a.data_ptr();
  const void* second = p.swap ? a.data_ptr() : b.data_ptr();
  cb::gemm_strided_batched(stream(), p.trans_first, p.trans_second, static_cast<int>(p.m),
                           static_cast<int>(p.n), static_cast<int>(p.k), al, first, type,
                           static_cast<int>(p.ld_first), p.stride_first, second, type,
                           static_cast<int>(p.ld_second), p.stride_second, be, c.data_ptr(),
                           type, static_cast<int>(p.ldc), p.stride_c, static_cast<int>(batch),
                           compute);
  if (epi.act == cpu::GemmActivation::relu) epilogue(dt, false, c, ix, n, nullptr);
  return true;
}

}  // namespace dc::cuda_kernels
