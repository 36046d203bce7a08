// Hand-written reduction bindings (csrc/ops/ops.schema rows marked manual): all/any with
// dim=() reduce nothing in PyTorch, which a converted dim list can no longer tell from None.
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

bool reduces_nothing(const py::object& dim) {
  return py::isinstance<py::sequence>(dim) && py::len(dim) == 0;
}

template <Tensor (*Op)(const Tensor&, const Shape&, bool)>
Tensor all_any(const Tensor& t, const py::object& dim, bool keepdim, const char* op) {
  if (reduces_nothing(dim)) return ops::ne(t, ops::wrap_scalar(Scalar(int64_t(0))));
  const Shape dims = dim.is_none() ? Shape{} : to_shape(dim, op);
  ReleaseIfLarge gil(t.numel());
  return Op(t, dims, keepdim);
}

void bind_reduce(py::module_& m) {
  m.def("all", [](const Tensor& t, py::object dim, bool keepdim) {
    return all_any<ops::all>(t, dim, keepdim, "all");
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("any", [](const Tensor& t, py::object dim, bool keepdim) {
    return all_any<ops::any>(t, dim, keepdim, "any");
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
}

const BindingRegistrar reg("reduce", bind_reduce);

}  // namespace
}  // namespace dc::py_bind
