// Fixed-order row reductions shared by the per-ISA kernel files; included inside their
// anonymous namespace (like scalar_math.h), so each ISA compiles its own copy.
//
// kLanes independent partial results combined at the end: without -ffast-math the compiler may
// not reorder a single running sum, but it vectorises "acc[j] += ..." over j, and the result
// does not depend on the thread count because one thread reduces a row in this fixed order.
#ifndef DC_ROW_REDUCE_BODY
#define DC_ROW_REDUCE_BODY

constexpr int kLanes = 16;

// The bytes of one SIMD register of the ISA this copy is compiled for: the width of GCC vector
// types that lower to single instructions (a wider type is split lane by lane).
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

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
// unrolls it into scalar maxss (a fifth of a softmax's time, 7 % of an attention forward). The
// vectors are the ISA's own width, four of them in flight: a vector type wider than the
// registers is lowered lane by lane through the stack (64-byte vectors under AVX2 made the
// softmax 1.4x torch's time).
template <typename T>
T row_max(const T* x, int64_t n) {
  constexpr int W = kVecBytes / sizeof(T), kAcc = 4;
  typedef T Vec __attribute__((vector_size(kVecBytes)));
  Vec acc[kAcc];
  for (int a = 0; a < kAcc; ++a)
    for (int j = 0; j < W; ++j) acc[a][j] = -INFINITY;
  int64_t i = 0;
  for (; i + kAcc * W <= n; i += kAcc * W)
    for (int a = 0; a < kAcc; ++a) {
      Vec v;
      std::memcpy(&v, x + i + a * W, sizeof v);
      acc[a] = v > acc[a] ? v : acc[a];
    }
  for (; i + W <= n; i += W) {
    Vec v;
    std::memcpy(&v, x + i, sizeof v);
    acc[0] = v > acc[0] ? v : acc[0];
  }
  T m = -INFINITY;
  for (int a = 0; a < kAcc; ++a)
    for (int j = 0; j < W; ++j) m = acc[a][j] > m ? acc[a][j] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

#endif  // DC_ROW_REDUCE_BODY
