// What the CUDA kernels share (kernels/cuda/kernels.h), and the table that lists them.
#include <mutex>
#include <vector>

#include "core/device_memory.h"
#include "core/error.h"
#include "cuda/runtime.h"
#include "kernels/cuda/kernels.h"

namespace dc::cuda_kernels {

cudaStream_t stream() {
  int d = 0;
  cudaGetDevice(&d);
  return reinterpret_cast<cudaStream_t>(current_stream(d));
}

int64_t max_blocks(Device d) {
  static std::mutex mu;
  static std::vector<int64_t> per_device;
  std::lock_guard<std::mutex> lock(mu);
  const int i = d.index < 0 ? 0 : d.index;
  if (static_cast<int>(per_device.size()) <= i) per_device.resize(i + 1, 0);
  if (per_device[i] == 0) {
    int sms = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, i) != cudaSuccess) {
      cudaGetLastError();
      sms = 1;
    }
    per_device[i] = int64_t(sms) * 32;
  }
  return per_device[i];
}

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  DC_CHECK(err == cudaSuccess, RuntimeError, "[cuda] the ", what, " kernel failed to launch: ",
           cudaGetErrorString(err));
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  const cudaError_t err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream());
  DC_CHECK(err == cudaSuccess, RuntimeError, "[cuda] copying ", bytes,
           " bytes to the device failed: ", cudaGetErrorString(err));
}

void copy_to_host(void* dst, const void* src, size_t bytes, const char* op) {
  if (bytes == 0) return;
  cudaError_t err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream());
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream());
  DC_CHECK(err == cudaSuccess, RuntimeError, "[", op, "] reading ", bytes,
           " bytes back from the device failed: ", cudaGetErrorString(err));
}

void fill_device_bytes(void* p, int value, size_t bytes, const char* op) {
  if (bytes == 0) return;
  const cudaError_t err = cudaMemsetAsync(p, value, bytes, stream());
  DC_CHECK(err == cudaSuccess, RuntimeError, "[", op, "] setting ", bytes,
           " bytes of device scratch failed: ", cudaGetErrorString(err));
}

DeviceBuffer::DeviceBuffer(size_t bytes) : device_(cuda::current_device()) {
  p_ = cuda::allocator(device_).allocate(bytes, current_stream(device_));
}

DeviceBuffer::~DeviceBuffer() {
  if (p_) cuda::allocator(device_).free(p_);
}

void fill_kernels(dispatch::KernelTable& t) {
  fill_elementwise(t);
  fill_reduce(t);
  fill_sort(t);
  fill_gemm(t);
  fill_softmax(t);
  fill_norm(t);
  fill_batch_norm(t);
  fill_dropout(t);
  fill_index(t);
  fill_creation(t);
  fill_optim(t);
  fill_loss(t);
  fill_conv(t);
  fill_pool(t);
  fill_attention(t);
  fill_rnn(t);
}

}  // namespace dc::cuda_kernels
