// The per-counter draws that the CUDA kernels run one counter per thread
// (kernels/random_draws.h: uniform_counter, normal_counter, bernoulli_counter, randint_quad),
// uniform_'s 16-bit fix-up (keep_below_bits) and multinomial's search (categorical_index),
// against the cpu kernels' outputs bit for bit: every ISA this CPU runs, awkward sizes (partial
// blocks, one element past a block), seeds and starts whose counters carry out of their low
// word, float32 and float64. The GPU gives these numbers only if the draws reproduce the cpu
// fills, which the device cannot check by itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "isa_test.h"
#include "kernels/cpu/creation.h"
#include "kernels/cpu/scan.h"
#include "kernels/random_draws.h"

namespace {

using dc::DType;
using dc::Tensor;

const std::vector<int64_t> kSizes = {0,  1,  3,  4,  5,  15,  16,   17,  31,
                                      32, 33, 63, 64, 65, 100, 1000, 4099};
// Seeds and starts. 0xFFFFFFF8 + a few blocks of 16 counters carries into the counter's high
// word; the last one wraps the whole 64-bit counter.
const std::vector<std::pair<uint64_t, uint64_t>> kStreams = {
    {0, 0}, {67280421310721ULL, 48}, {0xDEADBEEFCAFEF00DULL, 0xFFFFFFF8ULL},
    {12345, 0xFFFFFFFFFFFFFFF0ULL}};

template <typename T>
DType dtype_of() {
  return sizeof(T) == 4 ? DType::Float32 : DType::Float64;
}

// Element i of the two buffers has the same bits (NaN included), else the first difference.
template <typename T>
::testing::AssertionResult same_bits(const T* got, const T* want, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0)
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << " vs "
                                           << want[i];
  return ::testing::AssertionSuccess();
}

// The counters a CUDA launch runs for n elements of T, and a buffer that marks unwritten
// elements (a value no draw gives).
template <typename T>
int64_t counters_for(int64_t n) {
  return dc::random_counters_of(n, sizeof(T));
}
template <typename T>
std::vector<T> unwritten(int64_t n) {
  return std::vector<T>(static_cast<size_t>(n), std::numeric_limits<T>::quiet_NaN());
}

class CudaRandomDraws : public dc::test::IsaTest {};

template <typename T>
void expect_uniform_counters_match() {
  for (auto [seed, start] : kStreams)
    for (int64_t n : kSizes)
      for (auto [low, high] : {std::pair{0.0, 1.0}, std::pair{-2.5, 7.25}, std::pair{3.0, 3.0}}) {
        Tensor cpu = Tensor::empty({n}, dtype_of<T>());
        dc::cpu::uniform_into(cpu, low, high, seed, start);
        std::vector<T> dev = unwritten<T>(n);
        for (int64_t t = 0; t < counters_for<T>(n); ++t)
          dc::uniform_counter(dev.data(), n, seed, start, t, static_cast<T>(low),
                              static_cast<T>(high - low));
        ASSERT_TRUE(same_bits(dev.data(), cpu.data<T>(), n))
            << "n=" << n << " seed=" << seed << " start=" << start << " low=" << low;
      }
}

TEST_P(CudaRandomDraws, UniformCountersMatchTheCpuFill) {
  expect_uniform_counters_match<float>();
  expect_uniform_counters_match<double>();
}

template <typename T>
void expect_normal_counters_match() {
  for (auto [seed, start] : kStreams)
    for (int64_t n : kSizes)
      for (auto [mean, stddev] : {std::pair{0.0, 1.0}, std::pair{0.5, 3.0}, std::pair{-1.0, 0.0}}) {
        Tensor cpu = Tensor::empty({n}, dtype_of<T>());
        dc::cpu::normal_into(cpu, mean, stddev, seed, start);
        std::vector<T> dev = unwritten<T>(n);
        for (int64_t t = 0; t < counters_for<T>(n); ++t)
          dc::normal_counter(dev.data(), n, seed, start, t, static_cast<T>(mean),
                             static_cast<T>(stddev));
        ASSERT_TRUE(same_bits(dev.data(), cpu.data<T>(), n))
            << "n=" << n << " seed=" << seed << " start=" << start << " mean=" << mean;
      }
}

TEST_P(CudaRandomDraws, NormalCountersMatchTheCpuFill) {
  expect_normal_counters_match<float>();
  expect_normal_counters_match<double>();
}

// Many more normals than the sizes above reach: Box-Muller's log and sincos over their whole
// input ranges (a wrong quadrant or a bad polynomial step shows up somewhere in 2^18 draws).
TEST_P(CudaRandomDraws, NormalCountersMatchOnALargeFill) {
  const int64_t n = int64_t(1) << 18;
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor cpu = Tensor::empty({n}, dt);
    dc::cpu::normal_into(cpu, 0.0, 1.0, 99, 7);
    if (dt == DType::Float32) {
      std::vector<float> dev = unwritten<float>(n);
      for (int64_t t = 0; t < counters_for<float>(n); ++t)
        dc::normal_counter(dev.data(), n, 99, 7, t, 0.0f, 1.0f);
      ASSERT_TRUE(same_bits(dev.data(), cpu.data<float>(), n));
    } else {
      std::vector<double> dev = unwritten<double>(n);
      for (int64_t t = 0; t < counters_for<double>(n); ++t)
        dc::normal_counter(dev.data(), n, 99, 7, t, 0.0, 1.0);
      ASSERT_TRUE(same_bits(dev.data(), cpu.data<double>(), n));
    }
  }
}

template <typename T>
void expect_bernoulli_counters_match() {
  for (auto [seed, start] : kStreams)
    for (int64_t n : kSizes) {
      // One probability per element (0 and 1 among them), and one for all (bernoulli_(p)).
      Tensor p = Tensor::empty({n}, dtype_of<T>());
      for (int64_t i = 0; i < n; ++i) p.data<T>()[i] = static_cast<T>(i % 11) / T(10);
      for (bool scalar : {false, true}) {
        Tensor prob = p;
        if (scalar) {
          prob = Tensor::empty({}, dtype_of<T>());
          *prob.data<T>() = T(0.375);
        }
        Tensor cpu = Tensor::empty({n}, dtype_of<T>());
        dc::cpu::bernoulli_into(cpu, prob, seed, start);
        std::vector<T> dev = unwritten<T>(n);
        const int64_t step = scalar ? 0 : 1;
        for (int64_t t = 0; t < counters_for<T>(n); ++t)
          dc::bernoulli_counter(dev.data(), prob.data<T>(), step, n, seed, start, t);
        ASSERT_TRUE(same_bits(dev.data(), cpu.data<T>(), n))
            << "n=" << n << " seed=" << seed << " start=" << start << " scalar=" << scalar;
      }
    }
}

TEST_P(CudaRandomDraws, BernoulliCountersMatchTheCpuFill) {
  expect_bernoulli_counters_match<float>();
  expect_bernoulli_counters_match<double>();
}

DC_INSTANTIATE_FOR_EVERY_ISA(CudaRandomDraws);

// uniform_ into a 16-bit float output: float32 draws (uniform_counter) rounded to 16 bits (the
// BFloat16(float) / Half(float) rounding, which the device's cast kernel makes too), then
// keep_below_bits: the cpu's values, bit for bit. The ranges make draws round up to `high`
// (checked: the step is taken), below zero too, and an empty interval whose bound does not fit
// 16 bits.
template <typename H>
void expect_16bit_uniform_matches(DType dt) {
  const int64_t n = int64_t(1) << 16;
  int64_t stepped = 0;
  for (auto [low, high] : {std::pair{0.0, 1.0}, std::pair{-3.0, -1.0}, std::pair{-1.0, 1.0},
                           std::pair{0.1, 0.1}, std::pair{1000.0, 1000.7}}) {
    Tensor cpu = Tensor::empty({n}, dt);
    dc::cpu::uniform_into(cpu, low, high, 5, 0xFFFFFF00ULL);
    std::vector<float> wide = unwritten<float>(n);
    for (int64_t t = 0; t < counters_for<float>(n); ++t)
      dc::uniform_counter(wide.data(), n, 5, 0xFFFFFF00ULL, t, static_cast<float>(low),
                          static_cast<float>(high - low));
    for (int64_t i = 0; i < n; ++i) {
      const H rounded(wide[static_cast<size_t>(i)]);
      const uint16_t got = dc::keep_below_bits(rounded.x, static_cast<float>(rounded), low, high);
      stepped += got != rounded.x;
      ASSERT_EQ(got, cpu.data<H>()[i].x) << "low=" << low << " high=" << high << " i=" << i;
    }
  }
  EXPECT_GT(stepped, 0);
}

TEST(CudaRandomDraws, HalfUniformKeepsBelowHighAsTheCpu) {
  expect_16bit_uniform_matches<dc::BFloat16>(DType::BFloat16);
  expect_16bit_uniform_matches<dc::Half>(DType::Float16);
}

// randint is not a per-ISA fill: one check, over the dtypes the CUDA kernel writes and ranges up
// to 2^63 (the 64-bit modulo) and below zero.
template <typename T>
void expect_randint_quads_match(DType dt) {
  const std::pair<int64_t, int64_t> ranges[] = {
      {0, 10}, {-5, 1000003}, {0, INT64_MAX}, {-(int64_t(1) << 62), int64_t(1) << 62},
      {INT64_MIN, INT64_MAX}, {7, 8}};
  for (auto [seed, start] : kStreams)
    for (int64_t n : kSizes)
      for (auto [low, high] : ranges) {
        Tensor cpu = Tensor::empty({n}, dt);
        dc::cpu::randint_into(cpu, low, high, seed, start);
        std::vector<T> dev(static_cast<size_t>(n), T(-1));
        const uint64_t range = dc::randint_range(low, high);
        for (int64_t q = 0; q < (n + 3) / 4; ++q)
          dc::randint_quad(dev.data(), n, seed, start, q, low, range);
        ASSERT_TRUE(same_bits(dev.data(), cpu.data<T>(), n))
            << "n=" << n << " seed=" << seed << " low=" << low << " high=" << high;
      }
}

TEST(CudaRandomDraws, RandintQuadsMatchTheCpuFill) {
  expect_randint_quads_match<int64_t>(DType::Int64);
  expect_randint_quads_match<int32_t>(DType::Int32);
  expect_randint_quads_match<float>(DType::Float32);
  expect_randint_quads_match<double>(DType::Float64);
}

// The launch size: enough counters for every element, no block of 16 more than needed.
TEST(CudaRandomDraws, CountersCoverEveryElementOnce) {
  for (int64_t n : kSizes) {
    for (size_t item : {sizeof(float), sizeof(double)}) {
      const int64_t counters = dc::random_counters_of(n, item);
      EXPECT_EQ(counters % 16, 0);
      EXPECT_LE(counters, static_cast<int64_t>(dc::random_fill_counters(n)));
      std::vector<int> hits(static_cast<size_t>(n), 0);
      for (int64_t t = 0; t < counters; ++t)
        for (int w = 0; w < (item == 4 ? 4 : 2); ++w) {
          const int64_t i = item == 4 ? dc::float_element(t, w) : dc::double_element(t, w);
          if (i < n) ++hits[static_cast<size_t>(i)];
        }
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << n << " " << i;
      if (n > 0) {  // the last block holds an element
        const int64_t block = dc::random_block_elems(item);
        EXPECT_LT((counters / 16 - 1) * block, n);
      }
    }
  }
}

// categorical_index against the cpu's categorical_search: awkward row lengths, zero-weight
// categories (flat runs of the cdf, never chosen), draws at 0 and just below 1.
TEST(CudaRandomDraws, CategoricalIndexMatchesTheCpuSearch) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int64_t K : {1, 2, 3, 7, 16, 33, 1000}) {
    const int64_t R = 3, S = 257;
    Tensor cdf = Tensor::empty({R, K}, DType::Float64), u = Tensor::empty({R, S}, DType::Float64);
    Tensor out = Tensor::empty({R, S}, DType::Int64);
    for (int64_t r = 0; r < R; ++r) {
      double run = 0;
      for (int64_t k = 0; k < K; ++k) {
        if (k == K - 1 || rng() % 4 != 0) run += unit(rng);  // some weights 0
        cdf.data<double>()[r * K + k] = run;
      }
    }
    for (int64_t i = 0; i < R * S; ++i) u.data<double>()[i] = unit(rng);
    u.data<double>()[0] = 0.0;
    u.data<double>()[1] = std::nextafter(1.0, 0.0);
    dc::cpu::categorical_search(out, cdf, u);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t got =
            dc::categorical_index(cdf.data<double>() + r * K, K, u.data<double>()[r * S + s]);
        ASSERT_EQ(got, out.data<int64_t>()[r * S + s]) << "K=" << K << " r=" << r << " s=" << s;
      }
  }
}

}  // namespace
