// Hand-written unary bindings (csrc/ops/ops.schema rows marked manual): clamp's bounds are
// numbers or tensors, and the two take different C++ ops.
#include "jit/graph.h"
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

Tensor clamp_scalars(Tensor a, const std::optional<Scalar>& l, const std::optional<Scalar>& h,
                     bool inplace) {
  if (inplace) return ops::clamp_(a, l ? &*l : nullptr, h ? &*h : nullptr);
  return ops::clamp(a, l ? &*l : nullptr, h ? &*h : nullptr);
}

// Boxed forms for the tracer (Note [Traced graphs] in jit/graph.h).
tensor_list invoke_clamp_tensor(jit::Stack& s) {
  return {ops::clamp_tensor(std::get<Tensor>(s[0]), std::get<Tensor>(s[1]),
                            std::get<Tensor>(s[2]))};
}
template <bool Inplace>
tensor_list invoke_clamp(jit::Stack& s) {
  return {clamp_scalars(std::get<Tensor>(s[0]), std::get<std::optional<Scalar>>(s[1]),
                        std::get<std::optional<Scalar>>(s[2]), Inplace)};
}
const int k_clamp_tensor =
    jit::register_op("clamp_tensor", &invoke_clamp_tensor, jit::Effect::None);
const int k_clamp = jit::register_op("clamp", &invoke_clamp<false>, jit::Effect::None);
const int k_clamp_ = jit::register_op("clamp_", &invoke_clamp<true>);

Tensor clamp_impl(Tensor a, const py::object& lo, const py::object& hi, bool inplace) {
  if ((!lo.is_none() && is_tensor(lo)) || (!hi.is_none() && is_tensor(hi))) {
    DC_CHECK(!inplace, TypeError, "[clamp_] tensor bounds are not supported in place");
    jit::Record rec(k_clamp_tensor);
    const Tensor l = lo.is_none() ? Tensor() : to_tensor(lo, "clamp");
    const Tensor h = hi.is_none() ? Tensor() : to_tensor(hi, "clamp");
    Tensor r = ops::clamp_tensor(a, l, h);
    if (rec) rec.finish({a, l, h}, {r});
    return r;
  }
  std::optional<Scalar> l, h;
  if (!lo.is_none()) l = to_scalar(lo, "clamp");
  if (!hi.is_none()) h = to_scalar(hi, "clamp");
  return jit::record_call(inplace ? k_clamp_ : k_clamp, [&] { return jit::Stack{a, l, h}; },
                          [&] { return clamp_scalars(a, l, h, inplace); });
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
