// Hand-written reduction bindings (csrc/ops/ops.schema rows marked manual): all/any with
// dim=() reduce nothing in PyTorch, which a converted dim list can no longer tell from None.
#include "jit/graph.h"
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

bool reduces_nothing(const py::object& dim) {
  return py::isinstance<py::sequence>(dim) && py::len(dim) == 0;
}

template <Tensor (*Op)(const Tensor&, const Shape&, bool)>
Tensor all_any_dims(const Tensor& t, const Shape& dims, bool keepdim, bool nothing) {
  if (nothing) return ops::ne(t, ops::wrap_scalar(Scalar(int64_t(0))));
  return Op(t, dims, keepdim);
}

// Boxed forms for the tracer (Note [Traced graphs] in jit/graph.h).
template <Tensor (*Op)(const Tensor&, const Shape&, bool)>
tensor_list invoke_all_any(jit::Stack& s) {
  return {all_any_dims<Op>(std::get<Tensor>(s[0]), std::get<Shape>(s[1]), std::get<bool>(s[2]),
                           std::get<bool>(s[3]))};
}
const int k_all = jit::register_op("all", &invoke_all_any<ops::all>, jit::Effect::None);
const int k_any = jit::register_op("any", &invoke_all_any<ops::any>, jit::Effect::None);

template <Tensor (*Op)(const Tensor&, const Shape&, bool)>
Tensor all_any(const Tensor& t, const py::object& dim, bool keepdim, const char* op, int id) {
  const bool nothing = reduces_nothing(dim);
  const Shape dims = nothing || dim.is_none() ? Shape{} : to_shape(dim, op);
  ReleaseIfLarge gil(t.numel());
  return jit::record_call(id, [&] { return jit::Stack{t, dims, keepdim, nothing}; },
                          [&] { return all_any_dims<Op>(t, dims, keepdim, nothing); });
}

void bind_reduce(py::module_& m) {
  m.def("all", [](const Tensor& t, py::object dim, bool keepdim) {
    return all_any<ops::all>(t, dim, keepdim, "all", k_all);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("any", [](const Tensor& t, py::object dim, bool keepdim) {
    return all_any<ops::any>(t, dim, keepdim, "any", k_any);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
}

const BindingRegistrar reg("reduce", bind_reduce);

}  // namespace
}  // namespace dc::py_bind
