// Pooling ops: window construction, shape checks, forward dispatch and derivatives.
//
// Max pools return the argmax of each window; their derivative scatters the gradient to those
// indices with scatter_add (itself differentiable: its derivative gathers), so it works under
// create_graph. Average pools are linear: the derivative of the average (avg_apply) is its
// adjoint (avg_adjoint) and vice versa, each recording the other.
#include "ops/pool.h"

#include <memory>

#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/pool.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;
using Windows = std::shared_ptr<const cpu::PoolWindows>;

namespace {

Tensor contig(const Tensor& t) { return t.is_contiguous() ? t : contiguous_clone(t); }

std::pair<int64_t, int64_t> pair_arg(const Shape& v, const char* op, const char* what) {
  DC_CHECK(v.size() == 1 || v.size() == 2, ValueError, "[", op, "] ", what,
           " must have 1 or 2 values, got ", shape_str(v));
  return v.size() == 1 ? std::make_pair(v[0], v[0]) : std::make_pair(v[0], v[1]);
}

void check_input(const Tensor& x, const char* op) {
  DC_CHECK(is_floating(x.dtype()), TypeError, "[", op, "] expected a floating-point input, got ",
           dtype_name(x.dtype()));
  DC_CHECK(x.dim() == 3 || x.dim() == 4, ValueError, "[", op,
           "] expected a 3-D (unbatched) or 4-D (batched) input, got input ", x.shape_str());
  DC_CHECK(x.sizes()[x.dim() - 1] > 0 && x.sizes()[x.dim() - 2] > 0, ValueError, "[", op,
           "] expected non-empty spatial dims, got input ", x.shape_str());
}

Shape out_shape(const Tensor& x, int64_t OH, int64_t OW) {
  Shape s(x.sizes().begin(), x.sizes().end() - 2);
  s.push_back(OH);
  s.push_back(OW);
  return s;
}

// Output length of a sliding window (torch's pooling_output_shape).
int64_t pooled_size(int64_t L, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t num = L + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (o - 1) * s >= L + p) --o;  // the last window must start inside the input
  return o;
}

// Taps o * s - p + i * d (i < k) clipped to [0, L): first tap and count for each output o.
void window_taps(int64_t O, int64_t L, int64_t k, int64_t s, int64_t p, int64_t d,
                 std::vector<int64_t>& first, std::vector<int64_t>& count) {
  first.resize(O), count.resize(O);
  for (int64_t o = 0; o < O; ++o) {
    const int64_t start = o * s - p;
    const int64_t lo = start < 0 ? (-start + d - 1) / d : 0;
    const int64_t hi = std::min(k, (L - start + d - 1) / d);
    first[o] = start + lo * d, count[o] = std::max<int64_t>(0, hi - lo);
  }
}

struct PoolArgs {
  int64_t kh, kw, sh, sw, ph, pw, dh = 1, dw = 1;
};

PoolArgs pool_args(const char* op, const Shape& kernel, const Shape& stride, const Shape& padding,
                   const Shape& dilation) {
  PoolArgs a;
  std::tie(a.kh, a.kw) = pair_arg(kernel, op, "kernel_size");
  std::tie(a.sh, a.sw) = stride.empty() ? std::make_pair(a.kh, a.kw) : pair_arg(stride, op, "stride");
  std::tie(a.ph, a.pw) = pair_arg(padding, op, "padding");
  if (!dilation.empty()) std::tie(a.dh, a.dw) = pair_arg(dilation, op, "dilation");
  DC_CHECK(a.kh > 0 && a.kw > 0 && a.sh > 0 && a.sw > 0 && a.dh > 0 && a.dw > 0, ValueError, "[",
           op, "] kernel_size, stride and dilation must be positive");
  DC_CHECK(a.ph >= 0 && a.pw >= 0 && a.ph <= a.kh / 2 && a.pw <= a.kw / 2, ValueError, "[", op,
           "] pad should be at most half of effective kernel size, got kernel_size ",
           shape_str({a.kh, a.kw}), " and padding ", shape_str({a.ph, a.pw}));
  return a;
}

cpu::PoolWindows sliding_windows(const char* op, const Tensor& x, const PoolArgs& a,
                                 bool ceil_mode) {
  cpu::PoolWindows w;
  w.H = x.sizes()[x.dim() - 2], w.W = x.sizes()[x.dim() - 1];
  // The leading dims' product, not numel / (H * W): an empty spatial dim must not divide by 0.
  w.planes = numel_of(Shape(x.sizes().begin(), x.sizes().end() - 2));
  w.OH = pooled_size(w.H, a.kh, a.sh, a.ph, a.dh, ceil_mode);
  w.OW = pooled_size(w.W, a.kw, a.sw, a.pw, a.dw, ceil_mode);
  DC_CHECK(w.OH > 0 && w.OW > 0, ValueError, "[", op, "] output size (", w.OH, ", ", w.OW,
           ") is too small for input ", x.shape_str(), " with kernel_size ",
           shape_str({a.kh, a.kw}));
  w.dh = a.dh, w.dw = a.dw;
  window_taps(w.OH, w.H, a.kh, a.sh, a.ph, a.dh, w.h0, w.hn);
  window_taps(w.OW, w.W, a.kw, a.sw, a.pw, a.dw, w.w0, w.wn);
  return w;
}

// ---- max --------------------------------------------------------------------------------------

std::pair<Tensor, Tensor> max_apply(const char* op, const Tensor& x, const cpu::PoolWindows& w) {
  for (int64_t o = 0; o < w.OH; ++o)
    DC_CHECK(w.hn[o] > 0, ValueError, "[", op, "] a pooling window lies entirely in the padding");
  for (int64_t o = 0; o < w.OW; ++o)
    DC_CHECK(w.wn[o] > 0, ValueError, "[", op, "] a pooling window lies entirely in the padding");
  Tensor y = Tensor::empty(out_shape(x, w.OH, w.OW), x.dtype());
  Tensor idx = Tensor::empty(y.sizes(), DType::Int64);
  Tensor xc = contig(x);
  DC_KERNEL(max_pool2d_forward)(w, x.dtype(), xc.data_ptr(), y.data_ptr(),
                                static_cast<int64_t*>(idx.data_ptr()));
  if (autograd::any_requires_grad({&x})) {
    const Shape xs = x.sizes();
    const int64_t planes = w.planes, hw = w.H * w.W, ohw = w.OH * w.OW;
    autograd::record(
        op, {x}, {y},
        [xs, planes, hw, ohw, idx](GradCtx& c) -> tensor_list {
          Tensor g = reshape(c.grad(), {planes, ohw});
          Tensor gx = scatter_add(zeros({planes, hw}, g.dtype()), 1, reshape(idx, {planes, ohw}), g);
          return {reshape(gx, xs)};
        },
        {});
  }
  return {y, idx};
}

// ---- average ----------------------------------------------------------------------------------

Tensor avg_adjoint(const Tensor& gy, const Windows& w, const Shape& xs);

Tensor avg_apply(const Tensor& x, const Windows& w) {
  Tensor y = Tensor::empty(out_shape(x, w->OH, w->OW), x.dtype());
  Tensor xc = contig(x);
  DC_KERNEL(avg_pool2d_forward)(*w, x.dtype(), xc.data_ptr(), y.data_ptr());
  if (autograd::any_requires_grad({&x})) {
    const Shape xs = x.sizes();
    autograd::record(
        "avg_pool2d", {x}, {y},
        [w, xs](GradCtx& c) -> tensor_list { return {avg_adjoint(c.grad(), w, xs)}; }, {});
  }
  return y;
}

Tensor avg_adjoint(const Tensor& gy_in, const Windows& w, const Shape& xs) {
  Tensor gy = contig(gy_in);
  Tensor gx = Tensor::empty(xs, gy.dtype());
  DC_KERNEL(avg_pool2d_backward)(*w, gy.dtype(), gy.data_ptr(), gx.data_ptr());
  if (autograd::any_requires_grad({&gy_in})) {
    autograd::record(
        "avg_pool2d_backward", {gy_in}, {gx},
        [w](GradCtx& c) -> tensor_list { return {avg_apply(c.grad(), w)}; }, {});
  }
  return gx;
}

// Adaptive windows: output o covers [floor(o * L / O), ceil((o + 1) * L / O)).
void adaptive_taps(int64_t O, int64_t L, std::vector<int64_t>& first, std::vector<int64_t>& count,
                   std::vector<double>& div) {
  first.resize(O), count.resize(O), div.resize(O);
  for (int64_t o = 0; o < O; ++o) {
    const int64_t s = o * L / O, e = ((o + 1) * L + O - 1) / O;
    first[o] = s, count[o] = e - s, div[o] = static_cast<double>(e - s);
  }
}

cpu::PoolWindows adaptive_windows(const char* op, const Tensor& x, const Shape& output_size) {
  check_input(x, op);
  const auto [OH, OW] = pair_arg(output_size, op, "output_size");
  DC_CHECK(OH > 0 && OW > 0, ValueError, "[", op, "] output_size must be positive, got ",
           shape_str(output_size));
  cpu::PoolWindows w;
  w.H = x.sizes()[x.dim() - 2], w.W = x.sizes()[x.dim() - 1];
  w.planes = numel_of(Shape(x.sizes().begin(), x.sizes().end() - 2)), w.OH = OH, w.OW = OW;
  adaptive_taps(OH, w.H, w.h0, w.hn, w.hdiv);
  adaptive_taps(OW, w.W, w.w0, w.wn, w.wdiv);
  return w;
}

Tensor unsqueeze_1d(const Tensor& x, const char* op) {
  DC_CHECK(x.dim() == 2 || x.dim() == 3, ValueError, "[", op,
           "] expected a 2-D (unbatched) or 3-D (batched) input, got input ", x.shape_str());
  return unsqueeze(x, x.dim() - 1);
}

Shape one_d(const Shape& v, int64_t lead) {
  if (v.empty()) return v;
  return {lead, v[0]};
}

}  // namespace

std::pair<Tensor, Tensor> max_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride,
                                     const Shape& padding, const Shape& dilation, bool ceil_mode) {
  DC_OP_GUARD("max_pool2d", x);
  check_input(x, "max_pool2d");
  const PoolArgs a = pool_args("max_pool2d", kernel, stride, padding, dilation);
  return max_apply("max_pool2d", x, sliding_windows("max_pool2d", x, a, ceil_mode));
}

std::pair<Tensor, Tensor> max_pool1d(const Tensor& x, const Shape& kernel, const Shape& stride,
                                     const Shape& padding, const Shape& dilation, bool ceil_mode) {
  DC_OP_GUARD("max_pool1d", x);
  for (const Shape* s : {&kernel, &stride, &padding, &dilation})
    DC_CHECK(s->size() <= 1, ValueError, "[max_pool1d] expected 1 value per argument, got ",
             shape_str(*s));
  Tensor x4 = unsqueeze_1d(x, "max_pool1d");
  const PoolArgs a = pool_args("max_pool1d", one_d(kernel, 1), one_d(stride, 1),
                               one_d(padding, 0), one_d(dilation, 1));
  auto [y, idx] = max_apply("max_pool1d", x4, sliding_windows("max_pool1d", x4, a, ceil_mode));
  return {squeeze_dim(y, y.dim() - 2), squeeze_dim(idx, idx.dim() - 2)};
}

Tensor avg_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride, const Shape& padding,
                  bool ceil_mode, bool count_include_pad, int64_t divisor_override) {
  DC_OP_GUARD("avg_pool2d", x);
  const char* op = "avg_pool2d";
  check_input(x, op);
  const PoolArgs a = pool_args(op, kernel, stride, padding, {});
  cpu::PoolWindows w = sliding_windows(op, x, a, ceil_mode);
  // The divisor counts the window clipped to the padded input (count_include_pad) or to the
  // input itself; both are products of a row and a column factor.
  auto divs = [&](int64_t O, int64_t L, int64_t k, int64_t s, int64_t p,
                  const std::vector<int64_t>& n, std::vector<double>& div) {
    div.resize(O);
    for (int64_t o = 0; o < O; ++o) {
      const int64_t start = o * s - p, end = std::min(start + k, L + p);
      div[o] = static_cast<double>(count_include_pad ? end - start : n[o]);
    }
  };
  divs(w.OH, w.H, a.kh, a.sh, a.ph, w.hn, w.hdiv);
  divs(w.OW, w.W, a.kw, a.sw, a.pw, w.wn, w.wdiv);
  DC_CHECK(divisor_override >= 0, ValueError, "[", op, "] divisor_override must be positive");
  w.divisor_override = static_cast<double>(divisor_override);
  return avg_apply(x, std::make_shared<const cpu::PoolWindows>(std::move(w)));
}

Tensor avg_pool1d(const Tensor& x, const Shape& kernel, const Shape& stride, const Shape& padding,
                  bool ceil_mode, bool count_include_pad) {
  DC_OP_GUARD("avg_pool1d", x);
  for (const Shape* s : {&kernel, &stride, &padding})
    DC_CHECK(s->size() <= 1, ValueError, "[avg_pool1d] expected 1 value per argument, got ",
             shape_str(*s));
  Tensor x4 = unsqueeze_1d(x, "avg_pool1d");
  Tensor y = avg_pool2d(x4, one_d(kernel, 1), one_d(stride, 1), one_d(padding, 0), ceil_mode,
                        count_include_pad, 0);
  return squeeze_dim(y, y.dim() - 2);
}

Tensor adaptive_avg_pool2d(const Tensor& x, const Shape& output_size) {
  DC_OP_GUARD("adaptive_avg_pool2d", x);
  cpu::PoolWindows w = adaptive_windows("adaptive_avg_pool2d", x, output_size);
  return avg_apply(x, std::make_shared<const cpu::PoolWindows>(std::move(w)));
}

std::pair<Tensor, Tensor> adaptive_max_pool2d(const Tensor& x, const Shape& output_size) {
  DC_OP_GUARD("adaptive_max_pool2d", x);
  return max_apply("adaptive_max_pool2d", x,
                   adaptive_windows("adaptive_max_pool2d", x, output_size));
}

}  // namespace dc::ops
