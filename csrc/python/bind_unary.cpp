// Hand-written unary bindings (csrc/ops/ops.schema rows marked manual): clamp's bounds are
// numbers or tensors, and the two take different C++ ops.
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

Tensor clamp_impl(Tensor a, const py::object& lo, const py::object& hi, bool inplace) {
  using namespace ops;
  if ((!lo.is_none() && is_tensor(lo)) || (!hi.is_none() && is_tensor(hi))) {
    DC_CHECK(!inplace, TypeError, "[clamp_] tensor bounds are not supported in place");
    return clamp_tensor(a, lo.is_none() ? Tensor() : to_tensor(lo, "clamp"),
                        hi.is_none() ? Tensor() : to_tensor(hi, "clamp"));
  }
  std::optional<Scalar> l, h;
  if (!lo.is_none()) l = to_scalar(lo, "clamp");
  if (!hi.is_none()) h = to_scalar(hi, "clamp");
  if (inplace) return clamp_(a, l ? &*l : nullptr, h ? &*h : nullptr);
  return clamp(a, l ? &*l : nullptr, h ? &*h : nullptr);
}

void bind_unary(py::module_& m) {
  m.def("clamp", [](const Tensor& a, py::object lo, py::object hi) {
    return clamp_impl(a, lo, hi, false);
  }, py::arg("input"), py::arg("min") = py::none(), py::arg("max") = py::none());
  m.def("clamp_", [](const Tensor& a, py::object lo, py::object hi) {
    return clamp_impl(a, lo, hi, true);
  }, py::arg("input"), py::arg("min") = py::none(), py::arg("max") = py::none());
}

const BindingRegistrar registrar("unary", bind_unary);

}  // namespace
}  // namespace dc::py_bind
