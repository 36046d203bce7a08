// Convolutions as im2col tiles + GEMM: the algorithm that computes every shape.
//
// Note [Convolution as tiled GEMM]
// Per image n and group g the convolution is one matrix product
//     y[n, g] (Kg, OH*OW) = w[g] (Kg, Cg*KH*KW) @ col (Cg*KH*KW, OH*OW)
// where col is the im2col matrix of x[n, g] (row (c, kh, kw), column (oh, ow)). A full col is
// KH*KW times the image (7 MB for a 64-channel 56x56 image with a 3x3 kernel), so it is built
// in column tiles of P output pixels sized to stay in L2 (kTileBytes), and each tile is one
// GEMM call writing straight into y with y's row stride: the im2col copy of a tile is still
// warm when the GEMM packs it. The tiles are written by the same segment pack as the implicit
// GEMM (SegmentPacker, conv_common.h). The input gradient is the adjoint: a col tile
// w[g]^T @ gy tile, scattered back by col2im; the weight gradient reduces gy tile @ col^T over
// the tiles. Which shapes take this path: Note [Choosing a convolution algorithm] in conv.cpp.
//
// Threading: forward work items are (n, g, tile), all independent. The input gradient writes
// overlapping input pixels from neighbouring tiles (col2im), so its items are whole (n, g)
// images (for_image_groups). The weight gradient sums over the batch in a fixed number of
// parts (weight_grad_by_parts), so the result is bit-identical whatever the number of threads.
// Small images (the deep layers of a CNN) are batched several to a GEMM; see images_per_gemm.
#include <cstring>

#include "kernels/cpu/conv_common.h"

namespace dc::cpu::conv_detail {
namespace {

// Bytes of one im2col tile: about a quarter of the 2 MB L2, leaving room for the packed GEMM
// operands. The backward-weight GEMM reduces over the tile (K = P), so it uses bigger tiles
// to keep its read-modify-write of C rare.
constexpr int64_t kTileBytes = 512 * 1024;
constexpr int64_t kWeightTileBytes = 1024 * 1024;

// Columns per tile: a multiple of 16 (whole GEMM micro-panels), at least 32, at most OH*OW,
// and the image's pixels shared evenly between its tiles: a thin last tile (32 of a 16x16
// image's 256 pixels after a 224-pixel one) costs the weight gradient a whole read-modify-write
// of its (K, ckk) sum for a few pixels.
int64_t tile_cols(const ConvGeom& g, int64_t bytes, int64_t elem) {
  const int64_t ohw = g.OH * g.OW;
  int64_t p = bytes / std::max<int64_t>(1, g.ckk() * elem);
  p = std::max<int64_t>(32, p / 16 * 16);
  if (p >= ohw) return ohw;
  const int64_t tiles = (ohw + p - 1) / p;
  return std::min(p, ((ohw + tiles - 1) / tiles + 15) / 16 * 16);
}

// Images per GEMM: when an image has few output pixels (a ResNet's 512-channel 4x4 layer has
// 16), one GEMM per image is too skinny to run near peak, so B images are laid side by side in
// the GEMM's columns: col (ckk, B*OHW) and the output staged in (Kg, B*OHW), then copied to
// NCHW. Only for groups == 1 and kernels that need im2col; B keeps at least kBatchColumns
// columns per GEMM when the batch allows.
constexpr int64_t kBatchColumns = 512;
// Forward and grad_input compute each output element with the same reduction whatever the
// batching, so their results do not change with it; grad_weight sums over the pixels, so it
// batches only the smallest images (<= kWeightBatchPixels) to keep its sums as unbatched ones
// for everything else.
constexpr int64_t kBatchPixels = 128, kWeightBatchPixels = 64;
int64_t images_per_gemm(const ConvGeom& g, int64_t tile_bytes, int64_t elem,
                        int64_t max_pixels = kBatchPixels) {
  const int64_t ohw = g.OH * g.OW;
  if (g.groups != 1 || g.pointwise() || ohw == 0 || g.N < 2 || ohw > max_pixels) return 1;
  const int64_t budget = std::max(kBatchColumns, tile_bytes / std::max<int64_t>(1, g.ckk() * elem));
  return std::max<int64_t>(1, std::min<int64_t>(g.N, budget / ohw));
}

// images_per_gemm for forward and grad_input, capped so that every thread gets a block: their
// im2col / col2im run on the block's thread, and one block would leave them serial. Their
// results do not depend on the batching (see above), so neither on the thread count.
int64_t images_per_gemm_threaded(const ConvGeom& g, int64_t elem) {
  const int64_t B = images_per_gemm(g, kTileBytes, elem);
  const int64_t nt = get_num_threads();
  return std::min(B, std::max<int64_t>(1, (g.N + nt - 1) / nt));
}

// dst (rows, nb*ohw) <- images [n0, n0+nb) of src (N, rows, ohw): the staging layout above.
template <typename T>
void gather_images(const T* src, int64_t rows, int64_t ohw, int64_t n0, int64_t nb, T* dst) {
  const int64_t ld = nb * ohw;
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(dst + r * ld + i * ohw, src + ((n0 + i) * rows + r) * ohw, sizeof(T) * ohw);
}

// Calls f(row, ih, ow0, ow_lo, ow_hi, ow1, col_offset) for every output-row segment of the
// tile [p0, p0 + P) of im2col row (c, kh, kw): output columns [ow0, ow1) of output row oh sit at
// col_offset.. in the tile, and of those only [ow_lo, ow_hi) read an input pixel (ih in
// range, iw = ow * sw - pw + kw * dw in [0, W)); ih < 0 or >= H means the whole segment is
// padding.
template <typename F>
void for_each_segment(const ConvGeom& g, int64_t kh, int64_t kw, int64_t p0, int64_t P, F&& f) {
  const int64_t off = kw * g.dw - g.pw;
  // ow * sw + off in [0, W - 1]  <=>  ow in [ceil(-off / sw), floor((W - 1 - off) / sw)]
  const int64_t lo = -floor_div(off, g.sw), hi = floor_div(g.W - 1 - off, g.sw) + 1;
  for (int64_t p = p0; p < p0 + P;) {
    const int64_t oh = p / g.OW, ow0 = p % g.OW;
    const int64_t ow1 = std::min(g.OW, ow0 + (p0 + P - p));
    const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
    const int64_t a = std::clamp(lo, ow0, ow1), b = std::clamp(hi, a, ow1);
    f(ih, ow0, a, b, ow1, p - p0, off);
    p += ow1 - ow0;
  }
}

// gx (Cg, H, W) += col2im of the tile col (ckk, P) covering output columns [p0, p0 + P).
template <typename T>
void col2im_tile(const ConvGeom& g, const T* col, int64_t p0, int64_t P, T* gx, int64_t ld = 0) {
  if (ld == 0) ld = P;  // row stride of col
  for (int64_t c = 0; c < g.Cg(); ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T* src = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        T* dst = gx + c * g.H * g.W;
        for_each_segment(g, kh, kw, p0, P,
                         [&](int64_t ih, int64_t ow0, int64_t a, int64_t b, int64_t,
                             int64_t at, int64_t off) {
                           if (ih < 0 || ih >= g.H) return;
                           const T* s = src + at - ow0;
                           T* d = dst + ih * g.W + off;
                           if (g.sw == 1)
                             for (int64_t ow = a; ow < b; ++ow) d[ow] += s[ow];
                           else
                             for (int64_t ow = a; ow < b; ++ow) d[ow * g.sw] += s[ow];
                         });
      }
}

// col (ckk, P) = the columns [p0, p0 + P) of im2col(x); x: one group of one image (Cg, H, W).
template <typename T>
void im2col_tile(const ConvGeom& g, const T* x, int64_t p0, int64_t P, T* col, int64_t ld = 0) {
  if (ld == 0) ld = P;  // row stride of col
  SegmentPacker<T> pack(g);
  for (int64_t p = p0; p < p0 + P;) {
    // At most 64 columns a segment: the segment pack's fast path.
    const int64_t oh = p / g.OW, ow = p % g.OW, len = std::min({g.OW - ow, p0 + P - p, int64_t(64)});
    pack({p - p0, len, x, oh * g.sh - g.ph, ow * g.sw - g.pw}, 0, g.ckk(), col, ld);
    p += len;
  }
}

template <typename T>
void forward_batched(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y, int64_t B) {
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W, ckk = g.ckk(), K = g.K;
  const int64_t blocks = (g.N + B - 1) / B;
  const int64_t grain = std::max<int64_t>(1, kMinFlopsPerTask / std::max<int64_t>(1, K * ckk * B * ohw));
  parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> col(ckk * B * ohw), out(K * B * ohw);
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t n0 = blk * B, nb = std::min(B, g.N - n0), ld = nb * ohw;
      for (int64_t i = 0; i < nb; ++i)
        im2col_tile(g, x + (n0 + i) * g.C * hw, 0, ohw, col.data() + i * ohw, ld);
      gemm(g, K, ld, ckk, T(1), w, ckk, 1, col.data(), ld, 1, T(0), out.data(), ld, 1);
      for (int64_t i = 0; i < nb; ++i)
        for (int64_t k = 0; k < K; ++k) {
          const T* src = out.data() + k * ld + i * ohw;
          T* dst = y + ((n0 + i) * K + k) * ohw;
          const T b = bias ? bias[k] : T(0);
          for (int64_t p = 0; p < ohw; ++p) dst[p] = src[p] + b;
        }
    }
  });
}

// gx[n, g] for one (n, g): col tile = w[g]^T (ckk, Kg) @ gy tile (Kg, P), then col2im.
template <typename T>
void backward_input_image(const ConvGeom& g, const T* gy, const T* w, T* gx, int64_t n,
                          int64_t grp, std::vector<T>& col, int64_t P) {
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W, ckk = g.ckk(), Kg = g.Kg();
  T* gxg = gx + (n * g.C + grp * g.Cg()) * hw;
  const T* gyg = gy + (n * g.K + grp * Kg) * ohw;
  const T* wg = w + grp * Kg * ckk;
  std::fill(gxg, gxg + g.Cg() * hw, T(0));
  for (int64_t p0 = 0; p0 < ohw; p0 += P) {
    const int64_t pn = std::min(P, ohw - p0);
    gemm(g, ckk, pn, Kg, T(1), wg, 1, ckk, gyg + p0, ohw, 1, T(0), col.data(), pn, 1);
    col2im_tile(g, col.data(), p0, pn, gxg);
  }
}

template <typename T>
void backward_input_batched(const ConvGeom& g, const T* gy, const T* w, T* gx, int64_t B) {
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W, ckk = g.ckk(), K = g.K;
  const int64_t blocks = (g.N + B - 1) / B;
  const int64_t grain = std::max<int64_t>(1, kMinFlopsPerTask / std::max<int64_t>(1, K * ckk * B * ohw));
  parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> col(ckk * B * ohw), gyt(K * B * ohw);
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t n0 = blk * B, nb = std::min(B, g.N - n0), ld = nb * ohw;
      gather_images(gy, K, ohw, n0, nb, gyt.data());
      // col (ckk, ld) = w^T (ckk, K) @ gy (K, ld)
      gemm(g, ckk, ld, K, T(1), w, 1, ckk, gyt.data(), ld, 1, T(0), col.data(), ld, 1);
      for (int64_t i = 0; i < nb; ++i) {
        T* gxi = gx + (n0 + i) * g.C * hw;
        std::fill(gxi, gxi + g.C * hw, T(0));
        col2im_tile(g, col.data() + i * ohw, 0, ohw, gxi, ld);
      }
    }
  });
}

// part (K, ckk) = sum over images [n0, n1) of gy[n, g] (Kg, OHW) @ im2col(x[n, g])^T.
template <typename T>
void backward_weight_part(const ConvGeom& g, const T* gy, const T* x, T* part, int64_t n0,
                          int64_t n1, int64_t P) {
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W, ckk = g.ckk(), Kg = g.Kg();
  if (const int64_t B = images_per_gemm(g, kWeightTileBytes, sizeof(T), kWeightBatchPixels);
      B > 1) {
    // part (K, ckk) = sum over blocks of gy (K, ld) @ col (ckk, ld)^T, blocks in image order.
    std::vector<T> col(ckk * B * ohw), gyt(g.K * B * ohw);
    for (int64_t b0 = n0; b0 < n1; b0 += B) {
      const int64_t nb = std::min(B, n1 - b0), ld = nb * ohw;
      gather_images(gy, g.K, ohw, b0, nb, gyt.data());
      for (int64_t i = 0; i < nb; ++i)
        im2col_tile(g, x + (b0 + i) * g.C * hw, 0, ohw, col.data() + i * ohw, ld);
      gemm(g, g.K, ckk, ld, T(1), gyt.data(), ld, 1, col.data(), 1, ld, b0 == n0 ? T(0) : T(1),
           part, ckk, 1);
    }
    return;
  }
  std::vector<T> col(ckk * P);
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* gyg = gy + (n * g.K + grp * Kg) * ohw;
      const T* xg = x + (n * g.C + grp * g.Cg()) * hw;
      T* pg = part + grp * Kg * ckk;
      const T beta = n == n0 ? T(0) : T(1);  // the part's first image overwrites
      for (int64_t p0 = 0; p0 < ohw; p0 += P) {
        const int64_t pn = std::min(P, ohw - p0);
        im2col_tile(g, xg, p0, pn, col.data());
        gemm(g, Kg, ckk, pn, T(1), gyg + p0, ohw, 1, col.data(), 1, pn,
             p0 == 0 ? beta : T(1), pg, ckk, 1);
      }
    }
}

}  // namespace

template <typename T>
void forward_im2col(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  if (const int64_t B = images_per_gemm_threaded(g, sizeof(T)); B > 1)
    return forward_batched(g, x, w, bias, y, B);
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W, ckk = g.ckk(), Kg = g.Kg(), G = g.groups;
  const int64_t P = tile_cols(g, kTileBytes, sizeof(T));
  const int64_t tiles = ohw ? (ohw + P - 1) / P : 0;
  const int64_t items = g.N * G * tiles;
  const int64_t grain = std::max<int64_t>(1, kMinFlopsPerTask / std::max<int64_t>(1, Kg * ckk * P));
  parallel_for(0, items, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> col(ckk * P);
    for (int64_t it = begin; it < end; ++it) {
      const int64_t t = it % tiles, ng = it / tiles, grp = ng % G, n = ng / G;
      const int64_t p0 = t * P, pn = std::min(P, ohw - p0);
      const T* xg = x + (n * g.C + grp * g.Cg()) * hw;
      T* yt = y + (n * g.K + grp * Kg) * ohw + p0;
      im2col_tile(g, xg, p0, pn, col.data());
      gemm(g, Kg, pn, ckk, T(1), w + grp * Kg * ckk, ckk, 1, col.data(), pn, 1, T(0), yt, ohw, 1);
      if (bias)
        for (int64_t k = 0; k < Kg; ++k) {
          const T b = bias[grp * Kg + k];
          for (int64_t p = 0; p < pn; ++p) yt[k * ohw + p] += b;
        }
    }
  });
}

template <typename T>
void backward_input_im2col(const ConvGeom& g, const T* gy, const T* w, T* gx) {
  if (const int64_t B = images_per_gemm_threaded(g, sizeof(T)); B > 1)
    return backward_input_batched(g, gy, w, gx, B);
  const int64_t P = tile_cols(g, kTileBytes, sizeof(T));
  for_image_groups(g, [&](int64_t begin, int64_t end) {
    std::vector<T> col(g.ckk() * P);
    for (int64_t it = begin; it < end; ++it)
      backward_input_image(g, gy, w, gx, it / g.groups, it % g.groups, col, P);
  });
}

template <typename T>
void backward_weight_im2col(const ConvGeom& g, const T* gy, const T* x, T* gw) {
  const int64_t P = tile_cols(g, kWeightTileBytes, sizeof(T));
  int64_t parts = weight_parts(g, sizeof(T));
  // Batched small images: each part should still give its GEMMs kBatchColumns columns to
  // reduce over, so fewer parts (still a function of the shape only, not of the threads).
  if (images_per_gemm(g, kWeightTileBytes, sizeof(T), kWeightBatchPixels) > 1)
    parts = std::min(parts, std::max<int64_t>(2, g.N * g.OH * g.OW / kBatchColumns));
  weight_grad_by_parts(g, parts, gw, [&](T* part, int64_t n0, int64_t n1) {
    backward_weight_part(g, gy, x, part, n0, n1, P);
  });
}

#define DC_INSTANTIATE(T)                                                                 \
  template void forward_im2col<T>(const ConvGeom&, const T*, const T*, const T*, T*);    \
  template void backward_input_im2col<T>(const ConvGeom&, const T*, const T*, T*);       \
  template void backward_weight_im2col<T>(const ConvGeom&, const T*, const T*, T*);
DC_INSTANTIATE(float)
DC_INSTANTIATE(double)
#undef DC_INSTANTIATE

}  // namespace dc::cpu::conv_detail
