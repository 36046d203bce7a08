// CUDA fused SGD, Adam/AdamW, RMSprop and Adagrad updates: dc::cpu::sgd_update / adam_update /
// rmsprop_update / adagrad_update's contract (kernels/cpu/optim.h), one grid-stride launch per
// parameter running the element steps the cpu loops run (kernels/optim_steps.h, fused
// multiply-adds where torch's kernels use them). nvcc's default --fmad=true may contract other
// products too (the cpu file forbids that), so a device result can differ from the cpu's in the
// last bits; the device tests compare them with a tolerance.
//
// Compiled only; no GPU has run these yet (README, "Devices").
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "cuda/runtime.h"
#include "kernels/cpu/optim.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"
#include "kernels/host_device.h"

namespace dc::cuda_kernels {
namespace optim_dev {
#include "kernels/optim_steps.h"
}  // namespace optim_dev

namespace {

using namespace optim_dev;
using cpu::OptimTensor;

template <typename T, bool kWd, int kMom, bool kNesterov>
__global__ void sgd_kernel(SgdConsts<T> k, T* p, const T* g, T* buf, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    sgd_element<T, kWd, kMom, kNesterov>(k, p, g, buf, i);
}

template <typename T, bool kCoupledWd, bool kAmsgrad>
__global__ void adam_kernel(AdamConsts<T> k, T* p, const T* g, T* m, T* v, T* vmax, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    adam_element<T, kCoupledWd, kAmsgrad>(k, p, g, m, v, vmax, i);
}

template <typename T, bool kWd, bool kCentered, bool kMomentum>
__global__ void rmsprop_kernel(RmspropConsts<T> k, T* p, const T* g, T* sq, T* ga, T* buf,
                               int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    rmsprop_element<T, kWd, kCentered, kMomentum>(k, p, g, sq, ga, buf, i);
}

template <typename T, bool kWd>
__global__ void adagrad_kernel(AdagradConsts<T> k, T* p, const T* g, T* sum, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    adagrad_element<T, kWd>(k, p, g, sum, i);
}

int64_t grid_for(int64_t n) {
  return elementwise_launch(n, max_blocks(Device{DeviceType::CUDA, cuda::current_device()})).blocks;
}

template <typename T, bool kWd, int kMom, bool kNesterov>
void sgd_launch(const SgdConsts<T>& k, const OptimTensor& t) {
  const int64_t blocks = grid_for(t.numel);
  if (blocks == 0) return;
  sgd_kernel<T, kWd, kMom, kNesterov><<<static_cast<unsigned>(blocks), 256, 0, stream()>>>(
      k, static_cast<T*>(t.param), static_cast<const T*>(t.grad),
      static_cast<T*>(t.state[0]), t.numel);
  check_launch("sgd");
}

template <typename T>
void sgd_as(const cpu::SgdHyper& h, const std::vector<OptimTensor>& ts) {
  const SgdConsts<T> k = sgd_consts<T>(h);
  for (const OptimTensor& t : ts)
    with_sgd_flags(h, t.init_buffer, [&](auto wd, auto mom, auto nesterov) {
      sgd_launch<T, decltype(wd)::value, decltype(mom)::value, decltype(nesterov)::value>(k, t);
    });
}

template <typename T, bool kCoupledWd, bool kAmsgrad>
void adam_launch(const cpu::AdamHyper& h, const OptimTensor& t) {
  const int64_t blocks = grid_for(t.numel);
  if (blocks == 0) return;
  adam_kernel<T, kCoupledWd, kAmsgrad><<<static_cast<unsigned>(blocks), 256, 0, stream()>>>(
      adam_consts<T>(h, t.step), static_cast<T*>(t.param), static_cast<const T*>(t.grad),
      static_cast<T*>(t.state[0]), static_cast<T*>(t.state[1]), static_cast<T*>(t.state[2]),
      t.numel);
  check_launch("adam");
}

template <typename T>
void adam_as(const cpu::AdamHyper& h, const std::vector<OptimTensor>& ts) {
  for (const OptimTensor& t : ts)
    with_adam_flags(h, [&](auto coupled, auto amsgrad) {
      adam_launch<T, decltype(coupled)::value, decltype(amsgrad)::value>(h, t);
    });
}

template <typename T, bool kWd, bool kCentered, bool kMomentum>
void rmsprop_launch(const RmspropConsts<T>& k, const OptimTensor& t) {
  const int64_t blocks = grid_for(t.numel);
  if (blocks == 0) return;
  rmsprop_kernel<T, kWd, kCentered, kMomentum><<<static_cast<unsigned>(blocks), 256, 0, stream()>>>(
      k, static_cast<T*>(t.param), static_cast<const T*>(t.grad), static_cast<T*>(t.state[0]),
      static_cast<T*>(t.state[1]), static_cast<T*>(t.state[2]), t.numel);
  check_launch("rmsprop");
}

template <typename T>
void rmsprop_as(const cpu::RmspropHyper& h, const std::vector<OptimTensor>& ts) {
  const RmspropConsts<T> k = rmsprop_consts<T>(h);
  for (const OptimTensor& t : ts)
    with_rmsprop_flags(h, [&](auto wd, auto centered, auto momentum) {
      rmsprop_launch<T, decltype(wd)::value, decltype(centered)::value,
                     decltype(momentum)::value>(k, t);
    });
}

template <typename T, bool kWd>
void adagrad_launch(const cpu::AdagradHyper& h, const OptimTensor& t) {
  const int64_t blocks = grid_for(t.numel);
  if (blocks == 0) return;
  adagrad_kernel<T, kWd><<<static_cast<unsigned>(blocks), 256, 0, stream()>>>(
      adagrad_consts<T>(h, t.step), static_cast<T*>(t.param), static_cast<const T*>(t.grad),
      static_cast<T*>(t.state[0]), t.numel);
  check_launch("adagrad");
}

template <typename T>
void adagrad_as(const cpu::AdagradHyper& h, const std::vector<OptimTensor>& ts) {
  for (const OptimTensor& t : ts)
    with_adagrad_flags(h, [&](auto wd) { adagrad_launch<T, decltype(wd)::value>(h, t); });
}

void cuda_sgd_update(DType dtype, const cpu::SgdHyper& h, const std::vector<OptimTensor>& ts) {
  with_float_type(dtype, "sgd",
                  [&](auto* t) { sgd_as<std::remove_pointer_t<decltype(t)>>(h, ts); });
}

void cuda_adam_update(DType dtype, const cpu::AdamHyper& h, const std::vector<OptimTensor>& ts) {
  with_float_type(dtype, "adam",
                  [&](auto* t) { adam_as<std::remove_pointer_t<decltype(t)>>(h, ts); });
}

void cuda_rmsprop_update(DType dtype, const cpu::RmspropHyper& h,
                         const std::vector<OptimTensor>& ts) {
  with_float_type(dtype, "rmsprop",
                  [&](auto* t) { rmsprop_as<std::remove_pointer_t<decltype(t)>>(h, ts); });
}

void cuda_adagrad_update(DType dtype, const cpu::AdagradHyper& h,
                         const std::vector<OptimTensor>& ts) {
  with_float_type(dtype, "adagrad",
                  [&](auto* t) { adagrad_as<std::remove_pointer_t<decltype(t)>>(h, ts); });
}

}  // namespace

void fill_optim(dispatch::KernelTable& t) {
  t.sgd_update = cuda_sgd_update;
  t.adam_update = cuda_adam_update;
  t.rmsprop_update = cuda_rmsprop_update;
  t.adagrad_update = cuda_adagrad_update;
}

}  // namespace dc::cuda_kernels
