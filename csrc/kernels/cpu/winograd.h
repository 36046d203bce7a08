#pragma once
// The tile transforms of the Winograd convolution F(2x2, 3x3) (Note [Winograd convolution] in
// conv_winograd.cpp), compiled once per ISA (csrc/kernels/cpu/vec/winograd.cpp).
//
// winograd_input: for channel p < kc and tile j < len (len <= kWinogradMaxRun), the 4x4 input
// patch d whose top-left pixel is (row0, col0 + 2 j) of channel p (src + p * chan_stride, an
// H x W image; pixels outside it are zero) is transformed to V = B^T d B, and
//   dst[(4 a + b) * xi_stride + p * nr + j] = V[a][b].
// winograd_output: for output channel k < kn and tile j < len, the 4x4 product tile
// m[a][b] = src[(4 a + b) * xi_stride + k * ld + j] becomes the 2x2 output Y = A^T m A plus
// bias[k] (bias may be nullptr), written to dst + k * chan_stride: Y[r][s] at
// dst[k * chan_stride + r * row_stride + 2 j + s] for r < rows and 2 j + s < cols.
// winograd_output_adjoint (the weight gradient's transform of gy): for channel k < kn and tile
// j < len, the 2x2 tile g[r][s] = src[k * chan_stride + r * row_stride + 2 j + s] (zero for
// r >= rows or 2 j + s >= cols) becomes Z = A g A^T, dst[(4 a + b) * xi_stride + k * ld + j] =
// Z[a][b].
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  A^T = [1 1 1 0; 0 1 -1 -1].
#include <cstdint>

namespace dc::cpu {

constexpr int64_t kWinogradMaxRun = 64;

#define DC_WINOGRAD_DECLS(ISA, T, SUFFIX)                                                       \
  namespace ISA {                                                                               \
  void winograd_input_##SUFFIX(int64_t kc, const T* src, int64_t chan_stride, int64_t H,         \
                               int64_t W, int64_t row0, int64_t col0, int64_t len, T* dst,       \
                               int64_t xi_stride, int64_t nr);                                   \
  void winograd_output_##SUFFIX(int64_t kn, const T* src, int64_t xi_stride, int64_t ld,         \
                                int64_t len, const T* bias, T* dst, int64_t chan_stride,         \
                                int64_t row_stride, int64_t rows, int64_t cols);                 \
  void winograd_output_adjoint_##SUFFIX(int64_t kn, const T* src, int64_t chan_stride,           \
                                        int64_t row_stride, int64_t rows, int64_t cols,          \
                                        int64_t len, T* dst, int64_t xi_stride, int64_t ld);     \
  }
#define DC_WINOGRAD_ALL_DECLS(ISA) \
  DC_WINOGRAD_DECLS(ISA, float, f32) \
  DC_WINOGRAD_DECLS(ISA, double, f64)

DC_WINOGRAD_ALL_DECLS(avx512)
DC_WINOGRAD_ALL_DECLS(avx2)
DC_WINOGRAD_ALL_DECLS(generic)

#undef DC_WINOGRAD_ALL_DECLS
#undef DC_WINOGRAD_DECLS

}  // namespace dc::cpu
