// CUDA flash attention: dc::cpu::sdpa_flash_forward, sdpa_flash_backward and sdpa_dropout_mask
// (kernels/cpu/attention.h) with the cpu's contract: out[batch, L, Ev] and lse[batch, L]
// (+inf and zeros for a row without keys), dq[batch, L, E], dk[kv_batch, S, E] and
// dv[kv_batch, S, Ev] overwritten, the slabs read through AttentionGeom's offsets, masks,
// is_causal (top-left), and the dropout draws of Note [Dropout inside flash attention]
// (kernels/cpu/vec/attention_kernels.cpp), so a seed drops the same entries on both devices.
//
// Note [Flash attention on CUDA]
// FlashAttention-2 on CUDA-core FMAs, float32 and float64 (tensor cores for bf16 / tf32 are to
// come). Tiles, thread layout and items: kernels/cuda/attention_plan.h. A block of 256 threads
// holds a 64 x 64 score tile in registers (4 x 4 per thread) and in shared memory when it is
// the left operand of a product.
//   Forward, a block per (slab b, 64-query tile, Ev chunk of 64 or 128 columns):
//     for each 64-key tile up to key_end (causal: the tile's last query):
//       s = scale q k^T (q and k staged in slices of 16 (float64: 8) columns), mask, causal
//       online softmax per row: m' = max(m, rowmax s); p = exp(s - m');
//         l = l exp(m - m') + rowsum p; acc *= exp(m - m')       (half-warp shuffles)
//       dropout zeroes p after the sum (l sees every key, as on the cpu)
//       acc[64, cols] += p v                      (p in shared memory, v staged by rows)
//     out = acc * factor / l, lse = m + log(l)
//   Ev > 128 splits the output columns over blocks that each recompute the scores (identical
//   in every chunk: chunk 0 writes lse). Memory stays O(L) per slab, like the cpu's.
//   Backward, deterministic, no atomics: D = rowsum(dout * out) (a warp per row), then two
//   passes that both recompute p = exp(s - lse) and dp = dout v^T per tile,
//   ds = p (dp - D) (dropout: Note [Dropout inside flash attention]):
//     dk, dv: a block per (key/value slab u, 64-key tile, column chunk); it walks the query
//       slabs that read u (kv_members: GQA heads, broadcast batches) and their query tiles in
//       a fixed order: dv += factor (p keep)^T dout, dk += scale ds^T q;
//     dq: a block per (query slab, 64-query tile, E chunk), dq += scale ds k over its keys.
//   Each output element is summed by one thread in a fixed order: results do not depend on the
//   grid. The price is the scores and dp computed twice (about 1.4x the atomics scheme's work)
//   and dk/dv parallel over kv_batch x key tiles only (one kv head, short S: few blocks).
// Static shared memory only (24960 / 41600 bytes a block in float32 / float64). ptxas (sm_80,
// sm_90) gives no spills; registers: forward 120-128 in float32 (two blocks per SM), 174-214
// in float64; backward 153-236 and 199-255. Occupancy is low by design: the 4 x 4 and 4 x C/16
// register tiles are what keep the FMAs fed from shared memory.
// Scores are accumulated in T as the cpu's GEMMs do; exp is the cpu's (attention_exp). With a
// mask, a tile whose every score is hidden is skipped, as on the cpu. Tiles differ from the
// cpu's (64 x 128 there), so sums round differently, and where a value is not finite the two
// can differ on entries a tile hides (NaN or inf in v times a hidden p = 0, on the cpu only
// inside the keys its own tile spans).
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {

// bfloat16 / float16 q, k, v: the tensor-core forward (Note [Flash attention on tensor cores]).
void sdpa_flash_forward_tensor_cores(const cpu::AttentionGeom& g, const Tensor& q,
                                     const Tensor& k, const Tensor& v, const Tensor& mask,
                                     const Tensor& out, const Tensor& lse);  // attention_tc.cu

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";
constexpr unsigned kFullWarp = 0xffffffffu;

// The per-call device operands. Offsets are element offsets of each slab (AttentionGeom).
template <typename T>
struct Operands {
  const T* q;
  const T* k;
  const T* v;
  const void* mask;  // null without one
  const int64_t* q_off;
  const int64_t* k_off;
  const int64_t* v_off;
  const int64_t* m_off;  // null without a mask
};

// The backward's further operands.
template <typename T>
struct Grads {
  const T* lse;     // [batch, L]
  const T* dout;    // [batch, L, Ev]
  const T* delta;   // [batch, L]: rowsum(dout * out)
  const int64_t* kv_start;    // [kv_batch + 1]
  const int64_t* kv_members;  // [batch]
  T* dq;
  T* dk;
  T* dv;
};

template <typename T>
struct TileSmem {
  T tile[kTileQ][kTilePitch];  // p or ds, [query][key]
  T stage[stage_elems(sizeof(T))];
};

// Reductions over the 16 threads of a tile row (a half-warp: xor offsets below 16 stay in it).
// Called by every thread of the block, in uniform control flow.
template <typename T>
__device__ __forceinline__ T row_max16(T v) {
  for (int o = 8; o > 0; o /= 2) v = max_ignoring_nan(v, __shfl_xor_sync(kFullWarp, v, o));
  return v;
}
template <typename T>
__device__ __forceinline__ T row_sum16(T v) {
  for (int o = 8; o > 0; o /= 2) v += __shfl_xor_sync(kFullWarp, v, o);
  return v;
}

// acc[i][j] += sum_e a[r][e] b[c][e] over e < n, r = tile_row(ty, i), c = tile_col(tx, j):
// a tile of a b^T. a has na valid rows (row stride ars), b nb (stride brs); the others read 0.
// Each slice of `depth` columns is staged transposed, [depth][kTileQ + 1], both operands.
template <typename T>
__device__ __forceinline__ void score_tile(T (&acc)[kTileRowsPerThread][kTileColsPerThread],
                                          const T* a, int64_t ars, int na, const T* b,
                                          int64_t brs, int nb, int64_t n, T* stage) {
  constexpr int D = stage_depth(sizeof(T)), P = kTileQ + 1;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  T* as = stage;
  T* bs = stage + D * P;
  for (int64_t e0 = 0; e0 < n; e0 += D) {
    __syncthreads();  // the stage's previous readers are done
    for (int x = threadIdx.x; x < kTileQ * D; x += kAttnThreads) {
      const int r = x / D, kk = x % D;  // consecutive threads read along a row
      const int64_t e = e0 + kk;
      as[kk * P + r] = r < na && e < n ? a[r * ars + e] : T(0);
      bs[kk * P + r] = r < nb && e < n ? b[r * brs + e] : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < D; ++kk) {
      T x[kTileRowsPerThread], y[kTileColsPerThread];
#pragma unroll
      for (int i = 0; i < kTileRowsPerThread; ++i) x[i] = as[kk * P + tile_row(ty, i)];
#pragma unroll
      for (int j = 0; j < kTileColsPerThread; ++j) y[j] = bs[kk * P + tile_col(tx, j)];
#pragma unroll
      for (int i = 0; i < kTileRowsPerThread; ++i)
#pragma unroll
        for (int j = 0; j < kTileColsPerThread; ++j) acc[i][j] += x[i] * y[j];
    }
  }
}

// acc[i][j] += sum_k X(r, k) b[k][c] over k < nk, r = tile_row(ty, i), c = tile_col(tx, j) < C,
// X(r, k) = tile[r][k], or tile[k][r] when kTransposed; b has nc valid columns (row stride
// brs), the rest read 0. The tile's entries past nk are 0, so those rows are not visited; with
// nc = 0 (a chunk past Ev or E) nothing is. Callers sync before writing the tile again.
template <typename T, int C, bool kTransposed>
__device__ __forceinline__ void tile_product(T (&acc)[kTileRowsPerThread][C / 16],
                                            const T (*tile)[kTilePitch], const T* b,
                                            int64_t brs, int nk, int nc, T* stage) {
  constexpr int R = stage_rows(sizeof(T), C);
  static_assert(kTileK % R == 0 && R * C <= stage_elems(sizeof(T)), "stage too small");
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  if (nc == 0) return;  // the same in every thread
  for (int k0 = 0; k0 < nk; k0 += R) {
    __syncthreads();  // the stage's previous readers are done, the tile's writes visible
    for (int x = threadIdx.x; x < R * C; x += kAttnThreads) {
      const int kk = x / C, c = x % C;
      stage[x] = k0 + kk < nk && c < nc ? b[static_cast<int64_t>(k0 + kk) * brs + c] : T(0);
    }
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < R; ++kk) {
      T x[kTileRowsPerThread], y[C / 16];
#pragma unroll
      for (int i = 0; i < kTileRowsPerThread; ++i)
        x[i] = kTransposed ? tile[k0 + kk][tile_row(ty, i)] : tile[tile_row(ty, i)][k0 + kk];
#pragma unroll
      for (int j = 0; j < C / 16; ++j) y[j] = stage[kk * C + tile_col(tx, j)];
#pragma unroll
      for (int i = 0; i < kTileRowsPerThread; ++i)
#pragma unroll
        for (int j = 0; j < C / 16; ++j) acc[i][j] += x[i] * y[j];
    }
  }
}

// Scores of the tile (i0, j0) of slab b: scale q k^T, masked; entries outside the nq x nk
// valid part -inf. Returns false when the tile is to be skipped (skips_hidden_tiles and every
// score hidden); the same value in every thread.
template <typename T>
__device__ __forceinline__ bool masked_scores(T (&s)[kTileRowsPerThread][kTileColsPerThread],
                                             const AttentionDims& d, const void* mask,
                                             int64_t i0, int nq, int64_t j0, int nk) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const T ninf = -std::numeric_limits<T>::infinity(), scale = static_cast<T>(d.scale);
  bool visible = false;
#pragma unroll
  for (int i = 0; i < kTileRowsPerThread; ++i)
#pragma unroll
    for (int j = 0; j < kTileColsPerThread; ++j) {
      const int r = tile_row(ty, i), c = tile_col(tx, j);
      s[i][j] = r < nq && c < nk ? masked_score(d, s[i][j] * scale, mask, i0 + r, j0 + c) : ninf;
      visible = visible || s[i][j] > ninf;
    }
  if (!skips_hidden_tiles(d)) return true;
  return __syncthreads_or(visible) != 0;
}

// ---- forward --------------------------------------------------------------------------------

// out[b, i0 : i0 + 64, c0 : c0 + C] and lse[b, i0 : i0 + 64] per item (Note [Flash attention on
// CUDA]); thread (ty, tx) owns rows tile_row(ty, i) and output columns c0 + tile_col(tx, j).
template <typename T, int C>
__global__ void __launch_bounds__(kAttnThreads)
    flash_forward(AttentionDims d, TileGrid grid, Operands<T> in, T* out, T* lse) {
  __shared__ TileSmem<T> sm;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const T ninf = -std::numeric_limits<T>::infinity(), factor = static_cast<T>(d.factor);
  const int64_t items = grid.items();
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const TileItem it = decode_item(item, grid.tiles, grid.chunks);
    const int64_t b = it.slab, i0 = it.tile * kTileQ, c0 = it.chunk * C;
    const int nq = static_cast<int>(min64(kTileQ, d.L - i0));
    const int nc = chunk_width(d.Ev, c0, C);
    const T* q = in.q + in.q_off[b] + i0 * d.q_rs;
    const T* k = in.k + in.k_off[b];
    const T* v = in.v + in.v_off[b] + c0;
    const void* mask = in.m_off ? mask_slab<T>(d, in.mask, in.m_off[b]) : nullptr;
    T m[kTileRowsPerThread], l[kTileRowsPerThread], acc[kTileRowsPerThread][C / 16];
#pragma unroll
    for (int i = 0; i < kTileRowsPerThread; ++i) {
      m[i] = ninf;
      l[i] = T(0);
#pragma unroll
      for (int j = 0; j < C / 16; ++j) acc[i][j] = T(0);
    }
    const int64_t kend = key_end(d, i0);
    for (int64_t j0 = 0; j0 < kend; j0 += kTileK) {
      const int nk = static_cast<int>(min64(kTileK, kend - j0));
      T s[kTileRowsPerThread][kTileColsPerThread] = {};
      score_tile(s, q, d.q_rs, nq, k + j0 * d.k_rs, d.k_rs, nk, d.E, sm.stage);
      if (!masked_scores(s, d, mask, i0, nq, j0, nk)) continue;
#pragma unroll
      for (int i = 0; i < kTileRowsPerThread; ++i) {
        T tmax = ninf;
#pragma unroll
        for (int j = 0; j < kTileColsPerThread; ++j) tmax = max_ignoring_nan(tmax, s[i][j]);
        const RowRescale<T> step = online_rescale(m[i], row_max16(tmax));  // same in the row
        T sum = T(0);
#pragma unroll
        for (int j = 0; j < kTileColsPerThread; ++j) {
          s[i][j] = step.dead ? T(0) : attention_exp(s[i][j] - step.m);  // -inf -> 0
          sum += s[i][j];
        }
        sum = row_sum16(sum);
        if (step.dead) continue;  // nothing seen yet: m, l and acc stay
        if (d.dropout) {  // after the sum: l takes every key
          uint32_t w[4];
          dropout_words(d, b * d.L + i0 + tile_row(ty, i), j0 + tx, w);
#pragma unroll
          for (int j = 0; j < kTileColsPerThread; ++j) s[i][j] *= T(dropout_kept(d, w[j]));
        }
        l[i] = l[i] * step.alpha + sum;
        m[i] = step.m;
        if (step.alpha != T(1))
#pragma unroll
          for (int j = 0; j < C / 16; ++j) acc[i][j] *= step.alpha;
      }
      __syncthreads();  // the previous tile's p is read
#pragma unroll
      for (int i = 0; i < kTileRowsPerThread; ++i)
#pragma unroll
        for (int j = 0; j < kTileColsPerThread; ++j)
          sm.tile[tile_row(ty, i)][tile_col(tx, j)] = s[i][j];
      tile_product<T, C, false>(acc, sm.tile, v + j0 * d.v_rs, d.v_rs, nk, nc, sm.stage);
    }
#pragma unroll
    for (int i = 0; i < kTileRowsPerThread; ++i) {
      const int r = tile_row(ty, i);
      if (r >= nq) continue;
      const int64_t row = b * d.L + i0 + r;
#pragma unroll
      for (int j = 0; j < C / 16; ++j)
        if (tile_col(tx, j) < nc)
          out[row * d.Ev + c0 + tile_col(tx, j)] = row_output(acc[i][j], l[i], factor);
      if (it.chunk == 0 && tx == 0) lse[row] = row_lse(m[i], l[i]);
    }
  }
}

// ---- backward -------------------------------------------------------------------------------

// delta[row] = sum_c dout[row, c] out[row, c], a warp per row (the cpu's D, summed in T).
template <typename T>
__global__ void flash_delta(const T* dout, const T* out, T* delta, int64_t rows, int64_t Ev) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32;
       r < rows; r += warps) {
    T s = T(0);
    for (int64_t c = lane; c < Ev; c += 32) s += dout[r * Ev + c] * out[r * Ev + c];
    for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(kFullWarp, s, o);
    if (lane == 0) delta[r] = s;
  }
}

// p (times keep) and ds of the tile (i0, j0) of slab b, from its masked scores s and
// dp = dout v^T; entries outside nq x nk are 0. p replaces s, ds replaces dp.
template <typename T>
__device__ __forceinline__ void tile_grads(T (&s)[kTileRowsPerThread][kTileColsPerThread],
                                          T (&dp)[kTileRowsPerThread][kTileColsPerThread],
                                          const AttentionDims& d, const Grads<T>& gr, int64_t b,
                                          int64_t i0, int nq, int64_t j0, int nk) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const T factor = static_cast<T>(d.factor);
#pragma unroll
  for (int i = 0; i < kTileRowsPerThread; ++i) {
    const int r = tile_row(ty, i);
    const int64_t row = b * d.L + i0 + r;
    const T lse = r < nq ? gr.lse[row] : T(0), D = r < nq ? gr.delta[row] : T(0);
    uint32_t w[4] = {~0u, ~0u, ~0u, ~0u};
    if (d.dropout && r < nq) dropout_words(d, row, j0 + tx, w);
#pragma unroll
    for (int j = 0; j < kTileColsPerThread; ++j) {
      const bool valid = r < nq && tile_col(tx, j) < nk;
      const bool kept = !d.dropout || dropout_kept(d, w[j]);
      const T p = valid ? attention_exp(s[i][j] - lse) : T(0);  // a dead row: lse +inf, p 0
      dp[i][j] = valid ? score_grad(d, p, dp[i][j], D, kept, factor) : T(0);
      s[i][j] = p * T(kept);
    }
  }
}

// dk[u, j0 : j0 + 64, c0 : c0 + C] and dv[...] per item; thread (ty, tx) owns keys
// j0 + tile_row(ty, i) and columns c0 + tile_col(tx, j).
template <typename T, int C>
__global__ void __launch_bounds__(kAttnThreads)
    flash_backward_kv(AttentionDims d, TileGrid grid, Operands<T> in, Grads<T> gr) {
  __shared__ TileSmem<T> sm;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t items = grid.items(), q_tiles = ceil_div(d.L, kTileQ);
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const TileItem it = decode_item(item, grid.tiles, grid.chunks);
    const int64_t u = it.slab, j0 = it.tile * kTileK, c0 = it.chunk * C;
    const int nce = chunk_width(d.E, c0, C), ncv = chunk_width(d.Ev, c0, C);
    T dk[kTileRowsPerThread][C / 16] = {}, dv[kTileRowsPerThread][C / 16] = {};
    for (int64_t mi = gr.kv_start[u]; mi < gr.kv_start[u + 1]; ++mi) {
      const int64_t b = gr.kv_members[mi];
      const T* q = in.q + in.q_off[b];
      const T* k = in.k + in.k_off[b] + j0 * d.k_rs;
      const T* v = in.v + in.v_off[b] + j0 * d.v_rs;
      const T* dout = gr.dout + b * d.L * d.Ev;
      const void* mask = in.m_off ? mask_slab<T>(d, in.mask, in.m_off[b]) : nullptr;
      for (int64_t qt = first_query_tile(d, j0); qt < q_tiles; ++qt) {
        const int64_t i0 = qt * kTileQ, kend = key_end(d, i0);
        if (j0 >= kend) continue;
        const int nq = static_cast<int>(min64(kTileQ, d.L - i0));
        const int nk = static_cast<int>(min64(kTileK, kend - j0));
        T s[kTileRowsPerThread][kTileColsPerThread] = {};
        T dp[kTileRowsPerThread][kTileColsPerThread] = {};
        score_tile(s, q + i0 * d.q_rs, d.q_rs, nq, k, d.k_rs, nk, d.E, sm.stage);
        if (!masked_scores(s, d, mask, i0, nq, j0, nk)) continue;
        score_tile(dp, dout + i0 * d.Ev, d.Ev, nq, v, d.v_rs, nk, d.Ev, sm.stage);
        tile_grads(s, dp, d, gr, b, i0, nq, j0, nk);
        __syncthreads();  // the previous product's tile reads are done
#pragma unroll
        for (int i = 0; i < kTileRowsPerThread; ++i)
#pragma unroll
          for (int j = 0; j < kTileColsPerThread; ++j)
            sm.tile[tile_row(ty, i)][tile_col(tx, j)] = s[i][j];
        tile_product<T, C, true>(dv, sm.tile, dout + i0 * d.Ev + c0, d.Ev, nq, ncv, sm.stage);
        __syncthreads();
#pragma unroll
        for (int i = 0; i < kTileRowsPerThread; ++i)
#pragma unroll
          for (int j = 0; j < kTileColsPerThread; ++j)
            sm.tile[tile_row(ty, i)][tile_col(tx, j)] = dp[i][j];
        tile_product<T, C, true>(dk, sm.tile, q + i0 * d.q_rs + c0, d.q_rs, nq, nce, sm.stage);
      }
    }
    const T scale = static_cast<T>(d.scale), factor = static_cast<T>(d.factor);
    const int nkt = static_cast<int>(min64(kTileK, d.S - j0));
#pragma unroll
    for (int i = 0; i < kTileRowsPerThread; ++i) {
      const int r = tile_row(ty, i);
      if (r >= nkt) continue;
      const int64_t key = u * d.S + j0 + r;
#pragma unroll
      for (int j = 0; j < C / 16; ++j) {
        const int c = tile_col(tx, j);
        if (c < nce) gr.dk[key * d.E + c0 + c] = dk[i][j] * scale;
        if (c < ncv) gr.dv[key * d.Ev + c0 + c] = dv[i][j] * factor;
      }
    }
  }
}

// dq[b, i0 : i0 + 64, c0 : c0 + C] per item; thread (ty, tx) owns rows tile_row(ty, i) and
// columns c0 + tile_col(tx, j).
template <typename T, int C>
__global__ void __launch_bounds__(kAttnThreads)
    flash_backward_q(AttentionDims d, TileGrid grid, Operands<T> in, Grads<T> gr) {
  __shared__ TileSmem<T> sm;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t items = grid.items();
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const TileItem it = decode_item(item, grid.tiles, grid.chunks);
    const int64_t b = it.slab, i0 = it.tile * kTileQ, c0 = it.chunk * C;
    const int nq = static_cast<int>(min64(kTileQ, d.L - i0));
    const int nce = chunk_width(d.E, c0, C);
    const T* q = in.q + in.q_off[b] + i0 * d.q_rs;
    const T* k = in.k + in.k_off[b];
    const T* v = in.v + in.v_off[b];
    const T* dout = gr.dout + (b * d.L + i0) * d.Ev;
    const void* mask = in.m_off ? mask_slab<T>(d, in.mask, in.m_off[b]) : nullptr;
    T dq[kTileRowsPerThread][C / 16] = {};
    const int64_t kend = key_end(d, i0);
    for (int64_t j0 = 0; j0 < kend; j0 += kTileK) {
      const int nk = static_cast<int>(min64(kTileK, kend - j0));
      T s[kTileRowsPerThread][kTileColsPerThread] = {};
      T dp[kTileRowsPerThread][kTileColsPerThread] = {};
      score_tile(s, q, d.q_rs, nq, k + j0 * d.k_rs, d.k_rs, nk, d.E, sm.stage);
      if (!masked_scores(s, d, mask, i0, nq, j0, nk)) continue;
      score_tile(dp, dout, d.Ev, nq, v + j0 * d.v_rs, d.v_rs, nk, d.Ev, sm.stage);
      tile_grads(s, dp, d, gr, b, i0, nq, j0, nk);
      __syncthreads();  // the previous product's tile reads are done
#pragma unroll
      for (int i = 0; i < kTileRowsPerThread; ++i)
#pragma unroll
        for (int j = 0; j < kTileColsPerThread; ++j)
          sm.tile[tile_row(ty, i)][tile_col(tx, j)] = dp[i][j];
      tile_product<T, C, false>(dq, sm.tile, k + j0 * d.k_rs + c0, d.k_rs, nk, nce, sm.stage);
    }
    const T scale = static_cast<T>(d.scale);
#pragma unroll
    for (int i = 0; i < kTileRowsPerThread; ++i) {
      const int r = tile_row(ty, i);
      if (r >= nq) continue;
#pragma unroll
      for (int j = 0; j < C / 16; ++j)
        if (tile_col(tx, j) < nce)
          gr.dq[(b * d.L + i0 + r) * d.E + c0 + tile_col(tx, j)] = dq[i][j] * scale;
    }
  }
}

// drop[row, key] = factor where (row, key) is kept, else 0; a thread per Philox counter writes
// the four keys its words draw (dropout_words).
template <typename T>
__global__ void flash_dropout_mask(AttentionDims d, T* drop, int64_t counters) {
  const int64_t per_row = static_cast<int64_t>(dropout_row_counters(d.S));
  const T factor = static_cast<T>(d.factor);
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < counters;
       t += step) {
    const int64_t row = t / per_row, c = t % per_row;
    const int64_t key0 = 64 * (c / 16) + c % 16;
    uint32_t w[4];
    dropout_words(d, row, key0, w);
    for (int j = 0; j < 4; ++j) {
      const int64_t key = key0 + 16 * j;
      if (key < d.S) drop[row * d.S + key] = dropout_kept(d, w[j]) ? factor : T(0);
    }
  }
}

// ---- host side ------------------------------------------------------------------------------

// What the kernels rely on: one offset per slab, a mask of the kind the geometry names, and
// (backward) key/value slab indices in range.
void check_geom(const cpu::AttentionGeom& g, const Tensor& q, const Tensor& k, const Tensor& v,
                const Tensor& mask, bool backward) {
  DC_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(), TypeError, "[", kOp,
           "] query, key and value must have the same dtype, got ", dtype_name(q.dtype()), ", ",
           dtype_name(k.dtype()), " and ", dtype_name(v.dtype()));
  const size_t n = static_cast<size_t>(g.batch);
  DC_CHECK(g.q_off.size() == n && g.k_off.size() == n && g.v_off.size() == n &&
               (g.mask == cpu::AttentionMask::none || g.m_off.size() == n) &&
               (!backward || g.kv_index.size() == n),
           ValueError, "[", kOp, "] the geometry needs one offset per slab (", g.batch,
           "), got ", g.q_off.size(), " query offsets");
  if (backward)
    for (int64_t u : g.kv_index)
      DC_CHECK(u >= 0 && u < g.kv_batch, ValueError, "[", kOp, "] key/value slab index ", u,
               " out of range for ", g.kv_batch, " slabs");
  if (g.mask != cpu::AttentionMask::none) {
    const DType want = g.mask == cpu::AttentionMask::keep ? DType::Bool : q.dtype();
    DC_CHECK(mask.defined() && mask.dtype() == want, TypeError, "[", kOp, "] attn_mask must be ",
             dtype_name(want), ", got ", mask.defined() ? dtype_name(mask.dtype()) : "none");
  }
}

// The device operands; `keep` holds the uploaded offset arrays until the kernels are queued.
template <typename T>
Operands<T> operands(const cpu::AttentionGeom& g, const Tensor& q, const Tensor& k,
                     const Tensor& v, const Tensor& mask, std::vector<DeviceBuffer>& keep) {
  keep.push_back(upload(g.q_off));
  keep.push_back(upload(g.k_off));
  keep.push_back(upload(g.v_off));
  Operands<T> in{static_cast<const T*>(q.data_ptr()), static_cast<const T*>(k.data_ptr()),
                 static_cast<const T*>(v.data_ptr()), nullptr, keep[0].as<int64_t>(),
                 keep[1].as<int64_t>(), keep[2].as<int64_t>(), nullptr};
  if (g.mask != cpu::AttentionMask::none) {
    keep.push_back(upload(g.m_off));
    in.mask = mask.data_ptr();
    in.m_off = keep.back().as<int64_t>();
  }
  return in;
}

unsigned grid_blocks(int64_t items, Device device) {
  return static_cast<unsigned>(min64(items, std::max<int64_t>(max_blocks(device), 1)));
}

template <typename T, int C>
void launch_forward(const AttentionDims& d, const TileGrid& grid, const Operands<T>& in,
                    const Tensor& out, const Tensor& lse) {
  flash_forward<T, C><<<grid_blocks(grid.items(), out.device()), kAttnThreads, 0, stream()>>>(
      d, grid, in, static_cast<T*>(out.data_ptr()), static_cast<T*>(lse.data_ptr()));
  check_launch("sdpa_flash_forward");
}

template <typename T>
void forward_as(const cpu::AttentionGeom& g, const Tensor& q, const Tensor& k, const Tensor& v,
                const Tensor& mask, const Tensor& out, const Tensor& lse) {
  const AttentionDims d = attention_dims(g);
  const TileGrid grid = forward_grid(d);
  if (grid.items() == 0) return;
  std::vector<DeviceBuffer> keep;
  const Operands<T> in = operands<T>(g, q, k, v, mask, keep);
  if (grid.cols == 64)
    launch_forward<T, 64>(d, grid, in, out, lse);
  else
    launch_forward<T, 128>(d, grid, in, out, lse);
}

void cuda_sdpa_flash_forward(const cpu::AttentionGeom& g, const Tensor& q, const Tensor& k,
                             const Tensor& v, const Tensor& mask, const Tensor& out,
                             const Tensor& lse) {
  check_geom(g, q, k, v, mask, false);
  if (q.dtype() == DType::BFloat16 || q.dtype() == DType::Float16)
    return sdpa_flash_forward_tensor_cores(g, q, k, v, mask, out, lse);
  with_float_type(q.dtype(), kOp, [&](auto* t) {
    forward_as<std::remove_pointer_t<decltype(t)>>(g, q, k, v, mask, out, lse);
  });
}

template <typename T, int C>
void launch_backward_kv(const AttentionDims& d, const TileGrid& grid, const Operands<T>& in,
                        const Grads<T>& gr, Device device) {
  flash_backward_kv<T, C><<<grid_blocks(grid.items(), device), kAttnThreads, 0, stream()>>>(
      d, grid, in, gr);
  check_launch("sdpa_flash_backward (dk, dv)");
}

template <typename T, int C>
void launch_backward_q(const AttentionDims& d, const TileGrid& grid, const Operands<T>& in,
                       const Grads<T>& gr, Device device) {
  flash_backward_q<T, C><<<grid_blocks(grid.items(), device), kAttnThreads, 0, stream()>>>(
      d, grid, in, gr);
  check_launch("sdpa_flash_backward (dq)");
}

template <typename T>
void backward_as(const cpu::AttentionGeom& g, const Tensor& q, const Tensor& k, const Tensor& v,
                 const Tensor& mask, const Tensor& out, const Tensor& lse, const Tensor& dout,
                 const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const AttentionDims d = attention_dims(g);
  const TileGrid kv_grid = backward_kv_grid(d, sizeof(T)), q_grid = backward_q_grid(d);
  if (kv_grid.items() == 0 && q_grid.items() == 0) return;
  const Device device = q.device();
  std::vector<DeviceBuffer> keep;
  const Operands<T> in = operands<T>(g, q, k, v, mask, keep);
  const KvMembers members = kv_members(g.kv_index, g.kv_batch);
  keep.push_back(upload(members.start));
  keep.push_back(upload(members.members));
  const int64_t rows = g.batch * g.L;
  DeviceBuffer delta(static_cast<size_t>(rows) * sizeof(T));
  Grads<T> gr{static_cast<const T*>(lse.data_ptr()), static_cast<const T*>(dout.data_ptr()),
              delta.as<T>(), keep[keep.size() - 2].as<int64_t>(), keep.back().as<int64_t>(),
              static_cast<T*>(dq.data_ptr()), static_cast<T*>(dk.data_ptr()),
              static_cast<T*>(dv.data_ptr())};
  if (rows > 0) {  // a warp per row, 8 per block
    flash_delta<T><<<grid_blocks(ceil_div(rows, 8), device), 256, 0, stream()>>>(
        static_cast<const T*>(dout.data_ptr()), static_cast<const T*>(out.data_ptr()),
        delta.as<T>(), rows, g.Ev);
    check_launch("sdpa_flash_backward (delta)");
  }
  if (kv_grid.items() > 0) {
    if constexpr (sizeof(T) == 4) {
      if (kv_grid.cols == 128)
        launch_backward_kv<T, 128>(d, kv_grid, in, gr, device);
      else
        launch_backward_kv<T, 64>(d, kv_grid, in, gr, device);
    } else {  // backward_kv_cols keeps float64 at 64 columns: 128 spills
      launch_backward_kv<T, 64>(d, kv_grid, in, gr, device);
    }
  }
  if (q_grid.items() > 0) {
    if (q_grid.cols == 64)
      launch_backward_q<T, 64>(d, q_grid, in, gr, device);
    else
      launch_backward_q<T, 128>(d, q_grid, in, gr, device);
  }
}

void cuda_sdpa_flash_backward(const cpu::AttentionGeom& g, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& mask, const Tensor& out,
                              const Tensor& lse, const Tensor& dout, const Tensor& dq,
                              const Tensor& dk, const Tensor& dv) {
  check_geom(g, q, k, v, mask, true);
  with_float_type(q.dtype(), "scaled_dot_product_attention_backward", [&](auto* t) {
    backward_as<std::remove_pointer_t<decltype(t)>>(g, q, k, v, mask, out, lse, dout, dq, dk,
                                                    dv);
  });
}

template <typename T>
void dropout_mask_as(const cpu::AttentionGeom& g, const Tensor& drop) {
  const AttentionDims d = attention_dims(g);
  const int64_t counters =
      g.batch * g.L * static_cast<int64_t>(dropout_row_counters(g.S));
  const LaunchConfig c = elementwise_launch(counters, max_blocks(drop.device()));
  if (c.blocks == 0) return;
  flash_dropout_mask<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
      d, static_cast<T*>(drop.data_ptr()), counters);
  check_launch("sdpa_dropout_mask");
}

void cuda_sdpa_dropout_mask(const cpu::AttentionGeom& g, const Tensor& drop) {
  with_float_type(drop.dtype(), kOp, [&](auto* t) {
    dropout_mask_as<std::remove_pointer_t<decltype(t)>>(g, drop);
  });
}

}  // namespace

void fill_attention(dispatch::KernelTable& t) {
  t.sdpa_flash_forward = cuda_sdpa_flash_forward;
  t.sdpa_flash_backward = cuda_sdpa_flash_backward;
  t.sdpa_dropout_mask = cuda_sdpa_dropout_mask;
}

}  // namespace dc::cuda_kernels
