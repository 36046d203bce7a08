#pragma once
// Neural-network ops: softmax family, fused losses, normalisation, dropout.
// Softmax, layer/RMS norm and dropout live in nn.cpp; the losses in nn_loss.cpp.
#include <optional>
#include <string>

#include "core/tensor.h"

namespace dc::ops {

enum class Reduction { none, mean, sum };
// "none" / "mean" / "sum"; ValueError naming `op` otherwise.
Reduction reduction_from_name(const std::string& name, const char* op);

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// The derivative of softmax (log = false) or log_softmax (log = true) given its output y:
// fused kernel when nothing needs a graph, composite differentiable ops under create_graph.
Tensor softmax_backward_data(const Tensor& grad, const Tensor& y, int64_t dim, bool log);

// x: (N, C), (N, C, d1, ...) or (C,). target: class indices (integer, x's shape without the
// class dim) or class probabilities (floating, x's shape). weight: [C] or undefined.
Tensor cross_entropy(const Tensor& x, const Tensor& target, const Tensor& weight,
                     Reduction reduction = Reduction::mean, int64_t ignore_index = -100,
                     double label_smoothing = 0.0);
Tensor nll_loss(const Tensor& logp, const Tensor& target, const Tensor& weight,
                Reduction reduction = Reduction::mean, int64_t ignore_index = -100);
// Pointwise losses require input and target of the same shape (ValueError otherwise).
Tensor mse_loss(const Tensor& x, const Tensor& y, Reduction reduction = Reduction::mean);
Tensor l1_loss(const Tensor& x, const Tensor& y, Reduction reduction = Reduction::mean);
Tensor smooth_l1_loss(const Tensor& x, const Tensor& y, Reduction reduction = Reduction::mean,
                      double beta = 1.0);
Tensor huber_loss(const Tensor& x, const Tensor& y, Reduction reduction = Reduction::mean,
                  double delta = 1.0);
Tensor binary_cross_entropy(const Tensor& p, const Tensor& y, const Tensor& weight,
                            Reduction reduction = Reduction::mean);
Tensor binary_cross_entropy_with_logits(const Tensor& x, const Tensor& y, const Tensor& weight,
                                        const Tensor& pos_weight,
                                        Reduction reduction = Reduction::mean);
// reduction: "none", "mean", "sum" or "batchmean" (sum / x.size(0)).
Tensor kl_div(const Tensor& x, const Tensor& target, const std::string& reduction = "mean",
              bool log_target = false);

// Normalises over the trailing dims given by normalized_shape; weight/bias: that shape or
// undefined. rms_norm's eps: nullopt = machine epsilon of x's dtype (like PyTorch).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps = 1e-5);
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                std::optional<double> eps = std::nullopt);

// Zeroes elements with probability p and scales the rest by 1 / (1 - p); the mask comes from
// the default generator (reproducible under manual_seed whatever the thread count).
Tensor dropout(const Tensor& x, double p, bool training);
Tensor& dropout_(Tensor& x, double p, bool training);

}  // namespace dc::ops
