// Accuracy of the vm:: trigonometric and special functions (kernels/cpu/vec/vmath_trig.h and
// vmath_special.h): max ulp error against a higher-precision reference over dense samples of
// each domain, and the special values (signed zeros, infinities, NaN, poles) as torch gives them.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <gtest/gtest.h>
#include "vmath_util.h"
namespace dc::vmath_test_trig {
#include "kernels/cpu/vec/vmath.h"
}

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace dc::vmath_test_trig {
namespace {

using vmath_test::dense_floats;
using vmath_test::special_values;
using vmath_test::ulp_error;

// Doubles dense in every binade of [lo, hi] (lo >= 0), both signs when `both_signs`: walks
// the bit patterns with a fixed step, like dense_floats.
std::vector<double> dense_doubles(double lo, double hi, int64_t count, bool both_signs) {
  std::vector<double> out;
  uint64_t ia, ib;
  std::memcpy(&ia, &lo, 8);
  std::memcpy(&ib, &hi, 8);
  const uint64_t step = std::max<uint64_t>(1, (ib - ia) / std::max<int64_t>(count, 1));
  for (uint64_t i = ia; i <= ib && i >= ia; i += step) {
    double d;
    std::memcpy(&d, &i, 8);
    out.push_back(d);
    if (both_signs) out.push_back(-d);
  }
  for (double s : special_values<double>()) out.push_back(s);
  return out;
}

// Samples of [lo, hi] spaced evenly (dense where the binade walk is sparse: a wide interval
// away from zero).
template <typename T>
std::vector<T> linear(double lo, double hi, int64_t count) {
  std::vector<T> out;
  for (int64_t i = 0; i <= count; ++i) out.push_back(static_cast<T>(lo + (hi - lo) * i / count));
  return out;
}

template <typename T>
struct Worst {
  double ulp = 0;
  T at = 0;
};

// Max ulp error of fn against ref over xs; prints it so the test log is the accuracy table.
template <typename T, typename Fn, typename Ref>
Worst<T> max_ulp(const char* name, const std::vector<T>& xs, Fn fn, Ref ref, double floor) {
  Worst<T> w;
  for (T x : xs) {
    auto r = ref(x);
    if (sizeof(T) == 4 && std::fabs(double(r)) > FLT_MAX) r = static_cast<float>(r);
    const double e = ulp_error<T>(fn(x), r, floor);
    if (e > w.ulp || (e != e)) {
      w.ulp = e;
      w.at = x;
    }
  }
  std::printf("  %-10s %-6s max %.3f ulp at %.17g\n", name, sizeof(T) == 4 ? "float" : "double",
              w.ulp, static_cast<double>(w.at));
  return w;
}

// sin(pi x) (shift 0) or cos(pi x) (shift 1) in long double: exact reduction to x = n/2 + r,
// |r| <= 1/4, then libm.
long double pi_quadrant(long double x, int shift) {
  const long double m = std::fmod(x, 2.0L);  // exact
  const long double n = std::nearbyint(2 * m);
  const long double r = (m - n / 2) * 3.14159265358979323846264338327950288L;
  const int k = (static_cast<int>(n) + shift) & 3;
  const long double v = (k & 1) ? std::cos(r) : std::sin(r);
  return (k & 2) ? -v : v;
}

constexpr double kFloorF = 1e-6;    // float: results below 1e-6 judged by absolute error
constexpr double kFloorD = 1e-300;  // double: relative everywhere

// sin, cos, tan over their fast range (|x| < 2^28 float, 2^20 double; sin_needs_slow above),
// float against double libm, double against long double.
TEST(VmathTrig, SinCosTan) {
  std::vector<float> xs;
  for (float x : dense_floats(-FLT_MAX, FLT_MAX, 1000000))
    if (!vm::sin_needs_slow(x)) xs.push_back(x);
  const auto near = linear<float>(-10, 10, 100000);
  const std::vector<const std::vector<float>*> sets = {&xs, &near};
  for (const auto* set : sets) {
    EXPECT_LE(max_ulp(
                  "sin", *set, [](float x) { return vm::sin(x); },
                  [](float x) { return std::sin(double(x)); }, kFloorF)
                  .ulp,
              1.0);
    EXPECT_LE(max_ulp(
                  "cos", *set, [](float x) { return vm::cos(x); },
                  [](float x) { return std::cos(double(x)); }, kFloorF)
                  .ulp,
              1.0);
    EXPECT_LE(max_ulp(
                  "tan", *set, [](float x) { return vm::tan(x); },
                  [](float x) { return std::tan(double(x)); }, kFloorF)
                  .ulp,
              1.0);
  }
  // double: the fast range (|x| < 2^20) against long double.
  std::vector<double> xd;
  for (double x : dense_doubles(1e-300, 1048575.0, 300000, true))
    if (!vm::sin_needs_slow(x)) xd.push_back(x);
  for (double x : linear<double>(-20, 20, 100000)) xd.push_back(x);
  for (double x : {double(INFINITY), -double(INFINITY), double(NAN)}) xd.push_back(x);
  EXPECT_LE(max_ulp(
                "sin", xd, [](double x) { return vm::sin(x); },
                [](double x) { return std::sin((long double)x); }, kFloorD)
                .ulp,
            2.0);
  EXPECT_LE(max_ulp(
                "cos", xd, [](double x) { return vm::cos(x); },
                [](double x) { return std::cos((long double)x); }, kFloorD)
                .ulp,
            2.0);
  // tan = sin / cos: the two roundings add up to ~2.2 ulp.
  EXPECT_LE(max_ulp(
                "tan", xd, [](double x) { return vm::tan(x); },
                [](double x) { return std::tan((long double)x); }, kFloorD)
                .ulp,
            3.0);
  EXPECT_FALSE(vm::sin_needs_slow(1e6));
  EXPECT_TRUE(vm::sin_needs_slow(2e6));
  EXPECT_FALSE(vm::sin_needs_slow(2.6e8f));
  EXPECT_TRUE(vm::sin_needs_slow(2.7e8f));
  EXPECT_FALSE(vm::sin_needs_slow(INFINITY));  // NaN comes out of the fast path
  EXPECT_TRUE(vm::tan_needs_slow(FLT_MAX) && vm::cos_needs_slow(-FLT_MAX));
}

TEST(VmathTrig, TrigSpecialValues) {
  for (float z : {0.0f, -0.0f}) {
    EXPECT_EQ(std::signbit(vm::sin(z)), std::signbit(z));
    EXPECT_EQ(std::signbit(vm::tan(z)), std::signbit(z));
    EXPECT_EQ(vm::cos(z), 1.0f);
    EXPECT_EQ(std::signbit(vm::sin(double(z))), std::signbit(z));
    EXPECT_EQ(std::signbit(vm::tan(double(z))), std::signbit(z));
    EXPECT_EQ(vm::cos(double(z)), 1.0);
  }
  for (float v : {INFINITY, -INFINITY, NAN}) {
    EXPECT_TRUE(std::isnan(vm::sin(v)) && std::isnan(vm::cos(v)) && std::isnan(vm::tan(v)));
    const double d = v;
    EXPECT_TRUE(std::isnan(vm::sin(d)) && std::isnan(vm::cos(d)) && std::isnan(vm::tan(d)));
  }
}

TEST(VmathTrig, InverseTrig) {
  const auto unit = dense_floats(-1, 1, 1000000);
  const auto wide = dense_floats(-FLT_MAX, FLT_MAX, 1000000);
  const auto unit_d = dense_doubles(1e-300, 1.0, 300000, true);
  const auto wide_d = dense_doubles(1e-300, DBL_MAX, 300000, true);
  const auto lin_d = linear<double>(-1, 1, 200000);
  EXPECT_LE(max_ulp(
                "asin", unit, [](float x) { return vm::asin(x); },
                [](float x) { return std::asin(double(x)); }, kFloorF)
                .ulp,
            1.0);
  EXPECT_LE(max_ulp(
                "acos", unit, [](float x) { return vm::acos(x); },
                [](float x) { return std::acos(double(x)); }, kFloorF)
                .ulp,
            1.0);
  EXPECT_LE(max_ulp(
                "atan", wide, [](float x) { return vm::atan(x); },
                [](float x) { return std::atan(double(x)); }, kFloorF)
                .ulp,
            1.0);
  for (const auto* set : {&unit_d, &lin_d}) {
    EXPECT_LE(max_ulp(
                  "asin", *set, [](double x) { return vm::asin(x); },
                  [](double x) { return std::asin((long double)x); }, kFloorD)
                  .ulp,
              2.0);
    EXPECT_LE(max_ulp(
                  "acos", *set, [](double x) { return vm::acos(x); },
                  [](double x) { return std::acos((long double)x); }, kFloorD)
                  .ulp,
              2.0);
  }
  EXPECT_LE(max_ulp(
                "atan", wide_d, [](double x) { return vm::atan(x); },
                [](double x) { return std::atan((long double)x); }, kFloorD)
                .ulp,
            2.0);
  for (float v : {1.0000001f, -1.0000001f, 2.0f, INFINITY, -INFINITY, NAN}) {
    EXPECT_TRUE(std::isnan(vm::asin(v)) && std::isnan(vm::acos(v))) << v;
    EXPECT_TRUE(std::isnan(vm::asin(double(v))) && std::isnan(vm::acos(double(v)))) << v;
  }
  EXPECT_TRUE(std::signbit(vm::asin(-0.0f)) && std::signbit(vm::atan(-0.0f)));
  EXPECT_TRUE(std::signbit(vm::asin(-0.0)) && std::signbit(vm::atan(-0.0)));
  EXPECT_TRUE(std::isnan(vm::atan(NAN)) && std::isnan(vm::atan(double(NAN))));
}

// atan2 on a grid of (y, x) from every binade and sign, plus the special pairs.
TEST(VmathTrig, Atan2) {
  auto axis = dense_floats(-1e30f, 1e30f, 1500);
  for (float v : {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_MAX, -FLT_MAX, FLT_TRUE_MIN})
    axis.push_back(v);
  Worst<float> wf;
  Worst<double> wd;
  for (float y : axis) {
    for (float x : axis) {
      const double ef =
          ulp_error<float>(vm::atan2(y, x), std::atan2(double(y), double(x)), kFloorF);
      const double dy = double(y) * (1 + 0x1.37p-30), dx = double(x) * (1 - 0x1.91p-29);
      const double ed = ulp_error<double>(vm::atan2(dy, dx),
                                          std::atan2((long double)dy, (long double)dx), kFloorD);
      if (!(ef <= wf.ulp)) wf = {ef, y};
      if (!(ed <= wd.ulp)) wd = {ed, dy};
    }
  }
  std::printf("  atan2      float  max %.3f ulp (y = %g)\n", wf.ulp, wf.at);
  std::printf("  atan2      double max %.3f ulp (y = %g)\n", wd.ulp, wd.at);
  EXPECT_LE(wf.ulp, 1.0);
  EXPECT_LE(wd.ulp, 2.0);
  // DBL_MAX-sized pairs, where ay + ax would overflow.
  EXPECT_NEAR(vm::atan2(DBL_MAX, DBL_MAX / 3), std::atan2(3.0, 1.0), 1e-15);
}

TEST(VmathTrig, SinPiCosPi) {
  const auto xs = dense_floats(-FLT_MAX, FLT_MAX, 1000000);
  const auto near = linear<float>(-8, 8, 400000);
  auto sinpi_ref = [](long double x) { return pi_quadrant(x, 0); };
  auto cospi_ref = [](long double x) { return pi_quadrant(std::fabs(x), 1); };
  for (const auto* set : {&xs, &near}) {
    EXPECT_LE(max_ulp(
                  "sinpi", *set, [](float x) { return vm::sinpi(x); },
                  [&](float x) { return double(sinpi_ref(x)); }, kFloorF)
                  .ulp,
              1.0);
    EXPECT_LE(max_ulp(
                  "cospi", *set, [](float x) { return vm::cospi(x); },
                  [&](float x) { return double(cospi_ref(x)); }, kFloorF)
                  .ulp,
              1.0);
  }
  auto xd = dense_doubles(1e-300, 1e17, 300000, true);
  for (double x : linear<double>(-8, 8, 100000)) xd.push_back(x);
  EXPECT_LE(
      max_ulp("sinpi", xd, [](double x) { return vm::sinpi(x); }, sinpi_ref, kFloorD).ulp, 2.0);
  EXPECT_LE(
      max_ulp("cospi", xd, [](double x) { return vm::cospi(x); }, cospi_ref, kFloorD).ulp, 2.0);
  // Exact zeros with C23 signs, exact +-1.
  for (float n : {0.0f, 1.0f, 2.0f, 3.0f, 17.0f, 8388609.0f, 1e30f}) {
    EXPECT_TRUE(vm::sinpi(n) == 0 && !std::signbit(vm::sinpi(n))) << n;
    EXPECT_TRUE(vm::sinpi(-n) == 0 && std::signbit(vm::sinpi(-n))) << n;
    EXPECT_TRUE(vm::sinpi(double(n)) == 0 && !std::signbit(vm::sinpi(double(n)))) << n;
    const float h = n + 0.5f;
    if (h - n == 0.5f) {
      EXPECT_TRUE(vm::cospi(h) == 0 && !std::signbit(vm::cospi(h))) << h;
      EXPECT_TRUE(vm::cospi(-double(h)) == 0 && !std::signbit(vm::cospi(-double(h)))) << h;
    }
    const double parity = std::fmod(double(n), 2.0) == 0 ? 1.0 : -1.0;
    EXPECT_EQ(vm::cospi(n), parity) << n;
    EXPECT_EQ(vm::cospi(-double(n)), parity) << n;
  }
  EXPECT_EQ(vm::cospi(4503599627370497.0), -1.0);  // odd, above 2^52
  EXPECT_EQ(vm::cospi(9007199254740994.0), 1.0);
  EXPECT_EQ(vm::sinpi(0.5f), 1.0f);
  EXPECT_EQ(vm::sinpi(-1.5), 1.0);
  for (float v : {INFINITY, -INFINITY, NAN}) {
    EXPECT_TRUE(std::isnan(vm::sinpi(v)) && std::isnan(vm::cospi(v)));
    EXPECT_TRUE(std::isnan(vm::sinpi(double(v))) && std::isnan(vm::cospi(double(v))));
  }
}

// ---- special functions ----

// digamma in long double: recurrence up to 30, asymptotic series, reflection below 0.
long double digamma_ref(long double x) {
  const long double pi = 3.14159265358979323846264338327950288L;
  if (x < 0) return digamma_ref(1 - x) - pi * pi_quadrant(x, 1) / pi_quadrant(x, 0);
  long double acc = 0;
  for (; x < 30; x += 1) acc -= 1 / x;
  const long double w = 1 / (x * x);
  const long double b[] = {1.0L / 12,  -1.0L / 120,     1.0L / 252, -1.0L / 240,
                           1.0L / 132, -691.0L / 32760, 1.0L / 12};
  long double series = 0;
  for (int k = 6; k >= 0; --k) series = series * w + b[k];
  return acc + std::log(x) - 0.5L / x - w * series;
}

// polygamma(n, x) for n >= 1 in long double: the Hurwitz sum up to x + k >= 40, then
// Euler-Maclaurin.
long double polygamma_ref(int n, long double x) {
  const int s = n + 1;
  long double sum = 0;
  for (; x < 40; x += 1) sum += std::pow(x, -(long double)s);
  const long double b[] = {1.0L / 12, -1.0L / 720, 1.0L / 30240, -1.0L / 1209600, 1.0L / 47900160};
  long double tail = std::pow(x, 1.0L - s) / (s - 1) + 0.5L * std::pow(x, -(long double)s);
  long double poch = s;
  for (int j = 0; j < 5; ++j) {
    tail += b[j] * poch * std::pow(x, -(long double)(s + 2 * j + 1));
    poch *= (long double)(s + 2 * j + 1) * (s + 2 * j + 2);
  }
  long double fact = 1;
  for (int i = 2; i <= n; ++i) fact *= i;
  return (n % 2 ? 1 : -1) * fact * (sum + tail);
}

// erfinv in long double: Newton on erf (erfc above 1/2) from a start point.
long double erfinv_ref(long double y, long double x) {
  const long double a = std::fabs(y);
  x = std::fabs(x);
  for (int i = 0; i < 6; ++i) {
    const long double r = a <= 0.5L ? std::erf(x) - a : (1 - a) - std::erfc(x);
    x -= r / (1.12837916709551257389615890312154517L * std::exp(-x * x));
  }
  return y < 0 ? -x : x;
}

// i0 in long double: the power series (positive terms) up to 60, the asymptotic series above.
long double i0_ref(long double x) {
  x = std::fabs(x);
  if (x <= 60) {
    const long double q = x * x / 4;
    long double sum = 1, term = 1;
    for (int k = 1; k < 400 && term > 1e-22L * sum; ++k) {
      term *= q / ((long double)k * k);
      sum += term;
    }
    return sum;
  }
  long double sum = 1, term = 1;
  for (int k = 1; k < 30; ++k) {
    term *= (2 * k - 1) * (2 * k - 1) / (8.0L * k * x);
    sum += term;
  }
  return std::exp(x) / std::sqrt(2 * 3.14159265358979323846264338327950288L * x) * sum;
}

// i1 in long double: the power series up to 60, the asymptotic series above.
long double i1_ref(long double x) {
  const long double a = std::fabs(x);
  long double v;
  if (a <= 60) {
    const long double q = a * a / 4;
    long double sum = 1, term = 1;
    for (int k = 1; k < 400 && term > 1e-22L * sum; ++k) {
      term *= q / ((long double)k * (k + 1));
      sum += term;
    }
    v = a / 2 * sum;
  } else {
    long double sum = 1, term = 1;
    for (int k = 1; k < 30; ++k) {
      term *= ((2 * k - 1) * (2 * k - 1) - 4) / (8.0L * k * a);
      sum += term;
    }
    v = std::exp(a) / std::sqrt(2 * 3.14159265358979323846264338327950288L * a) * sum;
  }
  return x < 0 ? -v : v;
}

std::vector<float> floats_with(std::vector<float> a, const std::vector<float>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(VmathSpecial, Lgamma) {
  const auto xs =
      floats_with(dense_floats(-FLT_MAX, FLT_MAX, 1000000), linear<float>(-12, 12, 400000));
  EXPECT_LE(max_ulp(
                "lgamma", xs, [](float x) { return vm::lgamma(x); },
                [](float x) { return std::lgamma(double(x)); }, kFloorF)
                .ulp,
            4.0);
  // double: positive axis (relative), negative axis judged absolutely below 1e-12.
  auto xd = dense_doubles(1e-300, DBL_MAX, 300000, false);
  for (double x : linear<double>(0.001, 12, 200000)) xd.push_back(x);
  // double: up to ~5.5 ulp (6.4 without FMA) in [1.25, 1.5), where lgamma(y + 1) - log(y)
  // cancels.
  EXPECT_LE(max_ulp(
                "lgamma", xd, [](double x) { return vm::lgamma(x); },
                [](double x) { return std::lgamma((long double)x); }, kFloorD)
                .ulp,
            8.0);
  // The negative axis in double: the reflection cancels near the zeros of lgamma, so results
  // below 1 are judged by absolute error (in units of 2^-52).
  const auto neg = linear<double>(-30, -0.001, 200000);
  const double e = max_ulp(
                       "lgamma<0", neg, [](double x) { return vm::lgamma(x); },
                       [](double x) { return std::lgamma((long double)x); }, 1.0)
                       .ulp;
  EXPECT_LE(e, 16.0);
  struct {
    double x;
    long double ref;
  } near_zeros[] = {
      {1.001, -0.0005763935982833061515191624},
      {0.999, 0.0005780385328913802381689031},
      {1.0000001, -5.772155829918507096963802e-8},
      {0.999999997, 1.731647017216292534349203e-9},
      {1.0000000000005, -2.886334898549338272290197e-13},
      {0.999999999999999, 5.767543092132013817502903e-16},
      {2.001, 0.0004231067348001169911902936},
      {1.999, -0.0004224618006921072841757456},
      {2.0000001, 4.227843666532497923203435e-8},
      {1.999999997, -1.268353013460215625420134e-9},
      {2.0000000000005, 2.114109604361116563516506e-13},
      {1.999999999999999, -4.693849032771555200662247e-16},
  };
  for (auto c : near_zeros)
    EXPECT_LE(ulp_error<double>(vm::lgamma(c.x), c.ref, kFloorD), 4.0) << c.x;
  for (float p : {0.0f, -0.0f, -1.0f, -2.0f, -100.0f, -1e30f, INFINITY, -INFINITY}) {
    EXPECT_EQ(vm::lgamma(p), INFINITY) << p;
    EXPECT_EQ(vm::lgamma(double(p)), INFINITY) << p;
  }
  EXPECT_TRUE(std::isnan(vm::lgamma(NAN)) && std::isnan(vm::lgamma(double(NAN))));
}

TEST(VmathSpecial, Digamma) {
  const auto xs = floats_with(dense_floats(-1e30f, 1e30f, 600000), linear<float>(-12, 12, 300000));
  std::vector<float> finite;
  for (float x : xs)  // the poles are checked below
    if (!(x <= 0 && x == std::floor(x))) finite.push_back(x);
  EXPECT_LE(max_ulp(
                "digamma", finite, [](float x) { return vm::digamma(x); },
                [](float x) { return double(digamma_ref(x)); }, kFloorF)
                .ulp,
            4.0);
  std::vector<double> xd;
  for (double x : dense_doubles(1e-300, 1e300, 200000, false))
    if (x > 0 && x < INFINITY) xd.push_back(x);
  for (double x : linear<double>(0.001, 12, 200000)) xd.push_back(x);
  // The long double reference cancels near the root 1.4616 (checked against mpmath below).
  EXPECT_LE(
      max_ulp("digamma", xd, [](double x) { return vm::digamma(x); }, digamma_ref, 1e-3).ulp, 5.0);
  std::vector<double> neg;
  for (double x : linear<double>(-30, -0.001, 200000))
    if (x != std::floor(x)) neg.push_back(x);
  // As lgamma: below 1 (near the negative zeros) judged by absolute error.
  EXPECT_LE(max_ulp(
                "digamma<0", neg, [](double x) { return vm::digamma(x); }, digamma_ref, 1.0)
                .ulp,
            16.0);
  struct {
    double x;
    long double ref;
  } near_root[] = {
      {1.4626321449683624, 0.0009672297406145794459217264},
      {1.4606321449683624, -0.000968115267280402145875848},
      {1.4616331449683624, 0.0000009676718027275572511761535},
      {1.4616320449683624, -9.676722890643951932734499e-8},
      {1.4616321452683623, 2.903016052014506455662487e-10},
      {1.4616321449663623, -1.935394090403064499305432e-12},
  };
  for (auto c : near_root)
    EXPECT_LE(ulp_error<double>(vm::digamma(c.x), c.ref, kFloorD), 4.0) << c.x;
  // torch: digamma(+0) = -inf, digamma(-0) = +inf, NaN at negative integers and -inf.
  EXPECT_EQ(vm::digamma(0.0f), -INFINITY);
  EXPECT_EQ(vm::digamma(-0.0f), INFINITY);
  EXPECT_EQ(vm::digamma(0.0), -INFINITY);
  EXPECT_EQ(vm::digamma(-0.0), INFINITY);
  EXPECT_EQ(vm::digamma(INFINITY), INFINITY);
  for (float p : {-1.0f, -2.0f, -1e30f, -INFINITY, NAN}) {
    EXPECT_TRUE(std::isnan(vm::digamma(p))) << p;
    EXPECT_TRUE(std::isnan(vm::digamma(double(p)))) << p;
  }
}

TEST(VmathSpecial, Polygamma) {
  std::vector<float> xs;
  for (float x : floats_with(dense_floats(1e-30f, 1e30f, 10000), linear<float>(0.01, 20, 5000)))
    if (x > 0 && x < INFINITY) xs.push_back(x);
  std::vector<double> xd;
  for (double x : dense_doubles(1e-100, 1e50, 10000, false))
    if (x > 0 && x < INFINITY) xd.push_back(x);
  std::vector<double> neg;
  for (double x : linear<double>(-1.99, -0.001, 2000))
    if (x != std::floor(x)) neg.push_back(x);
  for (int n = 1; n <= 4; ++n) {
    const std::string name = "polygam" + std::to_string(n);
    EXPECT_LE(max_ulp(
                  name.c_str(), xs, [n](float x) { return vm::polygamma(n, x); },
                  [n](float x) { return double(polygamma_ref(n, x)); }, kFloorF)
                  .ulp,
              4.0);
    EXPECT_LE(max_ulp(
                  name.c_str(), xd, [n](double x) { return vm::polygamma(n, x); },
                  [n](double x) { return polygamma_ref(n, x); }, kFloorD)
                  .ulp,
              8.0);
    // x in (-2, 0): the Hurwitz terms are up to ~n! 2^(n+1) in size and cancel where the even
    // orders cross zero, so results below 1000 are judged by absolute error.
    EXPECT_LE(max_ulp((name + "<0").c_str(), neg, [n](double x) { return vm::polygamma(n, x); },
                      [n](double x) { return polygamma_ref(n, x); }, 1000.0)
                  .ulp,
              8.0);
    // Poles as torch: (-1)^(n+1) inf at 0, -0 and the negative integers.
    const double pole = n % 2 ? INFINITY : -INFINITY;
    for (float p : {0.0f, -0.0f, -1.0f, -3.0f}) {
      EXPECT_EQ(vm::polygamma(n, p), pole) << n << " " << p;
      EXPECT_EQ(vm::polygamma(n, double(p)), pole) << n << " " << p;
    }
    EXPECT_EQ(vm::polygamma(n, INFINITY), 0.0f);
    EXPECT_TRUE(std::isnan(vm::polygamma(n, double(NAN))));
  }
  EXPECT_EQ(vm::polygamma(0, 2.5), vm::digamma(2.5));
  EXPECT_TRUE(vm::polygamma_needs_slow(1, -2.5));
  EXPECT_FALSE(vm::polygamma_needs_slow(1, -1.5));
}

TEST(VmathSpecial, Erfinv) {
  auto ys = dense_floats(-1, 1, 1000000);
  for (float y : linear<float>(0.99f, 1.0f, 100000)) ys.push_back(y);
  std::vector<float> inside;
  for (float y : ys)
    if (std::fabs(y) < 1) inside.push_back(y);
  EXPECT_LE(max_ulp(
                "erfinv", inside, [](float y) { return vm::erfinv(y); },
                [](float y) { return double(erfinv_ref(y, vm::erfinv(y))); }, kFloorF)
                .ulp,
            4.0);
  std::vector<double> yd;
  for (double y : dense_doubles(1e-300, 1.0, 300000, true))
    if (std::fabs(y) < 1) yd.push_back(y);
  // The seams of the three pieces (w = 6.25, 16) and the worst point found near the second.
  for (double y : {1 - 0x1p-53, 1 - 0x1p-40, 1 - 0x1p-20, 0.5, 0.75, 0.9990343066500631,
                   0.9999999437324111, 0.99999996294956961})
    yd.push_back(y);
  EXPECT_LE(max_ulp(
                "erfinv", yd, [](double y) { return vm::erfinv(y); },
                [](double y) { return erfinv_ref(y, vm::erfinv(y)); }, kFloorD)
                .ulp,
            4.0);
  EXPECT_EQ(vm::erfinv(1.0f), INFINITY);
  EXPECT_EQ(vm::erfinv(-1.0), -INFINITY);
  EXPECT_TRUE(std::signbit(vm::erfinv(-0.0f)) && vm::erfinv(-0.0f) == 0);
  for (float v : {1.5f, -1.0000001f, INFINITY, -INFINITY, NAN}) {
    EXPECT_TRUE(std::isnan(vm::erfinv(v))) << v;
    EXPECT_TRUE(std::isnan(vm::erfinv(double(v)))) << v;
  }
}

TEST(VmathSpecial, I0) {
  const auto xs = floats_with(dense_floats(-100, 100, 600000), linear<float>(-20, 20, 200000));
  EXPECT_LE(max_ulp(
                "i0", xs, [](float x) { return vm::i0(x); },
                [](float x) { return double(i0_ref(x)); }, kFloorF)
                .ulp,
            4.0);
  auto xd = dense_doubles(1e-300, 713, 300000, true);
  for (double x : linear<double>(-20, 20, 100000)) xd.push_back(x);
  EXPECT_LE(max_ulp("i0", xd, [](double x) { return vm::i0(x); }, i0_ref, kFloorD).ulp, 5.0);
  EXPECT_EQ(vm::i0(1e30f), INFINITY);
  EXPECT_EQ(vm::i0(-0.0), 1.0);
  for (float v : {INFINITY, -INFINITY, NAN}) {  // torch: NaN at +-inf
    EXPECT_TRUE(std::isnan(vm::i0(v))) << v;
    EXPECT_TRUE(std::isnan(vm::i0(double(v)))) << v;
  }
}

TEST(VmathSpecial, I1) {
  const auto xs = floats_with(dense_floats(-100, 100, 600000), linear<float>(-20, 20, 200000));
  EXPECT_LE(max_ulp(
                "i1", xs, [](float x) { return vm::i1(x); },
                [](float x) { return double(i1_ref(x)); }, kFloorF)
                .ulp,
            4.0);
  auto xd = dense_doubles(1e-300, 713, 300000, true);
  for (double x : linear<double>(-20, 20, 100000)) xd.push_back(x);
  EXPECT_LE(max_ulp("i1", xd, [](double x) { return vm::i1(x); }, i1_ref, kFloorD).ulp, 5.0);
  // mpmath.besseli(1, x) at the double nearest x, to 25 digits.
  struct {
    double x;
    long double ref;
  } table[] = {
      {1e-30, 5.000000000000000416682103e-31L},
      {1e-10, 5.000000000000000182167237e-11L},
      {1e-5, 5.00000000006250040901553e-6L},
      {0.001, 0.0005000000625000026145750657L},
      {0.1, 0.0500625260470926948997822L},
      {0.5, 0.2578943053908963163624797L},
      {1, 0.565159103992485027207696L},
      {1.5, 0.9816664285779075856520109L},
      {2, 1.590636854637329063382254L},
      {3, 3.953370217402609396478636L},
      {4.25, 12.25087466740930823804556L},
      {5, 24.33564214245052719914305L},
      {6.5, 97.73501077403151665149941L},
      {7.75, 315.8524809240034020968986L},
      {7.999, 399.4957362136199680470954L},
      {8, 399.8731367825600982190831L},
      {8.001, 400.2508962751851547609012L},
      {9, 1030.914722516956444428755L},
      {10, 2670.988303701254654341032L},
      {12.5, 29345.74964207112731961286L},
      {15, 3.281249219702063967336982e+5L},
      {20, 4.245497338512777018140991e+7L},
      {25, 5.657865129878701353103889e+9L},
      {30, 7.685320389389569994942947e+11L},
      {40, 1.470739616325935273881696e+16L},
      {50, 2.903078590103556796751433e+20L},
      {60, 5.844751588390468281335173e+24L},
      {75, 1.711116015296529168336601e+31L},
      {85, 3.542453606440377620342867e+35L},
      {89, 1.890530449106820327398495e+37L},
      {100, 1.068369390338162481206146e+42L},
      {150, 4.528426729115811639038244e+63L},
      {200, 2.034581549332062703427428e+85L},
      {300, 4.468381385036954413873194e+128L},
      {400, 1.040555311294421659656552e+172L},
      {500, 2.502303412176099995690078e+215L},
      {600, 6.141181345066891936900401e+258L},
      {700, 1.528500390233900688145043e+302L},
      {713, 6.700424559186402501795694e+307L},
  };
  for (auto c : table) {
    EXPECT_LE(ulp_error<double>(vm::i1(c.x), c.ref, kFloorD), 5.0) << c.x;
    EXPECT_LE(ulp_error<double>(-vm::i1(-c.x), c.ref, kFloorD), 5.0) << c.x;
    const float xf = static_cast<float>(c.x);
    if (double(xf) == c.x && c.ref < FLT_MAX) {
      EXPECT_LE(ulp_error<float>(vm::i1(xf), double(c.ref), kFloorF), 4.0) << c.x;
    }
  }
  EXPECT_EQ(vm::i1(100.0f), INFINITY);
  EXPECT_EQ(vm::i1(-100.0f), -INFINITY);
  EXPECT_TRUE(std::signbit(vm::i1(-0.0f)) && vm::i1(-0.0f) == 0);
  EXPECT_TRUE(std::signbit(vm::i1(-0.0)) && vm::i1(-0.0) == 0);
  for (float v : {INFINITY, -INFINITY, NAN}) {  // torch: NaN at +-inf
    EXPECT_TRUE(std::isnan(vm::i1(v))) << v;
    EXPECT_TRUE(std::isnan(vm::i1(double(v)))) << v;
  }
}

}  // namespace
}  // namespace dc::vmath_test_trig
