// Random fills, compiled once per ISA (see Note [Per-ISA kernels]). Philox-4x32-10 runs on 16
// counters at once, in arrays of uint32 lanes, so the 32x32->64 multiplies become vpmuludq;
// the bits then turn into floats, uniforms, normals (Box-Muller) or Bernoulli draws with loops
// over the 16 lanes. The layout of the stream is in Note [Random streams] (core/rng.h).
//
// The element draws (uniforms, Box-Muller, Bernoulli) are kernels/random_draws.h's, which the
// CUDA kernels run one counter per thread. Only IEEE basic operations are used (+ - * / sqrt,
// exact conversions, bit operations), and contraction into fused multiply-adds is off for this
// file, so every ISA's build gives the same bits as the generic one and as the GPU: a result
// depends on (seed, counter) and nothing else.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/rng.h"
#include "kernels/cpu/creation.h"

#pragma GCC optimize("fp-contract=off")
// After the pragma, so that the shared draws are compiled without contraction too (Note [Draws
// without fused multiply-adds] in kernels/random_draws.h).
#include "kernels/random_draws.h"

namespace dc::cpu::DC_ISA_NS {
namespace {

#include "kernels/cpu/vec/philox16.h"  // philox16(seed, ctr, w)

constexpr int kLanes = kPhiloxLanes;  // counters per Philox block
using Words = PhiloxWords;            // w[word][lane]: the four outputs of each counter

// ---- one block: 16 counters to 64 (float) or 32 (double) outputs --------------------------

template <typename T>
constexpr int64_t kBlock = random_block_elems(sizeof(T));

inline void uniform_block(const Words& w, float* out, float low, float span) {
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < kLanes; ++j)
      out[k * kLanes + j] = uniform_value(low, span, unit_f32(w[k][j]));
}
inline void uniform_block(const Words& w, double* out, double low, double span) {
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < kLanes; ++j)
      out[h * kLanes + j] = uniform_value(low, span, unit_f64(w[2 * h][j], w[2 * h + 1][j]));
}

inline void normal_block(const Words& w, float* out, float mean, float stddev) {
  for (int h = 0; h < 2; ++h) {
    float* o = out + 2 * h * kLanes;
    for (int j = 0; j < kLanes; ++j)
      normal_pair(w[2 * h][j], w[2 * h + 1][j], mean, stddev, o[j], o[kLanes + j]);
  }
}
inline void normal_block(const Words& w, double* out, double mean, double stddev) {
  for (int j = 0; j < kLanes; ++j)
    normal_pair(w[0][j], w[1][j], w[2][j], w[3][j], mean, stddev, out[j], out[kLanes + j]);
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
      for (int64_t k = 0; k < kBlock<T>; ++k) dst[k] = bernoulli_value(u[k], pv);
    } else if (count == kBlock<T>) {
      const T* pi = p + i;
      for (int64_t k = 0; k < kBlock<T>; ++k) dst[k] = bernoulli_value(u[k], pi[k]);
    } else {
      for (int64_t k = 0; k < count; ++k) dst[k] = bernoulli_value(u[k], p[i + k]);
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
