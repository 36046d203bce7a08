#pragma once
// Accuracy measurement for the vector math functions (csrc/kernels/cpu/vec/vmath.h).
//
// Error is counted in units in the last place of the result type, against a reference of
// higher precision (double for float, long double for double). Results smaller than `floor`
// in magnitude are judged against the ulp at `floor` (1e-6 for float), so a tail such as
// gelu(-10) ~ -8e-23 is judged by its absolute error. NaN must match NaN; an infinite
// reference must be matched exactly.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace dc::vmath_test {

template <typename T>
inline double ulp_at(double v) {
  // The spacing of T-values around |v| (the ulp of the binade v lies in).
  const double a = std::fabs(v);
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  const int digits = std::numeric_limits<T>::digits;  // 24 or 53
  const int min_exp = std::numeric_limits<T>::min_exponent;  // -125 or -1021
  return std::ldexp(1.0, std::max(e, min_exp) - digits);
}

template <typename T, typename R>
inline double ulp_error(T got, R ref, double floor) {
  const bool got_nan = got != got, ref_nan = ref != ref;
  if (got_nan || ref_nan) return got_nan == ref_nan ? 0.0 : INFINITY;
  if (std::isinf(static_cast<double>(ref)) || std::isinf(static_cast<double>(got)))
    return static_cast<double>(got) == static_cast<double>(ref) ? 0.0 : INFINITY;
  const R diff = static_cast<R>(got) - ref;
  const double mag = std::max(std::fabs(static_cast<double>(ref)), floor);
  return std::fabs(static_cast<double>(diff)) / ulp_at<T>(mag);
}

// Special values every function is checked at: signed zeros, infinities, NaN, the smallest
// and largest subnormals and normals, and the largest finite value.
template <typename T>
inline std::vector<T> special_values() {
  using L = std::numeric_limits<T>;
  std::vector<T> v = {T(0),           -T(0),          L::infinity(),   -L::infinity(),
                      L::quiet_NaN(), L::denorm_min(), -L::denorm_min(), L::min(),
                      -L::min(),      L::max(),        -L::max(),        T(1),
                      T(-1),          T(0.5),          T(-0.5),          T(2),
                      T(-2)};
  const T sub_max = L::min() - L::denorm_min();  // the largest subnormal
  v.push_back(sub_max);
  v.push_back(-sub_max);
  return v;
}

// Samples of [lo, hi] dense in every binade: walks the bit patterns of float32 with a fixed
// step, so each binade gets the same number of points whatever its width. Both signs when lo
// is negative. About `count` points (plus the special values when `specials`).
inline std::vector<float> dense_floats(float lo, float hi, int64_t count, bool specials = true) {
  std::vector<float> out;
  auto walk = [&](float a, float b, int64_t n) {  // 0 <= a <= b
    uint32_t ia, ib;
    std::memcpy(&ia, &a, 4);
    std::memcpy(&ib, &b, 4);
    const uint64_t span = uint64_t(ib) - ia;
    const uint64_t step = std::max<uint64_t>(1, span / std::max<int64_t>(n, 1));
    for (uint64_t i = ia; i <= ib; i += step) {
      const uint32_t u = static_cast<uint32_t>(i);
      float f;
      std::memcpy(&f, &u, 4);
      out.push_back(f);
    }
  };
  if (lo >= 0) {
    walk(lo, hi, count);
  } else if (hi <= 0) {
    const size_t start = out.size();
    walk(-hi, -lo, count);
    for (size_t i = start; i < out.size(); ++i) out[i] = -out[i];
  } else {
    walk(0.0f, hi, count / 2);
    const size_t start = out.size();
    walk(0.0f, -lo, count / 2);
    for (size_t i = start; i < out.size(); ++i) out[i] = -out[i];
  }
  if (specials)
    for (float s : special_values<float>()) out.push_back(s);
  return out;
}

}  // namespace dc::vmath_test
