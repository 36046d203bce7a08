// The Winograd tile transforms (contract in csrc/kernels/cpu/winograd.h), compiled once per ISA
// (Note [Per-ISA kernels]). They run along a row of tiles. F(2x2, 3x3) in float with AVX-512
// takes 16 tiles per vector: an input row's 34 columns under 16 tiles are four loads, split into
// the patches' four columns by permutes (a tile starts every second column), and the output
// tiles' two columns are interleaved back by permutes; the image's edges are masked loads and
// stores, whose masked-off lanes touch no memory. F(2x2, 3x3) in the other ISAs and in double
// runs the same arithmetic per tile from the templates below; F(4x4, 3x3), whose per-tile form
// the compiler left scalar, runs in unit-stride passes (the *_passes templates). Both take the
// tile shape's matrices from winograd.h (WinogradF2, WinogradF4); input_any and its siblings
// pick the implementation.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/cpu/winograd.h"

namespace dc::cpu::DC_ISA_NS {
namespace {

constexpr int64_t kRun = kWinogradMaxRun;

// V = B^T d B of one a x a patch, d(r, c) giving the patch's pixels, written to
// dst[(a r + b) * xi_stride].
template <typename Tile, typename T, typename Pixel>
inline void transform_patch(Pixel d, T* dst, int64_t xi_stride) {
  constexpr int a = Tile::alpha;
  T c[a][a];  // c[r]: row r of the patch times B
  for (int r = 0; r < a; ++r) {
    T row[a];
    for (int k = 0; k < a; ++k) row[k] = d(r, k);
    Tile::bt(row, c[r]);
  }
  for (int b = 0; b < a; ++b) {  // B^T across the rows
    T col[a], v[a];
    for (int r = 0; r < a; ++r) col[r] = c[r][b];
    Tile::bt(col, v);
    for (int r = 0; r < a; ++r) dst[(a * r + b) * xi_stride] = v[r];
  }
}

template <typename Tile, typename T>
void input_transform(int64_t kc, const T* src, int64_t chan_stride, int64_t H, int64_t W,
                     int64_t row0, int64_t col0, int64_t len, T* dst, int64_t xi_stride,
                     int64_t nr) {
  constexpr int m = Tile::m, a = Tile::alpha;
  // Tiles [jlo, jhi) read only columns inside the image: the vector loop reads them in place
  // (rows outside the image read a zero row). The tiles at the edges, where the padding is,
  // go one by one.
  alignas(64) static constexpr T zeros[m * kRun + a] = {};
  const int64_t jlo = std::clamp<int64_t>((m - 1 - col0) / m, 0, len);
  const int64_t jhi =
      std::clamp<int64_t>(W - a - col0 >= 0 ? (W - a - col0) / m + 1 : 0, jlo, len);
  for (int64_t p = 0; p < kc; ++p, src += chan_stride) {
    const T* rows[a];
    for (int64_t r = 0; r < a; ++r) {
      const int64_t ih = row0 + r;
      rows[r] = ih < 0 || ih >= H ? nullptr : src + ih * W + col0;
    }
    T* d = dst + p * nr;
    auto edge_tile = [&](int64_t j) {
      transform_patch<Tile, T>([&](int r, int c) {
        const int64_t col = col0 + m * j + c;
        return rows[r] && col >= 0 && col < W ? rows[r][m * j + c] : T(0);
      }, d + j, xi_stride);
    };
    for (int64_t j = 0; j < jlo; ++j) edge_tile(j);
    const T* q[a];
    for (int r = 0; r < a; ++r) q[r] = rows[r] ? rows[r] : zeros;
    // The positions' runs never overlap (xi_stride >= len), which the compiler cannot see.
#pragma GCC ivdep
    for (int64_t j = jlo; j < jhi; ++j)
      transform_patch<Tile, T>([&](int r, int c) { return q[r][m * j + c]; }, d + j, xi_stride);
    for (int64_t j = jhi; j < len; ++j) edge_tile(j);
  }
}

template <typename Tile, typename T>
void output_transform(int64_t kn, const T* src, int64_t xi_stride, int64_t ld, int64_t len,
                      const T* bias, T* dst, int64_t chan_stride, int64_t row_stride,
                      int64_t rows, int64_t cols) {
  constexpr int m = Tile::m, a = Tile::alpha;
  // Whole tiles are written in place; a run cut by the image's edge goes through a buffer.
  alignas(64) T buf[m][m * kRun];
  const bool whole = rows == m && cols == m * len;
  for (int64_t k = 0; k < kn; ++k, src += ld, dst += chan_stride) {
    const T b = bias ? bias[k] : T(0);
    T* o[m];
    for (int i = 0; i < m; ++i) o[i] = whole ? dst + i * row_stride : buf[i];
#pragma GCC ivdep
    for (int64_t j = 0; j < len; ++j) {
      T r[m][a];  // A^T m, column by column
      for (int c = 0; c < a; ++c) {
        T col[a], y[m];
        for (int i = 0; i < a; ++i) col[i] = src[(a * i + c) * xi_stride + j];
        Tile::at(col, y);
        for (int i = 0; i < m; ++i) r[i][c] = y[i];
      }
      for (int i = 0; i < m; ++i) {  // (A^T m) A, row by row
        T y[m];
        Tile::at(r[i], y);
        for (int s = 0; s < m; ++s) o[i][m * j + s] = y[s] + b;
      }
    }
    if (whole) continue;
    for (int64_t i = 0; i < rows; ++i) std::memcpy(dst + i * row_stride, buf[i], cols * sizeof(T));
  }
}

template <typename Tile, typename T>
void output_adjoint(int64_t kn, const T* src, int64_t chan_stride, int64_t row_stride,
                    int64_t rows, int64_t cols, int64_t len, T* dst, int64_t xi_stride,
                    int64_t ld) {
  constexpr int m = Tile::m, a = Tile::alpha;
  // Whole tiles are read in place; a run cut by the image's edge is copied with zeros first.
  alignas(64) T pad[m][m * kRun];
  const bool whole = rows == m && cols == m * len;
  for (int64_t k = 0; k < kn; ++k, src += chan_stride, dst += ld) {
    const T* g[m];
    for (int i = 0; i < m; ++i) g[i] = src + i * row_stride;
    if (!whole) {
      for (int64_t r = 0; r < m; ++r) {
        for (int64_t c = 0; c < m * len; ++c)
          pad[r][c] = r < rows && c < cols ? src[r * row_stride + c] : T(0);
        g[r] = pad[r];
      }
    }
#pragma GCC ivdep
    for (int64_t j = 0; j < len; ++j) {
      T w[a][m];  // A g, column by column
      for (int s = 0; s < m; ++s) {
        T col[m], z[a];
        for (int i = 0; i < m; ++i) col[i] = g[i][m * j + s];
        Tile::a(col, z);
        for (int i = 0; i < a; ++i) w[i][s] = z[i];
      }
      for (int i = 0; i < a; ++i) {  // (A g) A^T, row by row
        T z[a];
        Tile::a(w[i], z);
        for (int b = 0; b < a; ++b) dst[(a * i + b) * xi_stride + j] = z[b];
      }
    }
  }
}

// The same three transforms in passes that the compiler vectorises across the tiles: each
// pass reads and writes unit-stride runs, except the deinterleave (a tile starts every m-th
// column), which is a plain grouped copy. One channel's run of len tiles spans m len + 2
// columns.
template <typename T, int m>
void deinterleave(const T* row, int64_t groups, T (*ph)[kRun + 1]) {
  for (int64_t j = 0; j < groups; ++j)
    for (int k = 0; k < m; ++k) ph[k][j] = row[m * j + k];
}

template <typename Tile, typename T>
void input_transform_passes(int64_t kc, const T* src, int64_t chan_stride, int64_t H, int64_t W,
                            int64_t row0, int64_t col0, int64_t len, T* dst, int64_t xi_stride,
                            int64_t nr) {
  constexpr int m = Tile::m, a = Tile::alpha;
  const int64_t ncols = m * len + 2, groups = len + 1;  // groups of m columns, the last partial
  alignas(64) static constexpr T zeros[m * (kRun + 1)] = {};  // a row outside the image
  alignas(64) T t[a][m * (kRun + 1)];                          // B^T d, column by column
  alignas(64) T ph[m][kRun + 1];
  // The run's columns inside the image, [clo, chi) relative to col0: B^T d is read from the
  // image there and is zero elsewhere (a column of zeros transforms to zeros).
  const int64_t clo = std::clamp<int64_t>(-col0, 0, ncols);
  const int64_t chi = std::clamp<int64_t>(W - col0, clo, ncols);
  for (int r = 0; r < a; ++r) {
    std::fill(t[r], t[r] + clo, T(0));
    std::fill(t[r] + chi, t[r] + m * groups, T(0));
  }
  for (int64_t p = 0; p < kc; ++p, src += chan_stride) {
    const T* q[a];
    for (int r = 0; r < a; ++r) {
      const int64_t ih = row0 + r;
      q[r] = ih < 0 || ih >= H ? zeros : src + ih * W + col0;
    }
    for (int64_t c = clo; c < chi; ++c) {
      T z[a], o[a];
      for (int r = 0; r < a; ++r) z[r] = q[r][c];
      Tile::bt(z, o);
      for (int r = 0; r < a; ++r) t[r][c] = o[r];
    }
    for (int r = 0; r < a; ++r) {
      deinterleave<T, m>(t[r], groups, ph);
      T* d = dst + p * nr + a * r * xi_stride;
#pragma GCC ivdep
      for (int64_t j = 0; j < len; ++j) {
        T z[a], o[a];
        for (int k = 0; k < a; ++k) z[k] = ph[k % m][j + k / m];
        Tile::bt(z, o);
        for (int b = 0; b < a; ++b) d[b * xi_stride + j] = o[b];
      }
    }
  }
}

template <typename Tile, typename T>
void output_transform_passes(int64_t kn, const T* src, int64_t xi_stride, int64_t ld,
                             int64_t len, const T* bias, T* dst, int64_t chan_stride,
                             int64_t row_stride, int64_t rows, int64_t cols) {
  constexpr int m = Tile::m, a = Tile::alpha;
  alignas(64) T r[m][a][kRun];  // A^T m: r[i][b][j]
  alignas(64) T y[m * kRun];
  for (int64_t k = 0; k < kn; ++k, src += ld, dst += chan_stride) {
    const T bk = bias ? bias[k] : T(0);
    for (int b = 0; b < a; ++b) {
#pragma GCC ivdep
      for (int64_t j = 0; j < len; ++j) {
        T z[a], o[m];
        for (int i = 0; i < a; ++i) z[i] = src[(a * i + b) * xi_stride + j];
        Tile::at(z, o);
        for (int i = 0; i < m; ++i) r[i][b][j] = o[i];
      }
    }
    for (int64_t i = 0; i < rows; ++i) {
      T* out = cols == m * len ? dst + i * row_stride : y;
      for (int64_t j = 0; j < len; ++j) {
        T z[a], o[m];
        for (int b = 0; b < a; ++b) z[b] = r[i][b][j];
        Tile::at(z, o);
        for (int s = 0; s < m; ++s) out[m * j + s] = o[s] + bk;
      }
      if (out == y) std::memcpy(dst + i * row_stride, y, cols * sizeof(T));
    }
  }
}

template <typename Tile, typename T>
void output_adjoint_passes(int64_t kn, const T* src, int64_t chan_stride, int64_t row_stride,
                           int64_t rows, int64_t cols, int64_t len, T* dst, int64_t xi_stride,
                           int64_t ld) {
  constexpr int m = Tile::m, a = Tile::alpha;
  alignas(64) T w[m][a][kRun];  // g A^T, row by row: w[i][b][j]
  alignas(64) T ph[m][kRun + 1];
  alignas(64) T line[m * kRun];
  for (int64_t k = 0; k < kn; ++k, src += chan_stride, dst += ld) {
    for (int i = 0; i < m; ++i) {
      const T* row = src + i * row_stride;
      if (i >= rows || cols < m * len) {
        for (int64_t c = 0; c < m * len; ++c) line[c] = i < rows && c < cols ? row[c] : T(0);
        row = line;
      }
      deinterleave<T, m>(row, len, ph);
#pragma GCC ivdep
      for (int64_t j = 0; j < len; ++j) {
        T z[m], o[a];
        for (int s = 0; s < m; ++s) z[s] = ph[s][j];
        Tile::a(z, o);
        for (int b = 0; b < a; ++b) w[i][b][j] = o[b];
      }
    }
    for (int b = 0; b < a; ++b) {
#pragma GCC ivdep
      for (int64_t j = 0; j < len; ++j) {
        T z[m], o[a];
        for (int i = 0; i < m; ++i) z[i] = w[i][b][j];
        Tile::a(z, o);
        for (int i = 0; i < a; ++i) dst[(a * i + b) * xi_stride + j] = o[i];
      }
    }
  }
}

#if defined(__AVX512F__)
constexpr bool kAvx512 = true;

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
#else
constexpr bool kAvx512 = false;
// Defined only in the AVX-512 build; the other builds never instantiate a call to these.
template <typename T>
void input_transform_avx512(int64_t kc, const T* src, int64_t chan_stride, int64_t H, int64_t W,
                            int64_t row0, int64_t col0, int64_t len, T* dst, int64_t xi_stride,
                            int64_t nr);
template <typename T>
void output_transform_avx512(int64_t kn, const T* src, int64_t xi_stride, int64_t ld,
                             int64_t len, const T* bias, T* dst, int64_t chan_stride,
                             int64_t row_stride, int64_t rows, int64_t cols);
#endif

// Which transforms serve a tile shape and type: F(4x4, 3x3) the passes; F(2x2, 3x3) the
// intrinsics above in float with AVX-512, the per-tile templates otherwise.
template <typename Tile, typename T>
void input_any(int64_t kc, const T* src, int64_t chan_stride, int64_t H, int64_t W,
               int64_t row0, int64_t col0, int64_t len, T* dst, int64_t xi_stride, int64_t nr) {
  if constexpr (std::is_same_v<Tile, WinogradF4>)
    input_transform_passes<Tile>(kc, src, chan_stride, H, W, row0, col0, len, dst, xi_stride, nr);
  else if constexpr (kAvx512 && std::is_same_v<T, float>)
    input_transform_avx512(kc, src, chan_stride, H, W, row0, col0, len, dst, xi_stride, nr);
  else
    input_transform<Tile>(kc, src, chan_stride, H, W, row0, col0, len, dst, xi_stride, nr);
}
template <typename Tile, typename T>
void output_any(int64_t kn, const T* src, int64_t xi_stride, int64_t ld, int64_t len,
                const T* bias, T* dst, int64_t chan_stride, int64_t row_stride, int64_t rows,
                int64_t cols) {
  if constexpr (std::is_same_v<Tile, WinogradF4>)
    output_transform_passes<Tile>(kn, src, xi_stride, ld, len, bias, dst, chan_stride, row_stride,
                                  rows, cols);
  else if constexpr (kAvx512 && std::is_same_v<T, float>)
    output_transform_avx512(kn, src, xi_stride, ld, len, bias, dst, chan_stride, row_stride, rows,
                            cols);
  else
    output_transform<Tile>(kn, src, xi_stride, ld, len, bias, dst, chan_stride, row_stride, rows,
                           cols);
}
template <typename Tile, typename T>
void adjoint_any(int64_t kn, const T* src, int64_t chan_stride, int64_t row_stride, int64_t rows,
                 int64_t cols, int64_t len, T* dst, int64_t xi_stride, int64_t ld) {
  if constexpr (std::is_same_v<Tile, WinogradF4>)
    output_adjoint_passes<Tile>(kn, src, chan_stride, row_stride, rows, cols, len, dst, xi_stride,
                                ld);
  else
    output_adjoint<Tile>(kn, src, chan_stride, row_stride, rows, cols, len, dst, xi_stride, ld);
}

}  // namespace

#define DC_WINOGRAD_ENTRIES(NAME, TILE, T, SUFFIX)                                               \
  void NAME##_input_##SUFFIX(int64_t kc, const T* src, int64_t chan_stride, int64_t H, int64_t W, \
                             int64_t row0, int64_t col0, int64_t len, T* dst, int64_t xi_stride, \
                             int64_t nr) {                                                       \
    input_any<TILE>(kc, src, chan_stride, H, W, row0, col0, len, dst, xi_stride, nr);            \
  }                                                                                              \
  void NAME##_output_##SUFFIX(int64_t kn, const T* src, int64_t xi_stride, int64_t ld,           \
                              int64_t len, const T* bias, T* dst, int64_t chan_stride,           \
                              int64_t row_stride, int64_t rows, int64_t cols) {                  \
    output_any<TILE>(kn, src, xi_stride, ld, len, bias, dst, chan_stride, row_stride, rows,      \
                     cols);                                                                      \
  }                                                                                              \
  void NAME##_output_adjoint_##SUFFIX(int64_t kn, const T* src, int64_t chan_stride,             \
                                      int64_t row_stride, int64_t rows, int64_t cols,            \
                                      int64_t len, T* dst, int64_t xi_stride, int64_t ld) {      \
    adjoint_any<TILE>(kn, src, chan_stride, row_stride, rows, cols, len, dst, xi_stride, ld);    \
  }
DC_WINOGRAD_ENTRIES(winograd, WinogradF2, float, f32)
DC_WINOGRAD_ENTRIES(winograd, WinogradF2, double, f64)
DC_WINOGRAD_ENTRIES(winograd4, WinogradF4, float, f32)
DC_WINOGRAD_ENTRIES(winograd4, WinogradF4, double, f64)
#undef DC_WINOGRAD_ENTRIES

}  // namespace dc::cpu::DC_ISA_NS
