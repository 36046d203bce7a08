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

namespace dc::cuda_kernels {

cudaStream_t stream();               // where kernels are queued: the current stream (Note
                                     // [Streams and events] in core/device_memory.h)
int64_t max_blocks(Device d);        // the grid cap of grid-stride loops: 32 blocks per SM
void check_launch(const char* what); // RuntimeError naming the kernel if the launch failed

// Host -> device copy of `bytes` queued on stream() (pageable host memory: the call returns once
// the source has been read).
void copy_to_device(void* dst, const void* src, size_t bytes);

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

// f(static_cast<T*>(nullptr)) with T float or double for dtype; otherwise a TypeError naming the
// op `what` and the dtype it has no cuda kernel for.
template <typename F>
void with_float_type(DType dtype, const char* what, F&& f) {
  if (dtype == DType::Float32) return f(static_cast<float*>(nullptr));
  if (dtype == DType::Float64) return f(static_cast<double*>(nullptr));
  DC_THROW(TypeError, "[", what, "] no cuda kernel for ", dtype_name(dtype));
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
