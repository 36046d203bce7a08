// Fixed-order row reductions shared by the per-ISA kernel files; included inside their
// anonymous namespace (like scalar_math.h), so each ISA compiles its own copy.
//
// kLanes independent partial results combined at the end: without -ffast-math the compiler may
// not reorder a single running sum, but it vectorises "acc[j] += ..." over j, and the result
// does not depend on the thread count because one thread reduces a row in this fixed order.
#ifndef DC_ROW_REDUCE_BODY
#define DC_ROW_REDUCE_BODY

constexpr int kLanes = 16;

// sum(x[i] * y[i]) over n elements.
template <typename T>
T row_dot(const T* x, const T* y, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j] * y[i + j];
  T s = 0;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  for (; i < n; ++i) s += x[i] * y[i];
  return s;
}

// max(x[0 : n]), a NaN in x ignored (it still turns the softmax built on it into NaN through
// exp(NaN - m)). Written with GCC vector types: as a loop over an array of partial maxima GCC 12
// unrolls it into scalar maxss (a fifth of a softmax's time, 7 % of an attention forward).
template <typename T>
T row_max(const T* x, int64_t n) {
  constexpr int W = 64 / sizeof(T);
  typedef T Vec __attribute__((vector_size(64)));
  Vec acc;
  for (int j = 0; j < W; ++j) acc[j] = -INFINITY;
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    Vec v;
    std::memcpy(&v, x + i, sizeof v);
    acc = v > acc ? v : acc;
  }
  T m = -INFINITY;
  for (int j = 0; j < W; ++j) m = acc[j] > m ? acc[j] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

#endif  // DC_ROW_REDUCE_BODY
