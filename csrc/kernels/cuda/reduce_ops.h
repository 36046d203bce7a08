#pragma once
// Note [CUDA reductions and scans]
// The reductions and scans of kernels/cpu/reduce.h and scan.h, on the device, over the same
// contiguous x[O, K, I] (K reduced or scanned). Each is an Op of four rules, written here once
// as plain DC_HD code, so that the C++ tests (tests/cpp/test_cuda_reduce.cpp) run them on the
// host in the kernels' order against the cpu kernels:
//   State identity()                       the state of no elements;
//   void add(State& s, In x, int64_t k)    folds in x, the element at position k along K;
//   void merge(State& a, const State& b)   a := a followed by b;
//   void store(const State& s, int64_t at) writes output `at` (a reduction's o * I + i; a
//                                          scan's position (o * K + k) * I + i).
// A scan's merge may depend on order (cummax keeps the later of equal values), and the scan
// kernels only merge a state with the one that follows it. A reduction's warp combines lanes
// that hold interleaved positions, so a reduction's merge must not depend on order: argmax
// breaks ties by the index, not by which state came first.
//
// The work is cut into segments (o, c, i): column (o, i) of K, or chunk c of it. With few
// outputs and a long K (argmax of a whole tensor, a column sum of a tall matrix) one segment
// per output would leave most of the GPU idle, so split_plan cuts K into nk chunks: a reduction
// then merges the nk chunk states of an output in chunk order; a scan folds each chunk into a
// total, turns the totals into each chunk's carry-in (their exclusive prefix), and rescans each
// chunk from its carry. The plan is a function of the shape only, never of the device, so the
// floating results (and their rounding) are the same on every GPU and every run. A segment of
// a row (I == 1) is a warp's, lanes on neighbouring elements; a segment of a column is one
// thread's, neighbouring threads on neighbouring columns, so the loads coalesce either way.
//
// Floating states are double where the cpu's are (sums, products, variances, logsumexp);
// integer ones uint64, wrapping around like torch's int64. Merges in another order than the
// cpu's sequential one change only the last bits of a double, so float results agree with the
// cpu's to rounding, and integer, bool and index results exactly.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cuda/half_storage.h"
#include "kernels/host_device.h"

namespace dc::cuda_kernels {

// ---- the split of K ------------------------------------------------------------------------

constexpr int64_t kSplitThreads = int64_t(1) << 17;  // about a full H100 (132 SMs x 2048 / 2)
constexpr int64_t kMinWarpChunk = 1024;              // elements a warp's segment gets at least
constexpr int64_t kMinThreadChunk = 256;             // and a thread's
constexpr int64_t kMaxChunks = 1024;                 // bounds the sequential merge of chunks

struct SplitPlan {
  int64_t outer = 0, reduce = 0, inner = 0;
  int64_t kchunk = 0, nk = 0;  // K in nk chunks of kchunk (the last may be shorter)
  bool warp = false;           // a warp per segment (rows only), else a thread
  DC_HD int64_t segments() const { return outer * nk * inner; }
};

inline SplitPlan split_plan(int64_t outer, int64_t K, int64_t inner) {
  SplitPlan p;
  p.outer = outer, p.reduce = K, p.inner = inner;
  if (outer * inner <= 0 || K <= 0) return p;  // nothing to do: no segments
  p.kchunk = K, p.nk = 1;
  const int64_t lanes = inner == 1 && K >= 32 ? 32 : 1;
  const int64_t min_chunk = lanes == 32 ? kMinWarpChunk : kMinThreadChunk;
  const int64_t busy = outer * inner * lanes;
  if (busy < kSplitThreads && K >= 2 * min_chunk) {
    const int64_t nk = std::min({K / min_chunk, kSplitThreads / busy, kMaxChunks});
    if (nk > 1) {
      p.kchunk = (K + nk - 1) / nk;
      p.nk = (K + p.kchunk - 1) / p.kchunk;
    }
  }
  p.warp = inner == 1 && p.kchunk >= 32;
  return p;
}

// Segment s = (o * nk + c) * I + i covers positions [k0, k1) of column (o, i).
struct Segment {
  int64_t o, c, i, k0, k1;
};
DC_HD inline Segment segment_at(int64_t s, int64_t nk, int64_t inner, int64_t kchunk, int64_t K) {
  Segment g;
  g.i = s % inner;
  const int64_t oc = s / inner;
  g.o = oc / nk, g.c = oc % nk;
  g.k0 = g.c * kchunk;
  g.k1 = g.k0 + kchunk < K ? g.k0 + kchunk : K;
  return g;
}

// ---- values as the ops read them ----------------------------------------------------------

template <typename T>
DC_HD inline bool is_nan(T x) {
  if constexpr (std::is_floating_point_v<T>) return x != x;
  else return false;
}

template <typename T>
DC_HD inline bool nonzero(T x) {
  return x != T(0);
}
// A float16 or bfloat16 (half_storage.h's tags): both keep the sign in bit 15, so the value is
// zero exactly when the other 15 bits are.
DC_HD inline bool nonzero(Bf16Bits x) { return (x.bits & 0x7fffu) != 0; }
DC_HD inline bool nonzero(F16Bits x) { return (x.bits & 0x7fffu) != 0; }

// Floats accumulate in double, integers in uint64 (int64 arithmetic that wraps without UB).
template <typename T>
using WideAcc = std::conditional_t<std::is_floating_point_v<T>, double, uint64_t>;
template <typename T>
DC_HD inline WideAcc<T> widen(T x) {
  if constexpr (std::is_floating_point_v<T>) return static_cast<double>(x);
  else return static_cast<uint64_t>(static_cast<int64_t>(x));
}
template <typename T>
DC_HD inline T narrow(WideAcc<T> a) {
  if constexpr (std::is_floating_point_v<T>) return static_cast<T>(a);
  else return static_cast<T>(static_cast<int64_t>(a));
}

// A value and its position along K; i < 0 marks the state of no elements.
template <typename T>
struct ValueAt {
  T v;
  int64_t i;
};

// ---- reductions ----------------------------------------------------------------------------

// out = the product over K (cpu::prod_reduce).
template <typename T>
struct ProdOp {
  using In = T;
  using State = WideAcc<T>;
  T* out;
  DC_HD State identity() const { return 1; }
  DC_HD void add(State& s, T x, int64_t) const { s *= widen(x); }
  DC_HD void merge(State& a, const State& b) const { a *= b; }
  DC_HD void store(const State& s, int64_t at) const { out[at] = narrow<T>(s); }
};

// x replaces the extreme v: strictly beyond it, or NaN over a number (NaN propagates).
template <bool kMax, typename T>
DC_HD inline bool beats(T x, T v) {
  return (kMax ? x > v : x < v) || (is_nan(x) && !is_nan(v));
}

// max (kMax) or min over K and, where `indices` is set, the position of the first element equal
// to it, the first NaN for NaN (cpu::minmax_reduce). Ties go to the smaller position whichever
// state comes first, so lanes merge in any order.
template <typename T, bool kMax>
struct ExtremeOp {
  using In = T;
  using State = ValueAt<T>;
  T* values;
  int64_t* indices;  // may be null
  DC_HD State identity() const { return {T(), -1}; }
  DC_HD void add(State& s, T x, int64_t k) const {
    if (s.i < 0 || beats<kMax>(x, s.v)) s = {x, k};
  }
  DC_HD void merge(State& a, const State& b) const {
    if (b.i < 0) return;
    if (a.i < 0 || beats<kMax>(b.v, a.v) || (!beats<kMax>(a.v, b.v) && b.i < a.i)) a = b;
  }
  DC_HD void store(const State& s, int64_t at) const {
    values[at] = s.v;
    if (indices) indices[at] = s.i;
  }
};

// Count, mean and sum of squared deviations, in double.
struct Moments {
  double n, mean, m2;
};

// var (or std, with take_sqrt) over K with divisor max(0, K - correction) (cpu::var_reduce).
// Welford's update per element and Chan's merge of two moment states, both in double: stable
// like the cpu's two passes per chunk (no sum of squares minus a squared sum), so a mean far
// from zero costs no digits.
template <typename T>
struct VarOp {
  using In = T;
  using State = Moments;
  T* out;
  double correction;
  bool take_sqrt;
  DC_HD State identity() const { return {0.0, 0.0, 0.0}; }
  DC_HD void add(State& s, T x, int64_t) const {
    const double v = static_cast<double>(x);
    s.n += 1;
    const double d = v - s.mean;
    s.mean += d / s.n;
    s.m2 += d * (v - s.mean);
  }
  DC_HD void merge(State& a, const State& b) const {
    if (b.n == 0) return;
    if (a.n == 0) {
      a = b;
      return;
    }
    const double n = a.n + b.n, delta = b.mean - a.mean;
    a.mean += delta * (b.n / n);
    a.m2 += b.m2 + delta * delta * (a.n * b.n / n);
    a.n = n;
  }
  DC_HD void store(const State& s, int64_t at) const {
    const double divisor = s.n - correction;  // std::max(0.0, divisor), NaN-safe the same way
    const double v = s.m2 / (0.0 < divisor ? divisor : 0.0);
    out[at] = static_cast<T>(take_sqrt ? ::sqrt(v) : v);
  }
};

// all (kAll) or any of x != 0 over K (cpu::all_any_reduce).
template <typename T, bool kAll>
struct AllAnyOp {
  using In = T;
  using State = bool;
  bool* out;
  DC_HD State identity() const { return kAll; }
  DC_HD void add(State& s, T x, int64_t) const { s = kAll ? s && nonzero(x) : s || nonzero(x); }
  DC_HD void merge(State& a, const State& b) const { a = kAll ? a && b : a || b; }
  DC_HD void store(const State& s, int64_t at) const { out[at] = s; }
};

// The sum of a float tensor in double, into one double (cpu::ordered_sum).
template <typename T>
struct SumToDoubleOp {
  using In = T;
  using State = double;
  double* out;
  DC_HD State identity() const { return 0.0; }
  DC_HD void add(State& s, T x, int64_t) const { s += static_cast<double>(x); }
  DC_HD void merge(State& a, const State& b) const { a += b; }
  DC_HD void store(const State& s, int64_t at) const { out[at] = s; }
};

// Whether every x lies in [lo, hi], the bounds in x's dtype; NaN fails (cpu::all_within).
template <typename T>
struct WithinOp {
  using In = T;
  using State = bool;
  bool* out;
  T lo, hi;
  DC_HD State identity() const { return true; }
  DC_HD void add(State& s, T x, int64_t) const { s = s && x >= lo && x <= hi; }
  DC_HD void merge(State& a, const State& b) const { a = a && b; }
  DC_HD void store(const State& s, int64_t at) const { out[at] = s; }
};

// ---- scans ---------------------------------------------------------------------------------

// out[.., k, ..] = the running sum (cpu::cumsum_scan) or product (cpu::cum_scan, Prod).
template <typename T, bool kProd>
struct CumArithOp {
  using In = T;
  using State = WideAcc<T>;
  T* out;
  DC_HD State identity() const { return kProd ? 1 : 0; }
  DC_HD void add(State& s, T x, int64_t) const {
    if (kProd) s *= widen(x);
    else s += widen(x);
  }
  DC_HD void merge(State& a, const State& b) const {
    if (kProd) a *= b;
    else a += b;
  }
  DC_HD void store(const State& s, int64_t at) const { out[at] = narrow<T>(s); }
};

// x takes over the running extreme `best`: NaN always (the latest NaN sticks), else a value
// at least as extreme, so that of equal values the later position wins (torch's cummax).
template <bool kMax, typename T>
DC_HD inline bool takes_over(T x, T best) {
  return is_nan(x) || (!is_nan(best) && (kMax ? x >= best : x <= best));
}

// cummax (kMax) / cummin and the position each value came from (cpu::cum_scan, Max / Min).
// The running extreme of a followed by b is b's when b's extreme takes over a's: the fold over
// the whole equals that merge of the folds of its parts, whatever the cut.
template <typename T, bool kMax>
struct CumExtremeOp {
  using In = T;
  using State = ValueAt<T>;
  T* out;
  int64_t* indices;  // may be null
  DC_HD State identity() const { return {T(), -1}; }
  DC_HD void add(State& s, T x, int64_t k) const {
    if (s.i < 0 || takes_over<kMax>(x, s.v)) s = {x, k};
  }
  DC_HD void merge(State& a, const State& b) const {
    if (b.i < 0) return;
    if (a.i < 0 || takes_over<kMax>(b.v, a.v)) a = b;
  }
  DC_HD void store(const State& s, int64_t at) const {
    out[at] = s.v;
    if (indices) indices[at] = s.i;
  }
};

// log(exp(acc) + exp(x)) as the cpu's logcumsumexp step computes it: NaN in, NaN out; an
// infinite or -inf operand decides alone; else the larger plus log1p(exp(smaller - larger)).
// -inf is its identity, and it merges two running totals as it folds in an element.
DC_HD inline double log_add_exp(double acc, double x) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  if (x != x || acc != acc) return std::numeric_limits<double>::quiet_NaN();
  const double hi = acc < x ? x : acc, lo = x < acc ? x : acc;
  if (hi == inf || hi == -inf || lo == -inf) return hi;
  return hi + ::log1p(::exp(lo - hi));
}

// logcumsumexp (cpu::cum_scan, LogSumExp), in double.
template <typename T>
struct CumLogSumExpOp {
  using In = T;
  using State = double;
  T* out;
  DC_HD State identity() const { return -std::numeric_limits<double>::infinity(); }
  DC_HD void add(State& s, T x, int64_t) const { s = log_add_exp(s, static_cast<double>(x)); }
  DC_HD void merge(State& a, const State& b) const { a = log_add_exp(a, b); }
  DC_HD void store(const State& s, int64_t at) const { out[at] = static_cast<T>(s); }
};

}  // namespace dc::cuda_kernels
