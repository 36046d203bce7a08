// The per-element SGD, Adam/AdamW, RMSprop and Adagrad updates (Note [Optimizer update order]
// in kernels/cpu/vec/optim_kernels.cpp), written once for the per-ISA cpu loops and the CUDA
// kernels (kernels/cuda/optim.cu). Included inside the includer's namespace, like
// kernels/cpu/vec/philox16.h, so that each ISA's copy of madd (a fused multiply-add where the
// ISA has one, as torch's vectorised kernels use it) stays its own; the cpu file switches off
// automatic contraction before including it, so no other product is fused.
//
// The constants of a call are computed on the host from the hyperparameters (sgd_consts,
// adam_consts, rmsprop_consts, adagrad_consts); an element step reads and writes element i of
// the parameter, its gradient and its state arrays (null where the flags leave a state unused).
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

// ---- RMSprop --------------------------------------------------------------------------------
// d = ±g (+ wd * p); sq = sq * alpha + (1 - alpha) * d * d;
// centered: ga = lerp(ga, d, 1 - alpha), avg = sqrt(sq - ga * ga), else avg = sqrt(sq);
// avg += eps; momentum: buf = buf * momentum + d / avg, p -= lr * buf; else p -= lr * d / avg.
// The T(1) and T(-1) factors are torch's addcdiv / addcmul value scalars: multiplying by them
// is exact, they are kept so the expressions read as the op sequence they reproduce.
template <typename T>
struct RmspropConsts {
  T sign, wd, alpha, w, wm1, eps, mom, neg_lr;
  bool small;
};
template <typename T>
RmspropConsts<T> rmsprop_consts(const dc::cpu::RmspropHyper& h) {
  RmspropConsts<T> k;
  k.sign = h.maximize ? T(-1) : T(1);
  k.wd = T(h.weight_decay);
  k.alpha = T(h.alpha);
  k.w = T(1 - h.alpha);
  k.wm1 = k.w - T(1);
  k.eps = T(h.eps);
  k.mom = T(h.momentum);
  k.neg_lr = T(-h.lr);
  k.small = std::fabs(k.w) < T(0.5);
  return k;
}

// Calls f(wd, centered, momentum), std::integral_constant flags: rmsprop_element's template
// arguments for the call.
template <typename F>
void with_rmsprop_flags(const dc::cpu::RmspropHyper& h, F&& f) {
  using std::integral_constant;
  auto pick_momentum = [&](auto wd, auto centered) {
    if (h.momentum > 0) f(wd, centered, integral_constant<bool, true>{});
    else f(wd, centered, integral_constant<bool, false>{});
  };
  auto pick_centered = [&](auto wd) {
    if (h.centered) pick_momentum(wd, integral_constant<bool, true>{});
    else pick_momentum(wd, integral_constant<bool, false>{});
  };
  if (h.weight_decay != 0) pick_centered(integral_constant<bool, true>{});
  else pick_centered(integral_constant<bool, false>{});
}

// sq = square_avg, ga = grad_avg (kCentered), buf = momentum_buffer (kMomentum).
template <typename T, bool kWd, bool kCentered, bool kMomentum>
DC_HD inline void rmsprop_element(const RmspropConsts<T>& k, T* p, const T* g, T* sq, T* ga,
                                  T* buf, int64_t i) {
  T d = k.sign * g[i];
  if constexpr (kWd) d = madd(p[i], k.wd, d);
  const T s = madd(k.w * d, d, sq[i] * k.alpha);
  sq[i] = s;
  T avg;
  if constexpr (kCentered) {
    const T a = lerp(ga[i], d, k.w, k.wm1, k.small);
    ga[i] = a;
    avg = root(madd(T(-1) * a, a, s));
  } else {
    avg = root(s);
  }
  avg = avg + k.eps;
  if constexpr (kMomentum) {
    const T bi = buf[i] * k.mom + (T(1) * d) / avg;
    buf[i] = bi;
    p[i] = madd(bi, k.neg_lr, p[i]);
  } else {
    p[i] = p[i] + (k.neg_lr * d) / avg;
  }
}

// ---- Adagrad --------------------------------------------------------------------------------
// d = ±g (+ wd * p); sum += d * d; p -= clr * d / (sqrt(sum) + eps),
// clr = lr / (1 + (step - 1) * lr_decay), step counted after this update.
template <typename T>
struct AdagradConsts {
  T sign, wd, eps, neg_clr;
};
template <typename T>
AdagradConsts<T> adagrad_consts(const dc::cpu::AdagradHyper& h, double step) {
  return {h.maximize ? T(-1) : T(1), T(h.weight_decay), T(h.eps),
          T(-(h.lr / (1 + (step - 1) * h.lr_decay)))};
}

// Calls f(wd), a std::integral_constant flag: adagrad_element's template argument for the call.
template <typename F>
void with_adagrad_flags(const dc::cpu::AdagradHyper& h, F&& f) {
  if (h.weight_decay != 0) f(std::integral_constant<bool, true>{});
  else f(std::integral_constant<bool, false>{});
}

template <typename T, bool kWd>
DC_HD inline void adagrad_element(const AdagradConsts<T>& k, T* p, const T* g, T* sum,
                                  int64_t i) {
  T d = k.sign * g[i];
  if constexpr (kWd) d = madd(p[i], k.wd, d);
  const T s = madd(T(1) * d, d, sum[i]);
  sum[i] = s;
  p[i] = p[i] + (k.neg_clr * d) / (root(s) + k.eps);
}

#endif  // DC_OPTIM_STEPS_BODY
