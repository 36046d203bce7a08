#pragma once
// The random draws of Note [Random streams] (core/rng.h) one counter at a time, in code that
// both the cpu compilers and nvcc compile (kernels/host_device.h; dc::philox_words and the
// uniform conversions of core/rng.h are constexpr, which nvcc's --expt-relaxed-constexpr lets
// device code call): the dropout mask's elements of one counter. The cpu fills run the same
// arithmetic on 16 counters at once (kernels/cpu/vec/random_kernels.cpp);
// tests/cpp/test_random.cpp holds the two to the same bits, so a CUDA kernel built on these
// gives the cpu's numbers for the same seed.
#include <cstdint>

#include "core/rng.h"
#include "kernels/host_device.h"

namespace dc {

// The elements of a dropout mask of n elements (dc::cpu::dropout_mask_into) that counter
// start + t draws: with b = t / 16 and lane j = t % 16, float elements 64 b + 16 k + j (word k,
// k < 4) and double elements 32 b + 16 h + j (words 2h and 2h + 1, h < 2), each scale when its
// uniform is below keep (1 - p in T) and 0 otherwise. The fill needs (n + 31) / 32 * 16
// counters (random_fill_counters in core/rng.h); counters past the last element write nothing.
template <typename T>
DC_HD inline void dropout_counter(T* mask, int64_t n, uint64_t seed, uint64_t start, int64_t t,
                                  T keep, T scale) {
  uint32_t w[4];
  philox_words(seed, start + static_cast<uint64_t>(t), w);
  const int64_t b = t / 16, j = t % 16;
  if constexpr (sizeof(T) == 4) {
    for (int k = 0; k < 4; ++k) {
      const int64_t i = 64 * b + 16 * k + j;
      if (i < n) mask[i] = uint_to_unit_float(w[k]) < keep ? scale : T(0);
    }
  } else {
    for (int h = 0; h < 2; ++h) {
      const int64_t i = 32 * b + 16 * h + j;
      const double u = uint_pair_to_unit_double(w[2 * h], w[2 * h + 1]);
      if (i < n) mask[i] = u < keep ? scale : T(0);
    }
  }
}

}  // namespace dc
