// Indexing op bindings: PyTorch's names, argument names and defaults.
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

// An index argument: a tensor, a NumPy array, a list or an int. An empty list means "no
// indices" (int64), not an empty float tensor.
Tensor index_arg(py::handle obj, const char* op) {
  Tensor t = to_tensor(obj, op);
  if (!is_tensor(obj) && t.numel() == 0 && is_floating(t.dtype()))
    t = ops::to_dtype(t, DType::Int64);
  return t;
}

// A list of indices for index/index_put_: None is a full slice.
tensor_list index_list(py::handle obj, const char* op) {
  DC_CHECK(py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj), TypeError, "[",
           op, "] indices must be a sequence of tensors or None");
  tensor_list out;
  for (py::handle h : obj) out.push_back(h.is_none() ? Tensor() : index_arg(h, op));
  return out;
}

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
  if (is_number(s))
    return ops::expand(ops::scalar_tensor(to_scalar(s, op), t.dtype()), index.sizes());
  return to_tensor(s, op);
}

// masked_fill's value: a number (cast to t's dtype) or a 0-d tensor.
Tensor fill_value(const Tensor& t, py::handle value, const char* op) {
  if (is_tensor(value)) return value.cast<Tensor>();
  return ops::scalar_tensor(to_scalar(value, op), t.dtype());
}

void bind_index(py::module_& m) {
  using namespace ops;
  m.def("index_select", [](const Tensor& t, int64_t dim, py::handle index) {
    return index_select(t, dim, index_arg(index, "index_select"));
  }, py::arg("input"), py::arg("dim"), py::arg("index"));
  m.def("index_add", [](const Tensor& t, int64_t dim, py::handle index, const Tensor& source,
                        py::handle alpha) {
    return index_add(t, dim, index_arg(index, "index_add"), source, to_scalar(alpha, "index_add"));
  }, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("source"), py::kw_only(),
     py::arg("alpha") = 1);
  m.def("index_add_", [](Tensor& t, int64_t dim, py::handle index, const Tensor& source,
                         py::handle alpha) {
    return index_add_(t, dim, index_arg(index, "index_add_"), source,
                      to_scalar(alpha, "index_add_"));
  }, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("source"), py::kw_only(),
     py::arg("alpha") = 1);
  m.def("gather", [](const Tensor& t, int64_t dim, py::handle index, bool) {
    Tensor idx = index_arg(index, "gather");
    ReleaseIfLarge gil(idx.numel());
    return gather(t, dim, idx);
  }, py::arg("input"), py::arg("dim"), py::arg("index"), py::kw_only(),
     py::arg("sparse_grad") = false);
  m.def("take_along_dim", [](const Tensor& t, py::handle index, std::optional<int64_t> dim) {
    return take_along_dim(t, index_arg(index, "take_along_dim"), dim);
  }, py::arg("input"), py::arg("indices"), py::arg("dim") = py::none());

  // scatter(input, dim, index, src) and scatter(input, dim, index, value=number).
  m.def("scatter", [](const Tensor& t, int64_t dim, py::handle index, py::handle src,
                      py::handle value) {
    Tensor idx = index_arg(index, "scatter");
    return scatter(t, dim, idx, scatter_src(t, idx, src, value, "scatter"));
  }, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("src") = py::none(),
     py::kw_only(), py::arg("value") = py::none());
  m.def("scatter_", [](Tensor& t, int64_t dim, py::handle index, py::handle src,
                       py::handle value) {
    Tensor idx = index_arg(index, "scatter_");
    return scatter_(t, dim, idx, scatter_src(t, idx, src, value, "scatter_"));
  }, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("src") = py::none(),
     py::kw_only(), py::arg("value") = py::none());
  m.def("scatter_add", [](const Tensor& t, int64_t dim, py::handle index, const Tensor& src) {
    return scatter_add(t, dim, index_arg(index, "scatter_add"), src);
  }, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("src"));
  m.def("scatter_add_", [](Tensor& t, int64_t dim, py::handle index, const Tensor& src) {
    return scatter_add_(t, dim, index_arg(index, "scatter_add_"), src);
  }, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("src"));

  m.def("masked_fill", [](const Tensor& t, py::handle mask, py::handle value) {
    return masked_fill(t, to_tensor(mask, "masked_fill"), fill_value(t, value, "masked_fill"));
  }, py::arg("input"), py::arg("mask"), py::arg("value"));
  m.def("masked_fill_", [](Tensor& t, py::handle mask, py::handle value) {
    return masked_fill_(t, to_tensor(mask, "masked_fill_"), fill_value(t, value, "masked_fill_"));
  }, py::arg("input"), py::arg("mask"), py::arg("value"));
  m.def("masked_select", [](const Tensor& t, py::handle mask) {
    return masked_select(t, to_tensor(mask, "masked_select"));
  }, py::arg("input"), py::arg("mask"));
  m.def("nonzero", [](const Tensor& t, bool as_tuple) -> py::object {
    if (!as_tuple) return py::cast(nonzero(t));
    // One 1-d tensor per dim (a 0-d input counts as 1-d, like PyTorch).
    const Tensor nz = nonzero(t.dim() == 0 ? reshape(t, {1}) : t);
    py::tuple out(nz.sizes()[1]);
    for (int64_t k = 0; k < nz.sizes()[1]; ++k) out[k] = py::cast(contiguous(select(nz, 1, k)));
    return out;
  }, py::arg("input"), py::kw_only(), py::arg("as_tuple") = false);

  m.def("embedding", [](const Tensor& weight, py::handle indices, int64_t padding_idx) {
    return embedding(weight, index_arg(indices, "embedding"), padding_idx);
  }, py::arg("weight"), py::arg("input"), py::arg("padding_idx") = -1);
  m.def("one_hot", [](py::handle t, int64_t num_classes) {
    return one_hot(index_arg(t, "one_hot"), num_classes);
  }, py::arg("tensor"), py::arg("num_classes") = -1);

  m.def("index", [](const Tensor& t, py::handle indices) {
    return index(t, index_list(indices, "index"));
  }, py::arg("input"), py::arg("indices"));
  m.def("index_put_", [](Tensor& t, py::handle indices, py::handle values, bool accumulate) {
    return index_put_(t, index_list(indices, "index_put_"), to_tensor(values, "index_put_"),
                      accumulate);
  }, py::arg("input"), py::arg("indices"), py::arg("values"), py::arg("accumulate") = false);
  m.def("index_put", [](const Tensor& t, py::handle indices, py::handle values, bool accumulate) {
    return index_put(t, index_list(indices, "index_put"), to_tensor(values, "index_put"),
                     accumulate);
  }, py::arg("input"), py::arg("indices"), py::arg("values"), py::arg("accumulate") = false);
}

const BindingRegistrar registrar("index", bind_index);

}  // namespace
}  // namespace dc::py_bind
