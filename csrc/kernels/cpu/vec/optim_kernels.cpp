// Optimizer update kernels, compiled once per ISA (see Note [Per-ISA kernels]).
//
// Note [Optimizer update order]
// Each kernel is PyTorch's single-tensor update (torch/optim/{sgd,adam,rmsprop,adagrad}.py)
// fused into one loop, keeping every rounding step of the op sequence it replaces:
//   * hyperparameters are combined in double, like Python floats, then cast to the tensor
//     dtype where torch passes them as scalars to a kernel (lr, 1 - beta1, eps, ...);
//   * torch's vectorised CPU kernels use fused multiply-adds in exactly these places:
//     add(x, alpha=a) = fma(x, a, self), lerp = fma(w, end - self, self),
//     addcmul(t1, t2, value=s) = fma(s * t1, t2, self); addcdiv is self + (s * t1) / t2.
//     madd() (kernels/optim_steps.h) reproduces them, and automatic contraction is switched
//     off for this file so that no other product is fused (each separate torch op rounds its
//     result).
// The element loops are branch-free (flags are template parameters), so the compiler
// vectorises them; sqrt and division are correctly rounded in both the vector body and
// the scalar tail, so a result never depends on where a chunk boundary falls, and so
// never on the number of threads.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/optim.h"
#include "kernels/host_device.h"

#pragma GCC optimize("fp-contract=off")

namespace dc::cpu::DC_ISA_NS {
namespace {

// madd, lerp, max_nan and the element steps of every optimizer, shared with the CUDA kernels.
#include "kernels/optim_steps.h"

template <typename T>
T* slot(const OptimTensor& t, int i) { return static_cast<T*>(t.state[i]) ; }

// ---- SGD ------------------------------------------------------------------------------------
template <typename T, bool kWd, int kMom /*0 none, 1 init, 2 blend*/, bool kNesterov>
void sgd_loop(const SgdHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  T* __restrict p = static_cast<T*>(t.param);
  const T* __restrict g = static_cast<const T*>(t.grad);
  T* __restrict buf = slot<T>(t, 0);
  const SgdConsts<T> k = sgd_consts<T>(h);
  for (int64_t i = b; i < e; ++i) sgd_element<T, kWd, kMom, kNesterov>(k, p, g, buf, i);
}

template <typename T>
void sgd_kernel(const SgdHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  with_sgd_flags(h, t.init_buffer, [&](auto wd, auto mom, auto nesterov) {
    sgd_loop<T, decltype(wd)::value, decltype(mom)::value, decltype(nesterov)::value>(h, t, b, e);
  });
}

// ---- Adam / AdamW ---------------------------------------------------------------------------
template <typename T, bool kCoupledWd, bool kAmsgrad>
void adam_loop(const AdamHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  T* __restrict p = static_cast<T*>(t.param);
  const T* __restrict g = static_cast<const T*>(t.grad);
  T* __restrict m = slot<T>(t, 0);
  T* __restrict v = slot<T>(t, 1);
  T* __restrict vmax = slot<T>(t, 2);
  const AdamConsts<T> k = adam_consts<T>(h, t.step);
  for (int64_t i = b; i < e; ++i) adam_element<T, kCoupledWd, kAmsgrad>(k, p, g, m, v, vmax, i);
}

template <typename T>
void adam_kernel(const AdamHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  with_adam_flags(h, [&](auto coupled, auto amsgrad) {
    adam_loop<T, decltype(coupled)::value, decltype(amsgrad)::value>(h, t, b, e);
  });
}

// ---- RMSprop --------------------------------------------------------------------------------
template <typename T, bool kWd, bool kCentered, bool kMomentum>
void rmsprop_loop(const RmspropHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  T* __restrict p = static_cast<T*>(t.param);
  const T* __restrict g = static_cast<const T*>(t.grad);
  T* __restrict sq = slot<T>(t, 0);
  T* __restrict ga = slot<T>(t, 1);
  T* __restrict buf = slot<T>(t, 2);
  const RmspropConsts<T> k = rmsprop_consts<T>(h);
  for (int64_t i = b; i < e; ++i)
    rmsprop_element<T, kWd, kCentered, kMomentum>(k, p, g, sq, ga, buf, i);
}

template <typename T>
void rmsprop_kernel(const RmspropHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  with_rmsprop_flags(h, [&](auto wd, auto centered, auto momentum) {
    rmsprop_loop<T, decltype(wd)::value, decltype(centered)::value, decltype(momentum)::value>(
        h, t, b, e);
  });
}

// ---- Adagrad --------------------------------------------------------------------------------
template <typename T, bool kWd>
void adagrad_loop(const AdagradHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  T* __restrict p = static_cast<T*>(t.param);
  const T* __restrict g = static_cast<const T*>(t.grad);
  T* __restrict sum = slot<T>(t, 0);
  const AdagradConsts<T> k = adagrad_consts<T>(h, t.step);
  for (int64_t i = b; i < e; ++i) adagrad_element<T, kWd>(k, p, g, sum, i);
}

template <typename T>
void adagrad_kernel(const AdagradHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  with_adagrad_flags(h, [&](auto wd) { adagrad_loop<T, decltype(wd)::value>(h, t, b, e); });
}

}  // namespace

void fill_optim(OptimTable& t) {
  t.sgd[0] = sgd_kernel<float>;
  t.sgd[1] = sgd_kernel<double>;
  t.adam[0] = adam_kernel<float>;
  t.adam[1] = adam_kernel<double>;
  t.rmsprop[0] = rmsprop_kernel<float>;
  t.rmsprop[1] = rmsprop_kernel<double>;
  t.adagrad[0] = adagrad_kernel<float>;
  t.adagrad[1] = adagrad_kernel<double>;
}

}  // namespace dc::cpu::DC_ISA_NS
