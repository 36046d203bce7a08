// 2-D convolution forward / backward-input / backward-weight on NCHW data: which algorithm
// computes a call (choose_algo), and the entry points that run it. The algorithms live in
// conv_pointwise.cpp, conv_im2col.cpp, conv_implicit.cpp, conv_phases.cpp,
// conv_channels_last.cpp and conv_winograd.cpp, each with its Note.
//
// Note [Choosing a convolution algorithm]
// Every threshold of the choice is here; the algorithms' own blocking constants stay in their
// files. Kg = K / groups output channels per group, Cg = C / groups input channels per group.
//
//   forward     Winograd   if 3x3, unit stride and dilation, groups == 1, and the batch has at
//                          least kMinWinogradTiles (32) 2x2 output tiles
//               Implicit   if Kg >= kMinImplicitRows (16) and, for a pointwise shape, the
//                          images have fewer than kPointwiseImplicitPixels (1024) pixels
//               Pointwise  if 1x1, unit stride, no padding
//               Im2col     otherwise
//   grad input  Winograd   if the forward would be, with padding <= 2 (tiles of the input)
//               Implicit   if unit stride, the padding within the dilated kernel's reach, and
//                          Cg >= kMinImplicitRowsGradInput (32) (pixels as in the forward)
//               Phases     if stride > 1, groups == 1, unit dilation, C >= 32, and the images
//                          have at least kMinPhasePixels (64) pixels per phase
//               Pointwise  if 1x1, unit stride, no padding
//               Im2col     otherwise
//   grad weight Winograd   if the forward would be, with C and K >= 8 and C K <= 256 * 256
//               ChannelsLast if groups == 1, C and K >= kMinChannelsLastWeight (16), not 1x1
//               Pointwise  if 1x1, unit stride, no padding
//               Im2col     otherwise
//   16-bit passes (choose_algo with a dtype; Note [16-bit convolution]): Winograd becomes
//               Winograd4 (F(4x4, 3x3)) once the batch has kMinWinograd4Tiles (256) 4x4 tiles
//
// Why these numbers:
// - Winograd F(2x2, 3x3) does 2.25x fewer multiply-adds than any direct algorithm, and its
//   transforms cost little: measured 1.2-2.4x faster than the implicit GEMM from 3 to 512
//   channels (8 -> 8 channels on 28x28 images: 1.41x; the 3 -> 64 stem: 1.37x) as soon as
//   the batch has 32 tiles. With fewer, the weight transform (16 K C values) is not amortised:
//   512 channels on 16 tiles (four 4x4 images) take 0.71x the implicit GEMM's speed.
//   Its weight gradient sums products over the tiles into 16 K x C matrices per block of
//   tiles: a forward plus weight gradient (both on 32 images) took 1.3-1.4x less time with it
//   than with channels-last at 16-128 channels, 1.15x at 256, more at 512 (the 16 K x C
//   accumulators are read and written per block) and on the 3-channel stem.
// - F(4x4, 3x3) has 1.78x fewer multiply-adds than F(2x2, 3x3) but transforms 2.25x more
//   weight values, reused over 4x fewer tiles, and a row of 4x4 tiles is short on small
//   images. Forced-algorithm timings of the ResNet-18 layers at batch 32 (float32, AVX2, two
//   threads; forward / input gradient / weight gradient, ms, F(2x2) -> F(4x4)): 64 channels
//   on 32x32 (2,048 tiles) 10.3 -> 7.8, 11.2 -> 8.0, 14.0 -> 7.4; 128 on 16x16 (512 tiles)
//   9.6 -> 7.3, 10.5 -> 8.3, 14.1 -> 13.1; 256 on 8x8 (128 tiles) 10.3 -> 10.2, 10.1 -> 12.2,
//   15.2 -> 15.1; 512 on 4x4 (32 tiles) 13.1 -> 13.6, 12.2 -> 15.5, 11.9 -> 26.4. Hence 256.
// - The implicit GEMM packs B per call and fills micro-tiles of MR rows; a group with fewer
//   output channels wastes most of each tile's rows and cannot amortise the pack. Measured on
//   LeNet's layers: the forward 6 -> 16 5x5 conv runs in 0.64 ms implicit against 1.0-1.1 ms
//   im2col, but the input gradient of that conv (6 rows per tile) takes 2.0 ms implicit
//   against 1.2-1.3 ms im2col, and so does the forward of the 1 -> 6 conv. The input
//   gradient's rows are the input channels, and it also pays for the flipped weights: 32.
// - A pointwise convolution reads x in place as the GEMM operand, one product per image; with
//   small images those products are too skinny (16 columns for a 4x4 image), and one implicit
//   product over the whole batch is faster: below 1024 pixels per image.
// - Phases smaller than 64 pixels per image (a 4x4 phase of an 8x8 input) pack their im2col in
//   segments too short to pay; im2col, which batches small images, is faster. A phase whose
//   padding would be negative (padding beyond the kernel's reach) is left to im2col too.
// - The channels-last weight gradient's micro-panels run over channels: with fewer than 16
//   input or output channels most of each panel is padding. A 1x1 kernel needs no transpose
//   of im2col at all (Pointwise reads x^T through strides).
// set_conv_algo_override forces one algorithm per pass for the tests (tests/cpp/test_conv.cpp,
// tests/test_conv.py), which run each on shapes it would not be chosen for.
#include "kernels/cpu/conv.h"

#include <array>
#include <atomic>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "core/storage.h"
#include "kernels/cpu/conv_common.h"
#include "kernels/cpu/elementwise.h"

namespace dc::cpu {
namespace {

using namespace conv_detail;

constexpr int64_t kMinImplicitRows = 16, kMinImplicitRowsGradInput = 32;
constexpr int64_t kPointwiseImplicitPixels = 1024;
constexpr int64_t kMinPhasePixels = 64;
constexpr int64_t kMinChannelsLastWeight = 16;
constexpr int64_t kMinWinogradTiles = 32, kMinWinograd4Tiles = 256;
constexpr int64_t kMinWinogradWeightChannels = 8, kMaxWinogradWeightProduct = 256 * 256;

std::atomic<ConvAlgo> g_override[3] = {ConvAlgo::Auto, ConvAlgo::Auto, ConvAlgo::Auto};

constexpr const char* kPassNames[] = {"forward", "grad_input", "grad_weight"};
constexpr const char* kAlgoNames[] = {"auto",   "pointwise",     "im2col",   "implicit",
                                      "phases", "channels_last", "winograd", "winograd_4x4"};
constexpr int kAlgoCount = sizeof(kAlgoNames) / sizeof(kAlgoNames[0]);
static_assert(kAlgoCount == static_cast<int>(ConvAlgo::Winograd4) + 1);

// The pointwise GEMMs read x with y's pixel count, so the output must be the input's size. A
// phase of a strided input gradient (conv_phases.cpp) can ask for one more output row or
// column than its gy gives (a 2x2 stride-2 layer on an odd-sized input: the last input column
// gets no gradient); that phase, 1x1 with no padding, was once run pointwise, and the input
// gradient of a 32 -> 16, 2x2 stride-2 layer on a 65x65 input was off by up to 25.
bool pointwise_applies(const ConvGeom& g) { return g.pointwise() && g.OH == g.H && g.OW == g.W; }

bool implicit_forward_applies(const ConvGeom& g) { return g.N * g.OH * g.OW > 0 && g.ckk() > 0; }

bool winograd_grad_input_applies(const ConvGeom& g) {
  return winograd_applies(g) && winograd_applies(input_gradient_as_conv(g)) && g.ph <= 2 &&
         g.pw <= 2;
}

// Winograd pays once the batch has enough output tiles to amortise the weight transform
// (see the Note).
bool winograd_pays(const ConvGeom& g) {
  return g.N * ((g.OH + 1) / 2) * ((g.OW + 1) / 2) >= kMinWinogradTiles;
}

// F(4x4, 3x3) transforms 36 / 16 = 2.25x more weights than F(2x2, 3x3) and reuses each over
// 4x fewer tiles; it pays once the batch has kMinWinograd4Tiles 4x4 output tiles (see the Note).
// Only 16-bit passes take it (Note [16-bit convolution]).
bool winograd4_pays(const ConvGeom& g) {
  return g.N * ((g.OH + 3) / 4) * ((g.OW + 3) / 4) >= kMinWinograd4Tiles;
}

bool implicit_grad_input_applies(const ConvGeom& g) {
  if (g.sh != 1 || g.sw != 1) return false;
  const ConvGeom t = input_gradient_as_conv(g);
  return t.ph >= 0 && t.pw >= 0 && implicit_forward_applies(t);
}

// The implicit GEMM is worth it for a forward shape whose groups have at least min_rows
// output channels (see the Note).
bool implicit_pays(const ConvGeom& g, int64_t min_rows) {
  return g.Kg() >= min_rows && (!pointwise_applies(g) || g.OH * g.OW < kPointwiseImplicitPixels);
}

ConvAlgo algo_by_shape(ConvPass pass, const ConvGeom& g) {
  switch (pass) {
    case ConvPass::Forward:
      if (winograd_applies(g) && winograd_pays(g)) return ConvAlgo::Winograd;
      if (implicit_forward_applies(g) && implicit_pays(g, kMinImplicitRows))
        return ConvAlgo::Implicit;
      break;
    case ConvPass::GradInput:
      if (winograd_grad_input_applies(g) && winograd_pays(input_gradient_as_conv(g)))
        return ConvAlgo::Winograd;
      if (implicit_grad_input_applies(g) &&
          implicit_pays(input_gradient_as_conv(g), kMinImplicitRowsGradInput))
        return ConvAlgo::Implicit;
      if (conv_algo_applies(pass, ConvAlgo::Phases, g) && g.C >= kMinImplicitRowsGradInput &&
          g.H * g.W >= kMinPhasePixels * g.sh * g.sw)
        return ConvAlgo::Phases;
      break;
    case ConvPass::GradWeight:
      if (winograd_applies(g) && winograd_pays(g) && g.C >= kMinWinogradWeightChannels &&
          g.K >= kMinWinogradWeightChannels && g.C * g.K <= kMaxWinogradWeightProduct)
        return ConvAlgo::Winograd;
      if (conv_algo_applies(pass, ConvAlgo::ChannelsLast, g) && g.C >= kMinChannelsLastWeight &&
          g.K >= kMinChannelsLastWeight && g.KH * g.KW > 1)
        return ConvAlgo::ChannelsLast;
      break;
  }
  return pointwise_applies(g) ? ConvAlgo::Pointwise : ConvAlgo::Im2col;
}

template <typename T>
void forward_with(ConvAlgo algo, const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  switch (algo) {
    case ConvAlgo::Implicit: return forward_implicit(g, x, w, bias, y);
    case ConvAlgo::Winograd: return forward_winograd(g, x, w, bias, y);
    case ConvAlgo::Winograd4: return forward_winograd4(g, x, w, bias, y);
    case ConvAlgo::Pointwise: return forward_pointwise(g, x, w, bias, y);
    default: return forward_im2col(g, x, w, bias, y);
  }
}

template <typename T>
void backward_input_with(ConvAlgo algo, const ConvGeom& g, const T* gy, const T* w, T* gx) {
  switch (algo) {
    case ConvAlgo::Implicit: return backward_input_implicit(g, gy, w, gx);
    case ConvAlgo::Winograd: return backward_input_winograd(g, gy, w, gx);
    case ConvAlgo::Winograd4: return backward_input_winograd4(g, gy, w, gx);
    case ConvAlgo::Phases: return backward_input_phases(g, gy, w, gx);
    case ConvAlgo::Pointwise: return backward_input_pointwise(g, gy, w, gx);
    default: return backward_input_im2col(g, gy, w, gx);
  }
}

template <typename T>
void backward_weight_with(ConvAlgo algo, const ConvGeom& g, const T* gy, const T* x, T* gw) {
  if (g.N == 0 || g.OH * g.OW == 0) {  // an empty sum
    std::fill(gw, gw + g.K * g.ckk(), T(0));
    return;
  }
  switch (algo) {
    case ConvAlgo::ChannelsLast: return backward_weight_channels_last(g, gy, x, gw);
    case ConvAlgo::Winograd: return backward_weight_winograd(g, gy, x, gw);
    case ConvAlgo::Winograd4: return backward_weight_winograd4(g, gy, x, gw);
    case ConvAlgo::Pointwise: return backward_weight_pointwise(g, gy, x, gw);
    default: return backward_weight_im2col(g, gy, x, gw);
  }
}

[[noreturn]] void throw_dtype(DType dtype) {
  DC_THROW(TypeError, "[conv2d] expected float32 or float64, got ", dtype_name(dtype));
}

}  // namespace

const char* conv_pass_name(ConvPass pass) { return kPassNames[static_cast<int>(pass)]; }
const char* conv_algo_name(ConvAlgo algo) { return kAlgoNames[static_cast<int>(algo)]; }

ConvPass conv_pass_from_name(const char* name) {
  for (int i = 0; i < 3; ++i)
    if (std::strcmp(name, kPassNames[i]) == 0) return static_cast<ConvPass>(i);
  DC_THROW(ValueError, "[conv2d] unknown pass '", name,
           "'; expected 'forward', 'grad_input' or 'grad_weight'");
}

ConvAlgo conv_algo_from_name(const char* name) {
  for (int i = 0; i < kAlgoCount; ++i)
    if (std::strcmp(name, kAlgoNames[i]) == 0) return static_cast<ConvAlgo>(i);
  DC_THROW(ValueError, "[conv2d] unknown algorithm '", name,
           "'; expected 'auto', 'pointwise', 'im2col', 'implicit', 'phases', 'channels_last', "
           "'winograd' or 'winograd_4x4'");
}

bool conv_algo_applies(ConvPass pass, ConvAlgo algo, const ConvGeom& g) {
  switch (algo) {
    case ConvAlgo::Auto:
    case ConvAlgo::Im2col: return true;
    case ConvAlgo::Pointwise: return pointwise_applies(g);
    case ConvAlgo::Implicit:
      return pass == ConvPass::Forward ? implicit_forward_applies(g)
                                       : pass == ConvPass::GradInput && implicit_grad_input_applies(g);
    case ConvAlgo::Phases:
      return pass == ConvPass::GradInput && g.groups == 1 && g.dh == 1 && g.dw == 1 &&
             (g.sh > 1 || g.sw > 1) && g.N * g.OH * g.OW > 0 && phases_fit(g);
    case ConvAlgo::ChannelsLast: return pass == ConvPass::GradWeight && g.groups == 1;
    case ConvAlgo::Winograd:
    case ConvAlgo::Winograd4:
      return pass == ConvPass::GradInput ? winograd_grad_input_applies(g) : winograd_applies(g);
  }
  return false;
}

ConvAlgo choose_algo(ConvPass pass, const ConvGeom& g) {
  const ConvAlgo forced = conv_algo_override(pass);
  if (forced == ConvAlgo::Auto) return algo_by_shape(pass, g);
  DC_CHECK(conv_algo_applies(pass, forced, g), ValueError, "[conv2d] the ", conv_pass_name(pass),
           " algorithm is forced to '", conv_algo_name(forced),
           "', which cannot compute input (", g.N, ", ", g.C, ", ", g.H, ", ", g.W,
           ") with weight (", g.K, ", ", g.Cg(), ", ", g.KH, ", ", g.KW, "), stride (", g.sh,
           ", ", g.sw, "), padding (", g.ph, ", ", g.pw, "), dilation (", g.dh, ", ", g.dw,
           "), groups ", g.groups);
  return forced;
}

ConvAlgo choose_algo(ConvPass pass, const ConvGeom& g, DType dtype) {
  const ConvAlgo algo = choose_algo(pass, g);
  if (!is_reduced_float(dtype)) return algo;
  if (algo == ConvAlgo::Winograd && conv_algo_override(pass) == ConvAlgo::Auto &&
      winograd4_pays(pass == ConvPass::GradInput ? input_gradient_as_conv(g) : g))
    return ConvAlgo::Winograd4;
  const bool float32_kernels = algo == ConvAlgo::Winograd || algo == ConvAlgo::Winograd4 ||
                               algo == ConvAlgo::ChannelsLast;
  if (dtype == DType::BFloat16 && gemm_bf16_native() && !float32_kernels)
    return pointwise_applies(g) ? ConvAlgo::Pointwise : ConvAlgo::Im2col;
  return algo;
}

void set_conv_algo_override(ConvPass pass, ConvAlgo algo) {
  g_override[static_cast<int>(pass)].store(algo, std::memory_order_relaxed);
}

ConvAlgo conv_algo_override(ConvPass pass) {
  return g_override[static_cast<int>(pass)].load(std::memory_order_relaxed);
}

namespace conv_detail {
template <typename T>
void forward_by_shape(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  forward_with(algo_by_shape(ConvPass::Forward, g), g, x, w, bias, y);
}
template void forward_by_shape<float>(const ConvGeom&, const float*, const float*, const float*,
                                      float*);
template void forward_by_shape<double>(const ConvGeom&, const double*, const double*,
                                       const double*, double*);
}  // namespace conv_detail

// Note [16-bit convolution]
// A bfloat16 or float16 convolution widens its operands to float32 (exactly), runs the float32
// algorithm and rounds the result once: float32 accumulation of exact products, the numerics
// of torch's 16-bit CPU convolutions. For bfloat16 on a CPU with AVX512_BF16 its GEMMs run on
// the bf16 GEMM instead (ConvGeom::bf16_gemm): the operands hold bfloat16 values, so rounding
// them to bfloat16 as the GEMM packs them changes nothing but the speed. Only the algorithms
// built on GEMM calls (im2col tiles, pointwise) take that flag; the implicit GEMM and the
// channels-last weight gradient run their own float32 micro-kernels, so they are not chosen.
// Where Winograd is chosen it runs in float32 instead: its transformed operands are no longer
// bfloat16 values, and its 2.25x fewer multiply-adds in float32 beat the bf16 GEMM's 2x rate
// on im2col tiles (ResNet-18 under autocast: bench/README.md). So does the channels-last
// weight gradient: on the 512-channel 4x4 layer of a ResNet-18 its float32 kernel takes 12 ms
// where im2col tiles on the bf16 GEMM took 19. Where the batch has enough 4x4 tiles, Winograd
// is F(4x4, 3x3), 1.78x fewer multiply-adds again: its float32 error, about 1e-5 of the
// output's scale (Note [Winograd convolution]), is two orders of magnitude below the 16-bit
// rounding of the result; a float32 result has no such rounding to hide it, so float32 keeps
// F(2x2, 3x3). A forced Winograd4, like Winograd, runs in float32 on any CPU.
namespace {
// n contiguous values of dtype at p, as a tensor over that memory (no copy), for cast_into.
Tensor view_of(const void* p, int64_t n, DType dtype) {
  auto storage = Storage::wrap(const_cast<void*>(p), static_cast<size_t>(n) * itemsize(dtype),
                               nullptr);
  return Tensor::make_view(storage, {n}, {1}, 0, dtype);
}
// The float32 geometry and algorithm of a 16-bit pass.
ConvAlgo widened_algo(ConvPass pass, DType dtype, ConvGeom& g32) {
  const ConvAlgo algo = choose_algo(pass, g32, dtype);
  g32.bf16_gemm = dtype == DType::BFloat16 && gemm_bf16_native() &&
                  (algo == ConvAlgo::Pointwise || algo == ConvAlgo::Im2col);
  return algo;
}
int64_t x_numel(const ConvGeom& g) { return g.N * g.C * g.H * g.W; }
int64_t y_numel(const ConvGeom& g) { return g.N * g.K * g.OH * g.OW; }
int64_t w_numel(const ConvGeom& g) { return g.K * g.ckk(); }

struct Operand {
  const void* data;  // nullptr: absent (a convolution without bias)
  int64_t numel;
};

// Runs one pass: run(algo, geom, {in0, in1, in2}, out) with pointers of float, double or (for
// the 16-bit dtypes) float32 copies made by cast_into, the result rounded back once.
template <typename Run>
void run_pass(ConvPass pass, const ConvGeom& g, DType dtype, std::array<Operand, 3> in,
              Operand out, const Run& run) {
  if (is_reduced_float(dtype)) {
    ConvGeom g32 = g;
    const ConvAlgo algo = widened_algo(pass, dtype, g32);
    std::array<Tensor, 3> wide;
    std::array<const float*, 3> p{};
    for (size_t i = 0; i < in.size(); ++i) {
      if (!in[i].data) continue;
      wide[i] = Tensor::empty({in[i].numel}, DType::Float32);
      cast_into(wide[i], view_of(in[i].data, in[i].numel, dtype));
      p[i] = wide[i].data<float>();
    }
    const Tensor result = Tensor::empty({out.numel}, DType::Float32);
    run(algo, g32, p, result.data<float>());
    return cast_into(view_of(out.data, out.numel, dtype), result);
  }
  if (dtype != DType::Float32 && dtype != DType::Float64) throw_dtype(dtype);
  const ConvAlgo algo = choose_algo(pass, g);
  auto typed = [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    run(algo, g,
        std::array<const T*, 3>{static_cast<const T*>(in[0].data),
                                static_cast<const T*>(in[1].data),
                                static_cast<const T*>(in[2].data)},
        static_cast<T*>(const_cast<void*>(out.data)));
  };
  if (dtype == DType::Float32) typed(static_cast<float*>(nullptr));
  else typed(static_cast<double*>(nullptr));
}
}  // namespace

void conv2d_forward(const ConvGeom& g, DType dtype, const void* x, const void* w,
                    const void* bias, void* y) {
  run_pass(ConvPass::Forward, g, dtype, {{{x, x_numel(g)}, {w, w_numel(g)}, {bias, g.K}}},
           {y, y_numel(g)}, [](ConvAlgo algo, const ConvGeom& geo, auto in, auto* out) {
             forward_with(algo, geo, in[0], in[1], in[2], out);
           });
}

void conv2d_backward_input(const ConvGeom& g, DType dtype, const void* gy, const void* w,
                           void* gx) {
  run_pass(ConvPass::GradInput, g, dtype, {{{gy, y_numel(g)}, {w, w_numel(g)}, {nullptr, 0}}},
           {gx, x_numel(g)}, [](ConvAlgo algo, const ConvGeom& geo, auto in, auto* out) {
             backward_input_with(algo, geo, in[0], in[1], out);
           });
}

void conv2d_backward_weight(const ConvGeom& g, DType dtype, const void* gy, const void* x,
                            void* gw) {
  run_pass(ConvPass::GradWeight, g, dtype, {{{gy, y_numel(g)}, {x, x_numel(g)}, {nullptr, 0}}},
           {gw, w_numel(g)}, [](ConvAlgo algo, const ConvGeom& geo, auto in, auto* out) {
             backward_weight_with(algo, geo, in[0], in[1], out);
           });
}

}  // namespace dc::cpu
