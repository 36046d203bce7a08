#pragma once
// Convolutions (conv1d/conv2d/conv_transpose1d/2d) and padding (pad), NCHW / NCL layouts.
// Forward through the tiled-GEMM kernels of csrc/kernels/cpu/conv.cpp; derivatives in
// csrc/ops/conv.cpp (Note [Convolution derivatives]).
#include <string>

#include "core/tensor.h"

namespace dc::ops {

// Spatial hyper-parameters of a 2-D convolution (1-D ones use h = 1 with a (1, k) kernel).
struct ConvParams {
  int64_t sh = 1, sw = 1;  // stride
  int64_t ph = 0, pw = 0;  // zero padding on both sides
  int64_t dh = 1, dw = 1;  // dilation
  int64_t groups = 1;
};

// x: (N, C, H, W) or unbatched (C, H, W); w: (K, C / groups, KH, KW); bias: (K,) or undefined.
// stride/padding/dilation: 1 or 2 values. padding_mode "same" / "valid" override `padding`.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Shape& stride,
              const Shape& padding, const Shape& dilation, int64_t groups,
              const std::string& padding_mode = "");
// x: (N, C, L) or (C, L); w: (K, C / groups, KL).
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& bias, const Shape& stride,
              const Shape& padding, const Shape& dilation, int64_t groups,
              const std::string& padding_mode = "");
// x: (N, Cin, H, W) or (Cin, H, W); w: (Cin, Cout / groups, KH, KW); the adjoint of conv2d.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Shape& stride,
                        const Shape& padding, const Shape& output_padding, int64_t groups,
                        const Shape& dilation);
Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& bias, const Shape& stride,
                        const Shape& padding, const Shape& output_padding, int64_t groups,
                        const Shape& dilation);

// The two halves of conv2d's derivative, themselves differentiable (4-D, contiguous or not):
// the gradient w.r.t. the input (N, C, H, W) given gy (N, K, OH, OW) and w, and w.r.t. the
// weight (K, C / groups, KH, KW) given gy and x.
Tensor conv2d_backward_input(const Tensor& gy, const Tensor& w, int64_t H, int64_t W,
                             const ConvParams& p);
Tensor conv2d_backward_weight(const Tensor& gy, const Tensor& x, int64_t KH, int64_t KW,
                              const ConvParams& p);

// torch.nn.functional.pad: pad = (last_lo, last_hi, second_last_lo, second_last_hi, ...);
// mode "constant" (negative pads crop), "reflect", "replicate" or "circular".
Tensor pad(const Tensor& x, const Shape& pad, const std::string& mode = "constant",
           double value = 0.0);

}  // namespace dc::ops
