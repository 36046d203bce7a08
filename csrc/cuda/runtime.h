#pragma once
// The CUDA runtime as the rest of deepcore sees it (built only with -DDEEPCORE_CUDA=ON): device
// queries, and the caching allocator's backend on cudaMalloc/cudaFree and CUDA events (Note
// [Caching device allocator] in core/caching_allocator.h). On a machine without a device,
// device_count() is 0 and everything that needs one raises "no CUDA device".
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "core/caching_allocator.h"

namespace dc::cuda {

int device_count();  // 0 without a driver or a device
// RuntimeError "no CUDA device" without one; IndexError for an index out of range.
void check_device(int device);
std::string device_name(int device);
int compute_capability(int device);  // major * 10 + minor
size_t total_memory(int device);
// What a roofline needs: SM count, clocks (kHz) and the memory bus width (bits).
struct DeviceAttributes {
  int multi_processor_count = 0, clock_rate_khz = 0, memory_clock_rate_khz = 0,
      memory_bus_width_bits = 0, l2_cache_bytes = 0;
};
DeviceAttributes device_attributes(int device);
int driver_version();   // e.g. 13000; 0 without a driver
int runtime_version();  // of the cudart deepcore is linked with
int current_device();
void set_device(int device);
void synchronize(int device);

// Makes `device` the current device for a scope, and the previous one current again after.
class DeviceScope {
 public:
  explicit DeviceScope(int device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int prev_ = 0, target_ = 0;
};

// A library deepcore uses without linking it (cuBLAS, NCCL): dlopen of each of `paths` in turn
// until `bind` (which resolves the entry points from the handle, or says in `reason` why it
// cannot) accepts one. Returns its path, or "" with `why` listing what each path gave.
std::string open_library(const std::vector<std::string>& paths,
                         const std::function<bool(void* handle, std::string& reason)>& bind,
                         std::string& why);

// The allocator of `device` (created on first use).
CachingAllocator& allocator(int device);

// Makes cuda tensors possible: registers the allocator and cudaMemcpy as the cuda device's
// memory (Note [Device memory backends] in core/device_memory.h), and the kernels of
// csrc/kernels/cuda in the cuda kernel table. Called when the module loads.
void register_memory();

}  // namespace dc::cuda
