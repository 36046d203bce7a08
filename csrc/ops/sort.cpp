// argsort: a stable sort of each row's indices; sort/topk/kthvalue/msort build on it in
// python/deepcore/_sort.py with gather (so their values are differentiable).
#include "ops/sort.h"

#include "autograd/grad_mode.h"
#include "dispatch/kernels.h"
#include "ops/ops.h"

namespace dc::ops {

Tensor argsort(const Tensor& t, int64_t dim, bool descending) {
  DC_OP_GUARD("argsort", t);
  const int64_t nd = t.dim();
  dim = wrap_dim_scalar_ok(dim, nd, "argsort");
  if (nd == 0) return zeros({}, DType::Int64);
  // Rows along `dim`, contiguous: (outer, n) after moving dim last.
  Tensor x;
  {
    autograd::GradModeGuard off(false);
    x = contiguous(transpose(detach(t), dim, nd - 1));  // read only: no copy when in place
  }
  Tensor idx = Tensor::empty(x.sizes(), DType::Int64);
  DC_KERNEL(argsort_rows)(idx, x, descending);
  return contiguous(transpose(idx, dim, nd - 1));
}

Tensor topk_indices(const Tensor& t, int64_t k, int64_t dim, bool largest) {
  DC_OP_GUARD("topk", t);
  const int64_t nd = t.dim();
  dim = wrap_dim_scalar_ok(dim, nd, "topk");
  const int64_t n = nd ? t.sizes()[dim] : 1;
  DC_CHECK(k >= 0 && k <= n, IndexError, "[topk] k (", k, ") is out of range for dimension ",
           dim, " of size ", n, " (input shape ", t.shape_str(), ")");
  if (nd == 0) return zeros({}, DType::Int64);
  Tensor x;
  {
    autograd::GradModeGuard off(false);
    x = contiguous(transpose(detach(t), dim, nd - 1));  // read only: no copy when in place
  }
  Shape rows_shape = x.sizes();
  rows_shape.back() = k;
  Tensor idx = Tensor::empty(rows_shape, DType::Int64);
  DC_KERNEL(select_rows)(idx, x, k, largest);
  return contiguous(transpose(idx, dim, nd - 1));
}

}  // namespace dc::ops
