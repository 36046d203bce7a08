#pragma once
// 2-D convolution kernels on contiguous NCHW data, built on the GEMM's micro-kernels (Notes
// [Convolution as tiled GEMM] and [Convolution as implicit GEMM] in conv.cpp). Kernels only
// compute: the caller checks shapes and dtypes.
#include <cstdint>

#include "core/dtype.h"

namespace dc::cpu {

// x: (N, C, H, W), w: (K, C / groups, KH, KW), y: (N, K, OH, OW), with
// OH = (H + 2 ph - dh (KH - 1) - 1) / sh + 1 (OW likewise), all row-major contiguous.
struct ConvGeom {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t K = 0, KH = 0, KW = 0;       // output channels, kernel size
  int64_t OH = 0, OW = 0;              // output size
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;

  int64_t Cg() const { return C / groups; }
  int64_t Kg() const { return K / groups; }
  int64_t ckk() const { return Cg() * KH * KW; }  // rows of the im2col matrix
  // A 1x1 kernel with unit stride and no padding reads the NCHW data as the GEMM operand.
  bool pointwise() const { return KH == 1 && KW == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

// y = conv(x, w) + bias[k]; bias may be nullptr. dtype: Float32 or Float64.
void conv2d_forward(const ConvGeom& g, DType dtype, const void* x, const void* w,
                    const void* bias, void* y);
// gx (N, C, H, W) = the adjoint of conv(., w) applied to gy (N, K, OH, OW); gx is overwritten.
void conv2d_backward_input(const ConvGeom& g, DType dtype, const void* gy, const void* w,
                           void* gx);
// gw (K, C / groups, KH, KW) = sum over the batch of gy (x) im2col(x); gw is overwritten.
// Summed in a fixed order that does not depend on the thread count.
void conv2d_backward_weight(const ConvGeom& g, DType dtype, const void* gy, const void* x,
                            void* gw);

}  // namespace dc::cpu
