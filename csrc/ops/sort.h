#pragma once
// Sorting along a dim. Only the permutation is computed here; values come from gather, whose
// derivative carries the gradient (python/deepcore/_sort.py).
#include "core/tensor.h"

namespace dc::ops {

// int64 indices that sort `t` along `dim` (stable; NaN sorts as the largest value, like
// PyTorch). Not differentiable.
Tensor argsort(const Tensor& t, int64_t dim = -1, bool descending = false);
// The indices of the k largest (smallest) entries along dim, most extreme first, ties in index
// order: topk and kthvalue gather their values with them (python/deepcore/_sort.py).
Tensor topk_indices(const Tensor& t, int64_t k, int64_t dim, bool largest);

}  // namespace dc::ops
