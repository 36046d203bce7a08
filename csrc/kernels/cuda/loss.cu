// CUDA fused losses over rows x[M, C] (contiguous, the class dim last): the contracts of
// kernels/cpu/loss.h, the per-row math in kernels/cuda/loss_rows.h (Note [CUDA loss rows]).
//   first_bad_target             a grid-stride scan; the smallest bad row by atomicMin.
//   class_loss_forward           loss_sums (one block: sum(w) and the divisor, in double), then
//                                a warp or a block per row (loss_row_launch); the divisor is
//                                copied back to the host, which waits for the stream.
//   cross_entropy_backward_into  a thread per element of gx[M, C].
//   class_target_matrix_into     a thread per element of B[M, C].
//   prob_loss_forward            a warp or a block per row.
// exp is the cpu's own (kernels/cpu/vec/scalar_math.h, compiled for the device).
//
// Compiled only; no GPU has run these yet (README, "Devices").
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cpu/loss.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/loss_rows.h"

namespace dc::cuda_kernels {
namespace loss_dev {
#include "kernels/cpu/vec/scalar_math.h"
}  // namespace loss_dev

namespace {

using cpu::ClassTargets;

// The cpu loss kernels' exp (exp_f32 for float, exp for double).
struct CpuExp {
  template <typename T>
  __device__ T operator()(T v) const { return loss_dev::exp_any(v); }
};

// ---- groups (Note [CUDA loss rows]) -----------------------------------------------------------
template <typename T>
__device__ inline T warp_max(T v) {
  for (int o = 16; o > 0; o /= 2) v = max_skipping_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Every lane ends with the same bits: each butterfly step adds the same two values (a + b in one
// lane, b + a in its partner).
__device__ inline double warp_sum(double v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The 32 lanes of a warp share a row.
struct WarpGroup {
  int lane, size;
  template <typename T>
  __device__ T max(T v) const { return warp_max(v); }
  __device__ double sum(double v) const { return warp_sum(v); }
};

// The whole block shares a row: warp results meet in shared[blockDim.x / 32], which every
// thread then combines in the same order, so all threads get the same value.
struct BlockGroup {
  int lane, size;
  double* shared;

  template <typename T>
  __device__ T max(T v) const {
    v = warp_max(v);
    publish(static_cast<double>(v));  // float -> double and back is exact
    double m = shared[0];
    for (int k = 1; k < size / 32; ++k) m = max_skipping_nan(m, shared[k]);
    return static_cast<T>(m);
  }
  __device__ double sum(double v) const {
    publish(warp_sum(v));
    double s = shared[0];
    for (int k = 1; k < size / 32; ++k) s += shared[k];
    return s;
  }

 private:
  __device__ void publish(double warp_value) const {
    __syncthreads();  // the previous reduction's reads of `shared` are done
    if (lane % 32 == 0) shared[lane / 32] = warp_value;
    __syncthreads();
  }
};

constexpr int kMaxWarpsPerBlock = 32;

// The rows of a row kernel, a group each: Row::operator()(r, group) does one row.
template <bool kBlockPerRow, typename Row>
__global__ void loss_rows(Row row, int64_t M) {
  const RowStride rs = row_stride(blockIdx.x, gridDim.x, static_cast<int>(threadIdx.x),
                                  static_cast<int>(blockDim.x),
                                  kBlockPerRow ? static_cast<int>(blockDim.x) : 32);
  if constexpr (kBlockPerRow) {
    __shared__ double shared[kMaxWarpsPerBlock];
    BlockGroup g{static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), shared};
    for (int64_t r = rs.first; r < M; r += rs.step) row(r, g);  // same trip count block-wide
  } else {
    WarpGroup g{static_cast<int>(threadIdx.x % 32), 32};
    for (int64_t r = rs.first; r < M; r += rs.step) row(r, g);
  }
}

template <typename T>
struct ClassLossRow {
  ClassLossRows<T> a;
  template <typename Group>
  __device__ void operator()(int64_t r, Group& g) const { class_loss_row(a, r, g, CpuExp{}); }
};

template <typename T>
struct ProbLossRow {
  ProbLossRows<T> a;
  template <typename Group>
  __device__ void operator()(int64_t r, Group& g) const { prob_loss_row(a, r, g, CpuExp{}); }
};

template <typename Row>
void launch_rows(const Row& row, int64_t M, int64_t C, Device device, const char* what) {
  const LossRowLaunch l = loss_row_launch(M, C, max_blocks(device));
  if (l.blocks == 0) return;
  if (l.block_per_row())
    loss_rows<true><<<static_cast<unsigned>(l.blocks), l.threads, 0, stream()>>>(row, M);
  else
    loss_rows<false><<<static_cast<unsigned>(l.blocks), l.threads, 0, stream()>>>(row, M);
  check_launch(what);
}

// One block of kSumThreads: loss_sums (sum(w) and, with a target, the divisor).
constexpr int kSumThreads = 256;
template <typename T>
__global__ void loss_sums_kernel(const T* w, int64_t C, const int64_t* target, int64_t M,
                                 int64_t ignore_index, double* out) {
  __shared__ double shared[kMaxWarpsPerBlock];
  BlockGroup g{static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), shared};
  loss_sums(w, C, target, M, ignore_index, g, out);
}

template <typename T>
void launch_sums(const T* w, int64_t C, const int64_t* target, int64_t M, int64_t ignore_index,
                 double* out) {
  loss_sums_kernel<T><<<1, kSumThreads, 0, stream()>>>(w, C, target, M, ignore_index, out);
  check_launch("cross_entropy");
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}

void check_targets(const char* what, const Tensor& target, int64_t M) {
  DC_CHECK(target.dtype() == DType::Int64, TypeError, "[", what,
           "] expected int64 class indices, got ", dtype_name(target.dtype()));
  DC_CHECK(target.numel() == M, ValueError, "[", what, "] expected one class index per row (",
           M, "), got target of shape ", target.shape_str());
}

// ---- first_bad_target -------------------------------------------------------------------------
__global__ void first_bad_target_kernel(const int64_t* target, int64_t M, int64_t C,
                                        int64_t ignore_index, unsigned long long* first) {
  const int64_t id = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t r = first_bad_in_stride(target, M, C, ignore_index, id,
                                        static_cast<int64_t>(gridDim.x) * blockDim.x);
  if (r < M) atomicMin(first, static_cast<unsigned long long>(r));
}

int64_t cuda_first_bad_target(const Tensor& target, int64_t C, int64_t ignore_index) {
  const int64_t M = target.numel();
  check_targets("cross_entropy", target, M);
  const LaunchConfig c = elementwise_launch(M, max_blocks(target.device()));
  if (c.blocks == 0) return -1;
  DeviceBuffer first = upload(std::vector<unsigned long long>{static_cast<unsigned long long>(M)});
  first_bad_target_kernel<<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
      static_cast<const int64_t*>(target.data_ptr()), M, C, ignore_index,
      first.as<unsigned long long>());
  check_launch("first_bad_target");
  const auto r = static_cast<int64_t>(read_back<unsigned long long>(first.get(), "cross_entropy"));
  return r < M ? r : -1;
}

// ---- class-index targets ----------------------------------------------------------------------
double cuda_class_loss_forward(const Tensor& loss, const Tensor& lse, const Tensor& x,
                               const ClassTargets& ct, bool logits) {
  const int64_t M = x.sizes()[0], C = x.sizes()[1];
  const char* what = logits ? "cross_entropy" : "nll_loss";
  check_targets(what, ct.target, M);
  if (M == 0) return 0.0;
  double divisor = 0;
  with_float_type(x.dtype(), what, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    DeviceBuffer sums(2 * sizeof(double));
    const T* w = data_or_null<T>(ct.weight);
    const int64_t* target = static_cast<const int64_t*>(ct.target.data_ptr());
    launch_sums<T>(w, C, target, M, ct.ignore_index, sums.as<double>());
    ClassLossRows<T> a;
    a.x = static_cast<const T*>(x.data_ptr());
    a.target = target;
    a.w = w;
    a.sums = sums.as<double>();
    a.loss = static_cast<T*>(loss.data_ptr());
    a.lse = logits ? static_cast<T*>(lse.data_ptr()) : nullptr;
    a.C = C;
    a.ignore_index = ct.ignore_index;
    a.eps = static_cast<T>(ct.smoothing);
    launch_rows(ClassLossRow<T>{a}, M, C, x.device(), what);
    divisor = read_back<double>(sums.as<double>() + 1, what);
  });
  return divisor;
}

template <typename T>
ClassElements<T> class_elements(const ClassTargets& ct, int64_t C) {
  ClassElements<T> k;
  k.target = static_cast<const int64_t*>(ct.target.data_ptr());
  k.w = data_or_null<T>(ct.weight);
  k.C = C;
  k.ignore_index = ct.ignore_index;
  k.eps = static_cast<T>(ct.smoothing);
  k.soft = k.eps / static_cast<T>(C);
  return k;
}

template <typename T>
__global__ void cross_entropy_backward_kernel(ClassElements<T> k, T* gx, const T* x, const T* lse,
                                              const T* scale, int64_t scale_step,
                                              const double* sums, int64_t n) {
  const T wsum = static_cast<T>(sums[0]);
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    gx[i] = cross_entropy_grad_element(k, x, lse, scale, scale_step, wsum, i, CpuExp{});
}

void cuda_cross_entropy_backward_into(const Tensor& gx, const Tensor& x, const Tensor& lse,
                                      const ClassTargets& ct, const Tensor& row_scale) {
  const int64_t M = x.sizes()[0], C = x.sizes()[1];
  check_targets("cross_entropy_backward", ct.target, M);
  DC_CHECK(row_scale.numel() == 1 || row_scale.numel() == M, ValueError,
           "[cross_entropy_backward] expected one gradient scale or one per row (", M,
           "), got shape ", row_scale.shape_str());
  const LaunchConfig c = elementwise_launch(M * C, max_blocks(gx.device()));
  if (c.blocks == 0) return;
  with_float_type(x.dtype(), "cross_entropy_backward", [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    const ClassElements<T> k = class_elements<T>(ct, C);
    DeviceBuffer sums(2 * sizeof(double));
    launch_sums<T>(k.w, C, nullptr, M, ct.ignore_index, sums.as<double>());
    cross_entropy_backward_kernel<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        k, static_cast<T*>(gx.data_ptr()), static_cast<const T*>(x.data_ptr()),
        static_cast<const T*>(lse.data_ptr()), static_cast<const T*>(row_scale.data_ptr()),
        row_scale.numel() == 1 ? 0 : 1, sums.as<double>(), M * C);
    check_launch("cross_entropy_backward");
  });
}

template <typename T>
__global__ void class_target_matrix_kernel(ClassElements<T> k, T* B, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    B[i] = class_target_element(k, i);
}

void cuda_class_target_matrix_into(const Tensor& B, const ClassTargets& ct, int64_t C) {
  const int64_t M = ct.target.numel();
  check_targets("cross_entropy", ct.target, M);
  const LaunchConfig c = elementwise_launch(M * C, max_blocks(B.device()));
  if (c.blocks == 0) return;
  with_float_type(B.dtype(), "cross_entropy", [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    class_target_matrix_kernel<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        class_elements<T>(ct, C), static_cast<T*>(B.data_ptr()), M * C);
    check_launch("cross_entropy");
  });
}

// ---- probability targets ---------------------------------------------------------------------
void cuda_prob_loss_forward(const Tensor& loss, const Tensor& x, const Tensor& target,
                            const Tensor& weight, double smoothing) {
  const int64_t M = x.sizes()[0], C = x.sizes()[1];
  DC_CHECK(target.dtype() == x.dtype(), TypeError, "[cross_entropy] expected probability "
           "targets of the input's dtype ", dtype_name(x.dtype()), ", got ",
           dtype_name(target.dtype()));
  DC_CHECK(target.sizes() == x.sizes(), ValueError, "[cross_entropy] expected probability "
           "targets of the input's shape ", x.shape_str(), ", got ", target.shape_str());
  with_float_type(x.dtype(), "cross_entropy", [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    ProbLossRows<T> a;
    a.x = static_cast<const T*>(x.data_ptr());
    a.target = static_cast<const T*>(target.data_ptr());
    a.w = data_or_null<T>(weight);
    a.loss = static_cast<T*>(loss.data_ptr());
    a.C = C;
    a.keep = T(1) - static_cast<T>(smoothing);
    a.add = static_cast<T>(smoothing) / static_cast<T>(C);
    launch_rows(ProbLossRow<T>{a}, M, C, x.device(), "cross_entropy");
  });
}

}  // namespace

void fill_loss(dispatch::KernelTable& t) {
  t.first_bad_target = cuda_first_bad_target;
  t.class_loss_forward = cuda_class_loss_forward;
  t.cross_entropy_backward_into = cuda_cross_entropy_backward_into;
  t.class_target_matrix_into = cuda_class_target_matrix_into;
  t.prob_loss_forward = cuda_prob_loss_forward;
}

}  // namespace dc::cuda_kernels
