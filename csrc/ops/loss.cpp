// Losses: fused cross_entropy / nll_loss (kernels in csrc/kernels/cpu/loss.cpp) and the
// pointwise losses, written with differentiable ops (their derivatives then differentiate
// again for free). PyTorch semantics throughout, including the weighted-mean divisor and the
// label-smoothing formula of torch.nn.functional.cross_entropy.
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/loss.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;

Reduction reduction_from_name(const std::string& name, const char* op) {
  if (name == "none") return Reduction::none;
  if (name == "mean") return Reduction::mean;
  if (name == "sum") return Reduction::sum;
  DC_THROW(ValueError, "[", op, "] reduction must be 'none', 'mean' or 'sum', got '", name, "'");
}

namespace {

Tensor reduce_loss(const Tensor& l, Reduction r) {
  switch (r) {
    case Reduction::mean: return mean(l);
    case Reduction::sum: return sum(l);
    default: return l;
  }
}

void check_same_shape(const char* op, const Tensor& x, const Tensor& y) {
  DC_CHECK(x.sizes() == y.sizes(), ValueError, "[", op,
           "] input and target must have the same shape, got input ", x.shape_str(),
           " and target ", y.shape_str());
}

// torch has no derivative for these arguments (a BCE weight, pos_weight) and refuses them
// requiring grad while grad mode is on, rather than leaving them without a gradient.
void check_not_differentiable(const char* op, const Tensor& t, const char* name) {
  DC_CHECK(!(t.defined() && autograd::grad_enabled() && t.requires_grad()), RuntimeError, "[",
           op, "] is not differentiable with respect to argument '", name, "' (shape ",
           t.shape_str(), "): it cannot require grad; pass ", name, ".detach()");
}

void check_float(const char* op, const Tensor& x) {
  DC_CHECK(is_floating(x.dtype()), TypeError, "[", op, "] expected a floating-point input, got ",
           dtype_name(x.dtype()));
}

// (N, C, d1, ...) -> (N * d1 * ..., C) rows with the class dim last; (C,) -> (1, C).
// Differentiable: gradients flow back through the permute/reshape.
Tensor class_rows(const Tensor& x) {
  if (x.dim() == 1) return unsqueeze(contiguous(x), 0);  // the kernels read rows densely
  if (x.dim() == 2) return contiguous(x);
  Shape perm{0};
  for (int64_t d = 2; d < x.dim(); ++d) perm.push_back(d);
  perm.push_back(1);
  return contiguous(reshape(permute(x, perm), {-1, x.sizes()[1]}));
}

// x's shape without the class dim (dim 1, or dim 0 for a 1-D input).
Shape batch_shape(const Tensor& x) {
  Shape s = x.sizes();
  s.erase(s.begin() + (x.dim() == 1 ? 0 : 1));
  return s;
}

Tensor prepare_weight(const char* op, const Tensor& w, int64_t C, DType dt) {
  if (!w.defined()) return w;
  DC_CHECK(w.dim() == 1 && w.sizes()[0] == C, ValueError, "[", op,
           "] weight must be a 1-D tensor with one entry per class (", C, "), got shape ",
           w.shape_str());
  return contiguous_clone(to_dtype(detach(w), dt));
}

struct ClassInputs {
  Tensor rows, target, weight;
  bool probabilities = false;
  Shape batch;
};

ClassInputs class_inputs(const char* op, const Tensor& x, const Tensor& target,
                         const Tensor& weight) {
  check_float(op, x);
  DC_CHECK(x.dim() >= 1, ValueError, "[", op, "] input must have at least 1 dim (C,), got ",
           x.shape_str());
  const int64_t C = x.sizes()[x.dim() == 1 ? 0 : 1];
  ClassInputs ci;
  ci.batch = batch_shape(x);
  if (is_floating(target.dtype()) && target.sizes() == x.sizes()) {
    ci.probabilities = true;
    ci.target = class_rows(to_dtype(target, x.dtype()));
  } else {
    DC_CHECK(is_integral(target.dtype(), false), TypeError, "[", op,
             "] target must hold class indices (int64) of shape ", shape_str(ci.batch),
             " or class probabilities (floating) of the input's shape ", x.shape_str(), "; got ",
             dtype_name(target.dtype()), " of shape ", target.shape_str());
    DC_CHECK(target.sizes() == ci.batch, ValueError, "[", op, "] expected target of shape ",
             shape_str(ci.batch), " for input of shape ", x.shape_str(), ", got ",
             target.shape_str());
    ci.target = contiguous_clone(to_dtype(reshape(target, {-1}), DType::Int64));
  }
  ci.rows = class_rows(x);
  ci.weight = prepare_weight(op, weight, C, x.dtype());
  return ci;
}

Tensor reduced_value(const Tensor& rows, Reduction r, double divisor) {
  if (r == Reduction::none) return rows;
  const double total = DC_KERNEL(ordered_sum)(rows);
  return scalar_tensor(r == Reduction::sum ? total : total / divisor, rows.dtype());
}

// The per-row scale of the incoming gradient: none -> grad[:, None], sum -> grad,
// mean -> grad / divisor. A zero divisor means every target was ignored: the loss is NaN but,
// as in PyTorch, the gradient is 0 (the rows it would scale are all zero).
Tensor grad_scale(const Tensor& gr, Reduction r, double divisor) {
  if (r == Reduction::none) return unsqueeze(gr, 1);
  return r == Reduction::mean ? gr / (divisor == 0.0 ? 1.0 : divisor) : gr;
}

// Class-index cross_entropy (logits) or nll_loss (log-probabilities) over rows x[M, C].
Tensor class_index_loss(const char* op, const Tensor& x, const Tensor& target,
                        const Tensor& weight, Reduction red, int64_t ignore_index, double eps,
                        bool logits) {
  const int64_t M = x.sizes()[0], C = x.sizes()[1];
  const int64_t bad = DC_KERNEL(first_bad_target)(target, C, ignore_index);
  DC_CHECK(bad < 0, IndexError, "[", op, "] target ", on_host(target).data<int64_t>()[bad],
           " is out of bounds: expected a class index in [0, C) with C = ", C,
           " (or ignore_index = ", ignore_index, ")");
  Tensor rows = Tensor::empty({M}, x.dtype());
  Tensor lse = logits ? Tensor::empty({M}, x.dtype()) : Tensor();
  const cpu::ClassTargets ct{target, weight, ignore_index, eps};
  const double wsum = DC_KERNEL(class_loss_forward)(rows, lse, x, ct, logits);
  Tensor out = reduced_value(rows, red, wsum);
  autograd::record(
      op, {x}, {out},
      [red, ignore_index, eps, logits, wsum, C](GradCtx& g) -> tensor_list {
        const Tensor x = g.saved(0), lse = g.saved(1), target = g.saved(2), w = g.saved(3);
        const cpu::ClassTargets ct{target, w, ignore_index, eps};
        const Tensor& gr = g.grad();
        Tensor scale = grad_scale(gr, red, wsum);
        if (logits && !autograd::any_requires_grad({&gr, &x})) {
          // Note [Fused backward with a composite fallback] (nn.cpp)
          Tensor gx = Tensor::empty(x.sizes(), x.dtype());
          DC_KERNEL(cross_entropy_backward_into)(gx, x, lse, ct,
                                           contiguous_clone(to_dtype(scale, x.dtype())));
          return {gx};
        }
        Tensor B = Tensor::empty(x.sizes(), x.dtype());
        DC_KERNEL(class_target_matrix_into)(B, ct, C);
        if (!logits) return {-B * scale};
        return {(softmax(x, 1) * sum(B, {1}, true) - B) * scale};
      },
      {x, lse, target, weight});
  return out;
}

// Probability-target cross_entropy over rows x[M, C], t[M, C].
Tensor prob_cross_entropy(const Tensor& x, const Tensor& t, const Tensor& weight, Reduction red,
                          double eps) {
  const int64_t M = x.sizes()[0], C = x.sizes()[1];
  Tensor rows = Tensor::empty({M}, x.dtype());
  DC_KERNEL(prob_loss_forward)(rows, x, t, weight, eps);
  Tensor out = reduced_value(rows, red, static_cast<double>(M));
  autograd::record(
      "cross_entropy", {x, t}, {out},
      [red, eps, M, C](GradCtx& g) -> tensor_list {
        const Tensor x = g.saved(0), t = g.saved(1), w = g.saved(2);
        Tensor scale = grad_scale(g.grad(), red, static_cast<double>(M));
        Tensor gx, gt;
        if (g.needs(0)) {
          Tensor B = t * (1.0 - eps) + eps / static_cast<double>(C);
          if (w.defined()) B = B * w;
          gx = (softmax(x, 1) * sum(B, {1}, true) - B) * scale;
        }
        if (g.needs(1)) {
          Tensor coef = w.defined() ? w * (1.0 - eps) : scalar_tensor(1.0 - eps, x.dtype());
          gt = -(log_softmax(x, 1) * coef) * scale;
        }
        return {gx, gt};
      },
      {x, t, weight});
  return out;
}

Tensor unrows(const Tensor& out, Reduction red, const Shape& batch) {
  return red == Reduction::none ? reshape(out, batch) : out;
}

}  // namespace

Tensor cross_entropy(const Tensor& x, const Tensor& target, const Tensor& weight,
                     Reduction reduction, int64_t ignore_index, double label_smoothing) {
  DC_OP_GUARD("cross_entropy", x, target, weight);
  DC_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, ValueError,
           "[cross_entropy] label_smoothing must be between 0.0 and 1.0, got ", label_smoothing);
  ClassInputs ci = class_inputs("cross_entropy", x, target, weight);
  if (ci.probabilities) {
    DC_CHECK(ignore_index < 0, ValueError,
             "[cross_entropy] ignore_index is not supported for class-probability targets");
    return unrows(prob_cross_entropy(ci.rows, ci.target, ci.weight, reduction, label_smoothing),
                  reduction, ci.batch);
  }
  return unrows(class_index_loss("cross_entropy", ci.rows, ci.target, ci.weight, reduction,
                                 ignore_index, label_smoothing, true),
                reduction, ci.batch);
}

Tensor nll_loss(const Tensor& logp, const Tensor& target, const Tensor& weight,
                Reduction reduction, int64_t ignore_index) {
  DC_OP_GUARD("nll_loss", logp, target, weight);
  DC_CHECK(!(is_floating(target.dtype()) && target.sizes() == logp.sizes()), TypeError,
           "[nll_loss] target must hold class indices (int64), got ",
           dtype_name(target.dtype()));
  ClassInputs ci = class_inputs("nll_loss", logp, target, weight);
  return unrows(class_index_loss("nll_loss", ci.rows, ci.target, ci.weight, reduction,
                                 ignore_index, 0.0, false),
                reduction, ci.batch);
}

// ---- pointwise losses ---------------------------------------------------------------------------

Tensor mse_loss(const Tensor& x, const Tensor& y, Reduction reduction) {
  DC_OP_GUARD("mse_loss", x, y);
  check_same_shape("mse_loss", x, y);
  return reduce_loss(square(x - y), reduction);
}

Tensor l1_loss(const Tensor& x, const Tensor& y, Reduction reduction) {
  DC_OP_GUARD("l1_loss", x, y);
  check_same_shape("l1_loss", x, y);
  return reduce_loss(abs(x - y), reduction);
}

Tensor smooth_l1_loss(const Tensor& x, const Tensor& y, Reduction reduction, double beta) {
  DC_OP_GUARD("smooth_l1_loss", x, y);
  check_same_shape("smooth_l1_loss", x, y);
  DC_CHECK(beta >= 0, ValueError, "[smooth_l1_loss] beta must be non-negative, got ", beta);
  if (beta == 0.0) return reduce_loss(abs(x - y), reduction);
  Tensor d = abs(x - y);
  return reduce_loss(where(lt(d, wrap_scalar(beta)), d * d * (0.5 / beta), d - 0.5 * beta),
                     reduction);
}

Tensor huber_loss(const Tensor& x, const Tensor& y, Reduction reduction, double delta) {
  DC_OP_GUARD("huber_loss", x, y);
  check_same_shape("huber_loss", x, y);
  DC_CHECK(delta > 0, ValueError, "[huber_loss] delta must be positive, got ", delta);
  Tensor d = abs(x - y);
  return reduce_loss(where(lt(d, wrap_scalar(delta)), d * d * 0.5, (d - 0.5 * delta) * delta),
                     reduction);
}

namespace {
// log clamped at -100 like PyTorch, so p = 0 or 1 gives a finite loss.
Tensor clamped_log(const Tensor& t) {
  const Scalar lo(-100.0);
  return clamp(log(t), &lo, nullptr);
}
}  // namespace

Tensor binary_cross_entropy(const Tensor& p, const Tensor& y, const Tensor& weight,
                            Reduction reduction) {
  DC_OP_GUARD("binary_cross_entropy", p, y, weight);
  check_float("binary_cross_entropy", p);
  check_not_differentiable("binary_cross_entropy", weight, "weight");
  check_same_shape("binary_cross_entropy", p, y);
  {
    Tensor pc = p.is_contiguous() ? p : contiguous_clone(p);
    DC_CHECK(DC_KERNEL(all_within)(pc, 0.0, 1.0), RuntimeError,
             "[binary_cross_entropy] all elements of input should be between 0 and 1");
  }
  Tensor yt = to_dtype(y, p.dtype());
  Tensor loss;
  {
    autograd::GradModeGuard off(false);
    loss = -(yt * clamped_log(p) + (1.0 - yt) * clamped_log(1.0 - p));
    if (weight.defined()) loss = loss * weight;
  }
  // Explicit derivative: the composite one is 0/0 at p = 0 or 1, PyTorch clamps the divisor.
  autograd::record(
      "binary_cross_entropy", {p, yt}, {loss},
      [](GradCtx& g) -> tensor_list {
        const Tensor p = g.saved(0), y = g.saved(1), w = g.saved(2);
        Tensor gw = w.defined() ? g.grad() * w : g.grad();
        Tensor gp, gy;
        if (g.needs(0)) {
          const Scalar tiny(1e-12);
          gp = gw * (p - y) / clamp(p * (1.0 - p), &tiny, nullptr);
        }
        if (g.needs(1)) gy = gw * (log(1.0 - p) - log(p));  // unclamped, as PyTorch
        return {gp, gy};
      },
      {p, yt, weight});
  return reduce_loss(loss, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& x, const Tensor& y, const Tensor& weight,
                                        const Tensor& pos_weight, Reduction reduction) {
  DC_OP_GUARD("binary_cross_entropy_with_logits", x, y, weight, pos_weight);
  check_float("binary_cross_entropy_with_logits", x);
  check_not_differentiable("binary_cross_entropy_with_logits", weight, "weight");
  check_not_differentiable("binary_cross_entropy_with_logits", pos_weight, "pos_weight");
  check_same_shape("binary_cross_entropy_with_logits", x, y);
  // (1 - y) * x + lw * log(1 + exp(-x)), lw = 1 + (pos_weight - 1) * y; softplus(-x) is the
  // overflow-free log(1 + exp(-x)).
  Tensor l = (1.0 - y) * x;
  Tensor sp = softplus(-x);
  l = pos_weight.defined() ? l + ((pos_weight - 1.0) * y + 1.0) * sp : l + sp;
  if (weight.defined()) l = l * weight;
  return reduce_loss(l, reduction);
}

Tensor kl_div(const Tensor& x, const Tensor& target, const std::string& reduction,
              bool log_target) {
  DC_OP_GUARD("kl_div", x, target);
  check_float("kl_div", x);
  check_same_shape("kl_div", x, target);
  DC_CHECK(reduction == "none" || reduction == "mean" || reduction == "sum" ||
               reduction == "batchmean",
           ValueError, "[kl_div] reduction must be 'none', 'mean', 'sum' or 'batchmean', got '",
           reduction, "'");
  Tensor l;
  if (log_target) {
    l = exp(target) * (target - x);
  } else {
    // xlogy(t, t) - t * x; t = 0 contributes 0 (log of a substituted 1 keeps gradients finite).
    Tensor safe = where(eq(target, wrap_scalar(0.0)), ones({}, target.dtype()), target);
    l = target * log(safe) - target * x;
  }
  if (reduction == "batchmean") return x.dim() == 0 ? sum(l) : sum(l) / double(x.sizes()[0]);
  return reduce_loss(l, reduction_from_name(reduction, "kl_div"));
}

}  // namespace dc::ops
