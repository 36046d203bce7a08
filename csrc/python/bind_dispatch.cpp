// Bindings of the dispatcher: devices, the meta device's memory counters and the profiler key.
#include <cstring>

#include "core/device_memory.h"
#include "dispatch/dispatcher.h"
#include "dispatch/kernels.h"
#include "dispatch/precision.h"
#include "dispatch/profiler.h"
#include "ops/ops.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

// Streams, events and pinned memory of the cuda device type, whichever backend serves it (the
// CUDA runtime or the fake device): Note [Streams and events] in core/device_memory.h. The
// Python layer (deepcore.cuda) checks that a device is there before calling these.
const DeviceStreams& cuda_streams() {
  const DeviceMemory* m = device_memory(DeviceType::CUDA);
  DC_CHECK(m && m->streams, RuntimeError, "[cuda] streams need a CUDA device");
  return *m->streams;
}

void bind_streams(py::module_& m) {
  m.def("_stream_from_pool", [](int device, int priority) {
    return cuda_streams().pool_stream(device, priority);
  });
  m.def("_stream_synchronize", [](int device, int64_t s) {
    py::gil_scoped_release release;
    cuda_streams().synchronize_stream(device, s);
  });
  m.def("_stream_query", [](int device, int64_t s) { return cuda_streams().query_stream(device, s); });
  m.def("_current_stream", [](int device) { return current_stream(device); });
  m.def("_set_current_stream", [](int device, int64_t s) { set_current_stream(device, s); });
  m.def("_event_create", [](int device, bool timing, bool blocking) {
    return cuda_streams().create_event(device, timing, blocking);
  });
  m.def("_event_destroy", [](int64_t e) { cuda_streams().destroy_event(e); });
  m.def("_event_record", [](int device, int64_t e, int64_t s) {
    cuda_streams().record_event(device, e, s);
  });
  m.def("_event_query", [](int64_t e) { return cuda_streams().query_event(e); });
  m.def("_event_synchronize", [](int64_t e) {
    py::gil_scoped_release release;
    cuda_streams().synchronize_event(e);
  });
  m.def("_stream_wait_event", [](int device, int64_t s, int64_t e) {
    cuda_streams().stream_wait_event(device, s, e);
  });
  m.def("_event_elapsed_ms", [](int64_t a, int64_t b) { return cuda_streams().elapsed_ms(a, b); });
  m.def("_record_stream", [](const Tensor& t, int64_t s) {
    DC_CHECK(t.device().type == DeviceType::CUDA, ValueError,
             "[record_stream] expected a cuda tensor, got one on ", t.device().str());
    if (t.storage()->data) cuda_streams().record_stream(t.device().index, t.storage()->data, s);
  });
  m.def("_pin_memory", [](const Tensor& t) {
    DC_CHECK(t.device().type == DeviceType::CPU, ValueError,
             "[pin_memory] only cpu tensors can be pinned, got one on ", t.device().str());
    const DeviceMemory* dm = device_memory(DeviceType::CUDA);
    DC_CHECK(dm && dm->allocate_pinned, RuntimeError, "[pin_memory] needs a CUDA device");
    if (t.storage()->pinned) return t;
    const Tensor src = t.is_contiguous() ? t : ops::contiguous(t);
    const size_t nbytes = static_cast<size_t>(src.numel()) * src.itemsize();
    Tensor out = Tensor::make_view(dm->allocate_pinned(nbytes), src.sizes(),
                                   contiguous_strides(src.sizes()), 0, src.dtype());
    if (nbytes) std::memcpy(out.data_ptr(), src.data_ptr(), nbytes);
    return out;
  });
  m.def("_is_pinned", [](const Tensor& t) {
    return t.device().type == DeviceType::CPU && t.storage() && t.storage()->pinned;
  });
}


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
    set_current_device(resolve_device(Device::parse(name), "[device]"));
    return prev;
  });
  // The device a name stands for, index filled in ("cuda" -> "cuda:0"); RuntimeError when this
  // build or machine has no such device (Note [Device memory backends]).
  m.def("_resolve_device", [](const std::string& name) {
    return resolve_device(Device::parse(name), "[device]").str();
  });
  m.def("_fake_cuda", &dispatch::set_fake_cuda, py::arg("on"));
  // deepcore.autocast (Note [Precision policies] in dispatch/precision.h).
  m.def("_set_autocast", &dispatch::set_autocast, py::arg("enabled"), py::arg("dtype"));
  m.def("_autocast_state", [] {
    return py::make_tuple(dispatch::autocast_enabled(), dispatch::autocast_dtype());
  });
  m.def("_fake_cuda_allocated", [] {
    const auto [now, peak] = dispatch::fake_cuda_allocated();
    return py::make_tuple(now, peak);
  });
  m.def("_fake_cuda_reset_peak", &dispatch::reset_fake_cuda_peak);
  // The registered backend of a device type ("cuda"): its name, or None without one.
  m.def("_device_backend", [](const std::string& type) -> py::object {
    const DeviceMemory* m = device_memory(Device::parse(type).type);
    return m ? py::object(py::str(m->name)) : py::object(py::none());
  });
  m.def("_device_count", [](const std::string& type) {
    const DeviceMemory* m = device_memory(Device::parse(type).type);
    return m ? m->device_count() : 0;
  });
  m.def("_device_synchronize", [](const std::string& name) {
    const Device d = resolve_device(Device::parse(name), "[synchronize]");
    if (const DeviceMemory* m = device_memory(d.type)) m->synchronize(d);
  });
  m.def("_device_str", [](const Tensor& t) { return t.device().str(); });
  bind_streams(m);
  m.def("_to_device", [](const Tensor& t, const std::string& name, bool non_blocking) {
    return ops::to_device(t, Device::parse(name), non_blocking);
  }, py::arg("tensor"), py::arg("device"), py::arg("non_blocking") = false);
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
