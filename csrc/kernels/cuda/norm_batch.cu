// CUDA batch normalisation, forward and backward: the contract of kernels/cpu/norm_batch.h (x
// as (N, C, S), statistics per channel over N * S elements, accumulated in double) for float32,
// float64, and bfloat16 and float16 data with float32 statistics and parameters (torch's mixed
// batch norm): 16-bit elements are read widened to float, mapped in float and rounded once
// (Note [16-bit floats in the CUDA kernels] in kernels/cuda/half_storage.h), as the cpu's
// float32 chunks are. A block owns a channel: its threads walk the channel's N runs of S
// elements and their sums are combined by warp shuffles, then across the block's warps in
// shared memory, in a fixed order, so a channel's statistics do not depend on the grid. The
// per-channel maps are kernels/cuda/half_ops.h's.
//
// Compiled only; no GPU has run these yet (README, "Devices").
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "cuda/runtime.h"
#include "kernels/cpu/norm_batch.h"
#include "kernels/cuda/half_ops.h"
#include "kernels/cuda/half_storage.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace {

constexpr int kThreads = 256;  // per block; a multiple of 32

// The sum of v over the block, returned to every thread. `scratch` holds a double per warp.
__device__ inline double block_sum(double v, double* scratch) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  __syncthreads();  // scratch may still be read from the previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = 0;
  for (int k = 0; k < warps; ++k) total += scratch[k];
  return total;
}

// Element j < N * S of channel c.
__device__ inline int64_t at(int64_t j, int64_t c, int64_t C, int64_t S) {
  return (j / S) * C * S + c * S + j % S;
}

// D is the data's storage type, T = compute_type<D> the statistics' and parameters'.
template <typename D, typename T = compute_type<D>>
__global__ void batch_norm_forward_channels(const D* x, const T* w, const T* b, double eps,
                                            bool training, T* mean, T* rstd, T* var_biased,
                                            D* y, int64_t N, int64_t C, int64_t S) {
  __shared__ double scratch[kThreads / 32];
  const int64_t count = N * S;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double m, r;
    if (training) {
      double s = 0;
      for (int64_t j = threadIdx.x; j < count; j += blockDim.x)
        s += static_cast<double>(load_widened(x + at(j, c, C, S)));
      m = count > 0 ? block_sum(s, scratch) / static_cast<double>(count) : 0.0;
      double q = 0;
      for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
        const double d = static_cast<double>(load_widened(x + at(j, c, C, S))) - m;
        q += d * d;
      }
      const double v = count > 0 ? block_sum(q, scratch) / static_cast<double>(count) : 0.0;
      r = 1.0 / ::sqrt(v + eps);
      if (threadIdx.x == 0) {
        mean[c] = static_cast<T>(m);
        rstd[c] = static_cast<T>(r);
        var_biased[c] = static_cast<T>(v);
      }
    } else {
      m = static_cast<double>(mean[c]);
      r = static_cast<double>(rstd[c]);
    }
    const ChannelAffine<T> f = batch_norm_affine(m, r, w, b, c);
    for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
      const int64_t i = at(j, c, C, S);
      store_rounded(y + i, f.apply(load_widened(x + i)));
    }
  }
}

template <typename D, typename T = compute_type<D>>
__global__ void batch_norm_backward_channels(const D* dy, const D* x, const T* mean,
                                             const T* rstd, const T* w, bool training, D* dx,
                                             T* dw, T* db, int64_t N, int64_t C, int64_t S) {
  __shared__ double scratch[kThreads / 32];
  const int64_t count = N * S;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    const double m = static_cast<double>(mean[c]), r = static_cast<double>(rstd[c]);
    double sg = 0, sgx = 0;
    for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
      const int64_t i = at(j, c, C, S);
      const double g = static_cast<double>(load_widened(dy + i));
      sg += g;
      sgx += g * (static_cast<double>(load_widened(x + i)) - m);
    }
    const double sdy = block_sum(sg, scratch), sdyx = block_sum(sgx, scratch) * r;
    if (threadIdx.x == 0) {
      if (dw) dw[c] = static_cast<T>(sdyx);
      if (db) db[c] = static_cast<T>(sdy);
    }
    if (!dx) continue;
    const double wc = w ? static_cast<double>(w[c]) : 1.0;
    const ChannelGradAffine<T> f = batch_norm_grad_affine<T>(m, r, wc, sdy, sdyx, count, training);
    for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
      const int64_t i = at(j, c, C, S);
      store_rounded(dx + i, f.apply(load_widened(dy + i), load_widened(x + i)));
    }
  }
}

// Blocks of a launch over C channels on the current device: a block each, up to the grid cap.
int64_t channel_blocks(int64_t C) {
  return std::min<int64_t>(C, max_blocks(Device{DeviceType::CUDA, cuda::current_device()}));
}

template <typename D, typename T = compute_type<D>>
void forward_as(const cpu::BatchNormShape& s, const void* x, const void* w, const void* b,
                double eps, bool training, void* mean, void* rstd, void* var_biased, void* y) {
  const int64_t blocks = channel_blocks(s.C);
  if (blocks <= 0) return;
  batch_norm_forward_channels<D><<<static_cast<unsigned>(blocks), kThreads, 0, stream()>>>(
      static_cast<const D*>(x), static_cast<const T*>(w), static_cast<const T*>(b), eps, training,
      static_cast<T*>(mean), static_cast<T*>(rstd), static_cast<T*>(var_biased),
      static_cast<D*>(y), s.N, s.C, s.S);
  check_launch("batch_norm");
}

template <typename D, typename T = compute_type<D>>
void backward_as(const cpu::BatchNormShape& s, const void* dy, const void* x, const void* mean,
                 const void* rstd, const void* w, bool training, void* dx, void* dw, void* db) {
  const int64_t blocks = channel_blocks(s.C);
  if (blocks <= 0) return;
  batch_norm_backward_channels<D><<<static_cast<unsigned>(blocks), kThreads, 0, stream()>>>(
      static_cast<const D*>(dy), static_cast<const D*>(x), static_cast<const T*>(mean),
      static_cast<const T*>(rstd), static_cast<const T*>(w), training, static_cast<D*>(dx),
      static_cast<T*>(dw), static_cast<T*>(db), s.N, s.C, s.S);
  check_launch("batch_norm_backward");
}

void cuda_batch_norm_forward(const cpu::BatchNormShape& s, DType dtype, const void* x,
                             const void* w, const void* b, double eps, bool training,
                             void* mean, void* rstd, void* var_biased, void* y) {
  with_storage_type(dtype, "batch_norm", [&](auto* d) {
    forward_as<std::remove_pointer_t<decltype(d)>>(s, x, w, b, eps, training, mean, rstd,
                                                    var_biased, y);
  });
}

void cuda_batch_norm_backward(const cpu::BatchNormShape& s, DType dtype, const void* dy,
                              const void* x, const void* mean, const void* rstd, const void* w,
                              bool training, void* dx, void* dw, void* db) {
  with_storage_type(dtype, "batch_norm_backward", [&](auto* d) {
    backward_as<std::remove_pointer_t<decltype(d)>>(s, dy, x, mean, rstd, w, training, dx, dw,
                                                     db);
  });
}

}  // namespace

void fill_batch_norm(dispatch::KernelTable& t) {
  t.batch_norm_forward = cuda_batch_norm_forward;
  t.batch_norm_backward = cuda_batch_norm_backward;
}

}  // namespace dc::cuda_kernels
