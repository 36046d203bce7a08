#pragma once
// The recorded graph. Every differentiable op that runs with grad mode on creates one Node
// whose edges point at the nodes that produced its inputs (or at a leaf's AccumulateGrad).
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace dc::autograd {

struct Node;

struct Edge {
  std::shared_ptr<Node> fn;  // null: that input needs no gradient
  uint32_t input_nr = 0;     // which of fn's outputs this edge feeds
  bool valid() const { return fn != nullptr; }
};

// Note [Saved tensor versions]
// A node that needs a tensor in backward saves it with the storage version seen at forward
// time. An in-place write through any view bumps the version, and unpacking then raises a
// RuntimeError naming the op and the tensor instead of silently using the new values.
// A node's own output is saved detached (a strong reference to itself would be a cycle) and
// re-attached to the node on unpack, so create_graph still differentiates through it.
struct SavedTensor {
  Tensor data;
  uint32_t version = 0;
  bool is_output = false;
  uint32_t output_nr = 0;
};

class GradCtx;
using BackwardFn = std::function<tensor_list(GradCtx&)>;
using PreHook = std::function<Tensor(const Tensor&)>;

struct OutputMeta {
  Shape sizes;
  DType dtype;
  Device device;
};

struct Node : std::enable_shared_from_this<Node> {
  Node();
  virtual ~Node() = default;
  virtual std::string name() const = 0;
  // grads[i] is the gradient for forward output i (always defined: the engine fills zeros).
  virtual tensor_list apply(tensor_list&& grads) = 0;
  // Drops saved tensors once backward has used them (unless retain_graph).
  virtual void release_saved() {}

  std::vector<Edge> next_edges;
  std::vector<OutputMeta> outputs;
  uint64_t sequence_nr;
  // Hooks on a non-leaf tensor run on the gradient of output `output_nr` before apply.
  std::vector<std::pair<uint32_t, PreHook>> pre_hooks;
  // retain_grad() targets: weak, so the node does not keep the tensor alive.
  std::vector<std::pair<uint32_t, std::weak_ptr<TensorImpl>>> retained;
};

// Note [Iterative graph release]
// A graph is a chain of shared_ptrs (node -> next_edges -> node ...). Letting the destructors
// recurse overflows the stack for long graphs (a 300k-op chain segfaults), so a dying node
// first drops its saved tensors (which may also reference earlier nodes), then hands every
// edge it holds the last reference to over to an explicit stack and frees them in a loop,
// like PyTorch's deleteNode.
void release_edges_iteratively(std::vector<Edge>& edges);

// A node whose backward is a C++ lambda written with differentiable ops (csrc/ops/*).
struct FunctionNode : Node {
  FunctionNode(std::string name, BackwardFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  ~FunctionNode() override {
    saved.clear();
    release_edges_iteratively(next_edges);
  }
  std::string name() const override { return name_; }
  tensor_list apply(tensor_list&& grads) override;
  void release_saved() override;

  std::vector<SavedTensor> saved;
  bool released = false;

 private:
  std::string name_;
  BackwardFn fn_;
};

// Sink node of a leaf that requires grad: adds the incoming gradient into tensor.grad.
struct AccumulateGrad : Node {
  // The highest sequence number, as in torch: a leaf's gradient is accumulated (and its
  // post-accumulate hooks run) as soon as it is complete. An accumulator outlives the graph
  // that made it, so its own creation order says nothing; DistributedDataParallel launches
  // its all-reduces from those hooks while the rest of backward runs.
  explicit AccumulateGrad(Tensor variable) : variable(std::move(variable)) {
    sequence_nr = UINT64_MAX;
  }
  std::string name() const override { return "AccumulateGrad"; }
  tensor_list apply(tensor_list&& grads) override;
  Tensor variable;
};

class GradCtx {
 public:
  GradCtx(FunctionNode& node, const tensor_list& grads) : node_(node), grads_(grads) {}
  const Tensor& grad(size_t i = 0) const { return grads_[i]; }
  size_t num_grads() const { return grads_.size(); }
  // Whether input i's gradient is wanted (its edge leads somewhere).
  bool needs(size_t i) const { return node_.next_edges[i].valid(); }
  // The i-th tensor passed as `saved` to record(); checks its version.
  Tensor saved(size_t i) const;

 private:
  FunctionNode& node_;
  const tensor_list& grads_;
};

// The edge a new node should point at for input `t` (its grad_fn, or its accumulator).
Edge gradient_edge(const Tensor& t);
// True if grad mode is on and any input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const tensor_list& inputs);

// Records `outputs` as produced by an op named `name` from `inputs`. `saved` tensors are kept
// for backward (outputs among them are saved without a reference cycle). No-op when no input
// requires grad or grad mode is off. `fn` returns one gradient per input (undefined = none).
void record(const char* name, const tensor_list& inputs, const tensor_list& outputs, BackwardFn fn,
            const tensor_list& saved = {});

// Installs `node` as the producer of `outputs` (node->next_edges already set).
void set_history(const std::shared_ptr<Node>& node, const tensor_list& outputs);

}  // namespace dc::autograd
