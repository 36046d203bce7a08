#pragma once
// Softmax and log-softmax along one dim, forward and backward. Kernels only compute: the op
// layer (csrc/ops/softmax.cpp) checks arguments and records autograd.
#include "core/tensor.h"

namespace dc::cpu {

// y = softmax(x, dim) or log_softmax(x, dim). x, y: contiguous, same shape, float32/float64.
// Viewed as x[outer, n, inner] with n = size(dim): inner == 1 is the row fast path; otherwise
// column blocks of the [n, inner] slabs are processed so loads stay contiguous.
void softmax_into(const Tensor& y, const Tensor& x, int64_t dim, bool log);
// gx = y * (g - sum(g * y, dim))        (softmax; y = its output)
// gx = g - exp(y) * sum(g, dim)         (log_softmax; y = its output)
// All contiguous with x's shape.
void softmax_backward_into(const Tensor& gx, const Tensor& g, const Tensor& y, int64_t dim,
                           bool log);

}  // namespace dc::cpu
