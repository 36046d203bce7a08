#include <sstream>

#include "autograd/grad_mode.h"
#include "dispatch/dispatcher.h"
#include "jit/graph.h"

namespace dc::jit {

thread_local Tracer* tls_tracer = nullptr;

// ---- the invoker table ----------------------------------------------------------------------

namespace {
struct OpTable {
  struct Entry {
    std::string name;
    Invoker fn;
    Effect effect;
  };
  std::vector<Entry> ops;
  std::unordered_map<std::string, int> by_name;
};
OpTable& table() {
  static OpTable t;
  return t;
}
std::function<std::string()>& location_hook() {
  static std::function<std::string()> h;
  return h;
}
}  // namespace

int register_op(const char* name, Invoker fn, Effect effect) {
  OpTable& t = table();
  auto it = t.by_name.find(name);
  if (it != t.by_name.end()) return it->second;
  t.ops.push_back({name, fn, effect});
  const int id = static_cast<int>(t.ops.size()) - 1;
  t.by_name.emplace(name, id);
  return id;
}

int find_op(const std::string& name) {
  auto it = table().by_name.find(name);
  return it == table().by_name.end() ? -1 : it->second;
}

const char* op_name(int id) { return table().ops.at(id).name.c_str(); }
Invoker op_invoker(int id) { return table().ops.at(id).fn; }
bool op_pure(int id) { return table().ops.at(id).effect == Effect::None; }
bool op_writes(int id) { return table().ops.at(id).effect == Effect::Writes; }

void set_location_hook(std::function<std::string()> hook) { location_hook() = std::move(hook); }

namespace {
std::string location() {
  auto& h = location_hook();
  return h ? h() : std::string();
}

// The Tracer key's handler: an op that starts at the outermost level while no recorded call
// runs was reached through a path no binding recorded (Note [Traced graphs]).
void on_enter(dispatch::OpFrame& f) {
  Tracer* t = tls_tracer;
  if (!t || t->depth > 0 || f.is_range) return;
  for (const dispatch::OpFrame* p = f.parent; p; p = p->parent)
    if (!p->is_range) return;
  t->brk(std::string("op '") + f.op + "' ran through a call the tracer does not record");
}

// An op whose result shape depends on tensor values, at any depth: a replay would keep the
// traced shape.
void on_data_dependent(const char* op) {
  Tracer* t = tls_tracer;
  if (!t) return;
  const std::string reason = std::string("op '") + op +
                             "' gives a result whose shape depends on tensor values";
  if (t->strict) {
    std::string where = location();
    throw TraceError("[jit] graph break: " + reason + (where.empty() ? "" : " (at " + where + ")"));
  }
  t->brk(reason);
}

struct InstallHandler {
  InstallHandler() {
    dispatch::set_key_handler(dispatch::Key::Tracer, {&on_enter, nullptr});
    dispatch::set_data_dependent_hook(&on_data_dependent);
  }
} install_handler;
}  // namespace

// ---- the tracer -----------------------------------------------------------------------------

Tracer::Tracer(const tensor_list& inputs, bool strict_) : strict(strict_) {
  graph->num_inputs = static_cast<int>(inputs.size());
  // The same tensor passed twice: the later id wins the lookups (deepcore.jit's cache key
  // keeps calls with different aliasing apart).
  for (const Tensor& t : inputs) new_value(t);
}

int Tracer::new_value(const Tensor& t) {
  Graph& g = *graph;
  const int id = g.num_values++;
  g.value_shapes.push_back(t.defined() ? t.sizes() : Shape{});
  g.value_dtypes.push_back(t.defined() ? t.dtype() : DType::Float32);
  g.value_requires_grad.push_back(t.defined() && t.requires_grad());
  if (t.defined()) {
    ids_[t.impl()] = id;
    keep_.push_back(t.impl_ptr());
  }
  return id;
}

int Tracer::value_of(const Tensor& t) const {
  if (!t.defined()) return -1;
  auto it = ids_.find(t.impl());
  return it == ids_.end() ? -1 : it->second;
}

void Tracer::add_node(int op, Stack args, const tensor_list& outputs) {
  Node n;
  n.op = op;
  n.grad_mode = autograd::grad_enabled();
  for (int i = 0; i < static_cast<int>(args.size()); ++i) {
    if (auto* t = std::get_if<Tensor>(&args[i])) {
      const int v = value_of(*t);
      if (v >= 0) n.refs.push_back({i, -1, v});
    } else if (auto* l = std::get_if<tensor_list>(&args[i])) {
      for (int j = 0; j < static_cast<int>(l->size()); ++j) {
        const int v = value_of((*l)[j]);
        if (v >= 0) n.refs.push_back({i, j, v});
      }
    }
  }
  for (const Tensor& o : outputs) {
    if (!o.defined()) continue;
    bool passed_in = false;
    for (const IValue& a : args) {
      if (auto* t = std::get_if<Tensor>(&a)) passed_in |= t->is_same(o);
      else if (auto* l = std::get_if<tensor_list>(&a))
        for (const Tensor& e : *l) passed_in |= e.is_same(o);
    }
    if (!passed_in) made_.insert(o.impl());
  }
  n.args = std::move(args);
  for (const Tensor& o : outputs) n.outputs.push_back(o.defined() ? new_value(o) : -1);
  graph->nodes.push_back(std::move(n));
}

void Tracer::brk(const std::string& reason) {
  if (!broken.empty()) return;
  std::string where = location();
  broken = where.empty() ? reason : reason + " (at " + where + ")";
}

std::shared_ptr<Graph> Tracer::finish(const tensor_list& outputs) {
  Graph& g = *graph;
  for (const Tensor& o : outputs) {
    const int v = value_of(o);
    g.outputs.push_back(v);
    g.outputs_const.push_back(v < 0 ? o : Tensor());
  }
  // The traced tensors in the argument templates would pin this call's memory: only
  // constants stay.
  for (Node& n : g.nodes)
    for (const Ref& r : n.refs) {
      if (r.elem < 0) n.args[r.arg] = Tensor();
      else std::get<tensor_list>(n.args[r.arg])[r.elem] = Tensor();
    }
  return graph;
}

Tracer* current_tracer() { return tls_tracer; }

void begin_trace(const tensor_list& inputs, bool strict) {
  DC_CHECK(tls_tracer == nullptr, RuntimeError,
           "[jit] a trace is already running on this thread (jit calls do not nest while "
           "tracing)");
  tls_tracer = new Tracer(inputs, strict);
  dispatch::set_key_active(dispatch::Key::Tracer, true);
}

void abort_trace() {
  dispatch::set_key_active(dispatch::Key::Tracer, false);
  delete tls_tracer;
  tls_tracer = nullptr;
}

std::shared_ptr<Graph> end_trace(const tensor_list& outputs) {
  Tracer* t = tls_tracer;
  DC_CHECK(t != nullptr, RuntimeError, "[jit] no trace is running");
  std::shared_ptr<Graph> g;
  std::string broken = t->broken;
  if (broken.empty()) g = t->finish(outputs);
  abort_trace();
  if (!broken.empty()) throw TraceError(broken);
  return g;
}

Record::Record(int op) : op_(op), t_(recording() ? tls_tracer : nullptr) {
  if (t_) ++t_->depth;
}
Record::Record(const char* op_name) : Record(recording() ? find_op(op_name) : -1) {}
Record::~Record() {
  if (t_ && !done_) --t_->depth;
}
void Record::finish(Stack args, const tensor_list& outputs) {
  DC_CHECK(t_ != nullptr, RuntimeError, "[jit] finish of a call that is not being recorded");
  --t_->depth;
  done_ = true;
  t_->add_node(op_, std::move(args), outputs);
}

void on_value_read(const char* what) {
  Tracer* t = tls_tracer;
  if (!t || t->depth > 0) return;
  const std::string reason = std::string("Tensor.") + what +
                             "() reads tensor values while tracing; Python code that depends "
                             "on them cannot be replayed";
  if (t->strict) {
    std::string where = location();
    throw TraceError("[jit] graph break: " + reason + (where.empty() ? "" : " (at " + where + ")"));
  }
  t->brk(reason);
}

void on_untraceable(const char* what) {
  Tracer* t = tls_tracer;
  if (!t || t->depth > 0) return;
  const std::string reason = std::string(what) + " changes a tensor in a way a graph cannot record";
  if (t->strict) {
    std::string where = location();
    throw TraceError("[jit] graph break: " + reason + (where.empty() ? "" : " (at " + where + ")"));
  }
  t->brk(reason);
}

// ---- replay ---------------------------------------------------------------------------------

tensor_list Graph::run(const tensor_list& inputs) const {
  DC_CHECK(static_cast<int>(inputs.size()) == num_inputs, ValueError, "[jit] the graph takes ",
           num_inputs, " tensors, got ", inputs.size());
  std::vector<Tensor> env(num_values);
  for (int i = 0; i < num_inputs; ++i) env[i] = inputs[i];
  const bool outer_grad = autograd::grad_enabled();
  bool wrote = false;
  Stack args;
  for (size_t k = 0; k < nodes.size(); ++k) {
    const Node& n = nodes[k];
    args = n.args;
    for (const Ref& r : n.refs) {
      if (r.elem < 0) args[r.arg] = env[r.value];
      else std::get<tensor_list>(args[r.arg])[r.elem] = env[r.value];
    }
    tensor_list outs;
    {
      autograd::GradModeGuard gm(n.grad_mode && outer_grad);
      try {
        outs = op_invoker(n.op)(args);
      } catch (const GuardMiss& miss) {
        // Before any write, deepcore.jit can simply trace again; after one it cannot undo it.
        if (wrote)
          throw RuntimeError(std::string(miss.what()) + ", after the graph had written state: "
                             "the call is left half done (node " + std::to_string(k) + ", " +
                             op_name(n.op) + ")");
        throw;
      }
    }
    if (op_writes(n.op)) wrote = true;
    DC_CHECK(outs.size() >= n.outputs.size(), RuntimeError, "[jit] op '", op_name(n.op),
             "' returned ", outs.size(), " results on replay, ", n.outputs.size(),
             " when traced");
    for (size_t j = 0; j < n.outputs.size(); ++j)
      if (n.outputs[j] >= 0) env[n.outputs[j]] = std::move(outs[j]);
    if (!last_use.empty()) {
      // Memory planning: a value nobody reads again goes back to the allocator now, so the
      // next node's output can take its block (plan_memory, passes.cpp).
      for (const Ref& r : n.refs)
        if (last_use[r.value] == static_cast<int>(k)) env[r.value] = Tensor();
    }
  }
  tensor_list out(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i)
    out[i] = outputs[i] >= 0 ? env[outputs[i]] : outputs_const[i];
  return out;
}

// ---- printing -------------------------------------------------------------------------------

namespace {
std::string shape_text(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

std::string const_text(const Tensor& t) {
  if (!t.defined()) return "None";
  if (t.dim() == 0 && t.numel() == 1 && t.impl()->is_wrapped_number) {
    std::ostringstream os;
    os << "const(" << dtype_name(t.dtype()) << ")";
    return os.str();
  }
  return std::string("const ") + dtype_name(t.dtype()) + shape_text(t.sizes());
}

struct ArgText {
  std::string operator()(std::monostate) const { return "None"; }
  std::string operator()(const Tensor& t) const { return const_text(t); }
  std::string operator()(const tensor_list& l) const {
    std::string s = "[";
    for (size_t i = 0; i < l.size(); ++i) s += (i ? ", " : "") + const_text(l[i]);
    return s + "]";
  }
  std::string operator()(const Scalar& v) const {
    std::ostringstream os;
    if (v.is_bool()) os << (v.to_int() ? "True" : "False");
    else if (v.is_int()) os << v.to_int();
    else os << v.to_double();
    return os.str();
  }
  std::string operator()(const std::optional<Scalar>& v) const {
    return v ? (*this)(*v) : "None";
  }
  std::string operator()(const Shape& s) const { return shape_text(s); }
  std::string operator()(DType d) const { return dtype_name(d); }
  std::string operator()(const std::optional<DType>& d) const {
    return d ? std::string(dtype_name(*d)) : "None";
  }
  std::string operator()(int64_t v) const { return std::to_string(v); }
  std::string operator()(double v) const {
    std::ostringstream os;
    os << v;
    return os.str();
  }
  std::string operator()(bool v) const { return v ? "True" : "False"; }
  std::string operator()(const std::string& s) const { return "'" + s + "'"; }
  template <typename T>
  std::string operator()(const std::optional<T>& v) const {
    return v ? (*this)(*v) : "None";
  }
};
}  // namespace

std::string Graph::str() const {
  std::ostringstream os;
  auto value = [&](int v) {
    std::ostringstream s;
    s << "%" << v;
    return s.str();
  };
  auto typed = [&](int v) {
    return value(v) + ": " + dtype_name(value_dtypes[v]) + shape_text(value_shapes[v]);
  };
  os << "graph(";
  for (int i = 0; i < num_inputs; ++i) os << (i ? ", " : "") << typed(i);
  os << "):\n";
  for (const Node& n : nodes) {
    // Each argument's text, graph values in place of the traced tensors they stand for.
    std::vector<std::string> args;
    for (size_t i = 0; i < n.args.size(); ++i) {
      auto* l = std::get_if<tensor_list>(&n.args[i]);
      if (!l) {
        args.push_back(std::visit(ArgText{}, n.args[i]));
        continue;
      }
      std::vector<std::string> el;
      for (const Tensor& t : *l) el.push_back(const_text(t));
      for (const Ref& r : n.refs)
        if (r.arg == static_cast<int>(i)) el[r.elem] = value(r.value);
      std::string s = "[";
      for (size_t j = 0; j < el.size(); ++j) s += (j ? ", " : "") + el[j];
      args.push_back(s + "]");
    }
    for (const Ref& r : n.refs)
      if (r.elem < 0) args[r.arg] = value(r.value);
    os << "  ";
    if (!n.outputs.empty()) {
      for (size_t i = 0; i < n.outputs.size(); ++i)
        os << (i ? ", " : "") << (n.outputs[i] >= 0 ? typed(n.outputs[i]) : std::string("_"));
      os << " = ";
    }
    os << op_name(n.op) << "(";
    for (size_t i = 0; i < args.size(); ++i) os << (i ? ", " : "") << args[i];
    os << ")";
    if (!n.grad_mode) os << "  # no_grad";
    if (!n.where.empty()) os << "  # " << n.where;
    os << "\n";
  }
  os << "  return (";
  for (size_t i = 0; i < outputs.size(); ++i)
    os << (i ? ", " : "") << (outputs[i] >= 0 ? value(outputs[i]) : const_text(outputs_const[i]));
  os << ")\n";
  return os.str();
}

}  // namespace dc::jit
