#pragma once
// Where a tensor's memory lives. `meta` tensors carry shapes, strides and dtypes but no memory:
// every op runs on them through the dispatcher's meta backend, which computes output shapes and
// skips the kernels (dry runs, Note [The dispatcher] in dispatch/dispatcher.h).
#include <cstdint>
#include <string>

namespace dc {

enum class DeviceType : int8_t { CPU = 0, CUDA = 1, Meta = 2 };
constexpr int kNumDeviceTypes = 3;

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = -1;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  bool is_meta() const { return type == DeviceType::Meta; }
  std::string str() const;
  // "cpu", "meta", "cuda", "cuda:1"; ValueError naming the string otherwise.
  static Device parse(const std::string& name);
};

const char* device_type_name(DeviceType t);

// The device new tensors go to when none is named: the device of the op in flight (the
// dispatcher makes it current for the op's body), else the cpu. Thread-local, like grad mode.
namespace detail {
inline thread_local Device tls_current_device;
}
inline Device current_device() { return detail::tls_current_device; }
// For callers that cannot hold a DeviceGuard across the scope (Python's context managers).
inline void set_current_device(Device d) { detail::tls_current_device = d; }

// Makes `d` current until the end of the scope.
class DeviceGuard {
 public:
  explicit DeviceGuard(Device d) : prev_(detail::tls_current_device) {
    detail::tls_current_device = d;
  }
  ~DeviceGuard() { detail::tls_current_device = prev_; }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  Device prev_;
};

}  // namespace dc
