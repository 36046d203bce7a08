#pragma once
// The inner loop of the convolutions' implicit-im2col pack (Note [Convolution as implicit
// GEMM] in conv_implicit.cpp), compiled once per ISA (csrc/kernels/cpu/vec/conv_pack.cpp).
//
// Packs one column segment of a B micro-panel: for p < kc, with tap = (tap0 + p) % kk and
// ch = the number of times the tap index has wrapped past kk - 1,
//   dst[p * nr + t] = src[ch * chan_stride + tap_off[tap] + t * sw]   for tap_lo[tap] <= t < tap_hi[tap]
//   dst[p * nr + t] = 0                                               for the other t < len,
// where 0 <= tap_lo, tap_hi <= len <= nr. Only the in-range elements of src are read.
//
// conv_pack_rows packs a micro-panel of the channels-last weight gradient (Note [Weight
// gradient in channels-last] in conv_channels_last.cpp), each of its kc rows a run of nr elements:
//   dst[p * nr + t] = src[row_off[p] + t]   for p < kc, t < nr.
#include <cstdint>

namespace dc::cpu {

#define DC_CONV_PACK_DECLS(ISA)                                                                 \
  namespace ISA {                                                                               \
  void conv_pack_segment_f32(int64_t kc, int64_t kk, int64_t tap0, const float* src,             \
                             int64_t chan_stride, const int64_t* tap_off, const int32_t* tap_lo, \
                             const int32_t* tap_hi, int64_t sw, int64_t len, float* dst,         \
                             int64_t nr);                                                        \
  void conv_pack_segment_f64(int64_t kc, int64_t kk, int64_t tap0, const double* src,            \
                             int64_t chan_stride, const int64_t* tap_off, const int32_t* tap_lo, \
                             const int32_t* tap_hi, int64_t sw, int64_t len, double* dst,        \
                             int64_t nr);                                                        \
  void conv_pack_rows_f32(int64_t kc, const float* src, const int64_t* row_off, float* dst,      \
                          int64_t nr);                                                           \
  void conv_pack_rows_f64(int64_t kc, const double* src, const int64_t* row_off, double* dst,    \
                          int64_t nr);                                                           \
  }

DC_CONV_PACK_DECLS(avx512)
DC_CONV_PACK_DECLS(avx2)
DC_CONV_PACK_DECLS(generic)

#undef DC_CONV_PACK_DECLS

}  // namespace dc::cpu
