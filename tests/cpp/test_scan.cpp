// Scan kernels (kernels/cpu/scan.h) against naive loops on the (O, K, I) layout at awkward
// sizes, with NaN and ties for cummax/cummin, and on 1 vs several threads (bit-identical).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/scan.h"

namespace {

using dc::DType;
using dc::cpu::ReduceDims;
using dc::cpu::ScanOp;

const std::vector<ReduceDims> kShapes = {{1, 1, 1}, {1, 7, 1},   {3, 17, 1}, {2, 5, 3},
                                         {1, 13, 31}, {5, 1, 257}, {4, 33, 30}, {1, 4099, 1}};

int64_t numel(const ReduceDims& d) { return d.outer * d.reduce * d.inner; }
size_t at(const ReduceDims& d, int64_t o, int64_t k, int64_t i) {
  return static_cast<size_t>((o * d.reduce + k) * d.inner + i);
}

std::vector<double> data(int64_t n, uint32_t seed, double lo, double hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

TEST(ScanKernels, ProdAndLogSumExpMatchNaive) {
  for (const auto& d : kShapes) {
    const auto x = data(numel(d), 3, 0.999, 1.001);  // products of 4099 factors stay O(1)
    const auto z = data(numel(d), 4, -50, 50);
    std::vector<double> p(x.size()), l(x.size());
    dc::cpu::cum_scan(ScanOp::Prod, DType::Float64, x.data(), p.data(), nullptr, d);
    dc::cpu::cum_scan(ScanOp::LogSumExp, DType::Float64, z.data(), l.data(), nullptr, d);
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t i = 0; i < d.inner; ++i) {
        long double prod = 1, m = -INFINITY, s = 0;
        for (int64_t k = 0; k < d.reduce; ++k) {
          prod *= x[at(d, o, k, i)];
          EXPECT_NEAR(p[at(d, o, k, i)], double(prod), 1e-12);
          // Naive log-sum-exp with a running max, in long double.
          const long double v = z[at(d, o, k, i)];
          if (v > m) s = s * std::exp(m - v) + 1, m = v;
          else s += std::exp(v - m);
          const double ref = double(m + std::log(s));
          EXPECT_NEAR(l[at(d, o, k, i)], ref, 1e-12 * (1 + std::fabs(ref)));
        }
      }
  }
}

TEST(ScanKernels, CumMaxMinIndicesWithTiesAndNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> x = {1, 3, 3, 2, nan, 5, nan, 0};
  const ReduceDims d{1, 8, 1};
  std::vector<double> mx(8), mn(8);
  std::vector<int64_t> imx(8), imn(8);
  dc::cpu::cum_scan(ScanOp::Max, DType::Float64, x.data(), mx.data(), imx.data(), d);
  dc::cpu::cum_scan(ScanOp::Min, DType::Float64, x.data(), mn.data(), imn.data(), d);
  // PyTorch's rule: the last of equal values, NaN sticks and a later NaN takes the index.
  EXPECT_EQ(imx, (std::vector<int64_t>{0, 1, 2, 2, 4, 4, 6, 6}));
  EXPECT_EQ(imn, (std::vector<int64_t>{0, 0, 0, 0, 4, 4, 6, 6}));
  EXPECT_EQ(mx[2], 3);
  EXPECT_TRUE(std::isnan(mx[5]) && std::isnan(mn[7]));
  const std::vector<int64_t> xi = {2, -1, 2, 5, -1};
  std::vector<int64_t> vi(5), ii(5);
  dc::cpu::cum_scan(ScanOp::Min, DType::Int64, xi.data(), vi.data(), ii.data(),
                    ReduceDims{1, 5, 1});
  EXPECT_EQ(vi, (std::vector<int64_t>{2, -1, -1, -1, -1}));
  EXPECT_EQ(ii, (std::vector<int64_t>{0, 1, 1, 1, 4}));
}

TEST(ScanKernels, BitIdenticalAcrossThreadCounts) {
  const int saved = dc::get_num_threads();
  const ReduceDims d{64, 1021, 17};
  const auto x = data(numel(d), 9, -3, 3);
  std::vector<std::vector<double>> runs;
  for (int threads : {1, 3, 8}) {
    dc::set_num_threads(threads);
    std::vector<double> out(x.size());
    dc::cpu::cum_scan(ScanOp::LogSumExp, DType::Float64, x.data(), out.data(), nullptr, d);
    runs.push_back(out);
  }
  dc::set_num_threads(saved);
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

}  // namespace
