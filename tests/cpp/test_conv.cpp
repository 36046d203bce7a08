// The convolution kernels against a naive 7-loop convolution in double, at awkward sizes
// (primes, 1, strides / dilations / padding / groups, 1x1, several tiles): the algorithm chosen
// by shape, and every algorithm forced (set_conv_algo_override) on every shape it can compute,
// under every ISA; and the choice itself on the layers it was tuned on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "isa_test.h"
#include "kernels/cpu/conv.h"

namespace {

using dc::cpu::ConvAlgo;
using dc::cpu::ConvGeom;
using dc::cpu::ConvPass;

ConvGeom geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
              int64_t s, int64_t p, int64_t d, int64_t groups) {
  ConvGeom g;
  g.N = N, g.C = C, g.H = H, g.W = W, g.K = K, g.KH = KH, g.KW = KW;
  g.sh = s, g.sw = s, g.ph = p, g.pw = p, g.dh = d, g.dw = d, g.groups = groups;
  g.OH = (H + 2 * p - d * (KH - 1) - 1) / s + 1;
  g.OW = (W + 2 * p - d * (KW - 1) - 1) / s + 1;
  return g;
}

// Calls f(n, k, oh, ow, c, kh, kw, x_index) for every multiply-add of the convolution whose
// input tap is inside the image: the 7 loops of the definition.
template <typename F>
void naive_taps(const ConvGeom& g, F&& f) {
  const int64_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow)
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                const int64_t ci = (k / Kg) * Cg + c;
                f(((n * g.K + k) * g.OH + oh) * g.OW + ow, ((k * Cg + c) * g.KH + kh) * g.KW + kw,
                  ((n * g.C + ci) * g.H + ih) * g.W + iw);
              }
}

template <typename T>
std::vector<T> random_vec(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> v(n);
  for (auto& e : v) e = T(u(rng));
  return v;
}

template <typename T>
void expect_near(const std::vector<T>& got, const std::vector<double>& want, double tol,
                 const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(double(got[i]), want[i], tol * (1 + std::abs(want[i]))) << what << " at " << i;
}

// One shape's random operands and the naive results in double.
template <typename T>
struct Problem {
  ConvGeom g;
  std::vector<T> x, w, gy, bias;
  std::vector<double> y_ref, gx_ref, gw_ref;
};

template <typename T>
Problem<T> make_problem(const ConvGeom& g) {
  Problem<T> pr;
  pr.g = g;
  std::mt19937 rng(42);
  const int64_t xn = g.N * g.C * g.H * g.W, wn = g.K * (g.C / g.groups) * g.KH * g.KW,
                yn = g.N * g.K * g.OH * g.OW;
  pr.x = random_vec<T>(xn, rng), pr.w = random_vec<T>(wn, rng), pr.gy = random_vec<T>(yn, rng);
  pr.bias = random_vec<T>(g.K, rng);
  pr.y_ref.assign(yn, 0.0), pr.gx_ref.assign(xn, 0.0), pr.gw_ref.assign(wn, 0.0);
  for (int64_t i = 0; i < yn; ++i) pr.y_ref[i] = pr.bias[(i / (g.OH * g.OW)) % g.K];
  naive_taps(g, [&](int64_t yi, int64_t wi, int64_t xi) {
    pr.y_ref[yi] += double(pr.w[wi]) * double(pr.x[xi]);
    pr.gx_ref[xi] += double(pr.w[wi]) * double(pr.gy[yi]);
    pr.gw_ref[wi] += double(pr.x[xi]) * double(pr.gy[yi]);
  });
  return pr;
}

std::string describe(const ConvGeom& g) {
  return ::testing::PrintToString(std::vector<int64_t>{g.N, g.C, g.H, g.W, g.K, g.KH, g.KW}) +
         " s=" + std::to_string(g.sh) + "," + std::to_string(g.sw) + " p=" +
         std::to_string(g.ph) + "," + std::to_string(g.pw) + " d=" + std::to_string(g.dh) + "," +
         std::to_string(g.dw) + " groups=" + std::to_string(g.groups);
}

// Runs one pass with the algorithm currently in force and compares it with the naive result.
template <typename T>
void check_pass(const Problem<T>& pr, ConvPass pass, double tol) {
  const ConvGeom& g = pr.g;
  constexpr dc::DType dt = sizeof(T) == 4 ? dc::DType::Float32 : dc::DType::Float64;
  switch (pass) {
    case ConvPass::Forward: {
      std::vector<T> y(pr.y_ref.size(), T(7));  // stale values must be overwritten
      dc::cpu::conv2d_forward(g, dt, pr.x.data(), pr.w.data(), pr.bias.data(), y.data());
      expect_near(y, pr.y_ref, tol, "forward");
      break;
    }
    case ConvPass::GradInput: {
      std::vector<T> gx(pr.gx_ref.size(), T(7));
      dc::cpu::conv2d_backward_input(g, dt, pr.gy.data(), pr.w.data(), gx.data());
      expect_near(gx, pr.gx_ref, tol, "backward_input");
      break;
    }
    case ConvPass::GradWeight: {
      std::vector<T> gw(pr.gw_ref.size(), T(7));
      dc::cpu::conv2d_backward_weight(g, dt, pr.gy.data(), pr.x.data(), gw.data());
      // The weight gradient sums N * OH * OW products: its rounding error grows with the root
      // of that count, whatever the order of the sum.
      const double pixels = double(g.N * g.OH * g.OW);
      expect_near(gw, pr.gw_ref, tol * std::max(1.0, std::sqrt(pixels / 1024)), "backward_weight");
      break;
    }
  }
}

constexpr ConvPass kPasses[] = {ConvPass::Forward, ConvPass::GradInput, ConvPass::GradWeight};

// The three passes with the algorithms chosen by shape.
template <typename T>
void check(const ConvGeom& g, double tol) {
  SCOPED_TRACE(describe(g));
  const Problem<T> pr = make_problem<T>(g);
  for (ConvPass pass : kPasses) check_pass(pr, pass, tol);
}

struct Case {
  int64_t N, C, H, W, K, KH, KW, s, p, d, groups;
};

const Case kCases[] = {
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1},     // everything 1
    {2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1},     // odd sizes, same padding
    {3, 5, 11, 13, 7, 3, 2, 2, 1, 1, 1},   // stride 2, rectangular kernel
    {2, 4, 9, 9, 6, 3, 3, 1, 2, 2, 2},     // dilation, groups
    {2, 6, 8, 7, 6, 3, 3, 2, 1, 1, 6},     // depthwise, strided
    {3, 7, 5, 6, 5, 1, 1, 1, 0, 1, 1},     // 1x1: direct GEMM
    {2, 8, 6, 6, 4, 1, 1, 1, 0, 1, 2},     // grouped 1x1
    {2, 3, 5, 5, 2, 5, 5, 3, 2, 1, 1},     // kernel = image, padding
    {1, 17, 41, 37, 13, 3, 3, 1, 1, 1, 1}, // several im2col tiles, prime sizes
    {9, 16, 23, 29, 8, 3, 3, 1, 1, 1, 1},  // several batch parts for the weight gradient
    // Larger images: several im2col tiles per image, with dilation, groups, kernels that are
    // not square.
    {2, 6, 30, 27, 10, 3, 3, 1, 2, 2, 2},
    {1, 5, 20, 23, 7, 2, 3, 1, 1, 1, 1},
    {3, 4, 33, 31, 9, 5, 5, 1, 2, 1, 1},
};

TEST(Conv2dKernel, Float64MatchesNaive) {
  for (const Case& c : kCases)
    check<double>(geom(c.N, c.C, c.H, c.W, c.K, c.KH, c.KW, c.s, c.p, c.d, c.groups), 1e-11);
}

TEST(Conv2dKernel, Float32MatchesNaive) {
  for (const Case& c : kCases)
    check<float>(geom(c.N, c.C, c.H, c.W, c.K, c.KH, c.KW, c.s, c.p, c.d, c.groups), 2e-5);
}

TEST(Conv2dKernel, AsymmetricStrideAndDilation) {
  ConvGeom g = geom(2, 4, 10, 12, 3, 3, 2, 1, 1, 1, 1);
  g.sh = 2, g.sw = 3, g.dh = 1, g.dw = 2, g.ph = 0, g.pw = 2;
  g.OH = (g.H + 2 * g.ph - g.dh * (g.KH - 1) - 1) / g.sh + 1;
  g.OW = (g.W + 2 * g.pw - g.dw * (g.KW - 1) - 1) / g.sw + 1;
  check<double>(g, 1e-11);
}

// Groups of at least 16 output channels take the implicit-GEMM path (Note [Convolution as
// implicit GEMM]); with 32+ input channels per group and unit stride so does the input gradient.
const Case kImplicitCases[] = {
    {2, 5, 9, 11, 33, 3, 3, 1, 1, 1, 1},     // 33 rows: a ragged micro-panel; 99 px: staged
    {3, 40, 8, 8, 64, 3, 3, 1, 1, 1, 1},     // 64 px: tiles straight into y; two K slices
    {2, 34, 7, 6, 36, 3, 3, 2, 1, 1, 1},     // stride 2: the strided pack
    {2, 64, 6, 5, 64, 3, 2, 1, 2, 2, 2},     // groups, dilation, rectangular kernel, padding 2
    {1, 32, 4, 4, 160, 3, 3, 1, 1, 1, 1},    // 160 rows: two MC blocks; 16 px per image
    {2, 33, 5, 37, 32, 1, 3, 1, 0, 1, 1},    // rows wider than a micro-panel
    {3, 32, 7, 7, 32, 1, 1, 2, 0, 1, 1},     // 1x1 with stride 2
    {2, 96, 3, 3, 96, 3, 3, 1, 1, 1, 3},     // three groups, 3x3 images
    {5, 6, 14, 14, 20, 5, 5, 1, 0, 1, 1},    // LeNet-like: 20 rows, 100 px per image
    // The channels-last weight gradient (groups 1, 16+ channels each way): B panels that
    // straddle kernel taps (17 and 16 channels), dilation, two batch parts (4 x 51 x 49 px).
    {4, 17, 53, 51, 16, 3, 3, 1, 1, 2, 1},
    {2, 16, 9, 9, 20, 5, 5, 2, 2, 1, 1},
    // Strided input gradients by phases (32+ input channels): stride 3 with a 5x5 kernel, and
    // a stride larger than the kernel (phases no tap reaches).
    {2, 32, 25, 26, 20, 5, 5, 3, 2, 1, 1},
    {2, 33, 24, 27, 16, 2, 2, 3, 0, 1, 1},
    {2, 32, 16, 17, 24, 1, 1, 2, 0, 1, 1},   // 1x1 stride 2: three phases are zero
    {3, 40, 5, 6, 48, 1, 1, 1, 0, 1, 1},  // pointwise on small images: implicit too
    // 2x2 stride 2 on an odd-sized input: the last column gets no gradient, and the 33x33
    // phase asks its 1x1 convolution for one more row and column than gy has.
    {1, 32, 65, 65, 16, 2, 2, 2, 0, 1, 1},
};

class Conv2dImplicit : public dc::test::IsaTest {};

TEST_P(Conv2dImplicit, MatchesNaive) {
  for (const Case& c : kImplicitCases) {
    const ConvGeom g = geom(c.N, c.C, c.H, c.W, c.K, c.KH, c.KW, c.s, c.p, c.d, c.groups);
    check<double>(g, 1e-11);
    check<float>(g, 2e-5);
  }
}

TEST_P(Conv2dImplicit, AsymmetricStrideByPhases) {
  ConvGeom g = geom(2, 32, 17, 25, 17, 3, 4, 1, 1, 1, 1);
  g.sh = 2, g.sw = 3, g.ph = 1, g.pw = 2;
  g.OH = (g.H + 2 * g.ph - g.KH) / g.sh + 1;
  g.OW = (g.W + 2 * g.pw - g.KW) / g.sw + 1;
  check<double>(g, 1e-11);
  check<float>(g, 2e-5);
}

DC_INSTANTIATE_FOR_EVERY_ISA(Conv2dImplicit);

constexpr ConvAlgo kAlgos[] = {ConvAlgo::Pointwise,    ConvAlgo::Im2col,   ConvAlgo::Implicit,
                               ConvAlgo::Phases,       ConvAlgo::ChannelsLast,
                               ConvAlgo::Winograd,     ConvAlgo::Winograd4};
constexpr int kAlgoCount = sizeof(kAlgos) / sizeof(kAlgos[0]) + 1;  // and Auto

// Shapes that no algorithm was tuned for, on top of kCases and kImplicitCases: one channel
// each way, prime channel counts, asymmetric stride and dilation, padding beyond the kernel's
// reach (no implicit input gradient, no phases), depthwise with stride.
const Case kAwkwardCases[] = {
    {2, 1, 9, 7, 1, 3, 3, 2, 1, 1, 1},     // one channel each way, stride 2
    {3, 31, 10, 9, 17, 2, 2, 2, 0, 1, 1},  // even kernel, stride 2, primes
    {2, 5, 12, 11, 3, 3, 3, 1, 3, 1, 1},   // padding 3 > kernel reach 2
    {2, 12, 11, 11, 12, 3, 3, 2, 1, 1, 12},  // depthwise, strided
    {1, 19, 6, 6, 23, 1, 1, 1, 0, 1, 1},   // pointwise, primes
    {2, 8, 9, 10, 16, 3, 3, 3, 1, 1, 2},   // groups with stride 3
};

class Conv2dEveryAlgo : public dc::test::IsaTest {};

// Every algorithm forced on every shape it can compute, pass by pass, against the naive loops;
// each algorithm must have run on several shapes for each pass it serves.
TEST_P(Conv2dEveryAlgo, MatchesNaive) {
  std::vector<Case> cases(std::begin(kCases), std::end(kCases));
  cases.insert(cases.end(), std::begin(kImplicitCases), std::end(kImplicitCases));
  cases.insert(cases.end(), std::begin(kAwkwardCases), std::end(kAwkwardCases));
  int ran[3][kAlgoCount] = {};
  for (const Case& c : cases) {
    const ConvGeom g = geom(c.N, c.C, c.H, c.W, c.K, c.KH, c.KW, c.s, c.p, c.d, c.groups);
    SCOPED_TRACE(describe(g));
    const Problem<double> pd = make_problem<double>(g);
    const Problem<float> pf = make_problem<float>(g);
    for (ConvPass pass : kPasses)
      for (ConvAlgo algo : kAlgos) {
        if (!dc::cpu::conv_algo_applies(pass, algo, g)) continue;
        SCOPED_TRACE(std::string(dc::cpu::conv_pass_name(pass)) + " by " +
                     dc::cpu::conv_algo_name(algo));
        const dc::cpu::ScopedConvAlgo force(pass, algo);
        check_pass(pd, pass, 1e-11);
        // F(4x4, 3x3) mixes each product with coefficients up to 8 (A) and 5 (B), and its
        // float32 error measures about 10-15x a direct sum's (Note [Winograd convolution]).
        check_pass(pf, pass, algo == ConvAlgo::Winograd4 ? 2e-4 : 2e-5);
        ++ran[int(pass)][int(algo)];
      }
  }
  auto serves = [](ConvPass pass, ConvAlgo algo) {
    return (algo != ConvAlgo::Phases || pass == ConvPass::GradInput) &&
           (algo != ConvAlgo::ChannelsLast || pass == ConvPass::GradWeight) &&
           (algo != ConvAlgo::Implicit || pass != ConvPass::GradWeight);
  };
  for (ConvPass pass : kPasses)
    for (ConvAlgo algo : kAlgos)
      if (serves(pass, algo))
        EXPECT_GE(ran[int(pass)][int(algo)], 5)
            << dc::cpu::conv_pass_name(pass) << " by " << dc::cpu::conv_algo_name(algo);
      else
        EXPECT_EQ(ran[int(pass)][int(algo)], 0);
}

DC_INSTANTIATE_FOR_EVERY_ISA(Conv2dEveryAlgo);

// 16-bit passes (Note [16-bit convolution]): F(4x4, 3x3) where float32 takes F(2x2, 3x3) and
// the batch has 256 or more 4x4 output tiles; a forced Winograd of either size stays as forced.
TEST(Conv2dAlgo, SixteenBitPassesTakeWinograd4WhereItPays) {
  using A = ConvAlgo;
  const ConvGeom big = geom(32, 64, 32, 32, 64, 3, 3, 1, 1, 1, 1);    // 2,048 4x4 tiles
  const ConvGeom mid = geom(16, 128, 16, 16, 128, 3, 3, 1, 1, 1, 1);  // 256
  const ConvGeom few = geom(32, 256, 8, 8, 256, 3, 3, 1, 1, 1, 1);    // 128
  for (ConvPass pass : kPasses) {
    SCOPED_TRACE(dc::cpu::conv_pass_name(pass));
    for (dc::DType dt : {dc::DType::BFloat16, dc::DType::Float16}) {
      EXPECT_EQ(dc::cpu::choose_algo(pass, big, dt), A::Winograd4);
      EXPECT_EQ(dc::cpu::choose_algo(pass, mid, dt), A::Winograd4);
      EXPECT_EQ(dc::cpu::choose_algo(pass, few, dt), A::Winograd);
    }
    EXPECT_EQ(dc::cpu::choose_algo(pass, big, dc::DType::Float32), A::Winograd);
    EXPECT_EQ(dc::cpu::choose_algo(pass, big, dc::DType::Float64), A::Winograd);
    {
      const dc::cpu::ScopedConvAlgo force(pass, A::Winograd);
      EXPECT_EQ(dc::cpu::choose_algo(pass, big, dc::DType::Float16), A::Winograd);
    }
    // A forced F(4x4, 3x3) runs in float32 too, even where the bf16 GEMM takes the others.
    const dc::cpu::ScopedConvAlgo force(pass, A::Winograd4);
    EXPECT_EQ(dc::cpu::choose_algo(pass, few, dc::DType::BFloat16), A::Winograd4);
  }
}

TEST(Conv2dAlgo, ForcingOneThatCannotComputeTheShapeThrows) {
  const ConvGeom g = geom(2, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1);
  std::vector<float> x(2 * 4 * 8 * 8), w(4 * 4 * 3 * 3), y(2 * 4 * 8 * 8);
  const dc::cpu::ScopedConvAlgo force(ConvPass::Forward, ConvAlgo::Pointwise);
  try {
    dc::cpu::conv2d_forward(g, dc::DType::Float32, x.data(), w.data(), nullptr, y.data());
    FAIL() << "expected a ValueError";
  } catch (const dc::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("'pointwise'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(dc::cpu::conv_algo_from_name("fft"), dc::ValueError);
  EXPECT_THROW(dc::cpu::conv_pass_from_name("backward"), dc::ValueError);
}

TEST(Conv2dAlgo, OverrideIsScoped) {
  const ConvGeom g = geom(2, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1);
  EXPECT_EQ(dc::cpu::choose_algo(ConvPass::Forward, g), ConvAlgo::Winograd);
  {
    const dc::cpu::ScopedConvAlgo force(ConvPass::Forward, ConvAlgo::Im2col);
    EXPECT_EQ(dc::cpu::choose_algo(ConvPass::Forward, g), ConvAlgo::Im2col);
    EXPECT_EQ(dc::cpu::choose_algo(ConvPass::GradInput, g), ConvAlgo::Winograd);
  }
  EXPECT_EQ(dc::cpu::conv_algo_override(ConvPass::Forward), ConvAlgo::Auto);
  EXPECT_EQ(dc::cpu::choose_algo(ConvPass::Forward, g), ConvAlgo::Winograd);
  for (ConvAlgo a : kAlgos)
    EXPECT_EQ(dc::cpu::conv_algo_from_name(dc::cpu::conv_algo_name(a)), a);
}

// The choice by shape on the layers its thresholds were measured on (Note [Choosing a
// convolution algorithm] in csrc/kernels/cpu/conv.cpp): a change here changes speed.
TEST(Conv2dAlgo, ChoiceOnTunedLayers) {
  struct Want {
    Case c;
    ConvAlgo fwd, gi, gw;
  };
  using A = ConvAlgo;
  const Want wants[] = {
      {{32, 64, 32, 32, 64, 3, 3, 1, 1, 1, 1}, A::Winograd, A::Winograd, A::Winograd},
      {{32, 64, 32, 32, 128, 3, 3, 2, 1, 1, 1}, A::Implicit, A::Phases, A::ChannelsLast},
      {{32, 64, 32, 32, 128, 1, 1, 2, 0, 1, 1}, A::Implicit, A::Phases, A::Im2col},
      {{32, 256, 8, 8, 512, 3, 3, 2, 1, 1, 1}, A::Implicit, A::Im2col, A::ChannelsLast},
      {{32, 512, 4, 4, 512, 3, 3, 1, 1, 1, 1}, A::Winograd, A::Winograd, A::ChannelsLast},
      // 16 output tiles in the batch: too few for Winograd
      {{4, 512, 4, 4, 512, 3, 3, 1, 1, 1, 1}, A::Implicit, A::Implicit, A::ChannelsLast},
      {{32, 3, 32, 32, 64, 3, 3, 1, 1, 1, 1}, A::Winograd, A::Winograd, A::Im2col},  // ResNet stem
      {{32, 64, 56, 56, 64, 1, 1, 1, 0, 1, 1}, A::Pointwise, A::Pointwise, A::Pointwise},
      {{32, 256, 4, 4, 512, 1, 1, 1, 0, 1, 1}, A::Implicit, A::Implicit, A::Pointwise},
      {{64, 1, 28, 28, 6, 5, 5, 1, 0, 1, 1}, A::Im2col, A::Im2col, A::Im2col},    // LeNet conv1
      {{64, 6, 14, 14, 16, 5, 5, 1, 0, 1, 1}, A::Implicit, A::Im2col, A::Im2col},  // LeNet conv2
      {{32, 96, 16, 16, 96, 3, 3, 1, 1, 1, 96}, A::Im2col, A::Im2col, A::Im2col},  // depthwise
  };
  for (const Want& want : wants) {
    const Case& c = want.c;
    const ConvGeom g = geom(c.N, c.C, c.H, c.W, c.K, c.KH, c.KW, c.s, c.p, c.d, c.groups);
    SCOPED_TRACE(describe(g));
    EXPECT_EQ(dc::cpu::choose_algo(ConvPass::Forward, g), want.fwd);
    EXPECT_EQ(dc::cpu::choose_algo(ConvPass::GradInput, g), want.gi);
    EXPECT_EQ(dc::cpu::choose_algo(ConvPass::GradWeight, g), want.gw);
  }
}

}  // namespace
