#include "autograd/engine.h"

#include <functional>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "ops/ops.h"

namespace dc::autograd {
namespace {

// The callbacks of the backward pass running on this thread (null outside one).
thread_local std::vector<std::function<void()>>* tls_callbacks = nullptr;

// Makes a callback list current for one run; restores the outer one (a backward inside a hook).
struct CallbackScope {
  CallbackScope() : prev(tls_callbacks) { tls_callbacks = &list; }
  ~CallbackScope() { tls_callbacks = prev; }
  void run_all() {
    for (size_t i = 0; i < list.size(); ++i) {
      auto fn = std::move(list[i]);  // the list may grow while fn runs
      fn();
    }
    list.clear();
  }
  std::vector<std::function<void()>> list;
  std::vector<std::function<void()>>* prev;
};

struct NodeTask {
  Node* node;
  bool operator<(const NodeTask& o) const { return node->sequence_nr < o.node->sequence_nr; }
};

// Where autograd.grad() reads its answers: the gradient flowing into (node, output_nr).
struct Capture {
  Node* node;
  uint32_t output_nr;
};

Tensor default_root_grad(const Tensor& root, const char* op) {
  DC_CHECK(root.numel() == 1, RuntimeError, "[", op,
           "] grad can be implicitly created only for scalar outputs, but the output has shape ",
           root.shape_str(), "; pass a gradient (e.g. out.backward(gradient)) instead");
  return ops::ones_like(root);
}

tensor_list run(const tensor_list& roots, const tensor_list& grad_outputs, bool retain_graph,
                bool create_graph, const std::vector<Capture>* captures, const char* op) {
  DC_CHECK(grad_outputs.empty() || grad_outputs.size() == roots.size(), ValueError, "[", op,
           "] got ", grad_outputs.size(), " gradients for ", roots.size(), " outputs");
  GradModeGuard mode(create_graph);
  CallbackScope callbacks;

  // Seed gradients per root edge.
  std::vector<std::pair<Edge, Tensor>> seeds;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    DC_CHECK(r.defined() && r.requires_grad(), RuntimeError, "[", op, "] element ", i,
             " of the outputs does not require grad and has no grad_fn");
    Tensor g = i < grad_outputs.size() && grad_outputs[i].defined() ? grad_outputs[i]
                                                                      : default_root_grad(r, op);
    DC_CHECK(g.sizes() == r.sizes(), ValueError, "[", op, "] gradient of shape ", g.shape_str(),
             " does not match output of shape ", r.shape_str());
    // Like PyTorch, a gradient of another floating dtype is cast to the output's dtype.
    if (g.dtype() != r.dtype()) g = ops::to_dtype(g, r.dtype());
    seeds.emplace_back(gradient_edge(r), g);
  }

  // Count how many edges enter each node so a node runs only once all its gradients arrived.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  for (auto& s : seeds)
    if (seen.insert(s.first.fn.get()).second) stack.push_back(s.first.fn.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.valid()) continue;
      deps[e.fn.get()]++;
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }

  std::unordered_map<Node*, tensor_list> buffers;
  auto accumulate = [&](Node* n, uint32_t idx, Tensor g) {
    tensor_list& buf = buffers[n];
    if (buf.size() < n->outputs.size()) buf.resize(n->outputs.size());
    if (idx >= buf.size()) buf.resize(idx + 1);
    buf[idx] = buf[idx].defined() ? ops::add(buf[idx], g) : std::move(g);
  };

  std::priority_queue<NodeTask> ready;
  for (auto& s : seeds) accumulate(s.first.fn.get(), s.first.input_nr, s.second);
  for (auto& s : seeds)
    if (deps[s.first.fn.get()] == 0) {
      deps[s.first.fn.get()] = -1;  // queued
      ready.push({s.first.fn.get()});
    }

  tensor_list captured(captures ? captures->size() : 0);
  while (!ready.empty()) {
    Node* n = ready.top().node;
    ready.pop();
    tensor_list grads = std::move(buffers[n]);
    buffers.erase(n);
    grads.resize(std::max(grads.size(), n->outputs.size()));
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!grads[i].defined() && i < n->outputs.size()) {
        DeviceGuard on(n->outputs[i].device);
        grads[i] = ops::zeros(n->outputs[i].sizes, n->outputs[i].dtype);
      }
    }
    for (auto& [idx, hook] : n->pre_hooks) {
      Tensor r = hook(grads[idx]);
      if (r.defined()) grads[idx] = r;
    }
    for (auto& [idx, weak] : n->retained) {
      if (auto impl = weak.lock()) {
        Tensor t(impl);
        Tensor old = t.grad();
        Tensor g = create_graph ? grads[idx] : ops::detach(grads[idx]);
        t.set_grad(old.defined() ? ops::add(old, g) : ops::contiguous_clone(g));
      }
    }
    if (captures) {
      for (size_t c = 0; c < captures->size(); ++c) {
        if ((*captures)[c].node == n) {
          const Tensor& g = grads[(*captures)[c].output_nr];
          captured[c] = captured[c].defined() ? ops::add(captured[c], g) : g;
        }
      }
    }
    // autograd.grad() never writes the .grad of leaves: their accumulators do not run.
    const bool is_capture_only = captures && dynamic_cast<AccumulateGrad*>(n) != nullptr;
    if (is_capture_only) continue;

    tensor_list out = n->apply(std::move(grads));
    if (!retain_graph) n->release_saved();
    for (size_t i = 0; i < n->next_edges.size() && i < out.size(); ++i) {
      const Edge& e = n->next_edges[i];
      if (!e.valid()) continue;
      Node* next = e.fn.get();
      if (out[i].defined()) {
        const auto& meta = next->outputs[e.input_nr];
        DC_CHECK(out[i].sizes() == meta.sizes, RuntimeError, "[autograd] ", n->name(),
                 " returned a gradient of shape ", out[i].shape_str(), " for input ", i,
                 " of shape ", shape_str(meta.sizes));
        DC_CHECK(out[i].device() == meta.device, RuntimeError, "[autograd] ", n->name(),
                 " returned a gradient on ", out[i].device().str(), " for input ", i, " on ",
                 meta.device.str());
        if (out[i].dtype() != meta.dtype) out[i] = ops::to_dtype(out[i], meta.dtype);
        accumulate(next, e.input_nr, std::move(out[i]));
      }
      if (--deps[next] == 0) {
        deps[next] = -1;
        ready.push({next});
      }
    }
  }
  callbacks.run_all();
  return captured;
}

}  // namespace

void queue_callback(std::function<void()> fn) {
  DC_CHECK(tls_callbacks, RuntimeError,
           "[queue_callback] no backward pass is running on this thread: callbacks can only be "
           "queued from inside one (a hook)");
  tls_callbacks->push_back(std::move(fn));
}

void backward(const tensor_list& roots, const tensor_list& grad_outputs, bool retain_graph,
              bool create_graph, const tensor_list& inputs) {
  if (inputs.empty()) {
    run(roots, grad_outputs, retain_graph, create_graph, nullptr, "backward");
    return;
  }
  // backward(inputs=...): accumulate only into the given tensors.
  tensor_list gs = grad(roots, grad_outputs, inputs, retain_graph, create_graph, true);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!gs[i].defined()) continue;
    Tensor old = inputs[i].grad();
    Tensor g = create_graph ? gs[i] : ops::detach(gs[i]);
    inputs[i].set_grad(old.defined() ? ops::add(old, g) : ops::contiguous_clone(g));
  }
}

tensor_list grad(const tensor_list& roots, const tensor_list& grad_outputs,
                 const tensor_list& inputs, bool retain_graph, bool create_graph,
                 bool allow_unused) {
  std::vector<Capture> captures;
  // A leaf's accumulator is held only weakly by the leaf: keep each one alive through the run,
  // or an input that is also an output (grad(x, x)) would be seeded into a fresh accumulator
  // that no capture points at.
  std::vector<Edge> edges;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    DC_CHECK(t.defined() && t.requires_grad(), RuntimeError, "[autograd.grad] input ", i,
             " does not require grad");
    edges.push_back(gradient_edge(t));
    captures.push_back({edges.back().fn.get(), edges.back().input_nr});
  }
  tensor_list out = run(roots, grad_outputs, retain_graph, create_graph, &captures, "grad");
  for (size_t i = 0; i < out.size(); ++i) {
    DC_CHECK(out[i].defined() || allow_unused, RuntimeError, "[autograd.grad] input ", i,
             " (shape ", inputs[i].shape_str(),
             ") was not used in the graph; pass allow_unused=True if this is expected");
    if (out[i].defined() && !create_graph) out[i] = ops::detach(out[i]);
  }
  return out;
}

}  // namespace dc::autograd
