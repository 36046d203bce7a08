// bf16 GEMM (gemm_bf16.h) against a double-precision reference on bfloat16-rounded inputs, on
// every ISA path this CPU can run (vdpbf16ps where the CPU has AVX512_BF16 and the active ISA
// is avx512, the float32 micro-kernels on bf16-rounded panels otherwise): every combination of
// A/B/C dtypes, sizes across the tile and cache-block edges (K odd), transposed, padded and
// doubly strided operands, alpha/beta (beta == 0 with NaN in C), the epilogue, batching and
// empty sizes.
//
// Tolerance: products of bfloat16 values are exact in float32, so the error is that of float32
// sums, at most about (K + 4) * 2^-24 * sum |a b| (plus the beta * C and bias terms); a
// bfloat16 C then adds its one rounding, half an ulp: 2^-8 of the result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/parallel.h"
#include "gemm_check.h"
#include "isa_test.h"
#include "kernels/cpu/gemm/gemm_bf16.h"
#include "kernels/cpu/isa.h"

namespace {

using dc::cpu::GemmActivation;
using dc::cpu::GemmEpilogue;
using dc::cpu::Isa;

double round_bf16(double x) { return dc::bf16_bits_to_float(dc::float_to_bf16_bits(float(x))); }

// A float32 or bfloat16 matrix in a larger buffer: element (i, j) at i * rs + j * cs.
// Transposed: column-major (rs = 1, cs = ld); otherwise row-major; ld = width + pad.
struct Mat {
  bool bf16 = false;
  int64_t rows = 0, cols = 0, rs = 0, cs = 0;
  std::vector<uint16_t> h;
  std::vector<float> f;

  size_t size() const { return bf16 ? h.size() : f.size(); }
  double flat(size_t at) const { return bf16 ? dc::bf16_bits_to_float(h[at]) : f[at]; }
  double get(int64_t i, int64_t j) const { return flat(size_t(i * rs + j * cs)); }
  void set(int64_t i, int64_t j, float v) {
    const size_t at = size_t(i * rs + j * cs);
    if (bf16) {
      h[at] = dc::float_to_bf16_bits(v);
    } else {
      f[at] = v;
    }
  }
  void* ptr() { return bf16 ? static_cast<void*>(h.data()) : static_cast<void*>(f.data()); }
};

Mat make_mat(int64_t rows, int64_t cols, bool bf16, bool transposed, int64_t pad, std::mt19937& rng,
             float fill = 0.0f, bool random = true) {
  Mat m;
  m.bf16 = bf16;
  m.rows = rows;
  m.cols = cols;
  const int64_t ld = (transposed ? rows : cols) + pad;
  m.rs = transposed ? 1 : ld;
  m.cs = transposed ? ld : 1;
  const size_t n = size_t(std::max<int64_t>(1, ld * (transposed ? cols : rows)));
  if (bf16) {
    m.h.assign(n, dc::float_to_bf16_bits(fill));
  } else {
    m.f.assign(n, fill);
  }
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  if (random)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) m.set(i, j, dist(rng));
  return m;
}

struct Case {
  int64_t M, N, K;
  bool ta = false, tb = false, tc = false;  // transposed (column-major) A, B, C
  bool a16 = true, b16 = true, c16 = true;  // bfloat16 (else float32) A, B, C
  int64_t pad = 0;                          // extra leading-dimension elements on every operand
  double alpha = 1, beta = 0;
  GemmActivation act = GemmActivation::none;
  bool bias = false;

  // Layout bits 0-2 (ta, tb, tc) and dtype bits 3-5 (a16, b16, c16) from one index.
  Case& variant(int v) {
    ta = v & 1;
    tb = v & 2;
    tc = v & 4;
    a16 = v & 8;
    b16 = v & 16;
    c16 = v & 32;
    return *this;
  }
  std::string str() const {
    auto s = [](auto v) { return std::to_string(v); };
    return "M=" + s(M) + " N=" + s(N) + " K=" + s(K) + " ta=" + s(ta) + " tb=" + s(tb) +
           " tc=" + s(tc) + " dtypes(a,b,c)=" + (a16 ? "bf16," : "f32,") +
           (b16 ? "bf16," : "f32,") + (c16 ? "bf16" : "f32") + " pad=" + s(pad) +
           " alpha=" + s(alpha) + " beta=" + s(beta) + " act=" + s(static_cast<int>(act)) +
           " bias=" + s(bias);
  }
};

// Runs one case and compares every element of C with the reference, and the padding of C
// (which must stay untouched). Returns false after the first few mismatches.
bool check_case(const Case& c, std::mt19937& rng) {
  Mat A = make_mat(c.M, c.K, c.a16, c.ta, c.pad, rng);
  Mat B = make_mat(c.K, c.N, c.b16, c.tb, c.pad, rng);
  // beta == 0: C must not be read, so it starts as NaN (the padding too, which must survive).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Mat C = make_mat(c.M, c.N, c.c16, c.tc, c.pad, rng, c.beta == 0 ? nan : 7.0f, c.beta != 0);
  const Mat C0 = C;
  Mat bias = make_mat(1, c.N, c.c16, false, 0, rng);
  GemmEpilogue ep;
  ep.bias = c.bias ? bias.ptr() : nullptr;
  ep.act = c.act;

  dc::cpu::gemm_bf16(c.M, c.N, c.K, float(c.alpha), A.ptr(), c.a16, A.rs, A.cs, B.ptr(), c.b16,
                     B.rs, B.cs, float(c.beta), C.ptr(), c.c16, C.rs, C.cs, ep);

  const double u = std::ldexp(1.0, -24);
  // The float32 GELU uses ~1e-7-accurate polynomial approximations of exp/erf.
  const double act_tol = c.act > GemmActivation::relu ? 4e-6 : 0;
  const bool values_ok = dc::test::matches_reference(
      c, [&](int64_t i, int64_t p) { return round_bf16(A.get(i, p)); },
      [&](int64_t p, int64_t j) { return round_bf16(B.get(p, j)); },
      [&](int64_t i, int64_t j) { return C0.get(i, j); },
      [&](int64_t j) { return bias.get(0, j); }, [&](int64_t i, int64_t j) { return C.get(i, j); },
      [&](double ref, double mag) {
        const double tol = (c.K + 4) * u * mag + act_tol * (1 + mag) + 1e-30;
        return c.c16 ? tol + std::ldexp(std::abs(ref) + tol, -8) : tol;
      });
  return values_ok && dc::test::padding_untouched(
                          c, [&](int64_t k) { return C.flat(size_t(k)); },
                          [&](int64_t k) { return C0.flat(size_t(k)); });
}

// Every layout (ta, tb, tc) and dtype (a, b, c) combination: 64 runs.
bool check_all_variants(Case c, std::mt19937& rng) {
  for (int v = 0; v < 64; ++v)
    if (!check_case(c.variant(v), rng)) return false;
  return true;
}

// Every test runs once per ISA; an ISA the CPU lacks is skipped.
class GemmBf16Test : public dc::test::IsaTest {
 protected:
  std::mt19937 rng{1234};
};

TEST_P(GemmBf16Test, NativeOnlyWhereTheCpuAndIsaAllowIt) {
  __builtin_cpu_init();
  const bool cpu = __builtin_cpu_supports("avx512bf16");
  EXPECT_EQ(dc::cpu::gemm_bf16_native(), cpu && GetParam() == Isa::avx512);
}

// Sizes across the micro-tile edges (MR 4/6/12, NR 8/16/32), the k-pair padding (odd K) and
// the fallback's KC = 256 slice edge; each size runs in every layout and dtype combination.
const int64_t kSizes[] = {1, 2, 7, 13, 31, 33, 65, 127, 255, 257};

TEST_P(GemmBf16Test, SweepEachDimension) {
  int v = 0;
  for (int64_t s : kSizes)
    for (Case c : {Case{s, 37, 19}, Case{29, s, 23}, Case{21, 35, s}}) {
      // Small sizes in every combination; the large ones in a rotating eighth of them.
      if (s < 100) {
        ASSERT_TRUE(check_all_variants(c, rng));
      } else {
        for (int k = 0; k < 8; ++k) ASSERT_TRUE(check_case(c.variant((v += 9) % 64), rng));
      }
    }
}

TEST_P(GemmBf16Test, SizeGrid) {
  int v = 0;
  for (int64_t m : {1, 2, 7, 13, 31, 33, 65})
    for (int64_t n : {1, 2, 7, 13, 31, 33, 65})
      for (int64_t k : {1, 2, 7, 33, 65})
        ASSERT_TRUE(check_case(Case{m, n, k}.variant(v++ % 64), rng));
}

// Larger than the cache blocks (native KC 2048, MC 96, NC 1024; float32 fallback KC 256, MC
// 144, NC 1024): several K slices with ragged (odd) ends, so a bfloat16 C carries float32 sums
// across slices; column blocks; threads.
TEST_P(GemmBf16Test, SeveralCacheBlocks) {
  int v = 0;
  for (Case c : {Case{127, 157, 509}, Case{157, 127, 513}, Case{300, 1100, 41}, Case{131, 201, 263},
                 Case{33, 70, 2100}, Case{45, 33, 4099}}) {
    for (int k = 0; k < 3; ++k) ASSERT_TRUE(check_case(c.variant((v += 13) % 64), rng));
  }
}

// On one thread a bfloat16 C with several K slices keeps its float32 sums for about 1000 rows
// of a 1024-wide column block at a time (4 MB); taller products run in row chunks, each
// packing B again. B has 6 nonzeros per column, spread over the K slices, so the reference
// stays cheap at this size.
TEST_P(GemmBf16Test, RowChunksOfBf16Sums) {
  const int64_t M = 1030, N = 1030, K = 2100, nnz = 6;
  Mat A = make_mat(M, K, true, false, 0, rng);
  Mat B = make_mat(K, N, false, true, 0, rng, 0.0f, false);
  Mat C = make_mat(M, N, true, false, 0, rng);
  const Mat C0 = C;
  Mat bias = make_mat(1, N, true, false, 0, rng);
  std::vector<int64_t> rows(size_t(N * nnz));
  std::uniform_int_distribution<int64_t> pick(0, K - 1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (int64_t j = 0; j < N; ++j)
    for (int64_t t = 0; t < nnz; ++t) {
      // One nonzero in each sixth of K (so in every slice), the rest random.
      const int64_t p = t < 2 ? t * (K - 1) : pick(rng);
      rows[size_t(j * nnz + t)] = p;
      B.set(p, j, dist(rng));
    }
  const int saved = dc::get_num_threads();
  dc::set_num_threads(1);
  GemmEpilogue ep;
  ep.bias = bias.ptr();
  ep.act = GemmActivation::relu;
  dc::cpu::gemm_bf16(M, N, K, 1.5f, A.ptr(), true, A.rs, A.cs, B.ptr(), false, B.rs, B.cs, 0.5f,
                     C.ptr(), true, C.rs, C.cs, ep);
  dc::set_num_threads(saved);
  int failures = 0;
  for (int64_t j = 0; j < N && failures < 3; ++j) {
    std::vector<int64_t> ps(rows.begin() + j * nnz, rows.begin() + (j + 1) * nnz);
    std::sort(ps.begin(), ps.end());
    ps.erase(std::unique(ps.begin(), ps.end()), ps.end());
    for (int64_t i = 0; i < M; ++i) {
      double sum = 0, mag = 0;
      for (int64_t p : ps) {
        const double prod = A.get(i, p) * round_bf16(B.get(p, j));
        sum += prod;
        mag += std::abs(prod);
      }
      double ref = 1.5 * sum + 0.5 * C0.get(i, j) + bias.get(0, j);
      mag = 1.5 * mag + std::abs(0.5 * C0.get(i, j)) + std::abs(bias.get(0, j));
      ref = std::max(ref, 0.0);
      const double tol = 16 * std::ldexp(mag, -24) + std::ldexp(std::abs(ref) + mag * 1e-6, -8);
      if (!(std::abs(C.get(i, j) - ref) <= tol)) {
        ADD_FAILURE() << "C[" << i << ", " << j << "] = " << C.get(i, j) << ", expected " << ref;
        if (++failures >= 3) break;
      }
    }
  }
}

TEST_P(GemmBf16Test, LeadingDimensions) {
  for (int64_t pad : {1, 3, 16}) {
    Case c{33, 45, 70};
    c.pad = pad;
    ASSERT_TRUE(check_all_variants(c, rng));
  }
}

TEST_P(GemmBf16Test, AlphaBeta) {
  for (auto [alpha, beta] : {std::pair{1.0, 0.0},
                             {2.5, 0.0},
                             {1.0, 1.0},
                             {-0.5, 0.75},
                             {0.0, 0.5},
                             {0.0, 0.0},
                             {1.0, -2.0}}) {
    for (const Case& base : {Case{17, 33, 9}, Case{70, 70, 300}}) {
      Case c = base;
      c.alpha = alpha;
      c.beta = beta;
      for (int v = base.K > 100 ? 1 : 0; v < 64; v += base.K > 100 ? 7 : 3)
        ASSERT_TRUE(check_case(c.variant(v), rng));
    }
  }
}

// Bias (in C's dtype) and activation, with one K slice and several, row- and column-major C
// (a column-major C runs transposed, its bias then indexed by row).
TEST_P(GemmBf16Test, Epilogue) {
  for (GemmActivation act : {GemmActivation::none, GemmActivation::relu, GemmActivation::gelu_tanh,
                             GemmActivation::gelu_erf}) {
    for (bool bias : {false, true}) {
      for (const Case& base : {Case{1, 1, 1}, Case{19, 45, 13}, Case{40, 70, 300}}) {
        Case c = base;
        c.act = act;
        c.bias = bias;
        c.alpha = 2.0;  // spreads values over the GELU's curved part
        for (int v = 0; v < 64; v += base.K > 100 ? 11 : 5)
          ASSERT_TRUE(check_case(c.variant(v), rng));
        c.beta = 0.5;
        ASSERT_TRUE(check_case(c.variant(4 + 8 + 16 + 32), rng));
        ASSERT_TRUE(check_case(c.variant(0), rng));
      }
    }
  }
}

// Both strides non-unit: every other row and column of a bigger matrix, bf16 A and C, f32 B.
TEST_P(GemmBf16Test, DoublyStridedOperands) {
  const int64_t M = 23, N = 37, K = 41;
  std::vector<uint16_t> A(4 * M * K), C(4 * M * N, dc::float_to_bf16_bits(5.0f));
  std::vector<float> B(4 * K * N);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (auto& v : A) v = dc::float_to_bf16_bits(dist(rng));
  for (auto& v : B) v = dist(rng);
  dc::cpu::gemm_bf16(M, N, K, 1.0f, A.data(), true, 4 * K, 2, B.data(), false, 2, 2 * K, 0.0f,
                     C.data(), true, 2 * N, 2);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double ref = 0;
      for (int64_t p = 0; p < K; ++p)
        ref +=
            double(dc::bf16_bits_to_float(A[i * 4 * K + p * 2])) * round_bf16(B[p * 2 + j * 2 * K]);
      ASSERT_NEAR(dc::bf16_bits_to_float(C[i * 2 * N + j * 2]), ref, 1e-5 * K + std::abs(ref) / 256)
          << i << ", " << j;
      ASSERT_EQ(C[i * 2 * N + j * 2 + 1], dc::float_to_bf16_bits(5.0f));
    }
}

// Negative strides (a flipped view) and a zero stride (one row of B broadcast over K).
TEST_P(GemmBf16Test, NegativeAndZeroStrides) {
  const int64_t M = 29, N = 45, K = 37;
  std::vector<uint16_t> A(M * K), B(K * N);
  std::vector<float> C(M * N), Bz(N);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (auto& v : A) v = dc::float_to_bf16_bits(dist(rng));
  for (auto& v : B) v = dc::float_to_bf16_bits(dist(rng));
  for (auto& v : Bz) v = dist(rng);
  auto a = [&](int64_t i, int64_t p) { return double(dc::bf16_bits_to_float(A[i * K + p])); };
  // A flipped upside down and left-right; C written bottom row first.
  dc::cpu::gemm_bf16(M, N, K, 1.0f, A.data() + M * K - 1, true, -K, -1, B.data(), true, N, 1, 0.0f,
                     C.data() + (M - 1) * N, false, -N, 1);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double ref = 0;
      for (int64_t p = 0; p < K; ++p)
        ref += a(M - 1 - i, K - 1 - p) * dc::bf16_bits_to_float(B[p * N + j]);
      ASSERT_NEAR(C[(M - 1 - i) * N + j], ref, 1e-5);
    }
  dc::cpu::gemm_bf16(M, N, K, 1.0f, A.data(), true, K, 1, Bz.data(), false, 0, 1, 0.0f, C.data(),
                     false, N, 1);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double ref = 0;
      for (int64_t p = 0; p < K; ++p) ref += a(i, p) * round_bf16(Bz[j]);
      ASSERT_NEAR(C[i * N + j], ref, 1e-5);
    }
}

// float32 operands are rounded to nearest even, not truncated: 1 + 3 * 2^-9 rounds up to
// 1 + 2^-7, the tie 1 + 2^-8 to 1 (even); small integers stay exact through the sums.
TEST_P(GemmBf16Test, Float32InputsRoundToNearestEven) {
  for (int64_t k : {1, 2, 3, 40}) {
    std::vector<float> A(3 * k, 0.0f), B(k * 2, 0.0f), C(3 * 2, -1.0f);
    A[0] = 1.0f + 3.0f / 512;  // row 0: one value, rounds up
    A[k] = 1.0f + 1.0f / 256;  // row 1: a tie, rounds to even (down)
    for (int64_t p = 0; p < k; ++p) A[2 * k + p] = float(p % 7 + 1);  // row 2: integers
    for (int64_t p = 0; p < k; ++p) B[p * 2] = 1.0f, B[p * 2 + 1] = float(p % 5 + 1);
    dc::cpu::gemm_bf16(3, 2, k, 1.0f, A.data(), false, k, 1, B.data(), false, 2, 1, 0.0f, C.data(),
                       false, 2, 1);
    EXPECT_EQ(C[0], 1.0f + 1.0f / 128) << "k=" << k;
    EXPECT_EQ(C[2], 1.0f) << "k=" << k;
    double ints = 0, ones = 0;
    for (int64_t p = 0; p < k; ++p) ints += double(p % 7 + 1) * (p % 5 + 1), ones += p % 7 + 1;
    EXPECT_EQ(C[4], ones) << "k=" << k;
    EXPECT_EQ(C[5], ints) << "k=" << k;
  }
}

// K == 0: C = beta * C, then the epilogue; M == 0 or N == 0: nothing happens.
TEST_P(GemmBf16Test, EmptySizes) {
  for (Case c : {Case{5, 7, 0}, Case{40, 3, 0, false, false, true}}) {
    const int layout = c.tc ? 4 : 0;
    for (double beta : {0.0, 2.0}) {
      c.beta = beta;
      c.bias = true;
      c.act = GemmActivation::relu;
      for (int v = 0; v < 64; v += 8) ASSERT_TRUE(check_case(c.variant(v | layout), rng));
    }
  }
  uint16_t c_value = dc::float_to_bf16_bits(3.0f);
  dc::cpu::gemm_bf16(0, 4, 4, 1.0f, nullptr, true, 4, 1, nullptr, true, 4, 1, 0.0f, &c_value, true,
                     4, 1);
  dc::cpu::gemm_bf16(4, 0, 4, 1.0f, nullptr, true, 4, 1, nullptr, true, 4, 1, 0.0f, &c_value, true,
                     4, 1);
  dc::cpu::gemm_bf16(0, 0, 0, 1.0f, nullptr, true, 0, 1, nullptr, true, 0, 1, 0.0f, nullptr, true,
                     0, 1);
  dc::cpu::gemm_batched_bf16(0, 4, 4, 4, 1.0f, nullptr, true, 0, 4, 1, nullptr, true, 0, 4, 1, 0.0f,
                             &c_value, true, 0, 4, 1);
  EXPECT_EQ(c_value, dc::float_to_bf16_bits(3.0f));
  EXPECT_THROW(dc::cpu::gemm_bf16(-1, 4, 4, 1.0f, nullptr, true, 4, 1, nullptr, true, 4, 1, 0.0f,
                                  &c_value, true, 4, 1),
               dc::ValueError);
  EXPECT_THROW(dc::cpu::gemm_bf16(4, 4, 4, 1.0f, nullptr, true, 4, 1, nullptr, true, 4, 1, 0.0f,
                                  &c_value, true, 4, 1),
               dc::ValueError);
  EXPECT_THROW(dc::cpu::gemm_batched_bf16(-1, 4, 4, 4, 1.0f, nullptr, true, 0, 4, 1, nullptr, true,
                                          0, 4, 1, 0.0f, &c_value, true, 0, 4, 1),
               dc::ValueError);
}

// alpha == 0: A and B are not read (they may hold NaN).
TEST_P(GemmBf16Test, AlphaZeroDoesNotReadOperands) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<uint16_t> A(6 * 5, dc::float_to_bf16_bits(nan)), C(6 * 4, dc::float_to_bf16_bits(2));
  std::vector<float> B(5 * 4, nan);
  dc::cpu::gemm_bf16(6, 4, 5, 0.0f, A.data(), true, 5, 1, B.data(), false, 4, 1, 1.5f, C.data(),
                     true, 4, 1);
  for (uint16_t v : C) ASSERT_EQ(dc::bf16_bits_to_float(v), 3.0f);
}

// Batch strides in elements (0 broadcasts), each dtype combination; sc == 0 below.
TEST_P(GemmBf16Test, Batched) {
  for (auto [batch, M, N, K] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{5, 13, 37, 21},
                                {16, 64, 64, 64},
                                {3, 40, 300, 270}}) {
    // Every combination for the small products, an eighth of them for the large one.
    for (int v = 0; v < 32; v += batch == 5 ? 1 : batch == 16 ? 2 : 4) {
      const bool ba = v & 1, bb = v & 2, a16 = v & 4, b16 = v & 8, c16 = v & 16;
      const double beta = v % 3 == 0 ? 0.0 : 0.5;
      const int64_t sa = ba ? 0 : M * K + 3, sb = bb ? 0 : K * N + 5, sc = M * N + 2;
      Mat A = make_mat((ba ? 1 : batch) * (M * K + 3), 1, a16, false, 0, rng);
      Mat B = make_mat((bb ? 1 : batch) * (K * N + 5), 1, b16, false, 0, rng);
      Mat C = make_mat(batch * sc, 1, c16, false, 0, rng);
      const Mat C0 = C;
      const bool tb = v % 3 == 1;
      const int64_t rsb = tb ? 1 : N, csb = tb ? K : 1;
      dc::cpu::gemm_batched_bf16(batch, M, N, K, 0.5f, A.ptr(), a16, sa, K, 1, B.ptr(), b16, sb,
                                 rsb, csb, float(beta), C.ptr(), c16, sc, N, 1);
      std::vector<double> ar(A.size()), br(B.size());  // bf16-rounded A and B
      for (size_t t = 0; t < ar.size(); ++t) ar[t] = round_bf16(A.flat(t));
      for (size_t t = 0; t < br.size(); ++t) br[t] = round_bf16(B.flat(t));
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            double ref = beta * C0.flat(size_t(b * sc + i * N + j)), mag = std::abs(ref);
            for (int64_t p = 0; p < K; ++p) {
              const double prod =
                  0.5 * ar[size_t(b * sa + i * K + p)] * br[size_t(b * sb + p * rsb + j * csb)];
              ref += prod;
              mag += std::abs(prod);
            }
            double tol = (K + 4) * std::ldexp(mag, -24) + 1e-30;
            if (c16) tol += std::ldexp(std::abs(ref) + tol, -8);
            ASSERT_NEAR(C.flat(size_t(b * sc + i * N + j)), ref, tol)
                << "batch " << b << " (" << i << ", " << j << ") variant " << v;
          }
      // The gaps between the batches of C stay untouched.
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t g = M * N; g < sc; ++g)
          ASSERT_EQ(C.flat(size_t(b * sc + g)), C0.flat(size_t(b * sc + g)));
    }
  }
}

// A shared C (sc == 0) is updated by each batch in order: C = A B + 2 C, twice, with B = I.
TEST_P(GemmBf16Test, BatchedSharedOutput) {
  std::vector<uint16_t> A, B, C;
  for (float v : {1, 2, 3, 4}) A.push_back(dc::float_to_bf16_bits(v));
  for (float v : {1, 0, 0, 1}) B.push_back(dc::float_to_bf16_bits(v));
  for (float v : {1, 1, 1, 1}) C.push_back(dc::float_to_bf16_bits(v));
  dc::cpu::gemm_batched_bf16(2, 2, 2, 2, 1.0f, A.data(), true, 0, 2, 1, B.data(), true, 0, 2, 1,
                             2.0f, C.data(), true, 0, 2, 1);
  std::vector<float> got;
  for (uint16_t v : C) got.push_back(dc::bf16_bits_to_float(v));
  EXPECT_EQ(got, (std::vector<float>{7, 10, 13, 16}));
  std::vector<float> Cf(4, 1.0f);
  dc::cpu::gemm_batched_bf16(2, 2, 2, 2, 1.0f, A.data(), true, 0, 2, 1, B.data(), true, 0, 2, 1,
                             2.0f, Cf.data(), false, 0, 2, 1);
  EXPECT_EQ(Cf, (std::vector<float>{7, 10, 13, 16}));
}

// Inside a parallel region each call runs on its calling thread, with that thread's pack and
// sums buffers, and gives the serial answer (K over both KC values: several slices).
TEST_P(GemmBf16Test, InsideParallelRegion) {
  const int64_t n = 96, K = 2100;
  Mat A = make_mat(n, K, true, false, 0, rng), B = make_mat(K, n, true, false, 0, rng);
  std::vector<uint16_t> C0(n * n);
  dc::cpu::gemm_bf16(n, n, K, 1.0f, A.ptr(), true, K, 1, B.ptr(), true, n, 1, 0.0f, C0.data(),
                     true, n, 1);
  std::vector<std::vector<uint16_t>> outs(4, std::vector<uint16_t>(n * n));
#pragma omp parallel for num_threads(2)
  for (int t = 0; t < 4; ++t)
    dc::cpu::gemm_bf16(n, n, K, 1.0f, A.ptr(), true, K, 1, B.ptr(), true, n, 1, 0.0f,
                       outs[t].data(), true, n, 1);
  for (const auto& out : outs) EXPECT_EQ(out, C0);
}

// One thread and two give the same answer (the split never changes a sum's order).
TEST_P(GemmBf16Test, ThreadCountDoesNotChangeResult) {
  const int64_t M = 333, N = 517, K = 300;
  Mat A = make_mat(M, K, true, false, 0, rng), B = make_mat(K, N, false, false, 0, rng);
  std::vector<uint16_t> C1(M * N), C2(M * N);
  const int saved = dc::get_num_threads();
  dc::set_num_threads(1);
  dc::cpu::gemm_bf16(M, N, K, 1.0f, A.ptr(), true, K, 1, B.ptr(), false, N, 1, 0.0f, C1.data(),
                     true, N, 1);
  dc::set_num_threads(std::max(2, saved));
  dc::cpu::gemm_bf16(M, N, K, 1.0f, A.ptr(), true, K, 1, B.ptr(), false, N, 1, 0.0f, C2.data(),
                     true, N, 1);
  dc::set_num_threads(saved);
  EXPECT_EQ(C1, C2);
}

DC_INSTANTIATE_FOR_EVERY_ISA(GemmBf16Test);

}  // namespace
