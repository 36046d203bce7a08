// The implicit-im2col segment pack (contract in csrc/kernels/cpu/conv_pack.h), compiled once
// per ISA (Note [Per-ISA kernels]). With AVX-512 a segment row is at most two masked loads (or,
// for a horizontal stride, two masked gathers) and two masked stores: the load mask selects the
// in-range input pixels (the rest load as zero, without touching memory), the store mask the
// segment's columns.
#include <cstdint>

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
// Bits [lo, hi) of a 32-bit mask (none when hi <= lo).
inline uint32_t range_mask(int32_t lo, int32_t hi) {
  return hi > lo ? static_cast<uint32_t>((uint64_t(1) << hi) - (uint64_t(1) << lo)) : 0u;
}
#endif

}  // namespace

void conv_pack_segment_f32(int64_t kc, int64_t kk, int64_t tap0, const float* src,
                           int64_t chan_stride, const int64_t* tap_off, const int32_t* tap_lo,
                           const int32_t* tap_hi, int64_t sw, int64_t len, float* dst,
                           int64_t nr) {
#if defined(__AVX512F__)
  if (len <= 32 && (sw == 1 || 32 * sw < (int64_t(1) << 30))) {
    const uint32_t keep = range_mask(0, static_cast<int32_t>(len));
    const __mmask16 k0 = static_cast<__mmask16>(keep), k1 = static_cast<__mmask16>(keep >> 16);
    if (sw == 1) {
      for_each_row(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi,
                   [&](int64_t p, const float* s, int32_t lo, int32_t hi) {
                     const uint32_t m = range_mask(lo, hi);
                     float* d = dst + p * nr;
                     _mm512_mask_storeu_ps(d, k0, _mm512_maskz_loadu_ps(static_cast<__mmask16>(m), s));
                     if (k1)
                       _mm512_mask_storeu_ps(
                           d + 16, k1, _mm512_maskz_loadu_ps(static_cast<__mmask16>(m >> 16), s + 16));
                   });
      return;
    }
    // Lane t reads s[t * sw]: element offsets t * sw for the two halves of the segment.
    const __m512i step = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(static_cast<int32_t>(sw)));
    const __m512i step_hi = _mm512_add_epi32(step, _mm512_set1_epi32(static_cast<int32_t>(16 * sw)));
    for_each_row(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi,
                 [&](int64_t p, const float* s, int32_t lo, int32_t hi) {
                   const uint32_t m = range_mask(lo, hi);
                   float* d = dst + p * nr;
                   _mm512_mask_storeu_ps(d, k0,
                                         _mm512_mask_i32gather_ps(_mm512_setzero_ps(),
                                                                  static_cast<__mmask16>(m), step, s, 4));
                   if (k1)
                     _mm512_mask_storeu_ps(
                         d + 16, k1,
                         _mm512_mask_i32gather_ps(_mm512_setzero_ps(), static_cast<__mmask16>(m >> 16),
                                                  step_hi, s, 4));
                 });
    return;
  }
#endif
  pack_scalar(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi, sw, len, dst, nr);
}

void conv_pack_segment_f64(int64_t kc, int64_t kk, int64_t tap0, const double* src,
                           int64_t chan_stride, const int64_t* tap_off, const int32_t* tap_lo,
                           const int32_t* tap_hi, int64_t sw, int64_t len, double* dst,
                           int64_t nr) {
#if defined(__AVX512F__)
  if (len <= 16 && sw == 1) {
    const uint32_t keep = range_mask(0, static_cast<int32_t>(len));
    const __mmask8 k0 = static_cast<__mmask8>(keep), k1 = static_cast<__mmask8>(keep >> 8);
    for_each_row(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi,
                 [&](int64_t p, const double* s, int32_t lo, int32_t hi) {
                   const uint32_t m = range_mask(lo, hi);
                   double* d = dst + p * nr;
                   _mm512_mask_storeu_pd(d, k0, _mm512_maskz_loadu_pd(static_cast<__mmask8>(m), s));
                   if (k1)
                     _mm512_mask_storeu_pd(
                         d + 8, k1, _mm512_maskz_loadu_pd(static_cast<__mmask8>(m >> 8), s + 8));
                 });
    return;
  }
#endif
  pack_scalar(kc, kk, tap0, src, chan_stride, tap_off, tap_lo, tap_hi, sw, len, dst, nr);
}

}  // namespace dc::cpu::DC_ISA_NS
