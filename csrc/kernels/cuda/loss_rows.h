#pragma once
// Note [CUDA loss rows]
// The per-row math of the CUDA loss kernels (kernels/cuda/loss.cu), written once for the device
// and for the host, where tests/cpp/test_cuda_loss.cpp runs it against naive loops and the cpu
// kernels (kernels/cpu/loss.h holds the contracts). Rows are x[M, C], contiguous.
//
// A row is worked on by a "group" of threads: a warp (C up to kBlockPerRowClasses) or a whole
// block. The group type supplies `lane` and `size` (thread k of n walks classes k, k + n, ...)
// and two all-reduces, `max` (a NaN partial never wins, as in the cpu's row_max: partials start
// at -inf and skip NaN, so they are never NaN themselves) and `sum` (of doubles). Every branch
// taken before a reduction depends on the row alone (its target, the flags), never on the lane,
// so a group never splits around one; a block group's reductions hold __syncthreads, and its
// rows loop runs the same number of times in every thread of the block.
//
// Precision: the cpu sums in T with 16 partial sums; these sums are taken in double (exp and
// the products themselves in T, with the cpu's exp, passed in as `exp`), so a float32 result
// can differ from the cpu's in the last bits. The per-row scalar formulas after the sums use
// the cpu's expressions in T, operation by operation.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/host_device.h"

namespace dc::cuda_kernels {

// ---- launch plan ------------------------------------------------------------------------------
// A warp per row up to this many classes (32 per lane at most), a block per row above: a long
// row then has 256 threads reading it, and few rows (a language model's batch of positions
// times 50k classes) still fill the GPU's warps.
constexpr int64_t kBlockPerRowClasses = 1024;

struct LossRowLaunch {
  int threads = 256;      // per block
  int row_threads = 32;   // threads sharing a row: 32 (a warp) or `threads` (the block)
  int64_t blocks = 0;     // 0: nothing to launch
  bool block_per_row() const { return row_threads == threads; }
};

inline LossRowLaunch loss_row_launch(int64_t M, int64_t C, int64_t max_blocks) {
  LossRowLaunch l;
  if (M <= 0) return l;
  if (C > kBlockPerRowClasses) l.row_threads = l.threads;
  const int64_t rows_per_block = l.threads / l.row_threads;
  l.blocks = std::min<int64_t>((M + rows_per_block - 1) / rows_per_block,
                               std::max<int64_t>(max_blocks, 1));
  return l;
}

// The rows of the group that holds thread `tid` of block `block` (of `blocks`): groups are
// numbered block by block, and group g of n takes rows g, g + n, ... (grid-stride over rows).
struct RowStride {
  int64_t first, step;
};
DC_HD inline RowStride row_stride(int64_t block, int64_t blocks, int tid, int threads,
                                  int row_threads) {
  const int64_t groups_per_block = threads / row_threads;
  return {block * groups_per_block + tid / row_threads, blocks * groups_per_block};
}

// ---- shared pieces ----------------------------------------------------------------------------
template <typename T>
DC_HD inline T weight_at(const T* w, int64_t c) { return w ? w[c] : T(1); }

// The cpu's row_max step: a NaN never replaces the running maximum.
template <typename T>
DC_HD inline T max_skipping_nan(T m, T v) { return v > m ? v : m; }

template <typename T, typename Group>
DC_HD inline T group_row_max(const T* xr, int64_t C, Group& g) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t c = g.lane; c < C; c += g.size) m = max_skipping_nan(m, xr[c]);
  return g.max(m);
}

// logsumexp from the row's max m and s = sum exp(x - m): a row of -inf (or +inf) gives
// exp(NaN) in s and so NaN, and an empty row -inf, as on the cpu.
template <typename T>
DC_HD inline T logsumexp_of(T m, double s) {
  return static_cast<T>(static_cast<double>(m) + ::log(s));
}

// ---- class-index targets: class_loss_forward --------------------------------------------------
template <typename T>
struct ClassLossRows {
  const T* x;               // [M, C] logits (lse != null) or log-probabilities (nll_loss)
  const int64_t* target;    // [M] in [0, C) or ignore_index
  const T* w;               // [C] or null (every weight 1)
  const double* sums;       // loss_sums' output: sums[0] = sum of w (C without w)
  T* loss;                  // [M]
  T* lse;                   // [M] or null
  int64_t C, ignore_index;
  T eps;                    // label smoothing
};

// One non-ignored row's loss from its logsumexp l (0 for log-probabilities) and
// dot = sum_c w[c] * x[c] (needed only with smoothing), in the cpu's expression:
//   (1 - eps) * w[t] * (l - x[t]) + eps / C * (l * sum(w) - dot)
template <typename T>
DC_HD inline T class_row_loss(T eps, int64_t C, T wsum, T l, T x_t, T w_t, double dot) {
  T v = (T(1) - eps) * w_t * (l - x_t);
  if (eps != T(0)) v += eps / T(C) * (l * wsum - static_cast<T>(dot));
  return v;
}

// Row r: lse[r] (logits), loss[r] (0 when ignored). Lane 0 writes.
template <typename T, typename Group, typename Exp>
DC_HD inline void class_loss_row(const ClassLossRows<T>& a, int64_t r, Group& g, Exp exp) {
  const T* xr = a.x + r * a.C;
  const int64_t t = a.target[r];
  const bool logits = a.lse != nullptr;
  const bool smooth = a.eps != T(0) && t != a.ignore_index;
  const T m = logits ? group_row_max(xr, a.C, g) : T(0);
  double s = 0, dot = 0;
  for (int64_t c = g.lane; c < a.C; c += g.size) {
    const T xc = xr[c];
    if (logits) s += static_cast<double>(exp(xc - m));
    if (smooth) dot += static_cast<double>(weight_at(a.w, c)) * static_cast<double>(xc);
  }
  T l = T(0);
  if (logits) {
    l = logsumexp_of(m, g.sum(s));
    if (g.lane == 0) a.lse[r] = l;
  }
  if (smooth) dot = g.sum(dot);
  if (g.lane != 0) return;
  a.loss[r] = t == a.ignore_index
                  ? T(0)
                  : class_row_loss(a.eps, a.C, static_cast<T>(a.sums[0]), l, xr[t],
                                   weight_at(a.w, t), dot);
}

// out[0] = sum_c w[c] (C without w), the smoothing term's sum(w); with a target,
// out[1] = sum over non-ignored rows of w[target] (1 without w): the mean's divisor that
// class_loss_forward returns. One group (a block) does both; lane 0 writes.
template <typename T, typename Group>
DC_HD inline void loss_sums(const T* w, int64_t C, const int64_t* target, int64_t M,
                            int64_t ignore_index, Group& g, double* out) {
  double ws = 0;
  if (w)
    for (int64_t c = g.lane; c < C; c += g.size) ws += static_cast<double>(w[c]);
  ws = w ? g.sum(ws) : static_cast<double>(C);
  double rs = 0;
  if (target) {
    for (int64_t r = g.lane; r < M; r += g.size)
      if (target[r] != ignore_index) rs += static_cast<double>(weight_at(w, target[r]));
    rs = g.sum(rs);
  }
  if (g.lane == 0) {
    out[0] = ws;
    if (target) out[1] = rs;
  }
}

// ---- the gradient and the target matrix, one element each ------------------------------------
template <typename T>
struct ClassElements {
  const int64_t* target;   // [M]
  const T* w;              // [C] or null
  int64_t C, ignore_index;
  T eps, soft;             // soft = eps / C, in T as on the cpu
};

// B[r, c] = (1 - eps) * w[t] * [c == t] + eps / C * w[c]; 0 on ignored rows. The cpu's order:
// the soft term, then the hard one added at the target.
template <typename T>
DC_HD inline T class_target_element(const ClassElements<T>& k, int64_t i) {
  const int64_t r = i / k.C, c = i - r * k.C, t = k.target[r];
  if (t == k.ignore_index) return T(0);
  T v = k.soft * weight_at(k.w, c);
  if (c == t) v += (T(1) - k.eps) * weight_at(k.w, t);
  return v;
}

// gx[r, c] = s * (A * softmax(x)[c] - B[r, c]), A = (1 - eps) * w[t] + eps / C * sum(w), as the
// cpu builds it: s * A * exp(x - lse), minus s * hard at the target, minus s * soft * w[c].
// `scale` has one value (scale_step 0) or one per row (scale_step 1).
template <typename T, typename Exp>
DC_HD inline T cross_entropy_grad_element(const ClassElements<T>& k, const T* x, const T* lse,
                                          const T* scale, int64_t scale_step, T wsum, int64_t i,
                                          Exp exp) {
  const int64_t r = i / k.C, c = i - r * k.C, t = k.target[r];
  if (t == k.ignore_index) return T(0);
  const T s = scale[r * scale_step];
  const T hard = (T(1) - k.eps) * weight_at(k.w, t);
  T g = s * (hard + k.soft * wsum) * exp(x[i] - lse[r]);
  if (c == t) g -= s * hard;
  if (k.soft != T(0)) g -= s * k.soft * weight_at(k.w, c);
  return g;
}

// ---- probability targets: prob_loss_forward --------------------------------------------------
template <typename T>
struct ProbLossRows {
  const T* x;        // [M, C] logits
  const T* target;   // [M, C] probabilities
  const T* w;        // [C] or null
  T* loss;           // [M]
  int64_t C;
  T keep, add;       // t' = t * keep + add: keep = 1 - eps, add = eps / C
};

// loss[r] = sum_c (t'[c] * w[c]) * (lse - x[c]), each term in T as on the cpu.
template <typename T, typename Group, typename Exp>
DC_HD inline void prob_loss_row(const ProbLossRows<T>& a, int64_t r, Group& g, Exp exp) {
  const T* xr = a.x + r * a.C;
  const T* tr = a.target + r * a.C;
  const T m = group_row_max(xr, a.C, g);
  double s = 0;
  for (int64_t c = g.lane; c < a.C; c += g.size)
    s += static_cast<double>(exp(xr[c] - m));
  const T l = logsumexp_of(m, g.sum(s));
  double v = 0;
  for (int64_t c = g.lane; c < a.C; c += g.size) {
    const T bc = (tr[c] * a.keep + a.add) * weight_at(a.w, c);
    v += static_cast<double>(bc * (l - xr[c]));
  }
  v = g.sum(v);
  if (g.lane == 0) a.loss[r] = static_cast<T>(v);
}

// ---- first_bad_target -------------------------------------------------------------------------
// The first r of first, first + step, ... below M whose target is outside [0, C) and not
// ignore_index, or M: the first over all threads is the minimum of their answers.
DC_HD inline int64_t first_bad_in_stride(const int64_t* target, int64_t M, int64_t C,
                                         int64_t ignore_index, int64_t first, int64_t step) {
  for (int64_t r = first; r < M; r += step) {
    const int64_t t = target[r];
    if (t != ignore_index && (t < 0 || t >= C)) return r;
  }
  return M;
}

}  // namespace dc::cuda_kernels
