#pragma once
// Normalisation over channels of (N, C, *) input: batch_norm (fused kernels in
// csrc/kernels/cpu/batchnorm.cpp), group_norm and instance_norm.
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

}  // namespace dc::ops
