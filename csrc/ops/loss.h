#pragma once
// Losses (csrc/ops/loss.cpp): fused cross_entropy / nll_loss and the pointwise losses.
#include <string>

#include "core/tensor.h"

namespace dc::ops {

enum class Reduction { none, mean, sum };
// "none" / "mean" / "sum"; ValueError naming `op` otherwise.
Reduction reduction_from_name(const std::string& name, const char* op);

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

}  // namespace dc::ops
