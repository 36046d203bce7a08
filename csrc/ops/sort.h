#pragma once
// Sorting along a dim. Only the permutation is computed here; values come from gather, whose
// derivative carries the gradient (python/deepcore/_sort.py).
#include "core/tensor.h"

namespace dc::ops {

// int64 indices that sort `t` along `dim` (stable; NaN sorts as the largest value, like
// PyTorch). Not differentiable.
Tensor argsort(const Tensor& t, int64_t dim = -1, bool descending = false);

}  // namespace dc::ops
