#pragma once
// The tile transforms of the Winograd convolutions F(2x2, 3x3) and F(4x4, 3x3) (Note [Winograd
// convolution] in conv_winograd.cpp): the transform matrices as small functions of one row or
// column (WinogradF2, WinogradF4), and the transforms of whole runs of tiles, compiled once per
// ISA (csrc/kernels/cpu/vec/winograd.cpp). With m the output tile's size and a = m + 2 the input
// patch's (4 for F2, 6 for F4), P = a * a positions:
//
// winograd{,4}_input: for channel p < kc and tile j < len (len <= kWinogradMaxRun), the a x a
// input patch d whose top-left pixel is (row0, col0 + m j) of channel p (src + p * chan_stride,
// an H x W image; pixels outside it are zero) is transformed to V = B^T d B, and
//   dst[(a r + b) * xi_stride + p * nr + j] = V[r][b].
// winograd{,4}_output: for output channel k < kn and tile j < len, the a x a product tile
// m[r][b] = src[(a r + b) * xi_stride + k * ld + j] becomes the m x m output Y = A^T m A plus
// bias[k] (bias may be nullptr), written to dst + k * chan_stride: Y[r][s] at
// dst[k * chan_stride + r * row_stride + m j + s] for r < rows and m j + s < cols.
// winograd{,4}_output_adjoint (the weight gradient's transform of gy): for channel k < kn and
// tile j < len, the m x m tile g[r][s] = src[k * chan_stride + r * row_stride + m j + s] (zero
// for r >= rows or m j + s >= cols) becomes Z = A g A^T, dst[(a r + b) * xi_stride + k * ld + j]
// = Z[r][b].
#include <cstdint>

namespace dc::cpu {

constexpr int64_t kWinogradMaxRun = 64;

// F(2x2, 3x3), Lavin and Gray's matrices:
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1].
// Each function applies one matrix to one vector: bt = B^T z, at = A^T z, a = A z, g = G z and
// gt = G^T z.
struct WinogradF2 {
  static constexpr int m = 2, alpha = 4;
  template <typename T> static void bt(const T* z, T* o) {
    o[0] = z[0] - z[2];
    o[1] = z[1] + z[2];
    o[2] = z[2] - z[1];
    o[3] = z[1] - z[3];
  }
  template <typename T> static void at(const T* z, T* o) {
    o[0] = z[0] + z[1] + z[2];
    o[1] = z[1] - z[2] - z[3];
  }
  template <typename T> static void a(const T* z, T* o) {
    o[0] = z[0];
    o[1] = z[0] + z[1];
    o[2] = z[0] - z[1];
    o[3] = -z[1];
  }
  template <typename T> static void g(const T* z, T* o) {
    o[0] = z[0];
    o[1] = T(0.5) * (z[0] + z[1] + z[2]);
    o[2] = T(0.5) * (z[0] - z[1] + z[2]);
    o[3] = z[2];
  }
  template <typename T> static void gt(const T* z, T* o) {
    o[0] = z[0] + T(0.5) * (z[1] + z[2]);
    o[1] = T(0.5) * (z[1] - z[2]);
    o[2] = T(0.5) * (z[1] + z[2]) + z[3];
  }
};

// F(4x4, 3x3), interpolating at 0, 1, -1, 2, -2 and infinity:
//   B^T = [4  0 -5  0 1 0;  0 -4 -4  1 1 0;  0 4 -4 -1 1 0;
//          0 -2 -1  2 1 0;  0  2 -1 -2 1 0;  0 4  0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
struct WinogradF4 {
  static constexpr int m = 4, alpha = 6;
  template <typename T> static void bt(const T* z, T* o) {
    const T p = z[4] - T(4) * z[2], q = z[3] - T(4) * z[1];
    const T r = z[4] - z[2], s = T(2) * (z[3] - z[1]);
    o[0] = T(4) * z[0] - T(5) * z[2] + z[4];
    o[1] = p + q;
    o[2] = p - q;
    o[3] = r + s;
    o[4] = r - s;
    o[5] = T(4) * z[1] - T(5) * z[3] + z[5];
  }
  template <typename T> static void at(const T* z, T* o) {
    const T s12 = z[1] + z[2], d12 = z[1] - z[2], s34 = z[3] + z[4], d34 = z[3] - z[4];
    o[0] = z[0] + s12 + s34;
    o[1] = d12 + T(2) * d34;
    o[2] = s12 + T(4) * s34;
    o[3] = d12 + T(8) * d34 + z[5];
  }
  template <typename T> static void a(const T* z, T* o) {
    const T e = z[0] + z[2], od = z[1] + z[3];
    const T e4 = z[0] + T(4) * z[2], od4 = T(2) * z[1] + T(8) * z[3];
    o[0] = z[0];
    o[1] = e + od;
    o[2] = e - od;
    o[3] = e4 + od4;
    o[4] = e4 - od4;
    o[5] = z[3];
  }
  // g and gt run in double (conv_winograd.cpp), where the reciprocals' rounding (2^-53) is
  // far below float32's.
  template <typename T> static void g(const T* z, T* o) {
    const T s = z[0] + z[2], t = z[0] * T(1.0 / 24) + z[2] * T(1.0 / 6), u = z[1] * T(1.0 / 12);
    o[0] = z[0] * T(0.25);
    o[1] = -(s + z[1]) * T(1.0 / 6);
    o[2] = -(s - z[1]) * T(1.0 / 6);
    o[3] = t + u;
    o[4] = t - u;
    o[5] = z[2];
  }
  template <typename T> static void gt(const T* z, T* o) {
    o[0] = z[0] * T(0.25) - (z[1] + z[2]) * T(1.0 / 6) + (z[3] + z[4]) * T(1.0 / 24);
    o[1] = (z[2] - z[1]) * T(1.0 / 6) + (z[3] - z[4]) * T(1.0 / 12);
    o[2] = (z[3] + z[4] - z[1] - z[2]) * T(1.0 / 6) + z[5];
  }
};

#define DC_WINOGRAD_DECLS(ISA, T, SUFFIX) \
  DC_WINOGRAD_TILE_DECLS(ISA, T, winograd, SUFFIX) \
  DC_WINOGRAD_TILE_DECLS(ISA, T, winograd4, SUFFIX)
#define DC_WINOGRAD_TILE_DECLS(ISA, T, NAME, SUFFIX)                                            \
  namespace ISA {                                                                               \
  void NAME##_input_##SUFFIX(int64_t kc, const T* src, int64_t chan_stride, int64_t H,         \
                               int64_t W, int64_t row0, int64_t col0, int64_t len, T* dst,       \
                               int64_t xi_stride, int64_t nr);                                   \
  void NAME##_output_##SUFFIX(int64_t kn, const T* src, int64_t xi_stride, int64_t ld,         \
                                int64_t len, const T* bias, T* dst, int64_t chan_stride,         \
                                int64_t row_stride, int64_t rows, int64_t cols);                 \
  void NAME##_output_adjoint_##SUFFIX(int64_t kn, const T* src, int64_t chan_stride,           \
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
#undef DC_WINOGRAD_TILE_DECLS

}  // namespace dc::cpu
