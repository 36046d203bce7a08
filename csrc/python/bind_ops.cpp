// Op bindings: one short lambda per op, PyTorch's argument names and defaults.
#include "ops/ops.h"
#include "ops/registry.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

// dim=None -> all dims; int -> one; sequence -> several.
Shape to_dims(const py::object& dim, const char* op) {
  if (dim.is_none()) return {};
  return to_shape(dim, op);
}

std::optional<DType> opt_dtype(const py::object& d) {
  if (d.is_none()) return std::nullopt;
  return to_dtype_arg(d);
}

// Shape given either as one sequence or as varargs: zeros(2, 3) and zeros((2, 3)).
Shape varargs_shape(const py::args& args, const char* op) {
  if (args.size() == 1 && !PyLong_Check(args[0].ptr())) return to_shape(args[0], op);
  Shape s;
  for (py::handle h : args) s.push_back(to_scalar(h, op).to_int());
  return s;
}

Tensor finish(Tensor t, bool requires_grad) {
  if (requires_grad) {
    DC_CHECK(is_floating(t.dtype()), RuntimeError, "[requires_grad] only tensors of floating point "
             "dtype can require gradients, got ", dtype_name(t.dtype()));
    t.autograd_meta().requires_grad = true;
  }
  return t;
}

}  // namespace

void bind_ops(py::module_& m) {
  using namespace ops;
  // Hot ops are also bound directly as Tensor methods (a C++ method call is cheaper than a
  // Python wrapper around the module function).
  py::object cls = m.attr("Tensor");
  // ---- creation ----
  m.def("_empty", [](const Shape& s, DType d, bool rg) { return finish(empty(s, d), rg); });
  m.def("_full", [](const Shape& s, py::handle v, DType d, bool rg) {
    return finish(full(s, to_scalar(v, "full"), d), rg);
  });
  m.def("_arange", [](double a, double b, double st, DType d, bool rg) { return finish(arange(a, b, st, d), rg); });
  m.def("_linspace", [](double a, double b, int64_t n, DType d, bool rg) { return finish(linspace(a, b, n, d), rg); });
  m.def("_eye", [](int64_t n, int64_t mm, DType d, bool rg) { return finish(eye(n, mm, d), rg); });
  m.def("_rand", [](const Shape& s, DType d, bool rg) { return finish(rand(s, d), rg); });
  m.def("_randn", [](const Shape& s, DType d, bool rg) { return finish(randn(s, d), rg); });
  m.def("_randint", [](int64_t lo, int64_t hi, const Shape& s, DType d) { return randint(lo, hi, s, d); });
  m.def("randperm", [](int64_t n, py::object dtype) { return randperm(n, dtype.is_none() ? DType::Int64 : to_dtype_arg(dtype)); },
        py::arg("n"), py::kw_only(), py::arg("dtype") = py::none());
  m.def("uniform_", [](Tensor& t, double a, double b) { return uniform_(t, a, b); }, py::arg("input"), py::arg("a") = 0.0, py::arg("b") = 1.0);
  m.def("normal_", [](Tensor& t, double mean, double std) { return normal_(t, mean, std); }, py::arg("input"), py::arg("mean") = 0.0, py::arg("std") = 1.0);
  m.def("bernoulli", [](const Tensor& p) { return bernoulli(p); });
  m.def("clone", [](const Tensor& t) { return clone(t); });
  m.def("contiguous", [](const Tensor& t) { return contiguous(t); });
  m.def("_to_dtype", [](const Tensor& t, py::handle d, bool copy) { return to_dtype(t, to_dtype_arg(d), copy); });
  m.def("copy_", [](Tensor& dst, py::handle src) { return copy_(dst, to_tensor(src, "copy_")); });
  m.def("fill_", [](Tensor& t, py::handle v) { return fill_(t, to_scalar(v, "fill_")); });
  m.def("zero_", [](Tensor& t) { return zero_(t); });
  m.def("result_type", [](py::handle a, py::handle b) {
    return result_type({to_tensor(a, "result_type"), to_tensor(b, "result_type")});
  });

  // ---- elementwise ----
  m.def("add", [](py::handle a, py::handle b, py::handle alpha) {
    return add(to_tensor(a, "add"), to_tensor(b, "add"), to_scalar(alpha, "add"));
  }, py::arg("input"), py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  m.def("sub", [](py::handle a, py::handle b, py::handle alpha) {
    return sub(to_tensor(a, "sub"), to_tensor(b, "sub"), to_scalar(alpha, "sub"));
  }, py::arg("input"), py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  m.def("div", [](py::handle a, py::handle b, py::object mode) {
    return div(to_tensor(a, "div"), to_tensor(b, "div"), mode.is_none() ? "" : mode.cast<std::string>());
  }, py::arg("input"), py::arg("other"), py::kw_only(), py::arg("rounding_mode") = py::none());
#define DC_BIND_BINARY(OP)                                                              \
  m.def(#OP, [](py::handle a, py::handle b) {                                           \
    return OP(to_tensor(a, #OP), to_tensor(b, #OP));                                \
  }, py::arg("input"), py::arg("other"));                                                 \
  cls.attr(#OP) = py::cpp_function([](const Tensor& a, py::handle b) {                  \
    return OP(a, to_tensor(b, #OP));                                                  \
  }, py::name(#OP), py::is_method(cls), py::arg("other"));
  DC_BIND_BINARY(mul) DC_BIND_BINARY(floor_divide) DC_BIND_BINARY(remainder) DC_BIND_BINARY(fmod)
  DC_BIND_BINARY(pow) DC_BIND_BINARY(maximum) DC_BIND_BINARY(minimum) DC_BIND_BINARY(atan2)
  DC_BIND_BINARY(eq) DC_BIND_BINARY(ne) DC_BIND_BINARY(lt) DC_BIND_BINARY(le) DC_BIND_BINARY(gt)
  DC_BIND_BINARY(ge) DC_BIND_BINARY(logical_and) DC_BIND_BINARY(logical_or)
  DC_BIND_BINARY(logical_xor) DC_BIND_BINARY(bitwise_and) DC_BIND_BINARY(bitwise_or)
  DC_BIND_BINARY(bitwise_xor)
#undef DC_BIND_BINARY
  m.def("add_", [](Tensor& a, py::handle b, py::handle alpha) { return add_(a, to_tensor(b, "add_"), to_scalar(alpha, "add_")); },
        py::arg("input"), py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  m.def("sub_", [](Tensor& a, py::handle b, py::handle alpha) { return sub_(a, to_tensor(b, "sub_"), to_scalar(alpha, "sub_")); },
        py::arg("input"), py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  m.def("mul_", [](Tensor& a, py::handle b) { return mul_(a, to_tensor(b, "mul_")); });
  m.def("div_", [](Tensor& a, py::handle b) { return div_(a, to_tensor(b, "div_")); });
  m.def("pow_", [](Tensor& a, py::handle b) { return pow_(a, to_tensor(b, "pow_")); });
  m.def("logical_not", [](const Tensor& a) { return logical_not(a); });
  m.def("isnan", [](const Tensor& a) { return isnan(a); });
  m.def("isinf", [](const Tensor& a) { return isinf(a); });
  m.def("isfinite", [](const Tensor& a) { return isfinite(a); });
  m.def("where", [](const Tensor& c, py::handle a, py::handle b) {
    return where(c, to_tensor(a, "where"), to_tensor(b, "where"));
  }, py::arg("condition"), py::arg("input"), py::arg("other"));
#define DC_BIND_UNARY(OP)                                                               \
  m.def(#OP, [](const Tensor& a) {                                                      \
    ReleaseIfLarge gil(a.numel());                                                        \
    return OP(a);                                                                       \
  }, py::arg("input"));                                                                   \
  m.def(#OP "_", [](Tensor& a) { return OP##_(a); }, py::arg("input"));               \
  cls.attr(#OP) = py::cpp_function([](const Tensor& a) {                                \
    ReleaseIfLarge gil(a.numel());                                                        \
    return OP(a);                                                                       \
  }, py::name(#OP), py::is_method(cls));                                                \
  cls.attr(#OP "_") = py::cpp_function([](Tensor& a) { return OP##_(a); },            \
                                         py::name(#OP "_"), py::is_method(cls));
  DC_OPS_UNARY_DECL(DC_BIND_UNARY)
#undef DC_BIND_UNARY
  m.def("gelu", [](const Tensor& a, const std::string& approximate) { return gelu(a, approximate); },
        py::arg("input"), py::arg("approximate") = "none");
  m.def("softplus", [](const Tensor& a, double beta, double threshold) { return softplus(a, beta, threshold); },
        py::arg("input"), py::arg("beta") = 1.0, py::arg("threshold") = 20.0);
  m.def("leaky_relu", [](const Tensor& a, double s) { return leaky_relu(a, s); },
        py::arg("input"), py::arg("negative_slope") = 0.01);
  m.def("leaky_relu_", [](Tensor& a, double s) { return leaky_relu_(a, s); },
        py::arg("input"), py::arg("negative_slope") = 0.01);
  m.def("elu", [](const Tensor& a, double alpha) { return elu(a, alpha); }, py::arg("input"), py::arg("alpha") = 1.0);
  m.def("selu", [](const Tensor& a) { return selu(a); });
  m.def("celu", [](const Tensor& a, double alpha) { return celu(a, alpha); }, py::arg("input"), py::arg("alpha") = 1.0);
  m.def("hardtanh", [](const Tensor& a, double lo, double hi) { return hardtanh(a, lo, hi); },
        py::arg("input"), py::arg("min_val") = -1.0, py::arg("max_val") = 1.0);
  m.def("relu6", [](const Tensor& a) { return relu6(a); });
  m.def("hardsigmoid", [](const Tensor& a) { return hardsigmoid(a); });
  m.def("hardswish", [](const Tensor& a) { return hardswish(a); });
  m.def("logsigmoid", [](const Tensor& a) { return logsigmoid(a); });
  auto clamp_impl = [](Tensor a, py::object lo, py::object hi, bool inplace) -> Tensor {
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
  };
  m.def("clamp", [clamp_impl](const Tensor& a, py::object lo, py::object hi) { return clamp_impl(a, lo, hi, false); },
        py::arg("input"), py::arg("min") = py::none(), py::arg("max") = py::none());
  m.def("clamp_", [clamp_impl](const Tensor& a, py::object lo, py::object hi) { return clamp_impl(a, lo, hi, true); },
        py::arg("input"), py::arg("min") = py::none(), py::arg("max") = py::none());

  // ---- shape ----
  m.def("_view", [](const Tensor& t, const Shape& s) { return view(t, s); });
  m.def("_reshape", [](const Tensor& t, const Shape& s) { return reshape(t, s); });
  m.def("_permute", [](const Tensor& t, const Shape& s) { return permute(t, s); });
  m.def("_expand", [](const Tensor& t, const Shape& s) { return expand(t, s); });
  m.def("_repeat", [](const Tensor& t, const Shape& s) { return repeat(t, s); });
  m.def("as_strided", [](const Tensor& t, const Shape& size, const Shape& stride, py::object off) {
    return as_strided(t, size, stride, off.is_none() ? t.offset() : off.cast<int64_t>());
  }, py::arg("input"), py::arg("size"), py::arg("stride"), py::arg("storage_offset") = py::none());
  m.def("transpose", [](const Tensor& t, int64_t a, int64_t b) { return transpose(t, a, b); },
        py::arg("input"), py::arg("dim0"), py::arg("dim1"));
  m.def("swapaxes", [](const Tensor& t, int64_t a, int64_t b) { return transpose(t, a, b); });
  m.def("t", [](const Tensor& t) {
    DC_CHECK(t.dim() <= 2, ValueError, "[t] expects a tensor with <= 2 dimensions, got ", t.shape_str());
    return t_(t);
  });
  m.def("_T", [](const Tensor& t) { return t_(t); });
  m.def("squeeze", [](const Tensor& t, py::object dim) -> Tensor {
    if (dim.is_none()) return squeeze(t);
    Tensor r = t;
    Shape dims = to_shape(dim, "squeeze");
    for (auto& d : dims) d = wrap_dim(d, t.dim(), "squeeze");
    std::sort(dims.rbegin(), dims.rend());
    for (int64_t d : dims) r = squeeze_dim(r, d);
    return r;
  }, py::arg("input"), py::arg("dim") = py::none());
  m.def("unsqueeze", [](const Tensor& t, int64_t d) { return unsqueeze(t, d); }, py::arg("input"), py::arg("dim"));
  m.def("flatten", [](const Tensor& t, int64_t s, int64_t e) { return flatten(t, s, e); },
        py::arg("input"), py::arg("start_dim") = 0, py::arg("end_dim") = -1);
  m.def("unflatten", [](const Tensor& t, int64_t d, py::handle s) { return unflatten(t, d, to_shape(s, "unflatten")); },
        py::arg("input"), py::arg("dim"), py::arg("sizes"));
  m.def("_slice", [](const Tensor& t, int64_t d, int64_t s, int64_t e, int64_t st) { return slice(t, d, s, e, st); });
  m.def("select", [](const Tensor& t, int64_t d, int64_t i) { return select(t, d, i); },
        py::arg("input"), py::arg("dim"), py::arg("index"));
  m.def("narrow", [](const Tensor& t, int64_t d, int64_t s, int64_t l) { return narrow(t, d, s, l); },
        py::arg("input"), py::arg("dim"), py::arg("start"), py::arg("length"));
  m.def("split", [](const Tensor& t, py::handle s, int64_t d) {
    if (PyLong_Check(s.ptr())) return split(t, s.cast<int64_t>(), d);
    return split_sizes(t, to_shape(s, "split"), d);
  }, py::arg("tensor"), py::arg("split_size_or_sections"), py::arg("dim") = 0);
  m.def("chunk", [](const Tensor& t, int64_t c, int64_t d) { return chunk(t, c, d); },
        py::arg("input"), py::arg("chunks"), py::arg("dim") = 0);
  m.def("unbind", [](const Tensor& t, int64_t d) { return unbind(t, d); }, py::arg("input"), py::arg("dim") = 0);
  m.def("cat", [](const std::vector<Tensor>& ts, int64_t d) { return cat(ts, d); },
        py::arg("tensors"), py::arg("dim") = 0);
  m.def("stack", [](const std::vector<Tensor>& ts, int64_t d) { return stack(ts, d); },
        py::arg("tensors"), py::arg("dim") = 0);
  m.def("flip", [](const Tensor& t, py::handle dims) { return flip(t, to_shape(dims, "flip")); },
        py::arg("input"), py::arg("dims"));
  m.def("tril", [](const Tensor& t, int64_t d) { return tril(t, d); }, py::arg("input"), py::arg("diagonal") = 0);
  m.def("triu", [](const Tensor& t, int64_t d) { return triu(t, d); }, py::arg("input"), py::arg("diagonal") = 0);

  // ---- reductions (sum/mean here; the rest in bind_reduce.cpp) ----
  m.def("sum", [](const Tensor& t, py::object dim, bool keepdim, py::object dtype) {
    const Shape dims = to_dims(dim, "sum");  // Python calls: before the GIL is released
    const auto dt = opt_dtype(dtype);
    ReleaseIfLarge gil(t.numel());
    return sum(t, dims, keepdim, dt);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false, py::kw_only(),
     py::arg("dtype") = py::none());
  cls.attr("sum") = py::cpp_function([](const Tensor& t, py::object dim, bool keepdim, py::object dtype) {
    const Shape dims = to_dims(dim, "sum");
    const auto dt = opt_dtype(dtype);
    ReleaseIfLarge gil(t.numel());
    return sum(t, dims, keepdim, dt);
  }, py::name("sum"), py::is_method(cls), py::arg("dim") = py::none(), py::arg("keepdim") = false,
     py::kw_only(), py::arg("dtype") = py::none());
  m.def("mean", [](const Tensor& t, py::object dim, bool keepdim, py::object dtype) {
    Tensor x = dtype.is_none() ? t : to_dtype(t, to_dtype_arg(dtype));
    return mean(x, to_dims(dim, "mean"), keepdim);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false, py::kw_only(),
     py::arg("dtype") = py::none());

  // ---- linalg ----
  m.def("matmul", [](const Tensor& a, const Tensor& b) {
    ReleaseIfLarge gil(a.numel() * (b.dim() ? b.sizes().back() : 1));
    return matmul(a, b);
  }, py::arg("input"), py::arg("other"));
  m.def("mm", [](const Tensor& a, const Tensor& b) { return mm(a, b); }, py::arg("input"), py::arg("mat2"));
  m.def("bmm", [](const Tensor& a, const Tensor& b) { return bmm(a, b); }, py::arg("input"), py::arg("mat2"));
  m.def("mv", [](const Tensor& a, const Tensor& v) { return mv(a, v); }, py::arg("input"), py::arg("vec"));
  m.def("dot", [](const Tensor& a, const Tensor& b) { return dot(a, b); }, py::arg("input"), py::arg("other"));
  m.def("outer", [](const Tensor& a, const Tensor& b) { return outer(a, b); }, py::arg("input"), py::arg("vec2"));
  m.def("addmm", [](const Tensor& in, const Tensor& a, const Tensor& b, double beta, double alpha) {
    return addmm(in, a, b, beta, alpha);
  }, py::arg("input"), py::arg("mat1"), py::arg("mat2"), py::kw_only(), py::arg("beta") = 1.0, py::arg("alpha") = 1.0);
  m.def("linear", [](const Tensor& x, const Tensor& w, py::object b) {
    const Tensor bias = b.is_none() ? Tensor() : b.cast<Tensor>();  // needs the GIL
    ReleaseIfLarge gil(x.numel() * w.sizes()[0]);
    return linear(x, w, bias);
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none());
}

}  // namespace dc::py_bind

namespace dc::py_bind {
namespace {
void bind_registry(py::module_& m) {
  m.def("_op_registry", [] {
    py::list out;
    for (const auto& op : ops::op_registry()) {
      py::dict d;
      d["name"] = op.name;
      d["family"] = op.family;
      d["differentiable"] = op.grad == ops::Grad::differentiable;
      d["cpu"] = op.cpu;
      d["cuda"] = op.cuda;
      out.append(d);
    }
    return out;
  });
}
const BindingRegistrar registrar("registry", bind_registry);
}  // namespace
}  // namespace dc::py_bind
