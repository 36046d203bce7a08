#pragma once
// Row primitives of the softmax, loss and normalisation kernels, compiled once per ISA
// (csrc/kernels/cpu/vec/nn_rows.cpp, Note [Per-ISA kernels]). A "row" is n contiguous
// elements; a "column block" is `width` columns of an [n, stride] slab. The drivers in
// softmax.cpp / loss.cpp / norm.cpp split work into rows and pick the table of the active ISA.
#include <cstdint>

namespace dc::cpu {

template <typename T>
struct NnRowFns {
  // y[n] = softmax(x[n]) (log = false) or log_softmax(x[n]); y may alias x.
  void (*softmax)(const T* x, T* y, int64_t n, bool log);
  // The same over dim 0 of x[n, stride] for columns [0, width); work holds 2 * width values.
  void (*softmax_cols)(const T* x, T* y, int64_t n, int64_t stride, int64_t width, bool log,
                       T* work);
  // gx = y * (g - sum(g * y))   or, for log_softmax,   gx = g - exp(y) * sum(g)
  void (*softmax_backward)(const T* g, const T* y, T* gx, int64_t n, bool log);
  void (*softmax_backward_cols)(const T* g, const T* y, T* gx, int64_t n, int64_t stride,
                                int64_t width, bool log, T* work);
  // max(x) + log(sum(exp(x - max(x))))
  T (*logsumexp)(const T* x, int64_t n);
  // out[c] = a * exp(x[c] - lse)
  void (*scaled_exp)(const T* x, T lse, T a, T* out, int64_t n);
  T (*sum)(const T* x, int64_t n);
  T (*dot)(const T* x, const T* y, int64_t n);
  // Row mean and 1 / sqrt(var + eps) (biased variance, two passes); rms: mean = 0 and
  // rstd = 1 / sqrt(mean(x^2) + eps).
  void (*moments)(const T* x, int64_t n, T eps, bool rms, T* mean, T* rstd);
  // y = (x - mean) * rstd * w + b; w, b may be null.
  void (*norm_apply)(const T* x, T mean, T rstd, const T* w, const T* b, T* y, int64_t n);
  // gx = rstd * (gw - [mean(gw)] - xhat * mean(gw * xhat)), gw = g * w, xhat = (x - mean) * rstd;
  // the bracketed term only when `center` (layer norm; rms norm has none). `work` holds n.
  void (*norm_backward)(const T* g, const T* x, T mean, T rstd, const T* w, T* gx, int64_t n,
                        bool center, T* work);
  // dw[c] += g[c] * xhat[c]; db[c] += g[c] (either may be null).
  void (*norm_param_grad)(const T* g, const T* x, T mean, T rstd, T* dw, T* db, int64_t n);
};

struct NnRowTable {
  NnRowFns<float> f32;
  NnRowFns<double> f64;
};

// The table of the active ISA.
const NnRowTable& nn_row_table();
template <typename T>
const NnRowFns<T>& nn_rows();
template <>
inline const NnRowFns<float>& nn_rows<float>() { return nn_row_table().f32; }
template <>
inline const NnRowFns<double>& nn_rows<double>() { return nn_row_table().f64; }

namespace avx512 { void fill_nn_rows(NnRowTable& t); }
namespace avx2 { void fill_nn_rows(NnRowTable& t); }
namespace generic { void fill_nn_rows(NnRowTable& t); }

}  // namespace dc::cpu
