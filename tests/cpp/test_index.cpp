// Indexing kernels against naive loops: gather/scatter along a dim, offset gather/scatter,
// index wrapping and nonzero, on awkward sizes (1, primes, sizes around the parallel grain),
// non-contiguous (transposed) operands, duplicate indices with accumulation, and results that
// must not depend on the thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/parallel.h"
#include "core/tensor.h"
#include "kernels/cpu/index.h"

namespace {

using dc::DType;
using dc::Shape;
using dc::Tensor;

// Element offset of multi-index `pos` in t (element strides).
int64_t offset_of(const Tensor& t, const Shape& pos) {
  int64_t off = 0;
  for (size_t d = 0; d < pos.size(); ++d) off += pos[d] * t.strides()[d];
  return off;
}

// Row-major successor of pos within shape; false after the last position.
bool next_pos(Shape& pos, const Shape& shape) {
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    if (++pos[d] < shape[d]) return true;
    pos[d] = 0;
  }
  return false;
}

Tensor random_f64(const Shape& shape, std::mt19937& rng) {
  Tensor t = Tensor::empty(shape, DType::Float64);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = u(rng);
  return t;
}

Tensor random_idx(const Shape& shape, int64_t high, std::mt19937& rng) {
  Tensor t = Tensor::empty(shape, DType::Int64);
  std::uniform_int_distribution<int64_t> u(0, high - 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = u(rng);
  return t;
}

// A transposed (dims 0 and last swapped) view of a fresh contiguous tensor of the swapped shape.
Tensor transposed_f64(const Shape& shape, std::mt19937& rng) {
  Shape sw = shape;
  std::swap(sw.front(), sw.back());
  Tensor base = random_f64(sw, rng);
  Shape strides = base.strides();
  std::swap(strides.front(), strides.back());
  return Tensor::make_view(base.storage(), shape, strides, 0, DType::Float64);
}

struct DimCase {
  Shape src, idx;
  int64_t dim;
  bool transposed;
};

class GatherScatterDim : public ::testing::TestWithParam<DimCase> {};

TEST_P(GatherScatterDim, GatherMatchesNaive) {
  const DimCase c = GetParam();
  std::mt19937 rng(1);
  Tensor src = c.transposed ? transposed_f64(c.src, rng) : random_f64(c.src, rng);
  Tensor idx = random_idx(c.idx, c.src[c.dim], rng);
  Tensor out = Tensor::empty(c.idx, DType::Float64);
  dc::cpu::gather_dim(out, src, c.dim, idx);
  Shape pos(c.idx.size(), 0);
  int64_t i = 0;
  if (idx.numel() == 0) return;
  do {
    Shape sp = pos;
    sp[c.dim] = idx.data<int64_t>()[i];
    ASSERT_EQ(out.data<double>()[i], src.data<double>()[offset_of(src, sp)]) << "at " << i;
    ++i;
  } while (next_pos(pos, c.idx));
}

TEST_P(GatherScatterDim, ScatterAddMatchesNaiveForAnyThreadCount) {
  const DimCase c = GetParam();
  std::mt19937 rng(2);
  Tensor idx = random_idx(c.idx, c.src[c.dim], rng);  // duplicates are likely
  Tensor src = random_f64(c.idx, rng);
  std::vector<double> base(dc::numel_of(c.src));
  for (auto& v : base) v = std::uniform_real_distribution<double>(-1, 1)(rng);
  std::vector<double> expect = base;
  const Shape st = dc::contiguous_strides(c.src);
  Shape pos(c.idx.size(), 0);
  int64_t i = 0;
  if (idx.numel() > 0) {
    do {
      Shape dp = pos;
      dp[c.dim] = idx.data<int64_t>()[i];
      int64_t off = 0;
      for (size_t d = 0; d < dp.size(); ++d) off += dp[d] * st[d];
      expect[off] += src.data<double>()[i];
      ++i;
    } while (next_pos(pos, c.idx));
  }
  const int saved = dc::get_num_threads();
  std::vector<double> first;
  for (int threads : {1, 4}) {
    dc::set_num_threads(threads);
    Tensor dst = Tensor::empty(c.src, DType::Float64);
    std::copy(base.begin(), base.end(), dst.data<double>());
    dc::cpu::scatter_dim(dst, c.dim, idx, src, /*accumulate=*/true);
    std::vector<double> got(dst.data<double>(), dst.data<double>() + dst.numel());
    for (size_t k = 0; k < got.size(); ++k) ASSERT_NEAR(got[k], expect[k], 1e-12) << k;
    if (first.empty()) first = got;
    else ASSERT_EQ(first, got) << "result depends on the thread count";
  }
  dc::set_num_threads(saved);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GatherScatterDim,
    ::testing::Values(DimCase{{1}, {1}, 0, false}, DimCase{{7}, {13}, 0, false},
                      DimCase{{5, 3}, {2, 3}, 1, false}, DimCase{{5, 3}, {11, 2}, 0, true},
                      DimCase{{3, 17, 5}, {3, 4, 5}, 1, true},
                      DimCase{{2, 3, 4, 5}, {2, 3, 9, 5}, 2, false},
                      DimCase{{257, 131}, {257, 131}, 1, false},  // above the grain
                      DimCase{{40000, 2}, {40000, 1}, 0, false},
                      DimCase{{4, 0}, {4, 0}, 1, false}));

// out[o, b, i] = src[outer(o) + offsets[b] + inner(i)] for index_select-like geometry on dim 1
// of a (possibly transposed) 3-d source.
TEST(IndexGatherScatter, OffsetGatherAndAccumulate) {
  std::mt19937 rng(3);
  for (bool transposed : {false, true}) {
    for (Shape shape : {Shape{1, 1, 1}, Shape{3, 7, 5}, Shape{2, 13, 1}, Shape{1, 3, 4099}}) {
      Tensor src = transposed ? transposed_f64(shape, rng) : random_f64(shape, rng);
      const int64_t B = 11;
      Tensor idx = random_idx({B}, shape[1], rng);
      Tensor offsets = Tensor::empty({B}, DType::Int64);
      for (int64_t b = 0; b < B; ++b)
        offsets.data<int64_t>()[b] = idx.data<int64_t>()[b] * src.strides()[1];
      dc::cpu::IndexGeometry g;
      g.outer_sizes = {shape[0]};
      g.outer_strides = {src.strides()[0]};
      g.inner_sizes = {shape[2]};
      g.inner_strides = {src.strides()[2]};
      Tensor out = Tensor::empty({shape[0], B, shape[2]}, DType::Float64);
      dc::cpu::index_gather(out, src, g, offsets);
      for (int64_t o = 0; o < shape[0]; ++o)
        for (int64_t b = 0; b < B; ++b)
          for (int64_t i = 0; i < shape[2]; ++i)
            ASSERT_EQ(out.data<double>()[(o * B + b) * shape[2] + i],
                      src.data<double>()[offset_of(src, {o, idx.data<int64_t>()[b], i})]);
      // Accumulate the gathered rows back: each source row gains (count of its index) * row.
      std::vector<double> before(src.data<double>(), src.data<double>() + src.numel());
      Tensor dst = Tensor::make_view(src.storage(), src.sizes(), src.strides(), 0, DType::Float64);
      dc::cpu::index_scatter(dst, out, g, offsets, /*accumulate=*/true);
      for (int64_t o = 0; o < shape[0]; ++o)
        for (int64_t r = 0; r < shape[1]; ++r) {
          int64_t count = 0;
          for (int64_t b = 0; b < B; ++b) count += idx.data<int64_t>()[b] == r;
          for (int64_t i = 0; i < shape[2]; ++i) {
            const int64_t off = offset_of(src, {o, r, i});
            ASSERT_NEAR(src.data<double>()[off], before[off] * (1 + count), 1e-12);
          }
        }
    }
  }
}

TEST(IndexGatherScatter, PlainScatterLastWriteWins) {
  Tensor dst = Tensor::empty({4}, DType::Float32);
  for (int i = 0; i < 4; ++i) dst.data<float>()[i] = -1;
  Tensor values = Tensor::empty({3}, DType::Float32);
  values.data<float>()[0] = 1, values.data<float>()[1] = 2, values.data<float>()[2] = 3;
  Tensor offsets = Tensor::empty({3}, DType::Int64);
  offsets.data<int64_t>()[0] = 2, offsets.data<int64_t>()[1] = 0, offsets.data<int64_t>()[2] = 2;
  dc::cpu::index_scatter(dst, values, dc::cpu::IndexGeometry{}, offsets, false);
  EXPECT_EQ(dst.data<float>()[0], 2);
  EXPECT_EQ(dst.data<float>()[1], -1);
  EXPECT_EQ(dst.data<float>()[2], 3);
  EXPECT_EQ(dst.data<float>()[3], -1);
}

TEST(WrapIndices, WrapsNegativesAndReportsTheFirstBadValue) {
  std::vector<int64_t> v = {0, -1, 4, -5};
  int64_t bad = 0;
  EXPECT_TRUE(dc::cpu::wrap_indices(v.data(), 4, 5, true, &bad));
  EXPECT_EQ(v, (std::vector<int64_t>{0, 4, 4, 0}));
  std::vector<int64_t> w = {1, 5, -7};
  EXPECT_FALSE(dc::cpu::wrap_indices(w.data(), 3, 5, true, &bad));
  EXPECT_EQ(bad, 5);
  std::vector<int64_t> n = {2, -1};
  EXPECT_FALSE(dc::cpu::wrap_indices(n.data(), 2, 5, false, &bad));
  EXPECT_EQ(bad, -1);
  EXPECT_TRUE(dc::cpu::wrap_indices(nullptr, 0, 0, true, &bad));  // empty index, empty dim
}

TEST(Nonzero, MatchesNaiveOnStridedInputsOfAwkwardSizes) {
  std::mt19937 rng(4);
  for (Shape shape : {Shape{}, Shape{1}, Shape{0, 3}, Shape{7, 13}, Shape{3, 5, 2},
                      Shape{100003}, Shape{4, 40009}}) {
    for (bool transposed : {false, true}) {
      if (transposed && shape.size() < 2) continue;
      Tensor t = transposed ? transposed_f64(shape, rng) : random_f64(shape, rng);
      // About a third of the elements become zero; NaN stays nonzero.
      Shape pos(shape.size(), 0);
      std::vector<Shape> expect;
      if (t.numel() > 0) {
        int64_t k = 0;
        do {
          double& v = t.data<double>()[offset_of(t, pos)];
          if (k % 3 == 0) v = 0;
          if (k % 7 == 1) v = std::numeric_limits<double>::quiet_NaN();
          if (v != 0) expect.push_back(pos);
          ++k;
        } while (next_pos(pos, shape));
      }
      Tensor nz = dc::cpu::nonzero(t);
      ASSERT_EQ(nz.sizes(), (Shape{static_cast<int64_t>(expect.size()), t.dim()}));
      for (size_t r = 0; r < expect.size(); ++r)
        for (int64_t d = 0; d < t.dim(); ++d)
          ASSERT_EQ(nz.data<int64_t>()[r * t.dim() + d], expect[r][d]) << "row " << r;
    }
  }
}

}  // namespace
