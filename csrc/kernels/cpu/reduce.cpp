#include "kernels/cpu/reduce.h"
#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

namespace dc::cpu {
namespace {

template <typename T>
double sum_block(const T* p, int64_t n) {
  // 16 independent lanes let the compiler vectorise without reassociation flags.
  T acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
  double total = 0;
  for (int j = 0; j < 16; ++j) total += acc[j];
  for (; i < n; ++i) total += p[i];
  return total;
}

template <typename T>
T sum_contiguous(const T* p, int64_t n) {
  if constexpr (std::is_integral_v<T>) {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += p[i];
    return s;
  } else {
    constexpr int64_t kBlock = 1024;
    double total = 0;
    for (int64_t b = 0; b < n; b += kBlock) total += sum_block(p + b, std::min(kBlock, n - b));
    return static_cast<T>(total);
  }
}

template <typename T>
void rows(const T* in, T* out, int64_t M, int64_t K) {
  if (M == 1) {
    // One long row: split it across threads, combine partials in a fixed order.
    const int nt = K >= 4 * kGrainSize ? get_num_threads() : 1;
    std::vector<double> partial(nt, 0.0);
    const int64_t chunk = (K + nt - 1) / nt;
    parallel_for(0, nt, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t lo = t * chunk, hi = std::min(K, lo + chunk);
        if (lo < hi) partial[t] = static_cast<double>(sum_contiguous(in + lo, hi - lo));
      }
    });
    double total = 0;
    for (double v : partial) total += v;
    out[0] = static_cast<T>(total);
    return;
  }
  parallel_for(0, M, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(K, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t m = b; m < e; ++m) out[m] = sum_contiguous(in + m * K, K);
               });
}

template <typename T>
void columns(const T* in, T* out, int64_t K, int64_t M) {
  parallel_for(0, M, std::max<int64_t>(64, kGrainSize / std::max<int64_t>(K, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t m = b; m < e; ++m) out[m] = T(0);
                 for (int64_t k = 0; k < K; ++k) {
                   const T* row = in + k * M;
                   for (int64_t m = b; m < e; ++m) out[m] += row[m];
                 }
               });
}

}  // namespace

void sum_rows(DType dtype, const void* in, void* out, int64_t M, int64_t K) {
  DC_DISPATCH_ALL(dtype, "sum", [&] {
    if constexpr (std::is_same_v<scalar_t, bool>) DC_THROW(TypeError, "[sum] bool accumulator");
    else rows(static_cast<const scalar_t*>(in), static_cast<scalar_t*>(out), M, K);
  });
}

void sum_columns(DType dtype, const void* in, void* out, int64_t K, int64_t M) {
  DC_DISPATCH_ALL(dtype, "sum", [&] {
    if constexpr (std::is_same_v<scalar_t, bool>) DC_THROW(TypeError, "[sum] bool accumulator");
    else columns(static_cast<const scalar_t*>(in), static_cast<scalar_t*>(out), K, M);
  });
}

}  // namespace dc::cpu
