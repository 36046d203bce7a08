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

// gather_offsets, as the gather kernel (kernels/cuda/index.cu) uses them, run on the host: a
// thread's element i reads the index at off[1], then src at off[2] + index * src stride along
// dim, and writes out at off[0]. Against torch.gather's definition, along each dim of a
// transposed (non-contiguous) src larger than the index, with a strided index.
TEST(CudaLaunch, GatherOffsetsMatchTheDefinition) {
  const std::vector<int64_t> src_shape = {5, 8, 6};
  // src: a (6, 8, 5) buffer viewed transposed, strides (1, 5, 40)
  std::vector<float> src(5 * 8 * 6);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) * 0.5f;
  const std::vector<int64_t> src_strides = {1, 5, 40};
  const std::vector<int64_t> shape = {4, 3, 5};
  std::mt19937 rng(3);
  for (int64_t dim = 0; dim < 3; ++dim) {
    // the index: every other element of a (4, 3, 10) buffer, strides (30, 10, 2)
    std::vector<int64_t> idx(4 * 3 * 10);
    for (auto& v : idx) v = static_cast<int64_t>(rng() % src_shape[dim]);
    const std::vector<int64_t> idx_strides = {30, 10, 2};
    const std::vector<int64_t> out_strides = contiguous(shape);
    std::vector<float> out(4 * 3 * 5, -1.0f);
    const OffsetCalc<3> oc = gather_offsets(shape, out_strides, idx_strides, src_strides, dim,
                                            sizeof(float));
    const char* sp = reinterpret_cast<const char*>(src.data());
    const char* ip = reinterpret_cast<const char*>(idx.data());
    char* op = reinterpret_cast<char*>(out.data());
    for (int64_t i = 0; i < 4 * 3 * 5; ++i) {
      int64_t off[3];
      oc.get(i, off);
      const int64_t k = *reinterpret_cast<const int64_t*>(ip + off[1]);
      *reinterpret_cast<float*>(op + off[0]) = *reinterpret_cast<const float*>(
          sp + off[2] + k * src_strides[dim] * static_cast<int64_t>(sizeof(float)));
    }
    for (int64_t a = 0; a < 4; ++a)
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t c = 0; c < 5; ++c) {
          int64_t p[3] = {a, b, c};
          p[dim] = idx[a * 30 + b * 10 + c * 2];
          const float want = src[p[0] * 1 + p[1] * 5 + p[2] * 40];
          ASSERT_EQ(out[a * 15 + b * 5 + c], want) << "dim " << dim << " at " << a << b << c;
        }
  }
}

}  // namespace
}  // namespace dc::cuda_kernels
