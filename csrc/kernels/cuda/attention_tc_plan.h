#pragma once
// The plan of the tensor-core flash attention forward (kernels/cuda/attention_tc.cu, Note
// [Flash attention on tensor cores] there): the shared-memory tiles and which thread copies
// which 16-byte chunk of them, which tile element each lane gives ldmatrix, where each
// accumulator of a warp sits in the score and output tiles, how the score fragments become the
// A fragments of p v, the work items, and the per-lane arithmetic of the online softmax and of
// dropout. Plain C++ where nvcc does not compile it, DC_HD where the kernel calls it:
// tests/cpp/test_cuda_attention_tc.cpp emulates the kernel warp by warp on the host through
// these functions (ldmatrix, mma.sync, cp.async and the shuffles as the PTX ISA defines them)
// against naive attentions in double.
//
// The fragment layouts are mma_layout.h's (Note [Tensor-core GEMM layouts]); the key ranges,
// masks, online-softmax steps and dropout draws are attention_plan.h's, the float kernels', so
// both kernels see the same scores and draw the same dropout mask.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/half.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/mma_layout.h"
#include "kernels/host_device.h"

namespace dc::cuda_kernels::flash_tc {

// ---- the block ----------------------------------------------------------------------------------

// 4 warps; a block computes 64 query rows, warp w rows 16 w .. 16 w + 15 (one m16 tile), over
// key tiles of 64 (8 n-tiles of the score accumulator per warp).
constexpr int kWarps = 4, kThreads = 32 * kWarps;
constexpr int kBlockQ = 64, kBlockK = 64, kWarpRows = mma::kMmaM;
constexpr int kScoreTiles = kBlockK / mma::kMmaN;  // n-tiles of 8 keys in a warp's scores: 8
constexpr int kKeySteps = kBlockK / 16;            // k-steps of 16 keys in p v: 4
constexpr int kMaxHeadDim = 128;
static_assert(kWarps * kWarpRows == kBlockQ, "the warps cover the query tile");
// key_end, first_query_tile and the dropout words (a key tile starts at a multiple of 64) are
// the float kernels' (attention_plan.h), which tile by 64 x 64 too.
static_assert(kBlockQ == kTileQ && kBlockK == kTileK, "the float kernels' tile sizes");

// Shared memory: four tiles of 64 rows x D 16-bit values, K and V of two stages (the next
// tile's copies land while this one is multiplied); Q is staged in the second V buffer before
// the first key tile, while nothing else uses it, and read into registers once.
// Rows are D + 8 elements apart: 16 bytes of padding put the 8 rows an ldmatrix matrix reads
// (144 or 272 bytes apart, 9 or 17 16-byte units) in 8 different 16-byte bank groups.
constexpr int kSmemTiles = 4;
DC_HD constexpr int pitch(int D) { return D + 8; }
DC_HD constexpr int tile_elems(int D) { return kBlockK * pitch(D); }
DC_HD constexpr size_t smem_bytes(int D) { return size_t(kSmemTiles) * tile_elems(D) * 2; }
DC_HD constexpr int tile_offset(int D, int row, int col) { return row * pitch(D) + col; }
static_assert(kBlockQ == kBlockK, "Q shares a K/V tile buffer");
// Past the 48 KB a block gets without opting in: D = 128 needs cudaFuncSetAttribute.
static_assert(smem_bytes(64) == 36864 && smem_bytes(128) == 69632, "tile sizes");

// The head dim the kernel is compiled for: E and Ev (padded with zeros to it) up to 64, or up to
// 128; 0 when either is larger (no kernel).
inline int head_dim(int64_t E, int64_t Ev) {
  const int64_t n = E > Ev ? E : Ev;
  return n <= 64 ? 64 : n <= kMaxHeadDim ? 128 : 0;
}
// 16-wide steps that cover n columns (the columns past n read zeros).
DC_HD constexpr int steps16(int64_t n) { return static_cast<int>((n + 15) / 16); }

// ---- copies into shared memory --------------------------------------------------------------

// A tile is 64 rows x D / 8 chunks of 8 elements (16 bytes); thread t copies chunks t + i *
// kThreads, so neighbouring threads copy neighbouring 16 bytes of a row.
DC_HD constexpr int chunks_per_thread(int D) { return kBlockK * (D / 8) / kThreads; }
DC_HD constexpr mma::TileCoord chunk_coord(int D, int chunk) {
  return {chunk / (D / 8), (chunk % (D / 8)) * 8};
}
// Elements of the chunk at (row, col) of a rows x cols operand that exist (0 .. 8); the rest of
// the chunk is zero-filled, so rows past the tile's end and columns past E or Ev read 0.
DC_HD constexpr int chunk_valid(int64_t row, int64_t col, int64_t rows, int64_t cols) {
  return row >= rows || col >= cols ? 0 : static_cast<int>(cols - col < 8 ? cols - col : 8);
}
static_assert(chunks_per_thread(64) * kThreads == kBlockK * 8 &&
                  chunks_per_thread(128) * kThreads == kBlockK * 16,
              "the threads copy whole tiles");

// Whether an operand's slabs (16-bit elements at base + off[b], rows row_stride apart, cols
// columns) are copied by cp.async: every chunk's source must sit on 16 bytes. Otherwise the
// kernel loads element by element into the same tiles (an odd E, a sliced row, an odd offset).
inline bool vector_rows(uintptr_t base, const std::vector<int64_t>& off, int64_t row_stride,
                        int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0 || base % 16 != 0) return false;
  if (rows > 1 && (row_stride * 2) % 16 != 0) return false;
  for (int64_t o : off)
    if ((o * 2) % 16 != 0) return false;
  return true;
}

// ---- fragments ----------------------------------------------------------------------------------

// The tile element lane gives ldmatrix.x4 (8 contiguous elements along a tile row):
//   Q (A operand, stored [query][e], as a K-major A tile): warp w's rows, e-step ks;
//   K (B operand of q k^T, stored [key][e], a K-major B tile): keys 16 nj .., e-step ks, giving
//     the fragments of score n-tiles 2 nj and 2 nj + 1;
//   V (B operand of p v, stored [key][ev], a row-major B tile, read with .trans): key step kk,
//     output columns 16 nj .., giving the fragments of output n-tiles 2 nj and 2 nj + 1.
DC_HD constexpr int q_ldmatrix_offset(int D, int warp, int ks, int lane) {
  const mma::TileCoord c = mma::ldmatrix_x4_coord(false, mma::kMajorK, lane);
  return tile_offset(D, kWarpRows * warp + c.row, 16 * ks + c.k);
}
DC_HD constexpr int k_ldmatrix_offset(int D, int nj, int ks, int lane) {
  const mma::TileCoord c = mma::ldmatrix_x4_coord(true, mma::kMajorK, lane);
  return tile_offset(D, 16 * nj + c.row, 16 * ks + c.k);
}
DC_HD constexpr int v_ldmatrix_offset(int D, int kk, int nj, int lane) {
  const mma::TileCoord c = mma::ldmatrix_x4_coord(true, mma::kMajorRow, lane);
  return tile_offset(D, 16 * kk + c.k, 16 * nj + c.row);
}

// Accumulator i of n-tile ni of warp w: (row in the query tile, column) -- a key of the score
// tile, or an output column.
DC_HD constexpr mma::Coord acc_coord(int warp, int ni, int lane, int i) {
  const mma::Coord c = mma::mma_c(lane, i);
  return {kWarpRows * warp + c.row, mma::kMmaN * ni + c.col};
}

// p v takes p as its A operand straight from the score accumulators (no trip through shared
// memory): element i of the A fragment of key step kk sits, in the same lane, in accumulator
// slot `i` of score n-tile `ni` (mma16_a and mma_c place them at the same (row, key)).
struct AccSlot {
  int ni, i;
};
DC_HD constexpr AccSlot p_source(int kk, int i) {
  return {2 * kk + i / 4, 2 * ((i / 2) % 2) + i % 2};
}

// ---- work items ---------------------------------------------------------------------------------

// A block per (slab, 64-query tile); within a slab the last query tiles first, which under
// is_causal are the longest (they visit the most key tiles).
struct Grid {
  int64_t slabs = 0, tiles = 0;
  DC_HD int64_t items() const { return slabs * tiles; }
};
struct Item {
  int64_t slab, tile;
};
inline Grid query_tile_grid(const AttentionDims& d) { return {d.batch, ceil_div(d.L, kBlockQ)}; }
DC_HD inline Item decode_query_tile(int64_t item, int64_t tiles) {
  return {item / tiles, tiles - 1 - item % tiles};
}

// ---- 16-bit values ------------------------------------------------------------------------------

enum Kind : int { kBf16 = 0, kF16 = 1 };

template <int K>
DC_HD inline float to_float(uint16_t h) {
  if constexpr (K == kBf16) return bf16_bits_to_float(h);
  else return f16_bits_to_float(h);
}
// Round to nearest even (core/half.h): how p, the output and a 16-bit lse are rounded.
template <int K>
DC_HD inline uint16_t to_bits(float x) {
  if constexpr (K == kBf16) return float_to_bf16_bits(x);
  else return float_to_f16_bits(x);
}
// Two values in one 32-bit register of an mma fragment, the first in the low half.
template <int K>
DC_HD inline uint32_t pack2(float lo, float hi) {
  return uint32_t(to_bits<K>(lo)) | (uint32_t(to_bits<K>(hi)) << 16);
}

// ---- per-lane arithmetic ------------------------------------------------------------------------

// The score of (query i0 + r, key j0 + c) from its accumulator acc = q . k (float): scaled and
// masked as attention_plan.h's masked_score (a 16-bit additive mask read as its float value),
// -inf outside the nq x nk valid part.
template <int K>
DC_HD inline float tile_score(const AttentionDims& d, float acc, float scale, const void* mask,
                              int64_t i0, int nq, int64_t j0, int nk, int r, int c) {
  const float ninf = -std::numeric_limits<float>::infinity();
  if (r >= nq || c >= nk) return ninf;
  const int64_t i = i0 + r, j = j0 + c;
  float s = acc * scale;
  const int64_t at = i * d.m_rs + j * d.m_cs;
  if (d.mask == cpu::AttentionMask::keep && !static_cast<const bool*>(mask)[at]) s = ninf;
  if (d.mask == cpu::AttentionMask::additive)
    s += to_float<K>(static_cast<const uint16_t*>(mask)[at]);
  if (d.causal && j > i) s = ninf;
  return s;
}

// A lane holds two rows of its warp's 16: h = 0 (row g = lane / 4) in accumulator slots 0, 1 and
// h = 1 (row g + 8) in slots 2, 3, of each n-tile; the 4 lanes of a quad (g) share the rows.
// The lane's maximum of row h (NaN ignored, as max_ignoring_nan); the kernel then reduces it
// over the quad.
template <int N>
DC_HD inline float lane_row_max(const float (&s)[N][4], int h) {
  float m = -std::numeric_limits<float>::infinity();
  DC_UNROLL(16)
  for (int ni = 0; ni < N; ++ni) {
    m = max_ignoring_nan(m, s[ni][2 * h]);
    m = max_ignoring_nan(m, s[ni][2 * h + 1]);
  }
  return m;
}
// p = exp(s - m) in place for row h (0 for a dead row: it has seen no key yet); returns the
// lane's part of the row sum, which the kernel reduces over the quad.
template <int N>
DC_HD inline float lane_row_exp(float (&s)[N][4], int h, const RowRescale<float>& step) {
  float sum = 0.0f;
  DC_UNROLL(16)
  for (int ni = 0; ni < N; ++ni) {
    DC_UNROLL(2)
    for (int e = 0; e < 2; ++e) {
      float& x = s[ni][2 * h + e];
      x = step.dead ? 0.0f : attention_exp(x - step.m);
      sum += x;
    }
  }
  return sum;
}

// Dropout (Note [Dropout inside flash attention]): the lane's 16 probabilities of row h lie at
// keys 8 ni + 2 t + e (t = lane % 4); key c takes word c / 16 of the Philox counter of c % 16
// (attention_plan.h's dropout_words), so four counters per row serve the lane:
// dropout_col(lane, u) for u = 2 (ni % 2) + e, word ni / 2. Kept probabilities are multiplied
// by 1 and dropped ones by 0, as in the float kernels (a NaN stays NaN).
DC_HD constexpr int dropout_col(int lane, int u) { return 8 * (u / 2) + 2 * (lane % 4) + u % 2; }
template <int N>
DC_HD inline void lane_dropout(const AttentionDims& d, float (&s)[N][4], int h, int64_t row,
                               int64_t j0, int lane) {
  static_assert(N == kScoreTiles, "a 64-key tile");
  uint32_t w[4][4];
  DC_UNROLL(4)
  for (int u = 0; u < 4; ++u) dropout_words(d, row, j0 + dropout_col(lane, u), w[u]);
  DC_UNROLL(16)
  for (int ni = 0; ni < N; ++ni) {
    DC_UNROLL(2)
    for (int e = 0; e < 2; ++e)
      s[ni][2 * h + e] *= float(dropout_kept(d, w[2 * (ni % 2) + e][ni / 2]));
  }
}

// The rest of a live row's step, once the quad agreed on its max and sum: l and m advance and
// the row's output accumulators shrink by alpha.
template <int NO>
DC_HD inline void lane_row_update(float (&o)[NO][4], float& m, float& l, int h,
                                  const RowRescale<float>& step, float sum) {
  l = l * step.alpha + sum;
  m = step.m;
  if (step.alpha == 1.0f) return;
  DC_UNROLL(16)
  for (int ni = 0; ni < NO; ++ni) {
    o[ni][2 * h] *= step.alpha;
    o[ni][2 * h + 1] *= step.alpha;
  }
}

// Register j (< 4) of the A fragment of key step kk: p at p_source(kk, 2 j) and (kk, 2 j + 1),
// rounded to 16 bits.
template <int K, int N>
DC_HD inline uint32_t p_register(const float (&s)[N][4], int kk, int j) {
  const AccSlot lo = p_source(kk, 2 * j), hi = p_source(kk, 2 * j + 1);
  return pack2<K>(s[lo.ni][lo.i], s[hi.ni][hi.i]);
}

}  // namespace dc::cuda_kernels::flash_tc
