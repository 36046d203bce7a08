#pragma once
// Note [CUDA elementwise iteration]
// An elementwise kernel runs one thread per output element (a grid-stride loop past the grid's
// size). Each thread turns its linear index into a byte offset per operand through an
// OffsetCalc: the output's shape with the operands' strides, broadcast dims given stride 0, and
// dims merged wherever every operand walks them as one (a contiguous tensor becomes one dim, so
// the common case costs one multiply per operand). This header is plain C++ where nvcc does not
// compile it: the cpu build tests the offsets and the launch sizes against naive loops
// (tests/cpp/test_cuda_launch.cpp), since no GPU is needed to get them right.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/host_device.h"

namespace dc::cuda_kernels {

constexpr int kMaxDims = 12;  // after merging; more than that is refused by the op layer first

// Byte offsets of N operands (0 is the output) at a linear index of the output.
template <int N>
struct OffsetCalc {
  int dims = 0;
  int64_t sizes[kMaxDims] = {};            // innermost first
  int64_t strides[N][kMaxDims] = {};       // bytes, innermost first

  DC_HD void get(int64_t linear, int64_t (&off)[N]) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = 0; d < dims; ++d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
  }
};

// The OffsetCalc of an output of `shape` (outermost first, as Tensor::sizes) and N operands'
// element strides broadcast to it (stride 0 where an operand is broadcast) and item sizes.
template <int N>
OffsetCalc<N> make_offsets(const std::vector<int64_t>& shape,
                           const std::vector<int64_t> (&strides)[N], const int64_t (&itemsize)[N]) {
  OffsetCalc<N> oc;
  // innermost first, dropping size-1 dims (they move nothing)
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    const int at = oc.dims;
    // merge with the previous (inner) dim when every operand steps over it as one
    bool merge = at > 0;
    for (int k = 0; k < N && merge; ++k)
      merge = strides[k][d] * itemsize[k] == oc.strides[k][at - 1] * oc.sizes[at - 1];
    if (merge) {
      oc.sizes[at - 1] *= shape[d];
      continue;
    }
    oc.sizes[at] = shape[d];
    for (int k = 0; k < N; ++k) oc.strides[k][at] = strides[k][d] * itemsize[k];
    ++oc.dims;
  }
  return oc;
}

// torch.gather along dim (kernels/cuda/index.cu): the offsets of out, the int64 index and src
// over the index's shape, src's stride along dim made 0, since the index value supplies that
// coordinate (times src_strides[dim] * item bytes). Strides in elements; item = src's size.
inline OffsetCalc<3> gather_offsets(const std::vector<int64_t>& shape,
                                    const std::vector<int64_t>& out_strides,
                                    const std::vector<int64_t>& idx_strides,
                                    std::vector<int64_t> src_strides, int64_t dim, int64_t item) {
  src_strides[dim] = 0;
  const std::vector<int64_t> strides[3] = {out_strides, idx_strides, src_strides};
  const int64_t itemsize[3] = {item, static_cast<int64_t>(sizeof(int64_t)), item};
  return make_offsets<3>(shape, strides, itemsize);
}

// Grid and block of a grid-stride elementwise launch over n elements: 256 threads, enough
// blocks to cover n up to `max_blocks` (a few waves of every SM; the loop covers the rest).
struct LaunchConfig {
  int64_t blocks = 0;
  int threads = 256;
};
inline LaunchConfig elementwise_launch(int64_t n, int64_t max_blocks) {
  LaunchConfig c;
  if (n <= 0) return c;  // nothing to launch
  c.blocks = std::min<int64_t>((n + c.threads - 1) / c.threads, std::max<int64_t>(max_blocks, 1));
  return c;
}

// Row reductions (ReduceDims outer x reduce x inner): with inner == 1 a warp reduces each row
// (shuffles), otherwise a thread reduces each (outer, inner) column, neighbouring threads on
// neighbouring columns so that the reads coalesce.
struct ReduceLaunch {
  bool warp_per_row = false;
  int64_t blocks = 0;
  int threads = 256;
};
inline ReduceLaunch reduce_launch(int64_t outer, int64_t reduce, int64_t inner, int64_t max_blocks) {
  ReduceLaunch r;
  const int64_t outputs = outer * inner;
  if (outputs <= 0) return r;
  r.warp_per_row = inner == 1 && reduce >= 32;
  const int64_t per_block = r.warp_per_row ? r.threads / 32 : r.threads;
  r.blocks = std::min<int64_t>((outputs + per_block - 1) / per_block, std::max<int64_t>(max_blocks, 1));
  return r;
}

}  // namespace dc::cuda_kernels
