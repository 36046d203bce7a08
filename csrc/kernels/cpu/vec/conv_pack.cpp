// The implicit-im2col segment pack (contract in csrc/kernels/cpu/conv_pack.h), compiled once
// per ISA (Note [Per-ISA kernels]). With AVX-512 a segment row is a masked load (or, for a
// horizontal stride, a masked gather) and a masked store per 64 bytes: the load mask selects the
// in-range input pixels (the rest load as zero, without touching memory), the store mask the
// segment's columns.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/cpu/conv_pack.h"

namespace dc::cpu::DC_ISA_NS {
namespace {

// Walks the kc rows of a segment: f(p, row pointer for t = 0, lo, hi).
template <typename T, typename F>
inline void for_each_row(int64_t kc, int64_t kk, int64_t tap0, const T* src, int64_t chan_stride,
                         const int64_t* tap_off, const int32_t* tap_lo, const int32_t* tap_hi,
                         F&& f) {
  int64_t tap = tap0;
  for (int64_t p = 0; p < kc; ++p) {
    f(p, src + tap_off[tap], tap_lo[tap], tap_hi[tap]);
    if (++tap == kk) {
      tap = 0;
      src += chan_stride;
    }
  }
}

template <typename T>
void pack_scalar(int64_t kc, int64_t kk, int64_t tap0, const T* src, int64_t chan_stride,
                 const int64_t* tap_off, const int32_t* tap_lo, const int32_t* tap_hi,
                 int64_t sw, int64_t len, T* dst, int64_t nr) {
  for_each_row(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi,
               [&](int64_t p, const T* s, int32_t lo, int32_t hi) {
                 T* d = dst + p * nr;
                 for (int64_t t = 0; t < lo; ++t) d[t] = T(0);
                 if (sw == 1)
                   for (int64_t t = lo; t < hi; ++t) d[t] = s[t];
                 else
                   for (int64_t t = lo; t < hi; ++t) d[t] = s[t * sw];
                 for (int64_t t = hi > lo ? hi : lo; t < len; ++t) d[t] = T(0);
               });
}

#if defined(__AVX512F__)
inline __m512 masked_row(__mmask16 m, const float* s, int64_t sw, __m512i idx) {
  return sw == 1 ? _mm512_maskz_loadu_ps(m, s)
                 : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, s, 4);
}
inline __m512d masked_row(__mmask8 m, const double* s, int64_t sw, __m256i idx) {
  return sw == 1 ? _mm512_maskz_loadu_pd(m, s)
                 : _mm512_mask_i32gather_pd(_mm512_setzero_pd(), m, idx, s, 8);
}
inline void store_row(float* d, __mmask16 k, __m512 v) { _mm512_mask_storeu_ps(d, k, v); }
inline void store_row(double* d, __mmask8 k, __m512d v) { _mm512_mask_storeu_pd(d, k, v); }

// Bits [lo, hi) of a 64-bit mask, for 0 <= lo, hi <= 64 (none if empty).
inline uint64_t bit_range(int64_t lo, int64_t hi) {
  if (hi <= lo) return 0;
  const uint64_t upto_hi = hi >= 64 ? ~uint64_t(0) : (uint64_t(1) << hi) - 1;
  return upto_hi & ~((uint64_t(1) << lo) - 1);
}

// Each row in C pieces of W lanes (len <= C * W <= 64): a masked load (or gather, lane t
// reading s[t * sw]) of the in-range columns, the rest zero, stored under the segment's
// column mask. The row's load mask is one 64-bit range, shifted per piece.
template <int C, typename T, typename Mask, typename Index>
void pack_pieces(int64_t kc, int64_t kk, int64_t tap0, const T* src, int64_t chan_stride,
                 const int64_t* tap_off, const int32_t* tap_lo, const int32_t* tap_hi,
                 int64_t sw, int64_t len, T* dst, int64_t nr, Index idx) {
  constexpr int W = 64 / sizeof(T);
  constexpr uint64_t kLanes = (uint64_t(1) << W) - 1;
  const uint64_t keep_bits = bit_range(0, len);
  Mask keep[C];
  for (int c = 0; c < C; ++c) keep[c] = static_cast<Mask>((keep_bits >> (c * W)) & kLanes);
  for_each_row(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi,
               [&](int64_t p, const T* s, int32_t lo, int32_t hi) {
                 const uint64_t m = bit_range(lo, hi);
                 T* d = dst + p * nr;
#pragma GCC unroll 8
                 for (int c = 0; c < C; ++c)
                   store_row(d + c * W, keep[c],
                             masked_row(static_cast<Mask>((m >> (c * W)) & kLanes),
                                        s + c * W * sw, sw, idx));
               });
}

// Segments of up to 64 columns, in 1, 2, 4 or 8 pieces; false for longer ones.
template <typename T, typename Mask, typename Index>
bool pack_avx512(int64_t kc, int64_t kk, int64_t tap0, const T* src, int64_t chan_stride,
                 const int64_t* tap_off, const int32_t* tap_lo, const int32_t* tap_hi,
                 int64_t sw, int64_t len, T* dst, int64_t nr, Index idx) {
  constexpr int W = 64 / sizeof(T);
  const int64_t pieces = (len + W - 1) / W;
#define DC_PIECES(C)                                                                            \
  if (pieces <= C) {                                                                            \
    pack_pieces<C, T, Mask>(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi, sw, len, dst, \
                            nr, idx);                                                           \
    return true;                                                                                \
  }
  DC_PIECES(1)
  DC_PIECES(2)
  DC_PIECES(4)
  if constexpr (W == 8) DC_PIECES(8)
#undef DC_PIECES
  return false;
}

// Gather offsets t * sw of the lanes of one piece (they fit in int32: callers check).
inline __m512i gather_index(const float*, int64_t sw) {
  return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                            _mm512_set1_epi32(static_cast<int32_t>(sw)));
}
inline __m256i gather_index(const double*, int64_t sw) {
  return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                            _mm256_set1_epi32(static_cast<int32_t>(sw)));
}
template <typename T>
using MaskOf = std::conditional_t<sizeof(T) == 4, __mmask16, __mmask8>;
#endif

template <typename T>
void pack_segment(int64_t kc, int64_t kk, int64_t tap0, const T* src, int64_t chan_stride,
                  const int64_t* tap_off, const int32_t* tap_lo, const int32_t* tap_hi,
                  int64_t sw, int64_t len, T* dst, int64_t nr) {
#if defined(__AVX512F__)
  if (64 * sw < (int64_t(1) << 30) &&
      pack_avx512<T, MaskOf<T>>(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi, sw, len,
                                dst, nr, gather_index(src, sw)))
    return;
#endif
  pack_scalar(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi, sw, len, dst, nr);
}

// conv_pack_rows with the row length known at compile time: whole-vector copies.
template <typename T, int NR>
void pack_rows_fixed(int64_t kc, const T* src, const int64_t* row_off, T* dst) {
  for (int64_t p = 0; p < kc; ++p, dst += NR) std::memcpy(dst, src + row_off[p], NR * sizeof(T));
}

template <typename T>
void pack_rows(int64_t kc, const T* src, const int64_t* row_off, T* dst, int64_t nr) {
  switch (nr * static_cast<int64_t>(sizeof(T))) {
    case 128: return pack_rows_fixed<T, 128 / sizeof(T)>(kc, src, row_off, dst);
    case 64: return pack_rows_fixed<T, 64 / sizeof(T)>(kc, src, row_off, dst);
    case 32: return pack_rows_fixed<T, 32 / sizeof(T)>(kc, src, row_off, dst);
    default:
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t t = 0; t < nr; ++t) dst[p * nr + t] = src[row_off[p] + t];
  }
}

}  // namespace

void conv_pack_rows_f32(int64_t kc, const float* src, const int64_t* row_off, float* dst,
                        int64_t nr) {
  pack_rows(kc, src, row_off, dst, nr);
}
void conv_pack_rows_f64(int64_t kc, const double* src, const int64_t* row_off, double* dst,
                        int64_t nr) {
  pack_rows(kc, src, row_off, dst, nr);
}

void conv_pack_segment_f32(int64_t kc, int64_t kk, int64_t tap0, const float* src,
                           int64_t chan_stride, const int64_t* tap_off, const int32_t* tap_lo,
                           const int32_t* tap_hi, int64_t sw, int64_t len, float* dst,
                           int64_t nr) {
  pack_segment(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi, sw, len, dst, nr);
}

void conv_pack_segment_f64(int64_t kc, int64_t kk, int64_t tap0, const double* src,
                           int64_t chan_stride, const int64_t* tap_off, const int32_t* tap_lo,
                           const int32_t* tap_hi, int64_t sw, int64_t len, double* dst,
                           int64_t nr) {
  pack_segment(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi, sw, len, dst, nr);
}

}  // namespace dc::cpu::DC_ISA_NS
