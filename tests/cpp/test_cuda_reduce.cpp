// The host-side logic of the CUDA reductions, scans and sorts (kernels/cuda/reduce_ops.h,
// kernels/cuda/sort_plan.h), which needs no GPU to be right: the Ops and the split of K run here
// in the kernels' order (a warp's interleaved lanes and its shuffle tree, the warp scan with its
// carry, the chunk totals, carries and merges), and the bitonic network launch by launch with
// the kernels' compare-exchange, all against the cpu kernels at awkward shapes, with NaN, ties,
// signed zeros, infinities and integer wraparound.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/scan.h"
#include "kernels/cpu/sort.h"
#include "kernels/cuda/reduce_ops.h"
#include "kernels/cuda/sort_plan.h"
#include "reduce_emulation.h"

namespace dc::cuda_kernels {
namespace {

using cpu::ReduceDims;

// Shapes (outer, K, inner): a thread per row (K < 32), a warp per row, columns, and the split
// of K for rows (one long row; a row whose chunks are not a multiple of 32) and for columns.
const std::vector<ReduceDims> kShapes = {
    {1, 1, 1},   {7, 2, 1},      {3, 17, 1},     {5, 40, 1},   {1, 1031, 1},
    {2, 5, 3},   {1, 13, 31},    {5, 1, 257},    {4, 33, 300}, {1, 5000, 1},
    {3, 2500, 2}, {1, 200003, 1}, {2, 65537, 3}, {1, 4099, 257}};

int64_t numel(const ReduceDims& d) { return d.outer * d.reduce * d.inner; }

// An array of n values, for bool too (std::vector<bool> has no bool* to hand a kernel).
template <typename T>
class Buf {
 public:
  explicit Buf(int64_t n = 0, T fill = T()) : n_(static_cast<size_t>(n)), p_(new T[n_]) {
    std::fill(begin(), end(), fill);
  }
  Buf(const Buf& o) : Buf(static_cast<int64_t>(o.n_)) { std::copy(o.begin(), o.end(), begin()); }
  T* data() const { return p_.get(); }
  size_t size() const { return n_; }
  T& operator[](size_t j) const { return p_[j]; }
  T* begin() const { return p_.get(); }
  T* end() const { return p_.get() + n_; }

 private:
  size_t n_;
  std::unique_ptr<T[]> p_;
};

// ---- the kernels' schedules on the host ----------------------------------------------------

// scan.cu: scan_segments (a thread in order; or a warp 32 positions a step: Hillis-Steele
// over the lanes' states, the earlier state merged in front, then the carry in front of every
// lane, and lane 31's result carried on), with K split first the totals pass and the carries.
template <class Op>
void emulate_scan(const Op& op, const typename Op::In* x, const ReduceDims& d) {
  using State = typename Op::State;
  if (numel(d) == 0) return;
  const SplitPlan p = split_plan(d.outer, d.reduce, d.inner);
  const bool split = p.nk > 1;
  std::unique_ptr<State[]> part(new State[split ? p.segments() : 1]);
  auto pass = [&](bool store) {
    for (int64_t s = 0; s < p.segments(); ++s) {
      const Segment g = segment_at(s, p.nk, p.inner, p.kchunk, p.reduce);
      const int64_t base = g.o * p.reduce * p.inner + g.i;
      const typename Op::In* col = x + base;
      State carry = store && split ? part[s] : op.identity();
      if (!p.warp) {
        for (int64_t k = g.k0; k < g.k1; ++k) {
          op.add(carry, col[k * p.inner], k);
          if (store) op.store(carry, base + k * p.inner);
        }
      } else {
        for (int64_t k0 = g.k0; k0 < g.k1; k0 += 32) {
          std::array<State, 32> e;
          for (int l = 0; l < 32; ++l) {
            e[l] = op.identity();
            if (k0 + l < g.k1) op.add(e[l], col[k0 + l], k0 + l);
          }
          for (int dd = 1; dd < 32; dd *= 2) {
            const std::array<State, 32> before = e;
            for (int l = dd; l < 32; ++l) {
              State m = before[l - dd];
              op.merge(m, before[l]);
              e[l] = m;
            }
          }
          std::array<State, 32> prefix;
          for (int l = 0; l < 32; ++l) {
            prefix[l] = carry;
            op.merge(prefix[l], e[l]);
            if (store && k0 + l < g.k1) op.store(prefix[l], base + k0 + l);
          }
          carry = prefix[31];
        }
      }
      if (!store) part[s] = carry;
    }
  };
  if (split) {
    pass(false);
    for (int64_t t = 0; t < d.outer * d.inner; ++t) {
      State* chunks = part.get() + (t / p.inner) * p.nk * p.inner + t % p.inner;
      State run = op.identity();
      for (int64_t c = 0; c < p.nk; ++c) {
        const State total = chunks[c * p.inner];
        chunks[c * p.inner] = run;
        op.merge(run, total);
      }
    }
  }
  pass(true);
}

// sort.cu: the launches of bitonic_launches, each tile loaded, stepped and stored as
// bitonic_tiles does it, the global steps as bitonic_global_step; out[rows, k].
template <typename T>
std::vector<int64_t> emulate_sort(const T* x, int64_t rows, int64_t n, int64_t k, bool descending,
                                  int64_t tile) {
  const SortGeom g = sort_geom(rows, n, k, tile);
  const std::vector<BitonicLaunch> plan = bitonic_launches(g);
  std::vector<SortPair> pairs(static_cast<size_t>(g.total()));
  std::vector<int64_t> out(static_cast<size_t>(rows * k), -1);
  for (size_t s = 0; s < plan.size(); ++s) {
    const BitonicLaunch& l = plan[s];
    if (!l.in_tiles) {
      EXPECT_GE(l.stride, g.span);
      for (int64_t q = 0; q < g.total() / 2; ++q)
        bitonic_step(pairs.data(), 0, q, l.first_size, l.stride, g.padded);
      continue;
    }
    const bool last = s + 1 == plan.size();
    for (int64_t t = 0; t < g.tiles(); ++t) {
      const int64_t base = t * g.tile, count = std::min(g.tile, g.total() - base);
      EXPECT_EQ(count % g.span, 0);
      std::vector<SortPair> buf(static_cast<size_t>(count));
      for (int64_t e = 0; e < count; ++e)
        buf[e] = s > 0 ? pairs[base + e] : load_pair(x, g, base + e, descending);
      for (int64_t size = l.first_size; size <= l.last_size; size *= 2)
        for (int64_t stride = std::min(size, g.span) / 2; stride > 0; stride /= 2)
          for (int64_t q = 0; q < count / 2; ++q) {
            if (bitonic_lo(q, stride) + stride >= count) {
              ADD_FAILURE() << "pair " << q << " of stride " << stride << " leaves the tile";
              return out;
            }
            bitonic_step(buf.data(), base, q, size, stride, g.padded);
          }
      for (int64_t e = 0; e < count; ++e) {
        const int64_t i = base + e;
        if (!last) pairs[i] = buf[e];
        else if (i % g.padded < k) out[(i / g.padded) * k + i % g.padded] = buf[e].index;
      }
    }
  }
  return out;
}

// ---- data and comparisons ------------------------------------------------------------------

// Few distinct values (many ties); with `specials` also NaN, -0, +0 and the infinities.
template <typename T>
Buf<T> values(int64_t n, uint32_t seed, bool specials) {
  std::mt19937 rng(seed);
  Buf<T> v(n);
  for (auto& x : v) {
    const int r = static_cast<int>(rng() % 16);
    if constexpr (std::is_same_v<T, bool>) {
      x = r < 8;
    } else if constexpr (std::is_integral_v<T>) {
      x = static_cast<T>(r % 7 - 3);
    } else {
      constexpr T inf = std::numeric_limits<T>::infinity();
      const T special[] = {std::numeric_limits<T>::quiet_NaN(), T(-0.0), T(0.0), inf, -inf};
      x = specials && r < 5 ? special[r] : static_cast<T>(r % 5 - 2) * T(0.75);
    }
  }
  return v;
}

template <typename T>
Buf<T> uniform(int64_t n, uint32_t seed, double lo, double hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  Buf<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

// Equal, or (floats) both NaN, or within rtol (infinities equal only to themselves).
template <typename T>
void expect_close(const Buf<T>& got, const Buf<T>& want, double rtol,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t j = 0; j < got.size(); ++j) {
    if constexpr (std::is_floating_point_v<T>) {
      const double a = got[j], b = want[j];
      if (std::isnan(b) || std::isinf(b)) {
        EXPECT_TRUE(std::isnan(b) ? std::isnan(a) : a == b) << what << " at " << j << ": " << a
                                                            << " vs " << b;
      } else {
        EXPECT_NEAR(a, b, rtol * std::max(1.0, std::abs(b))) << what << " at " << j;
      }
    } else {
      EXPECT_EQ(got[j], want[j]) << what << " at " << j;
    }
    if (::testing::Test::HasFailure()) return;  // one report per case is enough
  }
}

template <typename T>
constexpr double rtol_of() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-12;
}

// ---- the split plan ------------------------------------------------------------------------

TEST(CudaReducePlan, SegmentsCoverEveryColumnOnceInOrder) {
  std::vector<ReduceDims> shapes = kShapes;
  std::mt19937 rng(11);
  for (int t = 0; t < 300; ++t)
    shapes.push_back({1 + int64_t(rng() % 5), 1 + int64_t(rng() % 300000),
                      rng() % 3 ? 1 : 1 + int64_t(rng() % 7)});
  for (const ReduceDims& d : shapes) {
    const SplitPlan p = split_plan(d.outer, d.reduce, d.inner);
    SCOPED_TRACE(::testing::Message() << d.outer << "x" << d.reduce << "x" << d.inner);
    ASSERT_GE(p.nk, 1);
    EXPECT_LE(p.nk, kMaxChunks);
    EXPECT_EQ(p.warp, d.inner == 1 && p.kchunk >= 32);
    if (p.nk > 1) EXPECT_LT(d.outer * d.inner * (d.inner == 1 ? 32 : 1), kSplitThreads);
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t i = 0; i < d.inner; ++i) {
        int64_t next = 0;
        for (int64_t c = 0; c < p.nk; ++c) {
          const int64_t s = (o * p.nk + c) * d.inner + i;
          const Segment g = segment_at(s, p.nk, p.inner, p.kchunk, p.reduce);
          ASSERT_EQ(g.o, o);
          ASSERT_EQ(g.i, i);
          ASSERT_EQ(g.c, c);
          ASSERT_EQ(g.k0, next);
          ASSERT_GT(g.k1, g.k0);  // no empty chunk
          next = g.k1;
        }
        ASSERT_EQ(next, d.reduce);
      }
  }
  // The shapes above do reach the split, for rows (with a chunk that is not a multiple of the
  // warp) and for columns.
  EXPECT_GT(split_plan(1, 200003, 1).nk, 1);
  EXPECT_NE(split_plan(1, 5000, 1).kchunk % 32, 0);
  EXPECT_GT(split_plan(1, 5000, 1).nk, 1);
  EXPECT_GT(split_plan(2, 65537, 3).nk, 1);
  EXPECT_GT(split_plan(3, 2500, 2).nk, 1);
  EXPECT_EQ(split_plan(4096, 100000, 1).nk, 1);  // enough rows to fill the device
  EXPECT_EQ(split_plan(0, 10, 1).segments(), 0);
}

// ---- reductions ----------------------------------------------------------------------------

template <typename T>
void check_prod() {
  for (const ReduceDims& d : kShapes) {
    SCOPED_TRACE(::testing::Message() << d.outer << "x" << d.reduce << "x" << d.inner);
    // Floats near 1 (products of 200003 factors stay finite); integers wrap around.
    const Buf<T> x = std::is_floating_point_v<T> ? uniform<T>(numel(d), 1, 0.9999, 1.0001)
                                                         : values<T>(numel(d), 1, false);
    Buf<T> got(d.outer * d.inner), want(got.size());
    emulate_reduce(ProdOp<T>{got.data()}, x.data(), d);
    cpu::prod_reduce(dtype_of<T>::value, x.data(), want.data(), d);
    expect_close(got, want, rtol_of<T>(), "prod");
  }
}

TEST(CudaReduceOps, ProdMatchesCpu) {
  check_prod<float>();
  check_prod<double>();
  check_prod<int32_t>();
  check_prod<int64_t>();
}

template <typename T>
void check_minmax(bool is_max) {
  for (const ReduceDims& d : kShapes) {
    SCOPED_TRACE(::testing::Message() << (is_max ? "max " : "min ") << d.outer << "x" << d.reduce
                                    << "x" << d.inner);
    // NaN (where there is one) in about one element in 16, or at most once per column.
    for (bool specials : {false, true}) {
      Buf<T> x = values<T>(numel(d), 2, false);
      if (specials && std::is_floating_point_v<T>) {
        const Buf<T> s = values<T>(numel(d), 3, true);
        std::mt19937 rng(5);
        for (size_t j = 0; j < x.size(); ++j)
          if (rng() % (d.reduce > 64 ? 4096 : 16) == 0) x[j] = s[j];
      }
      const int64_t m = d.outer * d.inner;
      Buf<T> gv(m), wv(m), gv2(m), wv2(m);
      Buf<int64_t> gi(m, -7), wi(m, -9);
      if (is_max) {
        emulate_reduce(ExtremeOp<T, true>{gv.data(), gi.data()}, x.data(), d);
        emulate_reduce(ExtremeOp<T, true>{gv2.data(), nullptr}, x.data(), d);
      } else {
        emulate_reduce(ExtremeOp<T, false>{gv.data(), gi.data()}, x.data(), d);
        emulate_reduce(ExtremeOp<T, false>{gv2.data(), nullptr}, x.data(), d);
      }
      cpu::minmax_reduce(dtype_of<T>::value, x.data(), wv.data(), wi.data(), d, is_max);
      cpu::minmax_reduce(dtype_of<T>::value, x.data(), wv2.data(), nullptr, d, is_max);
      expect_close(gv, wv, 0.0, "values");
      expect_close(gi, wi, 0.0, "indices");
      expect_close(gv2, wv2, 0.0, "values without indices");
    }
  }
}

TEST(CudaReduceOps, MinMaxValuesAndFirstIndicesMatchCpuWithTiesAndNaN) {
  for (bool is_max : {true, false}) {
    check_minmax<float>(is_max);
    check_minmax<double>(is_max);
    check_minmax<int32_t>(is_max);
    check_minmax<int64_t>(is_max);
    check_minmax<bool>(is_max);
  }
}

template <typename T>
void check_var() {
  for (const ReduceDims& d : kShapes) {
    SCOPED_TRACE(::testing::Message() << d.outer << "x" << d.reduce << "x" << d.inner);
    // A mean far from zero next to a small spread: what a sum of squares would lose.
    const Buf<T> x = uniform<T>(numel(d), 4, 1000.0, 1001.0);
    const double big = static_cast<double>(d.reduce) + 1;  // divisor 0: inf, or NaN for K == 1
    for (double correction : {0.0, 1.0, 2.5, big})
      for (bool take_sqrt : {false, true}) {
        Buf<T> got(d.outer * d.inner), want(got.size());
        emulate_reduce(VarOp<T>{got.data(), correction, take_sqrt}, x.data(), d);
        cpu::var_reduce(dtype_of<T>::value, x.data(), want.data(), d, correction, take_sqrt);
        expect_close(got, want, std::is_same_v<T, float> ? 1e-5 : 1e-9, "var");
      }
  }
  // NaN and the infinities propagate as on the cpu.
  const ReduceDims d{3, 40, 1};
  Buf<T> x = uniform<T>(numel(d), 5, -1.0, 1.0);
  x[3] = std::numeric_limits<T>::quiet_NaN();
  x[45] = std::numeric_limits<T>::infinity();
  x[90] = -std::numeric_limits<T>::infinity();
  x[91] = std::numeric_limits<T>::infinity();
  Buf<T> got(3), want(3);
  emulate_reduce(VarOp<T>{got.data(), 1.0, false}, x.data(), d);
  cpu::var_reduce(dtype_of<T>::value, x.data(), want.data(), d, 1.0, false);
  expect_close(got, want, 0.0, "var with NaN and inf");
}

TEST(CudaReduceOps, VarAndStdMatchCpuForEveryCorrection) {
  check_var<float>();
  check_var<double>();
}

// The same values as T and as the bits the kernels read for the 16-bit floats.
template <typename T>
struct DeviceValue {
  using type = T;
};
template <>
struct DeviceValue<Half> {
  using type = F16Bits;
};
template <>
struct DeviceValue<BFloat16> {
  using type = Bf16Bits;
};

template <typename T>
void check_all_any(const Buf<T>& x, const ReduceDims& d) {
  for (bool is_all : {true, false}) {
    const int64_t m = d.outer * d.inner;
    std::unique_ptr<bool[]> got(new bool[m]), want(new bool[m]);
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      using W = typename DeviceValue<T>::type;
      std::vector<W> w(x.size());
      std::memcpy(w.data(), x.data(), x.size() * sizeof(T));
      if (is_all) emulate_reduce(AllAnyOp<W, true>{got.get()}, w.data(), d);
      else emulate_reduce(AllAnyOp<W, false>{got.get()}, w.data(), d);
    } else {
      if (is_all) emulate_reduce(AllAnyOp<T, true>{got.get()}, x.data(), d);
      else emulate_reduce(AllAnyOp<T, false>{got.get()}, x.data(), d);
    }
    cpu::all_any_reduce(dtype_of<T>::value, x.data(), want.get(), d, is_all);
    for (int64_t j = 0; j < m; ++j) ASSERT_EQ(got[j], want[j]) << (is_all ? "all" : "any") << j;
  }
}

// Mostly zeros (any decides late) or mostly non-zeros (all does); -0 is zero, NaN is not.
template <typename T>
Buf<T> sparse(int64_t n, uint32_t seed, bool mostly_zero) {
  std::mt19937 rng(seed);
  Buf<T> v(n);
  for (auto& x : v) {
    const bool rare = rng() % 997 == 0;
    const bool zero = mostly_zero != rare;
    if constexpr (std::is_same_v<T, bool>) x = !zero;
    else if constexpr (std::is_integral_v<T>) x = zero ? T(0) : T(-2);
    else x = T(zero ? (rng() % 2 ? -0.0f : 0.0f) : (rng() % 2 ? NAN : 0.5f));
  }
  return v;
}

TEST(CudaReduceOps, AllAnyMatchCpuOnEveryDtype) {
  for (const ReduceDims& d : kShapes) {
    SCOPED_TRACE(::testing::Message() << d.outer << "x" << d.reduce << "x" << d.inner);
    for (bool mostly_zero : {true, false}) {
      check_all_any(sparse<bool>(numel(d), 6, mostly_zero), d);
      check_all_any(sparse<int32_t>(numel(d), 7, mostly_zero), d);
      check_all_any(sparse<int64_t>(numel(d), 8, mostly_zero), d);
      check_all_any(sparse<float>(numel(d), 9, mostly_zero), d);
      check_all_any(sparse<double>(numel(d), 10, mostly_zero), d);
      check_all_any(sparse<Half>(numel(d), 12, mostly_zero), d);
      check_all_any(sparse<BFloat16>(numel(d), 13, mostly_zero), d);
    }
  }
}

template <typename T>
void check_whole_tensor(int64_t n) {
  SCOPED_TRACE(n);
  Tensor t = Tensor::empty({n}, dtype_of<T>::value);
  const Buf<T> x = uniform<T>(n, 14, -1.0, 3.0);
  std::copy(x.begin(), x.end(), t.data<T>());
  double got = -1;
  emulate_reduce(SumToDoubleOp<T>{&got}, x.data(), ReduceDims{1, n, 1});
  EXPECT_NEAR(got, cpu::ordered_sum(t), 1e-12 * std::max<double>(1, n));
  for (double lo : {-1.0, -0.5})
    for (double hi : {3.0, 2.9}) {
      bool ok = false;
      emulate_reduce(WithinOp<T>{&ok, static_cast<T>(lo), static_cast<T>(hi)}, x.data(),
                     ReduceDims{1, n, 1});
      EXPECT_EQ(ok, cpu::all_within(t, lo, hi)) << lo << " " << hi;
    }
  // The bounds themselves are inside.
  T* p = t.data<T>();
  Buf<T> y(x);
  y[0] = p[0] = T(-1);
  y[n - 1] = p[n - 1] = T(3);
  bool edges = false;
  emulate_reduce(WithinOp<T>{&edges, T(-1), T(3)}, y.data(), ReduceDims{1, n, 1});
  EXPECT_TRUE(edges);
  EXPECT_TRUE(cpu::all_within(t, -1, 3));
  y[n / 2] = p[n / 2] = std::numeric_limits<T>::quiet_NaN();  // NaN fails the range check
  bool ok = true;
  emulate_reduce(WithinOp<T>{&ok, T(-10), T(10)}, y.data(), ReduceDims{1, n, 1});
  EXPECT_FALSE(ok);
  EXPECT_FALSE(cpu::all_within(t, -10, 10));
}

TEST(CudaReduceOps, OrderedSumAndAllWithinMatchCpu) {
  for (int64_t n : {1, 31, 33, 4097, 300001}) {
    check_whole_tensor<float>(n);
    check_whole_tensor<double>(n);
  }
}

// ---- scans ---------------------------------------------------------------------------------

template <typename T>
void check_cum_arith() {
  for (const ReduceDims& d : kShapes) {
    SCOPED_TRACE(::testing::Message() << d.outer << "x" << d.reduce << "x" << d.inner);
    const Buf<T> x = std::is_floating_point_v<T> ? uniform<T>(numel(d), 15, -1.0, 1.0)
                                                         : values<T>(numel(d), 15, false);
    const Buf<T> f = std::is_floating_point_v<T> ? uniform<T>(numel(d), 16, 0.9999, 1.0001)
                                                         : values<T>(numel(d), 16, false);
    Buf<T> got(x.size()), want(x.size());
    emulate_scan(CumArithOp<T, false>{got.data()}, x.data(), d);
    cpu::cumsum_scan(dtype_of<T>::value, x.data(), want.data(), d);
    // Partial sums that cancel to near zero have an absolute error, not a relative one.
    expect_close(got, want, std::is_same_v<T, float> ? 1e-5 : 1e-11, "cumsum");
    emulate_scan(CumArithOp<T, true>{got.data()}, f.data(), d);
    cpu::cum_scan(cpu::ScanOp::Prod, dtype_of<T>::value, f.data(), want.data(), nullptr, d);
    expect_close(got, want, rtol_of<T>(), "cumprod");
  }
}

TEST(CudaScanOps, CumsumAndCumprodMatchCpu) {
  check_cum_arith<float>();
  check_cum_arith<double>();
  check_cum_arith<int32_t>();
  check_cum_arith<int64_t>();
}

template <typename T>
void check_cum_extreme(bool is_max) {
  for (const ReduceDims& d : kShapes) {
    SCOPED_TRACE(::testing::Message() << (is_max ? "cummax " : "cummin ") << d.outer << "x"
                                    << d.reduce << "x" << d.inner);
    for (bool specials : {false, true}) {
      const Buf<T> x = values<T>(numel(d), specials ? 17 : 18, specials);
      Buf<T> gv(x.size()), wv(x.size());
      Buf<int64_t> gi(x.size(), -7), wi(x.size(), -9);
      if (is_max) emulate_scan(CumExtremeOp<T, true>{gv.data(), gi.data()}, x.data(), d);
      else emulate_scan(CumExtremeOp<T, false>{gv.data(), gi.data()}, x.data(), d);
      cpu::cum_scan(is_max ? cpu::ScanOp::Max : cpu::ScanOp::Min, dtype_of<T>::value, x.data(),
                    wv.data(), wi.data(), d);
      expect_close(gv, wv, 0.0, "values");
      expect_close(gi, wi, 0.0, "indices");
      // The value kept for a tie of -0 and +0 is the later one's, on both.
      if constexpr (std::is_floating_point_v<T>)
        for (size_t j = 0; j < gv.size(); ++j)
          ASSERT_EQ(std::signbit(gv[j]), std::signbit(wv[j])) << j;
    }
  }
}

TEST(CudaScanOps, CumMaxMinMatchCpuWithLatestTiesAndStickyNaN) {
  for (bool is_max : {true, false}) {
    check_cum_extreme<float>(is_max);
    check_cum_extreme<double>(is_max);
    check_cum_extreme<int32_t>(is_max);
    check_cum_extreme<int64_t>(is_max);
    check_cum_extreme<bool>(is_max);
  }
}

template <typename T>
void check_logcumsumexp() {
  for (const ReduceDims& d : kShapes) {
    SCOPED_TRACE(::testing::Message() << d.outer << "x" << d.reduce << "x" << d.inner);
    Buf<T> x = uniform<T>(numel(d), 19, -30.0, 30.0);
    Buf<T> got(x.size()), want(x.size());
    emulate_scan(CumLogSumExpOp<T>{got.data()}, x.data(), d);
    cpu::cum_scan(cpu::ScanOp::LogSumExp, dtype_of<T>::value, x.data(), want.data(), nullptr, d);
    expect_close(got, want, std::is_same_v<T, float> ? 1e-6 : 1e-12, "logcumsumexp");
  }
  // -inf is the identity, +inf absorbs, NaN sticks.
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> x = {-inf, -inf, 1, -inf, inf, 2, -inf, nan, 3};
  for (int64_t rows : {1, 5}) {  // a thread per row (K < 32) and, padded, a warp per row
    const int64_t K = rows == 1 ? 9 : 40;
    Buf<T> in(rows * K, -inf);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < 9; ++k) in[r * K + k + (rows > 1 ? 20 : 0)] = x[k];
    Buf<T> got(in.size()), want(in.size());
    emulate_scan(CumLogSumExpOp<T>{got.data()}, in.data(), ReduceDims{rows, K, 1});
    cpu::cum_scan(cpu::ScanOp::LogSumExp, dtype_of<T>::value, in.data(), want.data(), nullptr,
                  ReduceDims{rows, K, 1});
    expect_close(got, want, 1e-12, "logcumsumexp with infinities");
  }
}

TEST(CudaScanOps, LogCumSumExpMatchesCpu) {
  check_logcumsumexp<float>();
  check_logcumsumexp<double>();
}

// ---- sorting -------------------------------------------------------------------------------

TEST(CudaSortPlan, BitonicLoEnumeratesTheLowerElements) {
  for (int64_t stride : {1, 2, 4, 64, 1024}) {
    int64_t q = 0;
    for (int64_t i = 0; i < 8 * stride; ++i)
      if ((i & stride) == 0) ASSERT_EQ(bitonic_lo(q++, stride), i) << stride;
  }
}

TEST(CudaSortPlan, LaunchesRunTheWholeNetworkInOrder) {
  for (int64_t tile : {int64_t(4), int64_t(16), kSortTile})
    for (int64_t n : {1, 2, 3, 4, 5, 17, 64, 100, 2048, 2049, 5000, 70000}) {
      const SortGeom g = sort_geom(3, n, n, tile);
      SCOPED_TRACE(::testing::Message() << "n " << n << " tile " << tile);
      EXPECT_GE(g.padded, n);
      EXPECT_LT(g.padded, 2 * std::max<int64_t>(n, 1));
      EXPECT_EQ(g.padded & (g.padded - 1), 0);
      std::vector<std::pair<int64_t, int64_t>> want, got;  // (size, stride) in order
      for (int64_t size = 2; size <= g.padded; size *= 2)
        for (int64_t stride = size / 2; stride > 0; stride /= 2) want.push_back({size, stride});
      const std::vector<BitonicLaunch> plan = bitonic_launches(g);
      ASSERT_FALSE(plan.empty());
      EXPECT_TRUE(plan.front().in_tiles);
      EXPECT_TRUE(plan.back().in_tiles);  // the one that writes the indices
      for (const BitonicLaunch& l : plan) {
        if (!l.in_tiles) {
          EXPECT_GE(l.stride, g.span);
          got.push_back({l.first_size, l.stride});
          continue;
        }
        for (int64_t size = l.first_size; size <= l.last_size; size *= 2)
          for (int64_t stride = std::min(size, g.span) / 2; stride > 0; stride /= 2)
            got.push_back({size, stride});
      }
      EXPECT_EQ(got, want);
    }
}

template <typename T>
Buf<T> sort_values(int64_t count, uint32_t seed) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    const Buf<float> f = values<float>(count, seed, true);
    Buf<T> v(count);
    for (size_t j = 0; j < f.size(); ++j) v[j] = T(f[j]);
    return v;
  } else {
    return values<T>(count, seed, true);
  }
}

template <typename T>
void check_sort() {
  using D = typename DeviceValue<T>::type;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1, 1}, {3, 1},   {5, 2},    {4, 3},    {2, 7},    {3, 31},   {2, 33},
      {1, 100}, {3, 1000}, {1, 2048}, {2, 2049}, {1, 5000}, {300, 5}};
  uint32_t seed = 20;
  for (const auto& [rows, n] : shapes) {
    const Buf<T> x = sort_values<T>(rows * n, seed++);
    Buf<D> xd(rows * n);
    std::memcpy(xd.data(), x.data(), x.size() * sizeof(T));
    Tensor t = Tensor::empty({rows, n}, dtype_of<T>::value);
    std::copy(x.begin(), x.end(), t.data<T>());
    for (int64_t tile : {int64_t(4), int64_t(16), kSortTile})
      for (bool descending : {false, true}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype_of<T>::value) << " " << rows << "x"
                                        << n << " tile " << tile << (descending ? " desc" : ""));
        Tensor want = Tensor::empty({rows, n}, DType::Int64);
        cpu::argsort_rows(want, t, descending);
        const std::vector<int64_t> got = emulate_sort(xd.data(), rows, n, n, descending, tile);
        ASSERT_EQ(got, std::vector<int64_t>(want.data<int64_t>(), want.data<int64_t>() + rows * n));
        for (int64_t k : {int64_t(1), int64_t(2), n / 2 + 1, n}) {
          if (k > n) continue;
          Tensor wk = Tensor::empty({rows, k}, DType::Int64);
          cpu::select_rows(wk, t, k, descending);
          const std::vector<int64_t> gk = emulate_sort(xd.data(), rows, n, k, descending, tile);
          ASSERT_EQ(gk, std::vector<int64_t>(wk.data<int64_t>(), wk.data<int64_t>() + rows * k))
              << "topk " << k;
        }
      }
  }
}

TEST(CudaSort, ArgsortAndTopkMatchCpuWithNaNSignedZerosAndTies) {
  check_sort<float>();
  check_sort<double>();
  check_sort<int32_t>();
  check_sort<int64_t>();
  check_sort<bool>();
  check_sort<Half>();
  check_sort<BFloat16>();
}

// Keys order every pair of distinct values as the values compare, NaN above +inf, -0 with +0.
TEST(CudaSort, KeysFollowTheValueOrder) {
  const std::vector<double> v = {-std::numeric_limits<double>::infinity(), -1e300, -2.5, -1e-310,
                                 -0.0, 0.0, 1e-310, 3.0, 1e300,
                                 std::numeric_limits<double>::infinity()};
  for (size_t a = 0; a < v.size(); ++a)
    for (size_t b = 0; b < v.size(); ++b) {
      EXPECT_EQ(sort_key(v[a]) < sort_key(v[b]), v[a] < v[b]) << v[a] << " " << v[b];
      const float fa = static_cast<float>(v[a]), fb = static_cast<float>(v[b]);
      EXPECT_EQ(sort_key(fa) < sort_key(fb), fa < fb) << fa << " " << fb;
      const Half ha(fa), hb(fb);
      EXPECT_EQ(sort_key(F16Bits{ha.x}) < sort_key(F16Bits{hb.x}), float(ha) < float(hb));
      const BFloat16 ba(fa), bb(fb);
      EXPECT_EQ(sort_key(Bf16Bits{ba.x}) < sort_key(Bf16Bits{bb.x}), float(ba) < float(bb));
    }
  EXPECT_GT(sort_key(std::numeric_limits<double>::quiet_NaN()),
            sort_key(std::numeric_limits<double>::infinity()));
  EXPECT_EQ(sort_key(-std::numeric_limits<double>::quiet_NaN()), ~uint64_t(0));
  EXPECT_GT(sort_key(std::numeric_limits<float>::quiet_NaN()),
            sort_key(std::numeric_limits<float>::infinity()));
  EXPECT_EQ(sort_key(F16Bits{0xfe00}), 0xffffu);      // a negative NaN
  EXPECT_EQ(sort_key(Bf16Bits{0x7fc1}), 0xffffu);  // a payload NaN
  EXPECT_LT(sort_key(int64_t(-5)), sort_key(int64_t(3)));
  EXPECT_LT(sort_key(std::numeric_limits<int32_t>::min()), sort_key(int32_t(-1)));
  EXPECT_LT(sort_key(false), sort_key(true));
}

}  // namespace
}  // namespace dc::cuda_kernels
