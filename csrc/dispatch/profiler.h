#pragma once
// The Profiler dispatch key (Note [The dispatcher]): while it is on, every op call and every
// record_function range on the profiling thread becomes one Event. Off, it costs nothing beyond
// the guard's one branch: no handler runs.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace dc::profiler {

struct Event {
  std::string name;
  std::vector<Shape> input_shapes;  // when record_shapes
  std::string device;
  int64_t start_ns = 0;  // since the profiler started
  int64_t total_ns = 0;  // wall time inside the call
  int64_t self_ns = 0;   // total minus the calls and ranges nested directly inside it
  double flops = 0.0;
  int depth = 0;         // nesting depth among recorded events (0: outermost)
  bool is_range = false; // a record_function range, not an op
};

// Starts recording on the calling thread (RuntimeError if already recording).
void start(bool record_shapes);
// Stops and returns the events in the order the calls ended.
std::vector<Event> stop();
bool enabled();

}  // namespace dc::profiler
