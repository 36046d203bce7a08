// Reduction kernels (kernels/cpu/reduce.h) against naive loops on the (O, K, I) layout, at
// awkward sizes (1, primes, not multiples of the 16-lane width, K-chunked sizes), with NaN
// and ties, and on 1 vs several threads (results must be bit-identical).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/reduce.h"

namespace {

using dc::DType;
using dc::cpu::ReduceDims;

const std::vector<ReduceDims> kShapes = {
    {1, 1, 1},    {1, 7, 1},     {3, 17, 1},   {1, 1031, 1}, {2, 5, 3},     {1, 13, 31},
    {5, 1, 257},  {4, 33, 300},  {1, 200003, 1}, {2, 65537, 3}, {1, 4099, 257}, {7, 2, 1},
};

template <typename T>
std::vector<T> random_data(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<T> v(static_cast<size_t>(n));
  if constexpr (std::is_floating_point_v<T>) {
    std::normal_distribution<double> dist(0.5, 1.0);
    for (auto& x : v) x = static_cast<T>(dist(rng));
  } else {
    std::uniform_int_distribution<int> dist(-3, 3);
    for (auto& x : v) x = static_cast<T>(dist(rng));
  }
  return v;
}

// Runs f under every ISA this CPU can run (the per-ISA kernels), then restores the active one.
template <typename F>
void for_each_isa(F f) {
  const dc::cpu::Isa prev = dc::cpu::active_isa();
  for (dc::cpu::Isa isa : {dc::cpu::Isa::generic, dc::cpu::Isa::avx2, dc::cpu::Isa::avx512})
    if (static_cast<int>(isa) <= static_cast<int>(dc::cpu::detected_isa())) {
      dc::cpu::set_active_isa(isa);
      SCOPED_TRACE(dc::cpu::isa_name(isa));
      f();
    }
  dc::cpu::set_active_isa(prev);
}

int64_t numel(const ReduceDims& d) { return d.outer * d.reduce * d.inner; }
template <typename T>
T at(const std::vector<T>& x, const ReduceDims& d, int64_t o, int64_t k, int64_t i) {
  return x[static_cast<size_t>((o * d.reduce + k) * d.inner + i)];
}

template <typename T>
void check_sum(DType dt) {
  for (const auto& d : kShapes) {
    const auto x = random_data<T>(numel(d), 1);
    std::vector<T> out(static_cast<size_t>(d.outer * d.inner));
    dc::cpu::sum_reduce(dt, dt, x.data(), out.data(), d);
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t i = 0; i < d.inner; ++i) {
        long double ref = 0, abs_sum = 0;
        for (int64_t k = 0; k < d.reduce; ++k) {
          ref += at(x, d, o, k, i);
          abs_sum += std::fabs(static_cast<double>(at(x, d, o, k, i)));
        }
        const double got = out[o * d.inner + i];
        if constexpr (std::is_floating_point_v<T>) {
          // Accurate to a few roundings of the output, not K times worse (a plain float loop
          // over K = 200003 is off by ~1e4 ulps here).
          // float32 accumulates in double: a few float roundings. float64 has no wider
          // accumulator: bounded relative to the sum of magnitudes.
          const double tol = std::is_same_v<T, float>
              ? std::numeric_limits<T>::epsilon() * (4 * std::fabs(double(ref)) + 0.05 * double(abs_sum) + 1)
              : 4 * std::numeric_limits<T>::epsilon() * std::fabs(double(ref)) + 1e-14 * double(abs_sum);
          EXPECT_NEAR(got, static_cast<double>(ref), tol)
              << "O=" << d.outer << " K=" << d.reduce << " I=" << d.inner;
        } else {
          EXPECT_EQ(got, static_cast<double>(ref));
        }
      }
  }
}

TEST(ReduceKernels, SumMatchesNaive) {
  check_sum<float>(DType::Float32);
  check_sum<double>(DType::Float64);
  check_sum<int64_t>(DType::Int64);
  check_sum<int32_t>(DType::Int32);
}

TEST(ReduceKernels, SumOfIntsIntoInt64AndFloatIntoDouble) {
  const ReduceDims d{2, 37, 5};
  const auto x = random_data<int32_t>(numel(d), 2);
  std::vector<int64_t> out(10);
  dc::cpu::sum_reduce(DType::Int32, DType::Int64, x.data(), out.data(), d);
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t i = 0; i < 5; ++i) {
      int64_t ref = 0;
      for (int64_t k = 0; k < d.reduce; ++k) ref += at(x, d, o, k, i);
      EXPECT_EQ(out[o * 5 + i], ref);
    }
}

template <typename T>
void check_minmax(DType dt, bool is_max) {
  for (const auto& d : kShapes) {
    auto x = random_data<T>(numel(d), 3);
    std::vector<T> vals(static_cast<size_t>(d.outer * d.inner)), vals2(vals.size());
    std::vector<int64_t> idx(vals.size());
    dc::cpu::minmax_reduce(dt, x.data(), vals.data(), idx.data(), d, is_max);
    dc::cpu::minmax_reduce(dt, x.data(), vals2.data(), nullptr, d, is_max);
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t i = 0; i < d.inner; ++i) {
        T best = at(x, d, o, 0, i);
        int64_t bi = 0;
        for (int64_t k = 1; k < d.reduce; ++k) {
          const T v = at(x, d, o, k, i);
          if (is_max ? v > best : v < best) { best = v; bi = k; }
        }
        EXPECT_EQ(vals[o * d.inner + i], best);
        EXPECT_EQ(vals2[o * d.inner + i], best);
        EXPECT_EQ(idx[o * d.inner + i], bi) << "first index of the extreme value (ties)";
      }
  }
}

TEST(ReduceKernels, MinMaxWithIndicesMatchNaive) {
  for_each_isa([] {
    check_minmax<float>(DType::Float32, true);
    check_minmax<float>(DType::Float32, false);
    check_minmax<double>(DType::Float64, true);
    check_minmax<double>(DType::Float64, false);
    check_minmax<int64_t>(DType::Int64, true);  // many ties: values in [-3, 3]
    check_minmax<int32_t>(DType::Int32, false);
  });
}

// A NaN at any one position (each lane of the vector loops, the tail, a chunk's edge) or at two
// makes the result NaN, with or without indices, along rows and down columns.
template <typename T>
void check_nan_positions(DType dt) {
  for (int64_t n : {1, 5, 16, 17, 63, 64, 65, 129, 1000, 5000, 200003}) {
    std::vector<int64_t> positions = {0, n / 2, n - 1};
    for (int64_t p = 1; p < std::min<int64_t>(n, 70); ++p) positions.push_back(p);
    for (int64_t at1 : positions) {
      std::vector<T> x(static_cast<size_t>(n), T(1));
      x[at1] = std::numeric_limits<T>::quiet_NaN();
      if (at1 + 7 < n) x[at1 + 7] = std::numeric_limits<T>::quiet_NaN();
      for (bool is_max : {true, false}) {
        T v = 0, v2 = 0;
        int64_t i = -1;
        dc::cpu::minmax_reduce(dt, x.data(), &v, &i, ReduceDims{1, n, 1}, is_max);
        dc::cpu::minmax_reduce(dt, x.data(), &v2, nullptr, ReduceDims{1, n, 1}, is_max);
        EXPECT_TRUE(std::isnan(v)) << n << " at " << at1;
        EXPECT_TRUE(std::isnan(v2)) << n << " at " << at1;
        EXPECT_EQ(i, at1) << n;
        if (n <= 5000) {  // the same values down the middle column of an [n, 3] tensor
          std::vector<T> xc(static_cast<size_t>(3 * n), T(1));
          for (int64_t k = 0; k < n; ++k) xc[3 * k + 1] = x[k];
          T cols[3];
          dc::cpu::minmax_reduce(dt, xc.data(), cols, nullptr, ReduceDims{1, n, 3}, is_max);
          EXPECT_EQ(cols[0], T(1));
          EXPECT_TRUE(std::isnan(cols[1])) << n << " at " << at1;
          EXPECT_EQ(cols[2], T(1));
        }
      }
    }
  }
}

TEST(ReduceKernels, MaxMinPropagateNaNFromAnyPosition) {
  for_each_isa([] {
    check_nan_positions<float>(DType::Float32);
    check_nan_positions<double>(DType::Float64);
  });
}

// Rows and columns of infinities: the starting values of the vector loops must not leak out.
TEST(ReduceKernels, MaxMinOfInfinities) {
  for_each_isa([] {
    for (int64_t n : {1, 7, 40, 300}) {
      const float inf = std::numeric_limits<float>::infinity();
      for (float fill : {-inf, inf}) {
        std::vector<float> x(static_cast<size_t>(3 * n), fill);
        float r[3], c[3];
        for (bool is_max : {true, false}) {
          dc::cpu::minmax_reduce(DType::Float32, x.data(), r, nullptr, ReduceDims{3, n, 1}, is_max);
          dc::cpu::minmax_reduce(DType::Float32, x.data(), c, nullptr, ReduceDims{1, n, 3}, is_max);
          for (int j = 0; j < 3; ++j) {
            EXPECT_EQ(r[j], fill) << n;
            EXPECT_EQ(c[j], fill) << n;
          }
        }
      }
    }
  });
}

template <typename T>
void check_var(DType dt) {
  for (const auto& d : kShapes) {
    auto x = random_data<T>(numel(d), 4);
    for (auto& v : x) v += T(1000);  // a large mean: naive one-pass formulas lose everything
    std::vector<T> var(static_cast<size_t>(d.outer * d.inner)), sd(var.size());
    dc::cpu::var_reduce(dt, x.data(), var.data(), d, 1.0, false);
    dc::cpu::var_reduce(dt, x.data(), sd.data(), d, 0.0, true);
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t i = 0; i < d.inner; ++i) {
        long double mean = 0, m2 = 0;
        for (int64_t k = 0; k < d.reduce; ++k) mean += at(x, d, o, k, i);
        mean /= d.reduce;
        for (int64_t k = 0; k < d.reduce; ++k) {
          const long double dev = at(x, d, o, k, i) - mean;
          m2 += dev * dev;
        }
        const double ref = d.reduce > 1 ? double(m2 / (d.reduce - 1)) : std::nan("");
        const double got = var[o * d.inner + i];
        if (d.reduce > 1) EXPECT_NEAR(got, ref, 1e-5 * ref + 1e-12);
        else EXPECT_TRUE(std::isnan(got));
        EXPECT_NEAR(sd[o * d.inner + i], std::sqrt(double(m2 / d.reduce)), 1e-5);
      }
  }
}

TEST(ReduceKernels, VarStdMatchNaive) {
  check_var<float>(DType::Float32);
  check_var<double>(DType::Float64);
}

TEST(ReduceKernels, ProdAllAnyCumsumMatchNaive) {
  for (const auto& d : kShapes) {
    auto x = random_data<double>(numel(d), 5);
    for (auto& v : x) v = 1.0 + v * 1e-4;  // keep products finite
    std::vector<double> prod(static_cast<size_t>(d.outer * d.inner));
    dc::cpu::prod_reduce(DType::Float64, x.data(), prod.data(), d);
    auto xi = random_data<int32_t>(numel(d), 6);
    std::vector<char> all_buf(prod.size()), any_buf(prod.size());
    bool* all = reinterpret_cast<bool*>(all_buf.data());
    bool* any = reinterpret_cast<bool*>(any_buf.data());
    dc::cpu::all_any_reduce(DType::Int32, xi.data(), all, d, true);
    dc::cpu::all_any_reduce(DType::Int32, xi.data(), any, d, false);
    std::vector<double> cs(x.size());
    dc::cpu::cumsum_scan(DType::Float64, x.data(), cs.data(), d);
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t i = 0; i < d.inner; ++i) {
        long double p = 1, s = 0;
        bool a = true, n = false;
        for (int64_t k = 0; k < d.reduce; ++k) {
          p *= at(x, d, o, k, i);
          s += at(x, d, o, k, i);
          a = a && at(xi, d, o, k, i) != 0;
          n = n || at(xi, d, o, k, i) != 0;
          EXPECT_NEAR(at(cs, d, o, k, i), double(s), 1e-9 * std::fabs(double(s)) + 1e-9);
        }
        EXPECT_NEAR(prod[o * d.inner + i], double(p), 1e-9 * std::fabs(double(p)));
        EXPECT_EQ(all[o * d.inner + i], a);
        EXPECT_EQ(any[o * d.inner + i], n);
      }
  }
}

TEST(ReduceKernels, BitIdenticalAcrossThreadCounts) {
  const int saved = dc::get_num_threads();
  for (const auto& d : {ReduceDims{1, 1 << 20, 1}, ReduceDims{3, 300007, 1},
                        ReduceDims{1, 100003, 5}, ReduceDims{64, 1021, 17}}) {
    const auto x = random_data<float>(numel(d), 7);
    std::vector<std::vector<float>> sums, vars;
    for (int threads : {1, 2, 3, 8}) {
      dc::set_num_threads(threads);
      std::vector<float> s(static_cast<size_t>(d.outer * d.inner)), v(s.size());
      dc::cpu::sum_reduce(DType::Float32, DType::Float32, x.data(), s.data(), d);
      dc::cpu::var_reduce(DType::Float32, x.data(), v.data(), d, 1.0, false);
      sums.push_back(s);
      vars.push_back(v);
    }
    for (size_t t = 1; t < sums.size(); ++t) {
      EXPECT_EQ(sums[t], sums[0]);
      EXPECT_EQ(vars[t], vars[0]);
    }
  }
  dc::set_num_threads(saved);
}

TEST(ReduceKernels, EmptyOutputsAreNoOps) {
  float out = 42;
  dc::cpu::sum_reduce(DType::Float32, DType::Float32, nullptr, &out, ReduceDims{0, 5, 3});
  dc::cpu::minmax_reduce(DType::Float32, nullptr, &out, nullptr, ReduceDims{2, 5, 0}, true);
  dc::cpu::cumsum_scan(DType::Float32, nullptr, &out, ReduceDims{2, 0, 3});
  EXPECT_EQ(out, 42);
  // The historical wrappers still give 0 for an empty sum.
  float s[3] = {1, 1, 1};
  dc::cpu::sum_rows(DType::Float32, nullptr, s, 3, 0);
  EXPECT_EQ(s[0] + s[1] + s[2], 0);
}

}  // namespace
