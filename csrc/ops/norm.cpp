// batch_norm and layer_norm / rms_norm (fused kernels, Note [Fused backward with a composite
// fallback] in softmax.cpp), group_norm and instance_norm (composites of differentiable ops and
// batch_norm).
#include "ops/norm.h"

#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/norm_batch.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;

namespace {

Tensor contig(const Tensor& t) { return t.is_contiguous() ? t : contiguous_clone(t); }

// (C,) -> (1, C, 1, ...) to broadcast against x of `ndim` dims.
Tensor channel_view(const Tensor& v, int64_t ndim) {
  Shape s(ndim, 1);
  s[1] = v.numel();
  return reshape(v, s);
}

Shape reduce_dims(int64_t ndim) {
  Shape d{0};
  for (int64_t i = 2; i < ndim; ++i) d.push_back(i);
  return d;
}

void check_channel_vec(const Tensor& v, const char* what, const Tensor& x, int64_t C,
                       const char* op) {
  if (!v.defined()) return;
  DC_CHECK(v.dim() == 1 && v.sizes()[0] == C, ValueError, "[", op, "] expected ", what,
           " of shape (", C, ",) for input ", x.shape_str(), ", got ", v.shape_str());
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  DC_OP_GUARD("batch_norm", x, running_mean, running_var, weight, bias);
  const char* op = "batch_norm";
  DC_CHECK(is_floating(x.dtype()), TypeError, "[", op, "] expected a floating-point input, got ",
           dtype_name(x.dtype()));
  DC_CHECK(x.dim() >= 2, ValueError, "[", op, "] expected an input with at least 2 dims (N, C, ...), got ",
           x.shape_str());
  const int64_t N = x.sizes()[0], C = x.sizes()[1], S = C ? x.numel() / std::max<int64_t>(1, N * C) : 0;
  check_channel_vec(running_mean, "running_mean", x, C, op);
  check_channel_vec(running_var, "running_var", x, C, op);
  check_channel_vec(weight, "weight", x, C, op);
  check_channel_vec(bias, "bias", x, C, op);
  // 16-bit data keeps its statistics in float32 and takes float32 or 16-bit parameters (a
  // model under autocast, or one made .bfloat16()), like torch's mixed batch norm.
  const DType pdt = is_reduced_float(x.dtype()) ? DType::Float32 : x.dtype();
  for (const Tensor* p : {&weight, &bias})
    DC_CHECK(!p->defined() || p->dtype() == x.dtype() || p->dtype() == pdt, TypeError, "[", op,
             "] weight and bias must have the input's dtype ", dtype_name(x.dtype()),
             pdt != x.dtype() ? " or float32" : "", ", got ", dtype_name(p->dtype()));
  DC_CHECK(running_mean.defined() == running_var.defined(), ValueError, "[", op,
           "] running_mean and running_var must both be given or both be None");
  DC_CHECK(training || running_mean.defined(), ValueError, "[", op,
           "] running_mean and running_var are required when training=False");
  DC_CHECK(!training || N * S > 1, ValueError, "[", op,
           "] expected more than 1 value per channel when training, got input ", x.shape_str());

  cpu::BatchNormShape s{N, C, S};
  Tensor y = Tensor::empty(x.sizes(), x.dtype());
  Tensor mean, rstd, varb = Tensor::empty({C}, pdt);
  Tensor xc = contig(x), wc, bc;
  if (training) {
    mean = Tensor::empty({C}, pdt), rstd = Tensor::empty({C}, pdt);
  }
  {
    autograd::GradModeGuard off(false);
    if (weight.defined()) wc = contig(to_dtype(weight, pdt));
    if (bias.defined()) bc = contig(to_dtype(bias, pdt));
    if (!training) {
      mean = contiguous_clone(to_dtype(running_mean, pdt));
      rstd = contiguous_clone(rsqrt(to_dtype(running_var, pdt) + eps));
    }
  }
  DC_KERNEL(batch_norm_forward)(s, x.dtype(), xc.data_ptr(), wc.defined() ? wc.data_ptr() : nullptr,
                          bc.defined() ? bc.data_ptr() : nullptr, eps, training, mean.data_ptr(),
                          rstd.data_ptr(), varb.data_ptr(), y.data_ptr());
  if (training && running_mean.defined()) {
    autograd::GradModeGuard off(false);
    const double n = static_cast<double>(N * S);
    Tensor rm = running_mean, rv = running_var;
    Tensor new_mean = rm * (1.0 - momentum) + to_dtype(mean, rm.dtype()) * momentum;
    Tensor new_var = rv * (1.0 - momentum) + to_dtype(varb, rv.dtype()) * (momentum * n / (n - 1));
    copy_(rm, new_mean);
    copy_(rv, new_var);
  }
  if (!autograd::any_requires_grad({&x, &weight, &bias})) return y;
  autograd::record(
      op, {x, weight, bias}, {y},
      [training, s, eps, pdt, wdt = weight.defined() ? weight.dtype() : pdt,
       bdt = bias.defined() ? bias.dtype() : pdt](GradCtx& g) -> tensor_list {
        const Tensor x = g.saved(0), w = g.saved(1), mean = g.saved(2), rstd = g.saved(3);
        // Gradients in their inputs' dtypes (16-bit data, float32 parameters).
        auto as = [](const Tensor& t, DType dt) {
          return t.defined() && t.dtype() != dt ? to_dtype(t, dt) : t;
        };
        const Tensor& gr = g.grad();
        const int64_t nd = x.dim();
        if (autograd::any_requires_grad({&gr, &x, &w})) {
          // Composite: the batch statistics recomputed with differentiable ops.
          const Shape dims = reduce_dims(nd);
          Tensor xm, r;
          if (training) {
            xm = x - ops::mean(x, dims, true);
            r = rsqrt(ops::mean(xm * xm, dims, true) + eps);
          } else {
            xm = x - channel_view(mean, nd);
            r = channel_view(rstd, nd);
          }
          Tensor xhat = xm * r;
          Tensor gw = w.defined() ? gr * channel_view(w, nd) : gr;
          Tensor gx;
          if (g.needs(0)) {
            gx = training ? r * (gw - ops::mean(gw, dims, true) -
                                 xhat * ops::mean(gw * xhat, dims, true))
                          : gw * r;
          }
          return {as(gx, x.dtype()), g.needs(1) ? as(sum(gr * xhat, dims), wdt) : Tensor(),
                  g.needs(2) ? as(sum(gr, dims), bdt) : Tensor()};
        }
        Tensor gx = g.needs(0) ? Tensor::empty(x.sizes(), x.dtype()) : Tensor();
        Tensor dw = g.needs(1) ? Tensor::empty({s.C}, pdt) : Tensor();
        Tensor db = g.needs(2) ? Tensor::empty({s.C}, pdt) : Tensor();
        Tensor gc = contig(to_dtype(gr, x.dtype())), xc = contig(x);
        Tensor wc = w.defined() ? contig(to_dtype(w, pdt)) : w;
        DC_KERNEL(batch_norm_backward)(s, x.dtype(), gc.data_ptr(), xc.data_ptr(), mean.data_ptr(),
                                 rstd.data_ptr(), wc.defined() ? wc.data_ptr() : nullptr,
                                 training, gx.defined() ? gx.data_ptr() : nullptr,
                                 dw.defined() ? dw.data_ptr() : nullptr,
                                 db.defined() ? db.data_ptr() : nullptr);
        return {gx, as(dw, wdt), as(db, bdt)};
      },
      {x, weight, mean, rstd});
  return y;
}

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias,
                  double eps) {
  DC_OP_GUARD("group_norm", x, weight, bias);
  const char* op = "group_norm";
  DC_CHECK(is_floating(x.dtype()), TypeError, "[", op, "] expected a floating-point input, got ",
           dtype_name(x.dtype()));
  DC_CHECK(x.dim() >= 2, ValueError, "[", op, "] expected an input with at least 2 dims (N, C, ...), got ",
           x.shape_str());
  const int64_t N = x.sizes()[0], C = x.sizes()[1];
  DC_CHECK(num_groups > 0 && C % num_groups == 0, ValueError, "[", op, "] expected ",
           "num_channels ", C, " (input ", x.shape_str(), ") to be divisible by num_groups=",
           num_groups);
  check_channel_vec(weight, "weight", x, C, op);
  check_channel_vec(bias, "bias", x, C, op);
  // (N, G, C/G * S): statistics over the last dim, biased variance, like torch.
  Tensor xr = reshape(x, {N, num_groups, -1});
  Tensor xm = xr - mean(xr, {2}, true);
  Tensor y = reshape(xm * rsqrt(mean(xm * xm, {2}, true) + eps), x.sizes());
  if (weight.defined()) y = y * channel_view(weight, x.dim());
  if (bias.defined()) y = y + channel_view(bias, x.dim());
  return y;
}

Tensor instance_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                     const Tensor& weight, const Tensor& bias, bool use_input_stats,
                     double momentum, double eps) {
  DC_OP_GUARD("instance_norm", x, running_mean, running_var, weight, bias);
  const char* op = "instance_norm";
  DC_CHECK(x.dim() >= 3, ValueError, "[", op, "] expected an input with at least 3 dims "
           "(N, C, *spatial), got ", x.shape_str());
  const int64_t N = x.sizes()[0], C = x.sizes()[1];
  check_channel_vec(running_mean, "running_mean", x, C, op);
  check_channel_vec(running_var, "running_var", x, C, op);
  check_channel_vec(weight, "weight", x, C, op);
  check_channel_vec(bias, "bias", x, C, op);
  // batch_norm over (1, N * C, *): every (sample, channel) is its own channel; the running
  // statistics are shared by the samples, so they are repeated and averaged back (like torch).
  Shape s = x.sizes();
  s[0] = 1, s[1] = N * C;
  Tensor xr = reshape(x, s);
  Tensor w = weight.defined() ? repeat(weight, {N}) : weight;
  Tensor b = bias.defined() ? repeat(bias, {N}) : bias;
  Tensor rm, rv;
  if (running_mean.defined()) {
    autograd::GradModeGuard off(false);
    rm = repeat(running_mean, {N}), rv = repeat(running_var, {N});
  }
  Tensor y = batch_norm(xr, rm, rv, w, b, use_input_stats, momentum, eps);
  if (use_input_stats && running_mean.defined()) {
    autograd::GradModeGuard off(false);
    Tensor rmean = running_mean, rvar = running_var;
    copy_(rmean, mean(reshape(rm, {N, C}), {0}));
    copy_(rvar, mean(reshape(rv, {N, C}), {0}));
  }
  return reshape(y, x.sizes());
}

// ---- layer_norm / rms_norm --------------------------------------------------------------------

namespace {

Tensor norm_impl(const char* name, const Tensor& x, const Shape& ns, const Tensor& w,
                 const Tensor& b, double eps, bool rms) {
  DC_CHECK(is_floating(x.dtype()), TypeError, "[", name, "] expected a floating-point input, got ",
           dtype_name(x.dtype()));
  const int64_t k = static_cast<int64_t>(ns.size());
  bool match = k >= 1 && x.dim() >= k;
  for (int64_t i = 0; match && i < k; ++i) match = x.sizes()[x.dim() - k + i] == ns[i];
  DC_CHECK(match, ValueError, "[", name, "] normalized_shape ", shape_str(ns),
           " must be non-empty and equal the trailing dims of the input, got input of shape ",
           x.shape_str());
  for (const Tensor* p : {&w, &b}) {
    if (!p->defined()) continue;
    DC_CHECK(p->sizes() == ns, ValueError, "[", name, "] ", p == &w ? "weight" : "bias",
             " must have shape normalized_shape ", shape_str(ns), ", got ", p->shape_str());
    DC_CHECK(p->dtype() == x.dtype(), TypeError, "[", name, "] ", p == &w ? "weight" : "bias",
             " dtype ", dtype_name(p->dtype()), " differs from the input's ",
             dtype_name(x.dtype()));
  }
  const int64_t N = numel_of(ns), M = N ? x.numel() / N : 0;
  Tensor y = Tensor::empty(x.sizes(), x.dtype());
  Tensor mean = Tensor::empty({M}, x.dtype()), rstd = Tensor::empty({M}, x.dtype());
  DC_KERNEL(norm_forward_into)(y, mean, rstd, contig(x), w.defined() ? contig(w) : w,
                         b.defined() ? contig(b) : b, N, eps, rms);
  if (!autograd::any_requires_grad({&x, &w, &b})) return y;
  const bool has_w = w.defined();
  autograd::record(
      name, {x, w, b}, {y},
      [ns, N, eps, rms, has_w](GradCtx& g) -> tensor_list {
        const Tensor x = g.saved(0), w = g.saved(1), mean = g.saved(2), rstd = g.saved(3);
        const Tensor& gr = g.grad();
        if (autograd::any_requires_grad({&gr, &x, &w})) {
          // Composite: statistics recomputed with differentiable ops.
          Shape dims;
          for (int64_t i = x.dim() - static_cast<int64_t>(ns.size()); i < x.dim(); ++i)
            dims.push_back(i);
          Tensor xm = rms ? x : x - ops::mean(x, dims, true);
          Tensor r = rsqrt(ops::mean(xm * xm, dims, true) + eps);
          Tensor xhat = xm * r;
          Tensor gw = has_w ? gr * w : gr;
          Tensor inner = gw - xhat * ops::mean(gw * xhat, dims, true);
          if (!rms) inner = inner - ops::mean(gw, dims, true);
          return {g.needs(0) ? r * inner : Tensor(), g.needs(1) ? sum_to(gr * xhat, ns) : Tensor(),
                  g.needs(2) ? sum_to(gr, ns) : Tensor()};
        }
        Tensor gx = g.needs(0) ? Tensor::empty(x.sizes(), x.dtype()) : Tensor();
        Tensor dw = g.needs(1) ? Tensor::empty(ns, x.dtype()) : Tensor();
        Tensor db = g.needs(2) ? Tensor::empty(ns, x.dtype()) : Tensor();
        DC_KERNEL(norm_backward_into)(gx, dw, db, contig(to_dtype(gr, x.dtype())),
                                contig(x), mean, rstd,
                                w.defined() ? contig(w) : w, N, rms);
        return {gx, dw, db};
      },
      {x, w, mean, rstd});
  return y;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  DC_OP_GUARD("layer_norm", x, weight, bias);
  return norm_impl("layer_norm", x, normalized_shape, weight, bias, eps, false);
}

Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                std::optional<double> eps) {
  DC_OP_GUARD("rms_norm", x, weight);
  const double e = eps ? *eps
                   : x.dtype() == DType::Float64 ? std::numeric_limits<double>::epsilon()
                                                 : std::numeric_limits<float>::epsilon();
  return norm_impl("rms_norm", x, normalized_shape, weight, Tensor(), e, true);
}

}  // namespace dc::ops
