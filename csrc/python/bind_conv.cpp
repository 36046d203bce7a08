// Hand-written convolution bindings (csrc/ops/ops.schema rows marked manual): padding is a
// number, a sequence or 'same' / 'valid'. The other conv ops' bindings are generated.
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
}

const BindingRegistrar registrar("conv", bind_conv);

}  // namespace
}  // namespace dc::py_bind
