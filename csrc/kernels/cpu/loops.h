#pragma once
// Strided, broadcasting iteration for elementwise kernels.
//
// Note [Elementwise iteration]
// An elementwise op sees up to kMaxOperands operands (operand 0 is the output), each with
// byte strides over the common broadcast shape (stride 0 on broadcast dimensions). The
// dimensions are first sorted into the output's memory order (Note [Output layout] in
// core/tensor.cpp), so a transposed output is walked along its rows in memory. Dimensions
// that are contiguous with their neighbour in every operand are merged, so a contiguous
// tensor of any rank becomes one flat row. The kernel is called on rows of the innermost
// dimension: `loop(ptrs, inner_strides, n, params)`. Kernels special-case inner strides equal
// to the element size (vectorised) and 0 (a broadcast scalar). Rows are split across threads
// by linear element index, so the result never depends on the thread count.
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace dc::cpu {

constexpr int kMaxOperands = 4;
using LoopFn = void (*)(char** data, const int64_t* strides, int64_t n, const double* params);

struct StridedIter {
  int ntensors = 0;
  int ndim = 0;
  int64_t shape[16];
  int64_t strides[kMaxOperands][16];  // bytes, dimension 0 is the innermost after setup
  char* data[kMaxOperands];
  int64_t numel = 1;
};

// Builds the iteration over `shape` for `operands` (operand 0 is the output; it must have
// exactly `shape`; others are broadcast to it).
StridedIter make_iter(const Shape& shape, const tensor_list& operands);

void run_loop(const StridedIter& it, LoopFn fn, const double* params = nullptr,
              bool parallel = true);
// Runs a float32 kernel on operands of which those in the bit mask `widen` hold `half`
// (bfloat16 or float16) values: Note [Reduced-precision compute] in loops.cpp.
void run_loop_widened(const StridedIter& it, LoopFn fn, const double* params, DType half,
                      uint32_t widen, bool parallel = true);

}  // namespace dc::cpu
