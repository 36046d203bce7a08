#pragma once
// Note [Traced graphs]
// deepcore.jit runs a function once with the Tracer key on. Every op called from Python goes
// through a binding (generated from ops.schema, or one of the hand-written ones that record
// themselves), and while tracing each binding appends one Node to the Graph: the op's id in
// the table of boxed invokers below, its arguments after conversion (an IValue each), and the
// values it produced. Tensor arguments are looked up by identity: a graph input, the output of
// an earlier node, or else a constant the graph holds (a parameter, a captured tensor, a Python
// number turned into a tensor). Ops nested inside a recorded call are not recorded: replaying
// the outer call runs them again.
//
// Nothing may escape the record. The Tracer key's handler sees every op that starts at the
// outermost level; one that no binding recorded (an op reached through a path the tracer does
// not know) breaks the graph, and so does reading a tensor's values from Python (item(),
// numpy(), bool(), ...): the value would steer Python code that the replay cannot see. A
// broken trace is still a correct eager run (tracing runs every op for real); deepcore.jit
// then keeps calling the function eagerly for that signature and says where it broke.
//
// Replay (Graph::run) walks the nodes in C++: it patches each node's argument template with
// the values of this call and calls the op's invoker, under the grad mode the node was traced
// with. The autograd calls (backward, autograd.grad) and reads and writes of .grad are nodes
// too, so a whole training step replays.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "core/error.h"
#include "core/scalar.h"
#include "core/tensor.h"

namespace dc::jit {

// A boxed argument: exactly the C++ types the bindings convert Python arguments to.
using IValue = std::variant<std::monostate, Tensor, tensor_list, Scalar, std::optional<Scalar>,
                            Shape, DType, std::optional<DType>, int64_t, double, bool,
                            std::string, std::optional<int64_t>, std::optional<double>,
                            std::optional<bool>, std::optional<std::string>>;
using Stack = std::vector<IValue>;
using Invoker = tensor_list (*)(Stack&);

// The table of boxed invokers, filled at start-up by the generated bindings and bind_jit.cpp.
// What a call does beside computing its results:
//   None    nothing (no argument written, no random numbers drawn): a node whose results nobody
//           reads can go, and one whose inputs are all constants can run at compile time;
//   Reads   reads state the graph does not hold (.grad), so it stays, but writes nothing: a
//           guard that fails there leaves nothing half done;
//   Writes  writes an argument or state, or draws random numbers.
enum class Effect : uint8_t { None, Reads, Writes };
int register_op(const char* name, Invoker fn, Effect effect = Effect::Writes);
bool op_pure(int id);    // Effect::None
bool op_writes(int id);  // Effect::Writes
int find_op(const std::string& name);  // -1 when unknown
const char* op_name(int id);
Invoker op_invoker(int id);

// What the replay needs beside the op: a tensor argument bound to a value of the graph.
struct Ref {
  int arg;   // index into Node::args
  int elem;  // index into a tensor_list argument, -1 for a Tensor argument
  int value;
};

struct Node {
  int op = -1;
  Stack args;                // constants in place, refs' slots hold the traced tensors
  std::vector<Ref> refs;
  std::vector<int> outputs;  // value ids, -1 for an undefined result
  bool grad_mode = true;
  std::string where;         // optional source location (set by passes and fused nodes)
};

struct Graph {
  int num_inputs = 0;
  int num_values = 0;
  std::vector<Node> nodes;
  std::vector<int> outputs;            // value ids; -1: outputs_const[i] holds the tensor
  std::vector<Tensor> outputs_const;
  // The last node that reads each value, filled by plan_memory (-1: never freed).
  std::vector<int> last_use;
  // Traced shapes and dtypes of every value (for printing and the passes).
  std::vector<Shape> value_shapes;
  std::vector<DType> value_dtypes;
  std::vector<bool> value_requires_grad;

  tensor_list run(const tensor_list& inputs) const;
  std::string str() const;
};

// Raised by an invoker when state the trace assumed has changed (a .grad that was None and is
// now set): deepcore.jit retraces.
struct GuardMiss : RuntimeError {
  using RuntimeError::RuntimeError;
};
// A graph break under strict tracing (deepcore.jit.GraphBreakError in Python).
struct TraceError : RuntimeError {
  using RuntimeError::RuntimeError;
};

// ---- tracing --------------------------------------------------------------------------------

class Tracer {
 public:
  Tracer(const tensor_list& inputs, bool strict);
  // Looks a tensor argument up: a value id, or -1 for a constant.
  int value_of(const Tensor& t) const;
  void add_node(int op, Stack args, const tensor_list& outputs);
  // Records a break: the graph cannot stand for the function.
  void brk(const std::string& reason);
  std::shared_ptr<Graph> finish(const tensor_list& outputs);
  // Every tensor the trace knows, with its value id.
  const std::unordered_map<const TensorImpl*, int>& values() const { return ids_; }
  // Whether a node made the tensor (an op's in-place or pass-through result is not made).
  bool made_here(const TensorImpl* t) const { return made_.count(t) != 0; }

  bool strict;
  int depth = 0;  // > 0 while a recorded call runs (its nested ops are not recorded)
  std::string broken;
  std::shared_ptr<Graph> graph = std::make_shared<Graph>();

 private:
  int new_value(const Tensor& t);
  std::unordered_map<const TensorImpl*, int> ids_;
  std::unordered_set<const TensorImpl*> made_;
  std::vector<std::shared_ptr<TensorImpl>> keep_;  // no impl address is reused while tracing
};

Tracer* current_tracer();
void begin_trace(const tensor_list& inputs, bool strict);
std::shared_ptr<Graph> end_trace(const tensor_list& outputs);  // also ends an aborted trace
void abort_trace();

// True when a binding should record its call (tracing, and not nested inside a recorded call).
inline bool recording() {
  extern thread_local Tracer* tls_tracer;
  return tls_tracer != nullptr && tls_tracer->depth == 0;
}

// A binding's recorded call: construct, run the op, then finish with the boxed arguments.
// Inactive (false, and free) unless recording() when constructed; while active, the ops the
// call runs are nested in it and not recorded. Build the boxed arguments only `if (rec)`.
// With op -1 it is never finished: the ops inside are just kept out of the graph.
class Record {
 public:
  explicit Record(int op);
  // The op by name, looked up only when recording (so an eager call pays no lookup).
  explicit Record(const char* op_name);
  ~Record();
  explicit operator bool() const { return t_ != nullptr; }
  void finish(Stack args, const tensor_list& outputs);
  Record(const Record&) = delete;
  Record& operator=(const Record&) = delete;

 private:
  int op_;
  Tracer* t_;
  bool done_ = false;
};

// Results of the ops as a tensor_list.
inline tensor_list as_outputs(const Tensor& t) { return {t}; }
inline tensor_list as_outputs(const tensor_list& t) { return t; }
inline tensor_list as_outputs(const std::pair<Tensor, Tensor>& t) { return {t.first, t.second}; }
template <typename... Ts>
tensor_list as_outputs(const std::tuple<Ts...>& t) {
  return std::apply([](const auto&... x) { return tensor_list{Tensor(x)...}; }, t);
}

// Runs `call` as op `op` (an id or a name), recorded when tracing; `args()` builds the boxed
// arguments, only then.
template <typename Op, typename ArgsFn, typename F>
auto record_call(Op op, ArgsFn&& args, F&& call) {
  Record rec(op);
  auto r = call();
  if (rec) rec.finish(args(), as_outputs(r));
  return r;
}

// A Python read of tensor values (item, numpy, bool, ...): breaks the trace, or raises
// TraceError naming `what` under strict tracing.
void on_value_read(const char* what);
// A change the graph cannot record (detach_, .data =, hooks): the same.
void on_untraceable(const char* what);
// Python's file:line of the code that triggered a break (installed by deepcore.jit).
void set_location_hook(std::function<std::string()> hook);

// ---- passes (passes.cpp) --------------------------------------------------------------------
void eliminate_dead_code(Graph& g);
void fold_constants(Graph& g);
// `fault` (tests only) makes every fused mul an add: a deliberately wrong fusion that
// deepcore.jit(check=True) must catch.
void fuse_elementwise(Graph& g, bool fault = false);
// The id of the fused node's op, `_fused_elementwise` (Note [Elementwise fusion]).
int fused_elementwise_op();
void plan_memory(Graph& g);

}  // namespace dc::jit
