#pragma once
// The 16-bit floating types: bfloat16 (8 exponent bits, 7 mantissa bits: float32's range) and
// IEEE float16 (5 and 10: more precision, range to 65504). Storage only: arithmetic converts to
// float, computes there and rounds back once, which is how torch's CPU kernels compute on them
// too (Note [Reduced-precision compute] in kernels/cpu/loops.cpp).
//
// Conversions round to nearest, ties to even, and keep NaN a NaN (a quiet one) and infinities
// infinite; float16 rounds overflow to infinity and keeps subnormals. They are constexpr-free
// bit manipulations so every ISA build can inline them, and DC_HD, so the CUDA kernels (casts,
// the tensor-core GEMM) convert with the same code.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/host_device.h"

namespace dc {

namespace half_detail {
DC_HD inline uint32_t bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
DC_HD inline float from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}
}  // namespace half_detail

DC_HD inline uint16_t float_to_bf16_bits(float f) {
  const uint32_t u = half_detail::bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN
  // Round to nearest even: add 0x7fff plus the lowest kept bit, then truncate.
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
DC_HD inline float bf16_bits_to_float(uint16_t h) { return half_detail::from_bits(uint32_t(h) << 16); }

DC_HD inline uint16_t float_to_f16_bits(float f) {
  const uint32_t u = half_detail::bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (a < 0x38800000u) {
    // A float16 subnormal (or zero): scale so the float addition rounds at 2^-24, by the
    // hardware's round-to-nearest-even.
    const float r = half_detail::from_bits(a) + 0.5f;  // 0.5 = 2^-1: ulp there is 2^-24
    return static_cast<uint16_t>(sign | (half_detail::bits(r) - 0x3f000000u));
  }
  const uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}
DC_HD inline float f16_bits_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return half_detail::from_bits(sign | 0x7f800000u | (m << 13));
  if (e == 0) {  // zero or subnormal: m * 2^-24
    const float v = static_cast<float>(m) * 5.9604644775390625e-08f;
    return half_detail::from_bits(half_detail::bits(v) | sign);
  }
  return half_detail::from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

// The storage types: the 16 bits of one format, converting implicitly to float and explicitly
// from it (rounding).
template <uint16_t (*Encode)(float), float (*Decode)(uint16_t)>
struct Float16Bits {
  uint16_t x = 0;
  Float16Bits() = default;
  explicit Float16Bits(float f) : x(Encode(f)) {}
  static Float16Bits from_bits(uint16_t b) {
    Float16Bits h;
    h.x = b;
    return h;
  }
  operator float() const { return Decode(x); }
};
using BFloat16 = Float16Bits<float_to_bf16_bits, bf16_bits_to_float>;
using Half = Float16Bits<float_to_f16_bits, f16_bits_to_float>;

// Floating types as the kernels see them: the C++ ones and the two storage types.
template <typename T>
inline constexpr bool is_float_v = std::is_floating_point_v<T> || std::is_same_v<T, BFloat16> ||
                                   std::is_same_v<T, Half>;

static_assert(sizeof(BFloat16) == 2 && sizeof(Half) == 2, "16-bit storage types");

}  // namespace dc
