#pragma once
// Pooling over the last two dims (NCHW or unbatched CHW; the 1-D forms over the last dim).
// Kernels in csrc/kernels/cpu/pool.cpp; derivatives in csrc/ops/pool.cpp.
#include <utility>

#include "core/tensor.h"

namespace dc::ops {

// kernel/stride/padding/dilation: 1 or 2 values (1 for the 1-D forms); empty stride = kernel.
// Returns (values, indices): indices (int64) address h * W + w within each plane, like torch.
std::pair<Tensor, Tensor> max_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride,
                                     const Shape& padding, const Shape& dilation, bool ceil_mode);
std::pair<Tensor, Tensor> max_pool1d(const Tensor& x, const Shape& kernel, const Shape& stride,
                                     const Shape& padding, const Shape& dilation, bool ceil_mode);
// divisor_override <= 0: none.
Tensor avg_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride, const Shape& padding,
                  bool ceil_mode, bool count_include_pad, int64_t divisor_override);
Tensor avg_pool1d(const Tensor& x, const Shape& kernel, const Shape& stride, const Shape& padding,
                  bool ceil_mode, bool count_include_pad);
// output_size: 1 or 2 values.
Tensor adaptive_avg_pool2d(const Tensor& x, const Shape& output_size);
std::pair<Tensor, Tensor> adaptive_max_pool2d(const Tensor& x, const Shape& output_size);

}  // namespace dc::ops
