#pragma once
// Note [Device memory backends]
// A device type with memory of its own (cuda) is usable once a backend registers how to take
// and copy that memory. The CUDA build registers cudaMalloc through the caching allocator (cuda/
// runtime.cpp); the tests can register a fake device instead (dispatch/fake_device.cpp), whose
// memory is host memory behind tagged pointers, so that all the device plumbing (placement,
// copies, autograd, modules, checkpoints) runs on machines without a GPU. With no backend,
// every entry point that needs one raises "deepcore was built without CUDA"; with a backend
// but no device, "no CUDA device".
#include <cstddef>
#include <memory>

#include "core/device.h"

namespace dc {

struct Storage;

struct DeviceMemory {
  const char* name;  // for messages: "CUDA"
  int (*device_count)();
  int (*current_index)();
  // Uninitialised memory on `d` (index resolved); MemoryError when exhausted.
  std::shared_ptr<Storage> (*allocate)(size_t nbytes, Device d);
  // n bytes between two dense ranges; each side is on this backend's type or the cpu. With
  // non_blocking the copy may return before it is done (pinned host memory only).
  void (*copy)(void* dst, Device dst_device, const void* src, Device src_device, size_t n,
               bool non_blocking);
  // Waits until the work queued on `d` is done (before the host reads what a copy wrote).
  void (*synchronize)(Device d);
};

// Installs (or, with nullptr, removes) the backend of a device type.
void register_device_memory(DeviceType type, const DeviceMemory* backend);
const DeviceMemory* device_memory(DeviceType type);  // nullptr: none registered

// `d` with its index filled in ("cuda" -> the current CUDA device), checked to exist:
// RuntimeError "deepcore was built without CUDA" / "no CUDA device", IndexError for an index past
// the devices there are. `what` names the caller ("[to]").
Device resolve_device(Device d, const char* what);

}  // namespace dc
