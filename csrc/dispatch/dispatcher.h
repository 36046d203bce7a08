#pragma once
// Note [The dispatcher]
// Every op call passes through one seam, whether it comes from Python or from a derivative
// formula in C++. The first line of every public op in csrc/ops/ is
//
//   DC_OP_GUARD("add", a, b);
//
// and the guard it declares
//   1. resolves the call's device from its tensor inputs. 0-d cpu tensors (Python numbers are
//      wrapped as such) go with any device, as in torch; two devices among the other inputs
//      are a RuntimeError naming both. An op with no tensor input (a factory, a nested helper) runs
//      on the current device, so ops nested in a meta op stay on meta.
//   2. makes that device current for the op's body: Tensor::empty allocates there by default,
//      and DC_KERNEL (dispatch/kernels.h) looks each kernel up in that device's table — cpu
//      (kernels/cpu/), meta (shapes only: no memory, no kernel runs) and cuda (empty until the
//      CUDA backend fills it). So the op layer never names a device.
//   3. runs the active dispatch keys, in this order:
//        Autograd  records the graph node. Its handler is autograd::record, called in the op's
//                  body beside the forward because the derivative is written there (one place
//                  per op); the key is the grad-mode bit, so no_grad() just clears it.
//        Autocast  casts the op's floating inputs by its cast policy (deepcore.autocast). The
//                  casts must replace the arguments, so the key is read by the precision step
//                  of the op's binding, before the op is entered: Note [Precision policies]
//                  in dispatch/precision.h. (It runs no handler here.)
//        Tracer    deepcore.jit's (jit/trace.cpp): while a trace runs, an op that starts at
//                  the outermost level without a binding recording it breaks the graph
//                  (Note [Traced graphs] in jit/graph.h).
//        Profiler  op name, input shapes, self and total time, FLOPs (dispatch/profiler.h).
//      The slot keys run a handler when the op is entered and when it returns. With none of
//      them active the guard costs one thread-local load and a branch (bench/compare.py's
//      per-op overhead row measures it).
#include <cstdint>
#include <initializer_list>

#include "core/tensor.h"

namespace dc::dispatch {

enum class Key : uint8_t { Autograd = 0, Autocast = 1, Tracer = 2, Profiler = 3 };
constexpr int kNumKeys = 4;
constexpr uint32_t key_bit(Key k) { return 1u << static_cast<int>(k); }
// The keys whose handlers run around each call (Autograd runs inside the op body instead,
// Autocast in the binding's precision step).
constexpr uint32_t kHookKeys = key_bit(Key::Tracer) | key_bit(Key::Profiler);
const char* key_name(Key k);

// One op call in flight. Handlers may keep per-call state in `slot`.
struct OpFrame {
  static constexpr int kMaxInputs = 8;
  const char* op = nullptr;
  Device device;
  // The fields below are filled only when a hook key is active (an op call with none active
  // leaves them unset: zeroing them would be most of the guard's cost).
  const Tensor* inputs[kMaxInputs];  // the first kMaxInputs tensor inputs
  int num_inputs = 0;
  double flops = 0.0;  // set by ops that know their arithmetic (matmul, conv)
  int64_t slot[2];
  bool is_range = false;  // a push_range frame, not an op
  bool hooked = false;    // the hook keys saw this call enter (so inputs and slot are set)
  OpFrame* parent = nullptr;
};

struct KeyHandler {
  void (*enter)(OpFrame&) = nullptr;
  void (*exit)(OpFrame&) = nullptr;  // must not throw: it runs from a destructor
};
// Installs the handler of a slot key (Tracer, Profiler).
void set_key_handler(Key key, KeyHandler handler);

namespace detail {
struct ThreadState {
  uint32_t keys = key_bit(Key::Autograd);
  OpFrame* top = nullptr;
};
inline thread_local ThreadState tls;
void enter_hooks(OpFrame& f);
void exit_hooks(OpFrame& f) noexcept;
[[noreturn]] void throw_mixed_devices(const char* op, Device a, Device b);
}  // namespace detail

inline uint32_t active_keys() { return detail::tls.keys; }
inline bool key_active(Key k) { return (detail::tls.keys & key_bit(k)) != 0; }
// Ops whose result shape depends on tensor values (nonzero, a bool-mask index) call this; while
// the Tracer key is on, the JIT's hook breaks the graph (a replay would keep the traced shape).
using DataDependentHook = void (*)(const char* op);
void set_data_dependent_hook(DataDependentHook hook);
namespace detail {
void call_data_dependent_hook(const char* op);
}
inline void data_dependent_shape(const char* op) {
  if (detail::tls.keys & key_bit(Key::Tracer)) detail::call_data_dependent_hook(op);
}

// Turns a key on or off for this thread; RuntimeError if a slot key has no handler (Autocast is
// turned on by dispatch::set_autocast).
void set_key_active(Key k, bool on);
// The innermost op in flight on this thread, or nullptr.
inline const OpFrame* current_op() { return detail::tls.top; }
inline const char* current_op_name() {
  return detail::tls.top ? detail::tls.top->op : "deepcore";
}

// Adds to the FLOPs of the innermost op in flight (multiply-add = 2), for the profiler. Ops call
// it where they launch a GEMM or a convolution; free when no hook key is active.
inline void add_flops(double flops) {
  if ((detail::tls.keys & kHookKeys) && detail::tls.top) detail::tls.top->flops += flops;
}

// A named range that is not an op (the profiler's record_function): a heap frame pushed on
// this thread's op stack, so the ops inside it nest under it. pop_range must get the frame
// push_range returned, in LIFO order.
OpFrame* push_range(const char* name);
void pop_range(OpFrame* frame);

class OpGuard {
 public:
  OpGuard(const char* op, std::initializer_list<const Tensor*> inputs)
      : device_guard_(resolve(op, inputs.begin(), inputs.size())) {
    frame_.op = op;
    frame_.device = current_device();
    push(inputs.begin(), inputs.size());
  }
  OpGuard(const char* op, const tensor_list& inputs)
      : device_guard_(resolve_list(op, inputs)) {
    frame_.op = op;
    frame_.device = current_device();
    if (detail::tls.keys & kHookKeys) {
      const Tensor* ptrs[OpFrame::kMaxInputs];
      size_t n = 0;
      for (const Tensor& t : inputs) {
        if (n == OpFrame::kMaxInputs) break;
        ptrs[n++] = &t;
      }
      push(ptrs, n);
    } else {
      push(nullptr, 0);
    }
  }
  // Factories: no tensor input, so the call runs on the current device (the one a caller
  // named with device=, or the device of the op it is nested in).
  explicit OpGuard(const char* op) : device_guard_(current_device()) {
    frame_.op = op;
    frame_.device = current_device();
    push(nullptr, 0);
  }
  ~OpGuard() {
    detail::tls.top = frame_.parent;
    if (frame_.hooked) detail::exit_hooks(frame_);
  }
  OpGuard(const OpGuard&) = delete;
  OpGuard& operator=(const OpGuard&) = delete;

  Device device() const { return frame_.device; }

 private:
  static Device resolve(const char* op, const Tensor* const* ts, size_t n) {
    Device d = current_device();
    bool found = false;
    for (size_t i = 0; i < n; ++i) pick(op, *ts[i], d, found);
    return d;
  }
  static Device resolve_list(const char* op, const tensor_list& ts) {
    Device d = current_device();
    bool found = false;
    for (const Tensor& t : ts) pick(op, t, d, found);
    return d;
  }
  static void pick(const char* op, const Tensor& t, Device& d, bool& found) {
    // 0-d cpu tensors (Python numbers among them) are scalars that go with any device.
    if (!t.defined() || (t.impl()->sizes.empty() && t.device().type == DeviceType::CPU)) return;
    const Device td = t.device();
    if (!found) {
      d = td;
      found = true;
    } else if (td != d) {
      detail::throw_mixed_devices(op, d, td);
    }
  }
  void push(const Tensor* const* ts, size_t n) {
    frame_.parent = detail::tls.top;
    detail::tls.top = &frame_;
    if (detail::tls.keys & kHookKeys) {
      frame_.slot[0] = frame_.slot[1] = 0;
      frame_.hooked = true;
      for (size_t i = 0; i < n && i < OpFrame::kMaxInputs; ++i) frame_.inputs[i] = ts[i];
      frame_.num_inputs = static_cast<int>(n < OpFrame::kMaxInputs ? n : OpFrame::kMaxInputs);
      detail::enter_hooks(frame_);
    }
  }

  DeviceGuard device_guard_;
  OpFrame frame_;
};

}  // namespace dc::dispatch

// The first statement of every public op: DC_OP_GUARD("name", tensor inputs...) or
// DC_OP_GUARD_LIST("name", tensor_list) or, for a factory, DC_OP_GUARD_FACTORY("name").
#define DC_OP_GUARD(name, ...) ::dc::dispatch::OpGuard dc_op_guard_(name, {DC_OP_PTRS(__VA_ARGS__)})
#define DC_OP_GUARD_LIST(name, list) ::dc::dispatch::OpGuard dc_op_guard_(name, list)
#define DC_OP_GUARD_FACTORY(name) ::dc::dispatch::OpGuard dc_op_guard_(name)

// &a, &b, ... for up to eight tensors.
#define DC_OP_PTR_1(a) &(a)
#define DC_OP_PTR_2(a, ...) &(a), DC_OP_PTR_1(__VA_ARGS__)
#define DC_OP_PTR_3(a, ...) &(a), DC_OP_PTR_2(__VA_ARGS__)
#define DC_OP_PTR_4(a, ...) &(a), DC_OP_PTR_3(__VA_ARGS__)
#define DC_OP_PTR_5(a, ...) &(a), DC_OP_PTR_4(__VA_ARGS__)
#define DC_OP_PTR_6(a, ...) &(a), DC_OP_PTR_5(__VA_ARGS__)
#define DC_OP_PTR_7(a, ...) &(a), DC_OP_PTR_6(__VA_ARGS__)
#define DC_OP_PTR_8(a, ...) &(a), DC_OP_PTR_7(__VA_ARGS__)
#define DC_OP_PTR_N(_1, _2, _3, _4, _5, _6, _7, _8, N, ...) DC_OP_PTR_##N
#define DC_OP_PTRS(...) \
  DC_OP_PTR_N(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)(__VA_ARGS__)
