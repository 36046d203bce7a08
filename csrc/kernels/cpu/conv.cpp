// 2-D convolution forward / backward-input / backward-weight on NCHW data.
//
// Note [Convolution as tiled GEMM]
// Per image n and group g the convolution is one matrix product
//     y[n, g] (Kg, OH*OW) = w[g] (Kg, Cg*KH*KW) @ col (Cg*KH*KW, OH*OW)
// where col is the im2col matrix of x[n, g] (row (c, kh, kw), column (oh, ow)). A full col is
// KH*KW times the image (7 MB for a 64-channel 56x56 image with a 3x3 kernel), so it is built
// in column tiles of P output pixels sized to stay in L2 (kTileBytes), and each tile is one
// GEMM call writing straight into y with y's row stride: the im2col copy of a tile is still
// warm when the GEMM packs it. A 1x1 kernel with unit stride and no padding needs no im2col:
// the NCHW image already is the (C, H*W) operand. The tiles are written by the same segment
// pack as the implicit GEMM below (SegmentPacker). This tiled path computes the forward pass
// of groups with few output channels and of 1x1 convolutions, the input gradient of strided
// convolutions and of groups with few input channels, and the weight gradient of grouped, 1x1
// and few-channel convolutions; the rest takes Note [Convolution as implicit GEMM] or Note
// [Weight gradient in channels-last].
//
// Threading: forward work items are (n, g, tile), all independent. backward_input writes
// overlapping input pixels from neighbouring tiles (col2im), so its items are whole (n, g)
// images; with fewer images than threads they run one after the other and the GEMM itself
// threads. backward_weight sums over the batch: the batch is cut into a fixed number of parts
// (kWeightParts, independent of the thread count), each part sums its images in order into its
// own buffer, and the parts are added in index order at the end, so the result is
// bit-identical whatever the number of threads. Small images (the deep layers of a CNN) are
// batched several to a GEMM; see images_per_gemm.
//
// Note [Convolution as implicit GEMM]
// The forward pass of a group with at least kMinImplicitRows output channels does not build
// im2col at all. The whole batch is one product per group,
//     y[:, g] (Kg, N*OH*OW) = w[g] (Kg, ckk) @ col (ckk, N*OH*OW),
// run with the GEMM's own micro-kernel and blocking (gemm_blocks): the weights are packed into
// the micro-kernel's A panels once per call, and each KC x NR micro-panel of B is packed
// straight from x (pack_im2col), so the im2col matrix only ever exists one L1-sized panel at a
// time, and every pixel of the batch is one column whatever the image size (no per-image GEMMs
// that are too skinny for the small deep-layer images). Columns run over (n, oh, ow), so a
// micro-tile of C is contiguous in y unless it crosses into the next image; when some would,
// a column block accumulates in a staging buffer that is copied out once. Threads take whole
// column blocks (at most NC wide, about four per thread) from a dynamic schedule, each with
// its own B pack: on a shared machine one core can run much slower than the other for a
// while, and a static split would leave the fast one waiting.
// With unit stride, the input gradient is the same kind of convolution, of gy with the
// weights flipped and transposed (backward_input_as_conv), so it takes this path too.
//
// Note [Weight gradient in channels-last]
// The weight gradient reduces over the pixels, gw (K, C KH KW) = gy (K, P) @ im2col(x)^T, and
// the pixels are the unit-stride axis of both NCHW operands, while the micro-kernel wants
// its panels k-major (for each pixel, MR values of A and NR of B). Through im2col that is a
// transpose of every im2col element: KH*KW times the image. With groups == 1 it is done once
// instead: x is transposed into a zero-padded channels-last copy xt (H + 2 ph, W + 2 pw, C per
// image), and the columns are ordered (kh, kw, c), so row t of a B micro-panel (pixel t, NR
// columns of one tap) is NR consecutive floats of xt: the pack is one vector copy per pixel
// (conv_pack_rows), with stride, dilation and padding all folded into each pixel's offset. A
// is gy, transposed into its micro-panels straight from NCHW (gemm_blocks().transpose). The
// product comes out as (K, KH, KW, C) and is permuted to (K, C, KH, KW) at the end.
// Blocking: images are taken in chunks of at least KC pixels, each cut into K slices of equal
// depth; per slice all of A is packed (it stays in L2), then each B panel is packed into L1
// just before all K rows use it. With a single column block (big images: many batch parts),
// each work item transposes its own chunk of x and packs its own A right before using them,
// so they are still in cache; with several column blocks (small deep-layer images) every block
// reads all of x and gy, so both are transposed once for the whole batch up front.
// The batch is cut into parts of about kPixelsPerWeightPart pixels (a number fixed by the
// shape, never by the thread count); each part sums its pixels in order into its own buffer,
// and the parts are added in index order at the end, so the result is bit-identical whatever
// the number of threads. Work items are (part, column block); the column blocks only split
// the work, not the sums.
#include "kernels/cpu/conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "kernels/cpu/conv_pack.h"
#include "kernels/cpu/gemm/gemm.h"
#include "kernels/cpu/isa.h"

namespace dc::cpu {
namespace {

// Bytes of one im2col tile: about a quarter of the 2 MB L2, leaving room for the packed GEMM
// operands. The backward-weight GEMM reduces over the tile (K = P), so it uses bigger tiles
// to keep its read-modify-write of C rare.
constexpr int64_t kTileBytes = 512 * 1024;
constexpr int64_t kWeightTileBytes = 1024 * 1024;
// Batch parts summed separately by backward_weight (see the Note); the memory for the parts is
// capped at kWeightPartsBytes.
constexpr int64_t kWeightParts = 8;
constexpr int64_t kWeightPartsBytes = int64_t(64) << 20;
// Work below this many multiply-adds stays on one thread.
constexpr int64_t kMinFlopsPerTask = int64_t(1) << 18;

void gemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa, int64_t csa,
          const float* B, int64_t rsb, int64_t csb, float beta, float* C, int64_t rsc,
          int64_t csc) {
  gemm_f32(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}
void gemm(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa,
          int64_t csa, const double* B, int64_t rsb, int64_t csb, double beta, double* C,
          int64_t rsc, int64_t csc) {
  gemm_f64(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div_signed(int64_t a, int64_t b) { return -floor_div(-a, b); }

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

// Images per GEMM (Note [Convolution as tiled GEMM], deep layers): when an image has few
// output pixels (a ResNet's 512-channel 4x4 layer has 16), one GEMM per image is too skinny
// to run near peak, so B images are laid side by side in the GEMM's columns: col (ckk, B*OHW)
// and the output staged in (Kg, B*OHW), then copied to NCHW. Only for groups == 1 and
// im2col'd kernels; B keeps at least kBatchColumns columns per GEMM when the batch allows.
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

template <typename T>
void im2col_tile(const ConvGeom& g, const T* x, int64_t p0, int64_t P, T* col, int64_t ld = 0);

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

// ---- implicit GEMM (Note [Convolution as implicit GEMM]) -------------------------------------

// Groups with fewer output channels than this waste most of each micro-tile's rows and cannot
// amortise the B pack: they take the tiled path. Measured on LeNet's layers: the forward
// 6 -> 16 5x5 conv runs in 0.64 ms implicit against 1.0-1.1 ms tiled, but the input gradient
// of that conv (6 rows per tile) takes 2.0 ms implicit against 1.2-1.3 ms tiled, and so does
// the forward of the 1 -> 6 conv. The input gradient (rows = input channels) needs more.
constexpr int64_t kMinImplicitRows = 16, kMinImplicitRowsGradInput = 32;

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// The active ISA's segment pack and row pack (conv_pack.h).
template <typename T>
auto conv_pack_segment() {
  if constexpr (std::is_same_v<T, float>)
    return for_active_isa(&generic::conv_pack_segment_f32, &avx2::conv_pack_segment_f32,
                          &avx512::conv_pack_segment_f32);
  else
    return for_active_isa(&generic::conv_pack_segment_f64, &avx2::conv_pack_segment_f64,
                          &avx512::conv_pack_segment_f64);
}
template <typename T>
auto conv_pack_rows() {
  if constexpr (std::is_same_v<T, float>)
    return for_active_isa(&generic::conv_pack_rows_f32, &avx2::conv_pack_rows_f32,
                          &avx512::conv_pack_rows_f32);
  else
    return for_active_isa(&generic::conv_pack_rows_f64, &avx2::conv_pack_rows_f64,
                          &avx512::conv_pack_rows_f64);
}

// The B pack and the staging buffer of the implicit GEMM, kept per thread (core/scratch.h):
// the items of a dynamic schedule would otherwise allocate them once each.
thread_local ScratchBuffer tl_conv_bpack("conv2d"), tl_conv_stage("conv2d");

// Columns [j, j + len) of an im2col block: consecutive output pixels of one output row of one
// image, whose kernel tap (0, 0) reads input pixel (ih0, iw0 + t * sw) of img (Cg, H, W).
template <typename T>
struct ColSegment {
  int64_t j, len;
  const T* img;
  int64_t ih0, iw0;
};

// Writes rows [pc, pc + kc) of the im2col columns of a segment: dst[(p - pc) * ld + sg.j + t],
// through the active ISA's segment pack (conv_pack.h). Holds that pack's per-tap tables.
template <typename T>
class SegmentPacker {
 public:
  explicit SegmentPacker(const ConvGeom& g)
      : g_(g), kk_(g.KH * g.KW), off_(kk_), lo_(kk_), hi_(kk_), pack_(conv_pack_segment<T>()) {}

  void operator()(const ColSegment<T>& sg, int64_t pc, int64_t kc, T* dst, int64_t ld) {
    // Per kernel tap: where its row segment starts and which columns are inside the image
    // (iw + t * sw in [0, W) for t in [lo, hi)).
    for (int64_t kh = 0, tap = 0; kh < g_.KH; ++kh)
      for (int64_t kw = 0; kw < g_.KW; ++kw, ++tap) {
        const int64_t ih = sg.ih0 + kh * g_.dh, iw = sg.iw0 + kw * g_.dw;
        const bool row_in = ih >= 0 && ih < g_.H;
        const int64_t lo = row_in ? std::clamp<int64_t>(ceil_div_signed(-iw, g_.sw), 0, sg.len) : 0;
        off_[tap] = row_in ? ih * g_.W + iw : 0;
        lo_[tap] = static_cast<int32_t>(lo);
        hi_[tap] = static_cast<int32_t>(
            row_in ? std::clamp<int64_t>(ceil_div_signed(g_.W - iw, g_.sw), lo, sg.len) : 0);
      }
    const int64_t hw = g_.H * g_.W;
    pack_(kc, kk_, pc % kk_, sg.img + pc / kk_ * hw, hw, off_.data(), lo_.data(), hi_.data(),
          g_.sw, sg.len, dst + sg.j, ld);
  }

 private:
  const ConvGeom& g_;
  int64_t kk_;
  std::vector<int64_t> off_;
  std::vector<int32_t> lo_, hi_;
  decltype(conv_pack_segment<T>()) pack_;
};

// Packs rows [pc, pc + kc) and columns [q0, q0 + nc) of the batch's im2col matrix into
// NR-wide micro-panels (dst[panel][p][j], columns past nc zeroed). Column q is output pixel
// q % OHW of image q / OHW; xg points at the group's first channel of image 0.
template <typename T>
void pack_im2col(const ConvGeom& g, SegmentPacker<T>& pack, const T* xg, int64_t q0, int64_t nc,
                 int64_t pc, int64_t kc, int64_t nr, T* dst) {
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W;
  for (int64_t j0 = 0; j0 < nc; j0 += nr, dst += nr * kc) {
    const int64_t n = std::min(nr, nc - j0);
    if (n < nr)
      for (int64_t p = 0; p < kc; ++p) std::fill(dst + p * nr + n, dst + (p + 1) * nr, T(0));
    for (int64_t j = 0; j < n;) {
      const int64_t q = q0 + j0 + j, img = q / ohw, pix = q % ohw, ow = pix % g.OW;
      const int64_t len = std::min(n - j, g.OW - ow);
      pack({j, len, xg + img * g.C * hw, (pix / g.OW) * g.sh - g.ph, ow * g.sw - g.pw}, pc, kc,
           dst, nr);
      j += len;
    }
  }
}

// col (ckk, P) = the columns [p0, p0 + P) of im2col(x); x: one group of one image (Cg, H, W).
template <typename T>
void im2col_tile(const ConvGeom& g, const T* x, int64_t p0, int64_t P, T* col, int64_t ld) {
  if (ld == 0) ld = P;  // row stride of col
  SegmentPacker<T> pack(g);
  for (int64_t p = p0; p < p0 + P;) {
    // At most 64 columns a segment: the segment pack's fast path.
    const int64_t oh = p / g.OW, ow = p % g.OW, len = std::min({g.OW - ow, p0 + P - p, int64_t(64)});
    pack({p - p0, len, x, oh * g.sh - g.ph, ow * g.sw - g.pw}, 0, g.ckk(), col, ld);
    p += len;
  }
}

// A pointwise convolution reads x in place as the GEMM operand, one product per image; with
// small images those products are too skinny (16 columns for a 4x4 image), and one implicit
// product over the whole batch is faster.
constexpr int64_t kPointwiseImplicitPixels = 1024;

bool implicit_applies(const ConvGeom& g, int64_t min_rows = kMinImplicitRows) {
  return g.Kg() >= min_rows && (!g.pointwise() || g.OH * g.OW < kPointwiseImplicitPixels) &&
         g.N * g.OH * g.OW > 0 && g.ckk() > 0;
}

template <typename T>
void forward_implicit(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  GemmBlocks<T> gb = gemm_blocks<T>();
  const int64_t mr = gb.mr, nr = gb.nr, ohw = g.OH * g.OW, hw = g.H * g.W, Q = g.N * ohw;
  const int64_t ckk = g.ckk(), Kg = g.Kg(), G = g.groups, kg_pad = round_up(Kg, mr);
  // K slices of equal depth (576 = 3 x 192 rather than 256 + 256 + 64): each slice costs a
  // read-modify-write of the C tiles, so a thin last slice is as dear as a full one.
  const int64_t kslices = (ckk + gb.kc - 1) / gb.kc;
  gb.kc = (ckk + kslices - 1) / kslices;
  const int64_t kc_max = std::min(gb.kc, ckk);

  // The weights in A micro-panels: block (ic, pc) of group grp starts at a_block(grp, ic, pc).
  ScratchBuffer apack_buf("conv2d");
  T* apack = apack_buf.get<T>(G * kg_pad * ckk);
  auto a_block = [&](int64_t grp, int64_t ic, int64_t pc) {
    return apack + grp * kg_pad * ckk + ic * ckk + pc * round_up(std::min(gb.mc, Kg - ic), mr);
  };
  const int64_t mblocks = (Kg + gb.mc - 1) / gb.mc, kblocks = (ckk + gb.kc - 1) / gb.kc;
  parallel_for(0, G * mblocks * kblocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t it = begin; it < end; ++it) {
      const int64_t grp = it / (mblocks * kblocks), ic = it / kblocks % mblocks * gb.mc;
      const int64_t pc = it % kblocks * gb.kc;
      gb.pack_a(std::min(gb.mc, Kg - ic), std::min(gb.kc, ckk - pc),
                w + (grp * Kg + ic) * ckk + pc, ckk, 1, a_block(grp, ic, pc));
    }
  });

  // Column blocks: at most NC wide, at least 8 micro-panels, and about four per thread so
  // that the dynamic schedule can even out threads that run at different speeds.
  const int64_t nt = get_num_threads();
  const int64_t ncb = std::min(std::clamp(round_up((Q + 4 * nt - 1) / (4 * nt), nr), 8 * nr, gb.nc),
                               round_up(Q, nr));
  const int64_t nblk = (Q + ncb - 1) / ncb;
  // Whole micro-tiles are contiguous in y when no panel crosses an image (OHW a multiple of
  // NR; blocks start at multiples of NR). Otherwise each block accumulates in a staging
  // buffer (Kg, ncb) and is copied out once, image by image, after its last K slice.
  const bool staged = ohw % nr != 0;
  const int64_t work = Kg * ckk * Q;
  auto run_block = [&](int64_t it) {
    T* bpack = tl_conv_bpack.get<T>(kc_max * round_up(ncb, nr));
    T* stage = staged ? tl_conv_stage.get<T>(Kg * ncb) : nullptr;
    SegmentPacker<T> pack(g);
    const int64_t grp = it / nblk, q0 = it % nblk * ncb, nc = std::min(ncb, Q - q0);
    const T* bias_g = bias ? bias + grp * Kg : nullptr;
    for (int64_t pc = 0; pc < ckk; pc += gb.kc) {
      const int64_t kc = std::min(gb.kc, ckk - pc);
      const T beta = pc == 0 ? T(0) : T(1);
      const bool last = pc + kc == ckk;
      pack_im2col(g, pack, x + grp * g.Cg() * hw, q0, nc, pc, kc, nr, bpack);
      for (int64_t ic = 0; ic < Kg; ic += gb.mc) {
        const int64_t mc = std::min(gb.mc, Kg - ic);
        const T* ab = a_block(grp, ic, pc);
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t n = std::min(nr, nc - jr), q = q0 + jr;
          const T* bp = bpack + jr * kc;
          // Row r of the tile is output channel grp * Kg + ic + r.
          T* c = staged ? stage + ic * ncb + jr
                        : y + (q / ohw * g.K + grp * Kg + ic) * ohw + q % ohw;
          const int64_t rsc = staged ? ncb : ohw;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t m = std::min(mr, mc - ir);
            gb.ukernel(kc, ab + ir * kc, bp, c + ir * rsc, rsc, 1, m, n, T(1), beta);
            if (last && bias_g && !staged)
              for (int64_t i = 0; i < m; ++i) {
                T* ci = c + (ir + i) * rsc;
                const T b = bias_g[ic + ir + i];
                for (int64_t j = 0; j < n; ++j) ci[j] += b;
              }
          }
        }
      }
    }
    if (!staged) return;
    for (int64_t q = q0; q < q0 + nc;) {  // one image's run of columns at a time
      const int64_t img = q / ohw, pix = q % ohw, len = std::min(ohw - pix, q0 + nc - q);
      for (int64_t k = 0; k < Kg; ++k) {
        const T* src = stage + k * ncb + (q - q0);
        T* dst = y + (img * g.K + grp * Kg + k) * ohw + pix;
        const T b = bias_g ? bias_g[k] : T(0);
        for (int64_t j = 0; j < len; ++j) dst[j] = src[j] + b;
      }
      q += len;
    }
  };
  if (work < 4 * kMinFlopsPerTask) {
    for (int64_t it = 0; it < G * nblk; ++it) run_block(it);
  } else {
    parallel_items(0, G * nblk, run_block);
  }
}

// The weights of an input-gradient convolution: the taps h0 + sh i (i < th) and w0 + sw j
// (j < tw) of each kernel, flipped, with input and output channels swapped per group:
//   wt[grp][c][k][i][j] = w[grp Kg + k][c][h0 + sh (th - 1 - i)][w0 + sw (tw - 1 - j)].
// The whole kernel (th = KH, h0 = 0, unit stride) for backward_input_as_conv, one phase's taps
// for backward_input_by_phases. Blocks of kCBlock input channels at a time: each k reads one
// contiguous run of w and writes a run into each of the block's rows (2.4M elements for a
// 512-channel 3x3 layer: worth the threads).
template <typename T>
void flipped_transposed_taps(const ConvGeom& g, const T* w, int64_t th, int64_t h0, int64_t tw,
                             int64_t w0, T* wt) {
  constexpr int64_t kCBlock = 16;
  const int64_t Kg = g.Kg(), Cg = g.Cg(), kk = g.KH * g.KW, tt = th * tw;
  const int64_t cblocks = (Cg + kCBlock - 1) / kCBlock;
  parallel_for(0, g.groups * cblocks, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(1, Kg * kk * kCBlock)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t blk = begin; blk < end; ++blk) {
                   const int64_t grp = blk / cblocks, c0 = blk % cblocks * kCBlock;
                   const int64_t c1 = std::min(Cg, c0 + kCBlock);
                   for (int64_t k = 0; k < Kg; ++k) {
                     const T* src = w + ((grp * Kg + k) * Cg + c0) * kk;
                     for (int64_t c = c0; c < c1; ++c, src += kk) {
                       T* dst = wt + ((grp * Cg + c) * Kg + k) * tt;
                       for (int64_t i = 0; i < th; ++i)
                         for (int64_t j = 0; j < tw; ++j)
                           dst[i * tw + j] =
                               src[(h0 + g.sh * (th - 1 - i)) * g.KW + w0 + g.sw * (tw - 1 - j)];
                     }
                   }
                 }
               });
}

// With unit stride the input gradient is a convolution of gy (padded by dh (KH - 1) - ph) with
// w transposed and flipped, w'[g][c][k][kh][kw] = w[g][k][c][KH-1-kh][KW-1-kw]: runs it
// through forward_implicit when that applies, else returns false.
template <typename T>
bool backward_input_as_conv(const ConvGeom& g, const T* gy, const T* w, T* gx) {
  ConvGeom t = g;
  t.C = g.K;
  t.H = g.OH;
  t.W = g.OW;
  t.K = g.C;
  t.OH = g.H;
  t.OW = g.W;
  t.ph = g.dh * (g.KH - 1) - g.ph;
  t.pw = g.dw * (g.KW - 1) - g.pw;
  if (g.sh != 1 || g.sw != 1 || t.ph < 0 || t.pw < 0 ||
      !implicit_applies(t, kMinImplicitRowsGradInput))
    return false;
  ScratchBuffer wt_buf("conv2d");
  T* wt = wt_buf.get<T>(g.K * g.ckk());
  flipped_transposed_taps(g, w, g.KH, 0, g.KW, 0, wt);
  forward_implicit(t, gy, wt, static_cast<const T*>(nullptr), gx);
  return true;
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
      gemm(K, ld, ckk, T(1), w, ckk, 1, col.data(), ld, 1, T(0), out.data(), ld, 1);
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

template <typename T>
void forward_impl(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  if (implicit_applies(g)) return forward_implicit(g, x, w, bias, y);
  if (const int64_t B = images_per_gemm_threaded(g, sizeof(T)); B > 1)
    return forward_batched(g, x, w, bias, y, B);
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W, ckk = g.ckk(), Kg = g.Kg(), G = g.groups;
  const bool direct = g.pointwise();
  const int64_t P = direct ? std::min<int64_t>(ohw, 4096) : tile_cols(g, kTileBytes, sizeof(T));
  const int64_t tiles = ohw ? (ohw + P - 1) / P : 0;
  const int64_t items = g.N * G * tiles;
  const int64_t grain = std::max<int64_t>(1, kMinFlopsPerTask / std::max<int64_t>(1, Kg * ckk * P));
  parallel_for(0, items, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> col(direct ? 0 : ckk * P);
    for (int64_t it = begin; it < end; ++it) {
      const int64_t t = it % tiles, ng = it / tiles, grp = ng % G, n = ng / G;
      const int64_t p0 = t * P, pn = std::min(P, ohw - p0);
      const T* xg = x + (n * g.C + grp * g.Cg()) * hw;
      T* yt = y + (n * g.K + grp * Kg) * ohw + p0;
      const T* wg = w + grp * Kg * ckk;
      if (direct) {
        gemm(Kg, pn, ckk, T(1), wg, ckk, 1, xg + p0, hw, 1, T(0), yt, ohw, 1);
      } else {
        im2col_tile(g, xg, p0, pn, col.data());
        gemm(Kg, pn, ckk, T(1), wg, ckk, 1, col.data(), pn, 1, T(0), yt, ohw, 1);
      }
      if (bias)
        for (int64_t k = 0; k < Kg; ++k) {
          const T b = bias[grp * Kg + k];
          for (int64_t p = 0; p < pn; ++p) yt[k * ohw + p] += b;
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
  if (g.pointwise()) {  // gx (Cg, HW) = w^T (Cg, Kg) @ gy (Kg, HW), written in place
    gemm(ckk, ohw, Kg, T(1), wg, 1, ckk, gyg, ohw, 1, T(0), gxg, hw, 1);
    return;
  }
  std::fill(gxg, gxg + g.Cg() * hw, T(0));
  for (int64_t p0 = 0; p0 < ohw; p0 += P) {
    const int64_t pn = std::min(P, ohw - p0);
    gemm(ckk, pn, Kg, T(1), wg, 1, ckk, gyg + p0, ohw, 1, T(0), col.data(), pn, 1);
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
      gemm(ckk, ld, K, T(1), w, 1, ckk, gyt.data(), ld, 1, T(0), col.data(), ld, 1);
      for (int64_t i = 0; i < nb; ++i) {
        T* gxi = gx + (n0 + i) * g.C * hw;
        std::fill(gxi, gxi + g.C * hw, T(0));
        col2im_tile(g, col.data() + i * ohw, 0, ohw, gxi, ld);
      }
    }
  });
}

// Phases smaller than this many pixels per image (a 4x4 phase of an 8x8 input) pack their
// im2col in segments too short to pay; the tiled path, which batches small images, is faster.
constexpr int64_t kMinPhasePixels = 64;

// Note [Strided input gradient by phases]
// With stride s > 1 (unit dilation, groups == 1), the input pixels split into s_h * s_w phases
// by (ih mod s_h, iw mod s_w), and within one phase the input gradient is a unit-stride
// convolution of gy: for input row ih = s a + r, only the taps kh = t + s m with
// t = (r + ph) mod s reach it, from output row a + e - m (e = (r + ph - t) / s). So phase (r, r')
// is a convolution of gy with the sub-kernel of those taps (flipped and transposed, as in
// backward_input_as_conv) and padding M - 1 - e (M taps), computed by forward_impl (an
// implicit GEMM, or a pointwise GEMM for one tap) into a phase buffer whose pixels are then
// spread into gx at stride s. A 3x3 stride-2 layer gives phases of 1, 2, 2 and 4 taps, the
// same multiply-adds as the convolution, with no col2im. Phases that no tap reaches (1x1
// stride 2: the odd pixels) are zero.
template <typename T>
bool backward_input_by_phases(const ConvGeom& g, const T* gy, const T* w, T* gx) {
  if (g.groups != 1 || g.dh != 1 || g.dw != 1 || (g.sh == 1 && g.sw == 1) ||
      g.C < kMinImplicitRowsGradInput || g.N * g.OH * g.OW == 0 ||
      g.H * g.W < kMinPhasePixels * g.sh * g.sw)
    return false;
  struct Axis {
    int64_t taps, first_tap, pad, size;  // sub-kernel taps, its first tap, padding, pixels
  };
  auto axis = [](int64_t r, int64_t s, int64_t p, int64_t k, int64_t n) {
    const int64_t t = (r + p) % s, taps = t < k ? (k - t + s - 1) / s : 0;
    return Axis{taps, t, taps - 1 - (r + p - t) / s, r < n ? (n - r + s - 1) / s : 0};
  };
  // A negative padding (a phase's first output row before gy's) is left to the tiled path.
  for (int64_t r = 0; r < g.sh; ++r)
    if (const Axis a = axis(r, g.sh, g.ph, g.KH, g.H); a.taps > 0 && a.pad < 0) return false;
  for (int64_t r = 0; r < g.sw; ++r)
    if (const Axis a = axis(r, g.sw, g.pw, g.KW, g.W); a.taps > 0 && a.pad < 0) return false;

  const int64_t C = g.C, K = g.K, hw = g.H * g.W;
  // Phases no tap reaches: one contiguous zero fill of gx first, rather than a strided pass each.
  bool any_zero = false;
  for (int64_t r = 0; r < g.sh; ++r) any_zero |= axis(r, g.sh, g.ph, g.KH, g.H).taps == 0;
  for (int64_t r = 0; r < g.sw; ++r) any_zero |= axis(r, g.sw, g.pw, g.KW, g.W).taps == 0;
  if (any_zero)
    parallel_for(0, g.N * C * hw, kGrainSize, [&](int64_t b, int64_t e) { std::fill(gx + b, gx + e, T(0)); });
  ScratchBuffer out_buf("conv2d"), wt_buf("conv2d");
  for (int64_t rh = 0; rh < g.sh; ++rh)
    for (int64_t rw = 0; rw < g.sw; ++rw) {
      const Axis ah = axis(rh, g.sh, g.ph, g.KH, g.H), aw = axis(rw, g.sw, g.pw, g.KW, g.W);
      if (ah.size == 0 || aw.size == 0 || ah.taps == 0 || aw.taps == 0) continue;
      const int64_t pix = ah.size * aw.size;
      T* out = out_buf.get<T>(g.N * C * pix);
      ConvGeom t;
      t.N = g.N, t.C = K, t.H = g.OH, t.W = g.OW, t.K = C, t.KH = ah.taps, t.KW = aw.taps;
      t.OH = ah.size, t.OW = aw.size, t.ph = ah.pad, t.pw = aw.pad;
      T* wt = wt_buf.get<T>(C * K * ah.taps * aw.taps);
      flipped_transposed_taps(g, w, ah.taps, ah.first_tap, aw.taps, aw.first_tap, wt);
      forward_impl(t, gy, wt, static_cast<const T*>(nullptr), out);
      // gx[n, c, rh + sh a, rw + sw b] = out[n, c, a, b]
      parallel_for(0, g.N * C, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(1, pix)),
                   [&](int64_t b, int64_t e) {
                     for (int64_t nc = b; nc < e; ++nc) {
                       const T* src = out + nc * pix;
                       for (int64_t a = 0; a < ah.size; ++a) {
                         T* dst = gx + nc * hw + (rh + g.sh * a) * g.W + rw;
                         for (int64_t bb = 0; bb < aw.size; ++bb) dst[bb * g.sw] = src[a * aw.size + bb];
                       }
                     }
                   });
    }
  return true;
}

template <typename T>
void backward_input_impl(const ConvGeom& g, const T* gy, const T* w, T* gx) {
  if (backward_input_as_conv(g, gy, w, gx)) return;
  if (backward_input_by_phases(g, gy, w, gx)) return;
  if (const int64_t B = images_per_gemm_threaded(g, sizeof(T)); B > 1)
    return backward_input_batched(g, gy, w, gx, B);
  const int64_t items = g.N * g.groups;
  const int64_t P = tile_cols(g, kTileBytes, sizeof(T));
  const int64_t flops = g.Kg() * g.ckk() * g.OH * g.OW;
  if (items < get_num_threads() && flops >= kMinFlopsPerTask) {
    // Too few images to share out: one at a time, each GEMM using every thread.
    std::vector<T> col(g.ckk() * P);
    for (int64_t it = 0; it < items; ++it)
      backward_input_image(g, gy, w, gx, it / g.groups, it % g.groups, col, P);
    return;
  }
  const int64_t grain = std::max<int64_t>(1, kMinFlopsPerTask / std::max<int64_t>(1, flops));
  parallel_for(0, items, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> col(g.ckk() * P);
    for (int64_t it = begin; it < end; ++it)
      backward_input_image(g, gy, w, gx, it / g.groups, it % g.groups, col, P);
  });
}

// part(0)[j] += part(1)[j] + ... + part(parts - 1)[j], added in index order, so each element's
// sum order is fixed whatever the threads (the weight gradients' batch parts).
template <typename T, typename PartPtr>
void add_parts_in_order(int64_t parts, int64_t size, PartPtr part) {
  if (parts < 2) return;
  T* dst = part(0);
  parallel_for(0, size, kGrainSize, [&](int64_t b, int64_t e) {
    for (int64_t i = 1; i < parts; ++i) {
      const T* src = part(i);
      for (int64_t j = b; j < e; ++j) dst[j] += src[j];
    }
  });
}

// part (K, ckk) = sum over images [n0, n1) of gy[n, g] (Kg, OHW) @ im2col(x[n, g])^T.
template <typename T>
void backward_weight_part(const ConvGeom& g, const T* gy, const T* x, T* part, int64_t n0,
                          int64_t n1, int64_t P) {
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W, ckk = g.ckk(), Kg = g.Kg();
  const bool direct = g.pointwise();
  if (const int64_t B = images_per_gemm(g, kWeightTileBytes, sizeof(T), kWeightBatchPixels);
      B > 1) {
    // part (K, ckk) = sum over blocks of gy (K, ld) @ col (ckk, ld)^T, blocks in image order.
    std::vector<T> col(ckk * B * ohw), gyt(g.K * B * ohw);
    for (int64_t b0 = n0; b0 < n1; b0 += B) {
      const int64_t nb = std::min(B, n1 - b0), ld = nb * ohw;
      gather_images(gy, g.K, ohw, b0, nb, gyt.data());
      for (int64_t i = 0; i < nb; ++i)
        im2col_tile(g, x + (b0 + i) * g.C * hw, 0, ohw, col.data() + i * ohw, ld);
      gemm(g.K, ckk, ld, T(1), gyt.data(), ld, 1, col.data(), 1, ld, b0 == n0 ? T(0) : T(1),
           part, ckk, 1);
    }
    return;
  }
  std::vector<T> col(direct ? 0 : ckk * P);
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* gyg = gy + (n * g.K + grp * Kg) * ohw;
      const T* xg = x + (n * g.C + grp * g.Cg()) * hw;
      T* pg = part + grp * Kg * ckk;
      const T beta = n == n0 ? T(0) : T(1);  // the part's first image overwrites
      if (direct) {  // B (HW, Cg) = x^T read through strides
        gemm(Kg, ckk, ohw, T(1), gyg, ohw, 1, xg, 1, hw, beta, pg, ckk, 1);
        continue;
      }
      for (int64_t p0 = 0; p0 < ohw; p0 += P) {
        const int64_t pn = std::min(P, ohw - p0);
        im2col_tile(g, xg, p0, pn, col.data());
        gemm(Kg, ckk, pn, T(1), gyg + p0, ohw, 1, col.data(), 1, pn,
             p0 == 0 ? beta : T(1), pg, ckk, 1);
      }
    }
}

// ---- weight gradient in channels-last (Note [Weight gradient in channels-last]) ------------

// Groups == 1 with at least this many input and output channels take the channels-last weight
// gradient; fewer channels leave most of each micro-panel to padding.
constexpr int64_t kMinChannelsLastWeight = 16;
// Pixels summed per batch part of the channels-last weight gradient (see the Note).
constexpr int64_t kPixelsPerWeightPart = 4096;

bool weight_cl_applies(const ConvGeom& g) {
  return g.groups == 1 && g.C >= kMinChannelsLastWeight && g.K >= kMinChannelsLastWeight &&
         g.KH * g.KW > 1 && g.N * g.OH * g.OW > 0;
}

thread_local ScratchBuffer tl_conv_apack("conv2d"), tl_conv_xt("conv2d");

template <typename T>
void backward_weight_cl(const ConvGeom& g, const T* gy, const T* x, T* gw) {
  const GemmBlocks<T> gb = gemm_blocks<T>();
  const int64_t mr = gb.mr, nr = gb.nr, C = g.C, K = g.K, kk = g.KH * g.KW;
  const int64_t ohw = g.OH * g.OW, hw = g.H * g.W, P = g.N * ohw;
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, ncols = kk * C;
  // Columns are (tap, c); column j of a pixel sits col_off[j] after the pixel's tap (0, 0).
  std::vector<int64_t> col_off(ncols);
  for (int64_t j = 0; j < ncols; ++j) {
    const int64_t tap = j / C, kh = tap / g.KW, kw = tap % g.KW;
    col_off[j] = (kh * g.dh * Wp + kw * g.dw) * C + j % C;
  }
  const int64_t parts = std::clamp<int64_t>(
      std::min(P / kPixelsPerWeightPart,
               kWeightPartsBytes / std::max<int64_t>(1, K * ncols * int64_t(sizeof(T)))),
      1, std::min(g.N, kWeightParts));
  // Column blocks (whole micro-panels, at most NC): about four items per thread. They only
  // split the work; every element's sum is the same whatever the blocks.
  const int64_t nt = get_num_threads();
  const int64_t want = std::max<int64_t>(1, (4 * nt + parts - 1) / parts);
  const int64_t ncb = std::clamp(round_up((ncols + want - 1) / want, nr), nr, std::max(nr, gb.nc / nr * nr));
  const int64_t nblk = (ncols + ncb - 1) / ncb;

  // x in channels-last with its zero padding: images [n0, n0 + nb) into dst (nb, Hp, Wp, C).
  auto transpose_x = [&](int64_t n0, int64_t nb, T* dst) {
    for (int64_t n = n0; n < n0 + nb; ++n) {
      T* xn = dst + (n - n0) * Hp * Wp * C;
      std::fill(xn, xn + g.ph * Wp * C, T(0));
      std::fill(xn + (g.ph + g.H) * Wp * C, xn + Hp * Wp * C, T(0));
      for (int64_t ih = 0; ih < g.H; ++ih) {
        T* row = xn + (ih + g.ph) * Wp * C;
        std::fill(row, row + g.pw * C, T(0));
        std::fill(row + (g.pw + g.W) * C, row + Wp * C, T(0));
        gb.transpose(g.W, C, x + n * C * hw + ih * g.W, hw, row + g.pw * C, C);
      }
    }
  };
  // Images per chunk: enough pixels for one K slice. With one column block, each item
  // transposes its own chunks just before using them (they stay in L2); with several, every
  // block reads all of x, so it is transposed once for the whole batch first.
  const int64_t nbc = std::clamp<int64_t>((gb.kc + ohw - 1) / ohw, 1, g.N);
  ScratchBuffer xt_buf("conv2d");
  T* xt_all = nblk > 1 ? xt_buf.get<T>(g.N * Hp * Wp * C) : nullptr;
  if (xt_all)
    parallel_for(0, g.N, 1, [&](int64_t begin, int64_t end) {
      transpose_x(begin, end - begin, xt_all + begin * Hp * Wp * C);
    });
  // A micro-panels of gy's pixels [q0, q0 + kc): panel i0 / mr at dst + i0 * panel_stride,
  // transposed from NCHW one image's run of pixels at a time.
  auto pack_gy = [&](int64_t q0, int64_t kc, T* dst, int64_t panel_stride) {
    for (int64_t i0 = 0; i0 < K; i0 += mr)
      for (int64_t t = 0; t < kc;) {
        const int64_t q = q0 + t, len = std::min(kc - t, ohw - q % ohw);
        gb.transpose(len, std::min(mr, K - i0), gy + (q / ohw * K + i0) * ohw + q % ohw, ohw,
                     dst + i0 * panel_stride + t * mr, mr);
        t += len;
      }
  };
  // With several column blocks every block needs all of A: pack it once for the whole batch
  // (panel i0 / mr at a_all + i0 * P). With one, each item packs its own slices while they
  // are in cache.
  ScratchBuffer a_all_buf("conv2d");
  T* a_all = nblk > 1 ? a_all_buf.get<T>(round_up(K, mr) * P) : nullptr;
  if (a_all)
    parallel_for(0, g.N, 1, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) pack_gy(n * ohw, ohw, a_all + n * ohw * mr, P);
    });

  ScratchBuffer sums_buf("conv2d");
  T* sums = sums_buf.get<T>(parts * K * ncols);
  auto run_item = [&](int64_t it) {
    const int64_t part = it / nblk, j0 = it % nblk * ncb, nc = std::min(ncb, ncols - j0);
    const int64_t q_begin = g.N * part / parts * ohw, q_end = g.N * (part + 1) / parts * ohw;
    T* cpart = sums + part * K * ncols + j0;
    T* bpanel = tl_conv_bpack.get<T>(gb.kc * nr);
    T* apack = a_all ? nullptr : tl_conv_apack.get<T>(round_up(K, mr) * gb.kc);
    T* xt_local = xt_all ? nullptr : tl_conv_xt.get<T>(nbc * Hp * Wp * C);
    std::vector<int64_t> base(gb.kc);
    const auto pack_rows = conv_pack_rows<T>();
    for (int64_t c0 = q_begin; c0 < q_end; c0 += nbc * ohw) {
      // One chunk of images, its pixels cut into K slices of equal depth.
      const int64_t n0 = c0 / ohw, nb = std::min(nbc, q_end / ohw - n0), c1 = c0 + nb * ohw;
      const T* xt = xt_all ? xt_all + n0 * Hp * Wp * C : xt_local;
      if (!xt_all) transpose_x(n0, nb, xt_local);
      const int64_t slices = (c1 - c0 + gb.kc - 1) / gb.kc, kcs = (c1 - c0 + slices - 1) / slices;
      for (int64_t q0 = c0; q0 < c1; q0 += kcs) {
        const int64_t kc = std::min(kcs, c1 - q0);
        const T beta = q0 == q_begin ? T(0) : T(1);
        for (int64_t t = 0; t < kc; ++t) {
          const int64_t q = q0 + t, img = q / ohw - n0, oh = q % ohw / g.OW, ow = q % g.OW;
          base[t] = ((img * Hp + oh * g.sh) * Wp + ow * g.sw) * C;
        }
        // All of A (K x kc, in L2), then one B panel at a time, packed into L1 just before the
        // K rows use it.
        if (!a_all) pack_gy(q0, kc, apack, kc);
        const T* a = a_all ? a_all + q0 * mr : apack;
        const int64_t a_stride = a_all ? P : kc;
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t n = std::min(nr, nc - jr), j = j0 + jr;
          if (n == nr && col_off[j + nr - 1] - col_off[j] == nr - 1) {  // one run of channels
            pack_rows(kc, xt + col_off[j], base.data(), bpanel, nr);
          } else {
            for (int64_t t = 0; t < kc; ++t)
              for (int64_t jj = 0; jj < nr; ++jj)
                bpanel[t * nr + jj] = jj < n ? xt[base[t] + col_off[j + jj]] : T(0);
          }
          for (int64_t ir = 0; ir < K; ir += mr)
            gb.ukernel(kc, a + ir * a_stride, bpanel, cpart + ir * ncols + jr, ncols, 1,
                       std::min(mr, K - ir), n, T(1), beta);
        }
      }
    }
  };
  parallel_items(0, parts * nblk, run_item);

  // The parts summed into part 0, then gw[k, c, kh, kw] = sums[k, (kh, kw), c].
  add_parts_in_order<T>(parts, K * ncols, [&](int64_t i) { return sums + i * K * ncols; });
  parallel_for(0, K, std::max<int64_t>(1, kGrainSize / ncols), [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) gb.transpose(C, kk, sums + k * ncols, C, gw + k * ncols, kk);
  });
}

template <typename T>
void backward_weight_impl(const ConvGeom& g, const T* gy, const T* x, T* gw) {
  const int64_t wsize = g.K * g.ckk();
  if (g.N == 0 || g.OH * g.OW == 0) {
    std::fill(gw, gw + wsize, T(0));
    return;
  }
  if (weight_cl_applies(g)) return backward_weight_cl(g, gy, x, gw);
  const int64_t P = tile_cols(g, kWeightTileBytes, sizeof(T));
  const int64_t cap = std::max<int64_t>(1, kWeightPartsBytes / std::max<int64_t>(1, wsize * sizeof(T)));
  int64_t parts = std::min({g.N, kWeightParts, cap});
  // Batched small images: each part should still give its GEMMs kBatchColumns columns to
  // reduce over, so fewer parts (still a function of the shape only, not of the threads).
  if (images_per_gemm(g, kWeightTileBytes, sizeof(T), kWeightBatchPixels) > 1)
    parts = std::min(parts, std::max<int64_t>(2, g.N * g.OH * g.OW / kBatchColumns));
  if (parts == 1) {  // the GEMMs thread themselves
    backward_weight_part(g, gy, x, gw, 0, g.N, P);
    return;
  }
  std::vector<T> buf((parts - 1) * wsize);
  auto part_ptr = [&](int64_t i) { return i == 0 ? gw : buf.data() + (i - 1) * wsize; };
  parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      backward_weight_part(g, gy, x, part_ptr(i), g.N * i / parts, g.N * (i + 1) / parts, P);
  });
  add_parts_in_order<T>(parts, wsize, part_ptr);
}

}  // namespace

void conv2d_forward(const ConvGeom& g, DType dtype, const void* x, const void* w,
                    const void* bias, void* y) {
  if (dtype == DType::Float32)
    forward_impl(g, static_cast<const float*>(x), static_cast<const float*>(w),
                 static_cast<const float*>(bias), static_cast<float*>(y));
  else if (dtype == DType::Float64)
    forward_impl(g, static_cast<const double*>(x), static_cast<const double*>(w),
                 static_cast<const double*>(bias), static_cast<double*>(y));
  else
    DC_THROW(TypeError, "[conv2d] expected float32 or float64, got ", dtype_name(dtype));
}

void conv2d_backward_input(const ConvGeom& g, DType dtype, const void* gy, const void* w,
                           void* gx) {
  if (dtype == DType::Float32)
    backward_input_impl(g, static_cast<const float*>(gy), static_cast<const float*>(w),
                        static_cast<float*>(gx));
  else if (dtype == DType::Float64)
    backward_input_impl(g, static_cast<const double*>(gy), static_cast<const double*>(w),
                        static_cast<double*>(gx));
  else
    DC_THROW(TypeError, "[conv2d] expected float32 or float64, got ", dtype_name(dtype));
}

void conv2d_backward_weight(const ConvGeom& g, DType dtype, const void* gy, const void* x,
                            void* gw) {
  if (dtype == DType::Float32)
    backward_weight_impl(g, static_cast<const float*>(gy), static_cast<const float*>(x),
                         static_cast<float*>(gw));
  else if (dtype == DType::Float64)
    backward_weight_impl(g, static_cast<const double*>(gy), static_cast<const double*>(x),
                         static_cast<double*>(gw));
  else
    DC_THROW(TypeError, "[conv2d] expected float32 or float64, got ", dtype_name(dtype));
}

}  // namespace dc::cpu
