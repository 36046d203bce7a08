#pragma once
// 2-D pooling kernels over contiguous (planes, H, W) data, planes = N * C. Each output row oh
// reads the input rows h0[oh] + i * dh for i < hn[oh] (already clipped to [0, H)); columns
// likewise. Max, average and adaptive pools differ only in these windows (built in
// csrc/ops/pool.cpp) and, for averages, the divisor hdiv[oh] * wdiv[ow].
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace dc::cpu {

struct PoolWindows {
  int64_t planes = 0, H = 0, W = 0, OH = 0, OW = 0;
  int64_t dh = 1, dw = 1;                 // step between taps (dilation)
  std::vector<int64_t> h0, hn, w0, wn;    // per output row / column: first tap, tap count
  std::vector<double> hdiv, wdiv;         // average pools: divisor factors
  double divisor_override = 0;            // > 0: every window divides by this instead
};

// y (planes, OH, OW) = max over the window; idx = argmax as h * W + w (int64; first maximum,
// but the last NaN wins, like torch). An empty window gives -inf and index -1.
void max_pool2d_forward(const PoolWindows& p, DType dtype, const void* x, void* y, int64_t* idx);
// y = sum over the window / divisor.
void avg_pool2d_forward(const PoolWindows& p, DType dtype, const void* x, void* y);
// gx (planes, H, W) = the adjoint of avg_pool2d_forward applied to gy; gx is overwritten.
void avg_pool2d_backward(const PoolWindows& p, DType dtype, const void* gy, void* gx);

}  // namespace dc::cpu
