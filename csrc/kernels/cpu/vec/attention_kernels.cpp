// Fused scaled dot-product attention, compiled once per ISA (Note [Per-ISA kernels]); the
// contracts are in csrc/kernels/cpu/attention.h.
//
// Note [Flash attention on the CPU]
// Per output slab (one batch entry and query head): q[L, E], k[S, E], v[S, Ev].
// Forward, per block of kBlockQ queries (one work item; items are (slab, query block)):
//   for each block of kBlockK keys:
//     s[bq, bk] = q_blk k_blk^T * scale, masked entries -inf          (GEMM, then the mask)
//     online softmax per row: m' = max(m, max(s)); p = exp(s - m');
//       l = l * exp(m - m') + sum(p); acc = acc * exp(m - m')
//     acc[bq, Ev] += p v_blk                                           (GEMM)
//   out = acc / l, lse = m + log(l)    (a row without any key: out 0, lse +inf)
// Only the row statistics (L values per slab) outlive a block: memory grows with L, never
// with L * S. With is_causal, key blocks entirely right of the block's last query are never
// visited, and the triangle is applied only on blocks crossing the diagonal; a tile whose
// mask hides every entry is skipped without its second GEMM.
// Backward recomputes each tile from q, k and the saved lse (p = exp(s - lse)), with
// D = rowsum(dout * out):
//   dv_blk += p^T dout_blk; dp = dout_blk v_blk^T; ds = p * (dp - D);
//   dq_blk += ds k_blk * scale; dk_blk += ds^T q_blk * scale
// (five GEMMs a tile with the recomputed s).
// One work item is one key/value slab with every query slab that reads it (all query heads
// of a GQA group, all batch entries it broadcasts to), so dk and dv accumulate without
// atomics or per-thread copies, in a fixed order (results do not depend on the thread count);
// each query slab belongs to exactly one item, so its dq is written by one thread too. With
// fewer than kMinSlabs key/value slabs (batch * Hk; one GQA group, a single head) that would
// leave threads idle, so each slab's keys are cut into up to kMaxKeyChunks chunks, one item
// each: dk, dv rows stay private to the item, and each chunk writes its own partial dq, summed
// in chunk order afterwards (at most kMaxKeyChunks - 1 extra copies of dq: still linear in L).
// The GEMMs are the project's (gemm.cpp); inside the parallel region they run on the calling
// thread. Blocks: kBlockQ = 64 queries x kBlockK = 128 keys, so s and dp take 32 KB each in
// float32 and, with the q, k, v and dout blocks of E = 64, stay in L2 next to dk and dv.
// Measured on this shared 2-core Xeon (AVX-512), forward alone, one thread, H = 8,
// L = S = 1024, E = 64, float32, ms (non-causal / causal), the kernel called from C++:
//   64 x 64: 52.8 / 27.0    64 x 128: 43.9 / 22.9    64 x 256: 43.4 / 23.3
//   64 x 512: 43.6 / 30.5   128 x 128: 53.0 / 33.4   32 x 256: 50.7 / 31.3
// Key blocks of 128 halve the GEMM calls of 64 x 64 (each call packs its operands); wider
// ones gain nothing and skip less of the causal triangle. Profile at 64 x 128: the GEMM
// micro-kernels 70 %, exp 13 %, packing the k^T panels 5 %.
// With dropout_p > 0 the tiles also drop probabilities: Note [Dropout inside flash attention].
//
// Note [Dropout inside flash attention]
// Semantics are torch's: the softmax sees every visible key (m, l and lse never depend on the
// mask), then out = (p * keep / (1 - p_drop)) v. Forward: after exp, a row's l takes the full
// sum, then the dropped entries of the tile are zeroed before the p v GEMM; the 1 / (1 - p)
// joins the final 1 / l. Backward, with f = 1 / (1 - p_drop) and P the recomputed softmax:
//   dv_blk += f (P * keep)^T dout_blk; dp = (dout_blk v_blk^T) * keep * f; ds = P * (dp - D)
// where D = rowsum(dout * out) still equals rowsum(P * dp), since out = (P * keep * f) v.
// The mask is never stored. Each call reserves g.dropout_counters() Philox counters
// from the default generator (one draw per call, like every random op) and saves (seed,
// offset) in its autograd node; the draw of (slab b, query i, key j) is word (j % 64) / 16,
// lane j % 16 of the philox16 block at counter
//   offset + (b * L + i) * attention_dropout_row_counters(S) + 16 * (j / 64)
// (a row is laid out as a float32 fill of S elements, Note [Random streams]), kept when its top
// 24 bits are below ceil((1 - p_drop) 2^24). Key blocks start at multiples of 64, so a tile
// computes its own draws: the mask depends on (seed, offset, b, i, j) only, never on the tiling,
// the key chunks of backward, the thread count, the ISA, E, Ev, is_causal or attn_mask, and
// the backward recomputes exactly the forward's tiles (tests/cpp/test_attention.cpp checks
// every ISA against the scalar dc::philox; tests/test_attention.py recovers the mask through
// the output with q = k = 0 and v = I). p_drop = 1: nothing kept and f = 0, so out and every
// gradient are 0. A backward that builds a graph (create_graph=True) takes the composite
// derivative, which needs the mask as a tensor: sdpa_dropout_mask materialises it there (that
// path forms L x S tensors anyway). The cost is one philox16 (16 counters x 10 rounds) per 64
// probabilities, in forward and again in backward. Measured on this shared 2-core Xeon
// (AVX-512), two threads, H = 8, L = S = 1024, E = 64, causal, float32, ms, dropout_p 0 / 0.1:
// forward 8.4 / 12.6, forward + backward 26.8 / 36.6; torch 2.13 on the CPU (its math path,
// dropout on the L x S probabilities) 141 / 245 with dropout 0.1 (bench/bench_attention.py
// --dropout 0.1 --causal-only).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "core/scratch.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm/gemm.h"

namespace dc::cpu::DC_ISA_NS {
namespace {

#include "kernels/cpu/vec/scalar_math.h"

// Block sizes: Note [Flash attention on the CPU].
constexpr int64_t kBlockQ = 64, kBlockK = 128;
#include "kernels/cpu/vec/row_reduce.h"
#include "kernels/cpu/vec/philox16.h"

// C[M, N] (row stride rsc, unit column stride) = alpha * A B + beta * C.
inline void gemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
                 int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
                 int64_t rsc) {
  gemm_f32(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, 1);
}
inline void gemm(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa,
                 int64_t csa, const double* B, int64_t rsb, int64_t csb, double beta, double* C,
                 int64_t rsc) {
  gemm_f64(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, 1);
}

// x = exp(x - c) in place; returns the sum (kLanes partial sums, fixed order).
template <typename T>
T exp_in_place(T* x, T c, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const T e = exp_any(x[i + j] - c);
      x[i + j] = e;
      acc[j] += e;
    }
  T s = 0;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  for (; i < n; ++i) {
    x[i] = exp_any(x[i] - c);
    s += x[i];
  }
  return s;
}

// ---- dropout (Note [Dropout inside flash attention]) --------------------------------------

// Draws are the top 24 bits of a Philox word; an entry is kept when the draw is below
// `thr`, so with probability thr / 2^24 = 1 - p to within 2^-24 (0 when p = 1).
struct DropoutRule {
  bool on = false;
  uint32_t thr = 0;
  double factor = 1.0;  // what a kept probability is multiplied by: 1 / (1 - p), 0 when p = 1
};
inline DropoutRule dropout_rule(const AttentionGeom& g) {
  DropoutRule d;
  if (!(g.dropout_p > 0.0)) return d;
  d.on = true;
  d.thr = static_cast<uint32_t>(std::ceil((1.0 - g.dropout_p) * 16777216.0));
  d.factor = g.dropout_p < 1.0 ? 1.0 / (1.0 - g.dropout_p) : 0.0;
  return d;
}

// keep[c] = 1 when key j0 + c of query row `row` (= slab * L + query) survives, c < bk.
// j0 is a multiple of 64: key j reads word (j % 64) / 16, lane j % 16 of the philox16 block at
// counter offset + row * attention_dropout_row_counters(S) + 16 * (j / 64).
inline void dropout_keep(const AttentionGeom& g, const DropoutRule& d, int64_t row, int64_t j0,
                         int64_t bk, uint8_t* keep) {
  if (d.thr == 0) {
    std::fill(keep, keep + bk, uint8_t(0));
    return;
  }
  const uint64_t base =
      g.offset + static_cast<uint64_t>(row) * attention_dropout_row_counters(g.S);
  alignas(64) PhiloxWords w;
  alignas(64) uint8_t block[4 * kPhiloxLanes];
  for (int64_t t = 0; t < bk; t += 4 * kPhiloxLanes) {
    philox16(g.seed, base + static_cast<uint64_t>((j0 + t) / 64) * kPhiloxLanes, w);
    for (int k = 0; k < 4; ++k)
      for (int j = 0; j < kPhiloxLanes; ++j) block[k * kPhiloxLanes + j] = (w[k][j] >> 8) < d.thr;
    std::memcpy(keep + t, block, std::min<int64_t>(4 * kPhiloxLanes, bk - t));
  }
}

// The operands of one output slab.
template <typename T>
struct Slab {
  int64_t index;  // b: query row i is row b * L + i of the dropout stream
  const T* q;
  const T* k;
  const T* v;
  const bool* keep;  // bool mask at this slab, or null
  const T* add;      // additive mask at this slab, or null
};

template <typename T>
Slab<T> slab(const AttentionGeom& g, const Tensor& q, const Tensor& k, const Tensor& v,
             const Tensor& mask, int64_t b) {
  Slab<T> s{b, q.data<T>() + g.q_off[b], k.data<T>() + g.k_off[b], v.data<T>() + g.v_off[b],
            nullptr, nullptr};
  if (g.mask == AttentionMask::keep) s.keep = mask.data<bool>() + g.m_off[b];
  if (g.mask == AttentionMask::additive) s.add = mask.data<T>() + g.m_off[b];
  return s;
}

// s[bq, bk] (row stride kBlockK) = the scaled scores of queries [i0, i0 + bq) against keys
// [j0, j0 + bk), masked entries -inf. False when every entry is masked.
template <typename T>
bool scores_tile(const AttentionGeom& g, const Slab<T>& sl, int64_t i0, int64_t bq, int64_t j0,
                 int64_t bk, T* s) {
  gemm(bq, bk, g.E, T(g.scale), sl.q + i0 * g.q_rs, g.q_rs, 1, sl.k + j0 * g.k_rs, 1, g.k_rs,
       T(0), s, kBlockK);
  const T ninf = -std::numeric_limits<T>::infinity();
  if (sl.keep) {
    for (int64_t r = 0; r < bq; ++r) {
      const bool* m = sl.keep + (i0 + r) * g.m_rs + j0 * g.m_cs;
      T* sr = s + r * kBlockK;
      for (int64_t c = 0; c < bk; ++c) sr[c] = m[c * g.m_cs] ? sr[c] : ninf;
    }
  } else if (sl.add) {
    for (int64_t r = 0; r < bq; ++r) {
      const T* m = sl.add + (i0 + r) * g.m_rs + j0 * g.m_cs;
      T* sr = s + r * kBlockK;
      for (int64_t c = 0; c < bk; ++c) sr[c] += m[c * g.m_cs];
    }
  }
  if (g.causal && j0 + bk - 1 > i0) {  // the tile crosses the diagonal
    for (int64_t r = 0; r < bq; ++r) {
      const int64_t first = std::max<int64_t>(0, i0 + r + 1 - j0);
      std::fill(s + r * kBlockK + std::min(first, bk), s + r * kBlockK + bk, ninf);
    }
  }
  if (!sl.keep && !sl.add) return true;  // causal tiles visited hold key j0 <= i0 + bq - 1
  for (int64_t r = 0; r < bq; ++r)
    if (row_max(s + r * kBlockK, bk) > ninf) return true;
  return false;
}

// Keys a block of queries [i0, i0 + bq) can see: all of them, or with is_causal up to the
// block's last query.
inline int64_t key_end(const AttentionGeom& g, int64_t i0, int64_t bq) {
  return g.causal ? std::min(g.S, i0 + bq) : g.S;
}

// Scratch of one thread: s and dp tiles, the forward accumulator, row statistics.
template <typename T>
struct Work {
  T *s, *dp, *acc, *m, *l;
};
template <typename T>
Work<T> work(int64_t Ev) {
  thread_local ScratchBuffer buf("scaled_dot_product_attention");
  const int64_t tile = kBlockQ * kBlockK, accn = kBlockQ * std::max<int64_t>(Ev, 1);
  T* p = buf.get<T>(2 * tile + accn + 2 * kBlockQ);
  return {p, p + tile, p + 2 * tile, p + 2 * tile + accn, p + 2 * tile + accn + kBlockQ};
}

// out[b, i0 : i0 + bq, :] and lse[b, i0 : i0 + bq] (Note [Flash attention on the CPU]).
template <typename T>
void forward_block(const AttentionGeom& g, const Slab<T>& sl, int64_t i0, T* out, T* lse) {
  const int64_t bq = std::min(kBlockQ, g.L - i0), Ev = g.Ev;
  const T ninf = -std::numeric_limits<T>::infinity();
  const DropoutRule drop = dropout_rule(g);
  alignas(64) uint8_t keep[kBlockK];
  Work<T> w = work<T>(Ev);
  std::fill(w.acc, w.acc + bq * Ev, T(0));
  std::fill(w.m, w.m + bq, ninf);
  std::fill(w.l, w.l + bq, T(0));
  const int64_t kend = key_end(g, i0, bq);
  for (int64_t j0 = 0; j0 < kend; j0 += kBlockK) {
    const int64_t bk = std::min(kBlockK, kend - j0);
    if (!scores_tile(g, sl, i0, bq, j0, bk, w.s)) continue;
    for (int64_t r = 0; r < bq; ++r) {
      T* sr = w.s + r * kBlockK;
      const T mx = row_max(sr, bk), mnew = std::max(w.m[r], mx);
      if (mnew == ninf) {  // no key visible to this row yet: contributes nothing
        std::fill(sr, sr + bk, T(0));
        continue;
      }
      const T alpha = exp_any(w.m[r] - mnew);  // 0 while m was -inf
      const T sum = exp_in_place(sr, mnew, bk);  // l sums every key: dropout comes after
      if (drop.on) {
        dropout_keep(g, drop, sl.index * g.L + i0 + r, j0, bk, keep);
        for (int64_t c = 0; c < bk; ++c) sr[c] *= T(keep[c]);
      }
      w.l[r] = w.l[r] * alpha + sum;
      w.m[r] = mnew;
      if (alpha != T(1)) {
        T* ar = w.acc + r * Ev;
        for (int64_t c = 0; c < Ev; ++c) ar[c] *= alpha;
      }
    }
    gemm(bq, Ev, bk, T(1), w.s, kBlockK, 1, sl.v + j0 * g.v_rs, g.v_rs, 1, T(1), w.acc, Ev);
  }
  for (int64_t r = 0; r < bq; ++r) {
    T* o = out + (i0 + r) * Ev;
    if (w.l[r] > T(0)) {
      const T inv = T(drop.factor) / w.l[r];
      for (int64_t c = 0; c < Ev; ++c) o[c] = w.acc[r * Ev + c] * inv;
      lse[i0 + r] = w.m[r] + std::log(w.l[r]);
    } else {  // every key masked: torch's zeros
      std::fill(o, o + Ev, T(0));
      lse[i0 + r] = std::numeric_limits<T>::infinity();
    }
  }
}

template <typename T>
void forward(const AttentionGeom& g, const Tensor& q, const Tensor& k, const Tensor& v,
             const Tensor& mask, const Tensor& out, const Tensor& lse) {
  const int64_t nqb = (g.L + kBlockQ - 1) / kBlockQ;
  T* op = out.data<T>();
  T* lp = lse.data<T>();
  parallel_items(0, g.batch * nqb, [&](int64_t item) {
    const int64_t b = item / nqb, i0 = (item % nqb) * kBlockQ;
    forward_block(g, slab<T>(g, q, k, v, mask, b), i0, op + b * g.L * g.Ev, lp + b * g.L);
  });
}

// The gradients that one query slab contributes through keys [j_begin, j_end) (a multiple of
// kBlockK, and S): its dq over those keys (overwritten) and the rows [j_begin, j_end) of dk, dv
// of its key/value slab (accumulated).
template <typename T>
void backward_slab(const AttentionGeom& g, const Slab<T>& sl, const T* out, const T* lse,
                   const T* dout, int64_t j_begin, int64_t j_end, T* dq, T* dk, T* dv) {
  const int64_t E = g.E, Ev = g.Ev;
  const T scale = T(g.scale);
  const DropoutRule drop = dropout_rule(g);
  const T factor = T(drop.factor);
  alignas(64) uint8_t keep[kBlockK];
  Work<T> w = work<T>(Ev);
  T* D = w.m;  // rowsum(dout * out) of the query block
  std::fill(dq, dq + g.L * E, T(0));
  for (int64_t i0 = 0; i0 < g.L; i0 += kBlockQ) {
    const int64_t bq = std::min(kBlockQ, g.L - i0);
    const int64_t kend = std::min(key_end(g, i0, bq), j_end);
    if (kend <= j_begin) continue;
    const T* dob = dout + i0 * Ev;
    for (int64_t r = 0; r < bq; ++r) D[r] = row_dot(dob + r * Ev, out + (i0 + r) * Ev, Ev);
    for (int64_t j0 = j_begin; j0 < kend; j0 += kBlockK) {
      const int64_t bk = std::min(kBlockK, kend - j0);
      if (!scores_tile(g, sl, i0, bq, j0, bk, w.s)) continue;
      for (int64_t r = 0; r < bq; ++r)  // p = exp(s - lse); a row without keys has lse +inf
        exp_in_place(w.s + r * kBlockK, lse[i0 + r], bk);
      // dp = dout_blk v_blk^T, then ds = p * (dp - D) in place
      gemm(bq, bk, Ev, T(1), dob, Ev, 1, sl.v + j0 * g.v_rs, 1, g.v_rs, T(0), w.dp, kBlockK);
      for (int64_t r = 0; r < bq; ++r) {
        T* pr = w.s + r * kBlockK;
        T* dr = w.dp + r * kBlockK;
        const T d = D[r];
        if (!drop.on) {
          for (int64_t c = 0; c < bk; ++c) dr[c] = pr[c] * (dr[c] - d);
          continue;
        }
        // dp is the gradient of the dropped probabilities: times the mask and the factor;
        // p then becomes the dropped p / factor for dv (the factor goes in dv's GEMM).
        dropout_keep(g, drop, sl.index * g.L + i0 + r, j0, bk, keep);
        for (int64_t c = 0; c < bk; ++c) {
          const T m = T(keep[c]);
          dr[c] = pr[c] * (dr[c] * (m * factor) - d);
          pr[c] *= m;
        }
      }
      // dv[j0 : j0 + bk] += factor * p^T dout_blk
      gemm(bk, Ev, bq, factor, w.s, 1, kBlockK, dob, Ev, 1, T(1), dv + j0 * Ev, Ev);
      // dq_blk += ds k_blk * scale; dk[j0 : j0 + bk] += ds^T q_blk * scale
      gemm(bq, E, bk, scale, w.dp, kBlockK, 1, sl.k + j0 * g.k_rs, g.k_rs, 1, T(1),
           dq + i0 * E, E);
      gemm(bk, E, bq, scale, w.dp, 1, kBlockK, sl.q + i0 * g.q_rs, g.q_rs, 1, T(1),
           dk + j0 * E, E);
    }
  }
}

// Key chunks per key/value slab in backward (Note [Flash attention on the CPU]): one when
// there are kMinSlabs slabs or more, else up to kMaxKeyChunks, so that few slabs (one GQA
// group, one head) still feed every thread. From the shapes only: the summation order, so the
// result, never depends on the thread count. Each chunk beyond the first costs a partial dq.
constexpr int64_t kMinSlabs = 8, kMaxKeyChunks = 8;

int64_t key_blocks_per_chunk(const AttentionGeom& g) {
  const int64_t nkb = std::max<int64_t>(1, (g.S + kBlockK - 1) / kBlockK);
  if (g.kv_batch >= kMinSlabs) return nkb;
  const int64_t want = std::min(kMaxKeyChunks, (kMinSlabs + g.kv_batch - 1) /
                                                   std::max<int64_t>(g.kv_batch, 1));
  const int64_t chunks = std::max<int64_t>(1, std::min(want, nkb));
  return (nkb + chunks - 1) / chunks;
}

template <typename T>
void backward(const AttentionGeom& g, const Tensor& q, const Tensor& k, const Tensor& v,
              const Tensor& mask, const Tensor& out, const Tensor& lse, const Tensor& dout,
              const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  // The query slabs of each key/value slab, in order (counting sort of kv_index).
  std::vector<int64_t> start(g.kv_batch + 1, 0), members(g.batch);
  for (int64_t b = 0; b < g.batch; ++b) ++start[g.kv_index[b] + 1];
  for (int64_t u = 0; u < g.kv_batch; ++u) start[u + 1] += start[u];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t b = 0; b < g.batch; ++b) members[fill[g.kv_index[b]]++] = b;
  }
  const int64_t chunk_keys = key_blocks_per_chunk(g) * kBlockK;
  const int64_t chunks = std::max<int64_t>(1, (g.S + chunk_keys - 1) / chunk_keys);
  const int64_t dq_slab = g.L * g.E;
  const T* op = out.data<T>();
  const T* lp = lse.data<T>();
  const T* gp = dout.data<T>();
  T* dqp = dq.data<T>();
  T* dkp = dk.data<T>();
  T* dvp = dv.data<T>();
  // Partial dq of chunk c >= 1 for slab b at dq_part[((c - 1) * batch + b) * dq_slab]; chunk
  // 0 writes dq itself.
  std::vector<T> dq_part((chunks - 1) * g.batch * dq_slab);
  parallel_items(0, g.kv_batch * chunks, [&](int64_t item) {
    const int64_t u = item / chunks, c = item % chunks;
    const int64_t j_begin = c * chunk_keys, j_end = std::min(g.S, j_begin + chunk_keys);
    T* dku = dkp + u * g.S * g.E;
    T* dvu = dvp + u * g.S * g.Ev;
    std::fill(dku + j_begin * g.E, dku + j_end * g.E, T(0));
    std::fill(dvu + j_begin * g.Ev, dvu + j_end * g.Ev, T(0));
    for (int64_t i = start[u]; i < start[u + 1]; ++i) {
      const int64_t b = members[i];
      T* dqb = c == 0 ? dqp + b * dq_slab : dq_part.data() + ((c - 1) * g.batch + b) * dq_slab;
      backward_slab(g, slab<T>(g, q, k, v, mask, b), op + b * g.L * g.Ev, lp + b * g.L,
                    gp + b * g.L * g.Ev, j_begin, j_end, dqb, dku, dvu);
    }
  });
  if (chunks == 1) return;
  const int64_t n = g.batch * dq_slab;
  parallel_for(0, n, kGrainSize, [&](int64_t lo, int64_t hi) {
    for (int64_t c = 1; c < chunks; ++c) {
      const T* part = dq_part.data() + (c - 1) * n;
      for (int64_t i = lo; i < hi; ++i) dqp[i] += part[i];
    }
  });
}

template <typename T>
void dropout_mask(const AttentionGeom& g, const Tensor& drop) {
  const DropoutRule d = dropout_rule(g);
  const T factor = T(d.factor);
  T* out = drop.data<T>();
  const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(g.S, 1));  // rows
  parallel_for(0, g.batch * g.L, grain, [&](int64_t lo, int64_t hi) {
    std::vector<uint8_t> keep(g.S);
    for (int64_t row = lo; row < hi; ++row) {
      dropout_keep(g, d, row, 0, g.S, keep.data());
      T* o = out + row * g.S;
      for (int64_t c = 0; c < g.S; ++c) o[c] = T(keep[c]) * factor;
    }
  });
}

}  // namespace

void sdpa_dropout_mask(const AttentionGeom& g, const Tensor& drop) {
  DC_DISPATCH_FLOAT(drop.dtype(), "scaled_dot_product_attention",
                    [&] { dropout_mask<scalar_t>(g, drop); });
}

void sdpa_flash_forward(const AttentionGeom& g, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& mask, const Tensor& out,
                        const Tensor& lse) {
  DC_DISPATCH_FLOAT(q.dtype(), "scaled_dot_product_attention",
                    [&] { forward<scalar_t>(g, q, k, v, mask, out, lse); });
}

void sdpa_flash_backward(const AttentionGeom& g, const Tensor& q, const Tensor& k,
                         const Tensor& v, const Tensor& mask, const Tensor& out,
                         const Tensor& lse, const Tensor& dout, const Tensor& dq,
                         const Tensor& dk, const Tensor& dv) {
  DC_DISPATCH_FLOAT(q.dtype(), "scaled_dot_product_attention_backward", [&] {
    backward<scalar_t>(g, q, k, v, mask, out, lse, dout, dq, dk, dv);
  });
}

}  // namespace dc::cpu::DC_ISA_NS
