// Hand-written shape bindings (csrc/ops/ops.schema rows marked manual): t() refuses > 2 dims
// where .T does not, squeeze takes None, an int or several dims, split an int or a list.
#include <algorithm>

#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

void bind_shape(py::module_& m) {
  using namespace ops;
  m.def("t", [](const Tensor& t) {
    DC_CHECK(t.dim() <= 2, ValueError, "[t] expects a tensor with <= 2 dimensions, got ",
             t.shape_str());
    return t_(t);
  }, py::arg("input"));
  m.def("squeeze", [](const Tensor& t, py::object dim) -> Tensor {
    if (dim.is_none()) return squeeze(t);
    Tensor r = t;
    Shape dims = to_shape(dim, "squeeze");
    for (auto& d : dims) d = wrap_dim_scalar_ok(d, t.dim(), "squeeze");
    std::sort(dims.rbegin(), dims.rend());
    const auto repeated = std::adjacent_find(dims.begin(), dims.end());
    DC_CHECK(repeated == dims.end(), ValueError, "[squeeze] dim ", *repeated,
             " appears multiple times in dims ", shape_str(to_shape(dim, "squeeze")),
             " for input ", t.shape_str());
    for (int64_t d : dims) r = squeeze_dim(r, d);
    return r;
  }, py::arg("input"), py::arg("dim") = py::none());
  m.def("split", [](const Tensor& t, py::handle s, int64_t d) {
    if (PyLong_Check(s.ptr())) return split(t, s.cast<int64_t>(), d);
    return split_sizes(t, to_shape(s, "split"), d);
  }, py::arg("tensor"), py::arg("split_size_or_sections"), py::arg("dim") = 0);
}

const BindingRegistrar registrar("shape", bind_shape);

}  // namespace
}  // namespace dc::py_bind
