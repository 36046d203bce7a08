// The tracer's Python face (Note [Traced graphs] in jit/graph.h): starting and ending a
// trace, the Graph object deepcore.jit replays, and the nodes of the calls that are not ops
// (autograd, .grad) but that a training step needs in its graph.
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "jit/graph.h"
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {

tensor_list as_list(py::handle obj, const char* op);

jit::Stack binary_args(const char* name, const Tensor& a, const Tensor& b) {
  const std::string n(name);
  if (n == "add" || n == "sub" || n == "add_" || n == "sub_") return {a, b, Scalar(1)};
  if (n == "div" || n == "div_") return {a, b, std::optional<std::string>()};
  return {a, b};
}

namespace {

// ---- the nodes of the calls that are not ops ------------------------------------------------

tensor_list invoke_backward(jit::Stack& s) {
  autograd::backward(std::get<tensor_list>(s[0]), std::get<tensor_list>(s[1]),
                     std::get<bool>(s[2]), std::get<bool>(s[3]), std::get<tensor_list>(s[4]));
  return {};
}
tensor_list invoke_grad(jit::Stack& s) {
  return autograd::grad(std::get<tensor_list>(s[0]), std::get<tensor_list>(s[2]),
                        std::get<tensor_list>(s[1]), std::get<bool>(s[3]), std::get<bool>(s[4]),
                        std::get<bool>(s[5]));
}
tensor_list invoke_get_grad(jit::Stack& s) {
  const Tensor& t = std::get<Tensor>(s[0]);
  Tensor g = t.grad();
  if (g.defined() != std::get<bool>(s[1]))
    throw jit::GuardMiss(g.defined() ? "[jit] a .grad that was None when traced is set now"
                                     : "[jit] a .grad that was set when traced is None now");
  return {g};
}
tensor_list invoke_set_grad(jit::Stack& s) {
  const Tensor& t = std::get<Tensor>(s[0]);
  const Tensor& g = std::get<Tensor>(s[1]);
  if (!g.defined()) {
    if (t.has_autograd_meta()) t.autograd_meta().grad.reset();
  } else {
    t.set_grad(g);
  }
  return {};
}
tensor_list invoke_set_requires_grad(jit::Stack& s) {
  const Tensor& t = std::get<Tensor>(s[0]);
  t.autograd_meta().requires_grad = std::get<bool>(s[1]);
  return {t};
}

tensor_list invoke_detach(jit::Stack& s) { return {ops::detach(std::get<Tensor>(s[0]))}; }
tensor_list invoke_alias(jit::Stack& s) { return {ops::alias(std::get<Tensor>(s[0]))}; }

const int k_backward = jit::register_op("_backward", &invoke_backward);
const int k_detach = jit::register_op("detach", &invoke_detach, jit::Effect::None);
const int k_alias = jit::register_op("alias", &invoke_alias, jit::Effect::None);
const int k_grad = jit::register_op("_grad", &invoke_grad);
// A read that stays even when nobody uses it: it guards the replay (Python code branched on
// `.grad is None`).
const int k_get_grad = jit::register_op("_get_grad", &invoke_get_grad, jit::Effect::Reads);
const int k_set_grad = jit::register_op("_set_grad", &invoke_set_grad);
const int k_set_requires_grad = jit::register_op("_set_requires_grad", &invoke_set_requires_grad);

// ---- Python <-> boxed arguments ---------------------------------------------------------------

py::object to_py(const jit::IValue& v);

struct ToPy {
  py::object operator()(std::monostate) const { return py::none(); }
  py::object operator()(const Tensor& t) const { return t.defined() ? py::cast(t) : py::none(); }
  py::object operator()(const tensor_list& l) const {
    py::list out;
    for (const Tensor& t : l) out.append((*this)(t));
    return out;
  }
  py::object operator()(const Scalar& s) const {
    if (s.is_bool()) return py::bool_(s.to_int() != 0);
    if (s.is_int()) return py::int_(s.to_int());
    return py::float_(s.to_double());
  }
  py::object operator()(const Shape& s) const { return py::cast(s); }
  py::object operator()(DType d) const { return py::cast(d); }
  template <typename T>
  py::object operator()(const std::optional<T>& v) const {
    return v ? (*this)(*v) : py::none();
  }
  template <typename T>
  py::object operator()(const T& v) const {
    return py::cast(v);
  }
};

py::object to_py(const jit::IValue& v) { return std::visit(ToPy{}, v); }

// A Python value put into the slot of `like` (the same alternative).
jit::IValue from_py(py::handle o, const jit::IValue& like, const char* op) {
  return std::visit([&](const auto& l) -> jit::IValue {
    using T = std::decay_t<decltype(l)>;
    if constexpr (std::is_same_v<T, std::monostate>) {
      return std::monostate{};
    } else if constexpr (std::is_same_v<T, Tensor>) {
      return o.is_none() ? Tensor() : to_tensor(o, op);
    } else if constexpr (std::is_same_v<T, tensor_list>) {
      tensor_list out;
      for (py::handle e : o) out.push_back(e.is_none() ? Tensor() : to_tensor(e, op));
      return out;
    } else if constexpr (std::is_same_v<T, Scalar>) {
      return to_scalar(o, op);
    } else if constexpr (std::is_same_v<T, std::optional<Scalar>>) {
      return o.is_none() ? std::optional<Scalar>() : std::optional<Scalar>(to_scalar(o, op));
    } else if constexpr (std::is_same_v<T, Shape>) {
      return o.is_none() ? Shape{} : to_shape(o, op);
    } else if constexpr (std::is_same_v<T, DType>) {
      return to_dtype_arg(o);
    } else if constexpr (std::is_same_v<T, std::optional<DType>>) {
      return o.is_none() ? std::optional<DType>() : std::optional<DType>(to_dtype_arg(o));
    } else {
      return o.cast<T>();
    }
  }, like);
}

// Python's file:line of the code that triggered a break: deepcore.jit installs the callable
// (_jit_set_location_hook) that walks out of the package's own frames.
// Never destroyed: it would need the GIL after the interpreter has gone.
py::object*& location_callable() {
  static py::object* fn = nullptr;
  return fn;
}

std::string python_location() {
  py::gil_scoped_acquire gil;
  auto& fn = location_callable();
  if (!fn) return std::string();
  try {
    return (*fn)().cast<std::string>();
  } catch (py::error_already_set&) {
    return std::string();
  }
}

}  // namespace

// The hand-written bindings that record themselves (bind_tensor.cpp, bind_autograd.cpp).
void trace_backward(const tensor_list& roots, const tensor_list& grads, bool retain,
                    bool create, const tensor_list& inputs) {
  const auto args = [&] { return jit::Stack{roots, grads, retain, create, inputs}; };
  jit::record_call(k_backward, args, [&] {
    py::gil_scoped_release release;
    autograd::backward(roots, grads, retain, create, inputs);
    return tensor_list{};
  });
}
tensor_list trace_grad(const tensor_list& outs, const tensor_list& ins, const tensor_list& gs,
                       bool retain, bool create, bool allow_unused) {
  const auto args = [&] { return jit::Stack{outs, ins, gs, retain, create, allow_unused}; };
  return jit::record_call(k_grad, args, [&] {
    py::gil_scoped_release release;
    return autograd::grad(outs, gs, ins, retain, create, allow_unused);
  });
}
Tensor traced_get_grad(const Tensor& t) {
  if (!jit::recording()) return t.grad();
  Tensor g = t.grad();
  jit::Record rec(k_get_grad);
  rec.finish({t, g.defined()}, {g});
  return g;
}
void traced_set_grad(const Tensor& t, const Tensor& g) {
  if (!jit::recording()) return;
  jit::Record rec(k_set_grad);
  rec.finish({t, g}, {});
}
void traced_set_requires_grad(const Tensor& t, bool r) {
  if (!jit::recording()) return;
  jit::Record rec(k_set_requires_grad);
  rec.finish({t, r}, {t});
}

void bind_jit(py::module_& m) {
  static py::exception<jit::TraceError> trace_error(m, "GraphBreakError", PyExc_RuntimeError);
  static py::exception<jit::GuardMiss> guard_miss(m, "_GuardMiss", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const jit::TraceError& e) {
      PyErr_SetString(trace_error.ptr(), e.what());
    } catch (const jit::GuardMiss& e) {
      PyErr_SetString(guard_miss.ptr(), e.what());
    }
  });
  jit::set_location_hook(&python_location);

  py::class_<jit::Graph, std::shared_ptr<jit::Graph>>(m, "_Graph")
      .def("run", [](const jit::Graph& g, const tensor_list& inputs) {
        py::gil_scoped_release release;  // Python hooks the ops call take it back
        return g.run(inputs);
      })
      .def("__str__", &jit::Graph::str)
      .def_readonly("num_inputs", &jit::Graph::num_inputs)
      .def_readonly("num_values", &jit::Graph::num_values)
      .def_property_readonly("outputs", [](const jit::Graph& g) { return g.outputs; })
      .def_property_readonly("outputs_const", [](const jit::Graph& g) {
        py::list out;
        for (const Tensor& t : g.outputs_const) out.append(t.defined() ? py::cast(t) : py::none());
        return out;
      })
      .def_property_readonly("num_nodes", [](const jit::Graph& g) { return g.nodes.size(); })
      // (op, args, outputs, grad_mode): tensor arguments bound to graph values are
      // ("%", value id) pairs; other arguments are Python values (constants as tensors).
      .def("node", [](const jit::Graph& g, size_t i) {
        const jit::Node& n = g.nodes.at(i);
        py::list args;
        for (const jit::IValue& a : n.args) args.append(to_py(a));
        for (const jit::Ref& r : n.refs) {
          py::object ref = py::make_tuple("%", r.value);
          if (r.elem < 0) args[r.arg] = ref;
          else args[r.arg].cast<py::list>()[r.elem] = ref;
        }
        return py::make_tuple(std::string(jit::op_name(n.op)), args, n.outputs, n.grad_mode);
      })
      // Calls node i's op on `args` (the node's argument list with values filled in).
      .def("call_node", [](const jit::Graph& g, size_t i, const py::list& args) {
        const jit::Node& n = g.nodes.at(i);
        DC_CHECK(args.size() == n.args.size(), ValueError, "[jit] node ", i, " takes ",
                 n.args.size(), " arguments, got ", args.size());
        const char* name = jit::op_name(n.op);
        jit::Stack s;
        for (size_t k = 0; k < n.args.size(); ++k) s.push_back(from_py(args[k], n.args[k], name));
        autograd::GradModeGuard gm(n.grad_mode && autograd::grad_enabled());
        return jit::op_invoker(n.op)(s);
      })
      // Replaces a float argument of node i (an optimizer step's learning rate, set anew by
      // a scheduler between calls).
      .def("set_float_arg", [](jit::Graph& g, size_t i, size_t k, double v) {
        jit::Node& n = g.nodes.at(i);
        DC_CHECK(k < n.args.size() && std::holds_alternative<double>(n.args[k]), ValueError,
                 "[jit] argument ", k, " of node ", i, " is not a float");
        n.args[k] = v;
      })
      .def("value_shape", [](const jit::Graph& g, int v) { return g.value_shapes.at(v); })
      .def("value_dtype", [](const jit::Graph& g, int v) { return g.value_dtypes.at(v); })
      .def("optimize", [](jit::Graph& g, bool fold, bool fuse, bool plan, bool fault) {
        jit::eliminate_dead_code(g);
        if (fold) jit::fold_constants(g);
        if (fuse) jit::fuse_elementwise(g, fault);
        jit::eliminate_dead_code(g);
        if (plan) jit::plan_memory(g);
      }, py::arg("fold") = true, py::arg("fuse") = true, py::arg("plan") = true,
         py::arg("fault") = false);

  // The part of deepcore.jit's cache key that tensors give: per tensor its shape, dtype,
  // device, requires_grad and contiguity, and the first position of the same tensor.
  m.def("_jit_signature", [](const tensor_list& ts) {
    std::string key;
    auto put = [&](int64_t v) { key.append(reinterpret_cast<const char*>(&v), sizeof v); };
    for (size_t i = 0; i < ts.size(); ++i) {
      const Tensor& t = ts[i];
      put(t.dim());
      for (int64_t d : t.sizes()) put(d);
      put(static_cast<int64_t>(t.dtype()));
      put(static_cast<int64_t>(t.device().type) * 1024 + t.device().index);
      put((t.requires_grad() ? 1 : 0) | (t.is_contiguous() ? 2 : 0));
      int64_t first = static_cast<int64_t>(i);
      for (size_t j = 0; j < i; ++j)
        if (ts[j].is_same(t)) {
          first = static_cast<int64_t>(j);
          break;
        }
      put(first);
    }
    return py::bytes(key);
  });
  m.def("_jit_begin", [](const tensor_list& inputs, bool strict) {
    jit::begin_trace(inputs, strict);
  });
  m.def("_jit_end", [](const tensor_list& outputs) { return jit::end_trace(outputs); });
  m.def("_jit_abort", []() {
    if (jit::current_tracer()) jit::abort_trace();
  });
  // Tensors made while tracing (not inputs, not in `outputs`) that Python still holds: state
  // the function created and stored (optimizer moments on a first step). A replay would make
  // them again on every call, so the caller traces again once that state exists.
  m.def("_jit_escaped", [](const tensor_list& outputs) {
    std::vector<std::string> out;
    jit::Tracer* t = jit::current_tracer();
    if (!t) return out;
    const py::detail::type_info* ti = py::detail::get_type_info(typeid(TensorImpl));
    for (const auto& [impl, id] : t->values()) {
      if (id < t->graph->num_inputs || !t->made_here(impl)) continue;
      bool returned = false;
      for (const Tensor& o : outputs) returned |= o.impl() == impl;
      if (returned) continue;
      if (py::detail::get_object_handle(impl, ti)) {
        out.push_back("%" + std::to_string(id) + " of shape " + shape_str(impl->sizes));
      }
    }
    return out;
  });
  m.def("_jit_set_location_hook", [](py::function fn) {
    delete location_callable();
    location_callable() = new py::object(std::move(fn));
  });
  m.def("_jit_tracing", []() { return jit::current_tracer() != nullptr; });
  m.def("_jit_break_reason", []() -> py::object {
    jit::Tracer* t = jit::current_tracer();
    if (!t || t->broken.empty()) return py::none();
    return py::str(t->broken);
  });
}

const BindingRegistrar reg("jit", bind_jit);

}  // namespace dc::py_bind
