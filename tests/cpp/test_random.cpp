// The vectorised random fills (kernels/cpu/vec/random_kernels.cpp) against references written
// from Note [Random streams] with the scalar dc::philox, at awkward sizes (partial blocks),
// counters whose low word wraps, every ISA this CPU runs, and 1 vs 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "isa_test.h"
#include "kernels/cpu/creation.h"
#include "kernels/cpu/dropout.h"
#include "kernels/random_draws.h"

namespace {

using dc::DType;
using dc::Tensor;

const std::vector<int64_t> kSizes = {0, 1, 3, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 20011};
// Seeds and starts; the last start makes lane counters carry into their high word.
const std::vector<std::pair<uint64_t, uint64_t>> kStreams = {
    {0, 0}, {67280421310721ULL, 48}, {0xDEADBEEFCAFEF00DULL, 0xFFFFFFF8ULL}};

template <typename T>
std::vector<T> values(const Tensor& t) {
  const T* p = t.data<T>();
  return std::vector<T>(p, p + t.numel());
}

// The Philox words of element i: which counter and which word(s) Note [Random streams] gives.
struct Draw {
  std::array<uint32_t, 4> w;
  int lane_word;  // float32: the word; float64: the pair (0 or 1)
};
Draw draw(uint64_t seed, uint64_t start, int64_t i, int64_t block) {
  const int64_t b = i / block, r = i % block;
  return {dc::philox(seed, start + static_cast<uint64_t>(b) * 16 + static_cast<uint64_t>(r % 16)),
          static_cast<int>(r / 16)};
}

double u24(uint32_t x) { return (x >> 8) * 0x1p-24; }
double u53(uint32_t hi, uint32_t lo) { return (hi >> 6) * 0x1p-26 + (lo >> 5) * 0x1p-53; }

class RandomTest : public dc::test::IsaTest {};

TEST_P(RandomTest, UniformMatchesScalarPhilox) {
  for (auto [seed, start] : kStreams)
    for (int64_t n : kSizes) {
      Tensor f = Tensor::empty({n}, DType::Float32), d = Tensor::empty({n}, DType::Float64);
      dc::cpu::uniform_into(f, 0.0, 1.0, seed, start);
      dc::cpu::uniform_into(d, 0.0, 1.0, seed, start);
      const auto fv = values<float>(f);
      const auto dv = values<double>(d);
      for (int64_t i = 0; i < n; ++i) {
        const Draw a = draw(seed, start, i, 64);
        ASSERT_EQ(fv[i], static_cast<float>(u24(a.w[a.lane_word]))) << "n=" << n << " i=" << i;
        const Draw b = draw(seed, start, i, 32);
        const int h = b.lane_word;
        ASSERT_EQ(dv[i], u53(b.w[2 * h], b.w[2 * h + 1])) << "n=" << n << " i=" << i;
      }
    }
}

TEST_P(RandomTest, UniformRange) {
  Tensor f = Tensor::empty({4096}, DType::Float32);
  dc::cpu::uniform_into(f, -2.0, 4.0, 1, 0);
  for (float x : values<float>(f)) ASSERT_TRUE(x >= -2.0f && x < 4.0f) << x;
}

// Box-Muller in long double with libm, from the same words: the kernels' own log and sincos
// must agree to a few units in the last place of the result's scale.
TEST_P(RandomTest, NormalMatchesReference) {
  for (auto [seed, start] : kStreams)
    for (int64_t n : kSizes) {
      Tensor f = Tensor::empty({n}, DType::Float32), d = Tensor::empty({n}, DType::Float64);
      dc::cpu::normal_into(f, 0.5, 2.0, seed, start);
      dc::cpu::normal_into(d, 0.5, 2.0, seed, start);
      const auto fv = values<float>(f);
      const auto dv = values<double>(d);
      const long double two_pi = 6.283185307179586476925286766559L;
      for (int64_t i = 0; i < n; ++i) {
        {  // float32: pair h of lane j gives elements 32h + j (cos) and 32h + 16 + j (sin)
          const int64_t r = i % 64;
          const auto w = dc::philox(seed, start + static_cast<uint64_t>(i / 64) * 16 +
                                              static_cast<uint64_t>(r % 16));
          const int h = static_cast<int>(r / 32);
          const bool is_sin = (r % 32) >= 16;
          const long double u1 = (static_cast<float>(w[2 * h] >> 1) * 0x1p-31L) + 0x1p-32L;
          const long double u2 = u24(w[2 * h + 1]);
          const long double rad = std::sqrt(-2 * std::log(static_cast<long double>(
                                                      static_cast<float>(u1))));
          const long double z = rad * (is_sin ? std::sin(two_pi * u2) : std::cos(two_pi * u2));
          ASSERT_NEAR(fv[i], 0.5 + 2 * z, 3e-6 * (1 + std::fabs(z))) << "n=" << n << " i=" << i;
        }
        {  // float64: lane j gives elements j (cos) and 16 + j (sin)
          const int64_t r = i % 32;
          const auto w = dc::philox(seed, start + static_cast<uint64_t>(i / 32) * 16 +
                                              static_cast<uint64_t>(r % 16));
          const long double u1 = 1.0L - u53(w[0], w[1]), u2 = u53(w[2], w[3]);
          const long double rad = std::sqrt(-2 * std::log(u1));
          const long double z = r >= 16 ? rad * std::sin(two_pi * u2) : rad * std::cos(two_pi * u2);
          ASSERT_NEAR(dv[i], 0.5 + 2 * z, 8e-15 * (1 + std::fabs(z))) << "n=" << n << " i=" << i;
        }
      }
    }
}

TEST_P(RandomTest, BernoulliMatchesUniform) {
  for (int64_t n : kSizes) {
    Tensor u = Tensor::empty({n}, DType::Float32), p = Tensor::empty({n}, DType::Float32);
    Tensor out = Tensor::empty({n}, DType::Float32);
    float* pp = p.data<float>();
    for (int64_t i = 0; i < n; ++i) pp[i] = static_cast<float>(i % 11) / 10.0f;  // 0 .. 1
    dc::cpu::uniform_into(u, 0.0, 1.0, 7, 32);
    dc::cpu::bernoulli_into(out, p, 7, 32);
    const auto uv = values<float>(u), ov = values<float>(out);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(ov[i], uv[i] < pp[i] ? 1.0f : 0.0f) << i;
    // One probability for every element (bernoulli_(p)).
    for (double pv : {0.0, 1.0, 0.25}) {
      Tensor one = Tensor::empty({}, DType::Float64), o64 = Tensor::empty({n}, DType::Float64),
             u64 = Tensor::empty({n}, DType::Float64);
      one.data<double>()[0] = pv;
      dc::cpu::bernoulli_into(o64, one, 9, 0);
      dc::cpu::uniform_into(u64, 0.0, 1.0, 9, 0);
      const auto ov64 = values<double>(o64), uv64 = values<double>(u64);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(ov64[i], uv64[i] < pv ? 1.0 : 0.0) << i;
    }
  }
}

// The per-counter dropout draws that the CUDA kernel runs (dropout_counter, one thread per
// counter) give the cpu mask bit for bit: every element written once, at awkward sizes, both
// dtypes, p = 0 (all kept) and p near 1.
template <typename T>
void expect_dropout_counters_match(DType dt) {
  for (int64_t n : kSizes)
    for (const auto& [seed, start] : kStreams)
      for (double p : {0.0, 0.3, 0.9}) {
        Tensor cpu = Tensor::empty({n}, dt);
        dc::cpu::dropout_mask_into(cpu, p, seed, start);
        std::vector<T> mask(static_cast<size_t>(n), T(-1));
        const int64_t counters = static_cast<int64_t>(dc::random_fill_counters(n));
        for (int64_t t = 0; t < counters; ++t)
          dc::dropout_counter(mask.data(), n, seed, start, t, static_cast<T>(1.0 - p),
                              static_cast<T>(1.0 / (1.0 - p)));
        const auto want = values<T>(cpu);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(mask[i], want[i]) << "n=" << n << " p=" << p << " seed=" << seed << " i=" << i;
      }
}

TEST_P(RandomTest, DropoutCountersMatchTheCpuMask) {
  expect_dropout_counters_match<float>(DType::Float32);
  expect_dropout_counters_match<double>(DType::Float64);
}

// The fills split across threads at block boundaries: 1 and 2 threads give the same bits.
TEST_P(RandomTest, ThreadCountIndependent) {
  const int saved = dc::get_num_threads();
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor a = Tensor::empty({100003}, dt), b = Tensor::empty({100003}, dt);
    dc::set_num_threads(1);
    dc::cpu::normal_into(a, 0.0, 1.0, 3, 5);
    dc::set_num_threads(2);
    dc::cpu::normal_into(b, 0.0, 1.0, 3, 5);
    ASSERT_EQ(std::memcmp(a.data_ptr(), b.data_ptr(), 100003 * dc::itemsize(dt)), 0);
  }
  dc::set_num_threads(saved);
}

DC_INSTANTIATE_FOR_EVERY_ISA(RandomTest);

// Every ISA's build gives the same bits as the generic one (no fused multiply-adds).
TEST(RandomIsa, NormalBitwiseSameOnEveryIsa) {
  std::vector<std::vector<char>> results;
  for (auto isa : {dc::cpu::Isa::generic, dc::cpu::Isa::avx2, dc::cpu::Isa::avx512}) {
    try {
      dc::cpu::set_active_isa(isa);
    } catch (const dc::ValueError&) {
      continue;
    }
    for (DType dt : {DType::Float32, DType::Float64}) {
      Tensor t = Tensor::empty({5001}, dt);
      dc::cpu::normal_into(t, 0.0, 1.0, 11, 0);
      const char* p = static_cast<const char*>(t.data_ptr());
      results.emplace_back(p, p + t.numel() * dc::itemsize(dt));
    }
  }
  dc::cpu::set_active_isa(dc::cpu::detected_isa());
  for (size_t i = 2; i < results.size(); ++i) EXPECT_EQ(results[i], results[i % 2]);
}

}  // namespace
