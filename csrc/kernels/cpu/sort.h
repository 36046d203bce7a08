#pragma once
// Sorting kernels.
#include "core/tensor.h"

namespace dc::cpu {

// idx[r, :] = the stable ascending (or descending) order of x[r, :]; NaN sorts as the largest.
// x: contiguous (rows, n) of any dtype (16-bit floats included); idx: contiguous int64 (rows, n).
void argsort_rows(const Tensor& idx, const Tensor& x, bool descending);

// idx[r, :k] = the indices of the k largest (or smallest) values of x[r, :] in that order,
// NaN counting as the largest; equal values in index order. A selection, not a sort of the
// row: nth_element then a sort of the k chosen (Note [topk by selection] in sort.cpp).
// x: contiguous (rows, n) of any dtype; idx: contiguous int64 (rows, k), k <= n.
void select_rows(const Tensor& idx, const Tensor& x, int64_t k, bool largest);

}  // namespace dc::cpu
