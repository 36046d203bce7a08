#pragma once
// Scan kernels beyond cumsum (kernels/cpu/reduce.h has it) and the categorical search of
// multinomial. Scans use the (O, K, I) layout of Note [Reduction layout] (csrc/ops/reduce.cpp):
// out[o, k, i] = op over j <= k of in[o, j, i]; in and out contiguous, of one dtype.
#include <cstdint>

#include "core/tensor.h"
#include "kernels/cpu/reduce.h"

namespace dc::cpu {

enum class ScanOp { Prod, Max, Min, LogSumExp };

// Prod: running product (floats multiply in double, integers in int64 with wraparound).
// Max / Min: running extreme; `indices` (int64, like out) get the position along K of the
//   element the extreme came from: the last of equal values and the latest NaN (NaN sticks),
//   as in PyTorch. LogSumExp: log(sum exp) in double, stable (floats only).
void cum_scan(ScanOp op, DType dtype, const void* in, void* out, int64_t* indices, ReduceDims d);

// out[r, s] = the category i of row r with cdf[r, i-1] <= u[r, s] * cdf[r, K-1] < cdf[r, i]:
// an inverse-CDF draw, which never picks a zero-weight category.
// cdf: contiguous float64 (R, K), nondecreasing, last entry > 0; u: float64 (R, S) in [0, 1);
// out: int64 (R, S).
void categorical_search(const Tensor& out, const Tensor& cdf, const Tensor& u);

}  // namespace dc::cpu
