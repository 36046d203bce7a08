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
//     madd() below reproduces them, and automatic contraction is switched off for this file
//     so that no other product is fused (each separate torch op rounds its result).
// The element loops are branch-free (flags are template parameters), so the compiler
// vectorises them; sqrt and division are correctly rounded in both the vector body and
// the scalar tail, so a result never depends on where a chunk boundary falls, and so
// never on the number of threads.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/optim.h"

#pragma GCC optimize("fp-contract=off")

namespace dc::cpu::DC_ISA_NS {
namespace {

template <typename T>
inline T madd(T a, T b, T c) {
#if defined(__FMA__)
  return std::fma(a, b, c);  // one rounding, like torch's vec::fmadd
#else
  return a * b + c;  // without FMA hardware torch's kernels round twice as well
#endif
}

// torch.lerp(self, end, w) with a scalar weight (|w| < 0.5 selects the form, once per call).
template <typename T>
inline T lerp(T self, T end, T w, T w_minus_1, bool small) {
  return small ? madd(w, end - self, self) : madd(w_minus_1, end - self, end);
}

// torch.maximum: NaN propagates.
template <typename T>
inline T max_nan(T a, T b) { return (a > b || a != a) ? a : b; }

template <typename T>
T* slot(const OptimTensor& t, int i) { return static_cast<T*>(t.state[i]) ; }

// ---- SGD ------------------------------------------------------------------------------------
// d = ±g (+ wd * p); buf = init ? d : buf * momentum + (1 - dampening) * d;
// d = nesterov ? d + momentum * buf : buf; p -= lr * d.       p, g, buf: [n]
template <typename T, bool kWd, int kMom /*0 none, 1 init, 2 blend*/, bool kNesterov>
void sgd_loop(const SgdHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  T* __restrict p = static_cast<T*>(t.param);
  const T* __restrict g = static_cast<const T*>(t.grad);
  T* __restrict buf = slot<T>(t, 0);
  const T sign = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay), mom = T(h.momentum),
          one_minus_damp = T(1 - h.dampening), neg_lr = T(-h.lr);
  for (int64_t i = b; i < e; ++i) {
    T d = sign * g[i];
    if constexpr (kWd) d = madd(p[i], wd, d);
    if constexpr (kMom == 1) buf[i] = d;
    if constexpr (kMom == 2) buf[i] = madd(d, one_minus_damp, buf[i] * mom);
    if constexpr (kMom != 0) d = kNesterov ? madd(buf[i], mom, d) : buf[i];
    p[i] = madd(d, neg_lr, p[i]);
  }
}

template <typename T>
void sgd_kernel(const SgdHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  const bool wd = h.weight_decay != 0;
  const int mom = h.momentum == 0 ? 0 : (t.init_buffer ? 1 : 2);
#define DC_SGD_CASE(W, M, N) \
  if (wd == W && mom == M && h.nesterov == N) return sgd_loop<T, W, M, N>(h, t, b, e);
  DC_SGD_CASE(false, 0, false) DC_SGD_CASE(true, 0, false)
  DC_SGD_CASE(false, 1, false) DC_SGD_CASE(true, 1, false)
  DC_SGD_CASE(false, 2, false) DC_SGD_CASE(true, 2, false)
  DC_SGD_CASE(false, 0, true) DC_SGD_CASE(true, 0, true)
  DC_SGD_CASE(false, 1, true) DC_SGD_CASE(true, 1, true)
  DC_SGD_CASE(false, 2, true) DC_SGD_CASE(true, 2, true)
#undef DC_SGD_CASE
}

// ---- Adam / AdamW ---------------------------------------------------------------------------
// d = ±g (+ wd * p unless decoupled); p *= 1 - lr * wd (decoupled);
// m = lerp(m, d, 1 - beta1); v = v * beta2 + (1 - beta2) * d * d; vmax = max(vmax, v);
// p += (-lr / bc1) * m / (sqrt(v or vmax) / sqrt(bc2) + eps),  bc_k = 1 - beta_k^step.
template <typename T, bool kCoupledWd, bool kAmsgrad>
void adam_loop(const AdamHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  T* __restrict p = static_cast<T*>(t.param);
  const T* __restrict g = static_cast<const T*>(t.grad);
  T* __restrict m = slot<T>(t, 0);
  T* __restrict v = slot<T>(t, 1);
  T* __restrict vmax = slot<T>(t, 2);
  const double bc1 = 1 - std::pow(h.beta1, t.step);
  const double bc2 = 1 - std::pow(h.beta2, t.step);
  const T sign = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay);
  // Decoupled decay by 1 is exact, so it needs no flag of its own.
  const T decay = h.decoupled && h.weight_decay != 0 ? T(1 - h.lr * h.weight_decay) : T(1);
  const T w1 = T(1 - h.beta1), w1m1 = w1 - T(1), beta2 = T(h.beta2), one_minus_beta2 = T(1 - h.beta2);
  const bool small = std::fabs(w1) < T(0.5);
  const T neg_step_size = T(-(h.lr / bc1)), bc2_sqrt = T(std::pow(bc2, 0.5)), eps = T(h.eps);
  for (int64_t i = b; i < e; ++i) {
    T d = sign * g[i];
    if constexpr (kCoupledWd) d = madd(p[i], wd, d);
    const T pi = p[i] * decay;
    const T mi = lerp(m[i], d, w1, w1m1, small);
    const T vi = madd(one_minus_beta2 * d, d, v[i] * beta2);
    m[i] = mi;
    v[i] = vi;
    T vu = vi;
    if constexpr (kAmsgrad) {
      vu = max_nan(vmax[i], vi);
      vmax[i] = vu;
    }
    const T denom = std::sqrt(vu) / bc2_sqrt + eps;
    p[i] = pi + (neg_step_size * mi) / denom;
  }
}

template <typename T>
void adam_kernel(const AdamHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  const bool coupled = !h.decoupled && h.weight_decay != 0;
  if (coupled) {
    h.amsgrad ? adam_loop<T, true, true>(h, t, b, e) : adam_loop<T, true, false>(h, t, b, e);
  } else {
    h.amsgrad ? adam_loop<T, false, true>(h, t, b, e) : adam_loop<T, false, false>(h, t, b, e);
  }
}

// ---- RMSprop --------------------------------------------------------------------------------
// d = ±g (+ wd * p); sq = sq * alpha + (1 - alpha) * d * d;
// centered: ga = lerp(ga, d, 1 - alpha), avg = sqrt(sq - ga * ga), else avg = sqrt(sq);
// avg += eps; momentum: buf = buf * momentum + d / avg, p -= lr * buf; else p -= lr * d / avg.
template <typename T, bool kWd, bool kCentered, bool kMomentum>
void rmsprop_loop(const RmspropHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  T* __restrict p = static_cast<T*>(t.param);
  const T* __restrict g = static_cast<const T*>(t.grad);
  T* __restrict sq = slot<T>(t, 0);
  T* __restrict ga = slot<T>(t, 1);
  T* __restrict buf = slot<T>(t, 2);
  const T sign = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay), alpha = T(h.alpha),
          w = T(1 - h.alpha), wm1 = w - T(1), eps = T(h.eps), mom = T(h.momentum),
          neg_lr = T(-h.lr);
  const bool small = std::fabs(w) < T(0.5);
  for (int64_t i = b; i < e; ++i) {
    T d = sign * g[i];
    if constexpr (kWd) d = madd(p[i], wd, d);
    const T s = madd(w * d, d, sq[i] * alpha);
    sq[i] = s;
    T avg;
    if constexpr (kCentered) {
      const T a = lerp(ga[i], d, w, wm1, small);
      ga[i] = a;
      avg = std::sqrt(madd(T(-1) * a, a, s));
    } else {
      avg = std::sqrt(s);
    }
    avg = avg + eps;
    if constexpr (kMomentum) {
      const T bi = buf[i] * mom + (T(1) * d) / avg;
      buf[i] = bi;
      p[i] = madd(bi, neg_lr, p[i]);
    } else {
      p[i] = p[i] + (neg_lr * d) / avg;
    }
  }
}

template <typename T>
void rmsprop_kernel(const RmspropHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  const bool wd = h.weight_decay != 0, mom = h.momentum > 0;
#define DC_RMS_CASE(W, C, M) \
  if (wd == W && h.centered == C && mom == M) return rmsprop_loop<T, W, C, M>(h, t, b, e);
  DC_RMS_CASE(false, false, false) DC_RMS_CASE(true, false, false)
  DC_RMS_CASE(false, true, false) DC_RMS_CASE(true, true, false)
  DC_RMS_CASE(false, false, true) DC_RMS_CASE(true, false, true)
  DC_RMS_CASE(false, true, true) DC_RMS_CASE(true, true, true)
#undef DC_RMS_CASE
}

// ---- Adagrad --------------------------------------------------------------------------------
// d = ±g (+ wd * p); sum += d * d; p -= clr * d / (sqrt(sum) + eps),
// clr = lr / (1 + (step - 1) * lr_decay).
template <typename T, bool kWd>
void adagrad_loop(const AdagradHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  T* __restrict p = static_cast<T*>(t.param);
  const T* __restrict g = static_cast<const T*>(t.grad);
  T* __restrict sum = slot<T>(t, 0);
  const T sign = h.maximize ? T(-1) : T(1), wd = T(h.weight_decay), eps = T(h.eps);
  const T neg_clr = T(-(h.lr / (1 + (t.step - 1) * h.lr_decay)));
  for (int64_t i = b; i < e; ++i) {
    T d = sign * g[i];
    if constexpr (kWd) d = madd(p[i], wd, d);
    const T s = madd(T(1) * d, d, sum[i]);
    sum[i] = s;
    p[i] = p[i] + (neg_clr * d) / (std::sqrt(s) + eps);
  }
}

template <typename T>
void adagrad_kernel(const AdagradHyper& h, const OptimTensor& t, int64_t b, int64_t e) {
  h.weight_decay != 0 ? adagrad_loop<T, true>(h, t, b, e) : adagrad_loop<T, false>(h, t, b, e);
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
