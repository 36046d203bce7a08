#pragma once
// Softmax and log_softmax over one dim.
#include "core/tensor.h"

namespace dc::ops {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// The derivative of softmax (log = false) or log_softmax (log = true) given its output y:
// fused kernel when nothing needs a graph, composite differentiable ops under create_graph.
Tensor softmax_backward_data(const Tensor& grad, const Tensor& y, int64_t dim, bool log);

}  // namespace dc::ops
