#pragma once
// The random draws of Note [Random streams] (core/rng.h), written once for the cpu fills
// (kernels/cpu/vec/random_kernels.cpp, randint in kernels/cpu/creation.cpp) and the CUDA kernels
// (kernels/cuda/creation.cu, dropout.cu): Philox words to uniforms, Box-Muller's log and sincos,
// each fill's element draw, and the draws of one Philox counter, the unit of work of a CUDA
// thread. dc::philox_words and the uniform conversions of core/rng.h are constexpr, which
// nvcc's --expt-relaxed-constexpr lets device code call. tests/cpp/test_cuda_random.cpp holds the
// per-counter draws to the cpu fills' bits.
//
// Note [Draws without fused multiply-adds]
// A draw is the same bits on every ISA and on the GPU only if every operation is rounded once,
// as IEEE says, in the order written. nvcc contracts a * b + c into a fused multiply-add by
// default (--fmad=true), and GCC does the same wherever FMA instructions are enabled (the avx2
// and avx512 builds). So the arithmetic here goes through add_rn / sub_rn / mul_rn / div_rn /
// sqrt_rn: on the device nvcc's __fadd_rn-style intrinsics, which it never fuses; on the host
// the plain operators, with contraction switched off by the includer where FMA is enabled
// (random_kernels.cpp includes this header after its `#pragma GCC optimize("fp-contract=off")`).
//
// Everything here has internal linkage (an unnamed namespace): the per-ISA builds of
// random_kernels.cpp each compile their own copy with their own flags. An inline function with
// external linkage would be merged across them by the linker, and the avx512 copy could then
// run on a CPU without AVX-512.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/rng.h"
#include "kernels/host_device.h"

namespace dc {
namespace {

// ---- IEEE operations that are never fused (Note [Draws without fused multiply-adds]) --------

DC_HD inline float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
DC_HD inline double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
DC_HD inline float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
DC_HD inline double sub_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
DC_HD inline float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
DC_HD inline double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
DC_HD inline float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
DC_HD inline double div_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
DC_HD inline float sqrt_rn(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}
DC_HD inline double sqrt_rn(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

// ---- Philox words to uniforms ----------------------------------------------------------------
// Conversions go through non-negative int32 values, which every ISA converts exactly.

// [0, 1) on the 2^-24 grid, from the top 24 bits.
DC_HD inline float unit_f32(uint32_t x) {
  return mul_rn(static_cast<float>(static_cast<int32_t>(x >> 8)), 0x1p-24f);
}
// (0, 1], from all 32 bits (rounded to 24): never 0, so log() is finite (|z| <= 6.7).
DC_HD inline float open_unit_f32(uint32_t x) {
  return add_rn(mul_rn(static_cast<float>(static_cast<int32_t>(x >> 1)), 0x1p-31f), 0x1p-32f);
}
// [0, 1) on the 2^-53 grid: 26 bits of hi, 27 of lo, both exact in a double.
DC_HD inline double unit_f64(uint32_t hi, uint32_t lo) {
  return add_rn(mul_rn(static_cast<double>(static_cast<int32_t>(hi >> 6)), 0x1p-26),
                mul_rn(static_cast<double>(static_cast<int32_t>(lo >> 5)), 0x1p-53));
}

// ---- Box-Muller --------------------------------------------------------------------------------
// log on (0, 1] and sin/cos of 2 pi u on [0, 1), written for these ranges only: no nan, inf,
// negative or subnormal input can reach them, so they need no special cases and the cpu's lane
// loops stay branch-free (they vectorise).

template <typename T> struct FloatBits;
template <> struct FloatBits<float> {
  using U = uint32_t;
  static constexpr int kMant = 23;
  static constexpr U kOne = 0x3f800000u, kSqrtHalf = 0x3f3504f3u, kMantMask = 0x007fffffu;
};
template <> struct FloatBits<double> {
  using U = uint64_t;
  static constexpr int kMant = 52;
  static constexpr U kOne = 0x3ff0000000000000ull, kSqrtHalf = 0x3fe6a09e667f3bcdull,
                     kMantMask = 0x000fffffffffffffull;
};

template <typename T>
DC_HD inline typename FloatBits<T>::U fp_bits(T x) {
  typename FloatBits<T>::U u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
template <typename T, typename U>
DC_HD inline T fp_from_bits(U u) {
  T x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// ln(u) = k ln2 + ln(m), m in [sqrt(1/2), sqrt(2)); ln(m) = 2 atanh(s), s = (m - 1) / (m + 1),
// |s| <= 0.1716, by its series (odd powers to s^9 for float, s^19 for double: the next term is
// below 2^-28 and 2^-55 of the result). ln2 is split so that k * ln2_hi is exact.
template <typename T>
DC_HD inline T log_unit(T u) {
  using B = FloatBits<T>;
  typename B::U ix = fp_bits(u) + (B::kOne - B::kSqrtHalf);
  const int32_t k =
      static_cast<int32_t>(ix >> B::kMant) - static_cast<int32_t>(B::kOne >> B::kMant);
  const T m = fp_from_bits<T>((ix & B::kMantMask) + B::kSqrtHalf);
  const T f = sub_rn(m, T(1)), s = div_rn(f, add_rn(T(2), f)), z = mul_rn(s, s);
  T poly;
  if constexpr (sizeof(T) == 4) {
    poly = mul_rn(z, 2.0f / 9);
    poly = mul_rn(z, add_rn(2.0f / 7, poly));
    poly = mul_rn(z, add_rn(2.0f / 5, poly));
    poly = mul_rn(z, add_rn(2.0f / 3, poly));
    poly = add_rn(2.0f, poly);
  } else {
    poly = 2.0 / 19;
    for (int d = 17; d >= 1; d -= 2) poly = add_rn(div_rn(T(2), T(d)), mul_rn(z, poly));
  }
  const T kf = static_cast<T>(k);
  const T ln2_hi = sizeof(T) == 4 ? T(0.693359375f) : T(6.93147180369123816490e-01);
  const T ln2_lo = sizeof(T) == 4 ? T(-2.12194440e-4f) : T(1.90821492927058770002e-10);
  return add_rn(mul_rn(kf, ln2_hi), add_rn(mul_rn(kf, ln2_lo), mul_rn(s, poly)));
}

// sin and cos of 2 pi u, u in [0, 1): x = 4u quarter turns, k = nearest integer (0..4), then
// a = (x - k) pi/2 in [-pi/4, pi/4] by Taylor series (to a^9 / a^10 for float, a^17 / a^18 for
// double) and the quadrant by swapping and sign bits. x - k is exact.
template <typename T>
DC_HD inline void sincos_2pi(T u, T& sin_out, T& cos_out) {
  using B = FloatBits<T>;
  using U = typename B::U;
  const T x = mul_rn(T(4), u);
  // Adding 1.5 * 2^mant rounds x to an integer held in the low bits.
  const T magic = sizeof(T) == 4 ? T(0x1.8p23f) : T(0x1.8p52);
  const T shifted = add_rn(x, magic);
  const U k = fp_bits(shifted);
  const T a = mul_rn(sub_rn(x, sub_rn(shifted, magic)), T(1.57079632679489661923));
  const T a2 = mul_rn(a, a);
  T sp, cp;
  if constexpr (sizeof(T) == 4) {
    sp = mul_rn(a2, 1.0f / 362880);
    sp = add_rn(-1.0f / 5040, sp);
    sp = add_rn(1.0f / 120, mul_rn(a2, sp));
    sp = add_rn(-1.0f / 6, mul_rn(a2, sp));
    cp = mul_rn(a2, -1.0f / 3628800);
    cp = add_rn(1.0f / 40320, cp);
    cp = add_rn(-1.0f / 720, mul_rn(a2, cp));
    cp = add_rn(1.0f / 24, mul_rn(a2, cp));
    cp = add_rn(-0.5f, mul_rn(a2, cp));
  } else {
    // Coefficients (-1)^n / (2n+1)! and (-1)^n / (2n)!, highest first.
    sp = 1.0 / 355687428096000.0;  // 1/17!
    const double sc[] = {-1.0 / 1307674368000.0, 1.0 / 6227020800.0, -1.0 / 39916800.0,
                         1.0 / 362880.0, -1.0 / 5040.0, 1.0 / 120.0, -1.0 / 6.0};
    for (double c : sc) sp = add_rn(c, mul_rn(a2, sp));
    cp = 1.0 / 6402373705728000.0;  // 1/18!
    const double cc[] = {-1.0 / 20922789888000.0, 1.0 / 87178291200.0, -1.0 / 479001600.0,
                         1.0 / 3628800.0, -1.0 / 40320.0, 1.0 / 720.0, -1.0 / 24.0, 0.5};
    for (double c : cc) cp = add_rn(c, mul_rn(a2, cp));
    cp = -cp;
  }
  const U sa = fp_bits(add_rn(a, mul_rn(mul_rn(a, a2), sp)));
  const U ca = fp_bits(add_rn(T(1), mul_rn(a2, cp)));
  const U swap = U(0) - (k & 1);  // odd quadrant: sin and cos trade places
  constexpr int kSignShift = sizeof(T) * 8 - 2;
  const U s = ((sa & ~swap) | (ca & swap)) ^ ((k & 2) << kSignShift);
  const U c = ((ca & ~swap) | (sa & swap)) ^ (((k + 1) & 2) << kSignShift);
  sin_out = fp_from_bits<T>(s);
  cos_out = fp_from_bits<T>(c);
}

// ---- element draws -----------------------------------------------------------------------------

// uniform_(low, high): low + (high - low) * u, with low and the span rounded to T first.
template <typename T>
DC_HD inline T uniform_value(T low, T span, T unit) { return add_rn(low, mul_rn(span, unit)); }

// bernoulli: 1 when the uniform u (uniform_value(0, 1, unit)) is below p: never for p = 0,
// always for p = 1.
template <typename T>
DC_HD inline T bernoulli_value(T u, T p) { return u < p ? T(1) : T(0); }

// normal_(mean, stddev) by Box-Muller: a pair of normals (r cos t, r sin t) from two words for
// float32 (r from all 32 bits of radius_word, the angle's uniform from angle_word) and from four
// for float64 (u1 = 1 - (words 0, 1 as 53 bits), u2 = words 2, 3 as 53 bits).
DC_HD inline void normal_pair(uint32_t radius_word, uint32_t angle_word, float mean, float stddev,
                              float& z_cos, float& z_sin) {
  const float r = sqrt_rn(mul_rn(-2.0f, log_unit(open_unit_f32(radius_word))));
  float s, c;
  sincos_2pi(unit_f32(angle_word), s, c);
  z_cos = add_rn(mean, mul_rn(stddev, mul_rn(r, c)));
  z_sin = add_rn(mean, mul_rn(stddev, mul_rn(r, s)));
}
DC_HD inline void normal_pair(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3, double mean,
                              double stddev, double& z_cos, double& z_sin) {
  const double u1 = sub_rn(1.0, unit_f64(w0, w1));  // (0, 1]
  const double r = sqrt_rn(mul_rn(-2.0, log_unit(u1)));
  double s, c;
  sincos_2pi(unit_f64(w2, w3), s, c);
  z_cos = add_rn(mean, mul_rn(stddev, mul_rn(r, c)));
  z_sin = add_rn(mean, mul_rn(stddev, mul_rn(r, s)));
}

// randint(low, high): low + (64 bits from two counters' word k) % (high - low). The modulo's
// bias is below range / 2^64.
// The number of values in [low, high), which may pass INT64_MAX: computed in uint64_t, where
// the subtraction cannot overflow.
DC_HD inline uint64_t randint_range(int64_t low, int64_t high) {
  return static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
}
// low + r % range, added in uint64_t (modulo 2^64, then back to int64): the sum is in
// [low, high) but the offset alone may not fit an int64.
DC_HD inline int64_t randint_value(uint32_t hi, uint32_t lo, int64_t low, uint64_t range) {
  const uint64_t r = (static_cast<uint64_t>(hi) << 32) | lo;
  return static_cast<int64_t>(static_cast<uint64_t>(low) + r % range);
}

// A 16-bit float draw (bfloat16 or float16: uniform_ draws float32 and rounds) that rounded up
// to `high` takes the next 16-bit value toward -inf instead, so the interval stays half-open:
// the cpu's keep_below (kernels/cpu/creation.cpp) steps down while the value is >= high and
// > low, and one step always ends it, since a float32 draw x < high that rounds to y lies above
// the midpoint of y and the value below y. `value` is the 16-bit value as a float, `bits` its
// bits (sign and magnitude, so a step toward -inf is one down, or one up below zero).
DC_HD inline uint16_t keep_below_bits(uint16_t bits, double value, double low, double high) {
  if (!(value >= high && value > low)) return bits;
  if (bits & 0x8000u) return static_cast<uint16_t>(bits + 1);
  return bits == 0 ? uint16_t(0x8001u) : static_cast<uint16_t>(bits - 1);
}

// ---- the draws of one counter ------------------------------------------------------------------
// Counter start + t of a fill (block b = t / 16, lane j = t % 16) writes float32 element
// 64 b + 16 k + j from word k, and float64 element 32 b + 16 h + j from words 2h and 2h + 1
// (Note [Random streams]). A fill of n elements needs (n + block - 1) / block * 16 counters
// (random_counters_of, block = random_block_elems); counters past the last element write
// nothing, so random_fill_counters(n) threads (dropout's) are fine too.
DC_HD inline int64_t float_element(int64_t t, int word) {
  return 64 * (t / 16) + 16 * word + t % 16;
}
DC_HD inline int64_t double_element(int64_t t, int pair) {
  return 32 * (t / 16) + 16 * pair + t % 16;
}
inline int64_t random_counters_of(int64_t n, size_t itemsize) {
  const int64_t block = random_block_elems(itemsize);
  return (n + block - 1) / block * kPhiloxLanes;
}

// uniform_into's elements of counter start + t; low and span as uniform_value takes them.
template <typename T>
DC_HD inline void uniform_counter(T* out, int64_t n, uint64_t seed, uint64_t start, int64_t t,
                                  T low, T span) {
  uint32_t w[4];
  philox_words(seed, start + static_cast<uint64_t>(t), w);
  if constexpr (sizeof(T) == 4) {
    for (int k = 0; k < 4; ++k) {
      const int64_t i = float_element(t, k);
      if (i < n) out[i] = uniform_value(low, span, unit_f32(w[k]));
    }
  } else {
    for (int h = 0; h < 2; ++h) {
      const int64_t i = double_element(t, h);
      if (i < n) out[i] = uniform_value(low, span, unit_f64(w[2 * h], w[2 * h + 1]));
    }
  }
}

// normal_into's elements of counter start + t: float32 pairs h = 0, 1 from words 2h, 2h + 1 give
// elements 64 b + 32 h + j (cos) and + 16 (sin), i.e. the elements of words 2h and 2h + 1;
// float64 gives 32 b + j (cos) and + 16 (sin).
template <typename T>
DC_HD inline void normal_counter(T* out, int64_t n, uint64_t seed, uint64_t start, int64_t t,
                                 T mean, T stddev) {
  uint32_t w[4];
  philox_words(seed, start + static_cast<uint64_t>(t), w);
  T zc, zs;
  if constexpr (sizeof(T) == 4) {
    for (int h = 0; h < 2; ++h) {
      normal_pair(w[2 * h], w[2 * h + 1], mean, stddev, zc, zs);
      const int64_t ic = float_element(t, 2 * h), is = float_element(t, 2 * h + 1);
      if (ic < n) out[ic] = zc;
      if (is < n) out[is] = zs;
    }
  } else {
    normal_pair(w[0], w[1], w[2], w[3], mean, stddev, zc, zs);
    const int64_t ic = double_element(t, 0), is = double_element(t, 1);
    if (ic < n) out[ic] = zc;
    if (is < n) out[is] = zs;
  }
}

// bernoulli_into's elements of counter start + t: out[i] = bernoulli_value(u[i], p[i * p_step]).
template <typename T>
DC_HD inline void bernoulli_counter(T* out, const T* p, int64_t p_step, int64_t n, uint64_t seed,
                                    uint64_t start, int64_t t) {
  uint32_t w[4];
  philox_words(seed, start + static_cast<uint64_t>(t), w);
  if constexpr (sizeof(T) == 4) {
    for (int k = 0; k < 4; ++k) {
      const int64_t i = float_element(t, k);
      const float u = uniform_value(0.0f, 1.0f, unit_f32(w[k]));
      if (i < n) out[i] = bernoulli_value(u, p[i * p_step]);
    }
  } else {
    for (int h = 0; h < 2; ++h) {
      const int64_t i = double_element(t, h);
      const double u = uniform_value(0.0, 1.0, unit_f64(w[2 * h], w[2 * h + 1]));
      if (i < n) out[i] = bernoulli_value(u, p[i * p_step]);
    }
  }
}

// randint_into's elements 4q .. 4q + 3 (two counters per four elements, start + 2q and
// start + 2q + 1: element 4q + k takes word k of each). The conversion to T is static_cast's.
template <typename T>
DC_HD inline void randint_quad(T* out, int64_t n, uint64_t seed, uint64_t start, int64_t q,
                               int64_t low, uint64_t range) {
  uint32_t hi[4], lo[4];
  const uint64_t ctr = start + 2 * static_cast<uint64_t>(q);
  philox_words(seed, ctr, hi);
  philox_words(seed, ctr + 1, lo);
  for (int k = 0; k < 4; ++k) {
    const int64_t i = 4 * q + k;
    if (i < n) out[i] = static_cast<T>(randint_value(hi[k], lo[k], low, range));
  }
}

// The elements of a dropout mask of n elements (dc::cpu::dropout_mask_into) that counter
// start + t draws: each scale when its uniform is below keep (1 - p in T) and 0 otherwise, as the
// cpu's bernoulli fill with p = keep followed by its scaling pass.
template <typename T>
DC_HD inline void dropout_counter(T* mask, int64_t n, uint64_t seed, uint64_t start, int64_t t,
                                  T keep, T scale) {
  uint32_t w[4];
  philox_words(seed, start + static_cast<uint64_t>(t), w);
  if constexpr (sizeof(T) == 4) {
    for (int k = 0; k < 4; ++k) {
      const int64_t i = float_element(t, k);
      if (i < n) mask[i] = uint_to_unit_float(w[k]) < keep ? scale : T(0);
    }
  } else {
    for (int h = 0; h < 2; ++h) {
      const int64_t i = double_element(t, h);
      const double u = uint_pair_to_unit_double(w[2 * h], w[2 * h + 1]);
      if (i < n) mask[i] = u < keep ? scale : T(0);
    }
  }
}

// multinomial's inverse-CDF search of one draw (dc::cpu::categorical_search): the first category
// i of the row with row[i] > u * row[K - 1], at most K - 1. The probes are std::upper_bound's
// (the middle of [lo, hi) rounded down), so even a row that is not sorted gives the cpu's answer.
DC_HD inline int64_t categorical_index(const double* row, int64_t K, double u) {
  const double target = u * row[K - 1];
  int64_t lo = 0, len = K;
  while (len > 0) {
    const int64_t half = len / 2;
    if (target < row[lo + half]) {
      len = half;
    } else {
      lo += half + 1;
      len -= half + 1;
    }
  }
  return lo < K - 1 ? lo : K - 1;
}

}  // namespace
}  // namespace dc
