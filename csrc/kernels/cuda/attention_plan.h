#pragma once
// The plan of the CUDA flash attention kernels (Note [Flash attention on CUDA] in
// kernels/cuda/attention.cu): tile sizes against the shared-memory budget, which thread holds
// which score, the work items of each pass, the key range a query tile sees, the member lists
// of the key/value slabs, and the per-score arithmetic (masks, online softmax, dropout draws,
// the score gradient). Plain C++ where nvcc does not compile it, DC_HD where the kernels call
// it: tests/cpp/test_cuda_attention.cpp runs the kernels' tile loops on the host with these
// functions and checks them against a naive attention and against the cpu kernels.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu/attention.h"
#include "kernels/host_device.h"

namespace dc::cuda_kernels {

namespace attention_math {
// The cpu attention kernels' exp (exp_f32 for float32, std::exp for float64), compiled here
// for the device too, so a probability is the same function of its score on both sides.
#include "kernels/cpu/vec/scalar_math.h"
}  // namespace attention_math

template <typename T>
DC_HD inline T attention_exp(T x) {
  return attention_math::exp_any(x);
}

// ---- tiles ------------------------------------------------------------------------------------

// A block is 256 threads, thread t = (ty, tx) = (t / 16, t % 16). A score tile is 64 queries x
// 64 keys; thread (ty, tx) holds rows tile_row(ty, i) and columns tile_col(tx, j), i, j < 4.
// The 16 threads of a row are one half-warp (lanes 0-15 or 16-31), so row maxima and sums are
// xor-shuffles over offsets 8, 4, 2, 1. Consecutive lanes hold consecutive columns: global
// reads of a row and shared-memory reads of a staged row are conflict-free.
constexpr int kAttnThreads = 256;
constexpr int kTileQ = 64, kTileK = 64;
constexpr int kTileRowsPerThread = kTileQ / 16, kTileColsPerThread = kTileK / 16;
// Row stride of the score tile in shared memory: the odd pitch puts the two half-warps' rows
// (adjacent rows, read by broadcast) in different banks.
constexpr int kTilePitch = kTileK + 1;
static_assert(kTileQ == kTileK, "the backward's transposed tile products assume square tiles");

DC_HD constexpr int tile_row(int ty, int i) { return ty + 16 * i; }
DC_HD constexpr int tile_col(int tx, int j) { return tx + 16 * j; }

// Staged slices. The score GEMMs (q k^T, dout v^T) stage `depth` reduction columns of 64 rows
// of each operand, transposed ([depth][kTileQ + 1]); the tile products (p v, ds k, p^T dout,
// ds^T q) stage `stage_rows` rows of `cols` output columns. Both live in one buffer.
DC_HD constexpr int stage_depth(size_t itemsize) { return itemsize == 4 ? 16 : 8; }
DC_HD constexpr int stage_elems(size_t itemsize) {
  return 2 * stage_depth(itemsize) * (kTileQ + 1);
}
DC_HD constexpr int stage_rows(size_t itemsize, int cols) {
  return (kTileQ + kTileK) * stage_depth(itemsize) / cols;
}
// Static shared memory of a block: the score tile and the stage. Under the 48 KB a block gets
// without opting in: 24960 bytes in float32, 41600 in float64.
DC_HD constexpr size_t attention_smem_bytes(size_t itemsize) {
  return static_cast<size_t>(kTileQ * kTilePitch + stage_elems(itemsize)) * itemsize;
}
constexpr size_t kStaticSmemLimit = 48 * 1024;
static_assert(attention_smem_bytes(4) <= kStaticSmemLimit, "float32 tiles overflow 48 KB");
static_assert(attention_smem_bytes(8) <= kStaticSmemLimit, "float64 tiles overflow 48 KB");

// Output columns a block owns, the `cols` of its accumulators (cols / 16 per thread and row).
// 128 halves the score recomputation for head sizes 65..128 at 32 (64) more accumulator
// registers in float32 (float64); the dk/dv pass holds two accumulators next to the score and
// dp tiles, so in float64 it stays at 64 (128 would spill).
inline int forward_cols(int64_t Ev) { return Ev > 64 ? 128 : 64; }
inline int backward_kv_cols(size_t itemsize, int64_t E, int64_t Ev) {
  return itemsize == 4 && (E > 64 || Ev > 64) ? 128 : 64;
}
inline int backward_q_cols(int64_t E) { return E > 64 ? 128 : 64; }

// ---- the call's scalars -------------------------------------------------------------------

// What the kernels read of an AttentionGeom (its offset arrays are uploaded separately).
struct AttentionDims {
  int64_t batch = 0, kv_batch = 0, L = 0, S = 0, E = 0, Ev = 0;
  int64_t q_rs = 0, k_rs = 0, v_rs = 0, m_rs = 0, m_cs = 0;
  cpu::AttentionMask mask = cpu::AttentionMask::none;
  bool causal = false;
  double scale = 1.0;
  // Dropout (Note [Dropout inside flash attention] in kernels/cpu/vec/attention_kernels.cpp):
  // a draw is kept when its top 24 bits are below keep_below; kept probabilities are
  // multiplied by factor (1 without dropout, 0 when p = 1).
  bool dropout = false;
  uint32_t keep_below = 0;
  double factor = 1.0;
  uint64_t seed = 0, offset = 0;
};

inline AttentionDims attention_dims(const cpu::AttentionGeom& g) {
  AttentionDims d;
  d.batch = g.batch, d.kv_batch = g.kv_batch, d.L = g.L, d.S = g.S, d.E = g.E, d.Ev = g.Ev;
  d.q_rs = g.q_rs, d.k_rs = g.k_rs, d.v_rs = g.v_rs, d.m_rs = g.m_rs, d.m_cs = g.m_cs;
  d.mask = g.mask, d.causal = g.causal, d.scale = g.scale;
  if (g.dropout_p > 0.0) {  // the cpu's DropoutRule
    d.dropout = true;
    d.keep_below = static_cast<uint32_t>(std::ceil((1.0 - g.dropout_p) * 16777216.0));
    d.factor = g.dropout_p < 1.0 ? 1.0 / (1.0 - g.dropout_p) : 0.0;
    d.seed = g.seed, d.offset = g.offset;
  }
  return d;
}

// ---- work items -----------------------------------------------------------------------------

// One pass's items: slabs x tiles x column chunks, chunks fastest (neighbouring blocks read
// the same slab). A block takes items blockIdx.x, blockIdx.x + gridDim.x, ...
struct TileGrid {
  int64_t slabs = 0, tiles = 0, chunks = 0;
  int cols = 64;
  DC_HD int64_t items() const { return slabs * tiles * chunks; }
};
struct TileItem {
  int64_t slab, tile, chunk;
};
DC_HD inline TileItem decode_item(int64_t item, int64_t tiles, int64_t chunks) {
  return {item / (tiles * chunks), (item / chunks) % tiles, item % chunks};
}

DC_HD constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
DC_HD constexpr int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
// Columns [c0, c0 + cols) of a width-n row that exist: 0 .. cols.
DC_HD constexpr int chunk_width(int64_t n, int64_t c0, int cols) {
  return n - c0 <= 0 ? 0 : static_cast<int>(min64(cols, n - c0));
}

// Forward: a block per (slab, query tile, Ev chunk). At least one chunk even when Ev = 0, since
// the chunk-0 block writes the logsumexp.
inline TileGrid forward_grid(const AttentionDims& d) {
  TileGrid t;
  t.cols = forward_cols(d.Ev);
  t.slabs = d.batch;
  t.tiles = ceil_div(d.L, kTileQ);
  t.chunks = d.Ev > 0 ? ceil_div(d.Ev, t.cols) : 1;
  return t;
}
// Backward, dk and dv: a block per (key/value slab, key tile, column chunk of both E and Ev).
inline TileGrid backward_kv_grid(const AttentionDims& d, size_t itemsize) {
  TileGrid t;
  t.cols = backward_kv_cols(itemsize, d.E, d.Ev);
  t.slabs = d.kv_batch;
  t.tiles = ceil_div(d.S, kTileK);
  t.chunks = ceil_div(d.E > d.Ev ? d.E : d.Ev, t.cols);
  return t;
}
// Backward, dq: a block per (query slab, query tile, E chunk).
inline TileGrid backward_q_grid(const AttentionDims& d) {
  TileGrid t;
  t.cols = backward_q_cols(d.E);
  t.slabs = d.batch;
  t.tiles = ceil_div(d.L, kTileQ);
  t.chunks = ceil_div(d.E, t.cols);
  return t;
}

// Keys the query tile at i0 visits: all, or with is_causal up to its last query (the cpu's
// key_end with the same 64-query tiles). Keys past it are causally masked for the whole tile.
DC_HD inline int64_t key_end(const AttentionDims& d, int64_t i0) {
  const int64_t last = min64(i0 + kTileQ, d.L);
  return d.causal ? min64(d.S, last) : d.S;
}
// The first query tile that visits the key tile at j0 (j0 < key_end of every later tile).
DC_HD inline int64_t first_query_tile(const AttentionDims& d, int64_t j0) {
  return d.causal ? j0 / kTileQ : 0;
}

// The query slabs that read each key/value slab, in order: members[start[u] .. start[u + 1]).
// dk and dv of slab u sum over them in this order (the cpu's counting sort of kv_index).
struct KvMembers {
  std::vector<int64_t> start, members;
};
inline KvMembers kv_members(const std::vector<int64_t>& kv_index, int64_t kv_batch) {
  KvMembers m;
  m.start.assign(kv_batch + 1, 0);
  m.members.resize(kv_index.size());
  for (int64_t u : kv_index) ++m.start[u + 1];
  for (int64_t u = 0; u < kv_batch; ++u) m.start[u + 1] += m.start[u];
  std::vector<int64_t> fill(m.start.begin(), m.start.end() - 1);
  for (size_t b = 0; b < kv_index.size(); ++b) m.members[fill[kv_index[b]]++] = b;
  return m;
}

// ---- per-score arithmetic -----------------------------------------------------------------

// The mask of slab b: the mask tensor's data advanced by m_off[b] elements (bool or T).
template <typename T>
DC_HD inline const void* mask_slab(const AttentionDims& d, const void* mask, int64_t m_off) {
  if (d.mask == cpu::AttentionMask::none) return nullptr;
  const size_t item = d.mask == cpu::AttentionMask::keep ? sizeof(bool) : sizeof(T);
  return static_cast<const char*>(mask) + m_off * static_cast<int64_t>(item);
}

// The score of (query i, key j) of a slab, given s = scale * q_i . k_j: a hidden key -inf, an
// additive mask added, then the causal triangle (the cpu's scores_tile).
template <typename T>
DC_HD inline T masked_score(const AttentionDims& d, T s, const void* mask, int64_t i, int64_t j) {
  const T ninf = -std::numeric_limits<T>::infinity();
  const int64_t at = i * d.m_rs + j * d.m_cs;
  if (d.mask == cpu::AttentionMask::keep && !static_cast<const bool*>(mask)[at]) s = ninf;
  if (d.mask == cpu::AttentionMask::additive) s += static_cast<const T*>(mask)[at];
  if (d.causal && j > i) s = ninf;
  return s;
}

// With a mask, a tile whose every score is -inf (or NaN) is skipped, as on the cpu: only
// then, since without one no row of a visited tile is all hidden.
DC_HD inline bool skips_hidden_tiles(const AttentionDims& d) {
  return d.mask != cpu::AttentionMask::none;
}

// max(m, x) with a NaN x ignored (the cpu's row_max): a NaN score still makes its row NaN
// through exp(NaN - m).
template <typename T>
DC_HD inline T max_ignoring_nan(T m, T x) {
  return x > m ? x : m;
}

// One tile's step of the online softmax for a row with running max m and tile max tile_max:
// the new max, and alpha = exp(m - m_new), by which the running sum and output shrink. A row
// that has seen no visible key yet (new max -inf) is dead: its tile contributes nothing.
template <typename T>
struct RowRescale {
  T m, alpha;
  bool dead;
};
template <typename T>
DC_HD inline RowRescale<T> online_rescale(T m, T tile_max) {
  const T m_new = m < tile_max ? tile_max : m;
  if (m_new == -std::numeric_limits<T>::infinity()) return {m_new, T(1), true};
  return {m_new, attention_exp(m - m_new), false};
}

// A finished row with sum l and accumulator acc: out = acc * factor / l, lse = m + log(l); a
// row without any key (l = 0, or NaN) gives out 0 and lse +inf, as on the cpu.
template <typename T>
DC_HD inline T row_output(T acc, T l, T factor) {
  return l > T(0) ? acc * (factor / l) : T(0);
}
template <typename T>
DC_HD inline T row_lse(T m, T l) {
  return l > T(0) ? m + std::log(l) : std::numeric_limits<T>::infinity();
}

// ds = p (dp - D) of one score, p the recomputed softmax, dp = dout . v_j, D = dout . out; with
// dropout dp is that of the dropped probability (times keep and the factor).
template <typename T>
DC_HD inline T score_grad(const AttentionDims& d, T p, T dp, T D, bool kept, T factor) {
  return d.dropout ? p * (dp * (T(kept) * factor) - D) : p * (dp - D);
}

// ---- dropout draws --------------------------------------------------------------------------

// Philox counters per query row: 16 per 64 keys (attention_dropout_row_counters).
DC_HD constexpr uint64_t dropout_row_counters(int64_t S) {
  return static_cast<uint64_t>((S + 63) / 64) * 16;
}
// The four Philox words at the counter of (row = slab * L + query, key): w[k] is the draw of
// key 64 * (key / 64) + 16 k + key % 16. A thread of a score tile starting at j0 (a multiple of
// 64) calls it with key j0 + tx: w[j] is then the draw of its column tile_col(tx, j).
DC_HD inline void dropout_words(const AttentionDims& d, int64_t row, int64_t key,
                                uint32_t (&w)[4]) {
  philox_words(d.seed,
               d.offset + static_cast<uint64_t>(row) * dropout_row_counters(d.S) +
                   16 * static_cast<uint64_t>(key / 64) + static_cast<uint64_t>(key % 16),
               w);
}
DC_HD constexpr bool dropout_kept(const AttentionDims& d, uint32_t word) {
  return (word >> 8) < d.keep_below;
}
// Whether (row, key) survives: the cpu's sdpa_dropout_mask is nonzero exactly there.
DC_HD inline bool dropout_keep(const AttentionDims& d, int64_t row, int64_t key) {
  uint32_t w[4];
  dropout_words(d, row, key, w);
  return dropout_kept(d, w[(key % 64) / 16]);
}

}  // namespace dc::cuda_kernels
