// Autograd bindings: backward/grad, grad mode, hooks, graph nodes and Python-defined Functions.
#include <cctype>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "jit/graph.h"
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

using autograd::Node;

// A node whose backward is a Python callable (deepcore.autograd.Function).
struct PyFunctionNode : Node {
  PyFunctionNode(std::string name, std::shared_ptr<py::object> fn)
      : name_(std::move(name)), fn_(std::move(fn)) {}
  ~PyFunctionNode() override {
    fn_.reset();  // its closure holds ctx.saved_tensors; see Note [Iterative graph release]
    autograd::release_edges_iteratively(next_edges);
  }
  std::string name() const override { return name_; }
  tensor_list apply(tensor_list&& grads) override {
    py::gil_scoped_acquire gil;
    DC_CHECK(fn_, RuntimeError, "[autograd] ", name_, ": trying to backward through the graph a "
             "second time; pass retain_graph=True to the first backward()");
    py::object r = (*fn_)(py::cast(grads));
    tensor_list out;
    if (!py::isinstance<py::tuple>(r) && !py::isinstance<py::list>(r)) r = py::make_tuple(r);
    for (py::handle h : r) out.push_back(h.is_none() ? Tensor() : to_tensor(h, name_.c_str()));
    DC_CHECK(out.size() == next_edges.size(), RuntimeError, "[autograd] ", name_,
             ".backward returned ", out.size(), " gradients, expected ", next_edges.size(),
             " (one per forward input)");
    for (size_t i = 0; i < out.size(); ++i) {
      if (!out[i].defined() || !next_edges[i].valid()) continue;
      const auto& meta = next_edges[i].fn->outputs[next_edges[i].input_nr];
      DC_CHECK(out[i].sizes() == meta.sizes, RuntimeError, "[autograd] ", name_,
               ".backward returned a gradient of shape ", out[i].shape_str(), " for input ", i,
               " of shape ", shape_str(meta.sizes));
    }
    return out;
  }
  // Lets the Python ctx refuse access to its saved tensors once the graph is freed.
  void release_saved() override {
    retained_ = false;
    if (!release_) return;
    py::gil_scoped_acquire gil;
    try {
      (*release_)();
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("deepcore.autograd.Function release");
    }
  }
  std::shared_ptr<py::object> release_;
  std::string name_;
  std::shared_ptr<py::object> fn_;
  bool retained_ = true;
};

tensor_list as_list(py::handle obj, const char* op) {
  tensor_list out;
  if (is_tensor(obj)) return {obj.cast<Tensor>()};
  for (py::handle h : obj) out.push_back(h.is_none() ? Tensor() : to_tensor(h, op));
  return out;
}

}  // namespace

void bind_autograd(py::module_& m) {
  py::class_<Node, std::shared_ptr<Node>>(m, "Node")
      .def("name", &Node::name)
      .def("__repr__", [](const Node& n) {
        // "log_softmax" -> <LogSoftmaxBackward0>, PyTorch's naming.
        std::string camel;
        bool up = true;
        for (char c : n.name()) {
          if (c == '_') { up = true; continue; }
          camel += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
          up = false;
        }
        return "<" + camel + (n.name() == "AccumulateGrad" ? ">" : "Backward0>");
      })
      .def_property_readonly("next_functions", [](const Node& n) {
        py::list out;
        for (const auto& e : n.next_edges)
          out.append(py::make_tuple(e.fn ? py::cast(e.fn) : py::none(), e.input_nr));
        return py::tuple(out);
      })
      .def("register_hook", [](Node& n, py::function fn) {
        // Post-hook on the node's output gradient 0, called with the gradient.
        auto held = hold(fn);
        n.pre_hooks.emplace_back(0, [held](const Tensor& g) -> Tensor {
          py::gil_scoped_acquire gil;
          py::object r = (*held)(g);
          return r.is_none() ? Tensor() : r.cast<Tensor>();
        });
      });
  m.def("_grad_fn", [](const Tensor& t) -> py::object {
    if (!t.grad_fn()) return py::none();
    return py::cast(t.grad_fn());
  });

  m.def("is_grad_enabled", &autograd::grad_enabled);
  m.def("_set_grad_enabled", &autograd::set_grad_enabled);

  m.def("_backward", [](py::handle tensors, py::handle grads, bool retain_graph, bool create_graph,
                        py::handle inputs) {
    tensor_list roots = as_list(tensors, "backward");
    tensor_list gs = grads.is_none() ? tensor_list{} : as_list(grads, "backward");
    tensor_list ins = inputs.is_none() ? tensor_list{} : as_list(inputs, "backward");
    trace_backward(roots, gs, retain_graph, create_graph, ins);
  });
  m.def("_grad", [](py::handle outputs, py::handle inputs, py::handle grads, bool retain_graph,
                    bool create_graph, bool allow_unused) {
    tensor_list outs = as_list(outputs, "grad");
    tensor_list ins = as_list(inputs, "grad");
    tensor_list gs = grads.is_none() ? tensor_list{} : as_list(grads, "grad");
    return trace_grad(outs, ins, gs, retain_graph, create_graph, allow_unused);
  });

  m.def("_register_hook", [](const Tensor& t, py::function fn) {
    jit::on_untraceable("Tensor.register_hook()");
    DC_CHECK(t.requires_grad(), RuntimeError,
             "[register_hook] cannot register a hook on a tensor that doesn't require gradient");
    auto held = hold(fn);
    auto hook = [held](const Tensor& g) -> Tensor {
      py::gil_scoped_acquire gil;
      py::object r = (*held)(g);
      return r.is_none() ? Tensor() : r.cast<Tensor>();
    };
    if (t.is_leaf()) t.autograd_meta().hooks.push_back(hook);
    else t.grad_fn()->pre_hooks.emplace_back(t.output_nr(), hook);
  });
  // Tensor.register_post_accumulate_grad_hook: fn(tensor) after .grad was accumulated; the id
  // it returns removes it.
  m.def("_register_post_accumulate_grad_hook", [](const Tensor& t, py::function fn) {
    jit::on_untraceable("Tensor.register_post_accumulate_grad_hook()");
    DC_CHECK(t.requires_grad() && t.is_leaf(), RuntimeError,
             "[register_post_accumulate_grad_hook] post accumulate grad hooks can only be "
             "registered on leaf tensors that require grad");
    static int64_t next_id = 0;
    const int64_t id = ++next_id;
    auto held = hold(fn);
    t.autograd_meta().post_accumulate_hooks.emplace_back(id, [held](const Tensor& v) {
      py::gil_scoped_acquire gil;
      (*held)(v);
    });
    return id;
  });
  m.def("_remove_post_accumulate_grad_hook", [](const Tensor& t, int64_t id) {
    if (!t.has_autograd_meta()) return;
    auto& hooks = t.autograd_meta().post_accumulate_hooks;
    for (auto it = hooks.begin(); it != hooks.end(); ++it)
      if (it->first == id) {
        hooks.erase(it);
        return;
      }
  });
  m.def("_queue_callback", [](py::function fn) {
    auto held = hold(fn);
    autograd::queue_callback([held] {
      py::gil_scoped_acquire gil;
      (*held)();
    });
  });
  m.def("_retain_grad", [](const Tensor& t) {
    DC_CHECK(t.requires_grad(), RuntimeError,
             "[retain_grad] can't retain_grad on a tensor that has requires_grad=False");
    if (t.is_leaf()) return;
    auto& meta = t.autograd_meta();
    if (meta.retains_grad) return;
    meta.retains_grad = true;
    t.grad_fn()->retained.emplace_back(t.output_nr(), std::weak_ptr<TensorImpl>(t.impl_ptr()));
  });
  m.def("_retains_grad", [](const Tensor& t) { return t.has_autograd_meta() && t.autograd_meta().retains_grad; });

  // Custom Function support: connects `outputs` to `inputs` through a Python backward.
  m.def("_make_function_node", [](const std::string& name, py::function backward,
                                  const std::vector<py::object>& inputs,
                                  const std::vector<Tensor>& outputs, py::object release) {
    auto node = std::make_shared<PyFunctionNode>(name, hold(backward));
    if (!release.is_none()) node->release_ = hold(release);
    for (const py::object& in : inputs) {
      node->next_edges.push_back(is_tensor(in) ? autograd::gradient_edge(in.cast<Tensor>())
                                               : autograd::Edge{});
    }
    autograd::set_history(node, outputs);
    return std::static_pointer_cast<Node>(node);
  }, py::arg("name"), py::arg("backward"), py::arg("inputs"), py::arg("outputs"),
     py::arg("release") = py::none());
}

}  // namespace dc::py_bind
