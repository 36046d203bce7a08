#pragma once
// Note [Precision policies]
// Two things decide the dtype an op computes in, both from its row of ops/ops.schema and both
// applied by one generic step of the op's binding (tools/gen_ops.py emits it; hand-written
// bindings call it the same way) before the op runs:
//
//   The Autocast key (deepcore.autocast). While it is on, the op's cast policy (`amp=` in the
//   schema, the lists of torch's CPU autocast) casts its floating tensor arguments, float64
//   excepted as in torch:
//     lower    to the autocast dtype (matmul, linear, conv, bmm, addmm, attention): the ops
//              that gain from bfloat16 arithmetic.
//     fp32     to float32 (losses, prod, cumulative and norm-like reductions that lose accuracy).
//     promote  to the widest of them (cat, stack, index_copy), so mixed inputs can meet.
//     (none)   untouched: the op runs in the dtype it is given, bfloat16 included.
//   The casts are ordinary differentiable ops, so gradients come back in each input's dtype
//   (a float32 parameter gets a float32 gradient).
//
//   Reduced-precision fallback. An op whose kernels compute bfloat16 and float16 themselves is
//   marked `half` in the schema (elementwise loops, copies, indexing, matmul, reductions by
//   sum). Any other op given a 16-bit float runs in float32: its 16-bit arguments are widened,
//   and its float32 results rounded back to the 16-bit dtype of its first such argument, which
//   is torch's result dtype for these ops (they compute in float internally and round once).
//   An in-place op writes the rounded result back into its argument.
//
// With neither in play (the Autocast key off, no 16-bit argument) the step costs the key test
// and a dtype test per tensor argument.
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "dispatch/dispatcher.h"

namespace dc::dispatch {

enum class CastPolicy : uint8_t { none, lower, fp32, promote };

// deepcore.autocast's state on this thread: on/off (the Autocast key) and the lower dtype.
void set_autocast(bool enabled, DType dtype);
bool autocast_enabled();
DType autocast_dtype();

namespace precision {

inline bool reduced(const Tensor& t) { return t.defined() && is_reduced_float(t.dtype()); }
inline bool reduced(const std::vector<Tensor>& ts) {
  for (const Tensor& t : ts)
    if (reduced(t)) return true;
  return false;
}

// Whether the op's call needs the precision step: the Autocast key is on and the op has a cast
// policy, or a 16-bit float reaches an op without `half` kernels.
template <typename... Ts>
inline bool needed(CastPolicy policy, bool half_kernels, const Ts&... ts) {
  if (policy != CastPolicy::none && key_active(Key::Autocast)) return true;
  return !half_kernels && (reduced(ts) || ...);
}

// What the step does to one call, from its tensor arguments.
struct Plan {
  bool autocast = false;
  DType cast_to = DType::Float32;  // the autocast target (lower / fp32 / promote)
  bool widen = false;               // run a non-half op in float32
  DType round_to = DType::Float32;  // the 16-bit dtype float32 results go back to
};

// The floating dtypes among a call's tensor arguments.
struct ArgDtypes {
  bool any_float = false;
  DType widest = DType::Bool;         // their promotion (meaningful when any_float)
  bool any_reduced = false;
  DType first_reduced = DType::Float32;  // the first 16-bit one (when any_reduced)

  void note(const Tensor& t);
  void note(const std::vector<Tensor>& ts) {
    for (const Tensor& t : ts) note(t);
  }
};

Plan make_plan(CastPolicy policy, bool half_kernels, ArgDtypes seen);

// Casts an argument by the plan: the autocast cast, then the float32 widening.
Tensor apply(const Plan& plan, const Tensor& t);
// Rounds float32 results of a widened call back to the plan's 16-bit dtype.
Tensor round_back(const Plan& plan, const Tensor& t);

// fn on each tensor of a list, for the list arguments and results.
template <typename F>
std::vector<Tensor> each(const Plan& plan, const std::vector<Tensor>& ts, F fn) {
  std::vector<Tensor> out;
  out.reserve(ts.size());
  for (const Tensor& t : ts) out.push_back(fn(plan, t));
  return out;
}
inline std::vector<Tensor> apply(const Plan& plan, const std::vector<Tensor>& ts) {
  return each(plan, ts, [](const Plan& p, const Tensor& t) { return apply(p, t); });
}
inline std::vector<Tensor> round_back(const Plan& plan, const std::vector<Tensor>& ts) {
  return each(plan, ts, [](const Plan& p, const Tensor& t) { return round_back(p, t); });
}
template <typename... Ts>
std::tuple<Ts...> round_back(const Plan& plan, const std::tuple<Ts...>& t) {
  return std::apply([&](const auto&... x) { return std::tuple<Ts...>(round_back(plan, x)...); },
                    t);
}
template <typename A, typename B>
std::pair<A, B> round_back(const Plan& plan, const std::pair<A, B>& p) {
  return {round_back(plan, p.first), round_back(plan, p.second)};
}
template <typename T>
T round_back(const Plan&, const T& value) {
  return value;  // not a tensor: an index, a count, a Python object
}

// An in-place op run widened wrote its float32 copy: write it back into the argument.
Tensor write_back(const Tensor& original, const Tensor& result);
inline Tensor write_back(const std::vector<Tensor>&, const Tensor& result) { return result; }
template <typename T0, typename... Rest>
const T0& first_of(const T0& a, const Rest&...) {
  return a;
}

// Runs fn(args...) with the arguments cast by the op's policy (Note [Precision policies]).
// `inplace`: the first argument is written by the op.
template <typename F, typename... Ts>
auto call(CastPolicy policy, bool half_kernels, bool inplace, F&& fn, const Ts&... args) {
  ArgDtypes seen;
  (seen.note(args), ...);
  const Plan plan = make_plan(policy, half_kernels, seen);
  auto result = fn(apply(plan, args)...);
  if (!plan.widen) return result;
  if constexpr (std::is_same_v<std::decay_t<decltype(result)>, Tensor>) {
    if (inplace) return write_back(first_of(args...), result);
  }
  return decltype(result)(round_back(plan, result));
}

}  // namespace precision
}  // namespace dc::dispatch
