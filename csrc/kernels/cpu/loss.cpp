#include "kernels/cpu/loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu/nn_rows.h"

namespace dc::cpu {

namespace {
int64_t row_grain(int64_t C) { return std::max<int64_t>(1, kGrainSize / std::max<int64_t>(C, 1)); }

template <typename T>
T weight_sum(const T* w, int64_t C) {
  if (!w) return T(C);
  T s = 0;
  for (int64_t c = 0; c < C; ++c) s += w[c];
  return s;
}
}  // namespace

int64_t first_bad_target(const Tensor& target, int64_t C, int64_t ignore_index) {
  const int64_t* t = target.data<int64_t>();
  const int64_t M = target.numel();
  for (int64_t r = 0; r < M; ++r)
    if (t[r] != ignore_index && (t[r] < 0 || t[r] >= C)) return r;
  return -1;
}

double class_loss_forward(const Tensor& loss, const Tensor& lse, const Tensor& x,
                          const ClassTargets& ct, bool logits) {
  const int64_t M = x.sizes()[0], C = x.sizes()[1];
  return DC_DISPATCH_FLOAT(x.dtype(), "cross_entropy", [&] {
    using T = scalar_t;
    const auto& f = nn_rows<T>();
    const T* xp = x.data<T>();
    const int64_t* tp = ct.target.data<int64_t>();
    const T* w = ct.weight.defined() ? ct.weight.data<T>() : nullptr;
    T* lp = loss.data<T>();
    T* lsep = logits ? lse.data<T>() : nullptr;
    const T eps = T(ct.smoothing), wsum = weight_sum(w, C);
    std::vector<T> wt(M);  // weight of each row's target (0 if ignored)
    parallel_for(0, M, row_grain(C), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* xr = xp + r * C;
        const T l = logits ? f.logsumexp(xr, C) : T(0);
        if (lsep) lsep[r] = l;
        const int64_t t = tp[r];
        if (t == ct.ignore_index) {
          lp[r] = 0;
          wt[r] = 0;
          continue;
        }
        wt[r] = w ? w[t] : T(1);
        T v = (T(1) - eps) * wt[r] * (l - xr[t]);
        if (eps != T(0)) {
          // sum_c w[c] * -(x[c] - lse) = lse * sum(w) - dot(w, x)
          const T dotwx = w ? f.dot(w, xr, C) : f.sum(xr, C);
          v += eps / T(C) * (l * wsum - dotwx);
        }
        lp[r] = v;
      }
    });
    double total = 0;
    for (int64_t r = 0; r < M; ++r) total += wt[r];
    return total;
  });
}

void cross_entropy_backward_into(const Tensor& gx, const Tensor& x, const Tensor& lse,
                                 const ClassTargets& ct, const Tensor& row_scale) {
  const int64_t M = x.sizes()[0], C = x.sizes()[1];
  DC_DISPATCH_FLOAT(x.dtype(), "cross_entropy_backward", [&] {
    using T = scalar_t;
    const auto& f = nn_rows<T>();
    const T* xp = x.data<T>();
    const T* lsep = lse.data<T>();
    const int64_t* tp = ct.target.data<int64_t>();
    const T* w = ct.weight.defined() ? ct.weight.data<T>() : nullptr;
    const T* sp = row_scale.data<T>();
    const int64_t s_step = row_scale.numel() == 1 ? 0 : 1;
    T* gp = gx.data<T>();
    const T eps = T(ct.smoothing), wsum = weight_sum(w, C);
    parallel_for(0, M, row_grain(C), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        T* gr = gp + r * C;
        const int64_t t = tp[r];
        if (t == ct.ignore_index) {
          std::fill(gr, gr + C, T(0));
          continue;
        }
        const T s = sp[r * s_step];
        const T hard = (T(1) - eps) * (w ? w[t] : T(1));
        const T soft = eps / T(C);
        f.scaled_exp(xp + r * C, lsep[r], s * (hard + soft * wsum), gr, C);
        gr[t] -= s * hard;
        if (soft != T(0)) {
          if (w) {
            for (int64_t c = 0; c < C; ++c) gr[c] -= s * soft * w[c];
          } else {
            for (int64_t c = 0; c < C; ++c) gr[c] -= s * soft;
          }
        }
      }
    });
  });
}

void class_target_matrix_into(const Tensor& B, const ClassTargets& ct, int64_t C) {
  const int64_t M = ct.target.numel();
  DC_DISPATCH_FLOAT(B.dtype(), "cross_entropy", [&] {
    using T = scalar_t;
    const int64_t* tp = ct.target.data<int64_t>();
    const T* w = ct.weight.defined() ? ct.weight.data<T>() : nullptr;
    T* bp = B.data<T>();
    const T eps = T(ct.smoothing), soft = eps / T(C);
    parallel_for(0, M, row_grain(C), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        T* br = bp + r * C;
        const int64_t t = tp[r];
        if (t == ct.ignore_index) {
          std::fill(br, br + C, T(0));
          continue;
        }
        for (int64_t c = 0; c < C; ++c) br[c] = soft * (w ? w[c] : T(1));
        br[t] += (T(1) - eps) * (w ? w[t] : T(1));
      }
    });
  });
}

void prob_loss_forward(const Tensor& loss, const Tensor& x, const Tensor& target,
                       const Tensor& weight, double smoothing) {
  const int64_t M = x.sizes()[0], C = x.sizes()[1];
  DC_DISPATCH_FLOAT(x.dtype(), "cross_entropy", [&] {
    using T = scalar_t;
    const auto& f = nn_rows<T>();
    const T* xp = x.data<T>();
    const T* tp = target.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    T* lp = loss.data<T>();
    const T keep = T(1) - T(smoothing), add = T(smoothing) / T(C);
    parallel_for(0, M, row_grain(C), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* xr = xp + r * C;
        const T* tr = tp + r * C;
        const T l = f.logsumexp(xr, C);
        T v = 0;
        for (int64_t c = 0; c < C; ++c) {
          const T bc = (tr[c] * keep + add) * (w ? w[c] : T(1));
          v += bc * (l - xr[c]);
        }
        lp[r] = v;
      }
    });
  });
}

double ordered_sum(const Tensor& t) {
  return DC_DISPATCH_FLOAT(t.dtype(), "sum", [&] {
    const scalar_t* p = t.data<scalar_t>();
    double s = 0;
    for (int64_t i = 0, n = t.numel(); i < n; ++i) s += p[i];
    return s;
  });
}

bool all_within(const Tensor& t, double lo, double hi) {
  return DC_DISPATCH_FLOAT(t.dtype(), "all_within", [&] {
    const scalar_t* p = t.data<scalar_t>();
    const scalar_t l = scalar_t(lo), h = scalar_t(hi);
    bool ok = true;
    for (int64_t i = 0, n = t.numel(); i < n; ++i) ok &= (p[i] >= l && p[i] <= h);
    return ok;
  });
}

}  // namespace dc::cpu
