#pragma once
// Note [CUDA convolution as implicit GEMM]
// Each pass of a convolution (kernels/cpu/conv.h's contract) is, per group, one GEMM
//     out (M x cols) = A (M x R) @ B (R x cols)
// whose operands are never built: the tiled kernel (conv.cu) asks the pass's map below for the
// element offsets of A, B and out, and B's offset may be "zero" (-1), a tap in the padding or
// between the strides. With Kg = K / groups, Cg = C / groups, ckk = Cg * KH * KW:
//
//   pass          M    cols            R               A        B                   out
//   forward       Kg   (n, oh, ow)     (c, kh, kw)     w        x at the tap        y
//   grad input    Cg   (n, h, w)       (k, kh, kw)     w        gy where it lands   gx
//   grad weight   Kg   (c, kh, kw)     (n, oh, ow)     gy       x at the tap        gw
//
// The forward reads x[n, c, oh sh - ph + kh dh, ow sw - pw + kw dw]; the input gradient reads
// gy[n, k, oh, ow] with oh = (h + ph - kh dh) / sh when that divides exactly and lands inside
// (ow likewise); the weight gradient reads the forward's taps with the roles of rows and
// columns swapped. B's offset is split into a column part (a Window: what a kernel thread
// computes once, since its column is fixed over the reduction) and a row part (a Tap), joined
// by b_offset. A and out are linear in the row m: offset(column or reduction index) + m * stride.
//
// The weight gradient reduces over N * OH * OW, far longer than its K x ckk output has tiles
// (a 3 -> 64 7x7 stem: 3 tiles, 401,408 terms at batch 32 on 112x112). It is split into
// chunks of the reduction, each written whole to its own slice of a scratch buffer and summed
// in split order afterwards: no atomics, and the split count depends only on the shape
// (kWeightGradTargetBlocks, not the device's SM count), so a result is the same on every run
// and every GPU.
//
// This header is plain C++ where nvcc does not compile it: tests/cpp/test_cuda_conv.cpp runs a
// naive GEMM through these maps against a naive 7-loop convolution and its two adjoints, and
// the pooling window rules below against the cpu pooling kernels.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <vector>

#include "kernels/cpu/conv.h"
#include "kernels/cpu/pool.h"
#include "kernels/host_device.h"

namespace dc::cuda_kernels {

// ConvGeom's sizes as plain fields (its helpers are host functions, device code cannot call
// them).
struct ConvShape {
  int64_t N, C, H, W, K, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, groups, Cg, Kg;
  DC_HD int64_t ckk() const { return Cg * KH * KW; }
};

inline ConvShape conv_shape(const cpu::ConvGeom& g) {
  return {g.N,  g.C,  g.H,  g.W,  g.K,  g.KH,     g.KW,   g.OH,   g.OW,
          g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups, g.Cg(), g.Kg()};
}

// The sizes of one group's GEMM.
struct ConvGemmDims {
  int64_t M, cols, R;
};

// ---- the taps of x (forward B, weight-gradient B) ----------------------------------------------

// An output pixel (n, oh, ow) of group grp: the offset of its image's first channel of the group
// in x, and its window's top-left tap (oh sh - ph, ow sw - pw), which may lie in the padding.
struct XWindow {
  int64_t base, h, w;
};
// A kernel tap (c, kh, kw): c H W and the dilated offsets kh dh, kw dw.
struct XTap {
  int64_t chan, h, w;
};

DC_HD inline XWindow x_window(const ConvShape& s, int64_t grp, int64_t pixel) {
  const int64_t ow = pixel % s.OW, rest = pixel / s.OW;
  const int64_t oh = rest % s.OH, n = rest / s.OH;
  return {(n * s.C + grp * s.Cg) * s.H * s.W, oh * s.sh - s.ph, ow * s.sw - s.pw};
}

DC_HD inline XTap x_tap(const ConvShape& s, int64_t tap) {
  const int64_t kw = tap % s.KW, rest = tap / s.KW;
  const int64_t kh = rest % s.KH, c = rest / s.KH;
  return {c * s.H * s.W, kh * s.dh, kw * s.dw};
}

// The offset in x of tap `t` of window `win`, or -1 where it falls in the padding.
DC_HD inline int64_t x_offset(const ConvShape& s, const XWindow& win, const XTap& t) {
  const int64_t ih = win.h + t.h, iw = win.w + t.w;
  if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) return -1;
  return win.base + t.chan + ih * s.W + iw;
}

// ---- the taps of gy (input-gradient B) ---------------------------------------------------------

// An input pixel (n, h, w) of group grp: the offset of its image's first output channel of the
// group in gy, and (h + ph, w + pw), from which a tap's oh sh is what remains.
struct GyWindow {
  int64_t base, h, w;
};
// A reduction index (k, kh, kw) of the input gradient: k OH OW, kh dh, kw dw.
struct GyTap {
  int64_t chan, h, w;
};

DC_HD inline GyWindow gy_window(const ConvShape& s, int64_t grp, int64_t pixel) {
  const int64_t w = pixel % s.W, rest = pixel / s.W;
  const int64_t h = rest % s.H, n = rest / s.H;
  return {(n * s.K + grp * s.Kg) * s.OH * s.OW, h + s.ph, w + s.pw};
}

DC_HD inline GyTap gy_tap(const ConvShape& s, int64_t r) {
  const int64_t kw = r % s.KW, rest = r / s.KW;
  const int64_t kh = rest % s.KH, k = rest / s.KH;
  return {k * s.OH * s.OW, kh * s.dh, kw * s.dw};
}

// The offset in gy of the output that input pixel `win` feeds through tap `t`, or -1 where no
// output does (before the first, between the strides, or past the last).
DC_HD inline int64_t gy_offset(const ConvShape& s, const GyWindow& win, const GyTap& t) {
  const int64_t th = win.h - t.h, tw = win.w - t.w;
  if (th < 0 || tw < 0 || th % s.sh != 0 || tw % s.sw != 0) return -1;
  const int64_t oh = th / s.sh, ow = tw / s.sw;
  if (oh >= s.OH || ow >= s.OW) return -1;
  return win.base + t.chan + oh * s.OW + ow;
}

// ---- the three GEMMs ---------------------------------------------------------------------------
// A[m, r] at a_offset(grp, r) + m * a_row_stride(); B[r, j] at b_offset(column(grp, j),
// row(grp, r)), -1 for zero; out[m, j] at out_offset(grp, j) + m * out_row_stride().

// y (N, K, OH, OW) = w (K, Cg, KH, KW) applied to x (N, C, H, W); bias row m is channel
// grp Kg + m.
struct ConvForwardMap {
  ConvShape s;
  using Column = XWindow;
  using Row = XTap;
  DC_HD ConvGemmDims dims() const { return {s.Kg, s.N * s.OH * s.OW, s.ckk()}; }
  DC_HD int64_t a_offset(int64_t grp, int64_t r) const { return grp * s.Kg * s.ckk() + r; }
  DC_HD int64_t a_row_stride() const { return s.ckk(); }
  DC_HD Column column(int64_t grp, int64_t j) const { return x_window(s, grp, j); }
  DC_HD Row row(int64_t grp, int64_t r) const { return x_tap(s, r); }
  DC_HD int64_t b_offset(const Column& c, const Row& r) const { return x_offset(s, c, r); }
  DC_HD int64_t out_offset(int64_t grp, int64_t j) const {
    const int64_t n = j / (s.OH * s.OW), pixel = j % (s.OH * s.OW);
    return (n * s.K + grp * s.Kg) * s.OH * s.OW + pixel;
  }
  DC_HD int64_t out_row_stride() const { return s.OH * s.OW; }
};

// gx (N, C, H, W) from gy (N, K, OH, OW) and w: row m is input channel c of the group, so A is
// w read across its first two dims (w[grp Kg + k, c, kh, kw]).
struct ConvGradInputMap {
  ConvShape s;
  using Column = GyWindow;
  using Row = GyTap;
  DC_HD ConvGemmDims dims() const { return {s.Cg, s.N * s.H * s.W, s.Kg * s.KH * s.KW}; }
  DC_HD int64_t a_offset(int64_t grp, int64_t r) const {
    const int64_t khw = s.KH * s.KW;
    return (grp * s.Kg + r / khw) * s.ckk() + r % khw;
  }
  DC_HD int64_t a_row_stride() const { return s.KH * s.KW; }
  DC_HD Column column(int64_t grp, int64_t j) const { return gy_window(s, grp, j); }
  DC_HD Row row(int64_t grp, int64_t r) const { return gy_tap(s, r); }
  DC_HD int64_t b_offset(const Column& c, const Row& r) const { return gy_offset(s, c, r); }
  DC_HD int64_t out_offset(int64_t grp, int64_t j) const {
    const int64_t n = j / (s.H * s.W), pixel = j % (s.H * s.W);
    return (n * s.C + grp * s.Cg) * s.H * s.W + pixel;
  }
  DC_HD int64_t out_row_stride() const { return s.H * s.W; }
};

// gw (K, Cg, KH, KW) = sum over (n, oh, ow) of gy[n, k, oh, ow] x[the tap]: the forward's taps
// with columns the kernel taps and the reduction over output pixels.
struct ConvGradWeightMap {
  ConvShape s;
  using Column = XTap;
  using Row = XWindow;
  DC_HD ConvGemmDims dims() const { return {s.Kg, s.ckk(), s.N * s.OH * s.OW}; }
  DC_HD int64_t a_offset(int64_t grp, int64_t r) const {
    const int64_t n = r / (s.OH * s.OW), pixel = r % (s.OH * s.OW);
    return (n * s.K + grp * s.Kg) * s.OH * s.OW + pixel;
  }
  DC_HD int64_t a_row_stride() const { return s.OH * s.OW; }
  DC_HD Column column(int64_t grp, int64_t j) const { return x_tap(s, j); }
  DC_HD Row row(int64_t grp, int64_t r) const { return x_window(s, grp, r); }
  DC_HD int64_t b_offset(const Column& c, const Row& r) const { return x_offset(s, r, c); }
  DC_HD int64_t out_offset(int64_t grp, int64_t j) const { return grp * s.Kg * s.ckk() + j; }
  DC_HD int64_t out_row_stride() const { return s.ckk(); }
};

// ---- the launch --------------------------------------------------------------------------------

// The tiled kernel's blocking, gemm.cu's: a 64 x 64 tile of out per block of 256 threads, each
// thread 4 x 4 outputs, the reduction staged in slices of 16.
constexpr int kConvTileM = 64, kConvTileN = 64, kConvSlice = 16, kConvThreads = 256;
// The weight gradient splits its reduction until about this many blocks are busy (about four
// 256-thread blocks per SM of an A100 or H100), but never into chunks shorter than
// kMinSplitChunk terms, which would spend more on writing and summing partial tiles than on
// the products. A fixed number, not the SM count: the split, hence the rounding, is the same on
// every GPU.
constexpr int64_t kWeightGradTargetBlocks = 512, kMinSplitChunk = 256;
constexpr int64_t kMaxGridX = 2147483647, kMaxGridYZ = 65535;

// The grid of one pass. The kernel loops past the grid (tiles over grid.x and grid.y, groups x
// splits over grid.z), so the caps of the grid's dims never limit the shapes.
struct ConvGemmPlan {
  int64_t row_tiles = 0, col_tiles = 0;
  int64_t splits = 1, chunk = 0;  // the reduction [0, R) in `splits` chunks of `chunk` terms
  int64_t grid_x = 0, grid_y = 0, grid_z = 0;  // grid_x == 0: nothing to launch

  // The reduction range [begin, end) of split `split`.
  DC_HD int64_t chunk_begin(int64_t split) const { return split * chunk; }
  DC_HD int64_t chunk_end(int64_t split, int64_t R) const {
    const int64_t e = (split + 1) * chunk;
    return e < R ? e : R;
  }
};

// The plan of a pass with dims `d` per group; split_target > 0 lets the reduction split until
// about that many blocks are busy (the weight gradient), 0 keeps it whole.
inline ConvGemmPlan plan_conv_gemm(const ConvGemmDims& d, int64_t groups, int64_t split_target) {
  ConvGemmPlan p;
  if (d.M <= 0 || d.cols <= 0 || groups <= 0) return p;  // an empty output
  p.row_tiles = (d.M + kConvTileM - 1) / kConvTileM;
  p.col_tiles = (d.cols + kConvTileN - 1) / kConvTileN;
  p.chunk = d.R;
  const int64_t tiles = p.row_tiles * p.col_tiles * groups;
  if (split_target > 0 && tiles < split_target && d.R >= 2 * kMinSplitChunk) {
    const int64_t want = std::min((split_target + tiles - 1) / tiles, d.R / kMinSplitChunk);
    if (want > 1) {
      // chunks of whole slices; the last one may be shorter, none is empty
      const int64_t per = (d.R + want - 1) / want;
      p.chunk = (per + kConvSlice - 1) / kConvSlice * kConvSlice;
      p.splits = (d.R + p.chunk - 1) / p.chunk;
    }
  }
  p.grid_x = std::min(p.col_tiles, kMaxGridX);
  p.grid_y = std::min(p.row_tiles, kMaxGridYZ);
  p.grid_z = std::min(groups * p.splits, kMaxGridYZ);
  return p;
}

// ---- one thread's part of a tile (conv.cu's conv_gemm_tiled) -----------------------------------
// The kernel's 256 threads load a slice of A and B into shared memory, multiply it into their
// 4 x 4 accumulators, and store the tile; these are one thread's (tid's) share of each step, so
// the host can run all 256 shares of a block between the steps where the kernel synchronises.

// Per slice each thread loads 4 elements of A, rows a_m + kARowStep i of column a_r of the
// slice (neighbouring threads: neighbouring r, along w or gy), and 4 of B, rows
// b_r + kBRowStep i of column b_j of the tile (neighbouring threads: neighbouring columns,
// along the image).
constexpr int kARowStep = kConvThreads / kConvSlice, kBRowStep = kConvThreads / kConvTileN;
static_assert(kConvTileM == 4 * kARowStep && kConvSlice == 4 * kBRowStep,
              "4 loads of each operand per thread and slice");
static_assert(kConvThreads == (kConvTileM / 4) * (kConvTileN / 4), "4 x 4 outputs per thread");

// The tile column whose B elements thread tid loads; its window is fixed over the reduction.
DC_HD inline int b_load_column(int tid) { return tid % kConvTileN; }

// As[r - k0][m - m0] = A[m, r] for the slice [k0, k0 + 16) of rows [m0, m0 + 64), zero past M
// or past r_end. As has a padding column: the stores walk a column of it (bank conflicts).
template <typename T, typename Map>
DC_HD inline void load_a_slice(const Map& map, const ConvGemmDims& d, const T* a, int64_t grp,
                               int64_t m0, int64_t k0, int64_t r_end, int tid,
                               T (*As)[kConvTileM + 1]) {
  const int a_r = tid % kConvSlice, a_m = tid / kConvSlice;
  const int64_t r = k0 + a_r;
  const int64_t base = r < r_end ? map.a_offset(grp, r) : 0;
  const int64_t stride = map.a_row_stride();
  DC_UNROLL(4)
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + a_m + kARowStep * i;
    As[a_r][a_m + kARowStep * i] = (r < r_end && m < d.M) ? a[base + m * stride] : T(0);
  }
}

// Bs[r - k0][j - n0] = B[r, j] for the slice [k0, k0 + 16) and tid's column j = n0 +
// b_load_column(tid), whose window is `column` (col_inside: j < cols); zero past r_end, past
// the columns, and where the map says the tap is zero.
template <typename T, typename Map>
DC_HD inline void load_b_slice(const Map& map, const T* b, int64_t grp,
                               const typename Map::Column& column, bool col_inside, int64_t k0,
                               int64_t r_end, int tid, T (*Bs)[kConvTileN]) {
  const int b_j = b_load_column(tid), b_r = tid / kConvTileN;
  DC_UNROLL(4)
  for (int i = 0; i < 4; ++i) {
    const int64_t r = k0 + b_r + kBRowStep * i;
    int64_t at = -1;
    if (col_inside && r < r_end) at = map.b_offset(column, map.row(grp, r));
    Bs[b_r + kBRowStep * i][b_j] = at >= 0 ? b[at] : T(0);
  }
}

// acc[i][j] += the slice's products for tid's outputs: rows ty * 4 + i, columns tx * 4 + j.
template <typename T>
DC_HD inline void multiply_slice(const T (*As)[kConvTileM + 1], const T (*Bs)[kConvTileN],
                                 int tid, T (&acc)[4][4]) {
  const int tx = tid % (kConvTileN / 4), ty = tid / (kConvTileN / 4);
  DC_UNROLL(16)
  for (int k = 0; k < kConvSlice; ++k) {
    T av[4], bv[4];
    DC_UNROLL(4)
    for (int i = 0; i < 4; ++i) av[i] = As[k][ty * 4 + i];
    DC_UNROLL(4)
    for (int j = 0; j < 4; ++j) bv[j] = Bs[k][tx * 4 + j];
    DC_UNROLL(4)
    for (int i = 0; i < 4; ++i) {
      DC_UNROLL(4)
      for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
    }
  }
}

// Writes tid's outputs of the tile at (m0, n0) of group grp inside the output, into out (the
// output, or one split's slice of partial sums); bias (forward only, else nullptr): row m of
// group grp is output channel grp * M + m (M == Kg).
template <typename T, typename Map>
DC_HD inline void store_tile(const Map& map, const ConvGemmDims& d, int64_t grp, int64_t m0,
                             int64_t n0, int tid, const T (&acc)[4][4], const T* bias, T* out) {
  const int tx = tid % (kConvTileN / 4), ty = tid / (kConvTileN / 4);
  const int64_t stride = map.out_row_stride();
  DC_UNROLL(4)
  for (int j = 0; j < 4; ++j) {
    const int64_t n = n0 + tx * 4 + j;
    if (n >= d.cols) continue;
    T* o = out + map.out_offset(grp, n);
    DC_UNROLL(4)
    for (int i = 0; i < 4; ++i) {
      const int64_t m = m0 + ty * 4 + i;
      if (m >= d.M) continue;
      o[m * stride] = bias ? acc[i][j] + bias[grp * d.M + m] : acc[i][j];
    }
  }
}

// ---- pooling (pool.cu; windows as kernels/cpu/pool.h) -----------------------------------------

// Output (oh, ow)'s window of one plane: rows h0 + i dh (i < hn), columns w0 + j dw (j < wn).
struct PoolWindow {
  int64_t h0, hn, w0, wn;
};

// The windows of every output, packed for one upload: h0 (OH) | hn (OH) | w0 (OW) | wn (OW).
inline std::vector<int64_t> pack_pool_windows(const cpu::PoolWindows& p) {
  std::vector<int64_t> v;
  v.reserve(2 * (p.OH + p.OW));
  v.insert(v.end(), p.h0.begin(), p.h0.end());
  v.insert(v.end(), p.hn.begin(), p.hn.end());
  v.insert(v.end(), p.w0.begin(), p.w0.end());
  v.insert(v.end(), p.wn.begin(), p.wn.end());
  return v;
}

DC_HD inline PoolWindow packed_pool_window(const int64_t* packed, int64_t OH, int64_t OW,
                                           int64_t oh, int64_t ow) {
  return {packed[oh], packed[OH + oh], packed[2 * OH + ow], packed[2 * OH + OW + ow]};
}

// Whether the max pool's running best (v_best at index arg, -1 before any tap) gives way to v:
// the first maximum wins, but a NaN replaces anything, so the last NaN wins (torch's rule, and
// cpu::max_pool2d_forward's).
template <typename T>
DC_HD inline bool max_pool_takes(T v, T best, int64_t arg) {
  return v > best || v != v || arg < 0;
}

// The max and its index h * W + w over window `win` of plane xp (W columns); an empty window
// gives -inf and -1.
template <typename T>
DC_HD inline void max_pool_window(const T* xp, int64_t W, int64_t dh, int64_t dw,
                                  const PoolWindow& win, T* y, int64_t* idx) {
  T best = -std::numeric_limits<T>::infinity();
  int64_t arg = -1;
  for (int64_t i = 0; i < win.hn; ++i) {
    const int64_t h = win.h0 + i * dh;
    for (int64_t j = 0; j < win.wn; ++j) {
      const int64_t at = h * W + win.w0 + j * dw;
      const T v = xp[at];
      if (max_pool_takes(v, best, arg)) best = v, arg = at;
    }
  }
  *y = best;
  *idx = arg;
}

// 1 / the divisor of output (oh, ow), rounded as the cpu rounds it: the divisor in double,
// then T, then the reciprocal in T.
template <typename T>
DC_HD inline T avg_pool_scale(double divisor_override, double hdiv, double wdiv) {
  return T(1) / T(divisor_override > 0 ? divisor_override : hdiv * wdiv);
}

// The sum over window `win` of plane xp in the cpu's order (rows, then columns), times scale.
template <typename T>
DC_HD inline T avg_pool_window(const T* xp, int64_t W, int64_t dh, int64_t dw,
                               const PoolWindow& win, T scale) {
  T acc = 0;
  for (int64_t i = 0; i < win.hn; ++i) {
    const T* row = xp + (win.h0 + i * dh) * W + win.w0;
    for (int64_t j = 0; j < win.wn; ++j) acc += row[j * dw];
  }
  return acc * scale;
}

// For each input position l < L, the outputs whose windows (first[o] + i step, i < count[o])
// tap it, ascending: outputs[offsets[l] .. offsets[l + 1]). The average pool's gradient
// gathers through these lists (a thread per input element, no atomics).
struct TapLists {
  std::vector<int64_t> offsets, outputs;
};

inline TapLists windows_tapping(const std::vector<int64_t>& first,
                                const std::vector<int64_t>& count, int64_t step, int64_t L) {
  TapLists t;
  t.offsets.assign(L + 1, 0);
  const int64_t O = static_cast<int64_t>(first.size());
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < count[o]; ++i) ++t.offsets[first[o] + i * step + 1];
  for (int64_t l = 0; l < L; ++l) t.offsets[l + 1] += t.offsets[l];
  t.outputs.resize(t.offsets[L]);
  std::vector<int64_t> fill(t.offsets.begin(), t.offsets.end() - 1);
  for (int64_t o = 0; o < O; ++o)  // o ascending, so every list is too
    for (int64_t i = 0; i < count[o]; ++i) t.outputs[fill[first[o] + i * step]++] = o;
  return t;
}

// The tap lists of the rows and of the columns, packed for one upload:
//   row offsets (H + 1) | column offsets (W + 1) | row outputs | column outputs
// each offsets array indexing its own outputs array; TapListParts says where the parts start.
struct TapListParts {
  int64_t col_offsets = 0, row_outputs = 0, col_outputs = 0;
};
struct PackedTapLists {
  std::vector<int64_t> data;
  TapListParts at;
};

inline PackedTapLists pack_tap_lists(const cpu::PoolWindows& p) {
  const TapLists rows = windows_tapping(p.h0, p.hn, p.dh, p.H);
  const TapLists cols = windows_tapping(p.w0, p.wn, p.dw, p.W);
  PackedTapLists t;
  t.at.col_offsets = p.H + 1;
  t.at.row_outputs = t.at.col_offsets + p.W + 1;
  t.at.col_outputs = t.at.row_outputs + static_cast<int64_t>(rows.outputs.size());
  t.data.reserve(t.at.col_outputs + cols.outputs.size());
  for (const auto* part : {&rows.offsets, &cols.offsets, &rows.outputs, &cols.outputs})
    t.data.insert(t.data.end(), part->begin(), part->end());
  return t;
}

// The outputs whose windows tap one input row (or column): n of them from `outputs` on.
struct TapSpan {
  const int64_t* outputs;
  int64_t n;
};

DC_HD inline TapSpan row_taps(const int64_t* packed, const TapListParts& at, int64_t h) {
  return {packed + at.row_outputs + packed[h], packed[h + 1] - packed[h]};
}

DC_HD inline TapSpan col_taps(const int64_t* packed, const TapListParts& at, int64_t w) {
  const int64_t* offsets = packed + at.col_offsets;
  return {packed + at.col_outputs + offsets[w], offsets[w + 1] - offsets[w]};
}

// a * b rounded on its own. nvcc fuses a product into the add that follows it (an FMA, one
// rounding) unless told not to; the cpu kernels round the product first.
template <typename T>
DC_HD inline T product_rounded(T a, T b) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == sizeof(float)) return __fmul_rn(a, b);
  else return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// The gradient of input element (h, w) of one plane: the sum of gyp[oh OW + ow] scale(oh, ow)
// over the windows that tap it, oh over rows (row_taps(h)) outer, ow over cols (col_taps(w))
// inner, both ascending. That is the order in which cpu::avg_pool2d_backward adds them into
// the element (its windows loop oh, then ow), so the sums round alike. hdiv and wdiv are not
// read under divisor_override.
template <typename T>
DC_HD inline T avg_pool_input_grad(const T* gyp, int64_t OW, const TapSpan& rows,
                                   const TapSpan& cols, double divisor_override,
                                   const double* hdiv, const double* wdiv) {
  T acc = 0;
  for (int64_t a = 0; a < rows.n; ++a) {
    const int64_t oh = rows.outputs[a];
    const double hd = divisor_override > 0 ? 0.0 : hdiv[oh];
    for (int64_t b = 0; b < cols.n; ++b) {
      const int64_t ow = cols.outputs[b];
      const double wd = divisor_override > 0 ? 0.0 : wdiv[ow];
      acc += product_rounded(gyp[oh * OW + ow], avg_pool_scale<T>(divisor_override, hd, wd));
    }
  }
  return acc;
}

}  // namespace dc::cuda_kernels
