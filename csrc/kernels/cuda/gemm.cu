// The CUDA matmul: C[b] = act(alpha * A[b] @ B[b] + beta * C[b] + bias), any strides, batched over
// grid.z. A 64x64 tile of C per block of 256 threads, each thread 4x4 outputs; the K loop
// stages 16-wide slices of A and B in shared memory. This is the plain, general kernel: float64,
// integer dtypes and float32 at the default "highest" precision go through it. bfloat16 and
// float16, and float32 when the float32 matmul precision allows TF32 (core/matmul_precision.h),
// go to the tensor-core kernel (gemm_tc.cu) on sm_80 and later. Before either, cuBLAS takes
// the call where it is loaded and preferred and the layout suits it (gemm_cublas.cu);
// preferred_blas_library("deepcore") keeps every matmul on these kernels, which is how
// bench/bench_cuda.py compares them with cuBLAS.
//
// Compiled only; no GPU has run it yet (README, "Devices").
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "core/matmul_precision.h"
#include "core/tensor.h"
#include "kernels/cpu/gemm/gemm.h"
#include "kernels/cuda/kernels.h"

namespace dc::cuda_kernels {

// The tensor-core kernel (gemm_tc.cu): whether the device has mma.sync for it (sm_80), and the
// matmul on it for bfloat16, float16 and float32 in TF32 (matmul_into's contract).
bool tensor_core_mma_available(Device d);
void matmul_tensor_cores(const Tensor& a, const Tensor& b, const Tensor& c, double alpha,
                         double beta, const cpu::GemmEpilogue& epi);
// cuBLAS (gemm_cublas.cu): false when it does not take the call.
bool cublas_matmul_into(const Tensor& a, const Tensor& b, const Tensor& c, double alpha,
                        double beta, const cpu::GemmEpilogue& epi);

namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16, kTM = 4, kTN = 4;  // 16 x 16 threads

struct Operand {
  const void* p;
  int64_t batch, row, col;  // element strides
};

template <typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, T, int64_t>;

template <typename T>
__global__ void __launch_bounds__(256)
    gemm_tiled(int64_t M, int64_t N, int64_t K, Acc<T> alpha, Operand a, Operand b, Acc<T> beta,
               T* C, int64_t sc, int64_t rsc, int64_t csc, const T* bias, int relu) {
  __shared__ T As[kBK][kBM];
  __shared__ T Bs[kBK][kBN];
  const T* A = static_cast<const T*>(a.p) + blockIdx.z * a.batch;
  const T* B = static_cast<const T*>(b.p) + blockIdx.z * b.batch;
  C += blockIdx.z * sc;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  Acc<T> acc[kTM][kTN] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kBK) {
    // 256 threads load the 64 x 16 slice of A and the 16 x 64 slice of B, zeros past the edges
    for (int e = threadIdx.x; e < kBM * kBK; e += blockDim.x) {
      const int i = e / kBK, k = e % kBK;
      const int64_t gm = m0 + i, gk = k0 + k;
      As[k][i] = (gm < M && gk < K) ? A[gm * a.row + gk * a.col] : T(0);
    }
    for (int e = threadIdx.x; e < kBK * kBN; e += blockDim.x) {
      const int k = e / kBN, j = e % kBN;
      const int64_t gk = k0 + k, gn = n0 + j;
      Bs[k][j] = (gk < K && gn < N) ? B[gk * b.row + gn * b.col] : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kBK; ++k) {
      T av[kTM], bv[kTN];
#pragma unroll
      for (int i = 0; i < kTM; ++i) av[i] = As[k][ty * kTM + i];
#pragma unroll
      for (int j = 0; j < kTN; ++j) bv[j] = Bs[k][tx * kTN + j];
#pragma unroll
      for (int i = 0; i < kTM; ++i)
#pragma unroll
        for (int j = 0; j < kTN; ++j) acc[i][j] += static_cast<Acc<T>>(av[i]) * bv[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    const int64_t gm = m0 + ty * kTM + i;
    if (gm >= M) continue;
#pragma unroll
    for (int j = 0; j < kTN; ++j) {
      const int64_t gn = n0 + tx * kTN + j;
      if (gn >= N) continue;
      T* c = C + gm * rsc + gn * csc;
      // beta == 0 never reads C (it may hold NaN), as BLAS
      Acc<T> v = alpha * acc[i][j] + (beta == Acc<T>(0) ? Acc<T>(0) : beta * Acc<T>(*c));
      if (bias) v += bias[gn];
      if (relu && v < Acc<T>(0)) v = Acc<T>(0);
      *c = static_cast<T>(v);
    }
  }
}

// (batch, rows, cols) strides of a 2-D or 3-D operand.
Operand operand(const Tensor& t) {
  const bool batched = t.dim() == 3;
  const int off = batched ? 1 : 0;
  return {t.data_ptr(), batched ? t.strides()[0] : 0, t.strides()[off], t.strides()[off + 1]};
}

template <typename T>
void gemm_as(const Tensor& a, const Tensor& b, const Tensor& c, double alpha, double beta,
             const cpu::GemmEpilogue& epi) {
  const bool batched = c.dim() == 3;
  const int off = batched ? 1 : 0;
  const int64_t batch = batched ? c.sizes()[0] : 1;
  const int64_t M = c.sizes()[off], N = c.sizes()[off + 1], K = a.sizes()[off + 1];
  if (M == 0 || N == 0 || batch == 0) return;
  const Operand oc = operand(c);
  const dim3 grid(static_cast<unsigned>((N + kBN - 1) / kBN),
                  static_cast<unsigned>((M + kBM - 1) / kBM), static_cast<unsigned>(batch));
  DC_CHECK(grid.y <= 65535 && grid.z <= 65535, ValueError, "[matmul] cuda grid too large for ",
           c.shape_str());
  gemm_tiled<T><<<grid, 256, 0, stream()>>>(
      M, N, K, static_cast<Acc<T>>(alpha), operand(a), operand(b), static_cast<Acc<T>>(beta),
      static_cast<T*>(c.data_ptr()), oc.batch, oc.row, oc.col, static_cast<const T*>(epi.bias),
      epi.act == cpu::GemmActivation::relu ? 1 : 0);
  check_launch("matmul");
}

void cuda_matmul_into(const Tensor& a, const Tensor& b, const Tensor& c, double alpha,
                      double beta, const cpu::GemmEpilogue& epi) {
  DC_CHECK(epi.act == cpu::GemmActivation::none || epi.act == cpu::GemmActivation::relu,
           NotImplementedError, "[", dispatch::current_op_name(),
           "] no cuda kernel for a matmul with a gelu epilogue yet");
  if (cublas_matmul_into(a, b, c, alpha, beta, epi)) return;
  const DType dt = c.dtype();
  if (dt == DType::BFloat16 || dt == DType::Float16)
    return matmul_tensor_cores(a, b, c, alpha, beta, epi);
  if (dt == DType::Float32 && float32_matmul_precision() != Float32MatmulPrecision::highest &&
      tensor_core_mma_available(c.device()))
    return matmul_tensor_cores(a, b, c, alpha, beta, epi);
  switch (dt) {
    case DType::Float32: return gemm_as<float>(a, b, c, alpha, beta, epi);
    case DType::Float64: return gemm_as<double>(a, b, c, alpha, beta, epi);
    case DType::Int32: return gemm_as<int32_t>(a, b, c, alpha, beta, epi);
    case DType::Int64: return gemm_as<int64_t>(a, b, c, alpha, beta, epi);
    default: break;
  }
  DC_THROW(TypeError, "[", dispatch::current_op_name(), "] no cuda matmul for ",
           dtype_name(c.dtype()));
}

}  // namespace

void fill_gemm(dispatch::KernelTable& t) { t.matmul_into = cuda_matmul_into; }

}  // namespace dc::cuda_kernels
