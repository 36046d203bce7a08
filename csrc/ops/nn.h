#pragma once
// Neural-network ops: softmax family, fused losses, normalisation, dropout.
#include <optional>

#include "core/tensor.h"

namespace dc::ops {

enum class Reduction { none, mean, sum };
Reduction reduction_from_name(const std::string& name, const char* op);

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// target: class indices (int64, shape x without the class dim) or probabilities (same as x).
Tensor cross_entropy(const Tensor& x, const Tensor& target, const Tensor& weight,
                     Reduction reduction = Reduction::mean, int64_t ignore_index = -100,
                     double label_smoothing = 0.0);
Tensor nll_loss(const Tensor& logp, const Tensor& target, const Tensor& weight,
                Reduction reduction = Reduction::mean, int64_t ignore_index = -100);
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
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps = 1e-5);
Tensor dropout(const Tensor& x, double p, bool training);

}  // namespace dc::ops
