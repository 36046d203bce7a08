// Batch normalisation forward / backward (see batchnorm.h). Channels are independent: threads
// split the channels, and each channel is reduced in a fixed order (n, then s, each row into
// kLanes partial sums combined in lane order), so the result does not depend on the thread
// count. Statistics are two-pass (mean, then squared deviations) in double, which avoids the
// cancellation of E[x^2] - E[x]^2 for data with a large mean. The partial sums are independent
// chains the compiler vectorises; one running sum would wait on each add's latency.
#include "kernels/cpu/norm_batch.h"

#include <cmath>

#include "core/error.h"
#include "core/parallel.h"

namespace dc::cpu {
namespace {

constexpr int kLanes = 8;

// acc[j] += sum of f(i) over i = j (mod kLanes), i < n, in order; f returns double.
template <typename F>
inline void lane_sums(int64_t n, double* acc, F&& f) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += f(i + j);
  for (int j = 0; i < n; ++i, ++j) acc[j] += f(i);
}

double lanes_total(const double* acc) {
  double t = 0;
  for (int j = 0; j < kLanes; ++j) t += acc[j];
  return t;
}

int64_t channel_grain(const BatchNormShape& s) {
  return std::max<int64_t>(1, kGrainSize / std::max<int64_t>(1, s.N * s.S));
}

template <typename T>
void forward_impl(const BatchNormShape& s, const T* x, const T* w, const T* b, double eps,
                  bool training, T* mean, T* rstd, T* varb, T* y) {
  const int64_t CS = s.C * s.S;
  const double count = static_cast<double>(s.N * s.S);
  parallel_for(0, s.C, channel_grain(s), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double m, r;
      if (training) {
        double acc[kLanes] = {};
        for (int64_t n = 0; n < s.N; ++n) {
          const T* p = x + n * CS + c * s.S;
          lane_sums(s.S, acc, [p](int64_t i) { return double(p[i]); });
        }
        m = count > 0 ? lanes_total(acc) / count : 0.0;
        double sq[kLanes] = {};
        for (int64_t n = 0; n < s.N; ++n) {
          const T* p = x + n * CS + c * s.S;
          lane_sums(s.S, sq, [p, m](int64_t i) {
            const double d = double(p[i]) - m;
            return d * d;
          });
        }
        const double v = count > 0 ? lanes_total(sq) / count : 0.0;
        r = 1.0 / std::sqrt(v + eps);
        mean[c] = T(m), rstd[c] = T(r), varb[c] = T(v);
      } else {
        m = mean[c], r = rstd[c];
      }
      // y = x * scale + shift
      const T scale = T(r * (w ? double(w[c]) : 1.0));
      const T shift = T((b ? double(b[c]) : 0.0) - m * r * (w ? double(w[c]) : 1.0));
      for (int64_t n = 0; n < s.N; ++n) {
        const T* p = x + n * CS + c * s.S;
        T* q = y + n * CS + c * s.S;
        for (int64_t i = 0; i < s.S; ++i) q[i] = p[i] * scale + shift;
      }
    }
  });
}

template <typename T>
void backward_impl(const BatchNormShape& s, const T* dy, const T* x, const T* mean,
                   const T* rstd, const T* w, bool training, T* dx, T* dw, T* db) {
  const int64_t CS = s.C * s.S;
  const double count = static_cast<double>(s.N * s.S);
  parallel_for(0, s.C, channel_grain(s), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double m = mean[c], r = rstd[c];
      // sum dy and sum dy * xhat, xhat = (x - m) * r
      double acc_dy[kLanes] = {}, acc_dyx[kLanes] = {};
      for (int64_t n = 0; n < s.N; ++n) {
        const T* g = dy + n * CS + c * s.S;
        const T* p = x + n * CS + c * s.S;
        lane_sums(s.S, acc_dy, [g](int64_t i) { return double(g[i]); });
        lane_sums(s.S, acc_dyx, [g, p, m](int64_t i) { return double(g[i]) * (double(p[i]) - m); });
      }
      const double sdy = lanes_total(acc_dy), sdyx = lanes_total(acc_dyx) * r;
      if (dw) dw[c] = T(sdyx);
      if (db) db[c] = T(sdy);
      if (!dx) continue;
      const double wr = r * (w ? double(w[c]) : 1.0);
      // training: dx = w r (dy - mean(dy) - xhat mean(dy xhat)); eval: dx = w r dy
      const double a = training && count > 0 ? sdy / count : 0.0;
      const double k = training && count > 0 ? sdyx / count * r : 0.0;  // per unit of (x - m)
      const T tw = T(wr), tc = T(-wr * a + wr * k * m), tk = T(-wr * k);
      for (int64_t n = 0; n < s.N; ++n) {
        const T* g = dy + n * CS + c * s.S;
        const T* p = x + n * CS + c * s.S;
        T* q = dx + n * CS + c * s.S;
        for (int64_t i = 0; i < s.S; ++i) q[i] = g[i] * tw + p[i] * tk + tc;
      }
    }
  });
}

}  // namespace

void batch_norm_forward(const BatchNormShape& s, DType dtype, const void* x, const void* weight,
                        const void* bias, double eps, bool training, void* mean, void* rstd,
                        void* var_biased, void* y) {
  if (dtype == DType::Float32)
    forward_impl(s, static_cast<const float*>(x), static_cast<const float*>(weight),
                 static_cast<const float*>(bias), eps, training, static_cast<float*>(mean),
                 static_cast<float*>(rstd), static_cast<float*>(var_biased),
                 static_cast<float*>(y));
  else if (dtype == DType::Float64)
    forward_impl(s, static_cast<const double*>(x), static_cast<const double*>(weight),
                 static_cast<const double*>(bias), eps, training, static_cast<double*>(mean),
                 static_cast<double*>(rstd), static_cast<double*>(var_biased),
                 static_cast<double*>(y));
  else
    DC_THROW(TypeError, "[batch_norm] expected float32 or float64, got ", dtype_name(dtype));
}

void batch_norm_backward(const BatchNormShape& s, DType dtype, const void* dy, const void* x,
                         const void* mean, const void* rstd, const void* weight, bool training,
                         void* dx, void* dweight, void* dbias) {
  if (dtype == DType::Float32)
    backward_impl(s, static_cast<const float*>(dy), static_cast<const float*>(x),
                  static_cast<const float*>(mean), static_cast<const float*>(rstd),
                  static_cast<const float*>(weight), training, static_cast<float*>(dx),
                  static_cast<float*>(dweight), static_cast<float*>(dbias));
  else if (dtype == DType::Float64)
    backward_impl(s, static_cast<const double*>(dy), static_cast<const double*>(x),
                  static_cast<const double*>(mean), static_cast<const double*>(rstd),
                  static_cast<const double*>(weight), training, static_cast<double*>(dx),
                  static_cast<double*>(dweight), static_cast<double*>(dbias));
  else
    DC_THROW(TypeError, "[batch_norm] expected float32 or float64, got ", dtype_name(dtype));
}

}  // namespace dc::cpu
