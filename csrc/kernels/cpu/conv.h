#pragma once
// 2-D convolution kernels on contiguous NCHW data, built on the GEMM's micro-kernels. Each
// algorithm has its own file (conv_pointwise.cpp, conv_im2col.cpp, conv_implicit.cpp,
// conv_phases.cpp, conv_channels_last.cpp, conv_winograd.cpp); conv.cpp picks one per call (choose_algo, Note
// [Choosing a convolution algorithm]). Kernels only compute: the caller checks shapes and dtypes.
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
  // float32 operands that hold bfloat16 values: the GEMMs run on the bf16 GEMM (Note
  // [16-bit convolution] in conv.cpp). Set by the entry points, never by callers.
  bool bf16_gemm = false;

  int64_t Cg() const { return C / groups; }
  int64_t Kg() const { return K / groups; }
  int64_t ckk() const { return Cg() * KH * KW; }  // rows of the im2col matrix
  // A 1x1 kernel with unit stride and no padding reads the NCHW data as the GEMM operand.
  bool pointwise() const { return KH == 1 && KW == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

// y = conv(x, w) + bias[k]; bias may be nullptr. dtype: Float32, Float64, BFloat16 or Float16.
void conv2d_forward(const ConvGeom& g, DType dtype, const void* x, const void* w,
                    const void* bias, void* y);
// gx (N, C, H, W) = the adjoint of conv(., w) applied to gy (N, K, OH, OW); gx is overwritten.
void conv2d_backward_input(const ConvGeom& g, DType dtype, const void* gy, const void* w,
                           void* gx);
// gw (K, C / groups, KH, KW) = sum over the batch of gy (x) im2col(x); gw is overwritten.
// Summed in a fixed order that does not depend on the thread count.
void conv2d_backward_weight(const ConvGeom& g, DType dtype, const void* gy, const void* x,
                            void* gw);

// ---- algorithms --------------------------------------------------------------------------------

enum class ConvPass { Forward, GradInput, GradWeight };

enum class ConvAlgo {
  Auto,          // no override: choose by shape
  Pointwise,     // 1x1, unit stride, no padding: NCHW is already the GEMM operand
  Im2col,        // im2col (col2im for the input gradient) tiles + GEMM; every shape
  Implicit,      // implicit GEMM, B packed straight from the input (input gradient: unit stride)
  Phases,        // input gradient of a strided convolution, one unit-stride conv per phase
  ChannelsLast,  // weight gradient from a channels-last copy of the input (groups == 1)
  Winograd,      // 3x3, unit stride and dilation, groups == 1: Winograd F(2x2, 3x3)
  Winograd4,     // the same shapes by F(4x4, 3x3): fewer multiply-adds, more rounding error
};

const char* conv_pass_name(ConvPass pass);  // "forward", "grad_input", "grad_weight"
const char* conv_algo_name(ConvAlgo algo);  // "auto", "pointwise", "im2col", ...
// The enum of a name above; throws ValueError listing the names for anything else.
ConvPass conv_pass_from_name(const char* name);
ConvAlgo conv_algo_from_name(const char* name);

// Whether `algo` can compute `pass` for this shape at all (speed aside). Auto always can.
bool conv_algo_applies(ConvPass pass, ConvAlgo algo, const ConvGeom& g);

// The algorithm the kernels above run: the override of `pass` when one is set (ValueError
// when it cannot compute this shape), else the fastest for the shape (never Auto).
ConvAlgo choose_algo(ConvPass pass, const ConvGeom& g);
// The algorithm a pass runs in dtype: for bfloat16 and float16 (float32 arithmetic on widened
// operands, the result rounded to 8 or 11 bits) Winograd F(2x2, 3x3) becomes F(4x4, 3x3) where
// that pays, and on a CPU with AVX512_BF16 the GEMM-based algorithms take the bf16 GEMM (Note
// [16-bit convolution] in conv.cpp).
ConvAlgo choose_algo(ConvPass pass, const ConvGeom& g, DType dtype);

// Forces `algo` for every later `pass` on every thread; Auto goes back to choosing by shape.
// For tests and benchmarks that must run one algorithm on shapes it would not be chosen for.
void set_conv_algo_override(ConvPass pass, ConvAlgo algo);
ConvAlgo conv_algo_override(ConvPass pass);

// set_conv_algo_override for one scope; restores the previous override when it ends.
class ScopedConvAlgo {
 public:
  ScopedConvAlgo(ConvPass pass, ConvAlgo algo)
      : pass_(pass), saved_(conv_algo_override(pass)) {
    set_conv_algo_override(pass, algo);
  }
  ~ScopedConvAlgo() { set_conv_algo_override(pass_, saved_); }
  ScopedConvAlgo(const ScopedConvAlgo&) = delete;
  ScopedConvAlgo& operator=(const ScopedConvAlgo&) = delete;

 private:
  ConvPass pass_;
  ConvAlgo saved_;
};

}  // namespace dc::cpu
