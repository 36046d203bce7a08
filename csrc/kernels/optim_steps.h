// The per-element SGD and Adam/AdamW updates (Note [Optimizer update order] in
// kernels/cpu/vec/optim_kernels.cpp), written once for the per-ISA cpu loops and the CUDA
// kernels (kernels/cuda/optim.cu). Included inside the includer's namespace, like
// kernels/cpu/vec/philox16.h, so that each ISA's copy of madd (a fused multiply-add where the
// ISA has one, as torch's vectorised kernels use it) stays its own; the cpu file switches off
// automatic contraction before including it, so no other product is fused.
//
// The constants of a call are computed on the host from the hyperparameters (sgd_consts,
// adam_consts); an element step reads and writes element i of the parameter, its gradient and
// its state arrays (null where the flags leave a state unused).
#ifndef DC_OPTIM_STEPS_BODY
#define DC_OPTIM_STEPS_BODY

template <typename T>
DC_HD inline T madd(T a, T b, T c) {
#if defined(__CUDA_ARCH__)
  return fma(a, b, c);
#elif defined(__FMA__)
  return std::fma(a, b, c);  // one rounding, like torch's vec::fmadd
#else
  return a * b + c;  // without FMA hardware torch's kernels round twice as well
#endif
}

// torch.lerp(self, end, w) with a scalar weight (|w| < 0.5 selects the form, once per call).
template <typename T>
DC_HD inline T lerp(T self, T end, T w, T w_minus_1, bool small) {
  return small ? madd(w, end - self, self) : madd(w_minus_1, end - self, end);
}

// The correctly rounded square root, on either side.
template <typename T>
DC_HD inline T root(T x) {
#if defined(__CUDA_ARCH__)
  return sqrt(x);
#else
  return std::sqrt(x);
#endif
}

// torch.maximum: NaN propagates.
template <typename T>
DC_HD inline T max_nan(T a, T b) { return (a > b || a != a) ? a : b; }

// ---- SGD ------------------------------------------------------------------------------------
// d = ±g (+ wd * p); buf = init ? d : buf * momentum + (1 - dampening) * d;
// d = nesterov ? d + momentum * buf : buf; p -= lr * d.
template <typename T>
struct SgdConsts {
  T sign, wd, mom, one_minus_damp, neg_lr;
};
template <typename T>
SgdConsts<T> sgd_consts(const dc::cpu::SgdHyper& h) {
  return {h.maximize ? T(-1) : T(1), T(h.weight_decay), T(h.momentum), T(1 - h.dampening),
          T(-h.lr)};
}

// Calls f(wd, mom, nesterov), std::integral_constant flags, for an SGD call on a parameter
// whose momentum buffer is new (init_buffer) or not: the template arguments of sgd_element.
template <typename F>
void with_sgd_flags(const dc::cpu::SgdHyper& h, bool init_buffer, F&& f) {
  using std::integral_constant;
  const int mom = h.momentum == 0 ? 0 : (init_buffer ? 1 : 2);
  auto pick_nesterov = [&](auto wd, auto m) {
    if (h.nesterov) f(wd, m, integral_constant<bool, true>{});
    else f(wd, m, integral_constant<bool, false>{});
  };
  auto pick_mom = [&](auto wd) {
    if (mom == 0) pick_nesterov(wd, integral_constant<int, 0>{});
    else if (mom == 1) pick_nesterov(wd, integral_constant<int, 1>{});
    else pick_nesterov(wd, integral_constant<int, 2>{});
  };
  if (h.weight_decay != 0) pick_mom(integral_constant<bool, true>{});
  else pick_mom(integral_constant<bool, false>{});
}

// kMom: 0 no momentum, 1 a new buffer (takes d), 2 blend into the buffer.
template <typename T, bool kWd, int kMom, bool kNesterov>
DC_HD inline void sgd_element(const SgdConsts<T>& k, T* p, const T* g, T* buf, int64_t i) {
  T d = k.sign * g[i];
  if constexpr (kWd) d = madd(p[i], k.wd, d);
  if constexpr (kMom == 1) buf[i] = d;
  if constexpr (kMom == 2) buf[i] = madd(d, k.one_minus_damp, buf[i] * k.mom);
  if constexpr (kMom != 0) d = kNesterov ? madd(buf[i], k.mom, d) : buf[i];
  p[i] = madd(d, k.neg_lr, p[i]);
}

// ---- Adam / AdamW ---------------------------------------------------------------------------
// d = ±g (+ wd * p unless decoupled); p *= 1 - lr * wd (decoupled);
// m = lerp(m, d, 1 - beta1); v = v * beta2 + (1 - beta2) * d * d; vmax = max(vmax, v);
// p += (-lr / bc1) * m / (sqrt(v or vmax) / sqrt(bc2) + eps),  bc_k = 1 - beta_k^step.
template <typename T>
struct AdamConsts {
  T sign, wd, decay, w1, w1m1, beta2, one_minus_beta2, neg_step_size, bc2_sqrt, eps;
  bool small;
};
template <typename T>
AdamConsts<T> adam_consts(const dc::cpu::AdamHyper& h, double step) {
  const double bc1 = 1 - std::pow(h.beta1, step);
  const double bc2 = 1 - std::pow(h.beta2, step);
  AdamConsts<T> k;
  k.sign = h.maximize ? T(-1) : T(1);
  k.wd = T(h.weight_decay);
  // Decoupled decay by 1 is exact, so it needs no flag of its own.
  k.decay = h.decoupled && h.weight_decay != 0 ? T(1 - h.lr * h.weight_decay) : T(1);
  k.w1 = T(1 - h.beta1);
  k.w1m1 = k.w1 - T(1);
  k.beta2 = T(h.beta2);
  k.one_minus_beta2 = T(1 - h.beta2);
  k.small = std::fabs(k.w1) < T(0.5);
  k.neg_step_size = T(-(h.lr / bc1));
  k.bc2_sqrt = T(std::pow(bc2, 0.5));
  k.eps = T(h.eps);
  return k;
}

// Calls f(coupled_wd, amsgrad), std::integral_constant flags: adam_element's template
// arguments for the call.
template <typename F>
void with_adam_flags(const dc::cpu::AdamHyper& h, F&& f) {
  using std::integral_constant;
  auto pick_amsgrad = [&](auto coupled) {
    if (h.amsgrad) f(coupled, integral_constant<bool, true>{});
    else f(coupled, integral_constant<bool, false>{});
  };
  if (!h.decoupled && h.weight_decay != 0) pick_amsgrad(integral_constant<bool, true>{});
  else pick_amsgrad(integral_constant<bool, false>{});
}

template <typename T, bool kCoupledWd, bool kAmsgrad>
DC_HD inline void adam_element(const AdamConsts<T>& k, T* p, const T* g, T* m, T* v, T* vmax,
                               int64_t i) {
  T d = k.sign * g[i];
  if constexpr (kCoupledWd) d = madd(p[i], k.wd, d);
  const T pi = p[i] * k.decay;
  const T mi = lerp(m[i], d, k.w1, k.w1m1, k.small);
  const T vi = madd(k.one_minus_beta2 * d, d, v[i] * k.beta2);
  m[i] = mi;
  v[i] = vi;
  T vu = vi;
  if constexpr (kAmsgrad) {
    vu = max_nan(vmax[i], vi);
    vmax[i] = vu;
  }
  const T denom = root(vu) / k.bc2_sqrt + k.eps;
  p[i] = pi + (k.neg_step_size * mi) / denom;
}

#endif  // DC_OPTIM_STEPS_BODY
