// Row primitives for softmax, cross-entropy and layer/RMS norm, compiled once per ISA (see
// Note [Per-ISA kernels] and csrc/kernels/cpu/nn_rows.h for the contracts).
//
// Reductions keep kLanes independent partial results and combine them at the end: without
// -ffast-math the compiler may not reorder a single running sum, but it does vectorise
// "acc[j] += x[i + j]" over j. The result is independent of the thread count because a row is
// always reduced by one thread in this fixed order.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__)
#include "kernels/cpu/exp_avx512.h"
// GCC 12 reports its own _mm512_undefined_ps() inside the intrinsics headers as "maybe
// uninitialized" at -O3 (as in gemm_avx512.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "kernels/cpu/nn_rows.h"

namespace dc::cpu::DC_ISA_NS {
namespace {

#include "kernels/cpu/vec/scalar_math.h"

#include "kernels/cpu/vec/row_reduce.h"

template <typename T>
inline T max2(T a, T b) { return a > b ? a : b; }

template <typename T>
T row_sum(const T* x, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j];
  T s = 0;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  for (; i < n; ++i) s += x[i];
  return s;
}

// sum((x - c)^2)
template <typename T>
T row_sq_dev(const T* x, T c, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const T d = x[i + j] - c;
      acc[j] += d * d;
    }
  T s = 0;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  for (; i < n; ++i) s += (x[i] - c) * (x[i] - c);
  return s;
}

#if defined(__AVX512F__)
// exp_sum for float32 with AVX-512: exp_nonpositive_ps (x - m <= 0, m the row's maximum), one
// vscalefps for 2^n instead of exp_f32's two factors and range selects (half the instructions
// of the loop); the lanes and their order are the generic loop's.
template <bool Store>
float exp_sum_avx512(const float* x, float m, float* y, int64_t n) {
  const __m512 vm = _mm512_set1_ps(m);
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp_nonpositive_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
    if constexpr (Store) _mm512_storeu_ps(y + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  float s = 0;
  for (int j = 0; j < 16; ++j) s += lanes[j];
  for (; i < n; ++i) {
    const float e = exp_f32(x[i] - m);
    if constexpr (Store) y[i] = e;
    s += e;
  }
  return s;
}
#endif

// sum(exp(x - m)) for m = max(x); with Store, also y = exp(x - m). kLanes partial sums (one
// vector of floats with AVX-512) in fixed order.
template <bool Store, typename T>
T exp_sum(const T* x, T m, T* y, int64_t n) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) return exp_sum_avx512<Store>(x, m, y, n);
#endif
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const T e = exp_any(x[i + j] - m);
      if constexpr (Store) y[i + j] = e;
      acc[j] += e;
    }
  T s = 0;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  for (; i < n; ++i) {
    const T e = exp_any(x[i] - m);
    if constexpr (Store) y[i] = e;
    s += e;
  }
  return s;
}

template <typename T>
T logsumexp(const T* x, int64_t n) {
  const T m = row_max(x, n);
  return m + std::log(exp_sum<false>(x, m, static_cast<T*>(nullptr), n));
}

template <typename T>
void softmax(const T* x, T* y, int64_t n, bool log) {
  const T m = row_max(x, n);
  if (log) {
    const T lse = m + std::log(exp_sum<false>(x, m, static_cast<T*>(nullptr), n));
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] - lse;
  } else {
    const T inv = T(1) / exp_sum<true>(x, m, y, n);
    for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  }
}

// Column form: x[n, stride], softmax down each of the first `width` columns. The inner loop
// runs along a contiguous row of the slab, so it vectorises across columns.
template <typename T>
void softmax_cols(const T* x, T* y, int64_t n, int64_t stride, int64_t width, bool log, T* work) {
  T* mx = work;
  T* sm = work + width;
  for (int64_t j = 0; j < width; ++j) {
    mx[j] = x[j];
    sm[j] = 0;
  }
  for (int64_t i = 1; i < n; ++i) {
    const T* xr = x + i * stride;
    for (int64_t j = 0; j < width; ++j) mx[j] = max2(xr[j], mx[j]);
  }
  for (int64_t i = 0; i < n; ++i) {
    const T* xr = x + i * stride;
    T* yr = y + i * stride;
    if (log) {
      for (int64_t j = 0; j < width; ++j) sm[j] += exp_any(xr[j] - mx[j]);
    } else {
      for (int64_t j = 0; j < width; ++j) {
        const T e = exp_any(xr[j] - mx[j]);
        yr[j] = e;
        sm[j] += e;
      }
    }
  }
  if (log) {
    for (int64_t j = 0; j < width; ++j) mx[j] += std::log(sm[j]);  // mx becomes lse
    for (int64_t i = 0; i < n; ++i) {
      const T* xr = x + i * stride;
      T* yr = y + i * stride;
      for (int64_t j = 0; j < width; ++j) yr[j] = xr[j] - mx[j];
    }
  } else {
    for (int64_t j = 0; j < width; ++j) sm[j] = T(1) / sm[j];
    for (int64_t i = 0; i < n; ++i) {
      T* yr = y + i * stride;
      for (int64_t j = 0; j < width; ++j) yr[j] *= sm[j];
    }
  }
}

template <typename T>
void softmax_backward(const T* g, const T* y, T* gx, int64_t n, bool log) {
  if (log) {
    const T s = row_sum(g, n);
    for (int64_t i = 0; i < n; ++i) gx[i] = g[i] - exp_any(y[i]) * s;
  } else {
    const T s = row_dot(g, y, n);
    for (int64_t i = 0; i < n; ++i) gx[i] = y[i] * (g[i] - s);
  }
}

template <typename T>
void softmax_backward_cols(const T* g, const T* y, T* gx, int64_t n, int64_t stride, int64_t width,
                           bool log, T* work) {
  T* s = work;
  for (int64_t j = 0; j < width; ++j) s[j] = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* gr = g + i * stride;
    const T* yr = y + i * stride;
    if (log) {
      for (int64_t j = 0; j < width; ++j) s[j] += gr[j];
    } else {
      for (int64_t j = 0; j < width; ++j) s[j] += gr[j] * yr[j];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const T* gr = g + i * stride;
    const T* yr = y + i * stride;
    T* o = gx + i * stride;
    if (log) {
      for (int64_t j = 0; j < width; ++j) o[j] = gr[j] - exp_any(yr[j]) * s[j];
    } else {
      for (int64_t j = 0; j < width; ++j) o[j] = yr[j] * (gr[j] - s[j]);
    }
  }
}

template <typename T>
void scaled_exp(const T* x, T lse, T a, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a * exp_any(x[i] - lse);
}

template <typename T>
void moments(const T* x, int64_t n, T eps, bool rms, T* mean, T* rstd) {
  if (rms) {
    *mean = 0;
    *rstd = T(1) / std::sqrt(row_dot(x, x, n) / T(n) + eps);
    return;
  }
  const T mu = row_sum(x, n) / T(n);
  *mean = mu;
  *rstd = T(1) / std::sqrt(row_sq_dev(x, mu, n) / T(n) + eps);
}

template <typename T>
void norm_apply(const T* x, T mean, T rstd, const T* w, const T* b, T* y, int64_t n) {
  if (w && b) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
  } else if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * w[i];
  } else if (b) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd + b[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd;
  }
}

template <typename T>
void norm_backward(const T* g, const T* x, T mean, T rstd, const T* w, T* gx, int64_t n,
                   bool center, T* work) {
  const T* gw = g;
  if (w) {
    for (int64_t i = 0; i < n; ++i) work[i] = g[i] * w[i];
    gw = work;
  }
  const T inv_n = T(1) / T(n);
  const T s1 = center ? row_sum(gw, n) * inv_n : T(0);
  // mean(gw * xhat) = rstd * (dot(gw, x) - mean * sum(gw)) / n
  const T s2 = rstd * (row_dot(gw, x, n) - mean * row_sum(gw, n)) * inv_n;
  for (int64_t i = 0; i < n; ++i) gx[i] = rstd * (gw[i] - s1 - (x[i] - mean) * rstd * s2);
}

template <typename T>
void norm_param_grad(const T* g, const T* x, T mean, T rstd, T* dw, T* db, int64_t n) {
  if (dw)
    for (int64_t i = 0; i < n; ++i) dw[i] += g[i] * (x[i] - mean) * rstd;
  if (db)
    for (int64_t i = 0; i < n; ++i) db[i] += g[i];
}

template <typename T>
NnRowFns<T> make_fns() {
  NnRowFns<T> f;
  f.softmax = softmax<T>;
  f.softmax_cols = softmax_cols<T>;
  f.softmax_backward = softmax_backward<T>;
  f.softmax_backward_cols = softmax_backward_cols<T>;
  f.logsumexp = logsumexp<T>;
  f.scaled_exp = scaled_exp<T>;
  f.sum = row_sum<T>;
  f.dot = row_dot<T>;
  f.moments = moments<T>;
  f.norm_apply = norm_apply<T>;
  f.norm_backward = norm_backward<T>;
  f.norm_param_grad = norm_param_grad<T>;
  return f;
}

}  // namespace

void fill_nn_rows(NnRowTable& t) {
  t.f32 = make_fns<float>();
  t.f64 = make_fns<double>();
}

}  // namespace dc::cpu::DC_ISA_NS
