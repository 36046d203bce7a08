// The Winograd F(2x2, 3x3) tile transforms (contract in csrc/kernels/cpu/winograd.h), compiled
// once per ISA (Note [Per-ISA kernels]). Both run along a row of tiles, 16 tiles per vector
// with AVX-512 (float): an input row's 34 columns under 16 tiles are four loads, split into
// the patches' four columns by permutes (a tile starts every second column), and the output
// tiles' two columns are interleaved back by permutes; the image's edges are masked loads and
// stores, whose masked-off lanes touch no memory. Other ISAs and double run the same
// arithmetic per tile.
#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/cpu/winograd.h"

namespace dc::cpu::DC_ISA_NS {
namespace {

constexpr int64_t kRun = kWinogradMaxRun;

// V = B^T d B of one 4x4 patch, d(r, c) giving the patch's pixels, written to
// dst[(4 a + b) * xi_stride].
template <typename T, typename Pixel>
inline void transform_patch(Pixel d, T* dst, int64_t xi_stride) {
  T c[4][4];  // c[r][b]: row r of the patch times B, then B^T across the rows
  for (int r = 0; r < 4; ++r) {
    const T d0 = d(r, 0), d1 = d(r, 1), d2 = d(r, 2), d3 = d(r, 3);
    c[r][0] = d0 - d2;
    c[r][1] = d1 + d2;
    c[r][2] = d2 - d1;
    c[r][3] = d1 - d3;
  }
  for (int b = 0; b < 4; ++b) {
    dst[(0 + b) * xi_stride] = c[0][b] - c[2][b];
    dst[(4 + b) * xi_stride] = c[1][b] + c[2][b];
    dst[(8 + b) * xi_stride] = c[2][b] - c[1][b];
    dst[(12 + b) * xi_stride] = c[1][b] - c[3][b];
  }
}

template <typename T>
void input_transform(int64_t kc, const T* src, int64_t chan_stride, int64_t H, int64_t W,
                     int64_t row0, int64_t col0, int64_t len, T* dst, int64_t xi_stride,
                     int64_t nr) {
  // Tiles [jlo, jhi) read only columns inside the image: the vector loop reads them in place
  // (rows outside the image read a zero row). The tiles at the edges, where the padding is,
  // go one by one.
  alignas(64) static constexpr T zeros[2 * kRun + 4] = {};
  const int64_t jlo = std::clamp<int64_t>((1 - col0) / 2, 0, len);
  const int64_t jhi = std::clamp<int64_t>(W - 4 - col0 >= 0 ? (W - 4 - col0) / 2 + 1 : 0, jlo, len);
  for (int64_t p = 0; p < kc; ++p, src += chan_stride) {
    const T* rows[4];
    for (int64_t r = 0; r < 4; ++r) {
      const int64_t ih = row0 + r;
      rows[r] = ih < 0 || ih >= H ? nullptr : src + ih * W + col0;
    }
    T* d = dst + p * nr;
    auto edge_tile = [&](int64_t j) {
      transform_patch<T>([&](int r, int c) {
        const int64_t col = col0 + 2 * j + c;
        return rows[r] && col >= 0 && col < W ? rows[r][2 * j + c] : T(0);
      }, d + j, xi_stride);
    };
    for (int64_t j = 0; j < jlo; ++j) edge_tile(j);
    const T* q[4];
    for (int r = 0; r < 4; ++r) q[r] = rows[r] ? rows[r] : zeros;
    // The 16 positions' runs never overlap (xi_stride >= len), which the compiler cannot see.
#pragma GCC ivdep
    for (int64_t j = jlo; j < jhi; ++j)
      transform_patch<T>([&](int r, int c) { return q[r][2 * j + c]; }, d + j, xi_stride);
    for (int64_t j = jhi; j < len; ++j) edge_tile(j);
  }
}

template <typename T>
void output_transform(int64_t kn, const T* src, int64_t xi_stride, int64_t ld, int64_t len,
                      const T* bias, T* dst, int64_t chan_stride, int64_t row_stride,
                      int64_t rows, int64_t cols) {
  // Whole tiles are written in place; a run cut by the image's edge goes through a buffer.
  alignas(64) T y0[2 * kRun], y1[2 * kRun];
  const bool whole = rows == 2 && cols == 2 * len;
  for (int64_t k = 0; k < kn; ++k, src += ld, dst += chan_stride) {
    const T b = bias ? bias[k] : T(0);
    T* o0 = whole ? dst : y0;
    T* o1 = whole ? dst + row_stride : y1;
#pragma GCC ivdep
    for (int64_t j = 0; j < len; ++j) {
      T m[4][4];
      for (int a = 0; a < 4; ++a)
        for (int c = 0; c < 4; ++c) m[a][c] = src[(4 * a + c) * xi_stride + j];
      T r0[4], r1[4];  // A^T m
      for (int c = 0; c < 4; ++c) {
        r0[c] = m[0][c] + m[1][c] + m[2][c];
        r1[c] = m[1][c] - m[2][c] - m[3][c];
      }
      o0[2 * j] = r0[0] + r0[1] + r0[2] + b;
      o0[2 * j + 1] = r0[1] - r0[2] - r0[3] + b;
      o1[2 * j] = r1[0] + r1[1] + r1[2] + b;
      o1[2 * j + 1] = r1[1] - r1[2] - r1[3] + b;
    }
    if (whole) continue;
    std::memcpy(dst, y0, cols * sizeof(T));
    if (rows > 1) std::memcpy(dst + row_stride, y1, cols * sizeof(T));
  }
}

template <typename T>
void output_adjoint(int64_t kn, const T* src, int64_t chan_stride, int64_t row_stride,
                    int64_t rows, int64_t cols, int64_t len, T* dst, int64_t xi_stride,
                    int64_t ld) {
  // Whole tiles are read in place; a run cut by the image's edge is copied with zeros first.
  alignas(64) T pad[2][2 * kRun];
  const bool whole = rows == 2 && cols == 2 * len;
  for (int64_t k = 0; k < kn; ++k, src += chan_stride, dst += ld) {
    const T* g0 = src;
    const T* g1 = src + row_stride;
    if (!whole) {
      for (int64_t r = 0; r < 2; ++r)
        for (int64_t c = 0; c < 2 * len; ++c)
          pad[r][c] = r < rows && c < cols ? src[r * row_stride + c] : T(0);
      g0 = pad[0];
      g1 = pad[1];
    }
#pragma GCC ivdep
    for (int64_t j = 0; j < len; ++j) {
      const T a0 = g0[2 * j], a1 = g0[2 * j + 1], b0 = g1[2 * j], b1 = g1[2 * j + 1];
      const T w[4][2] = {{a0, a1}, {a0 + b0, a1 + b1}, {a0 - b0, a1 - b1}, {-b0, -b1}};  // A g
      for (int a = 0; a < 4; ++a) {
        dst[(4 * a + 0) * xi_stride + j] = w[a][0];
        dst[(4 * a + 1) * xi_stride + j] = w[a][0] + w[a][1];
        dst[(4 * a + 2) * xi_stride + j] = w[a][0] - w[a][1];
        dst[(4 * a + 3) * xi_stride + j] = -w[a][1];
      }
    }
  }
}

#if defined(__AVX512F__)
// Lanes t < 16 with lo <= t < hi.
inline __mmask16 lanes(int64_t lo, int64_t hi) {
  lo = std::clamp<int64_t>(lo, 0, 16);
  hi = std::clamp<int64_t>(hi, lo, 16);
  return static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// Columns [c, c + 16) of a row, those outside [lo, hi) zero.
inline __m512 load_cols(const float* q, int64_t c, int64_t lo, int64_t hi) {
  if (c >= lo && c + 16 <= hi) return _mm512_loadu_ps(q + c);
  return _mm512_maskz_loadu_ps(lanes(lo - c, hi - c), q + c);
}

void input_transform_avx512(int64_t kc, const float* src, int64_t chan_stride, int64_t H,
                            int64_t W, int64_t row0, int64_t col0, int64_t len, float* dst,
                            int64_t xi_stride, int64_t nr) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const int64_t lo = -col0, hi = W - col0;  // the image's columns, relative to col0
  for (int64_t p = 0; p < kc; ++p, src += chan_stride) {
    const float* rows[4];
    for (int64_t r = 0; r < 4; ++r) {
      const int64_t ih = row0 + r;
      rows[r] = ih < 0 || ih >= H ? nullptr : src + ih * W + col0;
    }
    for (int64_t j0 = 0; j0 < len; j0 += 16) {
      const __mmask16 keep = lanes(0, len - j0);
      __m512 c[4][4];  // c[r][b]: row r of the 16 patches times B
      for (int r = 0; r < 4; ++r) {
        __m512 d0 = _mm512_setzero_ps(), d1 = d0, d2 = d0, d3 = d0;
        if (rows[r]) {
          const int64_t c0 = 2 * j0;
          const __m512 a = load_cols(rows[r], c0, lo, hi), b = load_cols(rows[r], c0 + 16, lo, hi);
          const __m512 a2 = load_cols(rows[r], c0 + 2, lo, hi);
          const __m512 b2 = load_cols(rows[r], c0 + 18, lo, hi);
          d0 = _mm512_permutex2var_ps(a, even, b);
          d1 = _mm512_permutex2var_ps(a, odd, b);
          d2 = _mm512_permutex2var_ps(a2, even, b2);
          d3 = _mm512_permutex2var_ps(a2, odd, b2);
        }
        c[r][0] = _mm512_sub_ps(d0, d2);
        c[r][1] = _mm512_add_ps(d1, d2);
        c[r][2] = _mm512_sub_ps(d2, d1);
        c[r][3] = _mm512_sub_ps(d1, d3);
      }
      float* d = dst + p * nr + j0;
      for (int b = 0; b < 4; ++b) {
        _mm512_mask_storeu_ps(d + (0 + b) * xi_stride, keep, _mm512_sub_ps(c[0][b], c[2][b]));
        _mm512_mask_storeu_ps(d + (4 + b) * xi_stride, keep, _mm512_add_ps(c[1][b], c[2][b]));
        _mm512_mask_storeu_ps(d + (8 + b) * xi_stride, keep, _mm512_sub_ps(c[2][b], c[1][b]));
        _mm512_mask_storeu_ps(d + (12 + b) * xi_stride, keep, _mm512_sub_ps(c[1][b], c[3][b]));
      }
    }
  }
}

void output_transform_avx512(int64_t kn, const float* src, int64_t xi_stride, int64_t ld,
                             int64_t len, const float* bias, float* dst, int64_t chan_stride,
                             int64_t row_stride, int64_t rows, int64_t cols) {
  // Lane 2 t of the first half is x[t], lane 2 t + 1 is y[t]; the second half from t = 8.
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
  for (int64_t k = 0; k < kn; ++k, src += ld, dst += chan_stride) {
    const __m512 bk = _mm512_set1_ps(bias ? bias[k] : 0.0f);
    for (int64_t j0 = 0; j0 < len; j0 += 16) {
      const __mmask16 keep = lanes(0, len - j0);
      __m512 r0[4], r1[4];  // A^T m
      for (int c = 0; c < 4; ++c) {
        const __m512 m0 = _mm512_maskz_loadu_ps(keep, src + c * xi_stride + j0);
        const __m512 m1 = _mm512_maskz_loadu_ps(keep, src + (4 + c) * xi_stride + j0);
        const __m512 m2 = _mm512_maskz_loadu_ps(keep, src + (8 + c) * xi_stride + j0);
        const __m512 m3 = _mm512_maskz_loadu_ps(keep, src + (12 + c) * xi_stride + j0);
        r0[c] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        r1[c] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
      }
      const __mmask16 keep0 = lanes(0, cols - 2 * j0), keep1 = lanes(0, cols - 2 * j0 - 16);
      for (int64_t i = 0; i < rows; ++i) {
        const __m512* r = i == 0 ? r0 : r1;
        const __m512 y0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(r[0], r[1]), r[2]), bk);
        const __m512 y1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(r[1], r[2]), r[3]), bk);
        float* o = dst + i * row_stride + 2 * j0;
        _mm512_mask_storeu_ps(o, keep0, _mm512_permutex2var_ps(y0, first, y1));
        _mm512_mask_storeu_ps(o + 16, keep1, _mm512_permutex2var_ps(y0, second, y1));
      }
    }
  }
}
#endif

}  // namespace

#if defined(__AVX512F__)
#define DC_WINOGRAD_F32(NAME) NAME##_avx512
#else
#define DC_WINOGRAD_F32(NAME) NAME<float>
#endif

void winograd_input_f32(int64_t kc, const float* src, int64_t chan_stride, int64_t H, int64_t W,
                        int64_t row0, int64_t col0, int64_t len, float* dst, int64_t xi_stride,
                        int64_t nr) {
  DC_WINOGRAD_F32(input_transform)(kc, src, chan_stride, H, W, row0, col0, len, dst, xi_stride,
                                   nr);
}
void winograd_input_f64(int64_t kc, const double* src, int64_t chan_stride, int64_t H, int64_t W,
                        int64_t row0, int64_t col0, int64_t len, double* dst, int64_t xi_stride,
                        int64_t nr) {
  input_transform<double>(kc, src, chan_stride, H, W, row0, col0, len, dst, xi_stride, nr);
}
void winograd_output_f32(int64_t kn, const float* src, int64_t xi_stride, int64_t ld, int64_t len,
                         const float* bias, float* dst, int64_t chan_stride, int64_t row_stride,
                         int64_t rows, int64_t cols) {
  DC_WINOGRAD_F32(output_transform)(kn, src, xi_stride, ld, len, bias, dst, chan_stride,
                                    row_stride, rows, cols);
}
void winograd_output_f64(int64_t kn, const double* src, int64_t xi_stride, int64_t ld,
                         int64_t len, const double* bias, double* dst, int64_t chan_stride,
                         int64_t row_stride, int64_t rows, int64_t cols) {
  output_transform<double>(kn, src, xi_stride, ld, len, bias, dst, chan_stride, row_stride, rows,
                           cols);
}
#undef DC_WINOGRAD_F32

void winograd_output_adjoint_f32(int64_t kn, const float* src, int64_t chan_stride,
                                 int64_t row_stride, int64_t rows, int64_t cols, int64_t len,
                                 float* dst, int64_t xi_stride, int64_t ld) {
  output_adjoint(kn, src, chan_stride, row_stride, rows, cols, len, dst, xi_stride, ld);
}
void winograd_output_adjoint_f64(int64_t kn, const double* src, int64_t chan_stride,
                                 int64_t row_stride, int64_t rows, int64_t cols, int64_t len,
                                 double* dst, int64_t xi_stride, int64_t ld) {
  output_adjoint(kn, src, chan_stride, row_stride, rows, cols, len, dst, xi_stride, ld);
}

}  // namespace dc::cpu::DC_ISA_NS
