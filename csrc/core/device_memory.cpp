#include "core/device_memory.h"

#include <atomic>

#include "core/error.h"

namespace dc {

namespace {
std::atomic<const DeviceMemory*> backends[kNumDeviceTypes];
}

void register_device_memory(DeviceType type, const DeviceMemory* backend) {
  backends[static_cast<int>(type)].store(backend);
}

const DeviceMemory* device_memory(DeviceType type) {
  return backends[static_cast<int>(type)].load(std::memory_order_acquire);
}

Device resolve_device(Device d, const char* what) {
  if (d.type != DeviceType::CUDA) return d;
  const DeviceMemory* m = device_memory(d.type);
  DC_CHECK(m, RuntimeError, what, " device '", d.str(),
           "' is not available: deepcore was built without CUDA (build it with "
           "DEEPCORE_CUDA=1 pip install .)");
  const int n = m->device_count();
  DC_CHECK(n > 0, RuntimeError, what, " device '", d.str(), "' is not available: no CUDA device");
  if (d.index < 0) d.index = m->current_index();
  DC_CHECK(d.index < n, IndexError, what, " device '", d.str(), "' does not exist: there ",
           n == 1 ? "is 1 CUDA device" : "are " + std::to_string(n) + " CUDA devices");
  return d;
}

}  // namespace dc
