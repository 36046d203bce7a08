#pragma once
// Normalisation: batch_norm (fused kernels in csrc/kernels/cpu/norm_batch.cpp), group_norm and
// instance_norm over channels of (N, C, *) input; layer_norm and rms_norm over trailing dims
// (fused kernels in csrc/kernels/cpu/norm.cpp).
#include <optional>

#include "core/tensor.h"

namespace dc::ops {

// x: (N, C) or (N, C, *). training: normalise with the batch statistics (biased variance) and,
// when running_mean / running_var are defined, update them in place without recording:
// running = (1 - momentum) * running + momentum * batch (unbiased variance). Eval: normalise
// with the running statistics (required). weight / bias: (C,) or undefined.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);
// Statistics per sample over each group of C / num_groups channels and all spatial positions.
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias,
                  double eps = 1e-5);
// Statistics per sample and channel (use_input_stats) or from the running statistics.
Tensor instance_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                     const Tensor& weight, const Tensor& bias, bool use_input_stats = true,
                     double momentum = 0.1, double eps = 1e-5);

// Normalises over the trailing dims given by normalized_shape; weight/bias: that shape or
// undefined. rms_norm's eps: nullopt = machine epsilon of x's dtype (like PyTorch).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps = 1e-5);
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                std::optional<double> eps = std::nullopt);

}  // namespace dc::ops
