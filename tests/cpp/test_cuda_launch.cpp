// The launch logic of the CUDA kernels (Note [CUDA elementwise iteration] in
// kernels/cuda/launch.h), which runs on the host: the operand offsets every thread computes, and
// the grid sizes, against naive loops at awkward shapes.
#include <gtest/gtest.h>

#include <array>
#include <random>

#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace {

// The byte offset of each operand at every output index, by nested loops over the shape.
template <int N>
std::vector<std::array<int64_t, N>> naive_offsets(const std::vector<int64_t>& shape,
                                                  const std::vector<int64_t> (&strides)[N],
                                                  const int64_t (&itemsize)[N]) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<std::array<int64_t, N>> out;
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    std::array<int64_t, N> o{};
    for (int k = 0; k < N; ++k)
      for (size_t d = 0; d < shape.size(); ++d) o[k] += idx[d] * strides[k][d] * itemsize[k];
    out.push_back(o);
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {  // row-major increment
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

std::vector<int64_t> contiguous(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t st = 1;
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    s[d] = st;
    st *= shape[d];
  }
  return s;
}

TEST(CudaLaunch, OffsetsMatchNaiveLoopsOnBroadcastAndStridedOperands) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int nd = static_cast<int>(rng() % 5);
    std::vector<int64_t> shape(nd);
    for (auto& s : shape) s = 1 + rng() % 5;
    std::vector<int64_t> strides[3];
    strides[0] = contiguous(shape);
    // operand 1: a transposed or strided view; operand 2: broadcast on random dims
    std::vector<int64_t> base = contiguous(shape);
    if (nd >= 2) std::swap(base[0], base[nd - 1]);
    for (auto& s : base) s *= 1 + rng() % 3;
    strides[1] = base;
    strides[2] = contiguous(shape);
    for (int d = 0; d < nd; ++d)
      if (rng() % 3 == 0) strides[2][d] = 0;
    const int64_t itemsize[3] = {4, 8, 1};
    const OffsetCalc<3> oc = make_offsets<3>(shape, strides, itemsize);
    const auto want = naive_offsets<3>(shape, strides, itemsize);
    for (size_t i = 0; i < want.size(); ++i) {
      int64_t got[3];
      oc.get(static_cast<int64_t>(i), got);
      for (int k = 0; k < 3; ++k) ASSERT_EQ(got[k], want[i][k]) << "trial " << trial << " i " << i;
    }
  }
}

TEST(CudaLaunch, ContiguousOperandsMergeIntoOneDim) {
  const std::vector<int64_t> shape = {3, 1, 5, 7};
  const std::vector<int64_t> strides[2] = {contiguous(shape), contiguous(shape)};
  const int64_t itemsize[2] = {4, 4};
  const OffsetCalc<2> oc = make_offsets<2>(shape, strides, itemsize);
  EXPECT_EQ(oc.dims, 1);
  EXPECT_EQ(oc.sizes[0], 105);
  // a 0-d output: no dims, every offset 0
  const std::vector<int64_t> none[2] = {{}, {}};
  const OffsetCalc<2> scalar = make_offsets<2>({}, none, itemsize);
  int64_t off[2] = {9, 9};
  scalar.get(0, off);
  EXPECT_EQ(scalar.dims, 0);
  EXPECT_EQ(off[0], 0);
  EXPECT_EQ(off[1], 0);
}

TEST(CudaLaunch, GridSizes) {
  EXPECT_EQ(elementwise_launch(0, 1000).blocks, 0);
  EXPECT_EQ(elementwise_launch(1, 1000).blocks, 1);
  EXPECT_EQ(elementwise_launch(256, 1000).blocks, 1);
  EXPECT_EQ(elementwise_launch(257, 1000).blocks, 2);
  // huge n: capped, the grid-stride loop covers the rest
  EXPECT_EQ(elementwise_launch(int64_t(1) << 40, 4224).blocks, 4224);
  const ReduceLaunch rows = reduce_launch(1000, 4096, 1, 1 << 20);
  EXPECT_TRUE(rows.warp_per_row);
  EXPECT_EQ(rows.blocks, (1000 + 7) / 8);
  const ReduceLaunch cols = reduce_launch(4, 100, 300, 1 << 20);
  EXPECT_FALSE(cols.warp_per_row);
  EXPECT_EQ(cols.blocks, (1200 + 255) / 256);
  EXPECT_EQ(reduce_launch(0, 5, 5, 10).blocks, 0);
}

}  // namespace
}  // namespace dc::cuda_kernels
