// Hand-written convolution bindings (csrc/ops/ops.schema rows marked manual): padding is a
// number, a sequence or 'same' / 'valid'. The other conv ops' bindings are generated.
#include "dispatch/precision.h"
#include "jit/graph.h"
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

// Boxed forms for the tracer (Note [Traced graphs] in jit/graph.h).
template <int D>
tensor_list invoke_conv(jit::Stack& s) {
  auto f = D == 1 ? &ops::conv1d : &ops::conv2d;
  return {f(std::get<Tensor>(s[0]), std::get<Tensor>(s[1]), std::get<Tensor>(s[2]),
            std::get<Shape>(s[3]), std::get<Shape>(s[4]), std::get<Shape>(s[5]),
            std::get<int64_t>(s[6]), std::get<std::string>(s[7]))};
}
const int k_conv1d = jit::register_op("conv1d", &invoke_conv<1>, jit::Effect::None);
const int k_conv2d = jit::register_op("conv2d", &invoke_conv<2>, jit::Effect::None);

void bind_conv(py::module_& m) {
  using namespace ops;
  m.def("conv2d", [](const Tensor& x, const Tensor& w, py::object b, py::object stride,
                     py::object padding, py::object dilation, int64_t groups) {
    auto [pad, mode] = padding_arg(padding, "conv2d");
    Tensor bt = opt_tensor(b, "conv2d");
    Shape s = to_shape(stride, "conv2d"), d = to_shape(dilation, "conv2d");
    ReleaseIfLarge gil(x.numel() * w.numel());
    constexpr auto lower = dispatch::CastPolicy::lower;  // Note [Precision policies]
    if (dispatch::precision::needed(lower, true, x, w, bt))
      return dispatch::precision::call(lower, true, false, [&](Tensor x, Tensor w, Tensor bt) {
        return conv2d(x, w, bt, s, pad, d, groups, mode);
      }, x, w, bt);
    return jit::record_call(k_conv2d, [&] { return jit::Stack{x, w, bt, s, pad, d, groups, mode}; },
                            [&] { return conv2d(x, w, bt, s, pad, d, groups, mode); });
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
     py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1);
  m.def("conv1d", [](const Tensor& x, const Tensor& w, py::object b, py::object stride,
                     py::object padding, py::object dilation, int64_t groups) {
    auto [pad, mode] = padding_arg(padding, "conv1d");
    Tensor bt = opt_tensor(b, "conv1d");
    Shape s = to_shape(stride, "conv1d"), d = to_shape(dilation, "conv1d");
    ReleaseIfLarge gil(x.numel() * w.numel());
    constexpr auto lower = dispatch::CastPolicy::lower;  // Note [Precision policies]
    if (dispatch::precision::needed(lower, true, x, w, bt))
      return dispatch::precision::call(lower, true, false, [&](Tensor x, Tensor w, Tensor bt) {
        return conv1d(x, w, bt, s, pad, d, groups, mode);
      }, x, w, bt);
    return jit::record_call(k_conv1d, [&] { return jit::Stack{x, w, bt, s, pad, d, groups, mode}; },
                            [&] { return conv1d(x, w, bt, s, pad, d, groups, mode); });
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
     py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1);
}

const BindingRegistrar registrar("conv", bind_conv);

}  // namespace
}  // namespace dc::py_bind
