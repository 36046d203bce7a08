#include "cuda/runtime.h"

#include <cuda_runtime_api.h>

#include <mutex>
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
    cudaEvent_t e = nullptr;
    check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventRecord(e, reinterpret_cast<cudaStream_t>(s)), "cudaEventRecord");
    return reinterpret_cast<CachingAllocator::Event>(e);
  }
  bool event_done(CachingAllocator::Event e) override {
    const cudaError_t err = cudaEventQuery(reinterpret_cast<cudaEvent_t>(e));
    if (err == cudaErrorNotReady) return false;
    check(err, "cudaEventQuery");
    return true;
  }
  void destroy_event(CachingAllocator::Event e) override {
    cudaEventDestroy(reinterpret_cast<cudaEvent_t>(e));
  }

 private:
  struct DeviceScope {
    explicit DeviceScope(int d) {
      cudaGetDevice(&prev);
      if (prev != d) cudaSetDevice(d);
      target = d;
    }
    ~DeviceScope() {
      if (prev != target) cudaSetDevice(prev);
    }
    int prev = 0, target = 0;
  };
  int device_;
};

}  // namespace

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

std::shared_ptr<Storage> device_allocate(size_t nbytes, Device d) {
  CachingAllocator& a = allocator(d.index);
  void* p = nbytes ? a.allocate(nbytes, 0) : nullptr;
  auto s = std::make_shared<Storage>();
  s->owner = std::shared_ptr<void>(p, [&a](void* q) {
    if (q) a.free(q);
  });
  s->data = p;
  s->nbytes = nbytes;
  s->device = d;
  return s;
}

// Unified addressing tells the direction from the pointers (cudaMemcpyDefault).
void device_copy(void* dst, Device, const void* src, Device, size_t n, bool non_blocking) {
  if (non_blocking)
    check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, nullptr), "cudaMemcpyAsync");
  else
    check(cudaMemcpy(dst, src, n, cudaMemcpyDefault), "cudaMemcpy");
}

int current_index() {
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

const DeviceMemory kCudaMemory = {"CUDA", device_count, current_index, device_allocate,
                                  device_copy, [](Device d) { synchronize(d.index); }};

}  // namespace

void register_memory() {
  register_device_memory(DeviceType::CUDA, &kCudaMemory);
  dispatch::register_backend(DeviceType::CUDA, cuda_kernels::fill_kernels);
}

}  // namespace dc::cuda
