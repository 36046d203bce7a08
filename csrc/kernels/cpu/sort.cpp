#include "kernels/cpu/sort.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "core/parallel.h"

namespace dc::cpu {

// Note [topk by selection]
// topk(k) of a row of n needs the k extreme values, not the order of all n. For a small k (at
// most 64 and n / 8) one pass keeps the best k seen so far in order: most values lose to the
// worst kept on one comparison (O(n) with a small constant, in memory order), and the few that
// win (about k ln(n / k) of random data) are inserted in place. For larger k, nth_element
// partitions the row's (value, index) pairs around the k-th in O(n). Then only the k chosen
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
  if (k <= 64 && k * 8 <= n) {
    // best: the k best seen so far, best first; the back is the one a newcomer must beat.
    for (int64_t j = 0; j < k; ++j) best.push_back({v[j], j});
    std::sort(best.begin(), best.end(), before);
    T top = best.back().v;
    bool nan_top = is_nan_value(top);
    for (int64_t j = k; j < n; ++j) {
      const T x = v[j];
      // x beats the worst kept (a later index loses ties); NaN ranks above every number.
      if (largest ? !(x > top) : !(x < top)) {
        const bool x_nan = is_nan_value(x);
        if (largest ? !(x_nan && !nan_top) : !(nan_top && !x_nan)) continue;
      }
      // Insert in order: few of the n get here (about k ln(n / k) for random data).
      const Ranked<T> r{x, j};
      int64_t at = k - 1;
      while (at > 0 && before(r, best[at - 1])) {
        best[at] = best[at - 1];
        --at;
      }
      best[at] = r;
      top = best.back().v;
      nan_top = is_nan_value(top);
    }
    for (int64_t j = 0; j < k; ++j) out[j] = best[j].i;
    return;
  } else {
    for (int64_t j = 0; j < n; ++j) best.push_back({v[j], j});
    if (k < n) std::nth_element(best.begin(), best.begin() + (k - 1), best.end(), before);
    best.resize(static_cast<size_t>(k));
  }
  std::sort(best.begin(), best.end(), before);
  for (int64_t j = 0; j < k; ++j) out[j] = best[j].i;
}
}  // namespace

// Note [Sorting by radix]
// A full sort of a row of 32-bit-or-narrower values (float32, the 16-bit floats, int32, bool)
// maps each value to an unsigned key whose integer order is the value order: a float's bits
// with the sign bit flipped (all bits for a negative), -0 taken as +0 and every NaN as the
// largest key; an int32's with the sign bit flipped. For a descending sort the key is
// complemented. An LSD radix sort of the keys, 8 bits a pass, carries the indices along: four
// counting passes of the row, each stable, so equal values keep their index order (what a
// stable sort gives), and a pass whose digit is the same for the whole row is skipped. That is
// O(n) per row against a comparison sort's O(n log n) with a branch per comparison. Other
// dtypes (float64, int64) sort (value, index) pairs: the selection of all n.
namespace {
template <typename T>
inline uint32_t sort_key(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? 1u : 0u;
  } else if constexpr (std::is_same_v<T, int32_t>) {
    return static_cast<uint32_t>(v) ^ 0x80000000u;
  } else {
    const float f = static_cast<float>(v);
    if (f != f) return 0xffffffffu;
    uint32_t u;
    const float z = f + 0.0f;  // -0 -> +0
    std::memcpy(&u, &z, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  }
}

template <typename T>
void radix_sort_row(const T* v, int64_t n, bool descending, std::vector<uint32_t>& keys,
                    std::vector<uint32_t>& tmp_keys, std::vector<uint32_t>& order,
                    std::vector<uint32_t>& tmp_order, int64_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t k = sort_key(v[i]);
    keys[i] = descending ? ~k : k;
    order[i] = static_cast<uint32_t>(i);
  }
  uint32_t* kin = keys.data();
  uint32_t* kout = tmp_keys.data();
  uint32_t* oin = order.data();
  uint32_t* oout = tmp_order.data();
  for (int shift = 0; shift < 32; shift += 8) {
    int64_t count[257] = {0};
    for (int64_t i = 0; i < n; ++i) ++count[((kin[i] >> shift) & 0xffu) + 1];
    if (count[((kin[0] >> shift) & 0xffu) + 1] == n) continue;  // one digit: nothing moves
    for (int d = 0; d < 256; ++d) count[d + 1] += count[d];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t at = count[(kin[i] >> shift) & 0xffu]++;
      kout[at] = kin[i];
      oout[at] = oin[i];
    }
    std::swap(kin, kout);
    std::swap(oin, oout);
  }
  for (int64_t i = 0; i < n; ++i) out[i] = oin[i];
}
}  // namespace

void argsort_rows(const Tensor& idx, const Tensor& x, bool descending) {
  if (x.numel() == 0) return;
  const int64_t n = x.sizes().back(), rows = x.numel() / n;
  auto radix = [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    const T* px = x.data<T>();
    int64_t* pi = idx.data<int64_t>();
    parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / n), [&](int64_t b, int64_t e) {
      std::vector<uint32_t> keys(n), tmp_keys(n), order(n), tmp_order(n);
      for (int64_t r = b; r < e; ++r)
        radix_sort_row(px + r * n, n, descending, keys, tmp_keys, order, tmp_order, pi + r * n);
    });
  };
  // Radix for 32-bit-or-narrower values (indices in uint32), selection of all n otherwise.
  if (n < (int64_t(1) << 32)) {
    switch (x.dtype()) {
      case DType::Float32: return radix(static_cast<float*>(nullptr));
      case DType::BFloat16: return radix(static_cast<BFloat16*>(nullptr));
      case DType::Float16: return radix(static_cast<Half*>(nullptr));
      case DType::Int32: return radix(static_cast<int32_t*>(nullptr));
      case DType::Bool: return radix(static_cast<bool*>(nullptr));
      default: break;
    }
  }
  select_rows(idx, x, n, descending);
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
