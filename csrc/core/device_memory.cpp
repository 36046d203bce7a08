#include "core/device_memory.h"

#include <atomic>
#include <vector>

#include "core/error.h"

namespace dc {

namespace {
std::atomic<const DeviceMemory*> backends[kNumDeviceTypes];
thread_local std::vector<int64_t> current_streams;  // per device index; 0 past the end
}  // namespace

int64_t current_stream(int device) {
  const auto i = static_cast<size_t>(device < 0 ? 0 : device);
  return i < current_streams.size() ? current_streams[i] : 0;
}

void set_current_stream(int device, int64_t stream) {
  const auto i = static_cast<size_t>(device < 0 ? 0 : device);
  if (current_streams.size() <= i) current_streams.resize(i + 1, 0);
  current_streams[i] = stream;
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
