// Reductions: forward dispatch and derivatives.
//
// Note [Reduction layout]
// A reduction is brought to one of two layouts without copying when possible:
//   rows:    x viewed as (M, K) with the K reduced elements of each output contiguous, or
//   columns: x viewed as (K, M), reduced dims leading (e.g. a bias gradient over the batch):
//            the output row is accumulated K times with a vectorised add.
// Anything else is first copied into the rows layout (kept dims, then reduced dims).
#include "ops/reduce.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/parallel.h"
#include "kernels/cpu/reduce.h"
#include "ops/ops.h"
#include "ops/registry.h"

namespace dc::ops {

using autograd::GradCtx;

std::vector<bool> reduction_mask(const Tensor& t, const Shape& dims, const char* op) {
  std::vector<bool> mask(t.dim(), dims.empty());
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, t.dim(), op);
    DC_CHECK(t.dim() == 0 || !mask[w], ValueError, "[", op, "] dim ", w,
             " appears multiple times in the list of dims ", shape_str(dims));
    if (t.dim() > 0) mask[w] = true;
  }
  return mask;
}

Shape reduced_shape(const Shape& in, const std::vector<bool>& mask, bool keepdim) {
  Shape out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!mask[i]) out.push_back(in[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

namespace {

// Permutes kept dims first, reduced dims last.
Tensor kept_then_reduced(const Tensor& t, const std::vector<bool>& mask, int64_t* M, int64_t* K) {
  Shape perm;
  *M = 1;
  *K = 1;
  for (int64_t i = 0; i < t.dim(); ++i)
    if (!mask[i]) { perm.push_back(i); *M *= t.sizes()[i]; }
  for (int64_t i = 0; i < t.dim(); ++i)
    if (mask[i]) { perm.push_back(i); *K *= t.sizes()[i]; }
  autograd::GradModeGuard off(false);
  return permute(t, perm);
}

bool reduced_dims_lead(const Tensor& t, const std::vector<bool>& mask) {
  bool seen_kept = false;
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (t.sizes()[i] == 1) continue;
    if (!mask[i]) seen_kept = true;
    else if (seen_kept) return false;
  }
  return true;
}

}  // namespace

Tensor sum(const Tensor& t, const Shape& dims, bool keepdim, std::optional<DType> dtype) {
  const auto mask = reduction_mask(t, dims, "sum");
  const DType out_dt = dtype ? *dtype : (is_floating(t.dtype()) ? t.dtype() : DType::Int64);
  Tensor in = t.dtype() == out_dt ? t : to_dtype(detach(t), out_dt);
  Tensor out = Tensor::empty(reduced_shape(t.sizes(), mask, true), out_dt);
  int64_t M, K;
  // A full reduction (one output) goes to the rows kernel, which sums in blocks with a double
  // total; the columns kernel would add every element into one float accumulator in turn.
  const bool full = numel_of(out.sizes()) == 1 && t.numel() > 1;
  if (!full && in.is_contiguous() && reduced_dims_lead(in, mask)) {
    K = 1;
    for (int64_t i = 0; i < in.dim(); ++i)
      if (mask[i]) K *= in.sizes()[i];
    M = K ? in.numel() / K : out.numel();
    cpu::sum_columns(out_dt, in.data_ptr(), out.data_ptr(), K, M);
  } else {
    Tensor p = kept_then_reduced(in, mask, &M, &K);
    if (!p.is_contiguous()) p = contiguous_clone(p);
    cpu::sum_rows(out_dt, p.data_ptr(), out.data_ptr(), M, K);
  }
  if (!keepdim) out = Tensor::make_view(out.storage(), reduced_shape(t.sizes(), mask, false),
                                        contiguous_strides(reduced_shape(t.sizes(), mask, false)),
                                        0, out_dt);
  if (autograd::any_requires_grad({&t})) {
    const Shape in_shape = t.sizes(), kept = reduced_shape(t.sizes(), mask, true);
    autograd::record("sum", {t}, {out}, [in_shape, kept](GradCtx& g) -> tensor_list {
      return {expand(reshape(g.grad(), kept), in_shape)};
    });
  }
  return out;
}

Tensor mean(const Tensor& t, const Shape& dims, bool keepdim) {
  DC_CHECK(is_floating(t.dtype()), TypeError, "[mean] could not infer output dtype: input dtype "
           "must be floating point, got ", dtype_name(t.dtype()));
  const auto mask = reduction_mask(t, dims, "mean");
  int64_t count = 1;
  for (int64_t i = 0; i < t.dim(); ++i)
    if (mask[i]) count *= t.sizes()[i];
  Tensor s = sum(t, dims, keepdim);
  return div(s, wrap_scalar(static_cast<double>(count)));
}

DC_REGISTER_OPS(
    {"sum", "reduce", Grad::differentiable},
    {"mean", "reduce", Grad::differentiable});

}  // namespace dc::ops
