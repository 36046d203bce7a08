#pragma once
// Dropout masks from the counter-based RNG (core/rng.h).
#include <cstdint>

#include "core/tensor.h"

namespace dc::cpu {

// mask[i] = 1 / (1 - p) with probability 1 - p, else 0; element i reads Philox counter
// (start + i / 4), lane i % 4, so the mask depends only on (seed, start), never on threads.
// mask: contiguous float32/float64. 0 <= p < 1.
void dropout_mask_into(const Tensor& mask, double p, uint64_t seed, uint64_t start);

}  // namespace dc::cpu
