// Softmax, log-softmax, cross-entropy and layer/RMS-norm kernels against naive loops, for every
// ISA this CPU runs, at awkward sizes (1, primes, not multiples of the vector width) and along
// every dim (row fast path and column-block path).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/tensor.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/loss.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/softmax.h"

namespace dc::cpu {
namespace {

std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
    if (static_cast<int>(isa) <= static_cast<int>(detected_isa())) out.push_back(isa);
  return out;
}

struct IsaGuard {
  explicit IsaGuard(Isa isa) : prev(active_isa()) { set_active_isa(isa); }
  ~IsaGuard() { set_active_isa(prev); }
  Isa prev;
};

template <typename T>
Tensor random_tensor(const Shape& shape, uint32_t seed, double scale = 3.0) {
  Tensor t = Tensor::empty(shape, dtype_of<T>::value);
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(nd(gen));
  return t;
}

// Naive reference in double along `dim` of a contiguous tensor.
template <typename T>
std::vector<double> naive_softmax(const Tensor& x, int64_t dim, bool log) {
  int64_t outer = 1, n = x.sizes()[dim], inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= x.sizes()[d];
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.sizes()[d];
  std::vector<double> y(x.numel());
  const T* p = x.data<T>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      auto at = [&](int64_t i) { return (o * n + i) * inner + j; };
      double m = -INFINITY, s = 0;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, double(p[at(i)]));
      for (int64_t i = 0; i < n; ++i) s += std::exp(double(p[at(i)]) - m);
      for (int64_t i = 0; i < n; ++i)
        y[at(i)] = log ? double(p[at(i)]) - m - std::log(s) : std::exp(double(p[at(i)]) - m) / s;
    }
  return y;
}

template <typename T>
void check_softmax(const Shape& shape, double tol, double scale = 3.0) {
  Tensor x = random_tensor<T>(shape, 7, scale);
  for (Isa isa : runnable_isas()) {
    IsaGuard guard(isa);
    for (int64_t dim = 0; dim < x.dim(); ++dim)
      for (bool log : {false, true}) {
        Tensor y = Tensor::empty(shape, x.dtype());
        softmax_into(y, x, dim, log);
        const auto ref = naive_softmax<T>(x, dim, log);
        for (int64_t i = 0; i < x.numel(); ++i)
          // log_softmax is x - lse: its rounding scales with |x| too.
          ASSERT_NEAR(y.data<T>()[i], ref[i],
                      tol * (1 + std::abs(ref[i]) + (log ? std::abs(double(x.data<T>()[i])) : 0)))
              << isa_name(isa) << " dim " << dim << " log " << log << " shape "
              << shape_str(shape) << " at " << i;
        // Backward: gx = y * (g - sum(g*y))  /  g - exp(y) * sum(g), naive in double.
        Tensor g = random_tensor<T>(shape, 11, 1.0);
        Tensor gx = Tensor::empty(shape, x.dtype());
        softmax_backward_into(gx, g, y, dim, log);
        int64_t outer = 1, n = shape[dim], inner = 1;
        for (int64_t d = 0; d < dim; ++d) outer *= shape[d];
        for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= shape[d];
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t j = 0; j < inner; ++j) {
            auto at = [&](int64_t i) { return (o * n + i) * inner + j; };
            double s = 0;
            for (int64_t i = 0; i < n; ++i)
              s += log ? double(g.data<T>()[at(i)])
                       : double(g.data<T>()[at(i)]) * double(y.data<T>()[at(i)]);
            for (int64_t i = 0; i < n; ++i) {
              const double gi = g.data<T>()[at(i)], yi = y.data<T>()[at(i)];
              const double want = log ? gi - std::exp(yi) * s : yi * (gi - s);
              ASSERT_NEAR(gx.data<T>()[at(i)], want, tol * 10 * (1 + std::abs(want)))
                  << isa_name(isa) << " backward dim " << dim << " log " << log;
            }
          }
      }
  }
}

TEST(Softmax, AwkwardSizesFloat) {
  for (const Shape& s : {Shape{1}, Shape{17}, Shape{3, 1}, Shape{5, 31}, Shape{2, 67, 3},
                         Shape{3, 13, 129}, Shape{1, 1000}})
    check_softmax<float>(s, 2e-6);
}

// Values up to about 400: exp(x - m) overflows to inf unless m is the row's true maximum, so a
// maximum that misses a lane or the tail shows (a smaller shift cancels out otherwise).
TEST(Softmax, WideRangeNeedsTheTrueMaximum) {
  for (const Shape& s : {Shape{31}, Shape{4, 33}, Shape{3, 129}, Shape{2, 1000}})
    check_softmax<float>(s, 2e-6, 100.0);
}

TEST(Softmax, AwkwardSizesDouble) {
  for (const Shape& s : {Shape{1}, Shape{16}, Shape{7, 33}, Shape{2, 5, 65}, Shape{130, 3}})
    check_softmax<double>(s, 1e-13);
}

TEST(CrossEntropy, ForwardBackwardMatchNaive) {
  const int64_t M = 37, C = 19, ignore = -100;
  Tensor x = random_tensor<double>({M, C}, 3);
  Tensor target = Tensor::empty({M}, DType::Int64);
  Tensor w = random_tensor<double>({C}, 5, 0.3);
  for (int64_t c = 0; c < C; ++c) w.data<double>()[c] += 1.0;
  for (int64_t r = 0; r < M; ++r) target.data<int64_t>()[r] = r % 5 == 0 ? ignore : (r * 7) % C;
  target.data<int64_t>()[3] = C;  // out of range: reported, never read
  EXPECT_EQ(first_bad_target(target, C, ignore), 3);
  target.data<int64_t>()[3] = 0;
  EXPECT_EQ(first_bad_target(target, C, ignore), -1);
  const double eps = 0.15;
  for (Isa isa : runnable_isas()) {
    IsaGuard guard(isa);
    Tensor loss = Tensor::empty({M}, DType::Float64), lse = Tensor::empty({M}, DType::Float64);
    const ClassTargets ct{target, w, ignore, eps};
    const double wsum = class_loss_forward(loss, lse, x, ct, true);
    Tensor scale = Tensor::empty({M}, DType::Float64);
    for (int64_t r = 0; r < M; ++r) scale.data<double>()[r] = 0.5 + r * 0.01;
    Tensor gx = Tensor::empty({M, C}, DType::Float64);
    cross_entropy_backward_into(gx, x, lse, ct, scale);
    double want_wsum = 0, wtot = 0;
    for (int64_t c = 0; c < C; ++c) wtot += w.data<double>()[c];
    for (int64_t r = 0; r < M; ++r) {
      const double* xr = x.data<double>() + r * C;
      const int64_t t = target.data<int64_t>()[r];
      double m = -INFINITY, s = 0;
      for (int64_t c = 0; c < C; ++c) m = std::max(m, xr[c]);
      for (int64_t c = 0; c < C; ++c) s += std::exp(xr[c] - m);
      const double l = m + std::log(s);
      double want = 0;
      if (t != ignore) {
        const double wt = w.data<double>()[t];
        want_wsum += wt;
        double smooth = 0;
        for (int64_t c = 0; c < C; ++c) smooth += w.data<double>()[c] * (l - xr[c]);
        want = (1 - eps) * wt * (l - xr[t]) + eps / C * smooth;
      }
      EXPECT_NEAR(loss.data<double>()[r], want, 1e-12) << isa_name(isa) << " row " << r;
      for (int64_t c = 0; c < C; ++c) {
        double g = 0;
        if (t != ignore) {
          const double wt = w.data<double>()[t], p = std::exp(xr[c] - l);
          const double A = (1 - eps) * wt + eps / C * wtot;
          const double B = (c == t ? (1 - eps) * wt : 0.0) + eps / C * w.data<double>()[c];
          g = scale.data<double>()[r] * (A * p - B);
        }
        EXPECT_NEAR(gx.data<double>()[r * C + c], g, 1e-12) << isa_name(isa) << " " << r << "," << c;
      }
    }
    EXPECT_NEAR(wsum, want_wsum, 1e-12);
  }
}

TEST(Norm, LayerAndRmsMatchNaive) {
  for (int64_t N : {1, 7, 33, 130}) {
    const int64_t M = 41;
    Tensor x = random_tensor<float>({M, N}, 9);
    Tensor w = random_tensor<float>({N}, 10, 1.0), b = random_tensor<float>({N}, 12, 1.0);
    Tensor g = random_tensor<float>({M, N}, 13, 1.0);
    for (Isa isa : runnable_isas()) {
      IsaGuard guard(isa);
      for (bool rms : {false, true}) {
        Tensor y = Tensor::empty({M, N}, DType::Float32);
        Tensor mean = Tensor::empty({M}, DType::Float32), rstd = Tensor::empty({M}, DType::Float32);
        norm_forward_into(y, mean, rstd, x, w, rms ? Tensor() : b, N, 1e-5, rms);
        Tensor gx = Tensor::empty({M, N}, DType::Float32), dw = Tensor::empty({N}, DType::Float32);
        norm_backward_into(gx, dw, Tensor(), g, x, mean, rstd, w, N, rms);
        std::vector<double> dw_ref(N, 0.0);
        for (int64_t r = 0; r < M; ++r) {
          const float* xr = x.data<float>() + r * N;
          const float* gr = g.data<float>() + r * N;
          double mu = 0, var = 0;
          if (!rms) {
            for (int64_t c = 0; c < N; ++c) mu += xr[c];
            mu /= N;
          }
          for (int64_t c = 0; c < N; ++c) var += (xr[c] - mu) * (xr[c] - mu);
          const double rs = 1.0 / std::sqrt(var / N + 1e-5);
          double s1 = 0, s2 = 0;
          for (int64_t c = 0; c < N; ++c) {
            const double xh = (xr[c] - mu) * rs, gw = double(gr[c]) * w.data<float>()[c];
            const double want = xh * w.data<float>()[c] + (rms ? 0.0 : b.data<float>()[c]);
            ASSERT_NEAR(y.data<float>()[r * N + c], want, 1e-4 * (1 + std::abs(want)))
                << isa_name(isa) << " rms " << rms << " N " << N;
            s1 += gw;
            s2 += gw * xh;
            dw_ref[c] += gr[c] * xh;
          }
          for (int64_t c = 0; c < N; ++c) {
            const double xh = (xr[c] - mu) * rs, gw = double(gr[c]) * w.data<float>()[c];
            const double want = rs * (gw - (rms ? 0.0 : s1 / N) - xh * s2 / N);
            ASSERT_NEAR(gx.data<float>()[r * N + c], want, 1e-3 * (1 + std::abs(want)))
                << isa_name(isa) << " rms " << rms << " N " << N;
          }
        }
        for (int64_t c = 0; c < N; ++c)
          ASSERT_NEAR(dw.data<float>()[c], dw_ref[c], 1e-3 * (1 + std::abs(dw_ref[c])));
      }
    }
  }
}

}  // namespace
}  // namespace dc::cpu
