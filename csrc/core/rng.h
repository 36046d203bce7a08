#pragma once
// Counter-based random numbers (Philox-4x32-10). Element i of a random op draws from counter
// (offset + i), so results depend only on the seed and the sequence of ops, never on how the
// work is split across threads.
#include <array>
#include <cstdint>

namespace dc {

struct Generator {
  uint64_t seed = 67280421310721ULL;
  uint64_t offset = 0;  // counters consumed so far

  // Reserves `n` counters and returns the first.
  uint64_t reserve(uint64_t n) {
    const uint64_t start = offset;
    offset += n;
    return start;
  }
};

// The process-wide default generator (dc.manual_seed resets it).
Generator& default_generator();
void manual_seed(uint64_t seed);

std::array<uint32_t, 4> philox(uint64_t seed, uint64_t counter);
// Uniform in [0, 1) from 24 (float) or 53 (double) random bits.
inline float uint_to_unit_float(uint32_t x) { return (x >> 8) * (1.0f / 16777216.0f); }
inline double uints_to_unit_double(uint32_t hi, uint32_t lo) {
  return ((static_cast<uint64_t>(hi) << 21) ^ lo) % (1ULL << 53) * (1.0 / 9007199254740992.0);
}

}  // namespace dc
