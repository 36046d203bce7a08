// The passes deepcore.jit runs over a traced graph (Note [Traced graphs] in graph.h).
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "jit/graph.h"

namespace dc::jit {

namespace {

// For each value, the nodes that read it (in order).
std::vector<std::vector<int>> consumers(const Graph& g) {
  std::vector<std::vector<int>> out(g.num_values);
  for (int k = 0; k < static_cast<int>(g.nodes.size()); ++k)
    for (const Ref& r : g.nodes[k].refs) out[r.value].push_back(k);
  return out;
}

bool is_output(const Graph& g, int v) {
  for (int o : g.outputs)
    if (o == v) return true;
  return false;
}

}  // namespace

// Dead-code elimination: a pure node none of whose results is read (by a later node or as a
// graph output) goes, repeatedly, from the back.
void eliminate_dead_code(Graph& g) {
  std::vector<bool> live(g.num_values, false);
  for (int o : g.outputs)
    if (o >= 0) live[o] = true;
  std::vector<Node> kept;
  for (int k = static_cast<int>(g.nodes.size()) - 1; k >= 0; --k) {
    Node& n = g.nodes[k];
    bool used = !op_pure(n.op);
    for (int o : n.outputs)
      if (o >= 0 && live[o]) used = true;
    if (!used) continue;
    for (const Ref& r : n.refs) live[r.value] = true;
    kept.push_back(std::move(n));
  }
  g.nodes.assign(std::make_move_iterator(kept.rbegin()), std::make_move_iterator(kept.rend()));
}

// Constant folding: a pure node whose tensor arguments are all constants the graph alone owns
// (Python numbers turned into tensors, earlier folded results) runs once now. Its results
// replace the reads of them, unless something writes them later or they are returned (a
// caller could write a returned tensor, and the next call would see it).
void fold_constants(Graph& g) {
  std::unordered_set<const TensorImpl*> owned;
  auto cons = consumers(g);
  std::vector<bool> removed(g.nodes.size(), false);
  // value -> folded tensor
  std::unordered_map<int, Tensor> folded;
  for (int k = 0; k < static_cast<int>(g.nodes.size()); ++k) {
    Node& n = g.nodes[k];
    // Substitute results folded earlier.
    std::vector<Ref> refs;
    for (const Ref& r : n.refs) {
      auto it = folded.find(r.value);
      if (it == folded.end()) {
        refs.push_back(r);
        continue;
      }
      if (r.elem < 0) n.args[r.arg] = it->second;
      else std::get<tensor_list>(n.args[r.arg])[r.elem] = it->second;
    }
    n.refs = std::move(refs);
    if (!op_pure(n.op) || !n.refs.empty() || n.outputs.empty()) continue;
    bool constant = true;
    for (const IValue& a : n.args) {
      if (auto* t = std::get_if<Tensor>(&a)) {
        if (t->defined() && !t->impl()->is_wrapped_number && !owned.count(t->impl()))
          constant = false;
      } else if (auto* l = std::get_if<tensor_list>(&a)) {
        for (const Tensor& e : *l)
          if (e.defined() && !e.impl()->is_wrapped_number && !owned.count(e.impl()))
            constant = false;
      }
    }
    if (!constant) continue;
    bool safe = true;
    for (int o : n.outputs) {
      if (o < 0) continue;
      if (is_output(g, o) || g.value_requires_grad[o]) safe = false;
      for (int c : cons[o])
        if (!op_pure(g.nodes[c].op)) safe = false;
    }
    if (!safe) continue;
    Stack args = n.args;
    tensor_list outs;
    {
      autograd::GradModeGuard no_grad(false);
      outs = op_invoker(n.op)(args);
    }
    for (size_t j = 0; j < n.outputs.size(); ++j) {
      if (n.outputs[j] < 0) continue;
      owned.insert(outs[j].impl());
      folded[n.outputs[j]] = outs[j];
    }
    removed[k] = true;
  }
  std::vector<Node> kept;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (!removed[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
}

// Memory planning: the last node that reads each value, so the replay drops its reference
// there and the block returns to the allocator's cache for the next node's result (Note
// [Large-block cache] in core/storage.cpp). Inputs and returned values are never dropped.
void plan_memory(Graph& g) {
  g.last_use.assign(g.num_values, -1);
  for (int k = 0; k < static_cast<int>(g.nodes.size()); ++k)
    for (const Ref& r : g.nodes[k].refs)
      if (r.value >= g.num_inputs) g.last_use[r.value] = k;
  for (int o : g.outputs)
    if (o >= 0) g.last_use[o] = -1;
}

}  // namespace dc::jit
