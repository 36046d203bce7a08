#pragma once
// The CUDA backend's kernels (csrc/kernels/cuda/*.cu) and what they share: the stream they are
// queued on, the grid cap, launch checking. fill_kernels puts them in the cuda kernel table
// (dispatch/kernels.h); cuda::register_backend calls it when the module loads.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "dispatch/kernels.h"
#include "kernels/cuda/half_storage.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {

cudaStream_t stream();               // where kernels are queued: the current stream (Note
                                     // [Streams and events] in core/device_memory.h)
int64_t max_blocks(Device d);        // the grid cap of grid-stride loops: 32 blocks per SM
void check_launch(const char* what); // RuntimeError naming the kernel if the launch failed

// Host -> device copy of `bytes` queued on stream() (pageable host memory: the call returns once
// the source has been read).
void copy_to_device(void* dst, const void* src, size_t bytes);
// Device -> host copy after the work queued on stream(): returns once the bytes are on the host
// (a flag, a count or a total the host needs to go on). RuntimeError naming `op` on failure.
void copy_to_host(void* dst, const void* src, size_t bytes, const char* op);
// `bytes` bytes of `value` at device address p, queued on stream().
void fill_device_bytes(void* p, int value, size_t bytes, const char* op);

// One value a kernel left in device memory at src, once the stream has run.
template <typename T>
T read_back(const void* src, const char* op) {
  T v{};
  copy_to_host(&v, src, sizeof(T), op);
  return v;
}

// Device memory for one call's work: scratch, or host arrays a kernel reads (pooling windows,
// attention offsets). Taken from the current device's caching allocator and given back when the
// buffer dies; the allocator's stream order makes that safe while a kernel queued on stream()
// still uses it.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), device_(o.device_) { o.p_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  void* get() const { return p_; }
  template <typename T>
  T* as() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
  int device_ = 0;
};

// A device copy of `host`, queued on stream() (nullptr data for an empty vector).
template <typename T>
DeviceBuffer upload(const std::vector<T>& host) {
  DeviceBuffer b(host.size() * sizeof(T));
  copy_to_device(b.get(), host.data(), host.size() * sizeof(T));
  return b;
}

// <<<grid>>> arguments of a grid-stride launch over n work items on `on`'s device (no blocks for
// n == 0: launch nothing).
inline LaunchConfig launch_for(int64_t n, const Tensor& on) {
  return elementwise_launch(n, max_blocks(on.device()));
}

// A grid-stride loop: `for` over i in [0, n), each thread from its global index by the grid's
// size, so a grid capped by max_blocks covers any n.
#define DC_GRID_STRIDE(i, n)                                                              \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// f(static_cast<T*>(nullptr)) with T the C++ type of a bool, int32, int64, float32 or float64
// dtype; otherwise a TypeError naming the op `what` (kernels that compute bfloat16 and float16
// take with_storage_type instead).
template <typename F>
void with_value_type(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    case DType::Bool: return f(static_cast<bool*>(nullptr));
    case DType::Int32: return f(static_cast<int32_t*>(nullptr));
    case DType::Int64: return f(static_cast<int64_t*>(nullptr));
    case DType::Float32: return f(static_cast<float*>(nullptr));
    case DType::Float64: return f(static_cast<double*>(nullptr));
    default: break;
  }
  DC_THROW(TypeError, "[", what, "] no cuda kernel for ", dtype_name(dtype));
}

// f(static_cast<T*>(nullptr)) with T float or double for dtype; otherwise a TypeError naming the
// op `what` and the dtype it has no cuda kernel for.
template <typename F>
void with_float_type(DType dtype, const char* what, F&& f) {
  if (dtype == DType::Float32) return f(static_cast<float*>(nullptr));
  if (dtype == DType::Float64) return f(static_cast<double*>(nullptr));
  DC_THROW(TypeError, "[", what, "] no cuda kernel for ", dtype_name(dtype));
}

// f(static_cast<S*>(nullptr)) with S the storage type of a floating dtype: float, double, or
// Bf16Bits / F16Bits, computed in float (Note [16-bit floats in the CUDA kernels] in
// kernels/cuda/half_storage.h); otherwise a TypeError naming the op `what`.
template <typename F>
void with_storage_type(DType dtype, const char* what, F&& f) {
  if (dtype == DType::BFloat16) return f(static_cast<Bf16Bits*>(nullptr));
  if (dtype == DType::Float16) return f(static_cast<F16Bits*>(nullptr));
  with_float_type(dtype, what, f);
}

void fill_elementwise(dispatch::KernelTable& t);  // elementwise.cu
void fill_reduce(dispatch::KernelTable& t);       // reduce.cu
void fill_sort(dispatch::KernelTable& t);         // sort.cu
void fill_gemm(dispatch::KernelTable& t);         // gemm.cu
void fill_softmax(dispatch::KernelTable& t);      // softmax.cu
void fill_norm(dispatch::KernelTable& t);         // norm.cu
void fill_batch_norm(dispatch::KernelTable& t);   // norm_batch.cu
void fill_dropout(dispatch::KernelTable& t);      // dropout.cu
void fill_index(dispatch::KernelTable& t);        // index.cu
void fill_creation(dispatch::KernelTable& t);     // creation.cu
void fill_optim(dispatch::KernelTable& t);        // optim.cu
void fill_loss(dispatch::KernelTable& t);         // loss.cu
void fill_conv(dispatch::KernelTable& t);         // conv.cu
void fill_pool(dispatch::KernelTable& t);         // pool.cu
void fill_attention(dispatch::KernelTable& t);    // attention.cu
void fill_rnn(dispatch::KernelTable& t);          // rnn.cu
void fill_kernels(dispatch::KernelTable& t);      // all of them (backend.cu)

}  // namespace dc::cuda_kernels
