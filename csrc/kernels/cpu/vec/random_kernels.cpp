// Random fills, compiled once per ISA (see Note [Per-ISA kernels]). Philox-4x32-10 runs on 16
// counters at once, in arrays of uint32 lanes, so the 32x32->64 multiplies become vpmuludq;
// the bits then turn into floats, uniforms, normals (Box-Muller) or Bernoulli draws with loops
// over the 16 lanes. The layout of the stream is in Note [Random streams] (core/rng.h).
//
// Only IEEE basic operations are used (+ - * / sqrt, exact conversions, bit operations), and
// contraction into fused multiply-adds is off for this file, so every ISA's build gives the
// same bits as the generic one: a result depends on (seed, counter) and nothing else.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/rng.h"
#include "kernels/cpu/creation.h"

#pragma GCC optimize("fp-contract=off")

namespace dc::cpu::DC_ISA_NS {
namespace {

#include "kernels/cpu/vec/philox16.h"  // philox16(seed, ctr, w)

constexpr int kLanes = kPhiloxLanes;  // counters per Philox block
using Words = PhiloxWords;            // w[word][lane]: the four outputs of each counter

// ---- bits to floats ------------------------------------------------------------------------
// Conversions go through non-negative int32 values, which every ISA converts exactly.

// [0, 1) on the 2^-24 grid, from the top 24 bits.
inline float unit_f32(uint32_t x) { return static_cast<float>(static_cast<int32_t>(x >> 8)) * 0x1p-24f; }
// (0, 1], from all 32 bits (rounded to 24): never 0, so log() is finite (|z| <= 6.7).
inline float open_unit_f32(uint32_t x) {
  return static_cast<float>(static_cast<int32_t>(x >> 1)) * 0x1p-31f + 0x1p-32f;
}
// [0, 1) on the 2^-53 grid: 26 bits of hi, 27 of lo, both exact in a double.
inline double unit_f64(uint32_t hi, uint32_t lo) {
  return static_cast<double>(static_cast<int32_t>(hi >> 6)) * 0x1p-26 +
         static_cast<double>(static_cast<int32_t>(lo >> 5)) * 0x1p-53;
}

// ---- Box-Muller ----------------------------------------------------------------------------
// log on (0, 1] and sin/cos of 2 pi u on [0, 1), written for these ranges only: no nan, inf,
// negative or subnormal input can reach them, so they need no special cases and the loops
// stay branch-free.

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
inline typename FloatBits<T>::U to_bits(T x) {
  typename FloatBits<T>::U u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
template <typename T, typename U>
inline T from_bits(U u) {
  T x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// ln(u) = k ln2 + ln(m), m in [sqrt(1/2), sqrt(2)); ln(m) = 2 atanh(s), s = (m - 1) / (m + 1),
// |s| <= 0.1716, by its series (odd powers to s^9 for float, s^19 for double: the next term is
// below 2^-28 and 2^-55 of the result). ln2 is split so that k * ln2_hi is exact.
template <typename T>
inline T log_unit(T u) {
  using B = FloatBits<T>;
  typename B::U ix = to_bits(u) + (B::kOne - B::kSqrtHalf);
  const int32_t k = static_cast<int32_t>(ix >> B::kMant) - static_cast<int32_t>(B::kOne >> B::kMant);
  const T m = from_bits<T>((ix & B::kMantMask) + B::kSqrtHalf);
  const T f = m - T(1), s = f / (T(2) + f), z = s * s;
  T poly;
  if constexpr (sizeof(T) == 4) {
    poly = 2.0f + z * (2.0f / 3 + z * (2.0f / 5 + z * (2.0f / 7 + z * (2.0f / 9))));
  } else {
    poly = 2.0 / 19;
    for (int d = 17; d >= 1; d -= 2) poly = T(2) / d + z * poly;
  }
  const T kf = static_cast<T>(k);
  const T ln2_hi = sizeof(T) == 4 ? T(0.693359375f) : T(6.93147180369123816490e-01);
  const T ln2_lo = sizeof(T) == 4 ? T(-2.12194440e-4f) : T(1.90821492927058770002e-10);
  return kf * ln2_hi + (kf * ln2_lo + s * poly);
}

// sin and cos of 2 pi u, u in [0, 1): x = 4u quarter turns, k = nearest integer (0..4), then
// a = (x - k) pi/2 in [-pi/4, pi/4] by Taylor series (to a^9 / a^10 for float, a^17 / a^18 for
// double) and the quadrant by swapping and sign bits. x - k is exact.
template <typename T>
inline void sincos_2pi(T u, T& sin_out, T& cos_out) {
  using B = FloatBits<T>;
  using U = typename B::U;
  const T x = T(4) * u;
  // Adding 1.5 * 2^mant rounds x to an integer held in the low bits.
  const T magic = sizeof(T) == 4 ? T(0x1.8p23f) : T(0x1.8p52);
  const T shifted = x + magic;
  const U k = to_bits(shifted);
  const T a = (x - (shifted - magic)) * T(1.57079632679489661923);
  const T a2 = a * a;
  T sp, cp;
  if constexpr (sizeof(T) == 4) {
    sp = -1.0f / 6 + a2 * (1.0f / 120 + a2 * (-1.0f / 5040 + a2 * (1.0f / 362880)));
    cp = -0.5f + a2 * (1.0f / 24 + a2 * (-1.0f / 720 + a2 * (1.0f / 40320 + a2 * (-1.0f / 3628800))));
  } else {
    // Coefficients (-1)^n / (2n+1)! and (-1)^n / (2n)!, highest first.
    sp = 1.0 / 355687428096000.0;  // 1/17!
    const double sc[] = {-1.0 / 1307674368000.0, 1.0 / 6227020800.0, -1.0 / 39916800.0,
                         1.0 / 362880.0, -1.0 / 5040.0, 1.0 / 120.0, -1.0 / 6.0};
    for (double c : sc) sp = c + a2 * sp;
    cp = 1.0 / 6402373705728000.0;  // 1/18!
    const double cc[] = {-1.0 / 20922789888000.0, 1.0 / 87178291200.0, -1.0 / 479001600.0,
                         1.0 / 3628800.0, -1.0 / 40320.0, 1.0 / 720.0, -1.0 / 24.0, 0.5};
    for (double c : cc) cp = c + a2 * cp;
    cp = -cp;
  }
  const U sa = to_bits(a + a * a2 * sp), ca = to_bits(T(1) + a2 * cp);
  const U swap = U(0) - (k & 1);  // odd quadrant: sin and cos trade places
  constexpr int kSignShift = sizeof(T) * 8 - 2;
  const U s = ((sa & ~swap) | (ca & swap)) ^ ((k & 2) << kSignShift);
  const U c = ((ca & ~swap) | (sa & swap)) ^ (((k + 1) & 2) << kSignShift);
  sin_out = from_bits<T>(s);
  cos_out = from_bits<T>(c);
}

// ---- one block: 16 counters to 64 (float) or 32 (double) outputs --------------------------

template <typename T>
constexpr int64_t kBlock = random_block_elems(sizeof(T));

inline void uniform_block(const Words& w, float* out, float low, float span) {
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < kLanes; ++j) out[k * kLanes + j] = low + span * unit_f32(w[k][j]);
}
inline void uniform_block(const Words& w, double* out, double low, double span) {
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < kLanes; ++j)
      out[h * kLanes + j] = low + span * unit_f64(w[2 * h][j], w[2 * h + 1][j]);
}

inline void normal_block(const Words& w, float* out, float mean, float stddev) {
  for (int h = 0; h < 2; ++h) {
    float* o = out + 2 * h * kLanes;
    for (int j = 0; j < kLanes; ++j) {
      const float r = std::sqrt(-2.0f * log_unit(open_unit_f32(w[2 * h][j])));
      float s, c;
      sincos_2pi(unit_f32(w[2 * h + 1][j]), s, c);
      o[j] = mean + stddev * (r * c);
      o[kLanes + j] = mean + stddev * (r * s);
    }
  }
}
inline void normal_block(const Words& w, double* out, double mean, double stddev) {
  for (int j = 0; j < kLanes; ++j) {
    const double u1 = 1.0 - unit_f64(w[0][j], w[1][j]);  // (0, 1]
    const double r = std::sqrt(-2.0 * log_unit(u1));
    double s, c;
    sincos_2pi(unit_f64(w[2][j], w[3][j]), s, c);
    out[j] = mean + stddev * (r * c);
    out[kLanes + j] = mean + stddev * (r * s);
  }
}

// Elements [begin, end) of a fill whose element 0 has counter `start`; begin is a multiple of
// the block. block(w, dst) writes one whole block; the last, partial one goes through a
// buffer.
template <typename T, typename F>
void fill_blocks(T* out, int64_t begin, int64_t end, uint64_t seed, uint64_t start, const F& block) {
  alignas(64) Words w;
  alignas(64) T buf[kBlock<T>];
  for (int64_t i = begin; i < end; i += kBlock<T>) {
    philox16(seed, start + static_cast<uint64_t>(i / kBlock<T>) * kLanes, w);
    if (end - i >= kBlock<T>) {
      block(w, out + i, i);
    } else {
      block(w, buf, i);
      std::memcpy(out + i, buf, sizeof(T) * static_cast<size_t>(end - i));
    }
  }
}

template <typename T>
void uniform_fill(T* out, int64_t begin, int64_t end, double low, double high, uint64_t seed,
                  uint64_t start) {
  const T lo = static_cast<T>(low), span = static_cast<T>(high - low);
  fill_blocks(out, begin, end, seed, start,
              [&](const Words& w, T* dst, int64_t) { uniform_block(w, dst, lo, span); });
}

template <typename T>
void normal_fill(T* out, int64_t begin, int64_t end, double mean, double stddev, uint64_t seed,
                 uint64_t start) {
  const T m = static_cast<T>(mean), s = static_cast<T>(stddev);
  fill_blocks(out, begin, end, seed, start,
              [&](const Words& w, T* dst, int64_t) { normal_block(w, dst, m, s); });
}

// out[i] = u[i] < p[i] (p[0] if p_step is 0): exact for p = 0 (never) and p = 1 (always).
template <typename T>
void bernoulli_fill(T* out, const T* p, int64_t p_step, int64_t begin, int64_t end, uint64_t seed,
                    uint64_t start) {
  fill_blocks(out, begin, end, seed, start, [&](const Words& w, T* dst, int64_t i) {
    alignas(64) T u[kBlock<T>];
    uniform_block(w, u, T(0), T(1));
    const int64_t count = std::min<int64_t>(kBlock<T>, end - i);
    if (p_step == 0) {
      const T pv = p[0];
      for (int64_t k = 0; k < kBlock<T>; ++k) dst[k] = u[k] < pv ? T(1) : T(0);
    } else if (count == kBlock<T>) {
      const T* pi = p + i;
      for (int64_t k = 0; k < kBlock<T>; ++k) dst[k] = u[k] < pi[k] ? T(1) : T(0);
    } else {
      for (int64_t k = 0; k < count; ++k) dst[k] = u[k] < p[i + k] ? T(1) : T(0);
    }
  });
}

}  // namespace

void uniform_fill_f32(float* out, int64_t begin, int64_t end, double low, double high,
                      uint64_t seed, uint64_t start) {
  uniform_fill(out, begin, end, low, high, seed, start);
}
void uniform_fill_f64(double* out, int64_t begin, int64_t end, double low, double high,
                      uint64_t seed, uint64_t start) {
  uniform_fill(out, begin, end, low, high, seed, start);
}
void normal_fill_f32(float* out, int64_t begin, int64_t end, double mean, double stddev,
                     uint64_t seed, uint64_t start) {
  normal_fill(out, begin, end, mean, stddev, seed, start);
}
void normal_fill_f64(double* out, int64_t begin, int64_t end, double mean, double stddev,
                     uint64_t seed, uint64_t start) {
  normal_fill(out, begin, end, mean, stddev, seed, start);
}
void bernoulli_fill_f32(float* out, const float* p, int64_t p_step, int64_t begin, int64_t end,
                        uint64_t seed, uint64_t start) {
  bernoulli_fill(out, p, p_step, begin, end, seed, start);
}
void bernoulli_fill_f64(double* out, const double* p, int64_t p_step, int64_t begin, int64_t end,
                        uint64_t seed, uint64_t start) {
  bernoulli_fill(out, p, p_step, begin, end, seed, start);
}

}  // namespace dc::cpu::DC_ISA_NS
