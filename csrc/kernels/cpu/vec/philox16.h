// Philox-4x32-10 on 16 consecutive counters at once, shared by the per-ISA kernel files that
// draw random bits (random_kernels.cpp, attention_kernels.cpp); included inside their anonymous
// namespace (like row_reduce.h), so each ISA compiles its own copy. Integer operations only:
// every ISA gives the same bits as dc::philox (core/rng.h).
#ifndef DC_PHILOX16_BODY
#define DC_PHILOX16_BODY

using PhiloxWords = uint32_t[4][kPhiloxLanes];  // w[word][lane]

// w[k][j] = philox(seed, ctr + j)[k] for j < 16 (checked against dc::philox by
// tests/cpp/test_random.cpp).
inline void philox16(uint64_t seed, uint64_t ctr, PhiloxWords& w) {
  uint32_t k0[10], k1[10];
  k0[0] = static_cast<uint32_t>(seed);
  k1[0] = static_cast<uint32_t>(seed >> 32);
  for (int r = 1; r < 10; ++r) {
    k0[r] = k0[r - 1] + 0x9E3779B9u;
    k1[r] = k1[r - 1] + 0xBB67AE85u;
  }
  // One lane per iteration, the rounds unrolled inside: the compiler vectorises across lanes.
  for (int j = 0; j < kPhiloxLanes; ++j) {
    const uint64_t c = ctr + static_cast<uint64_t>(j);
    uint32_t c0 = static_cast<uint32_t>(c), c1 = static_cast<uint32_t>(c >> 32), c2 = 0, c3 = 0;
#pragma GCC unroll 10
    for (int r = 0; r < 10; ++r) {
      const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
      const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0[r];
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1[r];
      c1 = static_cast<uint32_t>(p1);
      c3 = static_cast<uint32_t>(p0);
      c0 = n0;
      c2 = n2;
    }
    w[0][j] = c0;
    w[1][j] = c1;
    w[2][j] = c2;
    w[3][j] = c3;
  }
}

#endif  // DC_PHILOX16_BODY
