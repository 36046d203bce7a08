#include "cuda/runtime.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/device_memory.h"
#include "core/error.h"
#include "core/storage.h"
#include "kernels/cuda/kernels.h"

namespace dc::cuda {

namespace {

[[noreturn]] void fail(const char* what, cudaError_t err) {
  DC_THROW(RuntimeError, "[cuda] ", what, " failed: ", cudaGetErrorString(err));
}

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) fail(what, err);
}

cudaStream_t as_stream(int64_t s) { return reinterpret_cast<cudaStream_t>(s); }
cudaEvent_t as_event(int64_t e) { return reinterpret_cast<cudaEvent_t>(e); }

CachingAllocator::Event record_stream_event(CachingAllocator::Stream s) {
  cudaEvent_t e = nullptr;
  check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
  check(cudaEventRecord(e, as_stream(s)), "cudaEventRecord");
  return reinterpret_cast<CachingAllocator::Event>(e);
}

bool stream_event_done(CachingAllocator::Event e) {
  const cudaError_t err = cudaEventQuery(as_event(e));
  if (err == cudaErrorNotReady) return false;
  check(err, "cudaEventQuery");
  return true;
}

// cudaMalloc/cudaFree and events, for the caching allocator of one device.
class DeviceBackend : public CachingAllocator::Backend {
 public:
  explicit DeviceBackend(int device) : device_(device) {}
  void* raw_alloc(size_t bytes) override {
    DeviceScope on(device_);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clears the sticky error; the allocator reports out of memory
      return nullptr;
    }
    check(err, "cudaMalloc");
    return p;
  }
  void raw_free(void* p, size_t) override {
    DeviceScope on(device_);
    cudaFree(p);  // may run at exit, after the driver has gone: nothing to report then
  }
  CachingAllocator::Event record_event(CachingAllocator::Stream s) override {
    DeviceScope on(device_);
    return record_stream_event(s);
  }
  bool event_done(CachingAllocator::Event e) override { return stream_event_done(e); }
  void destroy_event(CachingAllocator::Event e) override { cudaEventDestroy(as_event(e)); }

 private:
  int device_;
};

// Page-locked host memory (cudaHostAlloc), for the pinned allocator. The host writes into a
// reused block at once, not in any stream's order, so its blocks are keyed by kHostStream, a
// stream no device work runs on: every non_blocking copy's stream is recorded on its block
// (record_stream), and a freed block waits until those copies have run.
constexpr CachingAllocator::Stream kHostStream = -1;
class PinnedBackend : public CachingAllocator::Backend {
 public:
  void* raw_alloc(size_t bytes) override {
    void* p = nullptr;
    const cudaError_t err = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      return nullptr;
    }
    check(err, "cudaHostAlloc");
    return p;
  }
  void raw_free(void* p, size_t) override { cudaFreeHost(p); }
  CachingAllocator::Event record_event(CachingAllocator::Stream s) override {
    return record_stream_event(s);
  }
  bool event_done(CachingAllocator::Event e) override { return stream_event_done(e); }
  void destroy_event(CachingAllocator::Event e) override { cudaEventDestroy(as_event(e)); }
};

}  // namespace

DeviceScope::DeviceScope(int device) : target_(device) {
  cudaGetDevice(&prev_);
  if (prev_ != device) cudaSetDevice(device);
}

DeviceScope::~DeviceScope() {
  if (prev_ != target_) cudaSetDevice(prev_);
}

std::string open_library(const std::vector<std::string>& paths,
                         const std::function<bool(void* handle, std::string& reason)>& bind,
                         std::string& why) {
  for (const std::string& path : paths) {
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      why += "\n  " + path + ": " + (e ? e : "not found");
      continue;
    }
    std::string reason;
    if (bind(h, reason)) return path;
    why += "\n  " + path + ": " + reason;
    dlclose(h);
  }
  return "";
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

void check_device(int device) {
  const int n = device_count();
  DC_CHECK(n > 0, RuntimeError, "[cuda] no CUDA device: deepcore was built with CUDA, but the "
           "driver reports no device on this machine");
  DC_CHECK(device >= 0 && device < n, IndexError, "[cuda] device index ", device,
           " out of range: this machine has ", n, " CUDA device(s)");
}

std::string device_name(int device) {
  check_device(device);
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  return p.name;
}

int compute_capability(int device) {
  check_device(device);
  int major = 0, minor = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
        "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device),
        "cudaDeviceGetAttribute");
  return major * 10 + minor;
}

size_t total_memory(int device) {
  check_device(device);
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  return p.totalGlobalMem;
}

DeviceAttributes device_attributes(int device) {
  check_device(device);
  DeviceAttributes a;
  const std::pair<int*, cudaDeviceAttr> wanted[] = {
      {&a.multi_processor_count, cudaDevAttrMultiProcessorCount},
      {&a.clock_rate_khz, cudaDevAttrClockRate},
      {&a.memory_clock_rate_khz, cudaDevAttrMemoryClockRate},
      {&a.memory_bus_width_bits, cudaDevAttrGlobalMemoryBusWidth},
      {&a.l2_cache_bytes, cudaDevAttrL2CacheSize}};
  for (const auto& [out, attr] : wanted)
    check(cudaDeviceGetAttribute(out, attr, device), "cudaDeviceGetAttribute");
  return a;
}

int driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) return 0;
  return v;
}

int runtime_version() {
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess) return 0;
  return v;
}

int current_device() {
  check_device(0);
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

void set_device(int device) {
  check_device(device);
  check(cudaSetDevice(device), "cudaSetDevice");
}

void synchronize(int device) {
  check_device(device);
  int prev = 0;
  check(cudaGetDevice(&prev), "cudaGetDevice");
  check(cudaSetDevice(device), "cudaSetDevice");
  const cudaError_t err = cudaDeviceSynchronize();
  cudaSetDevice(prev);
  check(err, "cudaDeviceSynchronize");
}

CachingAllocator& allocator(int device) {
  check_device(device);
  // Never destroyed: tensors can outlive static destruction, and the driver may be gone by
  // then.
  static std::mutex mu;
  static auto* allocators = new std::vector<CachingAllocator*>();
  std::lock_guard<std::mutex> lock(mu);
  if (allocators->empty()) {
    const int n = device_count();
    for (int d = 0; d < n; ++d)
      allocators->push_back(new CachingAllocator(*new DeviceBackend(d),
                                                 "cuda:" + std::to_string(d)));
  }
  return *allocators->at(device);
}

namespace {

// ---- streams and events (Note [Streams and events] in core/device_memory.h) ------------------

constexpr int kPoolSize = 32;
struct StreamPool {
  std::once_flag created;
  cudaStream_t streams[2][kPoolSize] = {};  // [0] the lowest priority, [1] the highest
  std::atomic<uint32_t> next[2] = {{0}, {0}};
};

int64_t pool_stream(int device, int priority) {
  check_device(device);
  static auto* pools = new std::vector<std::unique_ptr<StreamPool>>([] {
    std::vector<std::unique_ptr<StreamPool>> v;
    for (int d = 0; d < device_count(); ++d) v.push_back(std::make_unique<StreamPool>());
    return v;
  }());
  StreamPool& p = *pools->at(device);
  std::call_once(p.created, [&] {
    DeviceScope on(device);
    int least = 0, greatest = 0;
    check(cudaDeviceGetStreamPriorityRange(&least, &greatest), "cudaDeviceGetStreamPriorityRange");
    for (int k = 0; k < 2; ++k)
      for (cudaStream_t& s : p.streams[k])
        check(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, k ? greatest : least),
              "cudaStreamCreateWithPriority");
  });
  const int k = priority < 0 ? 1 : 0;
  return reinterpret_cast<int64_t>(p.streams[k][p.next[k]++ % kPoolSize]);
}

const DeviceStreams kCudaStreams = {
    pool_stream,
    [](int device, int64_t s) {
      DeviceScope on(device);
      check(cudaStreamSynchronize(as_stream(s)), "cudaStreamSynchronize");
    },
    [](int device, int64_t s) {
      DeviceScope on(device);
      const cudaError_t err = cudaStreamQuery(as_stream(s));
      if (err == cudaErrorNotReady) return false;
      check(err, "cudaStreamQuery");
      return true;
    },
    [](int device, bool timing, bool blocking) -> int64_t {
      DeviceScope on(device);
      cudaEvent_t e = nullptr;
      const unsigned flags =
          (timing ? 0u : cudaEventDisableTiming) | (blocking ? cudaEventBlockingSync : 0u);
      check(cudaEventCreateWithFlags(&e, flags), "cudaEventCreate");
      return reinterpret_cast<int64_t>(e);
    },
    [](int64_t e) { cudaEventDestroy(as_event(e)); },
    [](int device, int64_t e, int64_t s) {
      DeviceScope on(device);
      check(cudaEventRecord(as_event(e), as_stream(s)), "cudaEventRecord");
    },
    [](int64_t e) { return stream_event_done(e); },
    [](int64_t e) { check(cudaEventSynchronize(as_event(e)), "cudaEventSynchronize"); },
    [](int device, int64_t s, int64_t e) {
      DeviceScope on(device);
      check(cudaStreamWaitEvent(as_stream(s), as_event(e), 0), "cudaStreamWaitEvent");
    },
    [](int64_t a, int64_t b) {
      float ms = 0;
      check(cudaEventElapsedTime(&ms, as_event(a), as_event(b)), "cudaEventElapsedTime");
      return static_cast<double>(ms);
    },
    [](int device, void* p, int64_t s) { allocator(device).record_stream(p, s); },
};

// ---- memory -------------------------------------------------------------------------------

CachingAllocator& pinned_allocator() {
  static auto* a = new CachingAllocator(*new PinnedBackend, "pinned host memory");
  return *a;
}

std::shared_ptr<Storage> pinned_allocate(size_t nbytes) {
  check_device(0);
  CachingAllocator& a = pinned_allocator();
  void* p = nbytes ? a.allocate(nbytes, kHostStream) : nullptr;
  auto s = std::make_shared<Storage>();
  s->owner = std::shared_ptr<void>(p, [&a](void* q) {
    if (q) a.free(q);
  });
  s->data = p;
  s->nbytes = nbytes;
  s->pinned = true;
  return s;
}

void pinned_used(const Storage& s, int64_t stream) {
  if (s.data) pinned_allocator().record_stream(s.data, stream);
}

std::shared_ptr<Storage> device_allocate(size_t nbytes, Device d) {
  CachingAllocator& a = allocator(d.index);
  void* p = nbytes ? a.allocate(nbytes, current_stream(d.index)) : nullptr;
  auto s = std::make_shared<Storage>();
  s->owner = std::shared_ptr<void>(p, [&a](void* q) {
    if (q) a.free(q);
  });
  s->data = p;
  s->nbytes = nbytes;
  s->device = d;
  return s;
}

// Unified addressing tells the direction from the pointers (cudaMemcpyDefault). The copy is
// queued on the current stream of the device side (the destination's when both are devices),
// after the work already there; a blocking copy then waits for that stream.
void device_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t n,
                 bool non_blocking) {
  const int d = dst_device.type == DeviceType::CUDA ? dst_device.index : src_device.index;
  DeviceScope on(d);
  const cudaStream_t s = as_stream(current_stream(d));
  check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, s), "cudaMemcpyAsync");
  if (!non_blocking) check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

int current_index() {
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

const DeviceMemory kCudaMemory = {"CUDA",         device_count,
                                  current_index,  device_allocate,
                                  device_copy,    [](Device d) { synchronize(d.index); },
                                  &kCudaStreams,  pinned_allocate,
                                  pinned_used};

}  // namespace

void register_memory() {
  register_device_memory(DeviceType::CUDA, &kCudaMemory);
  dispatch::register_backend(DeviceType::CUDA, cuda_kernels::fill_kernels);
}

}  // namespace dc::cuda
