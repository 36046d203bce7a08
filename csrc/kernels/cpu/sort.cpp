#include "kernels/cpu/sort.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "core/parallel.h"

namespace dc::cpu {

// Note [topk by selection]
// topk(k) of a row of n needs the k extreme values, not the order of all n. For k up to n / 8
// one pass keeps the best k seen so far in a heap whose top is the worst of them: most values
// lose to that top on one comparison (O(n) with a small constant, in memory order). For larger
// k, nth_element partitions the row's indices around the k-th in O(n). Then only the k chosen
// are sorted. Comparisons rank (value, index) pairs, so ties go by index and the result is the
// one argsort's stable order would give. NaN ranks as the largest value, as in torch.
namespace {
template <typename T>
struct Ranked {
  T v;
  int64_t i;
};
template <typename T>
inline bool is_nan_value(T a) {
  if constexpr (is_float_v<T>) return a != a;
  else return false;
}
// Whether a ranks before b: the more extreme value, then the smaller index.
template <typename T>
inline bool ranks_before(const Ranked<T>& a, const Ranked<T>& b, bool largest) {
  const bool na = is_nan_value(a.v), nb = is_nan_value(b.v);
  if (na || nb) return na != nb ? (largest ? na : nb) : a.i < b.i;
  if (a.v != b.v) return largest ? a.v > b.v : a.v < b.v;
  return a.i < b.i;
}

template <typename T>
void select_row(const T* v, int64_t n, int64_t k, bool largest, std::vector<Ranked<T>>& best,
                int64_t* out) {
  auto before = [largest](const Ranked<T>& a, const Ranked<T>& b) {
    return ranks_before(a, b, largest);
  };
  best.clear();
  if (k * 8 <= n) {
    for (int64_t j = 0; j < k; ++j) best.push_back({v[j], j});
    std::make_heap(best.begin(), best.end(), before);  // front: the worst kept
    for (int64_t j = k; j < n; ++j) {
      const T x = v[j], top = best.front().v;
      // x beats the worst kept (a later index loses ties).
      const bool wins = largest ? (x > top || (is_nan_value(x) && !is_nan_value(top)))
                                : (x < top || (is_nan_value(top) && !is_nan_value(x)));
      if (!wins) continue;
      std::pop_heap(best.begin(), best.end(), before);
      best.back() = {x, j};
      std::push_heap(best.begin(), best.end(), before);
    }
  } else {
    for (int64_t j = 0; j < n; ++j) best.push_back({v[j], j});
    if (k < n) std::nth_element(best.begin(), best.begin() + (k - 1), best.end(), before);
    best.resize(static_cast<size_t>(k));
  }
  std::sort(best.begin(), best.end(), before);
  for (int64_t j = 0; j < k; ++j) out[j] = best[j].i;
}
}  // namespace

// A full sort is the selection of all n: the row's (value, index) pairs sorted in place, which
// reads each value once instead of through an index at every comparison, and gives the order
// a stable sort would (ties by index).
void argsort_rows(const Tensor& idx, const Tensor& x, bool descending) {
  if (x.numel() == 0) return;
  select_rows(idx, x, x.sizes().back(), descending);
}

void select_rows(const Tensor& idx, const Tensor& x, int64_t k, bool largest) {
  if (x.numel() == 0 || k == 0) return;
  const int64_t n = x.sizes().back(), rows = x.numel() / n;
  DC_DISPATCH_ALL_AND_HALF(x.dtype(), "topk", [&] {
    const scalar_t* px = x.data<scalar_t>();
    int64_t* pi = idx.data<int64_t>();
    parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / n), [&](int64_t b, int64_t e) {
      std::vector<Ranked<scalar_t>> best;
      best.reserve(static_cast<size_t>(n));
      for (int64_t r = b; r < e; ++r) select_row(px + r * n, n, k, largest, best, pi + r * k);
    });
  });
}

}  // namespace dc::cpu
