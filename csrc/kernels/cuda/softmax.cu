// CUDA softmax and log_softmax over one dim of a contiguous tensor, viewed as [outer, n, inner]
// as on the cpu (kernels/cpu/softmax.h), and their backward. With inner == 1 a warp owns a row:
// the max, then the sum of exp(x - max) in the accumulation type, combined by shuffles. With
// inner > 1 a thread owns an (outer, inner) column, neighbouring threads on neighbouring
// columns. exp is the cpu's own (kernels/cpu/vec/vmath.h, compiled for the device).
//
// Compiled only; no GPU has run these yet (README, "Devices").
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace softmax_dev {
#include "kernels/cpu/vec/vmath.h"
}  // namespace softmax_dev

namespace {

using softmax_dev::vm::exp;

using Geometry = cpu::ReduceDims;  // x as [outer, n = reduce, inner] around dim

// The max of the warp's values; a NaN anywhere wins, as on the cpu.
template <typename T>
__device__ inline T warp_max(T v) {
  for (int o = 16; o > 0; o /= 2) {
    const T other = __shfl_xor_sync(0xffffffffu, v, o);
    v = other > v || other != other ? other : v;
  }
  return v;
}
template <typename T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Forward, a warp per row: y = exp(x - max) / sum, or x - max - log(sum).
template <typename T>
__global__ void softmax_rows(const T* x, T* y, int64_t rows, int64_t n, bool log_out) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32;
       r < rows; r += warps) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t k = lane; k < n; k += 32) m = xr[k] > m || xr[k] != xr[k] ? xr[k] : m;
    m = warp_max(m);
    double s = 0;
    for (int64_t k = lane; k < n; k += 32) s += static_cast<double>(exp(xr[k] - m));
    s = warp_sum(s);
    if (log_out) {
      const T shift = m + static_cast<T>(::log(s));
      for (int64_t k = lane; k < n; k += 32) yr[k] = xr[k] - shift;
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t k = lane; k < n; k += 32) yr[k] = exp(xr[k] - m) * inv;
    }
  }
}

// Forward, a thread per (outer, inner) column.
template <typename T>
__global__ void softmax_columns(const T* x, T* y, int64_t outer, int64_t n, int64_t inner,
                                bool log_out) {
  const int64_t cols = outer * inner;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
       c += step) {
    const int64_t base = (c / inner) * n * inner + c % inner;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t k = 0; k < n; ++k) {
      const T v = x[base + k * inner];
      m = v > m || v != v ? v : m;
    }
    double s = 0;
    for (int64_t k = 0; k < n; ++k) s += static_cast<double>(exp(x[base + k * inner] - m));
    const T shift = m + static_cast<T>(::log(s)), inv = static_cast<T>(1.0 / s);
    for (int64_t k = 0; k < n; ++k) {
      const T v = x[base + k * inner];
      y[base + k * inner] = log_out ? v - shift : exp(v - m) * inv;
    }
  }
}

// Backward, a thread per column (rows are columns with inner == 1):
// softmax gx = y (g - sum(g y)); log_softmax gx = g - exp(y) sum(g).
template <typename T>
__global__ void softmax_backward_columns(T* gx, const T* g, const T* y, int64_t outer, int64_t n,
                                         int64_t inner, bool log_out) {
  const int64_t cols = outer * inner;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
       c += step) {
    const int64_t base = (c / inner) * n * inner + c % inner;
    double s = 0;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t i = base + k * inner;
      s += log_out ? static_cast<double>(g[i]) : static_cast<double>(g[i]) * y[i];
    }
    const T st = static_cast<T>(s);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t i = base + k * inner;
      gx[i] = log_out ? g[i] - exp(y[i]) * st : y[i] * (g[i] - st);
    }
  }
}

template <typename T>
void forward_as(const Tensor& y, const Tensor& x, const Geometry& g, bool log_out) {
  const ReduceLaunch l = reduce_launch(g.outer, g.reduce, g.inner, max_blocks(y.device()));
  if (l.blocks == 0 || g.reduce == 0) return;
  const T* px = static_cast<const T*>(x.data_ptr());
  T* py = static_cast<T*>(y.data_ptr());
  if (l.warp_per_row)
    softmax_rows<T><<<static_cast<unsigned>(l.blocks), l.threads, 0, stream()>>>(px, py, g.outer,
                                                                                g.reduce, log_out);
  else
    softmax_columns<T><<<static_cast<unsigned>(l.blocks), l.threads, 0, stream()>>>(
        px, py, g.outer, g.reduce, g.inner, log_out);
  check_launch("softmax");
}

void cuda_softmax_into(const Tensor& y, const Tensor& x, int64_t dim, bool log_out) {
  const Geometry g = cpu::ReduceDims::around(x.sizes(), dim);
  switch (x.dtype()) {
    case DType::Float32: return forward_as<float>(y, x, g, log_out);
    case DType::Float64: return forward_as<double>(y, x, g, log_out);
    default: break;
  }
  DC_THROW(TypeError, "[softmax] no cuda softmax for ", dtype_name(x.dtype()));
}

template <typename T>
void backward_as(const Tensor& gx, const Tensor& g, const Tensor& y, const Geometry& geo,
                 bool log_out) {
  const LaunchConfig c = elementwise_launch(geo.outer * geo.inner, max_blocks(gx.device()));
  if (c.blocks == 0 || geo.reduce == 0) return;
  softmax_backward_columns<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
      static_cast<T*>(gx.data_ptr()), static_cast<const T*>(g.data_ptr()),
      static_cast<const T*>(y.data_ptr()), geo.outer, geo.reduce, geo.inner, log_out);
  check_launch("softmax_backward");
}

void cuda_softmax_backward_into(const Tensor& gx, const Tensor& g, const Tensor& y, int64_t dim,
                                bool log_out) {
  const Geometry geo = cpu::ReduceDims::around(y.sizes(), dim);
  switch (y.dtype()) {
    case DType::Float32: return backward_as<float>(gx, g, y, geo, log_out);
    case DType::Float64: return backward_as<double>(gx, g, y, geo, log_out);
    default: break;
  }
  DC_THROW(TypeError, "[softmax] no cuda softmax backward for ", dtype_name(y.dtype()));
}

}  // namespace

void fill_softmax(dispatch::KernelTable& t) {
  t.softmax_into = cuda_softmax_into;
  t.softmax_backward_into = cuda_softmax_backward_into;
}

}  // namespace dc::cuda_kernels
