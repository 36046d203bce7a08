#pragma once
// Dropout (csrc/ops/dropout.cpp).
#include "core/tensor.h"

namespace dc::ops {

// Zeroes elements with probability p and scales the rest by 1 / (1 - p); the mask comes from
// the default generator (reproducible under manual_seed whatever the thread count).
Tensor dropout(const Tensor& x, double p, bool training);
Tensor& dropout_(Tensor& x, double p, bool training);

}  // namespace dc::ops
