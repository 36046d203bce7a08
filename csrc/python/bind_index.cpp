// Hand-written indexing bindings (csrc/ops/ops.schema rows marked manual): scatter takes a
// tensor src or a number value, masked_fill a number or a 0-d tensor, and nonzero returns a
// tensor or a tuple.
#include "jit/graph.h"
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

bool is_number(py::handle obj) {
  return !is_tensor(obj) && !py::isinstance<py::sequence>(obj) && !py::isinstance<py::array>(obj) &&
         (PyBool_Check(obj.ptr()) || PyLong_Check(obj.ptr()) || PyFloat_Check(obj.ptr()) ||
          py::hasattr(obj, "__float__") || py::hasattr(obj, "__index__"));
}

// scatter's src: a tensor, or a number broadcast over the index (value=...).
Tensor scatter_src(const Tensor& t, const Tensor& index, py::handle src, py::handle value,
                   const char* op) {
  py::handle s = src.is_none() ? value : src;
  DC_CHECK(!s.is_none(), TypeError, "[", op, "] expected src (a tensor) or value (a number)");
  if (is_number(s)) {
    DeviceGuard on(t.device());  // the number becomes a tensor on t's device, meta included
    return ops::expand(ops::scalar_tensor(to_scalar(s, op), t.dtype()), index.sizes());
  }
  return to_tensor(s, op);
}

// masked_fill's value: a number or a 0-d tensor. A number stays a wrapped number, so the op
// can refuse one that does not fit t's dtype (Note [Scalars out of range] in core/scalar.h).
Tensor fill_value(const Tensor&, py::handle value, const char* op) {
  if (is_tensor(value)) return value.cast<Tensor>();
  return ops::wrap_scalar(to_scalar(value, op));
}

// Boxed forms for the tracer (Note [Traced graphs] in jit/graph.h).
template <bool Inplace>
tensor_list invoke_scatter(jit::Stack& s) {
  Tensor& t = std::get<Tensor>(s[0]);
  const int64_t dim = std::get<int64_t>(s[1]);
  if (Inplace) return {ops::scatter_(t, dim, std::get<Tensor>(s[2]), std::get<Tensor>(s[3]))};
  return {ops::scatter(t, dim, std::get<Tensor>(s[2]), std::get<Tensor>(s[3]))};
}
template <bool Inplace>
tensor_list invoke_masked_fill(jit::Stack& s) {
  Tensor& t = std::get<Tensor>(s[0]);
  if (Inplace) return {ops::masked_fill_(t, std::get<Tensor>(s[1]), std::get<Tensor>(s[2]))};
  return {ops::masked_fill(t, std::get<Tensor>(s[1]), std::get<Tensor>(s[2]))};
}
const int k_scatter = jit::register_op("scatter", &invoke_scatter<false>, jit::Effect::None);
const int k_scatter_ = jit::register_op("scatter_", &invoke_scatter<true>);
const int k_masked_fill =
    jit::register_op("masked_fill", &invoke_masked_fill<false>, jit::Effect::None);
const int k_masked_fill_ = jit::register_op("masked_fill_", &invoke_masked_fill<true>);

void bind_index(py::module_& m) {
  using namespace ops;
  m.def("scatter", [](const Tensor& t, int64_t dim, py::handle index, py::handle src,
                      py::handle value) {
    jit::Record rec(k_scatter);  // converting a number src makes a tensor
    const Tensor idx = to_index_tensor(index, "scatter");
    const Tensor s = scatter_src(t, idx, src, value, "scatter");
    Tensor r = scatter(t, dim, idx, s);
    if (rec) rec.finish({t, dim, idx, s}, {r});
    return r;
  }, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("src") = py::none(),
     py::kw_only(), py::arg("value") = py::none());
  m.def("scatter_", [](Tensor& t, int64_t dim, py::handle index, py::handle src,
                       py::handle value) {
    jit::Record rec(k_scatter_);
    const Tensor idx = to_index_tensor(index, "scatter_");
    const Tensor s = scatter_src(t, idx, src, value, "scatter_");
    Tensor r = scatter_(t, dim, idx, s);
    if (rec) rec.finish({t, dim, idx, s}, {r});
    return r;
  }, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("src") = py::none(),
     py::kw_only(), py::arg("value") = py::none());

  m.def("masked_fill", [](const Tensor& t, py::handle mask, py::handle value) {
    jit::Record rec(k_masked_fill);
    const Tensor mk = to_tensor(mask, "masked_fill"), v = fill_value(t, value, "masked_fill");
    Tensor r = masked_fill(t, mk, v);
    if (rec) rec.finish({t, mk, v}, {r});
    return r;
  }, py::arg("input"), py::arg("mask"), py::arg("value"));
  m.def("masked_fill_", [](Tensor& t, py::handle mask, py::handle value) {
    jit::Record rec(k_masked_fill_);
    const Tensor mk = to_tensor(mask, "masked_fill_"), v = fill_value(t, value, "masked_fill_");
    Tensor r = masked_fill_(t, mk, v);
    if (rec) rec.finish({t, mk, v}, {r});
    return r;
  }, py::arg("input"), py::arg("mask"), py::arg("value"));
  m.def("nonzero", [](const Tensor& t, bool as_tuple) -> py::object {
    // Not recorded: the op itself breaks a trace (its result's shape depends on the values).
    jit::Record quiet(-1);
    if (!as_tuple) return py::cast(nonzero(t));
    // One 1-d tensor per dim (a 0-d input counts as 1-d, like PyTorch).
    const Tensor nz = nonzero(t.dim() == 0 ? reshape(t, {1}) : t);
    py::tuple out(nz.sizes()[1]);
    for (int64_t k = 0; k < nz.sizes()[1]; ++k) out[k] = py::cast(contiguous(select(nz, 1, k)));
    return out;
  }, py::arg("input"), py::kw_only(), py::arg("as_tuple") = false);
}

const BindingRegistrar registrar("index", bind_index);

}  // namespace
}  // namespace dc::py_bind
