#pragma once
// Counter-based random numbers (Philox-4x32-10). Element i of a random op draws from counter
// (offset + i), so results depend only on the seed and the sequence of ops, never on how the
// work is split across threads.
#include <array>
#include <cstddef>
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

// The four 32-bit words of Philox-4x32-10 at `counter` under key `seed`: the scalar reference
// (the vectorised fills in kernels/cpu/vec/random_kernels.cpp are tested against it). constexpr
// so that CUDA kernels can call it too (kernels/random_draws.h).
constexpr void philox_words(uint64_t seed, uint64_t counter, uint32_t (&w)[4]) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  w[0] = c0;
  w[1] = c1;
  w[2] = c2;
  w[3] = c3;
}
std::array<uint32_t, 4> philox(uint64_t seed, uint64_t counter);  // philox_words as an array
// Uniform in [0, 1) as the fills make it (Note [Random streams], dropout's masks): float from
// the top 24 bits of a word, double from 26 bits of one word and 27 of the next; exact.
// constexpr, like philox_words, so that CUDA kernels can call them too.
constexpr float uint_to_unit_float(uint32_t x) { return (x >> 8) * (1.0f / 16777216.0f); }
constexpr double uint_pair_to_unit_double(uint32_t hi, uint32_t lo) {
  return (hi >> 6) * 0x1p-26 + (lo >> 5) * 0x1p-53;
}

// Note [Random streams]
// The uniform_, normal_ and bernoulli fills run Philox on blocks of 16 consecutive counters
// (lane j has counter c + j, giving words w0..w3) and turn each block into a fixed run of
// elements, so element i depends only on (seed, start + i's counter), never on how threads
// split the work or on the ISA (the kernels use only exactly rounded operations):
//   float32 (64 elements per block), uniform and bernoulli: element 16k + j <- word k of lane j,
//     its top 24 bits / 2^24;
//   float64 (32 per block), uniform and bernoulli: element 16h + j <- words 2h, 2h+1 of lane j,
//     53 bits / 2^53;
//   normal (Box-Muller): float32 elements 32h + j and 32h + 16 + j are r cos t and r sin t with
//     r = sqrt(-2 ln u1), u1 = all 32 bits of word 2h mapped to (0, 1] (never 0, so |z| <= 6.7),
//     t = 2 pi u2, u2 = word 2h+1 / 2^24; float64 elements j and 16 + j take u1 = 1 - (words
//     0, 1 as 53 bits) and u2 = words 2, 3 as 53 bits (|z| <= 8.6).
// Block b of a fill starting at counter `start` uses counters start + 16 b .. start + 16 b + 15.
// A fill of n elements reserves random_fill_counters(n) = 16 per 32 elements, enough for either
// dtype (float32 uses half), and randint's two counters per four elements fit in it too.
constexpr int kPhiloxLanes = 16;
constexpr int64_t random_block_elems(size_t itemsize) { return itemsize == 4 ? 64 : 32; }
inline uint64_t random_fill_counters(int64_t n) {
  return static_cast<uint64_t>((n + 31) / 32) * kPhiloxLanes;
}

}  // namespace dc
