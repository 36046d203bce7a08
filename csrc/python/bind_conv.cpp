// Bindings of the convolution, pooling and 2-D normalisation ops (csrc/ops/conv.cpp, pool.cpp,
// norm.cpp). deepcore.nn.functional (_functional_conv.py) gives them torch's full signatures.
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

Tensor opt_tensor(const py::object& o, const char* op) {
  return o.is_none() ? Tensor() : to_tensor(o, op);
}

// padding: a number, a sequence, or 'same' / 'valid' (returned as the mode string).
std::pair<Shape, std::string> padding_arg(const py::object& o, const char* op) {
  if (py::isinstance<py::str>(o)) return {Shape{0}, o.cast<std::string>()};
  return {to_shape(o, op), std::string()};
}

void bind_conv(py::module_& m) {
  using namespace ops;
  m.def("conv2d", [](const Tensor& x, const Tensor& w, py::object b, py::object stride,
                     py::object padding, py::object dilation, int64_t groups) {
    auto [pad, mode] = padding_arg(padding, "conv2d");
    Tensor bt = opt_tensor(b, "conv2d");
    Shape s = to_shape(stride, "conv2d"), d = to_shape(dilation, "conv2d");
    ReleaseIfLarge gil(x.numel() * w.numel());
    return conv2d(x, w, bt, s, pad, d, groups, mode);
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
     py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1);
  m.def("conv1d", [](const Tensor& x, const Tensor& w, py::object b, py::object stride,
                     py::object padding, py::object dilation, int64_t groups) {
    auto [pad, mode] = padding_arg(padding, "conv1d");
    Tensor bt = opt_tensor(b, "conv1d");
    Shape s = to_shape(stride, "conv1d"), d = to_shape(dilation, "conv1d");
    ReleaseIfLarge gil(x.numel() * w.numel());
    return conv1d(x, w, bt, s, pad, d, groups, mode);
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
     py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1);
  m.def("conv_transpose2d", [](const Tensor& x, const Tensor& w, py::object b, py::object stride,
                               py::object padding, py::object output_padding, int64_t groups,
                               py::object dilation) {
    const char* op = "conv_transpose2d";
    Tensor bt = opt_tensor(b, op);
    Shape s = to_shape(stride, op), p = to_shape(padding, op), o = to_shape(output_padding, op),
          d = to_shape(dilation, op);
    ReleaseIfLarge gil(x.numel() * w.numel());
    return conv_transpose2d(x, w, bt, s, p, o, groups, d);
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
     py::arg("padding") = 0, py::arg("output_padding") = 0, py::arg("groups") = 1,
     py::arg("dilation") = 1);
  m.def("conv_transpose1d", [](const Tensor& x, const Tensor& w, py::object b, py::object stride,
                               py::object padding, py::object output_padding, int64_t groups,
                               py::object dilation) {
    const char* op = "conv_transpose1d";
    Tensor bt = opt_tensor(b, op);
    Shape s = to_shape(stride, op), p = to_shape(padding, op), o = to_shape(output_padding, op),
          d = to_shape(dilation, op);
    ReleaseIfLarge gil(x.numel() * w.numel());
    return conv_transpose1d(x, w, bt, s, p, o, groups, d);
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
     py::arg("padding") = 0, py::arg("output_padding") = 0, py::arg("groups") = 1,
     py::arg("dilation") = 1);
  m.def("_pad", [](const Tensor& x, py::object pads, const std::string& mode, double value) {
    return pad(x, to_shape(pads, "pad"), mode, value);
  }, py::arg("input"), py::arg("pad"), py::arg("mode") = "constant", py::arg("value") = 0.0);

  // Pools return (values, indices); deepcore.nn.functional drops the indices unless asked.
  m.def("_max_pool2d", [](const Tensor& x, py::object k, py::object s, py::object p,
                          py::object d, bool ceil_mode) {
    const char* op = "max_pool2d";
    Shape st = s.is_none() ? Shape{} : to_shape(s, op);
    Shape ks = to_shape(k, op), ps = to_shape(p, op), ds = to_shape(d, op);
    ReleaseIfLarge gil(x.numel());  // after every Python-object conversion: they need the GIL
    return max_pool2d(x, ks, st, ps, ds, ceil_mode);
  }, py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(),
     py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("ceil_mode") = false);
  m.def("_max_pool1d", [](const Tensor& x, py::object k, py::object s, py::object p,
                          py::object d, bool ceil_mode) {
    const char* op = "max_pool1d";
    Shape st = s.is_none() ? Shape{} : to_shape(s, op);
    Shape ks = to_shape(k, op), ps = to_shape(p, op), ds = to_shape(d, op);
    ReleaseIfLarge gil(x.numel());  // after every Python-object conversion: they need the GIL
    return max_pool1d(x, ks, st, ps, ds, ceil_mode);
  }, py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(),
     py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("ceil_mode") = false);
  m.def("_avg_pool2d", [](const Tensor& x, py::object k, py::object s, py::object p,
                          bool ceil_mode, bool count_include_pad, py::object divisor_override) {
    const char* op = "avg_pool2d";
    Shape st = s.is_none() ? Shape{} : to_shape(s, op);
    const int64_t dv = divisor_override.is_none() ? 0 : divisor_override.cast<int64_t>();
    DC_CHECK(divisor_override.is_none() || dv > 0, ValueError,
             "[avg_pool2d] divisor must be not zero");
    Shape ks = to_shape(k, op), ps = to_shape(p, op);
    ReleaseIfLarge gil(x.numel());
    return avg_pool2d(x, ks, st, ps, ceil_mode, count_include_pad, dv);
  }, py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(),
     py::arg("padding") = 0, py::arg("ceil_mode") = false, py::arg("count_include_pad") = true,
     py::arg("divisor_override") = py::none());
  m.def("_avg_pool1d", [](const Tensor& x, py::object k, py::object s, py::object p,
                          bool ceil_mode, bool count_include_pad) {
    const char* op = "avg_pool1d";
    Shape st = s.is_none() ? Shape{} : to_shape(s, op);
    Shape ks = to_shape(k, op), ps = to_shape(p, op);
    ReleaseIfLarge gil(x.numel());
    return avg_pool1d(x, ks, st, ps, ceil_mode, count_include_pad);
  }, py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(),
     py::arg("padding") = 0, py::arg("ceil_mode") = false, py::arg("count_include_pad") = true);
  m.def("_adaptive_avg_pool2d", [](const Tensor& x, py::object size) {
    Shape os = to_shape(size, "adaptive_avg_pool2d");
    ReleaseIfLarge gil(x.numel());
    return adaptive_avg_pool2d(x, os);
  }, py::arg("input"), py::arg("output_size"));
  m.def("_adaptive_max_pool2d", [](const Tensor& x, py::object size) {
    Shape os = to_shape(size, "adaptive_max_pool2d");
    ReleaseIfLarge gil(x.numel());
    return adaptive_max_pool2d(x, os);
  }, py::arg("input"), py::arg("output_size"));

  m.def("_batch_norm", [](const Tensor& x, py::object rm, py::object rv, py::object w,
                          py::object b, bool training, double momentum, double eps) {
    const char* op = "batch_norm";
    Tensor rmt = opt_tensor(rm, op), rvt = opt_tensor(rv, op), wt = opt_tensor(w, op),
           bt = opt_tensor(b, op);
    ReleaseIfLarge gil(x.numel());
    return batch_norm(x, rmt, rvt, wt, bt, training, momentum, eps);
  }, py::arg("input"), py::arg("running_mean"), py::arg("running_var"),
     py::arg("weight") = py::none(), py::arg("bias") = py::none(), py::arg("training") = false,
     py::arg("momentum") = 0.1, py::arg("eps") = 1e-5);
  m.def("_group_norm", [](const Tensor& x, int64_t groups, py::object w, py::object b,
                          double eps) {
    const char* op = "group_norm";
    Tensor wt = opt_tensor(w, op), bt = opt_tensor(b, op);
    ReleaseIfLarge gil(x.numel());
    return group_norm(x, groups, wt, bt, eps);
  }, py::arg("input"), py::arg("num_groups"), py::arg("weight") = py::none(),
     py::arg("bias") = py::none(), py::arg("eps") = 1e-5);
  m.def("_instance_norm", [](const Tensor& x, py::object rm, py::object rv, py::object w,
                             py::object b, bool use_input_stats, double momentum, double eps) {
    const char* op = "instance_norm";
    Tensor rmt = opt_tensor(rm, op), rvt = opt_tensor(rv, op), wt = opt_tensor(w, op),
           bt = opt_tensor(b, op);
    ReleaseIfLarge gil(x.numel());
    return instance_norm(x, rmt, rvt, wt, bt, use_input_stats, momentum, eps);
  }, py::arg("input"), py::arg("running_mean") = py::none(), py::arg("running_var") = py::none(),
     py::arg("weight") = py::none(), py::arg("bias") = py::none(),
     py::arg("use_input_stats") = true, py::arg("momentum") = 0.1, py::arg("eps") = 1e-5);
}

const BindingRegistrar registrar("conv", bind_conv);

}  // namespace
}  // namespace dc::py_bind
