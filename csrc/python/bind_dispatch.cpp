// Bindings of the dispatcher: devices, the meta device's memory counters and the profiler key.
#include "dispatch/dispatcher.h"
#include "dispatch/profiler.h"
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

py::list shapes_of(const profiler::Event& e) {
  py::list out;
  for (const Shape& s : e.input_shapes) out.append(py::tuple(py::cast(s)));
  return out;
}

void bind_dispatch(py::module_& m) {
  // Device types in the order of DeviceType: the Python device objects are looked up by index.
  m.def("_device_index", [](const Tensor& t) { return static_cast<int>(t.device().type); });
  m.def("_parse_device", [](const std::string& name) {
    const Device d = Device::parse(name);
    return py::make_tuple(device_type_name(d.type), d.index);
  });
  m.def("_current_device", [] { return current_device().str(); });
  // Makes `name` the device factories allocate on; returns the previous one (for restoring).
  m.def("_set_current_device", [](const std::string& name) {
    const std::string prev = current_device().str();
    const Device d = Device::parse(name);
    DC_CHECK(d.type != DeviceType::CUDA, RuntimeError, "[device] device '", name,
             "' is not available: this build of deepcore has no CUDA backend");
    set_current_device(d);
    return prev;
  });
  m.def("_to_device", [](const Tensor& t, const std::string& name) {
    return ops::to_device(t, Device::parse(name));
  });
  m.def("_meta_memory", [] {
    const MetaMemoryStats s = meta_memory_stats();
    return py::make_tuple(s.live, s.peak);
  });
  m.def("_reset_meta_peak", &reset_meta_peak);
  m.def("_dispatch_keys", [] {
    py::list out;
    for (int k = 0; k < dispatch::kNumKeys; ++k)
      if (dispatch::key_active(static_cast<dispatch::Key>(k)))
        out.append(dispatch::key_name(static_cast<dispatch::Key>(k)));
    return out;
  });

  m.def("_profiler_start", &profiler::start, py::arg("record_shapes") = true);
  m.def("_profiler_enabled", &profiler::enabled);
  // Events as tuples: (name, input shapes, device, start_ns, total_ns, self_ns, flops, depth,
  // is_range).
  m.def("_profiler_stop", [] {
    std::vector<profiler::Event> events = profiler::stop();
    py::list out;
    for (const profiler::Event& e : events)
      out.append(py::make_tuple(e.name, shapes_of(e), e.device, e.start_ns, e.total_ns, e.self_ns,
                                e.flops, e.depth, e.is_range));
    return out;
  });
  m.def("_record_function_enter", [](const std::string& name) {
    return reinterpret_cast<uintptr_t>(dispatch::push_range(name.c_str()));
  });
  m.def("_record_function_exit", [](uintptr_t handle) {
    dispatch::pop_range(reinterpret_cast<dispatch::OpFrame*>(handle));
  });
}

const BindingRegistrar registrar("dispatch", bind_dispatch);

}  // namespace
}  // namespace dc::py_bind
