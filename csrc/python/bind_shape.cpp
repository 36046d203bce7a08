// Hand-written shape bindings (csrc/ops/ops.schema rows marked manual): t() refuses > 2 dims
// where .T does not, squeeze takes None, an int or several dims, split an int or a list.
#include <algorithm>

#include "jit/graph.h"
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

// Boxed forms for the tracer (Note [Traced graphs] in jit/graph.h).
Tensor squeeze_dims(const Tensor& t, const Shape& dims, bool all) {
  if (all) return ops::squeeze(t);
  Tensor r = t;
  for (int64_t d : dims) r = ops::squeeze_dim(r, d);
  return r;
}
tensor_list split_any(const Tensor& t, const Shape& sizes, int64_t d, bool by_size) {
  return by_size ? ops::split(t, sizes[0], d) : ops::split_sizes(t, sizes, d);
}
tensor_list invoke_t(jit::Stack& s) { return {ops::t_(std::get<Tensor>(s[0]))}; }
tensor_list invoke_squeeze(jit::Stack& s) {
  return {squeeze_dims(std::get<Tensor>(s[0]), std::get<Shape>(s[1]), std::get<bool>(s[2]))};
}
tensor_list invoke_split(jit::Stack& s) {
  return split_any(std::get<Tensor>(s[0]), std::get<Shape>(s[1]), std::get<int64_t>(s[2]),
                   std::get<bool>(s[3]));
}
const int k_t = jit::register_op("t", &invoke_t, jit::Effect::None);
const int k_squeeze = jit::register_op("squeeze", &invoke_squeeze, jit::Effect::None);
const int k_split = jit::register_op("split", &invoke_split, jit::Effect::None);

void bind_shape(py::module_& m) {
  using namespace ops;
  m.def("t", [](const Tensor& t) {
    DC_CHECK(t.dim() <= 2, ValueError, "[t] expects a tensor with <= 2 dimensions, got ",
             t.shape_str());
    return jit::record_call(k_t, [&] { return jit::Stack{t}; }, [&] { return t_(t); });
  }, py::arg("input"));
  m.def("squeeze", [](const Tensor& t, py::object dim) -> Tensor {
    if (dim.is_none())
      return jit::record_call(k_squeeze, [&] { return jit::Stack{t, Shape{}, true}; },
                              [&] { return squeeze(t); });
    Shape dims = to_shape(dim, "squeeze");
    for (auto& d : dims) d = wrap_dim_scalar_ok(d, t.dim(), "squeeze");
    std::sort(dims.rbegin(), dims.rend());
    const auto repeated = std::adjacent_find(dims.begin(), dims.end());
    DC_CHECK(repeated == dims.end(), ValueError, "[squeeze] dim ", *repeated,
             " appears multiple times in dims ", shape_str(to_shape(dim, "squeeze")),
             " for input ", t.shape_str());
    return jit::record_call(k_squeeze, [&] { return jit::Stack{t, dims, false}; },
                            [&] { return squeeze_dims(t, dims, false); });
  }, py::arg("input"), py::arg("dim") = py::none());
  m.def("split", [](const Tensor& t, py::handle s, int64_t d) {
    const bool by_size = PyLong_Check(s.ptr());
    const Shape sizes = by_size ? Shape{s.cast<int64_t>()} : to_shape(s, "split");
    return jit::record_call(k_split, [&] { return jit::Stack{t, sizes, d, by_size}; },
                            [&] { return split_any(t, sizes, d, by_size); });
  }, py::arg("tensor"), py::arg("split_size_or_sections"), py::arg("dim") = 0);
}

const BindingRegistrar registrar("shape", bind_shape);

}  // namespace
}  // namespace dc::py_bind
