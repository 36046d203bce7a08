#include "dispatch/dispatcher.h"

#include <cstddef>
#include <string>

namespace dc::dispatch {

namespace {
KeyHandler handlers[kNumKeys];
DataDependentHook data_dependent_hook = nullptr;
}  // namespace

void set_data_dependent_hook(DataDependentHook hook) { data_dependent_hook = hook; }
void detail::call_data_dependent_hook(const char* op) {
  if (data_dependent_hook) data_dependent_hook(op);
}

const char* key_name(Key k) {
  switch (k) {
    case Key::Autograd: return "Autograd";
    case Key::Autocast: return "Autocast";
    case Key::Tracer: return "Tracer";
    case Key::Profiler: return "Profiler";
  }
  return "?";
}

void set_key_handler(Key key, KeyHandler handler) {
  DC_CHECK(key != Key::Autograd, ValueError,
           "[dispatch] the Autograd key runs in the op bodies (autograd::record); it takes no handler");
  handlers[static_cast<int>(key)] = handler;
}

void set_key_active(Key k, bool on) {
  if (on && k != Key::Autograd) {
    const KeyHandler& h = handlers[static_cast<int>(k)];
    DC_CHECK(h.enter || h.exit, RuntimeError, "[dispatch] the ", key_name(k),
             " key has no handler installed in this build");
  }
  if (on) detail::tls.keys |= key_bit(k);
  else detail::tls.keys &= ~key_bit(k);
}

namespace {
struct RangeFrame {
  std::string name;
  OpFrame frame;
};
}  // namespace

OpFrame* push_range(const char* name) {
  auto* r = new RangeFrame{name, {}};
  r->frame.op = r->name.c_str();
  r->frame.device = current_device();
  r->frame.is_range = true;
  r->frame.parent = detail::tls.top;
  detail::tls.top = &r->frame;
  if (detail::tls.keys & kHookKeys) {
    r->frame.hooked = true;
    detail::enter_hooks(r->frame);
  }
  return &r->frame;
}

void pop_range(OpFrame* frame) {
  DC_CHECK(frame && detail::tls.top == frame, RuntimeError,
           "[record_function] ranges must end in the reverse order they started");
  // The frame is the second member of its RangeFrame.
  RangeFrame* r = reinterpret_cast<RangeFrame*>(reinterpret_cast<char*>(frame) -
                                                offsetof(RangeFrame, frame));
  detail::tls.top = frame->parent;
  if (frame->hooked) detail::exit_hooks(*frame);
  delete r;
}

namespace detail {

// Entered in key order; left in reverse order, so each key sees the call nested inside the
// ones before it.
void enter_hooks(OpFrame& f) {
  const uint32_t keys = tls.keys;
  for (int k = 0; k < kNumKeys; ++k) {
    if (!(keys & (1u << k))) continue;
    if (auto fn = handlers[k].enter) fn(f);
  }
}

void exit_hooks(OpFrame& f) noexcept {
  const uint32_t keys = tls.keys;
  for (int k = kNumKeys - 1; k >= 0; --k) {
    if (!(keys & (1u << k))) continue;
    if (auto fn = handlers[k].exit) fn(f);
  }
}

void throw_mixed_devices(const char* op, Device a, Device b) {
  DC_THROW(RuntimeError, "[", op, "] expected all tensors to be on the same device, but found "
           "at least two devices, ", a.str(), " and ", b.str());
}

}  // namespace detail
}  // namespace dc::dispatch

namespace dc {

void Tensor::throw_no_host_values() const {
  if (!is_meta())
    DC_THROW(RuntimeError, "[", dispatch::current_op_name(), "] needs on the host the values of a "
             "tensor of shape ", shape_str(), " on ", device().str(), ": copy it with .cpu() first");
  DC_THROW(RuntimeError, "[", dispatch::current_op_name(), "] needs the values of a tensor of shape ",
           shape_str(), " on the meta device, which holds shapes and dtypes only: this op's result "
           "depends on the data, so it cannot run on meta");
}

}  // namespace dc
