#include "core/device.h"

#include "core/error.h"

namespace dc {

const char* device_type_name(DeviceType t) {
  switch (t) {
    case DeviceType::CPU: return "cpu";
    case DeviceType::CUDA: return "cuda";
    case DeviceType::Meta: return "meta";
  }
  return "unknown";
}

std::string Device::str() const {
  std::string s = device_type_name(type);
  return index >= 0 ? s + ":" + std::to_string(index) : s;
}

Device Device::parse(const std::string& name) {
  const size_t colon = name.find(':');
  const std::string kind = name.substr(0, colon);
  Device d;
  if (kind == "cpu") d.type = DeviceType::CPU;
  else if (kind == "cuda") d.type = DeviceType::CUDA;
  else if (kind == "meta") d.type = DeviceType::Meta;
  else DC_THROW(ValueError, "[device] expected one of cpu, cuda, meta (optionally with :index), got '",
                name, "'");
  if (colon != std::string::npos) {
    const std::string idx = name.substr(colon + 1);
    DC_CHECK(!idx.empty() && idx.size() < 6 && idx.find_first_not_of("0123456789") == std::string::npos,
             ValueError, "[device] invalid device index in '", name, "'");
    d.index = std::stoi(idx);
  }
  return d;
}

}  // namespace dc
