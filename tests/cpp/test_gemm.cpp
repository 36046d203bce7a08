// GEMM against a naive triple loop in double, on every ISA path this CPU can run, for both
// dtypes: size sweeps across the micro-tile edges, transposes and non-unit leading dimensions
// (via strides), alpha/beta (beta == 0 with NaN in C), epilogues, batching and empty sizes.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "gemm_check.h"
#include "isa_test.h"
#include "kernels/cpu/gemm/gemm.h"
#include "kernels/cpu/isa.h"

namespace {

using dc::cpu::GemmActivation;
using dc::cpu::GemmEpilogue;
using dc::cpu::Isa;

void gemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
          int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
          int64_t rsc, int64_t csc, const GemmEpilogue& ep) {
  dc::cpu::gemm_f32(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, ep);
}
void gemm(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa,
          int64_t csa, const double* B, int64_t rsb, int64_t csb, double beta, double* C,
          int64_t rsc, int64_t csc, const GemmEpilogue& ep) {
  dc::cpu::gemm_f64(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, ep);
}

// A matrix stored in a larger buffer: element (i, j) at data[offset + i * rs + j * cs].
// Transposed: column-major (rs = 1, cs = ld); otherwise row-major (rs = ld, cs = 1); ld is
// the logical width plus `pad`, so padding exercises non-unit leading dimensions.
template <typename T>
struct Strided {
  std::vector<T> data;
  int64_t rows = 0, cols = 0, rs = 0, cs = 0;
  T& at(int64_t i, int64_t j) { return data[i * rs + j * cs]; }
  T at(int64_t i, int64_t j) const { return data[i * rs + j * cs]; }
  const T* ptr() const { return data.data(); }
  T* ptr() { return data.data(); }
};

template <typename T>
Strided<T> make_matrix(int64_t rows, int64_t cols, bool transposed, int64_t pad, std::mt19937& rng,
                       T fill = T(0), bool random = true) {
  Strided<T> m;
  m.rows = rows;
  m.cols = cols;
  const int64_t ld = (transposed ? rows : cols) + pad;
  m.rs = transposed ? 1 : ld;
  m.cs = transposed ? ld : 1;
  m.data.assign(static_cast<size_t>(std::max<int64_t>(1, ld * (transposed ? cols : rows))), fill);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  if (random)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) m.at(i, j) = static_cast<T>(dist(rng));
  return m;
}

struct Case {
  int64_t M, N, K;
  bool ta = false, tb = false, tc = false;  // transposed (column-major) A, B, C
  int64_t pad = 0;                          // extra leading-dimension elements on every operand
  double alpha = 1, beta = 0;
  GemmActivation act = GemmActivation::none;
  bool bias = false;
  std::string str() const {
    return "M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
           " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) + " tc=" +
           std::to_string(tc) + " pad=" + std::to_string(pad) + " alpha=" + std::to_string(alpha) +
           " beta=" + std::to_string(beta) + " act=" + std::to_string(static_cast<int>(act)) +
           " bias=" + std::to_string(bias);
  }
};

// Runs one case and compares every element (and the padding, which must stay untouched) with
// the double-precision reference. Returns false after the first few reported mismatches.
template <typename T>
bool check_case(const Case& c, std::mt19937& rng) {
  auto A = make_matrix<T>(c.M, c.K, c.ta, c.pad, rng);
  auto B = make_matrix<T>(c.K, c.N, c.tb, c.pad, rng);
  // beta == 0: C must not be read, so it starts as NaN (the padding too, which must survive).
  const T nan = std::numeric_limits<T>::quiet_NaN();
  auto C = make_matrix<T>(c.M, c.N, c.tc, c.pad, rng, c.beta == 0 ? nan : T(7), c.beta != 0);
  const auto C0 = C;
  std::vector<T> bias(static_cast<size_t>(c.N));
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  for (auto& b : bias) b = static_cast<T>(dist(rng));
  GemmEpilogue ep;
  ep.bias = c.bias ? bias.data() : nullptr;
  ep.act = c.act;

  gemm(c.M, c.N, c.K, static_cast<T>(c.alpha), A.ptr(), A.rs, A.cs, B.ptr(), B.rs, B.cs,
       static_cast<T>(c.beta), C.ptr(), C.rs, C.cs, ep);

  const double eps = std::numeric_limits<T>::epsilon();
  // The GELU of f32 uses ~1e-7-accurate polynomial approximations of exp/erf.
  const double act_tol = (std::is_same<T, float>::value && c.act > GemmActivation::relu) ? 4e-6 : 0;
  const bool values_ok = dc::test::matches_reference(
      c, [&](int64_t i, int64_t p) { return double(A.at(i, p)); },
      [&](int64_t p, int64_t j) { return double(B.at(p, j)); },
      [&](int64_t i, int64_t j) { return double(C0.at(i, j)); },
      [&](int64_t j) { return double(bias[j]); },
      [&](int64_t i, int64_t j) { return double(C.at(i, j)); },
      [&](double, double mag) {
        return (2.0 * c.K + 8) * eps * mag + act_tol * (1 + mag) + 1e-30;
      });
  return values_ok && dc::test::padding_untouched(
                          c, [&](int64_t k) { return double(C.data[k]); },
                          [&](int64_t k) { return double(C0.data[k]); });
}

template <typename T>
void check_all_layouts(Case c, std::mt19937& rng) {
  for (int t = 0; t < 8; ++t) {
    c.ta = t & 1;
    c.tb = t & 2;
    c.tc = t & 4;
    if (!check_case<T>(c, rng)) return;
  }
}

// Every test runs once per ISA; an ISA the CPU lacks is skipped.
class GemmTest : public dc::test::IsaTest {
 protected:
  std::mt19937 rng{1234};
};

// Sizes that straddle every micro-tile edge of every ISA (MR 4/6/14, NR 4/8/16/32).
const int64_t kEdgeSizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 28, 31, 32, 33, 47, 64, 65, 70};

TEST_P(GemmTest, SweepEachDimension) {
  for (int64_t s = 1; s <= 70; ++s) {
    for (const Case& c : {Case{s, 37, 19}, Case{29, s, 23}, Case{21, 35, s}}) {
      check_all_layouts<float>(c, rng);
      check_all_layouts<double>(c, rng);
    }
  }
}

TEST_P(GemmTest, DenseSizeGrid) {
  for (int64_t m : kEdgeSizes)
    for (int64_t n : kEdgeSizes)
      for (int64_t k : {1, 5, 16, 33}) {
        const Case c{m, n, k, bool((m + n) & 1), bool((m + k) & 1), bool(n & 2)};
        ASSERT_TRUE(check_case<float>(c, rng));
        ASSERT_TRUE(check_case<double>(c, rng));
      }
}

// Primes larger than the cache blocks (KC <= 256, MC <= 144): several blocks with ragged
// ends, and big enough to run on several threads.
TEST_P(GemmTest, LargePrimes) {
  for (const Case& c : {Case{127, 257, 509}, Case{509, 127, 257}, Case{257, 509, 127},
                        Case{509, 257, 300, true, false}, Case{131, 521, 263, false, true, true, 3}}) {
    ASSERT_TRUE(check_case<float>(c, rng));
    ASSERT_TRUE(check_case<double>(c, rng));
  }
}

// Wider than NC (1024 f32, 512 f64) on one thread, so the column-block loop runs too.
TEST_P(GemmTest, SeveralColumnBlocks) {
  const int saved = dc::get_num_threads();
  dc::set_num_threads(1);
  Case c{13, 1100, 300};
  c.bias = true;
  c.act = GemmActivation::relu;
  c.beta = 0.5;
  const bool ok = check_case<float>(c, rng) && check_case<double>(c, rng);
  dc::set_num_threads(saved);
  EXPECT_TRUE(ok);
}

// Note [Dot-product GEMM]: A rows and B columns contiguous along k (ta = false, tb = true),
// one side narrow; ragged 4-blocks both ways, k with and without a partial 16-lane chunk,
// alpha/beta, the epilogue, a padded and a column-major C, and enough work for threads.
TEST_P(GemmTest, DotProductShapes) {
  for (const Case& base : {Case{64, 10, 256}, Case{10, 64, 300}, Case{7, 3, 33}, Case{3, 37, 70},
                           Case{1, 1, 257}, Case{130, 16, 511}, Case{2, 1000, 40}}) {
    for (int variant = 0; variant < 4; ++variant) {
      Case c = base;
      c.tb = true;
      c.tc = variant == 3;
      c.pad = variant == 2 ? 5 : 0;
      if (variant == 1) {
        c.alpha = -1.5;
        c.beta = 0.5;
        c.bias = true;
        c.act = GemmActivation::relu;
      }
      ASSERT_TRUE(check_case<float>(c, rng));
      ASSERT_TRUE(check_case<double>(c, rng));
    }
  }
}

TEST_P(GemmTest, LeadingDimensions) {
  for (int64_t pad : {1, 3, 16}) {
    Case c{33, 45, 70};
    c.pad = pad;
    check_all_layouts<float>(c, rng);
    check_all_layouts<double>(c, rng);
  }
}

// Both strides non-unit: every other row and column of a bigger matrix.
TEST_P(GemmTest, DoublyStridedOperands) {
  const int64_t M = 23, N = 37, K = 41;
  std::vector<float> A(4 * M * K), B(4 * K * N), C(4 * M * N, 5.0f);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (auto& v : A) v = dist(rng);
  for (auto& v : B) v = dist(rng);
  dc::cpu::gemm_f32(M, N, K, 1.0f, A.data(), 4 * K, 2, B.data(), 2, 2 * K, 0.0f, C.data(),
                    2 * N, 2);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double ref = 0;
      for (int64_t p = 0; p < K; ++p) ref += double(A[i * 4 * K + p * 2]) * B[p * 2 + j * 2 * K];
      ASSERT_NEAR(C[i * 2 * N + j * 2], ref, 1e-4) << i << ", " << j;
      ASSERT_EQ(C[i * 2 * N + j * 2 + 1], 5.0f);
    }
}

// Negative strides (a flipped view) and a zero stride (one row of B broadcast over K).
TEST_P(GemmTest, NegativeAndZeroStrides) {
  const int64_t M = 29, N = 45, K = 37;
  std::vector<double> A(M * K), B(K * N), C(M * N);
  std::uniform_real_distribution<double> dist(-1, 1);
  for (auto& v : A) v = dist(rng);
  for (auto& v : B) v = dist(rng);
  // A flipped upside down and left-right; C written bottom row first.
  dc::cpu::gemm_f64(M, N, K, 1.0, A.data() + M * K - 1, -K, -1, B.data(), N, 1, 0.0,
                    C.data() + (M - 1) * N, -N, 1);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double ref = 0;
      for (int64_t p = 0; p < K; ++p) ref += A[(M - 1 - i) * K + (K - 1 - p)] * B[p * N + j];
      ASSERT_NEAR(C[(M - 1 - i) * N + j], ref, 1e-12);
    }
  std::vector<float> Af(M * K), Bf(N), Cf(M * N);
  for (auto& v : Af) v = float(dist(rng));
  for (auto& v : Bf) v = float(dist(rng));
  dc::cpu::gemm_f32(M, N, K, 1.0f, Af.data(), K, 1, Bf.data(), 0, 1, 0.0f, Cf.data(), N, 1);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double ref = 0;
      for (int64_t p = 0; p < K; ++p) ref += double(Af[i * K + p]) * Bf[j];
      ASSERT_NEAR(Cf[i * N + j], ref, 1e-4);
    }
}

TEST_P(GemmTest, AlphaBeta) {
  for (auto [alpha, beta] : {std::pair{1.0, 0.0}, {2.5, 0.0}, {1.0, 1.0}, {-0.5, 0.75},
                             {0.0, 0.5}, {0.0, 0.0}, {1.0, -2.0}}) {
    for (const Case& base : {Case{17, 33, 9}, Case{70, 70, 70}, Case{45, 80, 270}}) {
      Case c = base;
      c.alpha = alpha;
      c.beta = beta;
      check_all_layouts<float>(c, rng);
      check_all_layouts<double>(c, rng);
    }
  }
}

// Sizes cover one tile, ragged tiles, several K blocks (the epilogue must run once, after the
// last) and the MNIST-MLP shape.
TEST_P(GemmTest, Epilogue) {
  for (GemmActivation act : {GemmActivation::none, GemmActivation::relu,
                             GemmActivation::gelu_tanh, GemmActivation::gelu_erf}) {
    for (bool bias : {false, true}) {
      for (const Case& base : {Case{1, 1, 1}, Case{19, 45, 13}, Case{40, 70, 300}}) {
        Case c = base;
        c.act = act;
        c.bias = bias;
        c.alpha = 2.0;  // spreads values over the GELU's curved part
        check_all_layouts<float>(c, rng);
        check_all_layouts<double>(c, rng);
        c.beta = 0.5;
        ASSERT_TRUE(check_case<float>(c, rng));
      }
      Case mlp{64, 128, 784};
      mlp.act = act;
      mlp.bias = bias;
      ASSERT_TRUE(check_case<float>(mlp, rng));
      ASSERT_TRUE(check_case<double>(mlp, rng));
    }
  }
}

// K == 0: C = beta * C, then the epilogue; M == 0 or N == 0: nothing happens.
TEST_P(GemmTest, EmptySizes) {
  for (const Case& c : {Case{5, 7, 0}, Case{40, 3, 0, false, false, true}}) {
    for (double beta : {0.0, 2.0}) {
      Case d = c;
      d.beta = beta;
      d.bias = true;
      d.act = GemmActivation::relu;
      ASSERT_TRUE(check_case<float>(d, rng));
      ASSERT_TRUE(check_case<double>(d, rng));
    }
  }
  float c_value = 3.0f;
  dc::cpu::gemm_f32(0, 4, 4, 1.0f, nullptr, 4, 1, nullptr, 4, 1, 0.0f, &c_value, 4, 1);
  dc::cpu::gemm_f32(4, 0, 4, 1.0f, nullptr, 4, 1, nullptr, 4, 1, 0.0f, &c_value, 4, 1);
  dc::cpu::gemm_f32(0, 0, 0, 1.0f, nullptr, 0, 1, nullptr, 0, 1, 0.0f, nullptr, 0, 1);
  EXPECT_EQ(c_value, 3.0f);
  EXPECT_THROW(dc::cpu::gemm_f32(-1, 4, 4, 1.0f, nullptr, 4, 1, nullptr, 4, 1, 0.0f, &c_value,
                                 4, 1),
               dc::ValueError);
}

// alpha == 0: A and B are not read (they may hold NaN).
TEST_P(GemmTest, AlphaZeroDoesNotReadOperands) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> A(6 * 5, nan), B(5 * 4, nan), C(6 * 4, 2.0f);
  dc::cpu::gemm_f32(6, 4, 5, 0.0f, A.data(), 5, 1, B.data(), 4, 1, 1.5f, C.data(), 4, 1);
  for (float v : C) ASSERT_EQ(v, 3.0f);
}

template <typename T>
void check_batched(std::mt19937& rng, int64_t batch, int64_t M, int64_t N, int64_t K,
                   bool broadcast_a, bool broadcast_b, bool tb, double beta) {
  const int64_t sa = broadcast_a ? 0 : M * K + 3, sb = broadcast_b ? 0 : K * N + 5,
                sc = M * N + 2;
  std::vector<T> A(size_t((broadcast_a ? 1 : batch) * (M * K + 3))),
      B(size_t((broadcast_b ? 1 : batch) * (K * N + 5))), C(size_t(batch * sc), T(1));
  std::uniform_real_distribution<double> dist(-1, 1);
  for (auto& v : A) v = T(dist(rng));
  for (auto& v : B) v = T(dist(rng));
  for (auto& v : C) v = T(dist(rng));
  const auto C0 = C;
  const int64_t rsb = tb ? 1 : N, csb = tb ? K : 1;
  if constexpr (std::is_same<T, float>::value) {
    dc::cpu::gemm_batched_f32(batch, M, N, K, 0.5f, A.data(), sa, K, 1, B.data(), sb, rsb, csb,
                              T(beta), C.data(), sc, N, 1);
  } else {
    dc::cpu::gemm_batched_f64(batch, M, N, K, 0.5, A.data(), sa, K, 1, B.data(), sb, rsb, csb,
                              beta, C.data(), sc, N, 1);
  }
  const double tol = (std::is_same<T, float>::value ? 1e-6 : 1e-14) * (K + 4);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double ref = beta * C0[b * sc + i * N + j];
        for (int64_t p = 0; p < K; ++p)
          ref += 0.5 * double(A[b * sa + i * K + p]) * double(B[b * sb + p * rsb + j * csb]);
        ASSERT_NEAR(C[b * sc + i * N + j], ref, tol) << "batch " << b << " (" << i << ", " << j << ")";
      }
  // The gaps between the batches of C stay untouched.
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t g = M * N; g < sc; ++g) ASSERT_EQ(C[b * sc + g], C0[b * sc + g]);
}

TEST_P(GemmTest, Batched) {
  for (bool ba : {false, true})
    for (bool bb : {false, true})
      for (bool tb : {false, true}) {
        check_batched<float>(rng, 5, 13, 37, 21, ba, bb, tb, 0.0);
        check_batched<double>(rng, 5, 13, 37, 21, ba, bb, tb, 1.0);
        // Enough small products to run one per thread.
        check_batched<float>(rng, 16, 64, 64, 64, ba, bb, tb, 0.5);
        check_batched<double>(rng, 16, 64, 64, 64, ba, bb, tb, 0.0);
      }
  check_batched<float>(rng, 3, 200, 300, 150, false, true, false, 0.0);
  check_batched<float>(rng, 0, 4, 4, 4, false, false, false, 0.0);
}

// A shared C (sc == 0) is updated by each batch in order: C = A B + 2 C, twice, with B = I.
TEST_P(GemmTest, BatchedSharedOutput) {
  std::vector<float> A = {1, 2, 3, 4}, B = {1, 0, 0, 1}, C = {1, 1, 1, 1};
  dc::cpu::gemm_batched_f32(2, 2, 2, 2, 1.0f, A.data(), 0, 2, 1, B.data(), 0, 2, 1, 2.0f,
                            C.data(), 0, 2, 1);
  EXPECT_EQ(C, (std::vector<float>{7, 10, 13, 16}));
}

// Inside a parallel region the GEMM runs on the calling thread and stays correct.
TEST_P(GemmTest, InsideParallelRegion) {
  const int64_t n = 96;
  std::vector<float> A(n * n), B(n * n), C0(n * n), C1(n * n);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (auto& v : A) v = dist(rng);
  for (auto& v : B) v = dist(rng);
  dc::cpu::gemm_f32(n, n, n, 1.0f, A.data(), n, 1, B.data(), n, 1, 0.0f, C0.data(), n, 1);
  std::vector<std::vector<float>> outs(4, std::vector<float>(n * n));
#pragma omp parallel for num_threads(2)
  for (int t = 0; t < 4; ++t)
    dc::cpu::gemm_f32(n, n, n, 1.0f, A.data(), n, 1, B.data(), n, 1, 0.0f, outs[t].data(), n, 1);
  for (const auto& out : outs)
    for (int64_t i = 0; i < n * n; ++i) ASSERT_NEAR(out[i], C0[i], 1e-4);
}

// OpenMP may grant a parallel region fewer threads than the GEMM asks for (here: none beyond
// the caller); every block of C must still be computed.
TEST_P(GemmTest, FewerThreadsThanRequested) {
  const int saved_levels = omp_get_max_active_levels();
  const int saved_threads = dc::get_num_threads();
  dc::set_num_threads(std::max(2, saved_threads));
  omp_set_max_active_levels(0);
  Case c{200, 300, 100};
  const bool ok = check_case<float>(c, rng);
  omp_set_max_active_levels(saved_levels);
  dc::set_num_threads(saved_threads);
  EXPECT_TRUE(ok);
}

// One thread and many threads give the same answer (the split never changes a sum's order).
TEST_P(GemmTest, ThreadCountDoesNotChangeResult) {
  const int64_t M = 333, N = 517, K = 300;
  std::vector<float> A(M * K), B(K * N), C1(M * N), C2(M * N);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (auto& v : A) v = dist(rng);
  for (auto& v : B) v = dist(rng);
  const int saved = dc::get_num_threads();
  dc::set_num_threads(1);
  dc::cpu::gemm_f32(M, N, K, 1.0f, A.data(), K, 1, B.data(), N, 1, 0.0f, C1.data(), N, 1);
  dc::set_num_threads(std::max(2, saved));
  dc::cpu::gemm_f32(M, N, K, 1.0f, A.data(), K, 1, B.data(), N, 1, 0.0f, C2.data(), N, 1);
  dc::set_num_threads(saved);
  EXPECT_EQ(C1, C2);
}

DC_INSTANTIATE_FOR_EVERY_ISA(GemmTest);

}  // namespace
