// Scalar math written so the compiler can vectorise it (no calls, only selects).
// Included only by csrc/kernels/cpu/vec/*.cpp, inside the per-ISA namespace, so each ISA gets
// its own copy (see Note [Per-ISA kernels]).
// The includer provides <cmath>, <cstdint> and <cstring> before opening its namespace.

#include "kernels/host_device.h"

// The bits of `from` read as a To of the same size (std::bit_cast of C++20). memcpy is the
// defined way to do it, and compiles to a register move.
template <typename To, typename From>
DC_HD inline To bit_cast(From from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast needs types of the same size");
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}
DC_HD inline float bits_to_float(int32_t i) { return bit_cast<float>(i); }
DC_HD inline int32_t float_to_bits(float f) { return bit_cast<int32_t>(f); }

// exp for float32, ~1 ulp: exp(x) = 2^n * e^r with n = round(x / ln 2), |r| <= ln2 / 2, and a
// degree-6 polynomial for e^r (Cephes coefficients). The rounding uses the 1.5 * 2^23 trick so
// that it vectorises. 2^n is applied as two factors, so the whole range works: up to the
// largest float whose exp is finite (88.72283) and down into the subnormals (-103.97, below
// which exp rounds to 0). Beyond it the result is exactly inf or 0; NaN propagates.
DC_HD inline float exp_f32(float x) {
  const float hi = 88.7228317f, lo = -103.972084f;
  // No clamping: out-of-range lanes compute garbage (in unsigned arithmetic, so no UB) that
  // the final select replaces; this keeps the vectorised body short.
  const float shifter = 12582912.0f;  // 1.5 * 2^23
  const float t = x * 1.44269504088896341f + shifter;
  const uint32_t n = static_cast<uint32_t>(float_to_bits(t)) -
                     static_cast<uint32_t>(float_to_bits(shifter));
  const float fn = t - shifter;
  float r = x - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  // 2^n as two factors so that n = 128 (x near the top of the range) does not overflow and
  // subnormal results come out right.
  const uint32_t n1 = static_cast<uint32_t>(static_cast<int32_t>(n) >> 1), n2 = n - n1;
  const float y = (p * r * r + r + 1.0f) *
                  bits_to_float(static_cast<int32_t>((n1 + 127u) << 23)) *
                  bits_to_float(static_cast<int32_t>((n2 + 127u) << 23));
  // The range selects as bit masks: as a ternary GCC vectorises it only under AVX-512.
  const uint32_t over = 0u - static_cast<uint32_t>(x > hi), under = 0u - static_cast<uint32_t>(x < lo);
  const uint32_t bits = (static_cast<uint32_t>(float_to_bits(y)) & ~(over | under)) | (over & 0x7f800000u);
  return bits_to_float(static_cast<int32_t>(bits));
}
DC_HD inline double exp_any(double x) { return std::exp(x); }
DC_HD inline float exp_any(float x) { return exp_f32(x); }
