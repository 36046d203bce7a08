// Scan kernels (cumprod, cummax, cummin, logcumsumexp) and multinomial's inverse-CDF search.
#include "kernels/cpu/scan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "core/parallel.h"

namespace dc::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;  // elements per task

// Scans every (o, i) column of x[O, K, I] in order; one task covers a run of columns.
template <typename T, typename Step>
void scan_columns(const T* in, T* out, int64_t* idx, const ReduceDims& d, Step step) {
  const int64_t O = d.outer, K = d.reduce, I = d.inner;
  if (O * K * I == 0) return;
  parallel_for(0, O * I, std::max<int64_t>(1, kGrain / K), [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const int64_t o = c / I, i = c % I;
      const T* p = in + o * K * I + i;
      T* q = out + o * K * I + i;
      int64_t* r = idx ? idx + o * K * I + i : nullptr;
      step(p, q, r, K, I);
    }
  });
}

template <typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <typename T>
void run_prod(const T* in, T* out, const ReduceDims& d) {
  scan_columns(in, out, nullptr, d, [](const T* p, T* q, int64_t*, int64_t K, int64_t I) {
    if constexpr (std::is_floating_point_v<T>) {
      double acc = 1;
      for (int64_t k = 0; k < K; ++k) q[k * I] = static_cast<T>(acc *= p[k * I]);
    } else {
      uint64_t acc = 1;  // unsigned: wraps around like PyTorch's int64 product
      for (int64_t k = 0; k < K; ++k)
        q[k * I] = static_cast<T>(static_cast<int64_t>(acc *= static_cast<uint64_t>(p[k * I])));
    }
  });
}

template <typename T, bool kMax>
void run_extreme(const T* in, T* out, int64_t* idx, const ReduceDims& d) {
  scan_columns(in, out, idx, d, [](const T* p, T* q, int64_t* r, int64_t K, int64_t I) {
    T best = p[0];
    int64_t at = 0;
    for (int64_t k = 0; k < K; ++k) {
      const T x = p[k * I];
      bool take;
      if constexpr (std::is_floating_point_v<T>) {
        take = std::isnan(x) || (!std::isnan(best) && (kMax ? x >= best : x <= best));
      } else {
        take = kMax ? x >= best : x <= best;
      }
      if (take) best = x, at = k;
      q[k * I] = best;
      r[k * I] = at;
    }
  });
}

template <typename T>
void run_logsumexp(const T* in, T* out, const ReduceDims& d) {
  scan_columns(in, out, nullptr, d, [](const T* p, T* q, int64_t*, int64_t K, int64_t I) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    double acc = -inf;
    for (int64_t k = 0; k < K; ++k) {
      const double x = p[k * I];
      const double hi = std::max(acc, x), lo = std::min(acc, x);
      if (std::isnan(x) || std::isnan(acc)) acc = std::numeric_limits<double>::quiet_NaN();
      else if (std::isinf(hi) || lo == -inf) acc = hi;  // -inf + y = y; inf absorbs
      else acc = hi + std::log1p(std::exp(lo - hi));
      q[k * I] = static_cast<T>(acc);
    }
  });
}

}  // namespace

void cum_scan(ScanOp op, DType dtype, const void* in, void* out, int64_t* indices,
              ReduceDims d) {
  static const char* names[] = {"cumprod", "cummax", "cummin", "logcumsumexp"};
  const char* name = names[static_cast<int>(op)];
  DC_DISPATCH_ALL(dtype, name, [&] {
    auto* x = static_cast<const scalar_t*>(in);
    auto* y = static_cast<scalar_t*>(out);
    switch (op) {
      case ScanOp::Prod:
        if constexpr (std::is_same_v<scalar_t, bool>) {
          DC_THROW(TypeError, "[cumprod] bool is not a valid accumulator dtype");
        } else {
          run_prod(x, y, d);
        }
        break;
      case ScanOp::Max: run_extreme<scalar_t, true>(x, y, indices, d); break;
      case ScanOp::Min: run_extreme<scalar_t, false>(x, y, indices, d); break;
      case ScanOp::LogSumExp:
        if constexpr (!std::is_floating_point_v<scalar_t>) {
          DC_THROW(TypeError, "[logcumsumexp] expects a floating point input, got ",
                   dtype_name(dtype));
        } else {
          run_logsumexp(x, y, d);
        }
        break;
    }
  });
}

void categorical_search(const Tensor& out, const Tensor& cdf, const Tensor& u) {
  // out[R, S] <- first i with cdf[r, i] > u[r, s] * total[r]
  const int64_t R = cdf.sizes()[0], K = cdf.sizes()[1], S = u.sizes()[1];
  const double* c = cdf.data<double>();
  const double* v = u.data<double>();
  int64_t* o = out.data<int64_t>();
  parallel_for(0, R * S, 4096, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const double* row = c + (t / S) * K;
      const double target = v[t] * row[K - 1];
      const int64_t i = std::upper_bound(row, row + K, target) - row;
      o[t] = std::min(i, K - 1);  // u < 1 keeps i < K; the min guards rounding at the top
    }
  });
}

}  // namespace dc::cpu
