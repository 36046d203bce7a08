#pragma once
// Sorting kernels.
#include "core/tensor.h"

namespace dc::cpu {

// idx[r, :] = the stable ascending (or descending) order of x[r, :]; NaN sorts as the largest.
// x: contiguous (rows, n) of any dtype; idx: contiguous int64 (rows, n).
void argsort_rows(const Tensor& idx, const Tensor& x, bool descending);

}  // namespace dc::cpu
