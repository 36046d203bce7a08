// Core pieces tested directly: shape helpers, the strided iterator's dimension coalescing,
// the elementwise kernels of every ISA this CPU can run against naive loops (contiguous,
// strided and broadcast-scalar operands at awkward sizes), exp accuracy over its whole range,
// and the autograd engine on a small graph.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/loops.h"
#include "ops/ops.h"

namespace {

using dc::DType;
using dc::Shape;
using dc::Tensor;
using dc::cpu::Isa;

// ---- shape helpers ----------------------------------------------------------------------------

TEST(Shape, BroadcastShapes) {
  EXPECT_EQ(dc::broadcast_shapes({3, 4}, {4}, "t"), (Shape{3, 4}));
  EXPECT_EQ(dc::broadcast_shapes({2, 1, 4}, {3, 1}, "t"), (Shape{2, 3, 4}));
  EXPECT_EQ(dc::broadcast_shapes({}, {2, 3}, "t"), (Shape{2, 3}));
  EXPECT_EQ(dc::broadcast_shapes({0, 1}, {1, 5}, "t"), (Shape{0, 5}));
  EXPECT_EQ(dc::broadcast_shapes({1}, {0}, "t"), (Shape{0}));
  try {
    dc::broadcast_shapes({2, 3}, {4, 3}, "myop");
    FAIL() << "expected ValueError";
  } catch (const dc::ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("[myop]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(2, 3)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(4, 3)"), std::string::npos) << msg;
  }
}

TEST(Shape, ContiguousStrides) {
  EXPECT_EQ(dc::contiguous_strides({2, 3, 4}), (Shape{12, 4, 1}));
  EXPECT_EQ(dc::contiguous_strides({}), (Shape{}));
  EXPECT_EQ(dc::contiguous_strides({5}), (Shape{1}));
  EXPECT_EQ(dc::contiguous_strides({2, 0, 3}), (Shape{3, 3, 1}));  // zero sizes count as 1
  EXPECT_EQ(dc::numel_of({2, 0, 3}), 0);
  EXPECT_EQ(dc::numel_of({}), 1);
  EXPECT_EQ(dc::shape_str({}), "()");
  EXPECT_EQ(dc::shape_str({5}), "(5,)");
  EXPECT_EQ(dc::shape_str({2, 3}), "(2, 3)");
}

TEST(Shape, WrapDim) {
  EXPECT_EQ(dc::wrap_dim(-1, 3, "t"), 2);
  EXPECT_EQ(dc::wrap_dim(0, 3, "t"), 0);
  EXPECT_EQ(dc::wrap_dim(-3, 3, "t"), 0);
  // A 0-d tensor has no dim to index (Note [Dims of a 0-d tensor]); the ops that accept 0 and
  // -1 there, as torch does, ask for it.
  EXPECT_THROW(dc::wrap_dim(0, 0, "t"), dc::IndexError);
  EXPECT_THROW(dc::wrap_dim(-1, 0, "t"), dc::IndexError);
  EXPECT_EQ(dc::wrap_dim_scalar_ok(0, 0, "t"), 0);
  EXPECT_EQ(dc::wrap_dim_scalar_ok(-1, 0, "t"), 0);
  EXPECT_THROW(dc::wrap_dim_scalar_ok(1, 0, "t"), dc::IndexError);
  EXPECT_THROW(dc::wrap_dim(3, 3, "t"), dc::IndexError);
  EXPECT_THROW(dc::wrap_dim(-4, 3, "t"), dc::IndexError);
  EXPECT_THROW(dc::wrap_dim(1, 0, "t"), dc::IndexError);
  try {
    dc::wrap_dim(5, 2, "softmax");
    FAIL();
  } catch (const dc::IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("[softmax]"), std::string::npos);
  }
}

TEST(Shape, EmptyRejectsNegativeAndAbsurdSizes) {
  EXPECT_THROW(Tensor::empty({-1}, DType::Float32), dc::ValueError);
  EXPECT_THROW(Tensor::empty({int64_t(1) << 40, int64_t(1) << 40}, DType::Float32),
               dc::MemoryError);
  EXPECT_THROW(Tensor::empty({int64_t(1) << 47}, DType::Float64), dc::MemoryError);
  EXPECT_EQ(Tensor::empty({0, int64_t(1) << 62}, DType::Float32).numel(), 0);
}

// ---- iterator coalescing --------------------------------------------------------------------

Tensor filled(const Shape& s, DType dt = DType::Float32) { return dc::ops::zeros(s, dt); }

TEST(Iter, ContiguousMergesToOneDim) {
  Tensor a = filled({2, 3, 4}), b = filled({2, 3, 4}), out = filled({2, 3, 4});
  auto it = dc::cpu::make_iter(out.sizes(), {out, a, b});
  EXPECT_EQ(it.ndim, 1);
  EXPECT_EQ(it.shape[0], 24);
  for (int t = 0; t < 3; ++t) EXPECT_EQ(it.strides[t][0], 4);
  EXPECT_EQ(it.numel, 24);
}

TEST(Iter, BroadcastOperandGetsStrideZero) {
  Tensor a = filled({2, 3, 4}), row = filled({4}), scalar = filled({}), out = filled({2, 3, 4});
  auto it = dc::cpu::make_iter(out.sizes(), {out, a, row});
  // (2,3) merge (both contiguous in out/a, and 0-stride in row), the inner 4 stays apart.
  EXPECT_EQ(it.ndim, 2);
  EXPECT_EQ(it.shape[0], 4);
  EXPECT_EQ(it.shape[1], 6);
  EXPECT_EQ(it.strides[2][0], 4);
  EXPECT_EQ(it.strides[2][1], 0);
  auto it2 = dc::cpu::make_iter(out.sizes(), {out, a, scalar});
  EXPECT_EQ(it2.ndim, 1);
  EXPECT_EQ(it2.shape[0], 24);
  EXPECT_EQ(it2.strides[2][0], 0);
}

TEST(Iter, SizeOneDimsDropAndTransposeStaysTwoDims) {
  Tensor out = filled({3, 1, 5});
  Tensor in = filled({5, 1, 3});
  Tensor tr = Tensor::make_view(in.storage(), {3, 1, 5}, {1, 15, 3}, 0, DType::Float32);
  auto it = dc::cpu::make_iter(out.sizes(), {out, tr});
  EXPECT_EQ(it.ndim, 2);
  EXPECT_EQ(it.shape[0], 5);
  EXPECT_EQ(it.shape[1], 3);
  EXPECT_EQ(it.strides[1][0], 12);  // bytes: stride 3 floats
  EXPECT_EQ(it.strides[1][1], 4);
  auto single = dc::cpu::make_iter({}, {filled({}), filled({})});
  EXPECT_EQ(single.ndim, 1);
  EXPECT_EQ(single.numel, 1);
}

// ---- elementwise kernels per ISA vs naive loops ------------------------------------------------

class PerIsa : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    saved_ = dc::cpu::active_isa();
    try {
      dc::cpu::set_active_isa(GetParam());
    } catch (const dc::ValueError&) {
      GTEST_SKIP() << "CPU cannot run " << dc::cpu::isa_name(GetParam());
    }
  }
  void TearDown() override { dc::cpu::set_active_isa(saved_); }
  Isa saved_ = Isa::generic;
};

const int64_t kSizes[] = {0, 1, 7, 15, 16, 17, 31, 33, 1000, 4099};

template <typename T>
Tensor random_tensor(int64_t n, std::mt19937& rng, double lo, double hi) {
  Tensor t = Tensor::empty({n}, dc::dtype_of<T>::value);
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < n; ++i) t.data<T>()[i] = static_cast<T>(u(rng));
  return t;
}

// Element i of a 1-D view, honouring its stride.
template <typename T>
T at(const Tensor& t, int64_t i) {
  return t.data<T>()[t.dim() == 0 ? 0 : i * t.strides()[0]];
}

// The three layouts of an operand with n logical elements: contiguous, every other element of
// a 2n buffer, and a 0-d scalar broadcast to n.
enum class Layout { contiguous, strided, scalar };

template <typename T>
Tensor make_operand(Layout lay, int64_t n, std::mt19937& rng, double lo, double hi) {
  if (lay == Layout::contiguous) return random_tensor<T>(n, rng, lo, hi);
  if (lay == Layout::scalar) {
    Tensor s = random_tensor<T>(1, rng, lo, hi);
    return Tensor::make_view(s.storage(), {}, {}, 0, s.dtype());
  }
  Tensor base = random_tensor<T>(2 * n + 1, rng, lo, hi);
  return Tensor::make_view(base.storage(), {n}, {2}, 1, base.dtype());
}

bool close(double got, double want, double rtol, double atol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::abs(got - want) <= atol + rtol * std::abs(want);
}

struct BinaryCase {
  dc::cpu::BinaryOp op;
  std::function<double(double, double)> ref;
  double lo, hi;
};

template <typename T>
void check_binary(const BinaryCase& c, double rtol) {
  std::mt19937 rng(42);
  for (int64_t n : kSizes) {
    for (Layout la : {Layout::contiguous, Layout::strided, Layout::scalar}) {
      for (Layout lb : {Layout::contiguous, Layout::strided, Layout::scalar}) {
        Tensor a = make_operand<T>(la, n, rng, c.lo, c.hi);
        Tensor b = make_operand<T>(lb, n, rng, c.lo, c.hi);
        Tensor out = Tensor::empty({n}, dc::dtype_of<T>::value);
        dc::cpu::binary_into(c.op, out, a, b);
        for (int64_t i = 0; i < n; ++i) {
          const double want = c.ref(double(at<T>(a, i)), double(at<T>(b, i)));
          ASSERT_TRUE(close(double(out.data<T>()[i]), want, rtol, 1e-30))
              << dc::cpu::binary_op_name(c.op) << " n=" << n << " i=" << i << " layouts "
              << int(la) << "," << int(lb) << ": " << out.data<T>()[i] << " vs " << want;
        }
      }
    }
  }
}

TEST_P(PerIsa, BinaryFloat) {
  using dc::cpu::BinaryOp;
  const std::vector<BinaryCase> cases = {
      {BinaryOp::add, [](double a, double b) { return a + b; }, -3, 3},
      {BinaryOp::sub, [](double a, double b) { return a - b; }, -3, 3},
      {BinaryOp::mul, [](double a, double b) { return a * b; }, -3, 3},
      {BinaryOp::div, [](double a, double b) { return a / b; }, 0.5, 3},
      {BinaryOp::maximum, [](double a, double b) { return std::max(a, b); }, -3, 3},
      {BinaryOp::minimum, [](double a, double b) { return std::min(a, b); }, -3, 3},
      {BinaryOp::pow, [](double a, double b) { return std::pow(a, b); }, 0.5, 2},
      {BinaryOp::atan2, [](double a, double b) { return std::atan2(a, b); }, -3, 3},
  };
  for (const auto& c : cases) {
    check_binary<float>(c, 2e-6);
    check_binary<double>(c, 1e-14);
  }
}

TEST_P(PerIsa, BinaryInteger) {
  using dc::cpu::BinaryOp;
  const std::vector<BinaryCase> cases = {
      {BinaryOp::add, [](double a, double b) { return a + b; }, -100, 100},
      {BinaryOp::mul, [](double a, double b) { return a * b; }, -100, 100},
      {BinaryOp::floor_divide, [](double a, double b) { return std::floor(a / b); }, 1, 50},
      {BinaryOp::remainder,
       [](double a, double b) { return a - b * std::floor(a / b); }, 1, 50},
  };
  for (const auto& c : cases) {
    check_binary<int32_t>(c, 0);
    check_binary<int64_t>(c, 0);
  }
}

struct UnaryCase {
  dc::cpu::UnaryOp op;
  std::function<double(double)> ref;
  double lo, hi, rtol_f32;
};

template <typename T>
void check_unary(const UnaryCase& c, double rtol, double atol) {
  std::mt19937 rng(7);
  for (int64_t n : kSizes) {
    for (Layout l : {Layout::contiguous, Layout::strided, Layout::scalar}) {
      Tensor in = make_operand<T>(l, n, rng, c.lo, c.hi);
      // Strided output too: write every other element of a larger buffer.
      Tensor obuf = Tensor::empty({2 * n + 1}, dc::dtype_of<T>::value);
      Tensor out = l == Layout::strided
                       ? Tensor::make_view(obuf.storage(), {n}, {2}, 0, obuf.dtype())
                       : Tensor::empty({n}, dc::dtype_of<T>::value);
      dc::cpu::unary_into(c.op, out, in);
      for (int64_t i = 0; i < n; ++i) {
        const double want = c.ref(double(at<T>(in, i)));
        ASSERT_TRUE(close(double(at<T>(out, i)), want, rtol, atol))
            << dc::cpu::unary_op_name(c.op) << " n=" << n << " i=" << i << " x="
            << at<T>(in, i) << ": " << at<T>(out, i) << " vs " << want;
      }
    }
  }
}

TEST_P(PerIsa, UnaryFloat) {
  using dc::cpu::UnaryOp;
  const std::vector<UnaryCase> cases = {
      {UnaryOp::neg, [](double x) { return -x; }, -3, 3, 0},
      {UnaryOp::abs, [](double x) { return std::abs(x); }, -3, 3, 0},
      {UnaryOp::exp, [](double x) { return std::exp(x); }, -80, 80, 3e-7},
      {UnaryOp::log, [](double x) { return std::log(x); }, 0.01, 100, 2e-7},
      {UnaryOp::sqrt, [](double x) { return std::sqrt(x); }, 0, 100, 2e-7},
      {UnaryOp::tanh, [](double x) { return std::tanh(x); }, -10, 10, 3e-7},
      {UnaryOp::sigmoid, [](double x) { return 1 / (1 + std::exp(-x)); }, -30, 30, 5e-7},
      {UnaryOp::silu, [](double x) { return x / (1 + std::exp(-x)); }, -30, 30, 5e-7},
      {UnaryOp::relu, [](double x) { return x > 0 ? x : 0; }, -3, 3, 0},
      // erfc, not 1 + erf: the latter cancels for x < -3 even in double. In float32 the
      // rounding of x / sqrt(2) is amplified about 2 z^2 times there, hence 3e-6.
      {UnaryOp::gelu_erf,
       [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }, -6, 6, 3e-6},
      {UnaryOp::sin, [](double x) { return std::sin(x); }, -10, 10, 3e-7},
      {UnaryOp::floor, [](double x) { return std::floor(x); }, -10, 10, 0},
      {UnaryOp::round, [](double x) { return std::nearbyint(x); }, -10, 10, 0},
  };
  for (const auto& c : cases) {
    check_unary<float>(c, c.rtol_f32, 1e-37);
    check_unary<double>(c, 1e-14, 1e-300);
  }
}

TEST_P(PerIsa, CompareCastWhereFill) {
  std::mt19937 rng(3);
  for (int64_t n : kSizes) {
    Tensor a = make_operand<float>(Layout::strided, n, rng, -2, 2);
    Tensor b = make_operand<float>(Layout::scalar, n, rng, -2, 2);
    Tensor lt = Tensor::empty({n}, DType::Bool);
    dc::cpu::compare_into(dc::cpu::CompareOp::lt, lt, a, b);
    Tensor d = Tensor::empty({n}, DType::Float64);
    dc::cpu::cast_into(d, a);
    Tensor i = Tensor::empty({n}, DType::Int32);
    dc::cpu::cast_into(i, a);
    Tensor w = Tensor::empty({n}, DType::Float32);
    dc::cpu::where_into(w, lt, a, b);
    Tensor f = Tensor::empty({n}, DType::Int64);
    dc::cpu::fill_into(f, 7.0);
    for (int64_t k = 0; k < n; ++k) {
      const float x = at<float>(a, k), y = at<float>(b, k);
      ASSERT_EQ(lt.data<bool>()[k], x < y);
      ASSERT_EQ(d.data<double>()[k], double(x));
      ASSERT_EQ(i.data<int32_t>()[k], int32_t(x));  // truncation toward zero
      ASSERT_EQ(w.data<float>()[k], x < y ? x : y);
      ASSERT_EQ(f.data<int64_t>()[k], 7);
    }
  }
}

// exp_f32 (via the exp kernel) against double exp over the whole float range.
TEST_P(PerIsa, ExpF32Accuracy) {
  const int64_t n = 400001;
  Tensor x = Tensor::empty({n}, DType::Float32);
  for (int64_t i = 0; i < n; ++i)
    x.data<float>()[i] = static_cast<float>(-104.0 + (88.72283 + 104.0) * double(i) / (n - 1));
  Tensor y = Tensor::empty({n}, DType::Float32);
  dc::cpu::unary_into(dc::cpu::UnaryOp::exp, y, x);
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double want = std::exp(double(x.data<float>()[i]));
    const double got = y.data<float>()[i];
    ASSERT_TRUE(std::isfinite(got)) << "x=" << x.data<float>()[i];
    if (want >= std::numeric_limits<float>::min()) {
      int e2;
      std::frexp(want, &e2);  // want in [2^(e2 - 1), 2^e2): its float ulp is 2^(e2 - 24)
      worst = std::max(worst, std::abs(got - want) / std::ldexp(1.0, e2 - 24));
    } else {  // subnormal results: absolute error of about one subnormal step
      ASSERT_LE(std::abs(got - want), 2 * std::numeric_limits<float>::denorm_min())
          << "x=" << x.data<float>()[i];
    }
  }
  // The op's contract (vmath_exp.h): within 1 ulp, in float lanes with FMA or in double.
  EXPECT_LE(worst, 1.0) << "max ulp error over the normal range";
  // Edges: overflow, underflow, NaN, and the exact points.
  const float edge_in[] = {88.7228317f, 88.7228394f, 1000.f, -104.f, -1000.f, 0.f,
                           std::numeric_limits<float>::quiet_NaN(),
                           std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity()};
  Tensor e = Tensor::empty({9}, DType::Float32), ey = Tensor::empty({9}, DType::Float32);
  std::memcpy(e.data_ptr(), edge_in, sizeof(edge_in));
  dc::cpu::unary_into(dc::cpu::UnaryOp::exp, ey, e);
  const float* r = ey.data<float>();
  EXPECT_TRUE(std::isfinite(r[0]) && r[0] > 3.4e38f);
  EXPECT_TRUE(std::isinf(r[1]) && std::isinf(r[2]));
  EXPECT_EQ(r[3], 0.f);
  EXPECT_EQ(r[4], 0.f);
  EXPECT_EQ(r[5], 1.f);
  EXPECT_TRUE(std::isnan(r[6]));
  EXPECT_TRUE(std::isinf(r[7]));
  EXPECT_EQ(r[8], 0.f);
}

// sigmoid (1 ulp) and silu (2 ulp) on every ISA: float lanes with FMA, double without. Errors
// are judged at the ulp of max(|want|, 1e-6), as in tests/test_ulp.py.
TEST_P(PerIsa, SigmoidSiluF32Accuracy) {
  const int64_t n = 400001;
  Tensor x = Tensor::empty({n}, DType::Float32);
  for (int64_t i = 0; i < n; ++i)
    x.data<float>()[i] = static_cast<float>(-100.0 + 200.0 * double(i) / (n - 1));
  for (const auto& [op, target] : {std::pair{dc::cpu::UnaryOp::sigmoid, 1.0},
                                   std::pair{dc::cpu::UnaryOp::silu, 2.0}}) {
    Tensor y = Tensor::empty({n}, DType::Float32);
    dc::cpu::unary_into(op, y, x);
    double worst = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double xi = x.data<float>()[i], s = 1.0 / (1.0 + std::exp(-xi));
      const double want = op == dc::cpu::UnaryOp::silu ? xi * s : s;
      int e2;
      std::frexp(std::max(std::abs(want), 1e-6), &e2);
      worst = std::max(worst, std::abs(y.data<float>()[i] - want) / std::ldexp(1.0, e2 - 24));
    }
    EXPECT_LE(worst, target) << (op == dc::cpu::UnaryOp::silu ? "silu" : "sigmoid");
  }
  const float inf = std::numeric_limits<float>::infinity();
  const float edge_in[] = {inf, -inf, std::numeric_limits<float>::quiet_NaN(), 0.f};
  Tensor e = Tensor::empty({4}, DType::Float32), es = Tensor::empty({4}, DType::Float32);
  Tensor eu = Tensor::empty({4}, DType::Float32);
  std::memcpy(e.data_ptr(), edge_in, sizeof(edge_in));
  dc::cpu::unary_into(dc::cpu::UnaryOp::sigmoid, es, e);
  dc::cpu::unary_into(dc::cpu::UnaryOp::silu, eu, e);
  const float *s = es.data<float>(), *u = eu.data<float>();
  EXPECT_EQ(s[0], 1.f);
  EXPECT_EQ(s[1], 0.f);
  EXPECT_TRUE(std::isnan(s[2]));
  EXPECT_EQ(s[3], 0.5f);
  EXPECT_TRUE(std::isinf(u[0]) && u[0] > 0);
  EXPECT_TRUE(std::isnan(u[1]));  // -inf * sigmoid(-inf) = -inf * 0, as torch has it
  EXPECT_TRUE(std::isnan(u[2]));
  EXPECT_EQ(u[3], 0.f);
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// The float32 kernel of `op` over `xs` (with the op's params, if any).
std::vector<float> unary_f32(dc::cpu::UnaryOp op, const std::vector<float>& xs,
                             const double* params = nullptr) {
  const int64_t n = static_cast<int64_t>(xs.size());
  Tensor x = Tensor::empty({n}, DType::Float32), y = Tensor::empty({n}, DType::Float32);
  std::memcpy(x.data_ptr(), xs.data(), sizeof(float) * xs.size());
  dc::cpu::unary_into(op, y, x, params);
  return std::vector<float>(y.data<float>(), y.data<float>() + n);
}
// The largest error of got[i] against want(xs[i]) in float32 ulp, judged at the ulp of
// max(|want|, floor) (tests/test_ulp.py uses 1e-6); its input in `worst_x`.
template <typename Want>
double max_ulp(const std::vector<float>& xs, const std::vector<float>& got, Want want,
               float& worst_x, double floor = 1e-6) {
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double w = want(double(xs[i]));
    int e2;
    std::frexp(std::max(std::abs(w), floor), &e2);
    const double err = std::abs(double(got[i]) - w) / std::ldexp(1.0, e2 - 24);
    if (err > worst) worst = err, worst_x = xs[i];
  }
  return worst;
}
// The floats next to c, k of them on each side.
void push_around(std::vector<float>& xs, float c, int k) {
  float lo = c, hi = c;
  for (int i = 0; i < k; ++i) {
    xs.push_back(lo = std::nextafter(lo, -INFINITY));
    xs.push_back(hi = std::nextafter(hi, INFINITY));
  }
}

// erfc within 1.25 ulp on every ISA (2 is the op's target; the max over every float is 0.96
// in float lanes with FMA, 1.23 in double without), densely around the 0.875 seam between the
// series and the e^(-x^2) G(1/x) form, and into the subnormal tail.
TEST_P(PerIsa, ErfcF32Accuracy) {
  std::vector<float> xs;
  for (int64_t i = 0; i <= 300000; ++i) xs.push_back(float(-5.0 + 15.2 * double(i) / 300000));
  push_around(xs, 0.875f, 100000);
  push_around(xs, -0.875f, 100000);
  float worst_x = 0;
  const double worst = max_ulp(xs, unary_f32(dc::cpu::UnaryOp::erfc, xs),
                               [](double x) { return std::erfc(x); }, worst_x);
  EXPECT_LE(worst, 1.25) << "at x = " << worst_x;
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> r = unary_f32(
      dc::cpu::UnaryOp::erfc, {inf, -inf, kNaN, 0.f, 10.2f, -10.2f});
  EXPECT_EQ(r[0], 0.f);
  EXPECT_EQ(r[1], 2.f);
  EXPECT_TRUE(std::isnan(r[2]));
  EXPECT_EQ(r[3], 1.f);
  EXPECT_EQ(r[4], 0.f);
  EXPECT_EQ(r[5], 2.f);
}

// logit within 1 ulp on every ISA (2 is the op's target; 0.93 over every float of [0, 1] in
// float lanes with FMA, 0.5 in double without), densely around z = 1/2 (where the result is
// small) and the seams at 1/4 and 3/4; 0 and 1 give -inf and inf, outside [0, 1] NaN.
TEST_P(PerIsa, LogitF32Accuracy) {
  std::vector<float> xs;
  for (int64_t i = 1; i < 300000; ++i) xs.push_back(float(double(i) / 300000));
  for (float c : {0.25f, 0.5f, 0.75f}) push_around(xs, c, 50000);
  for (float v = 1e-30f; v < 0.1f; v *= 1.37f) xs.push_back(v);
  const double params[2] = {0.0, 0.0};  // no eps
  float worst_x = 0;
  const double worst = max_ulp(xs, unary_f32(dc::cpu::UnaryOp::logit, xs, params),
                               [](double z) { return std::log(z) - std::log1p(-z); }, worst_x);
  EXPECT_LE(worst, 1.0) << "at z = " << worst_x;
  const std::vector<float> r = unary_f32(
      dc::cpu::UnaryOp::logit, {0.f, 1.f, -0.5f, 1.5f, kNaN, 0.5f},
      params);
  EXPECT_TRUE(std::isinf(r[0]) && r[0] < 0);
  EXPECT_TRUE(std::isinf(r[1]) && r[1] > 0);
  EXPECT_TRUE(std::isnan(r[2]) && std::isnan(r[3]) && std::isnan(r[4]));
  EXPECT_EQ(r[5], 0.f);
}

// asin and acos within 1 ulp on every ISA (0.64 over every float of [-1, 1] in float lanes
// with FMA, 0.5 in double without), densely at the 1/2 seam and near +-1, where acos is small
// and its square root's rounding must be carried; edges and NaN outside [-1, 1].
TEST_P(PerIsa, AsinAcosF32Accuracy) {
  std::vector<float> around, xs;
  for (int64_t i = -200000; i <= 200000; ++i) xs.push_back(float(double(i) / 200000));
  for (float c : {0.5f, -0.5f, 1.f, -1.f}) push_around(around, c, 40000);
  for (float v : around)
    if (std::abs(v) <= 1.f) xs.push_back(v);
  for (const bool is_acos : {false, true}) {
    float worst_x = 0;
    const double worst = max_ulp(
        xs, unary_f32(is_acos ? dc::cpu::UnaryOp::acos : dc::cpu::UnaryOp::asin, xs),
        [is_acos](double x) { return is_acos ? std::acos(x) : std::asin(x); }, worst_x);
    EXPECT_LE(worst, 1.0) << (is_acos ? "acos" : "asin") << " at x = " << worst_x;
  }
  const std::vector<float> edge = {1.f, -1.f, -0.f, 1.0000001f, -2.f,
                                   kNaN};
  const std::vector<float> a = unary_f32(dc::cpu::UnaryOp::asin, edge);
  const std::vector<float> c = unary_f32(dc::cpu::UnaryOp::acos, edge);
  EXPECT_EQ(a[0], 1.57079637f);
  EXPECT_EQ(a[1], -1.57079637f);
  EXPECT_TRUE(a[2] == 0.f && std::signbit(a[2]));
  EXPECT_EQ(c[0], 0.f);
  EXPECT_EQ(c[1], 3.14159274f);
  EXPECT_EQ(c[2], 1.57079637f);
  for (int i = 3; i < 6; ++i) EXPECT_TRUE(std::isnan(a[i]) && std::isnan(c[i])) << i;
}

// atanh within 1 ulp on every ISA (0.94 over every float of [-1, 1] in float lanes with FMA,
// 0.5 in double without), densely near 0 and +-1; +-1 give +-inf, outside [-1, 1] NaN.
TEST_P(PerIsa, AtanhF32Accuracy) {
  std::vector<float> around, xs;
  for (int64_t i = -200000; i <= 200000; ++i) xs.push_back(float(double(i) / 200001));
  for (float c : {1.f, -1.f, 0.5f}) push_around(around, c, 40000);
  for (float v : around)
    if (std::abs(v) < 1.f) xs.push_back(v);
  for (float v = 1e-30f; v < 0.1f; v *= 1.37f) xs.push_back(v);
  float worst_x = 0;
  const double worst = max_ulp(xs, unary_f32(dc::cpu::UnaryOp::atanh, xs),
                               [](double x) { return std::atanh(x); }, worst_x);
  EXPECT_LE(worst, 1.0) << "at x = " << worst_x;
  const std::vector<float> r = unary_f32(
      dc::cpu::UnaryOp::atanh, {1.f, -1.f, -0.f, 1.0000001f, kNaN});
  EXPECT_TRUE(std::isinf(r[0]) && r[0] > 0);
  EXPECT_TRUE(std::isinf(r[1]) && r[1] < 0);
  EXPECT_TRUE(r[2] == 0.f && std::signbit(r[2]));
  EXPECT_TRUE(std::isnan(r[3]) && std::isnan(r[4]));
}

// sin and cos (and their derivatives) within 1 ulp on every ISA: float lanes below 2^17 with
// FMA, double without; rows holding a larger element take the double path (2^17 to 2^28) and
// libm (above), whichever row they are in. Inputs near multiples of pi/2 test the reduction.
TEST_P(PerIsa, SinCosF32Accuracy) {
  std::vector<float> xs;
  for (int64_t i = 0; i <= 200000; ++i)
    xs.push_back(float(-131071.0 + 262142.0 * double(i) / 200000));
  for (int64_t q = 1; q < 83000; q += 37) push_around(xs, float(q * 1.5707963267948966), 1);
  for (float v : {0.f, -0.f, 1e-30f, -1e-40f, 0.7853981f, 131071.99f}) xs.push_back(v);
  // The same values alone, and with one element past each limit in the row.
  for (float extra : {0.f, 2.5e5f, 1e30f}) {
    std::vector<float> row = xs;
    if (extra != 0.f) row.push_back(extra);
    const int64_t m = static_cast<int64_t>(row.size());
    Tensor x = Tensor::empty({m}, DType::Float32), g = Tensor::empty({m}, DType::Float32);
    std::memcpy(x.data_ptr(), row.data(), sizeof(float) * row.size());
    for (int64_t i = 0; i < m; ++i) g.data<float>()[i] = 1.0f;
    for (const bool is_cos : {false, true}) {
      const auto op = is_cos ? dc::cpu::UnaryOp::cos : dc::cpu::UnaryOp::sin;
      Tensor dy = Tensor::empty({m}, DType::Float32);
      dc::cpu::unary_backward_into(op, dy, g, x);
      const std::vector<float> d(dy.data<float>(), dy.data<float>() + m);
      float wx = 0, wdx = 0;
      auto f = [is_cos](double v) { return is_cos ? std::cos(v) : std::sin(v); };
      auto df = [is_cos](double v) { return is_cos ? -std::sin(v) : std::cos(v); };
      const double worst = max_ulp(row, unary_f32(op, row), f, wx, 1e-30);
      const double worst_d = max_ulp(row, d, df, wdx, 1e-30);
      EXPECT_LE(worst, 1.0) << (is_cos ? "cos" : "sin") << " extra " << extra << " at " << wx;
      EXPECT_LE(worst_d, 1.0) << (is_cos ? "cos" : "sin") << " backward, extra " << extra
                              << " at " << wdx;
    }
  }
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> edge = {inf, -inf, kNaN, -0.f};
  const std::vector<float> s = unary_f32(dc::cpu::UnaryOp::sin, edge);
  const std::vector<float> c = unary_f32(dc::cpu::UnaryOp::cos, edge);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(std::isnan(s[i]) && std::isnan(c[i])) << i;
  EXPECT_TRUE(s[3] == 0.f && std::signbit(s[3]));  // sin(-0) = -0
  EXPECT_EQ(c[3], 1.f);
}

TEST_P(PerIsa, IntegerDivisionByMinusOneDoesNotTrap) {
  Tensor a = Tensor::empty({3}, DType::Int64), b = Tensor::empty({3}, DType::Int64);
  const int64_t av[] = {std::numeric_limits<int64_t>::min(), 7, -7};
  for (int k = 0; k < 3; ++k) {
    a.data<int64_t>()[k] = av[k];
    b.data<int64_t>()[k] = -1;
  }
  Tensor q = Tensor::empty({3}, DType::Int64), r = Tensor::empty({3}, DType::Int64);
  dc::cpu::binary_into(dc::cpu::BinaryOp::floor_divide, q, a, b);
  dc::cpu::binary_into(dc::cpu::BinaryOp::remainder, r, a, b);
  EXPECT_EQ(q.data<int64_t>()[0], std::numeric_limits<int64_t>::min());
  EXPECT_EQ(q.data<int64_t>()[1], -7);
  EXPECT_EQ(q.data<int64_t>()[2], 7);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(r.data<int64_t>()[k], 0);
}

INSTANTIATE_TEST_SUITE_P(Isas, PerIsa, ::testing::Values(Isa::generic, Isa::avx2, Isa::avx512),
                         [](const ::testing::TestParamInfo<Isa>& i) {
                           return std::string(dc::cpu::isa_name(i.param));
                         });

// ---- autograd engine -----------------------------------------------------------------------

Tensor leaf(std::vector<double> v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::Float64);
  for (size_t i = 0; i < v.size(); ++i) t.data<double>()[i] = v[i];
  t.autograd_meta().requires_grad = true;
  return t;
}

TEST(Autograd, SmallGraphGradients) {
  using namespace dc::ops;
  // y = sum(x * w + exp(x)) ; dy/dx = w + exp(x), dy/dw = x; x is used twice (diamond).
  Tensor x = leaf({0.5, -1.0, 2.0}), w = leaf({3.0, 4.0, -5.0});
  Tensor y = sum(add(mul(x, w), exp(x)));
  ASSERT_TRUE(y.requires_grad());
  EXPECT_EQ(y.grad_fn()->name(), "sum");
  dc::autograd::backward({y}, {}, false, false);
  for (int i = 0; i < 3; ++i) {
    const double xv = x.data<double>()[i], wv = w.data<double>()[i];
    EXPECT_NEAR(x.grad().data<double>()[i], wv + std::exp(xv), 1e-12);
    EXPECT_NEAR(w.grad().data<double>()[i], xv, 1e-12);
  }
  // Second backward through the freed graph: mul saved tensors, so it must throw.
  EXPECT_THROW(dc::autograd::backward({y}, {}, false, false), dc::RuntimeError);
}

TEST(Autograd, GradWithCreateGraphGivesSecondDerivative) {
  using namespace dc::ops;
  Tensor x = leaf({1.5, -0.5});
  Tensor y = sum(mul(mul(x, x), x));  // x^3
  auto g = dc::autograd::grad({y}, {}, {x}, true, true, false);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_TRUE(g[0].requires_grad());
  EXPECT_FALSE(x.grad().defined());  // grad() never touches .grad
  auto h = dc::autograd::grad({sum(g[0])}, {}, {x}, false, false, false);
  for (int i = 0; i < 2; ++i) {
    const double xv = x.data<double>()[i];
    EXPECT_NEAR(g[0].data<double>()[i], 3 * xv * xv, 1e-12);
    EXPECT_NEAR(h[0].data<double>()[i], 6 * xv, 1e-12);
  }
}

TEST(Autograd, NoGradAndVersionCheck) {
  using namespace dc::ops;
  Tensor x = leaf({1.0, 2.0});
  {
    dc::autograd::GradModeGuard off(false);
    EXPECT_FALSE(mul(x, x).requires_grad());
  }
  Tensor h = mul(x, wrap_scalar(2.0));
  Tensor y = sum(mul(h, h));
  Tensor one = scalar_tensor(1.0, DType::Float64);
  add_(h, one);  // h was saved by mul
  try {
    dc::autograd::backward({y}, {}, false, false);
    FAIL() << "expected a version error";
  } catch (const dc::RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("mul"), std::string::npos) << e.what();
  }
  EXPECT_THROW(add_(x, one), dc::RuntimeError);  // leaf that requires grad
}

}  // namespace

// Note [Large-block cache]: a freed block of 1 MB or more serves the next request it fits
// (at most 1/8 larger), and is 64-byte aligned like any other; small blocks bypass the cache.
TEST(Storage, LargeBlocksAreReused) {
  const size_t big = (size_t(3) << 20) + 64 * 37;  // a size no other test frees
  void* first;
  {
    auto s = dc::Storage::allocate(big);
    first = s->data;
    std::memset(s->data, 0x5a, big);
  }
  {
    auto s = dc::Storage::allocate(big - 1000);  // fits the cached block
    EXPECT_EQ(s->data, first);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(s->data) % 64, 0u);
    auto t = dc::Storage::allocate(big);  // the block is taken: a new one
    EXPECT_NE(t->data, first);
  }
  auto small = dc::Storage::allocate(big / 2);  // much smaller than any cached block
  EXPECT_NE(small->data, first);
}
