// argsort: a stable sort of each row's indices; sort/topk/kthvalue/msort build on it in
// python/deepcore/_sort.py with gather (so their values are differentiable).
#include "ops/sort.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/parallel.h"
#include "dispatch/dispatcher.h"
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
    x = contiguous_clone(transpose(detach(t), dim, nd - 1));
  }
  const int64_t n = x.sizes().back(), rows = n ? x.numel() / n : 0;
  Tensor idx = Tensor::empty(x.sizes(), DType::Int64);
  DC_DISPATCH_ALL(x.dtype(), "argsort", [&] {
    const scalar_t* px = x.data<scalar_t>();
    int64_t* pi = idx.data<int64_t>();
    parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(n, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t r = b; r < e; ++r) {
                     const scalar_t* v = px + r * n;
                     int64_t* out = pi + r * n;
                     std::iota(out, out + n, int64_t(0));
                     auto is_nan = [](scalar_t a) {
                       if constexpr (std::is_floating_point_v<scalar_t>) return std::isnan(a);
                       else return false;
                     };
                     if (descending)
                       std::stable_sort(out, out + n, [&](int64_t i, int64_t j) {
                         return !is_nan(v[j]) && (is_nan(v[i]) || v[i] > v[j]);
                       });
                     else
                       std::stable_sort(out, out + n, [&](int64_t i, int64_t j) {
                         return !is_nan(v[i]) && (is_nan(v[j]) || v[i] < v[j]);
                       });
                   }
                 });
  });
  return contiguous_clone(transpose(idx, dim, nd - 1));
}

}  // namespace dc::ops
