// Sorting bindings (the Python wrappers in deepcore/_sort.py build sort/topk on argsort).
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {
void bind_sort(py::module_& m) {
  m.def("_argsort", [](const Tensor& t, int64_t dim, bool descending) {
    ReleaseIfLarge gil(t.numel());
    return ops::argsort(t, dim, descending);
  });
}
const BindingRegistrar registrar("sort", bind_sort);
}  // namespace
}  // namespace dc::py_bind
