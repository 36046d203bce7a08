#include "kernels/cpu/sort.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "core/parallel.h"

namespace dc::cpu {

void argsort_rows(const Tensor& idx, const Tensor& x, bool descending) {
  if (x.numel() == 0) return;
  const int64_t n = x.sizes().back(), rows = x.numel() / n;
  DC_DISPATCH_ALL(x.dtype(), "argsort", [&] {
    const scalar_t* px = x.data<scalar_t>();
    int64_t* pi = idx.data<int64_t>();
    parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / n), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const scalar_t* v = px + r * n;
        int64_t* out = pi + r * n;
        std::iota(out, out + n, int64_t(0));
        auto is_nan = [](scalar_t a) {
          if constexpr (std::is_floating_point_v<scalar_t>) return std::isnan(a);
          else return false;
        };
        if (descending)
          std::stable_sort(out, out + n, [&](int64_t i, int64_t j) {
            return !is_nan(v[j]) && (is_nan(v[i]) || v[i] > v[j]);
          });
        else
          std::stable_sort(out, out + n, [&](int64_t i, int64_t j) {
            return !is_nan(v[i]) && (is_nan(v[j]) || v[i] < v[j]);
          });
      }
    });
  });
}

}  // namespace dc::cpu
