// max / min of float32 and float64 for minmax_reduce without indices (kernels/cpu/reduce.cpp:
// ExtremeOp), compiled once per ISA (Note [Per-ISA kernels]). The baseline build of reduce.cpp
// is SSE2: its max of 4M floats read 32 GB/s on two AVX2 cores against torch's 76.
//
// A NaN anywhere makes the result NaN, as in torch. The row kernel keeps the running extremes
// and a NaN flag apart (two instructions a vector), and only a row that holds a NaN is read
// again, for its first NaN. Extremes are exact, so the order in which the lanes are combined
// changes nothing but which of -0.0 and 0.0 a row whose extreme is zero returns (torch leaves
// that unspecified too); the order is fixed by the shape, so it does not vary between runs.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/reduce.h"

namespace dc::cpu::DC_ISA_NS {
namespace {

#include "kernels/cpu/vec/row_reduce.h"

template <bool kMax, typename T>
inline T better(T x, T v) {
  return kMax ? (x > v ? x : v) : (x < v ? x : v);
}

template <bool kMax, typename T>
T row(const T* x, int64_t n) {
  constexpr int W = kVecBytes / sizeof(T), kAcc = 4;
  typedef T Vec __attribute__((vector_size(kVecBytes)));
  using Mask = decltype(Vec{} != Vec{});
  const T start = kMax ? -INFINITY : INFINITY;
  Vec acc[kAcc];
  Mask nan[kAcc];
  for (int a = 0; a < kAcc; ++a) {
    for (int j = 0; j < W; ++j) acc[a][j] = start;
    nan[a] = Mask{};
  }
  int64_t i = 0;
  for (; i + kAcc * W <= n; i += kAcc * W)
    for (int a = 0; a < kAcc; ++a) {
      Vec v;
      std::memcpy(&v, x + i + a * W, sizeof v);
      acc[a] = kMax ? (v > acc[a] ? v : acc[a]) : (v < acc[a] ? v : acc[a]);
      nan[a] |= v != v;
    }
  // The accumulators into one vector, then its lanes: a short row (1024 floats) spends as
  // long on 4 W scalar steps as on its loads.
  for (int a = 1; a < kAcc; ++a) {
    acc[0] = kMax ? (acc[a] > acc[0] ? acc[a] : acc[0]) : (acc[a] < acc[0] ? acc[a] : acc[0]);
    nan[0] |= nan[a];
  }
  T m = start;
  bool any_nan = false;
  for (int j = 0; j < W; ++j) {
    m = better<kMax>(acc[0][j], m);
    any_nan |= nan[0][j] != 0;
  }
  for (; i < n; ++i) {
    m = better<kMax>(x[i], m);
    any_nan |= x[i] != x[i];
  }
  if (any_nan)
    for (int64_t k = 0; k < n; ++k)
      if (x[k] != x[k]) return x[k];
  return m;
}

// st[j] = extreme of column j over nrows rows (row r at p + r * stride), NaN winning.
template <bool kMax, typename T>
void cols(const T* p, int64_t nrows, int64_t stride, int64_t ncols, T* st) {
  // A local accumulator (it cannot alias the input) lets the loop vectorise; two plain selects
  // (better, then x is NaN).
  T acc[kInnerTile];
  for (int64_t j = 0; j < ncols; ++j) acc[j] = p[j];
  for (int64_t r = 1; r < nrows; ++r) {
    const T* q = p + r * stride;
    for (int64_t j = 0; j < ncols; ++j) {
      const T x = q[j], m = better<kMax>(x, acc[j]);
      acc[j] = x != x ? x : m;
    }
  }
  std::memcpy(st, acc, static_cast<size_t>(ncols) * sizeof(T));
}

}  // namespace

float extreme_row_f32(const float* p, int64_t n, bool is_max) {
  return is_max ? row<true>(p, n) : row<false>(p, n);
}
double extreme_row_f64(const double* p, int64_t n, bool is_max) {
  return is_max ? row<true>(p, n) : row<false>(p, n);
}
void extreme_cols_f32(const float* p, int64_t nrows, int64_t stride, int64_t ncols, bool is_max,
                      float* st) {
  is_max ? cols<true>(p, nrows, stride, ncols, st) : cols<false>(p, nrows, stride, ncols, st);
}
void extreme_cols_f64(const double* p, int64_t nrows, int64_t stride, int64_t ncols, bool is_max,
                      double* st) {
  is_max ? cols<true>(p, nrows, stride, ncols, st) : cols<false>(p, nrows, stride, ncols, st);
}

}  // namespace dc::cpu::DC_ISA_NS
