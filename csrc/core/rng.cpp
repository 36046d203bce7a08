#include "core/rng.h"

namespace dc {

Generator& default_generator() {
  static Generator g;
  return g;
}

void manual_seed(uint64_t seed) {
  default_generator().seed = seed;
  default_generator().offset = 0;
}

std::array<uint32_t, 4> philox(uint64_t seed, uint64_t counter) {
  uint32_t w[4] = {};
  philox_words(seed, counter, w);
  return {w[0], w[1], w[2], w[3]};
}

}  // namespace dc
