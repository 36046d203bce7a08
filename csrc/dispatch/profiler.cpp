#include "dispatch/profiler.h"

#include <chrono>

#include "dispatch/dispatcher.h"

namespace dc::profiler {

namespace {

// Recording is per thread (the key is thread-local), so the buffer needs no lock.
struct State {
  bool on = false;
  bool record_shapes = false;
  int64_t origin_ns = 0;
  int depth = 0;
  std::vector<Event> events;
};
thread_local State state;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// slot[0]: start time; slot[1]: time spent in directly nested calls; the depth lives in the
// frame's position on the stack, counted here.
void enter(dispatch::OpFrame& f) {
  f.slot[1] = 0;
  ++state.depth;
  f.slot[0] = now_ns();
}

void exit(dispatch::OpFrame& f) {
  const int64_t end = now_ns();
  if (!state.on) return;
  --state.depth;
  const int64_t total = end - f.slot[0];
  if (f.parent && f.parent->hooked) f.parent->slot[1] += total;
  try {
    Event e;
    e.name = f.op;
    e.device = f.device.str();
    e.start_ns = f.slot[0] - state.origin_ns;
    e.total_ns = total;
    e.self_ns = total - f.slot[1];
    e.flops = f.flops;
    e.depth = state.depth;
    e.is_range = f.is_range;
    if (state.record_shapes)
      for (int i = 0; i < f.num_inputs; ++i)
        if (f.inputs[i] && f.inputs[i]->defined()) e.input_shapes.push_back(f.inputs[i]->sizes());
    state.events.push_back(std::move(e));
  } catch (...) {
    // Out of memory while profiling: drop the event rather than throw from a destructor.
  }
}

}  // namespace

bool enabled() { return state.on; }

void start(bool record_shapes) {
  DC_CHECK(!state.on, RuntimeError, "[profiler] already recording on this thread");
  dispatch::set_key_handler(dispatch::Key::Profiler, {enter, exit});
  state = State{};
  state.on = true;
  state.record_shapes = record_shapes;
  state.origin_ns = now_ns();
  dispatch::set_key_active(dispatch::Key::Profiler, true);
}

std::vector<Event> stop() {
  DC_CHECK(state.on, RuntimeError, "[profiler] not recording on this thread");
  dispatch::set_key_active(dispatch::Key::Profiler, false);
  state.on = false;
  return std::move(state.events);
}

}  // namespace dc::profiler
