#include "autograd/node.h"

#include "autograd/grad_mode.h"
#include "dispatch/dispatcher.h"
#include "ops/ops.h"

namespace dc::autograd {

namespace {
std::atomic<uint64_t> next_sequence_nr{0};
}  // namespace

// Grad mode is the dispatcher's Autograd key (Note [The dispatcher]).
bool grad_enabled() { return dispatch::key_active(dispatch::Key::Autograd); }
void set_grad_enabled(bool enabled) { dispatch::set_key_active(dispatch::Key::Autograd, enabled); }

Node::Node() : sequence_nr(next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

tensor_list FunctionNode::apply(tensor_list&& grads) {
  DC_CHECK(fn_, RuntimeError, "[autograd] ", name_, " has no backward");
  // The derivative runs on the forward's device: kernels it calls directly, and tensors it
  // allocates, go where the op ran (Note [The dispatcher]).
  DeviceGuard on(outputs.empty() ? current_device() : outputs[0].device);
  GradCtx ctx(*this, grads);
  tensor_list out = fn_(ctx);
  DC_CHECK(out.size() == next_edges.size(), RuntimeError, "[autograd] ", name_, " returned ",
           out.size(), " gradients for ", next_edges.size(), " inputs");
  return out;
}

void FunctionNode::release_saved() {
  saved.clear();
  released = true;
}

Tensor GradCtx::saved(size_t i) const {
  DC_CHECK(!node_.released, RuntimeError, "[autograd] ", node_.name(),
           ": trying to backward through the graph a second time (or to use saved tensors after "
           "they were freed). Pass retain_graph=True to the first backward() or autograd.grad() "
           "if you need to backward through the graph again.");
  DC_CHECK(i < node_.saved.size(), RuntimeError, "[autograd] ", node_.name(),
           ": saved tensor ", i, " does not exist");
  const SavedTensor& s = node_.saved[i];
  if (!s.data.defined()) return Tensor();
  const uint32_t now = s.data.version();
  DC_CHECK(now == s.version, RuntimeError,
           "[autograd] one of the tensors needed for gradient computation has been modified by "
           "an in-place operation: ",
           s.is_output ? "output" : "input", " of ", node_.name(), " with shape ",
           s.data.shape_str(), " (", dtype_name(s.data.dtype()), ") is at version ", now,
           "; expected version ", s.version,
           ". Use an out-of-place op, or clone() the tensor before modifying it.");
  if (!s.is_output) return s.data;
  // Re-attach the saved output to this node so a double backward sees its history.
  Tensor t = ops::alias(s.data);
  if (grad_enabled()) {
    auto& m = t.autograd_meta();
    m.grad_fn = node_.shared_from_this();
    m.output_nr = s.output_nr;
  }
  return t;
}

tensor_list AccumulateGrad::apply(tensor_list&& grads) {
  Tensor g = std::move(grads[0]);
  auto& meta = variable.autograd_meta();
  for (auto& hook : meta.hooks) {
    Tensor r = hook(g);
    if (r.defined()) g = r;
  }
  if (!g.defined()) return {};
  Tensor old = variable.grad();
  if (grad_enabled()) {  // create_graph: keep the gradient differentiable
    variable.set_grad(old.defined() ? ops::add(old, g) : g);
  } else if (!old.defined()) {
    // Take the incoming buffer only if nobody else can see it; otherwise copy, so two leaves
    // never share one .grad and later in-place accumulation stays private.
    const bool exclusive = g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 &&
                           g.is_contiguous() && !g.requires_grad();
    variable.set_grad(exclusive ? g : ops::contiguous_clone(ops::detach(g)));
  } else {
    ops::add_(old, g);
  }
  // Copied first: a hook may remove itself (or register another) while they run.
  const auto post = meta.post_accumulate_hooks;
  for (auto& [id, hook] : post) hook(variable);
  return {};
}

void release_edges_iteratively(std::vector<Edge>& edges) {
  std::vector<std::shared_ptr<Node>> stack;
  auto gather = [&stack](std::vector<Edge>& es) {
    for (Edge& e : es)
      if (e.fn && e.fn.use_count() == 1) stack.push_back(std::move(e.fn));
    es.clear();
  };
  gather(edges);
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    n->release_saved();
    gather(n->next_edges);
  }  // each `n` is destroyed here with no edges left, so its destructor does not recurse
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.has_autograd_meta()) return {};
  auto& m = t.autograd_meta();
  if (m.grad_fn) return {m.grad_fn, m.output_nr};
  if (!m.requires_grad) return {};
  std::shared_ptr<Node> acc = m.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t);
    acc->outputs.push_back({t.sizes(), t.dtype(), t.device()});
    m.grad_accumulator = acc;
  }
  return {acc, 0};
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const tensor_list& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void set_history(const std::shared_ptr<Node>& node, const tensor_list& outputs) {
  node->outputs.clear();
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    if (!o.defined()) {
      node->outputs.push_back({Shape{}, DType::Float32, current_device()});
      continue;
    }
    node->outputs.push_back({o.sizes(), o.dtype(), o.device()});
    auto& m = o.autograd_meta();
    m.grad_fn = node;
    m.output_nr = static_cast<uint32_t>(i);
  }
}

void record(const char* name, const tensor_list& inputs, const tensor_list& outputs, BackwardFn fn,
            const tensor_list& saved) {
  if (!any_requires_grad(inputs)) return;
  auto node = std::make_shared<FunctionNode>(name, std::move(fn));
  node->next_edges.reserve(inputs.size());
  for (const Tensor& t : inputs) node->next_edges.push_back(gradient_edge(t));
  node->saved.reserve(saved.size());
  for (const Tensor& s : saved) {
    SavedTensor st;
    if (s.defined()) {
      st.version = s.version();
      for (size_t j = 0; j < outputs.size(); ++j) {
        if (outputs[j].is_same(s)) {
          st.is_output = true;
          st.output_nr = static_cast<uint32_t>(j);
        }
      }
      st.data = st.is_output ? ops::alias(s) : s;
    }
    node->saved.push_back(std::move(st));
  }
  set_history(node, outputs);
}

}  // namespace dc::autograd
