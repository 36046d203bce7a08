// Batch normalisation forward / backward (see batchnorm.h). Channels are independent: threads
// split the channels, and each channel is reduced in a fixed order (n, then s, each row into
// kLanes partial sums combined in lane order), so the result does not depend on the thread
// count. Statistics are two-pass (mean, then squared deviations) in double, which avoids the
// cancellation of E[x^2] - E[x]^2 for data with a large mean. The partial sums are independent
// chains the compiler vectorises; one running sum would wait on each add's latency.
// bfloat16 and float16 data (with float32 statistics and parameters) are read and written in
// chunks converted on the stack by the vectorised cast kernels, and computed in float32: the
// same sums in the same order as a float32 tensor of the same values, without widening the
// whole tensor through memory.
#include "kernels/cpu/norm_batch.h"

#include <cmath>
#include <type_traits>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/elementwise.h"

namespace dc::cpu {
namespace {

constexpr int kLanes = 8;
// Elements of 16-bit data converted at a time (a multiple of kLanes, so chunking keeps the
// lanes' order).
constexpr int64_t kChunk = 1024;

// Runs of a channel's row of S elements as T (the compute type): f(i0, p, len) with p the
// float view of elements [i0, i0 + len). D == T reads in place, in one run; 16-bit D converts
// chunk by chunk into buf.
template <typename D, typename T, typename F>
inline void for_runs(const D* row, int64_t S, T* buf, F&& f) {
  if constexpr (std::is_same_v<D, T>) {
    f(int64_t(0), row, S);
  } else {
    for (int64_t i0 = 0; i0 < S; i0 += kChunk) {
      const int64_t len = std::min(kChunk, S - i0);
      cast_strided(DType::Float32, buf, sizeof(T), dtype_of<D>::value, row + i0, sizeof(D), len);
      f(i0, static_cast<const T*>(buf), len);
    }
  }
}

// Writes len computed values (compute(T* out, i0, len)) to row[i0, i0 + len): in place for
// D == T, through buf and the rounding cast kernel for 16-bit D.
template <typename D, typename T, typename F>
inline void write_runs(D* row, int64_t S, T* buf, F&& compute) {
  if constexpr (std::is_same_v<D, T>) {
    compute(row, int64_t(0), S);
  } else {
    for (int64_t i0 = 0; i0 < S; i0 += kChunk) {
      const int64_t len = std::min(kChunk, S - i0);
      compute(buf, i0, len);
      cast_strided(dtype_of<D>::value, row + i0, sizeof(D), DType::Float32, buf, sizeof(T), len);
    }
  }
}

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

template <typename D, typename T>
void forward_impl(const BatchNormShape& s, const D* x, const T* w, const T* b, double eps,
                  bool training, T* mean, T* rstd, T* varb, D* y) {
  const int64_t CS = s.C * s.S;
  const double count = static_cast<double>(s.N * s.S);
  parallel_for(0, s.C, channel_grain(s), [&](int64_t c0, int64_t c1) {
    T in[kChunk], out[kChunk];
    for (int64_t c = c0; c < c1; ++c) {
      double m, r;
      if (training) {
        double acc[kLanes] = {};
        for (int64_t n = 0; n < s.N; ++n)
          for_runs(x + n * CS + c * s.S, s.S, in, [&](int64_t, const T* p, int64_t len) {
            lane_sums(len, acc, [p](int64_t i) { return double(p[i]); });
          });
        m = count > 0 ? lanes_total(acc) / count : 0.0;
        double sq[kLanes] = {};
        for (int64_t n = 0; n < s.N; ++n)
          for_runs(x + n * CS + c * s.S, s.S, in, [&](int64_t, const T* p, int64_t len) {
            lane_sums(len, sq, [p, m](int64_t i) {
              const double d = double(p[i]) - m;
              return d * d;
            });
          });
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
        const D* xr = x + n * CS + c * s.S;
        write_runs(y + n * CS + c * s.S, s.S, out, [&](T* q, int64_t i0, int64_t len) {
          for_runs(xr + i0, len, in, [&](int64_t j0, const T* p, int64_t l) {
            for (int64_t i = 0; i < l; ++i) q[j0 + i] = p[i] * scale + shift;
          });
        });
      }
    }
  });
}

template <typename D, typename T>
void backward_impl(const BatchNormShape& s, const D* dy, const D* x, const T* mean,
                   const T* rstd, const T* w, bool training, D* dx, T* dw, T* db) {
  const int64_t CS = s.C * s.S;
  const double count = static_cast<double>(s.N * s.S);
  parallel_for(0, s.C, channel_grain(s), [&](int64_t c0, int64_t c1) {
    T gin[kChunk], xin[kChunk], out[kChunk];
    for (int64_t c = c0; c < c1; ++c) {
      const double m = mean[c], r = rstd[c];
      // sum dy and sum dy * xhat, xhat = (x - m) * r
      double acc_dy[kLanes] = {}, acc_dyx[kLanes] = {};
      for (int64_t n = 0; n < s.N; ++n) {
        const D* xr = x + n * CS + c * s.S;
        for_runs(dy + n * CS + c * s.S, s.S, gin, [&](int64_t i0, const T* g, int64_t len) {
          for_runs(xr + i0, len, xin, [&](int64_t, const T* p, int64_t) {
            lane_sums(len, acc_dy, [g](int64_t i) { return double(g[i]); });
            lane_sums(len, acc_dyx,
                      [g, p, m](int64_t i) { return double(g[i]) * (double(p[i]) - m); });
          });
        });
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
        const D* gr = dy + n * CS + c * s.S;
        const D* xr = x + n * CS + c * s.S;
        write_runs(dx + n * CS + c * s.S, s.S, out, [&](T* q, int64_t i0, int64_t len) {
          for_runs(gr + i0, len, gin, [&](int64_t, const T* g, int64_t) {
            for_runs(xr + i0, len, xin, [&](int64_t, const T* p, int64_t) {
              for (int64_t i = 0; i < len; ++i) q[i] = g[i] * tw + p[i] * tk + tc;
            });
          });
        });
      }
    }
  });
}

}  // namespace

namespace {
// f(D*, T*) with null pointers of the data type D and the statistics / parameter type T.
template <typename F>
void with_types(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(static_cast<float*>(nullptr), static_cast<float*>(nullptr));
    case DType::Float64: return f(static_cast<double*>(nullptr), static_cast<double*>(nullptr));
    case DType::BFloat16: return f(static_cast<BFloat16*>(nullptr), static_cast<float*>(nullptr));
    case DType::Float16: return f(static_cast<Half*>(nullptr), static_cast<float*>(nullptr));
    default:
      DC_THROW(TypeError, "[batch_norm] expected a floating-point input, got ", dtype_name(dtype));
  }
}
}  // namespace

void batch_norm_forward(const BatchNormShape& s, DType dtype, const void* x, const void* weight,
                        const void* bias, double eps, bool training, void* mean, void* rstd,
                        void* var_biased, void* y) {
  with_types(dtype, [&](auto* d, auto* t) {
    using D = std::remove_pointer_t<decltype(d)>;
    using T = std::remove_pointer_t<decltype(t)>;
    forward_impl(s, static_cast<const D*>(x), static_cast<const T*>(weight),
                 static_cast<const T*>(bias), eps, training, static_cast<T*>(mean),
                 static_cast<T*>(rstd), static_cast<T*>(var_biased), static_cast<D*>(y));
  });
}

void batch_norm_backward(const BatchNormShape& s, DType dtype, const void* dy, const void* x,
                         const void* mean, const void* rstd, const void* weight, bool training,
                         void* dx, void* dweight, void* dbias) {
  with_types(dtype, [&](auto* d, auto* t) {
    using D = std::remove_pointer_t<decltype(d)>;
    using T = std::remove_pointer_t<decltype(t)>;
    backward_impl(s, static_cast<const D*>(dy), static_cast<const D*>(x),
                  static_cast<const T*>(mean), static_cast<const T*>(rstd),
                  static_cast<const T*>(weight), training, static_cast<D*>(dx),
                  static_cast<T*>(dweight), static_cast<T*>(dbias));
  });
}

}  // namespace dc::cpu
