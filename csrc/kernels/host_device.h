#pragma once
// Marks for code that both the cpu compilers and nvcc compile (no includes, macros only).
// DC_HD marks what device code calls too: the CUDA kernels include these headers, so the math
// is written once (nvcc sees __host__ __device__; the cpu compilers see nothing). A constant
// table such a function reads is declared with DC_HD_TABLE and read through DC_TBL: under nvcc
// it exists twice, in host memory and in device memory, and each side reads its own copy.
// DC_UNROLL(n) is GCC's unroll pragma, and nvcc's.
#ifndef DC_HD
#if defined(__CUDACC__)
#define DC_HD __host__ __device__
#else
#define DC_HD
#endif
#endif
#ifndef DC_HD_TABLE
#if defined(__CUDACC__)
#define DC_HD_TABLE(type, name, dims, ...)     \
  constexpr type name dims = __VA_ARGS__;       \
  __device__ constexpr type name##_dev dims = __VA_ARGS__;
#if defined(__CUDA_ARCH__)
#define DC_TBL(name) name##_dev
#else
#define DC_TBL(name) name
#endif
#define DC_UNROLL(n) _Pragma("unroll")
#else
#define DC_HD_TABLE(type, name, dims, ...) constexpr type name dims = __VA_ARGS__;
#define DC_TBL(name) name
#define DC_PRAGMA_TEXT(x) #x
#define DC_UNROLL(n) _Pragma(DC_PRAGMA_TEXT(GCC unroll n))
#endif
#endif
