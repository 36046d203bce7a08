// CUDA layer norm and RMS norm over rows of N elements, and their backward: the contract of
// kernels/cpu/norm.h (x[M, N] contiguous; mean[M] and rstd[M] in x's dtype, written by the
// forward for the backward). With N >= 32 a warp owns a row (reduce_launch), its sums taken in
// double and combined by shuffles; shorter rows take a thread each. dw and db: a thread per
// column sums over the rows in row order, so they do not depend on the launch.
//
// Compiled only; no GPU has run these yet (README, "Devices").
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace {

__device__ inline double warp_sum(double v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The rows this thread works on: with `warp`, rows of a warp each (lane = threadIdx.x % 32,
// stride 32 within the row); else a row of its own (lane 0, stride 1).
struct RowWalk {
  int64_t first, step;
  int lane, stride;
};
__device__ inline RowWalk row_walk(bool warp) {
  const int64_t threads = static_cast<int64_t>(blockDim.x);
  const int64_t id = blockIdx.x * threads + threadIdx.x;
  if (!warp) return {id, static_cast<int64_t>(gridDim.x) * threads, 0, 1};
  return {id / 32, static_cast<int64_t>(gridDim.x) * (threads / 32),
          static_cast<int>(threadIdx.x % 32), 32};
}
__device__ inline double row_total(double v, bool warp) { return warp ? warp_sum(v) : v; }

// y = (x - mean) * rstd * w + b per row, as norm_apply; rms: mean = 0.
template <typename T>
__global__ void norm_forward_rows(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd,
                                  int64_t M, int64_t N, double eps, bool rms, bool warp) {
  const RowWalk rw = row_walk(warp);
  for (int64_t r = rw.first; r < M; r += rw.step) {
    const T* xr = x + r * N;
    double mu = 0;
    if (!rms) {
      double s = 0;
      for (int64_t i = rw.lane; i < N; i += rw.stride) s += static_cast<double>(xr[i]);
      mu = row_total(s, warp) / static_cast<double>(N);
    }
    double q = 0;
    for (int64_t i = rw.lane; i < N; i += rw.stride) {
      const double d = static_cast<double>(xr[i]) - mu;
      q += d * d;
    }
    const T m = static_cast<T>(mu);
    const T rs = static_cast<T>(1.0 / ::sqrt(row_total(q, warp) / static_cast<double>(N) + eps));
    if (rw.lane == 0) mean[r] = m, rstd[r] = rs;
    T* yr = y + r * N;
    for (int64_t i = rw.lane; i < N; i += rw.stride) {
      T v = (xr[i] - m) * rs;
      if (w) v = v * w[i];
      if (b) v = v + b[i];
      yr[i] = v;
    }
  }
}

// gx = rstd (g w - s1 - (x - mean) rstd s2) per row, as norm_backward: s1 = mean(g w) when
// centring (layer norm), s2 = mean(g w xhat) = rstd (dot(g w, x) - mean sum(g w)) / N.
template <typename T>
__global__ void norm_backward_rows(const T* g, const T* x, const T* mean, const T* rstd,
                                   const T* w, T* gx, int64_t M, int64_t N, bool center,
                                   bool warp) {
  const RowWalk rw = row_walk(warp);
  for (int64_t r = rw.first; r < M; r += rw.step) {
    const T* gr = g + r * N;
    const T* xr = x + r * N;
    double sg = 0, sgx = 0;
    for (int64_t i = rw.lane; i < N; i += rw.stride) {
      const double gw = static_cast<double>(w ? gr[i] * w[i] : gr[i]);
      sg += gw;
      sgx += gw * static_cast<double>(xr[i]);
    }
    sg = row_total(sg, warp);
    sgx = row_total(sgx, warp);
    const T m = mean[r], rs = rstd[r];
    const double n = static_cast<double>(N);
    const T s1 = center ? static_cast<T>(sg / n) : T(0);
    const T s2 = static_cast<T>(static_cast<double>(rs) * (sgx - static_cast<double>(m) * sg) / n);
    T* out = gx + r * N;
    for (int64_t i = rw.lane; i < N; i += rw.stride) {
      const T gw = w ? gr[i] * w[i] : gr[i];
      out[i] = rs * (gw - s1 - (xr[i] - m) * rs * s2);
    }
  }
}

// dw[c] = sum_r g[r, c] (x[r, c] - mean[r]) rstd[r] and db[c] = sum_r g[r, c], a thread per
// column, rows in order (either output may be null).
template <typename T>
__global__ void norm_param_grad_columns(const T* g, const T* x, const T* mean, const T* rstd,
                                        T* dw, T* db, int64_t M, int64_t N) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < N;
       c += step) {
    double sw = 0, sb = 0;
    for (int64_t r = 0; r < M; ++r) {
      const double gv = static_cast<double>(g[r * N + c]);
      sb += gv;
      sw += gv * static_cast<double>((x[r * N + c] - mean[r]) * rstd[r]);
    }
    if (dw) dw[c] = static_cast<T>(sw);
    if (db) db[c] = static_cast<T>(sb);
  }
}

template <typename T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}
template <typename T>
T* mut_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

template <typename T>
void forward_as(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                const Tensor& w, const Tensor& b, int64_t M, int64_t N, double eps, bool rms) {
  const ReduceLaunch l = reduce_launch(M, N, 1, max_blocks(y.device()));
  if (l.blocks == 0 || N == 0) return;
  norm_forward_rows<T><<<static_cast<unsigned>(l.blocks), l.threads, 0, stream()>>>(
      ptr_or_null<T>(x), ptr_or_null<T>(w), ptr_or_null<T>(b), mut_or_null<T>(y),
      mut_or_null<T>(mean), mut_or_null<T>(rstd), M, N, eps, rms, l.warp_per_row);
  check_launch(rms ? "rms_norm" : "layer_norm");
}

template <typename T>
void backward_as(const Tensor& gx, const Tensor& dw, const Tensor& db, const Tensor& g,
                 const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& w,
                 int64_t M, int64_t N, bool rms) {
  const char* what = rms ? "rms_norm_backward" : "layer_norm_backward";
  if (gx.defined()) {
    const ReduceLaunch l = reduce_launch(M, N, 1, max_blocks(gx.device()));
    if (l.blocks > 0 && N > 0) {
      norm_backward_rows<T><<<static_cast<unsigned>(l.blocks), l.threads, 0, stream()>>>(
          ptr_or_null<T>(g), ptr_or_null<T>(x), ptr_or_null<T>(mean), ptr_or_null<T>(rstd),
          ptr_or_null<T>(w), mut_or_null<T>(gx), M, N, !rms, l.warp_per_row);
      check_launch(what);
    }
  }
  if (!dw.defined() && !db.defined()) return;
  const LaunchConfig c = elementwise_launch(N, max_blocks(g.device()));
  if (c.blocks == 0) return;
  norm_param_grad_columns<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
      ptr_or_null<T>(g), ptr_or_null<T>(x), ptr_or_null<T>(mean), ptr_or_null<T>(rstd),
      mut_or_null<T>(dw), mut_or_null<T>(db), M, N);
  check_launch(what);
}

void cuda_norm_forward_into(const Tensor& y, const Tensor& mean, const Tensor& rstd,
                            const Tensor& x, const Tensor& w, const Tensor& b, int64_t N,
                            double eps, bool rms) {
  const int64_t M = N ? x.numel() / N : 0;
  with_float_type(x.dtype(), rms ? "rms_norm" : "layer_norm", [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    forward_as<T>(y, mean, rstd, x, w, b, M, N, eps, rms);
  });
}

void cuda_norm_backward_into(const Tensor& gx, const Tensor& dw, const Tensor& db,
                             const Tensor& g, const Tensor& x, const Tensor& mean,
                             const Tensor& rstd, const Tensor& w, int64_t N, bool rms) {
  const int64_t M = N ? x.numel() / N : 0;
  with_float_type(x.dtype(), rms ? "rms_norm_backward" : "layer_norm_backward", [&](auto* t) {
    using T = std::remove_pointer_t<decltype(t)>;
    backward_as<T>(gx, dw, db, g, x, mean, rstd, w, M, N, rms);
  });
}

}  // namespace

void fill_norm(dispatch::KernelTable& t) {
  t.norm_forward_into = cuda_norm_forward_into;
  t.norm_backward_into = cuda_norm_backward_into;
}

}  // namespace dc::cuda_kernels
