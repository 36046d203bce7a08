// Reduction kernels on the (O, K, I) layout (kernels/cpu/reduce.h).
//
// Note [Deterministic reduction schedule]
// Work is cut into tasks from the shape alone, never from the thread count, so every output
// is accumulated in the same order (and rounds the same way) on 1 or 64 threads:
//   - a task covers one outer index o, a tile of up to kInnerTile inner columns, and either
//     all of K or one fixed-size chunk of it;
//   - K is chunked only when there are too few (o, tile) tasks to keep threads busy and each
//     would be long (a full reduction of a big tensor, a bias gradient with few columns);
//     chunk states are then merged in chunk order;
//   - rows (I == 1) are reduced in kLanes (or, for long rows, kInnerTile) interleaved lanes
//     (the vectorisable form), merged in lane order, then the tail.
// An op supplies a State, columns() (reduce `nrows` rows of `ncols` adjacent columns into
// one state per column), merge(a, b) (b follows a) and finish(state, output index).
#include "kernels/cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <type_traits>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/isa.h"

namespace dc::cpu {
namespace {

#include "kernels/cpu/vec/sum_lanes.h"

constexpr int64_t kLanes = 16;            // interleaved accumulators along a row
constexpr int64_t kChunkElems = 1 << 16;  // elements per K-chunk task when K is split

struct Schedule {
  int64_t itile, ni, kchunk, nk;
};

Schedule make_schedule(const ReduceDims& d) {
  Schedule s;
  s.itile = std::min(d.inner, kInnerTile);
  s.ni = (d.inner + s.itile - 1) / s.itile;
  s.kchunk = d.reduce;
  if (d.outer * s.ni < 16 && d.reduce * s.itile > 2 * kChunkElems)
    s.kchunk = std::max<int64_t>(1, kChunkElems / s.itile);
  s.nk = (d.reduce + s.kchunk - 1) / s.kchunk;
  return s;
}

// One row of n contiguous elements (k0 = position of p[0] along K) -> one state.
template <class Op>
typename Op::State reduce_row(const Op& op, const typename Op::In* p, int64_t n, int64_t k0) {
  using S = typename Op::State;
  if constexpr (Op::kRowKernel) {
    return op.row(p, n);
  } else {
    S out{};
    // Long rows use kInnerTile lanes: the same loop as the columns layout, whose inner trip
    // count is long enough to vectorise well; short rows keep the merge cost low.
    const int64_t nl = n >= 16 * kInnerTile ? kInnerTile : kLanes;
    const int64_t full = n / nl;
    if (full > 0) {
      // Lane j holds elements k0 + r * nl + j.
      S lanes[kInnerTile];
      op.columns(p, full, nl, nl, k0, nl, 1, lanes);
      out = lanes[0];
      for (int64_t j = 1; j < nl; ++j) op.merge(out, lanes[j]);
    }
    const int64_t rem = n - full * nl;
    if (rem > 0) {
      S tail;
      op.columns(p + full * nl, rem, 1, 1, k0 + full * nl, 1, 0, &tail);
      if (full > 0) op.merge(out, tail);
      else out = tail;
    }
    return out;
  }
}

// x[O, K, I] -> op.finish(state, o * I + i); see Note [Deterministic reduction schedule].
template <class Op>
void run_reduce(const Op& op, const typename Op::In* x, const ReduceDims& d) {
  using S = typename Op::State;
  const int64_t O = d.outer, K = d.reduce, I = d.inner;
  if (O * I == 0) return;
  DC_CHECK(K > 0, RuntimeError, "[reduce] internal: empty reduction reached a kernel");
  const Schedule s = make_schedule(d);
  auto chunk = [&](int64_t o, int64_t k0, int64_t nrows, int64_t i0, int64_t n, S* st) {
    const auto* p = x + (o * K + k0) * I + i0;
    if (I == 1) st[0] = reduce_row(op, p, nrows, k0);
    else op.columns(p, nrows, I, n, k0, 1, 0, st);
  };
  if (s.nk == 1) {
    const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(1, K * s.itile));
    parallel_for(0, O * s.ni, grain, [&](int64_t b, int64_t e) {
      S st[kInnerTile];
      for (int64_t t = b; t < e; ++t) {
        const int64_t o = t / s.ni, i0 = (t % s.ni) * s.itile, n = std::min(s.itile, I - i0);
        chunk(o, 0, K, i0, n, st);
        for (int64_t j = 0; j < n; ++j) op.finish(st[j], o * I + i0 + j);
      }
    });
    return;
  }
  // part[o, c, i]: the state of chunk c.
  // (A plain array, not std::vector: State may be bool.)
  std::unique_ptr<S[]> part(new S[static_cast<size_t>(O * s.nk * I)]);
  parallel_for(0, O * s.nk * s.ni, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / (s.nk * s.ni), r = t % (s.nk * s.ni);
      const int64_t c = r / s.ni, i0 = (r % s.ni) * s.itile, n = std::min(s.itile, I - i0);
      const int64_t k0 = c * s.kchunk;
      chunk(o, k0, std::min(s.kchunk, K - k0), i0, n, &part[(o * s.nk + c) * I + i0]);
    }
  });
  parallel_for(0, O * I, std::max<int64_t>(1, kGrainSize / s.nk), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / I, i = t % I;
      S acc = part[(o * s.nk) * I + i];
      for (int64_t c = 1; c < s.nk; ++c) op.merge(acc, part[(o * s.nk + c) * I + i]);
      op.finish(acc, t);
    }
  });
}

// ---- sum --------------------------------------------------------------------------------

template <typename InT, typename Out>
struct SumOp {
  using In = InT;
  // Floats accumulate in double; integers in uint64 (wraps like int64 without UB).
  using State = std::conditional_t<is_float_v<Out>, double, uint64_t>;
  // Sums of float32 and of the 16-bit floats into float32 or a 16-bit float use float lanes
  // (twice the SIMD width of double), flushed to the double State every kSumBlock elements (a
  // block of rows for columns); a float64 output accumulates in double throughout.
  using Lane = std::conditional_t<is_float_v<Out> && !std::is_same_v<Out, double> &&
                                      is_float_v<In> && !std::is_same_v<In, double>,
                                  float, State>;
  static constexpr bool kRowKernel = true;
  Out* out;

  // Like PyTorch: the input is cast to the output dtype, then accumulated.
  static State load(In x) {
    if constexpr (is_float_v<Out>) return static_cast<State>(static_cast<Out>(x));
    else return static_cast<State>(static_cast<int64_t>(static_cast<Out>(x)));
  }
  // Float lanes (sum_lanes.h): float32 into float32 on the per-ISA copy (sum_row_f32), the
  // 16-bit inputs here. Double or integer lanes: kLanes.
  State row(const In* p, int64_t n) const {
    if constexpr (std::is_same_v<In, float> && std::is_same_v<Out, float>) {
      return for_active_isa(&generic::sum_row_f32, &avx2::sum_row_f32,
                            &avx512::sum_row_f32)(p, n);
    } else if constexpr (std::is_same_v<Lane, float>) {
      return sum_float_row(n, [p](int64_t i) { return lane_load(p[i]); });
    } else {
      State acc[kLanes] = {};
      int64_t i = 0;
      for (; i + kLanes <= n; i += kLanes)
        for (int64_t j = 0; j < kLanes; ++j) acc[j] += load(p[i + j]);
      State total = 0;
      for (int64_t j = 0; j < kLanes; ++j) total += acc[j];
      for (; i < n; ++i) total += load(p[i]);
      return total;
    }
  }
  // A value as the float lanes add it: cast to the output dtype first, like load().
  static float lane_load(In x) { return static_cast<float>(static_cast<Out>(x)); }
  void columns(const In* p, int64_t nrows, int64_t stride, int64_t ncols, int64_t, int64_t,
               int64_t, State* st) const {
    for (int64_t j = 0; j < ncols; ++j) st[j] = 0;
    if constexpr (std::is_same_v<Lane, float>) {
      // Float lanes over blocks of rows (twice the SIMD width of double), added to the double
      // states once a block, as row() flushes its lanes.
      constexpr int64_t kRowBlock = 64;
      float acc[kInnerTile];
      for (int64_t r0 = 0; r0 < nrows; r0 += kRowBlock) {
        const int64_t r1 = std::min(nrows, r0 + kRowBlock);
        for (int64_t j = 0; j < ncols; ++j) acc[j] = 0.0f;
        add_rows(p, stride, r0, r1, ncols, acc, lane_load);
        for (int64_t j = 0; j < ncols; ++j) st[j] += static_cast<State>(acc[j]);
      }
      return;
    }
    add_rows(p, stride, 0, nrows, ncols, st, load);
  }
  // dst[j] += value(x[r, j]) for rows [r0, r1) of x (row r at p + r * stride), four rows per
  // pass over dst: one load and store of dst per four inputs.
  template <typename D, typename Value>
  static void add_rows(const In* p, int64_t stride, int64_t r0, int64_t r1, int64_t ncols, D* dst,
                       Value value) {
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
      const In *a = p + r * stride, *b = a + stride, *c = b + stride, *e = c + stride;
      for (int64_t j = 0; j < ncols; ++j)
        dst[j] += (value(a[j]) + value(b[j])) + (value(c[j]) + value(e[j]));
    }
    for (; r < r1; ++r) {
      const In* row = p + r * stride;
      for (int64_t j = 0; j < ncols; ++j) dst[j] += value(row[j]);
    }
  }
  void merge(State& a, const State& b) const { a += b; }
  void finish(const State& s, int64_t idx) const {
    if constexpr (is_float_v<Out>) out[idx] = static_cast<Out>(s);
    else out[idx] = static_cast<Out>(static_cast<int64_t>(s));
  }
};

// ---- prod -------------------------------------------------------------------------------

template <typename T>
struct ProdOp {
  using In = T;
  using State = std::conditional_t<std::is_floating_point_v<T>, double, uint64_t>;
  static constexpr bool kRowKernel = false;
  T* out;
  static State load(T x) {
    if constexpr (std::is_floating_point_v<T>) return x;
    else return static_cast<State>(static_cast<int64_t>(x));
  }
  void columns(const T* p, int64_t nrows, int64_t stride, int64_t ncols, int64_t, int64_t,
               int64_t, State* st) const {
    State acc[kInnerTile];
    for (int64_t j = 0; j < ncols; ++j) acc[j] = 1;
    for (int64_t r = 0; r < nrows; ++r) {
      const T* row = p + r * stride;
      for (int64_t j = 0; j < ncols; ++j) acc[j] *= load(row[j]);
    }
    for (int64_t j = 0; j < ncols; ++j) st[j] = acc[j];
  }
  void merge(State& a, const State& b) const { a *= b; }
  void finish(const State& s, int64_t idx) const {
    if constexpr (std::is_floating_point_v<T>) out[idx] = static_cast<T>(s);
    else out[idx] = static_cast<T>(static_cast<int64_t>(s));
  }
};

// ---- max / min ----------------------------------------------------------------------------

// x replaces the running value v: strictly better, or NaN over a number (NaN propagates).
template <bool kMax, typename T>
inline bool replaces(T x, T v) {
  if constexpr (std::is_floating_point_v<T>) return (kMax ? x > v : x < v) || (x != x && v == v);
  else return kMax ? x > v : x < v;
}

template <typename T, bool kMax>
struct ExtremeOp {
  using In = T;
  using State = T;
  // float32 and float64 run the per-ISA kernels of vec/extreme_kernels.cpp.
  static constexpr bool kRowKernel = std::is_same_v<T, float> || std::is_same_v<T, double>;
  T* out;
  static T pick(T v, T x) {
    // Two plain selects (better, then x is NaN) so the column loop vectorises.
    if constexpr (std::is_floating_point_v<T>) {
      const T m = kMax ? (x > v ? x : v) : (x < v ? x : v);
      return x != x ? x : m;
    } else {
      return (kMax ? x > v : x < v) ? x : v;
    }
  }
  T row(const T* p, int64_t n) const {  // instantiated only where kRowKernel
    if constexpr (std::is_same_v<T, float>)
      return for_active_isa(&generic::extreme_row_f32, &avx2::extreme_row_f32,
                            &avx512::extreme_row_f32)(p, n, kMax);
    else
      return for_active_isa(&generic::extreme_row_f64, &avx2::extreme_row_f64,
                            &avx512::extreme_row_f64)(p, n, kMax);
  }
  void columns(const T* p, int64_t nrows, int64_t stride, int64_t ncols, int64_t, int64_t,
               int64_t, State* st) const {
    if constexpr (std::is_same_v<T, float>) {
      for_active_isa(&generic::extreme_cols_f32, &avx2::extreme_cols_f32,
                     &avx512::extreme_cols_f32)(p, nrows, stride, ncols, kMax, st);
    } else if constexpr (std::is_same_v<T, double>) {
      for_active_isa(&generic::extreme_cols_f64, &avx2::extreme_cols_f64,
                     &avx512::extreme_cols_f64)(p, nrows, stride, ncols, kMax, st);
    } else {
      // A local accumulator (it cannot alias the input) lets the loop vectorise.
      T acc[kInnerTile];
      for (int64_t j = 0; j < ncols; ++j) acc[j] = p[j];
      for (int64_t r = 1; r < nrows; ++r) {
        const T* row = p + r * stride;
        for (int64_t j = 0; j < ncols; ++j) acc[j] = pick(acc[j], row[j]);
      }
      for (int64_t j = 0; j < ncols; ++j) st[j] = acc[j];
    }
  }
  void merge(State& a, const State& b) const { a = pick(a, b); }
  void finish(const State& s, int64_t idx) const { out[idx] = s; }
};

template <typename T>
struct ValueIndex {
  T v;
  int64_t i;
};

template <typename T, bool kMax>
struct ArgExtremeOp {
  using In = T;
  using State = ValueIndex<T>;
  static constexpr bool kRowKernel = false;
  T* values;
  int64_t* indices;
  void columns(const T* p, int64_t nrows, int64_t stride, int64_t ncols, int64_t k0,
               int64_t krow, int64_t kcol, State* st) const {
    for (int64_t j = 0; j < ncols; ++j) st[j] = {p[j], k0 + j * kcol};
    for (int64_t r = 1; r < nrows; ++r) {
      const T* row = p + r * stride;
      for (int64_t j = 0; j < ncols; ++j)
        if (replaces<kMax>(row[j], st[j].v)) st[j] = {row[j], k0 + r * krow + j * kcol};
    }
  }
  // Ties (and NaN vs NaN) keep the smaller index, whatever order the states arrive in.
  void merge(State& a, const State& b) const {
    if (replaces<kMax>(b.v, a.v) || (!replaces<kMax>(a.v, b.v) && b.i < a.i)) a = b;
  }
  void finish(const State& s, int64_t idx) const {
    values[idx] = s.v;
    if (indices) indices[idx] = s.i;
  }
};

// ---- var / std ----------------------------------------------------------------------------

struct Moments {
  double n, mean, m2;
};

template <typename T>
struct VarOp {
  using In = T;
  using State = Moments;
  static constexpr bool kRowKernel = false;
  T* out;
  double correction;
  bool take_sqrt;
  void columns(const T* p, int64_t nrows, int64_t stride, int64_t ncols, int64_t, int64_t,
               int64_t, State* st) const {
    // Two passes over the chunk (it is at most kChunkElems, or one task's rows): the mean,
    // then the squared deviations from it, both in double.
    double acc[kInnerTile];
    for (int64_t j = 0; j < ncols; ++j) acc[j] = 0;
    for (int64_t r = 0; r < nrows; ++r) {
      const T* row = p + r * stride;
      for (int64_t j = 0; j < ncols; ++j) acc[j] += row[j];
    }
    double mean[kInnerTile];
    for (int64_t j = 0; j < ncols; ++j) {
      mean[j] = acc[j] / static_cast<double>(nrows);
      acc[j] = 0;
    }
    for (int64_t r = 0; r < nrows; ++r) {
      const T* row = p + r * stride;
      for (int64_t j = 0; j < ncols; ++j) {
        const double dev = row[j] - mean[j];
        acc[j] += dev * dev;
      }
    }
    for (int64_t j = 0; j < ncols; ++j) st[j] = {static_cast<double>(nrows), mean[j], acc[j]};
  }
  // Chan et al.'s pairwise update of (count, mean, sum of squared deviations).
  void merge(State& a, const State& b) const {
    const double n = a.n + b.n, delta = b.mean - a.mean;
    a.mean += delta * (b.n / n);
    a.m2 += b.m2 + delta * delta * (a.n * b.n / n);
    a.n = n;
  }
  void finish(const State& s, int64_t idx) const {
    const double v = s.m2 / std::max(0.0, s.n - correction);
    out[idx] = static_cast<T>(take_sqrt ? std::sqrt(v) : v);
  }
};

// ---- all / any ----------------------------------------------------------------------------

template <typename T, bool kAll>
struct AllAnyOp {
  using In = T;
  using State = bool;
  static constexpr bool kRowKernel = false;
  bool* out;
  void columns(const T* p, int64_t nrows, int64_t stride, int64_t ncols, int64_t, int64_t,
               int64_t, State* st) const {
    // Flags as integers of the input's width (no narrowing in the loop, so it vectorises).
    using Flag = std::conditional_t<sizeof(T) == 8, int64_t,
                                    std::conditional_t<sizeof(T) == 4, int32_t, uint8_t>>;
    Flag acc[kInnerTile];
    for (int64_t j = 0; j < ncols; ++j) acc[j] = kAll;
    for (int64_t r = 0; r < nrows; ++r) {
      const T* row = p + r * stride;
      for (int64_t j = 0; j < ncols; ++j) {
        if constexpr (kAll) acc[j] &= static_cast<Flag>(row[j] != T(0));
        else acc[j] |= static_cast<Flag>(row[j] != T(0));
      }
    }
    for (int64_t j = 0; j < ncols; ++j) st[j] = acc[j] != 0;
  }
  void merge(State& a, const State& b) const { a = kAll ? (a && b) : (a || b); }
  void finish(const State& s, int64_t idx) const { out[idx] = s; }
};

// ---- cumsum -------------------------------------------------------------------------------

// out[o, k, i] = sum_{j <= k} in[o, j, i]; each (o, i) is scanned by one thread in order.
template <typename T>
void scan(const T* in, T* out, const ReduceDims& d) {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, uint64_t>;
  const int64_t O = d.outer, K = d.reduce, I = d.inner;
  if (O * K * I == 0) return;
  auto store = [](Acc a) {
    if constexpr (std::is_floating_point_v<T>) return static_cast<T>(a);
    else return static_cast<T>(static_cast<int64_t>(a));
  };
  auto load = [](T x) {
    if constexpr (std::is_floating_point_v<T>) return static_cast<Acc>(x);
    else return static_cast<Acc>(static_cast<int64_t>(x));
  };
  const int64_t itile = std::min(I, kInnerTile), ni = (I + itile - 1) / itile;
  const int64_t grain = std::max<int64_t>(1, kGrainSize / (K * itile));
  if (I == 1) {
    // Rows: a plain running sum per row (the add latency bounds it, not memory).
    parallel_for(0, O, std::max<int64_t>(1, kGrainSize / K), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        Acc acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          acc += load(in[o * K + k]);
          out[o * K + k] = store(acc);
        }
      }
    });
    return;
  }
  parallel_for(0, O * ni, grain, [&](int64_t b, int64_t e) {
    Acc acc[kInnerTile];
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / ni, i0 = (t % ni) * itile, n = std::min(itile, I - i0);
      const T* p = in + o * K * I + i0;
      T* q = out + o * K * I + i0;
      for (int64_t j = 0; j < n; ++j) acc[j] = 0;
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < n; ++j) {
          acc[j] += load(p[k * I + j]);
          q[k * I + j] = store(acc[j]);
        }
    }
  });
}

}  // namespace

void sum_reduce(DType in_dtype, DType out_dtype, const void* in, void* out, ReduceDims d) {
  DC_DISPATCH_ALL_AND_HALF(in_dtype, "sum", [&] {
    using In = scalar_t;
    DC_DISPATCH_ALL_AND_HALF(out_dtype, "sum", [&] {
      if constexpr (std::is_same_v<scalar_t, bool>) {
        DC_THROW(TypeError, "[sum] bool is not a valid accumulator dtype");
      } else {
        run_reduce(SumOp<In, scalar_t>{static_cast<scalar_t*>(out)}, static_cast<const In*>(in),
                   d);
      }
    });
  });
}

void prod_reduce(DType dtype, const void* in, void* out, ReduceDims d) {
  DC_DISPATCH_ALL(dtype, "prod", [&] {
    if constexpr (std::is_same_v<scalar_t, bool>) {
      DC_THROW(TypeError, "[prod] bool is not a valid accumulator dtype");
    } else {
      run_reduce(ProdOp<scalar_t>{static_cast<scalar_t*>(out)},
                 static_cast<const scalar_t*>(in), d);
    }
  });
}

void minmax_reduce(DType dtype, const void* in, void* values, int64_t* indices, ReduceDims d,
                   bool is_max) {
  DC_DISPATCH_ALL(dtype, is_max ? "max" : "min", [&] {
    auto* x = static_cast<const scalar_t*>(in);
    auto* v = static_cast<scalar_t*>(values);
    if (indices) {
      if (is_max) run_reduce(ArgExtremeOp<scalar_t, true>{v, indices}, x, d);
      else run_reduce(ArgExtremeOp<scalar_t, false>{v, indices}, x, d);
    } else {
      if (is_max) run_reduce(ExtremeOp<scalar_t, true>{v}, x, d);
      else run_reduce(ExtremeOp<scalar_t, false>{v}, x, d);
    }
  });
}

void var_reduce(DType dtype, const void* in, void* out, ReduceDims d, double correction,
                bool take_sqrt) {
  DC_DISPATCH_FLOAT(dtype, take_sqrt ? "std" : "var", [&] {
    run_reduce(VarOp<scalar_t>{static_cast<scalar_t*>(out), correction, take_sqrt},
               static_cast<const scalar_t*>(in), d);
  });
}

void all_any_reduce(DType dtype, const void* in, bool* out, ReduceDims d, bool is_all) {
  DC_DISPATCH_ALL_AND_HALF(dtype, is_all ? "all" : "any", [&] {
    auto* x = static_cast<const scalar_t*>(in);
    if (is_all) run_reduce(AllAnyOp<scalar_t, true>{out}, x, d);
    else run_reduce(AllAnyOp<scalar_t, false>{out}, x, d);
  });
}

void cumsum_scan(DType dtype, const void* in, void* out, ReduceDims d) {
  DC_DISPATCH_ALL(dtype, "cumsum", [&] {
    if constexpr (std::is_same_v<scalar_t, bool>) {
      DC_THROW(TypeError, "[cumsum] bool is not a valid accumulator dtype");
    } else {
      scan(static_cast<const scalar_t*>(in), static_cast<scalar_t*>(out), d);
    }
  });
}

namespace {
// The wrappers keep their old contract: an empty sum writes zeros.
void sum_or_zero(DType dtype, const void* in, void* out, ReduceDims d) {
  if (d.reduce > 0) return sum_reduce(dtype, dtype, in, out, d);
  DC_DISPATCH_ALL(dtype, "sum", [&] {
    std::fill_n(static_cast<scalar_t*>(out), d.outer * d.inner, scalar_t(0));
  });
}
}  // namespace

void sum_rows(DType dtype, const void* in, void* out, int64_t M, int64_t K) {
  sum_or_zero(dtype, in, out, ReduceDims{M, K, 1});
}

void sum_columns(DType dtype, const void* in, void* out, int64_t K, int64_t M) {
  sum_or_zero(dtype, in, out, ReduceDims{1, K, M});
}

}  // namespace dc::cpu
