#pragma once
// cuBLAS, loaded at run time (built only with -DDEEPCORE_CUDA=ON). deepcore links no cuBLAS: the
// library comes from the nvidia-cublas wheel or the system when present, found on first use
// (dlopen), and the CUDA matmul takes it where it can (kernels/cuda/gemm_cublas.cu). Without
// it, or when deepcore.backends.cuda.preferred_blas_library("deepcore") says so, the matmul runs
// on deepcore's own GEMM kernels, which bench/bench_cuda.py compares with cuBLAS.
#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>
#include <library_types.h>

namespace dc::cuda::cublas {

// Paths to try before the plain soname (libcublas.so.13): the Python package passes the
// nvidia-cublas wheel's copy. Takes effect if cuBLAS has not been looked for yet.
void set_search_paths(std::vector<std::string> paths);
bool available();       // loads cuBLAS on the first call
std::string where();    // the path it was loaded from, or why it was not

enum class Library { cublas, deepcore };
void set_preferred(Library l);
Library preferred();

// cublasGemmStridedBatchedEx on the current device's handle, queued on `stream`. `compute` is a
// cublasComputeType_t; alpha and beta point to floats, or doubles for the 64-bit compute type.
// RuntimeError naming the cuBLAS status on failure.
void gemm_strided_batched(cudaStream_t stream, bool trans_a, bool trans_b, int m, int n, int k,
                          const void* alpha, const void* A, cudaDataType a_type, int lda,
                          long long stride_a, const void* B, cudaDataType b_type, int ldb,
                          long long stride_b, const void* beta, void* C, cudaDataType c_type,
                          int ldc, long long stride_c, int batch, int compute);

// cublasComputeType_t values (cublas_api.h) for the types deepcore uses.
constexpr int kCompute32F = 68, kCompute32FFastTF32 = 77, kCompute64F = 70;

}  // namespace dc::cuda::cublas
