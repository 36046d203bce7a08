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
#include <cstdint>
#include <memory>

#include "core/device.h"

namespace dc {

struct Storage;

// Note [Streams and events]
// Work on a device is queued on streams: kernels and copies on one stream run in order, those on
// different streams may overlap. Every thread has a current stream per device (0, the default
// stream, until `with deepcore.cuda.stream(s):` changes it); kernels, copies and allocations use
// it (the caching allocator keys its free blocks by it). Streams come from a pool per device
// and priority, handed out round-robin and never destroyed, as torch's are: a destroyed stream's
// handle could come back for a new stream while the allocator still holds blocks keyed by it.
// Events mark a point in a stream: other streams can wait for it, the host can wait for or poll
// it, and two timed events give the milliseconds between them. Handles are opaque integers.
struct DeviceStreams {
  int64_t (*pool_stream)(int device, int priority);  // priority < 0: the high-priority pool
  void (*synchronize_stream)(int device, int64_t stream);
  bool (*query_stream)(int device, int64_t stream);  // true: everything queued has finished
  int64_t (*create_event)(int device, bool timing, bool blocking);
  void (*destroy_event)(int64_t event);
  void (*record_event)(int device, int64_t event, int64_t stream);
  bool (*query_event)(int64_t event);
  void (*synchronize_event)(int64_t event);
  void (*stream_wait_event)(int device, int64_t stream, int64_t event);
  double (*elapsed_ms)(int64_t start, int64_t end);
  // Storage `p` (a block from allocate) is also used by work on `stream` (record_stream).
  void (*record_stream)(int device, void* p, int64_t stream);
};

// The current stream of this thread on device `index` of a device type with streams.
int64_t current_stream(int device);
void set_current_stream(int device, int64_t stream);

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
  const DeviceStreams* streams = nullptr;
  // Page-locked host memory of `nbytes` (Tensor.pin_memory), a cpu Storage with `pinned` set;
  // nullptr when the backend has none. A non_blocking copy from it then runs asynchronously.
  std::shared_ptr<Storage> (*allocate_pinned)(size_t nbytes) = nullptr;
  // A non_blocking copy on `stream` reads or writes pinned storage `s`: its memory must not be
  // handed out again before that copy has run.
  void (*pinned_used)(const Storage& s, int64_t stream) = nullptr;
};

// Installs (or, with nullptr, removes) the backend of a device type.
void register_device_memory(DeviceType type, const DeviceMemory* backend);
const DeviceMemory* device_memory(DeviceType type);  // nullptr: none registered

// `d` with its index filled in ("cuda" -> the current CUDA device), checked to exist:
// RuntimeError "deepcore was built without CUDA" / "no CUDA device", IndexError for an index past
// the devices there are. `what` names the caller ("[to]").
Device resolve_device(Device d, const char* what);

}  // namespace dc
