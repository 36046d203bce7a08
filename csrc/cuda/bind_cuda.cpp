// deepcore.cuda's runtime queries and memory statistics (built only with -DDEEPCORE_CUDA=ON).
#include "cuda/cublas.h"
#include "cuda/runtime.h"
#include "python/common.h"

namespace dc::py_bind {
namespace {

void bind_cuda(py::module_& m) {
  cuda::register_memory();  // cuda tensors: allocated and copied through the runtime
  m.def("_cuda_device_count", &cuda::device_count);
  m.def("_cuda_device_name", &cuda::device_name);
  m.def("_cuda_capability", &cuda::compute_capability);
  m.def("_cuda_total_memory", &cuda::total_memory);
  m.def("_cuda_attributes", [](int device) {
    const cuda::DeviceAttributes a = cuda::device_attributes(device);
    py::dict d;
    d["multi_processor_count"] = a.multi_processor_count;
    d["clock_rate"] = a.clock_rate_khz;
    d["memory_clock_rate"] = a.memory_clock_rate_khz;
    d["memory_bus_width"] = a.memory_bus_width_bits;
    d["l2_cache_size"] = a.l2_cache_bytes;
    return d;
  });
  m.def("_cuda_driver_version", &cuda::driver_version);
  m.def("_cuda_runtime_version", &cuda::runtime_version);
  m.def("_cuda_current_device", &cuda::current_device);
  m.def("_cuda_set_device", &cuda::set_device);
  m.def("_cuda_synchronize", [](int device) {
    py::gil_scoped_release release;
    cuda::synchronize(device);
  });
  m.def("_cuda_memory_stats", [](int device) {
    const CachingAllocator::Stats s = cuda::allocator(device).stats();
    py::dict d;
    d["allocated_bytes"] = s.allocated;
    d["max_allocated_bytes"] = s.max_allocated;
    d["reserved_bytes"] = s.reserved;
    d["max_reserved_bytes"] = s.max_reserved;
    d["cached_bytes"] = s.cached;
    d["backend_allocs"] = s.backend_allocs;
    return d;
  });
  m.def("_cuda_cublas_search_paths", &cuda::cublas::set_search_paths);
  m.def("_cuda_cublas_where", [] {
    return py::make_tuple(cuda::cublas::available(), cuda::cublas::where());
  });
  m.def("_cuda_set_blas", [](const std::string& name) {
    cuda::cublas::set_preferred(name == "deepcore" ? cuda::cublas::Library::deepcore
                                                   : cuda::cublas::Library::cublas);
  });
  m.def("_cuda_blas", [] {
    return cuda::cublas::preferred() == cuda::cublas::Library::deepcore ? "deepcore" : "cublas";
  });
  m.def("_cuda_empty_cache", [](int device) { cuda::allocator(device).empty_cache(); });
  m.def("_cuda_reset_peak", [](int device) { cuda::allocator(device).reset_peak(); });
}

const BindingRegistrar reg("cuda", bind_cuda);

}  // namespace
}  // namespace dc::py_bind
