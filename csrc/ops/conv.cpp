// Convolutions and pad: shape checks, forward dispatch and derivatives.
//
// Note [Convolution derivatives]
// With L(x, w, g) = <g, conv(x, w)>, conv2d's gradients are the two partial derivatives of L:
//     Bi(g, w) = dL/dx   (conv2d_backward_input: a transposed convolution of g with w)
//     Bw(g, x) = dL/dw   (conv2d_backward_weight: a correlation of x with g)
// L is linear in each argument, so the derivatives of Bi and Bw are again conv, Bi and Bw:
//     y = Bi(g, w), upstream u (shape of x):  d/dg = conv(u, w),  d/dw = Bw(g, u)
//     y = Bw(g, x), upstream u (shape of w):  d/dg = conv(x, u),  d/dx = Bi(g, u)
// Each of the three ops records these, so gradients of any order need no other code, and
// conv_transpose2d is Bi itself (its input plays g's role).
#include "ops/conv.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/conv.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;

namespace {

// Multiply-adds of one pass (forward, input gradient or weight gradient: the same count), x2.
double conv_flops(const cpu::ConvGeom& g) {
  return 2.0 * g.N * g.K * g.OH * g.OW * g.Cg() * g.KH * g.KW;
}

Tensor contig(const Tensor& t) { return t.is_contiguous() ? t : contiguous_clone(t); }

// 1 value -> (v, v) for 2-D (or (1, v) for 1-D via `lead`), n values -> themselves.
std::pair<int64_t, int64_t> pair_arg(const Shape& v, int64_t spatial, int64_t lead,
                                     const char* op, const char* what) {
  DC_CHECK(v.size() == 1 || static_cast<int64_t>(v.size()) == spatial, ValueError, "[", op, "] ",
           what, " must have 1 or ", spatial, " values, got ", shape_str(v));
  if (spatial == 1) return {lead, v[0]};
  return v.size() == 1 ? std::make_pair(v[0], v[0]) : std::make_pair(v[0], v[1]);
}

void check_float(const Tensor& x, const Tensor& w, const Tensor& b, const char* op) {
  DC_CHECK(is_floating(x.dtype()), TypeError, "[", op, "] expected a floating-point input, got ",
           dtype_name(x.dtype()));
  DC_CHECK(w.dtype() == x.dtype() && (!b.defined() || b.dtype() == x.dtype()), TypeError, "[",
           op, "] input, weight and bias must have the same dtype, got ", dtype_name(x.dtype()),
           ", ", dtype_name(w.dtype()), b.defined() ? ", " : "",
           b.defined() ? dtype_name(b.dtype()) : "");
}

cpu::ConvGeom make_geom(const Shape& xsize, const Shape& wsize, int64_t OH, int64_t OW,
                        const ConvParams& p) {
  cpu::ConvGeom g;
  g.N = xsize[0], g.C = xsize[1], g.H = xsize[2], g.W = xsize[3];
  g.K = wsize[0], g.KH = wsize[2], g.KW = wsize[3], g.OH = OH, g.OW = OW;
  g.sh = p.sh, g.sw = p.sw, g.ph = p.ph, g.pw = p.pw, g.dh = p.dh, g.dw = p.dw;
  g.groups = p.groups;
  return g;
}

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d) {
  return (in + 2 * pad - d * (k - 1) - 1) / s + 1;
}

// Checks of conv{1,2}d's arguments against the shapes the user passed (x: `spatial` + 1 or + 2
// dims; w: spatial + 2 dims), so messages name what the caller wrote.
void check_conv(const char* op, const Tensor& x, const Tensor& w, const Tensor& b,
                int64_t spatial, const ConvParams& p) {
  check_float(x, w, b, op);
  DC_CHECK(w.dim() == spatial + 2, ValueError, "[", op, "] expected a ", spatial + 2,
           "-D weight, got weight ", w.shape_str());
  DC_CHECK(x.dim() == spatial + 1 || x.dim() == spatial + 2, ValueError, "[", op, "] expected a ",
           spatial + 1, "-D (unbatched) or ", spatial + 2, "-D (batched) input, got input ",
           x.shape_str());
  DC_CHECK(p.groups > 0, ValueError, "[", op, "] groups must be positive, got ", p.groups);
  DC_CHECK(p.sh > 0 && p.sw > 0 && p.dh > 0 && p.dw > 0, ValueError, "[", op,
           "] stride and dilation must be positive");
  DC_CHECK(p.ph >= 0 && p.pw >= 0, ValueError, "[", op, "] negative padding is not supported");
  const int64_t K = w.sizes()[0], C = x.sizes()[x.dim() - spatial - 1];
  DC_CHECK(K % p.groups == 0, ValueError, "[", op, "] out_channels ", K,
           " (weight ", w.shape_str(), ") must be divisible by groups=", p.groups);
  DC_CHECK(C == w.sizes()[1] * p.groups, ValueError, "[", op, "] expected input with ",
           w.sizes()[1] * p.groups, " channels (weight ", w.shape_str(), ", groups=", p.groups,
           "), got input ", x.shape_str());
  if (b.defined())
    DC_CHECK(b.dim() == 1 && b.sizes()[0] == K, ValueError, "[", op, "] expected bias of shape (",
             K, ",), got bias ", b.shape_str());
  for (int64_t i = 0; i < spatial; ++i) {
    const bool hdim = spatial == 2 && i == 0;
    const int64_t in = x.sizes()[x.dim() - spatial + i], k = w.sizes()[2 + i];
    const int64_t pad = hdim ? p.ph : p.pw, d = hdim ? p.dh : p.dw;
    DC_CHECK(in + 2 * pad >= d * (k - 1) + 1, ValueError, "[", op, "] input ", x.shape_str(),
             " padded by ", pad, " is smaller than the (dilated) kernel ", w.shape_str(),
             " with dilation ", d);
  }
}

// conv2d on 4-D tensors whose arguments were checked.
Tensor conv2d_4d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p) {
  const int64_t OH = out_size(x.sizes()[2], w.sizes()[2], p.sh, p.ph, p.dh);
  const int64_t OW = out_size(x.sizes()[3], w.sizes()[3], p.sw, p.pw, p.dw);
  const cpu::ConvGeom g = make_geom(x.sizes(), w.sizes(), OH, OW, p);
  Tensor y = Tensor::empty({g.N, g.K, OH, OW}, x.dtype());
  Tensor xc = contig(x), wc = contig(w), bc = b.defined() ? contig(b) : b;
  dispatch::add_flops(conv_flops(g));
  DC_KERNEL(conv2d_forward)(g, x.dtype(), xc.data_ptr(), wc.data_ptr(),
                      bc.defined() ? bc.data_ptr() : nullptr, y.data_ptr());
  if (!autograd::any_requires_grad({&x, &w, &b})) return y;
  const int64_t H = g.H, W = g.W, KH = g.KH, KW = g.KW;
  autograd::record(
      "conv2d", {x, w, b}, {y},
      [p, H, W, KH, KW](GradCtx& c) -> tensor_list {
        const Tensor& gy = c.grad();
        return {c.needs(0) ? conv2d_backward_input(gy, c.saved(1), H, W, p) : Tensor(),
                c.needs(1) ? conv2d_backward_weight(gy, c.saved(0), KH, KW, p) : Tensor(),
                c.needs(2) ? sum(gy, {0, 2, 3}) : Tensor()};
      },
      {x, w});
  return y;
}

}  // namespace

Tensor conv2d_backward_input(const Tensor& gy_in, const Tensor& w, int64_t H, int64_t W,
                             const ConvParams& p) {
  DC_OP_GUARD("conv2d_backward_input", gy_in, w);
  const Tensor gy = gy_in.dtype() == w.dtype() ? gy_in : to_dtype(gy_in, w.dtype());
  const int64_t N = gy.sizes()[0], C = w.sizes()[1] * p.groups;
  const cpu::ConvGeom g = make_geom({N, C, H, W}, w.sizes(), gy.sizes()[2], gy.sizes()[3], p);
  Tensor gx = Tensor::empty({N, C, H, W}, w.dtype());
  Tensor gyc = contig(gy), wc = contig(w);
  dispatch::add_flops(conv_flops(g));
  DC_KERNEL(conv2d_backward_input)(g, w.dtype(), gyc.data_ptr(), wc.data_ptr(), gx.data_ptr());
  if (!autograd::any_requires_grad({&gy, &w})) return gx;
  const int64_t KH = g.KH, KW = g.KW;
  autograd::record(
      "conv2d_backward_input", {gy, w}, {gx},
      [p, KH, KW](GradCtx& c) -> tensor_list {  // Note [Convolution derivatives]
        const Tensor& u = c.grad();
        return {c.needs(0) ? conv2d_4d(u, c.saved(1), Tensor(), p) : Tensor(),
                c.needs(1) ? conv2d_backward_weight(c.saved(0), u, KH, KW, p) : Tensor()};
      },
      {gy, w});
  return gx;
}

Tensor conv2d_backward_weight(const Tensor& gy_in, const Tensor& x, int64_t KH, int64_t KW,
                              const ConvParams& p) {
  DC_OP_GUARD("conv2d_backward_weight", gy_in, x);
  const Tensor gy = gy_in.dtype() == x.dtype() ? gy_in : to_dtype(gy_in, x.dtype());
  const int64_t K = gy.sizes()[1], Cg = x.sizes()[1] / p.groups;
  const cpu::ConvGeom g = make_geom(x.sizes(), {K, Cg, KH, KW}, gy.sizes()[2], gy.sizes()[3], p);
  Tensor gw = Tensor::empty({K, Cg, KH, KW}, x.dtype());
  Tensor gyc = contig(gy), xc = contig(x);
  dispatch::add_flops(conv_flops(g));
  DC_KERNEL(conv2d_backward_weight)(g, x.dtype(), gyc.data_ptr(), xc.data_ptr(), gw.data_ptr());
  if (!autograd::any_requires_grad({&gy, &x})) return gw;
  const int64_t H = g.H, W = g.W;
  autograd::record(
      "conv2d_backward_weight", {gy, x}, {gw},
      [p, H, W](GradCtx& c) -> tensor_list {  // Note [Convolution derivatives]
        const Tensor& u = c.grad();
        return {c.needs(0) ? conv2d_4d(c.saved(1), u, Tensor(), p) : Tensor(),
                c.needs(1) ? conv2d_backward_input(c.saved(0), u, H, W, p) : Tensor()};
      },
      {gy, x});
  return gw;
}

namespace {

// conv1d / conv2d with `spatial` = 1 or 2, padding given or "same" / "valid".
Tensor conv_nd(const char* op, int64_t spatial, const Tensor& x, const Tensor& w, const Tensor& b,
               const Shape& stride, const Shape& padding, const Shape& dilation, int64_t groups,
               const std::string& mode) {
  ConvParams p;
  p.groups = groups;
  std::tie(p.sh, p.sw) = pair_arg(stride, spatial, 1, op, "stride");
  std::tie(p.dh, p.dw) = pair_arg(dilation, spatial, 1, op, "dilation");
  int64_t extra_h = 0, extra_w = 0;  // 'same' with an even dilated kernel: one more at the end
  if (mode == "same") {
    DC_CHECK(p.sh == 1 && p.sw == 1, ValueError, "[", op,
             "] padding='same' is not supported for strided convolutions");
    DC_CHECK(w.dim() == spatial + 2, ValueError, "[", op, "] expected a ", spatial + 2,
             "-D weight, got weight ", w.shape_str());
    const int64_t th = spatial == 2 ? p.dh * (w.sizes()[2] - 1) : 0;
    const int64_t tw = p.dw * (w.sizes()[w.dim() - 1] - 1);
    p.ph = th / 2, p.pw = tw / 2, extra_h = th - 2 * p.ph, extra_w = tw - 2 * p.pw;
  } else if (mode == "valid") {
    p.ph = p.pw = 0;
  } else {
    DC_CHECK(mode.empty(), ValueError, "[", op, "] padding must be 'same', 'valid' or numbers, got '",
             mode, "'");
    std::tie(p.ph, p.pw) = pair_arg(padding, spatial, 0, op, "padding");
  }
  check_conv(op, x, w, b, spatial, p);
  Tensor x4 = x.dim() == spatial + 1 ? unsqueeze(x, 0) : x;
  Tensor w4 = w;
  if (spatial == 1) x4 = unsqueeze(x4, 2), w4 = unsqueeze(w, 2);
  if (extra_h || extra_w) x4 = pad(x4, {0, extra_w, 0, extra_h});
  Tensor y = conv2d_4d(x4, w4, b, p);
  if (spatial == 1) y = squeeze_dim(y, 2);
  return x.dim() == spatial + 1 ? squeeze_dim(y, 0) : y;
}

Tensor conv_transpose_nd(const char* op, int64_t spatial, const Tensor& x, const Tensor& w,
                         const Tensor& b, const Shape& stride, const Shape& padding,
                         const Shape& output_padding, int64_t groups, const Shape& dilation) {
  ConvParams p;
  p.groups = groups;
  std::tie(p.sh, p.sw) = pair_arg(stride, spatial, 1, op, "stride");
  std::tie(p.dh, p.dw) = pair_arg(dilation, spatial, 1, op, "dilation");
  std::tie(p.ph, p.pw) = pair_arg(padding, spatial, 0, op, "padding");
  const auto [oph, opw] = pair_arg(output_padding, spatial, 0, op, "output_padding");
  check_float(x, w, b, op);
  DC_CHECK(w.dim() == spatial + 2, ValueError, "[", op, "] expected a ", spatial + 2,
           "-D weight, got weight ", w.shape_str());
  DC_CHECK(x.dim() == spatial + 1 || x.dim() == spatial + 2, ValueError, "[", op, "] expected a ",
           spatial + 1, "-D (unbatched) or ", spatial + 2, "-D (batched) input, got input ",
           x.shape_str());
  DC_CHECK(groups > 0 && p.sh > 0 && p.sw > 0 && p.dh > 0 && p.dw > 0 && p.ph >= 0 && p.pw >= 0,
           ValueError, "[", op, "] groups, stride and dilation must be positive and padding "
           "non-negative");
  const int64_t Cin = x.sizes()[x.dim() - spatial - 1];
  DC_CHECK(Cin == w.sizes()[0] && Cin % groups == 0, ValueError, "[", op, "] expected input with ",
           w.sizes()[0], " channels (weight ", w.shape_str(), ", groups=", groups,
           "), got input ", x.shape_str());
  DC_CHECK(oph >= 0 && opw >= 0 && (oph < p.sh || oph < p.dh) && (opw < p.sw || opw < p.dw),
           ValueError, "[", op, "] output_padding must be smaller than either stride or "
           "dilation, got output_padding ", shape_str(output_padding));
  const int64_t Cout = w.sizes()[1] * groups;
  if (b.defined())
    DC_CHECK(b.dim() == 1 && b.sizes()[0] == Cout, ValueError, "[", op,
             "] expected bias of shape (", Cout, ",), got bias ", b.shape_str());
  Tensor x4 = x.dim() == spatial + 1 ? unsqueeze(x, 0) : x;
  Tensor w4 = w;
  if (spatial == 1) x4 = unsqueeze(x4, 2), w4 = unsqueeze(w, 2);
  const int64_t H = x4.sizes()[2], W = x4.sizes()[3], KH = w4.sizes()[2], KW = w4.sizes()[3];
  const int64_t OH = (H - 1) * p.sh - 2 * p.ph + p.dh * (KH - 1) + oph + 1;
  const int64_t OW = (W - 1) * p.sw - 2 * p.pw + p.dw * (KW - 1) + opw + 1;
  DC_CHECK(OH > 0 && OW > 0, ValueError, "[", op, "] output size (", OH, ", ", OW,
           ") is too small for input ", x.shape_str(), " and weight ", w.shape_str());
  Tensor y = conv2d_backward_input(x4, w4, OH, OW, p);
  if (b.defined()) y = y + reshape(b, {1, Cout, 1, 1});
  if (spatial == 1) y = squeeze_dim(y, 2);
  return x.dim() == spatial + 1 ? squeeze_dim(y, 0) : y;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Shape& stride,
              const Shape& padding, const Shape& dilation, int64_t groups,
              const std::string& padding_mode) {
  DC_OP_GUARD("conv2d", x, w, bias);
  return conv_nd("conv2d", 2, x, w, bias, stride, padding, dilation, groups, padding_mode);
}

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& bias, const Shape& stride,
              const Shape& padding, const Shape& dilation, int64_t groups,
              const std::string& padding_mode) {
  DC_OP_GUARD("conv1d", x, w, bias);
  return conv_nd("conv1d", 1, x, w, bias, stride, padding, dilation, groups, padding_mode);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Shape& stride,
                        const Shape& padding, const Shape& output_padding, int64_t groups,
                        const Shape& dilation) {
  DC_OP_GUARD("conv_transpose2d", x, w, bias);
  return conv_transpose_nd("conv_transpose2d", 2, x, w, bias, stride, padding, output_padding,
                           groups, dilation);
}

Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& bias, const Shape& stride,
                        const Shape& padding, const Shape& output_padding, int64_t groups,
                        const Shape& dilation) {
  DC_OP_GUARD("conv_transpose1d", x, w, bias);
  return conv_transpose_nd("conv_transpose1d", 1, x, w, bias, stride, padding, output_padding,
                           groups, dilation);
}

// ---- pad --------------------------------------------------------------------------------------

namespace {

// Source index along a dim of size L for output position j of a dim padded by lo (and any hi).
int64_t pad_source(int64_t j, int64_t lo, int64_t L, const std::string& mode) {
  int64_t i = j - lo;
  if (mode == "reflect") {
    if (L == 1) return 0;
    const int64_t period = 2 * (L - 1);
    i = ((i % period) + period) % period;
    return i < L ? i : period - i;
  }
  if (mode == "replicate") return std::clamp<int64_t>(i, 0, L - 1);
  return ((i % L) + L) % L;  // circular
}

Tensor pad_constant(const Tensor& x, const Shape& pads, double value) {
  const int64_t nd = x.dim(), np = static_cast<int64_t>(pads.size()) / 2;
  Shape out_shape = x.sizes();
  Tensor src = x;  // x cropped by the negative pads
  for (int64_t i = 0; i < np; ++i) {
    const int64_t d = nd - 1 - i, lo = pads[2 * i], hi = pads[2 * i + 1];
    out_shape[d] += lo + hi;
    DC_CHECK(out_shape[d] >= 0, ValueError, "[pad] padding ", shape_str(pads),
             " would give a negative size for input ", x.shape_str());
    // Negative pads crop the input first (as torch does), so they cannot remove more than it has.
    DC_CHECK(std::max<int64_t>(0, -lo) + std::max<int64_t>(0, -hi) <= x.sizes()[d], ValueError,
             "[pad] padding ", shape_str(pads), " crops more than the ", x.sizes()[d],
             " elements of dim ", d, " of input ", x.shape_str());
    src = slice(src, d, std::max<int64_t>(0, -lo), x.sizes()[d] - std::max<int64_t>(0, -hi));
  }
  Tensor out = full(out_shape, value, x.dtype());
  {
    autograd::GradModeGuard off(false);
    Tensor dst = out;
    for (int64_t i = 0; i < np; ++i) {
      const int64_t d = nd - 1 - i, lo = std::max<int64_t>(0, pads[2 * i]);
      dst = slice(dst, d, lo, lo + src.sizes()[d]);
    }
    copy_(dst, src);
  }
  if (!autograd::any_requires_grad({&x})) return out;
  Shape neg(pads.size());
  for (size_t i = 0; i < pads.size(); ++i) neg[i] = -pads[i];
  autograd::record(
      "pad", {x}, {out},
      [neg](GradCtx& c) -> tensor_list { return {pad_constant(c.grad(), neg, 0.0)}; }, {});
  return out;
}

}  // namespace

Tensor pad(const Tensor& x, const Shape& pads, const std::string& mode, double value) {
  DC_OP_GUARD("pad", x);
  DC_CHECK(pads.size() % 2 == 0 && static_cast<int64_t>(pads.size()) / 2 <= x.dim(), ValueError,
           "[pad] padding length must be even and at most twice the input's dims, got pad ",
           shape_str(pads), " for input ", x.shape_str());
  if (mode == "constant") return pad_constant(x, pads, value);
  DC_CHECK(mode == "reflect" || mode == "replicate" || mode == "circular", ValueError,
           "[pad] mode must be 'constant', 'reflect', 'replicate' or 'circular', got '", mode,
           "'");
  DC_CHECK(value == 0.0, ValueError, "[pad] ", mode, " padding takes no value, got ", value);
  const int64_t np = static_cast<int64_t>(pads.size()) / 2;
  DC_CHECK(x.dim() >= np + 1, ValueError, "[pad] ", mode, " padding of ", np,
           " dims needs an input with at least ", np + 1, " dims, got ", x.shape_str());
  Tensor y = x;
  for (int64_t i = 0; i < np; ++i) {
    const int64_t d = x.dim() - 1 - i, lo = pads[2 * i], hi = pads[2 * i + 1], L = x.sizes()[d];
    if (lo == 0 && hi == 0) continue;
    // A negative pad crops that side, as in torch: output j reads source j - lo either way.
    const bool ok = L + lo + hi >= 0 && (mode == "reflect"    ? (lo < L && hi < L)
                                         : mode == "circular" ? (lo <= L && hi <= L)
                                                              : L > 0);
    DC_CHECK(ok, ValueError, "[pad] ", mode, " padding (", lo, ", ", hi, ") is invalid for dim ",
             d, " of size ", L, " (input ", x.shape_str(), ")",
             mode == "reflect" ? ": reflect padding must be smaller than the dim" : "");
    // The source positions depend on the shape only: computed on the host, then moved to x's
    // device (on meta that keeps the shape alone, which is all index_select needs there).
    // Circular padding wraps around the cropped input (torch's order: crop, then pad), the
    // other modes read the uncropped input at j - lo.
    const int64_t crop_lo = mode == "circular" ? std::max<int64_t>(0, -lo) : 0;
    const int64_t src_len = mode == "circular" ? L + std::min<int64_t>(0, lo) +
                                                     std::min<int64_t>(0, hi)
                                               : L;
    const int64_t src_lo = mode == "circular" ? std::max<int64_t>(0, lo) : lo;
    DC_CHECK(L + lo + hi == 0 || src_len > 0, ValueError, "[pad] circular padding (", lo, ", ",
             hi, ") crops all of dim ", d, " of size ", L, " (input ", x.shape_str(), ")");
    Tensor idx = Tensor::empty({L + lo + hi}, DType::Int64, Device{});
    int64_t* ip = idx.data<int64_t>();
    for (int64_t j = 0; j < L + lo + hi; ++j)
      ip[j] = crop_lo + pad_source(j, src_lo, src_len, mode);
    y = index_select(y, d, to_device(idx, x.device()));  // differentiable: an index_add back
  }
  return y;
}

}  // namespace dc::ops
