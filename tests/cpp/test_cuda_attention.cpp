// The plan of the CUDA flash attention (kernels/cuda/attention_plan.h), on the host: the tiles
// fit shared memory and every thread's scores cover a tile once; the key ranges and the
// backward's visiting order see every visible score exactly once; the dropout draws the kernels
// make equal the cpu's sdpa_dropout_mask bit for bit; and the kernels' tile loops, run here in
// plain C++ with the plan's functions (64 x 64 tiles, online softmax, column chunks, skipped
// hidden tiles, the two backward passes), match a naive attention in double and the cpu
// kernels at awkward L, S, E, Ev with GQA, strided rows, bool and additive masks (broadcast
// rows, rows without keys), is_causal with L > S and L < S, and dropout.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention_plan.h"

namespace dc::cuda_kernels {
namespace {

using cpu::AttentionGeom;
using cpu::AttentionMask;

constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(CudaAttentionPlan, TilesFitSharedMemoryAndThreadsCoverEachScoreOnce) {
  EXPECT_EQ(attention_smem_bytes(4), 24960u);
  EXPECT_EQ(attention_smem_bytes(8), 41600u);
  for (size_t item : {size_t(4), size_t(8)}) {
    EXPECT_LE(attention_smem_bytes(item), kStaticSmemLimit);
    EXPECT_EQ(stage_elems(item), 2 * stage_depth(item) * (kTileQ + 1));
    for (int cols : {64, 128}) {
      const int rows = stage_rows(item, cols);
      EXPECT_GT(rows, 0);
      EXPECT_EQ(kTileK % rows, 0) << item << " " << cols;
      EXPECT_LE(rows * cols, stage_elems(item)) << item << " " << cols;
    }
  }
  // The plan never asks for float64 dk/dv accumulators of 128 columns (they spill).
  for (int64_t e : {1, 64, 65, 128, 300}) {
    EXPECT_EQ(backward_kv_cols(8, e, e), 64);
    EXPECT_EQ(backward_kv_cols(4, e, 1), e > 64 ? 128 : 64);
    EXPECT_EQ(forward_cols(e), e > 64 ? 128 : 64);
  }
  std::vector<int> seen(kTileQ * kTileK, 0);
  for (int t = 0; t < kAttnThreads; ++t) {
    const int ty = t / 16, tx = t % 16;
    for (int i = 0; i < kTileRowsPerThread; ++i) {
      // the 16 threads of a row are one half-warp: the xor shuffles (offsets < 16) stay in it
      for (int o = 8; o > 0; o /= 2) {
        const int partner = t ^ o;
        EXPECT_EQ(partner / 16, ty);
        EXPECT_EQ(partner / 32, t / 32);
      }
      for (int j = 0; j < kTileColsPerThread; ++j)
        ++seen[tile_row(ty, i) * kTileK + tile_col(tx, j)];
    }
  }
  for (int n : seen) ASSERT_EQ(n, 1);
}

TEST(CudaAttentionPlan, ItemsDecodeOnceEach) {
  for (int64_t tiles : {1, 3}) {
    for (int64_t chunks : {1, 2}) {
      TileGrid g;
      g.slabs = 5, g.tiles = tiles, g.chunks = chunks;
      std::set<std::vector<int64_t>> got;
      for (int64_t item = 0; item < g.items(); ++item) {
        const TileItem it = decode_item(item, tiles, chunks);
        ASSERT_LT(it.slab, 5);
        ASSERT_LT(it.tile, tiles);
        ASSERT_LT(it.chunk, chunks);
        got.insert({it.slab, it.tile, it.chunk});
      }
      EXPECT_EQ(static_cast<int64_t>(got.size()), g.items());
    }
  }
  AttentionDims d;
  d.batch = 3, d.L = 130, d.Ev = 0;
  EXPECT_EQ(forward_grid(d).chunks, 1);  // the lse is still written
  EXPECT_EQ(forward_grid(d).items(), 9);
  d.Ev = 300;
  EXPECT_EQ(forward_grid(d).chunks, 3);
  EXPECT_EQ(chunk_width(300, 256, 128), 44);
  EXPECT_EQ(chunk_width(0, 0, 64), 0);
}

// Every (query tile, key tile) pair the forward and the dq pass visit is visited by the dk/dv
// pass (from first_query_tile on) and the other way round, and every visible score lies in a
// visited pair, before its tile's key_end.
TEST(CudaAttentionPlan, KeyRangesCoverVisibleScoresAndPassesAgree) {
  for (bool causal : {false, true})
    for (int64_t L : {1, 2, 63, 64, 65, 127, 129, 200})
      for (int64_t S : {1, 2, 63, 64, 65, 128, 130, 200}) {
        AttentionDims d;
        d.L = L, d.S = S, d.causal = causal;
        const int64_t qt_n = ceil_div(L, kTileQ), kt_n = ceil_div(S, kTileK);
        std::set<std::pair<int64_t, int64_t>> by_query, by_key;
        for (int64_t qt = 0; qt < qt_n; ++qt)
          for (int64_t j0 = 0; j0 < key_end(d, qt * kTileQ); j0 += kTileK)
            by_query.insert({qt, j0 / kTileK});
        for (int64_t kt = 0; kt < kt_n; ++kt) {
          const int64_t j0 = kt * kTileK;
          for (int64_t qt = 0; qt < first_query_tile(d, j0); ++qt)
            ASSERT_GE(j0, key_end(d, qt * kTileQ)) << "skipped a visible tile";
          for (int64_t qt = first_query_tile(d, j0); qt < qt_n; ++qt)
            if (j0 < key_end(d, qt * kTileQ)) by_key.insert({qt, kt});
        }
        ASSERT_EQ(by_query, by_key) << "L=" << L << " S=" << S << " causal=" << causal;
        for (int64_t i = 0; i < L; ++i)
          for (int64_t j = 0; j < S; ++j) {
            const int64_t kend = key_end(d, i / kTileQ * kTileQ);
            if (j >= kend) ASSERT_TRUE(causal && j > i) << "a visible key past key_end";
            if (!causal || j <= i) ASSERT_TRUE(by_query.count({i / kTileQ, j / kTileK}));
          }
      }
}

TEST(CudaAttentionPlan, KvMembersListEachQuerySlabOnceInOrder) {
  std::mt19937 gen(3);
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t kv = 1 + gen() % 5, n = gen() % 12;
    std::vector<int64_t> idx(n);
    for (auto& u : idx) u = gen() % kv;
    const KvMembers m = kv_members(idx, kv);
    ASSERT_EQ(m.start.size(), size_t(kv + 1));
    ASSERT_EQ(m.start[kv], n);
    for (int64_t u = 0; u < kv; ++u) {
      std::vector<int64_t> want;
      for (int64_t b = 0; b < n; ++b)
        if (idx[b] == u) want.push_back(b);
      std::vector<int64_t> got(m.members.begin() + m.start[u], m.members.begin() + m.start[u + 1]);
      ASSERT_EQ(got, want);
    }
  }
}

// ---- dropout ---------------------------------------------------------------------------------

AttentionGeom dropout_geom(int64_t batch, int64_t L, int64_t S, double p, uint64_t seed,
                           uint64_t offset) {
  AttentionGeom g;
  g.batch = batch, g.kv_batch = 1, g.L = L, g.S = S, g.E = 1, g.Ev = 1;
  g.dropout_p = p, g.seed = seed, g.offset = offset;
  return g;
}

// The keep decision of one score, the tile layout the forward and backward kernels read (the
// words of key j0 + tx give columns tile_col(tx, j)), and the per-counter layout of the mask
// kernel all equal the cpu's sdpa_dropout_mask, bit for bit, factor included.
template <typename T>
void check_dropout_layouts(int64_t batch, int64_t L, int64_t S, double p, uint64_t seed,
                           uint64_t offset) {
  const AttentionGeom g = dropout_geom(batch, L, S, p, seed, offset);
  const AttentionDims d = attention_dims(g);
  ASSERT_EQ(dropout_row_counters(S), cpu::attention_dropout_row_counters(S));
  Tensor drop = Tensor::empty({batch, L, S}, dtype_of<T>::value);
  cpu::sdpa_dropout_mask(g, drop);
  const T* cpu_mask = drop.data<T>();
  const int64_t rows = batch * L;
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t key = 0; key < S; ++key)
      ASSERT_EQ(dropout_keep(d, row, key), cpu_mask[row * S + key] != T(0))
          << "row " << row << " key " << key << " S=" << S << " p=" << p;
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t j0 = 0; j0 < S; j0 += kTileK)
      for (int tx = 0; tx < 16; ++tx) {
        uint32_t w[4];
        dropout_words(d, row, j0 + tx, w);
        for (int j = 0; j < kTileColsPerThread; ++j) {
          const int64_t key = j0 + tile_col(tx, j);
          if (key < S) ASSERT_EQ(dropout_kept(d, w[j]), dropout_keep(d, row, key));
        }
      }
  // flash_dropout_mask: a thread per counter writes keys 64 (c / 16) + c % 16 + 16 j.
  std::vector<T> mask(rows * S, T(-1));
  const int64_t per_row = static_cast<int64_t>(dropout_row_counters(S));
  for (int64_t t = 0; t < rows * per_row; ++t) {
    const int64_t row = t / per_row, c = t % per_row, key0 = 64 * (c / 16) + c % 16;
    uint32_t w[4];
    dropout_words(d, row, key0, w);
    for (int j = 0; j < 4; ++j)
      if (key0 + 16 * j < S)
        mask[row * S + key0 + 16 * j] = dropout_kept(d, w[j]) ? T(d.factor) : T(0);
  }
  for (int64_t i = 0; i < rows * S; ++i)
    ASSERT_EQ(std::memcmp(&mask[i], &cpu_mask[i], sizeof(T)), 0) << "mask element " << i;
}

TEST(CudaAttentionPlan, DropoutDrawsEqualTheCpuMaskBitForBit) {
  const double ps[] = {0.0, 0.1, 0.5, 0.9, 1.0};  // 0: every entry 0, as on the cpu
  const int64_t Ss[] = {1, 15, 64, 65, 130, 200};
  for (double p : ps)
    for (int64_t S : Ss) {
      check_dropout_layouts<float>(2, 3, S, p, 0x1234567890abcdefULL, 1000);
      check_dropout_layouts<double>(3, 2, S, p, 42, (uint64_t(1) << 32) - 5);
    }
}

// ---- the kernels' tile loops, on the host -----------------------------------------------------

struct Case {
  int64_t L, S, E, Ev;
  bool causal = false;
  AttentionMask mask = AttentionMask::none;
  double dropout_p = 0.0;
  bool broadcast_rows = false;  // the mask's rows broadcast (m_rs = 0)
  bool nan = false;             // a NaN in one query row and one key row
};

// Two batch entries x two query heads over one key/value head each (GQA), rows padded (row
// strides past E), slabs at odd offsets; the mask is per batch entry, shared by the heads.
template <typename T>
struct Problem {
  AttentionGeom g;
  Tensor q, k, v, mask, dout;
};

template <typename T>
Tensor filled(int64_t n, std::mt19937& gen) {
  Tensor t = Tensor::empty({n}, dtype_of<T>::value);
  std::normal_distribution<double> nd(0.0, 1.0);
  for (int64_t i = 0; i < n; ++i) t.data<T>()[i] = static_cast<T>(nd(gen));
  return t;
}

template <typename T>
Problem<T> make_problem(const Case& c) {
  constexpr int64_t kBatch = 2, kHeads = 2;
  Problem<T> pr;
  AttentionGeom& g = pr.g;
  g.batch = kBatch * kHeads, g.kv_batch = kBatch;
  g.L = c.L, g.S = c.S, g.E = c.E, g.Ev = c.Ev;
  g.q_rs = c.E + 2, g.k_rs = c.E + 1, g.v_rs = c.Ev + 3;
  g.mask = c.mask, g.causal = c.causal, g.scale = 0.37;
  g.dropout_p = c.dropout_p, g.seed = 0x9e3779b97f4a7c15ULL, g.offset = 77;
  for (int64_t b = 0; b < g.batch; ++b) {
    const int64_t u = b / kHeads;
    g.kv_index.push_back(u);
    g.q_off.push_back(1 + b * c.L * g.q_rs);
    g.k_off.push_back(2 + u * c.S * g.k_rs);
    g.v_off.push_back(3 + u * c.S * g.v_rs);
    g.m_off.push_back(u * (c.broadcast_rows ? c.S : c.L * c.S));
  }
  g.m_rs = c.broadcast_rows ? 0 : c.S, g.m_cs = 1;
  std::mt19937 gen(11);
  pr.q = filled<T>(1 + g.batch * c.L * g.q_rs, gen);
  pr.k = filled<T>(2 + g.kv_batch * c.S * g.k_rs, gen);
  pr.v = filled<T>(3 + g.kv_batch * c.S * g.v_rs, gen);
  pr.dout = filled<T>(g.batch * c.L * c.Ev, gen);
  if (c.nan && c.L > 1 && c.S > 1 && c.E > 0) {
    pr.q.template data<T>()[g.q_off[1] + (c.L - 1) * g.q_rs] = std::numeric_limits<T>::quiet_NaN();
    pr.k.template data<T>()[g.k_off[2] + (c.S / 2) * g.k_rs] = std::numeric_limits<T>::quiet_NaN();
  }
  const int64_t mrows = c.broadcast_rows ? 1 : c.L, mn = kBatch * mrows * c.S;
  if (c.mask == AttentionMask::keep) {
    pr.mask = Tensor::empty({mn}, DType::Bool);
    for (int64_t i = 0; i < mn; ++i) pr.mask.template data<bool>()[i] = gen() % 4 != 0;
    if (!c.broadcast_rows) {
      // a row of batch entry 1 that sees no key, one of entry 0 that sees none in its first tile
      for (int64_t j = 0; j < c.S; ++j)
        pr.mask.template data<bool>()[(c.L + c.L / 2) * c.S + j] = false;
      for (int64_t j = 0; j < std::min<int64_t>(c.S - 1, kTileK + 3); ++j)
        pr.mask.template data<bool>()[(c.L / 3) * c.S + j] = false;
    }
  } else if (c.mask == AttentionMask::additive) {
    pr.mask = filled<T>(mn, gen);
    for (int64_t i = 0; i < mn; ++i)
      if (gen() % 5 == 0) pr.mask.template data<T>()[i] = -std::numeric_limits<T>::infinity();
    if (!c.broadcast_rows) {
      for (int64_t j = 0; j < c.S; ++j)
        pr.mask.template data<T>()[(c.L / 2) * c.S + j] = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j < std::min<int64_t>(c.S - 1, kTileK + 3); ++j)
        pr.mask.template data<T>()[(c.L + c.L / 3) * c.S + j] = -std::numeric_limits<T>::infinity();
    }
  }
  return pr;
}

const void* mask_data(const Tensor& mask) { return mask.defined() ? mask.data_ptr() : nullptr; }

// The naive attention in double: out, lse, and the gradients for dout. The dropout factor comes
// from the scalar dc::philox, laid out as Note [Dropout inside flash attention] says.
struct Reference {
  std::vector<double> out, lse, dq, dk, dv;
};

template <typename T>
Reference naive(const Problem<T>& pr) {
  const AttentionGeom& g = pr.g;
  const int64_t L = g.L, S = g.S, E = g.E, Ev = g.Ev;
  Reference ref;
  ref.out.assign(g.batch * L * Ev, 0), ref.lse.assign(g.batch * L, kInf);
  ref.dq.assign(g.batch * L * E, 0), ref.dk.assign(g.kv_batch * S * E, 0);
  ref.dv.assign(g.kv_batch * S * Ev, 0);
  const double thr = std::ceil((1.0 - g.dropout_p) * 16777216.0);
  const double f = g.dropout_p < 1.0 ? 1.0 / (1.0 - g.dropout_p) : 0.0;
  for (int64_t b = 0; b < g.batch; ++b) {
    const T* q = pr.q.template data<T>() + g.q_off[b];
    const T* k = pr.k.template data<T>() + g.k_off[b];
    const T* v = pr.v.template data<T>() + g.v_off[b];
    const T* dout = pr.dout.template data<T>() + b * L * Ev;
    const int64_t u = g.kv_index[b];
    for (int64_t i = 0; i < L; ++i) {
      std::vector<double> s(S, -kInf), p(S, 0), dp(S, 0);
      double m = -kInf;
      for (int64_t j = 0; j < S; ++j) {
        if (g.causal && j > i) continue;
        const int64_t at = g.m_off[b] + i * g.m_rs + j * g.m_cs;
        if (g.mask == AttentionMask::keep && !pr.mask.template data<bool>()[at]) continue;
        double dot = 0;
        for (int64_t e = 0; e < E; ++e) dot += double(q[i * g.q_rs + e]) * k[j * g.k_rs + e];
        s[j] = dot * g.scale;
        if (g.mask == AttentionMask::additive) s[j] += pr.mask.template data<T>()[at];
        m = std::max(m, s[j]);
      }
      if (m == -kInf) continue;  // no key: out, dq stay 0, lse +inf
      double sum = 0, dsum = 0;
      for (int64_t j = 0; j < S; ++j) sum += p[j] = std::exp(s[j] - m);
      ref.lse[b * L + i] = m + std::log(sum);
      for (int64_t j = 0; j < S; ++j) {
        p[j] /= sum;
        double drop = 1;
        if (g.dropout_p > 0) {
          const uint64_t ctr = g.offset + uint64_t(b * L + i) * uint64_t((S + 63) / 64 * 16) +
                               16 * uint64_t(j / 64) + uint64_t(j % 16);
          drop = (philox(g.seed, ctr)[(j % 64) / 16] >> 8) < thr ? f : 0.0;
        }
        for (int64_t e = 0; e < Ev; ++e) {
          ref.out[(b * L + i) * Ev + e] += p[j] * drop * v[j * g.v_rs + e];
          ref.dv[(u * S + j) * Ev + e] += p[j] * drop * dout[i * Ev + e];
          dp[j] += double(dout[i * Ev + e]) * v[j * g.v_rs + e] * drop;
        }
        dsum += p[j] * dp[j];
      }
      for (int64_t j = 0; j < S; ++j) {
        const double ds = p[j] * (dp[j] - dsum) * g.scale;
        for (int64_t e = 0; e < E; ++e) {
          ref.dq[(b * L + i) * E + e] += ds * k[j * g.k_rs + e];
          ref.dk[(u * S + j) * E + e] += ds * q[i * g.q_rs + e];
        }
      }
    }
  }
  return ref;
}

// One score tile as masked_scores leaves it: s[r][c] = the masked scaled score for r < nq,
// c < nk, -inf elsewhere; false when the kernels skip the tile.
template <typename T>
using Tile = std::vector<std::vector<T>>;

template <typename T>
bool emulate_scores(const AttentionDims& d, const Problem<T>& pr, int64_t b, int64_t i0, int nq,
                    int64_t j0, int nk, Tile<T>& s) {
  const T* q = pr.q.template data<T>() + pr.g.q_off[b];
  const T* k = pr.k.template data<T>() + pr.g.k_off[b];
  const void* mask = mask_slab<T>(d, mask_data(pr.mask), pr.g.m_off[b]);
  s.assign(kTileQ, std::vector<T>(kTileK, -std::numeric_limits<T>::infinity()));
  bool visible = false;
  for (int r = 0; r < nq; ++r)
    for (int c = 0; c < nk; ++c) {
      T dot = 0;
      for (int64_t e = 0; e < d.E; ++e) dot += q[(i0 + r) * d.q_rs + e] * k[(j0 + c) * d.k_rs + e];
      s[r][c] = masked_score(d, dot * static_cast<T>(d.scale), mask, i0 + r, j0 + c);
      visible = visible || s[r][c] > -std::numeric_limits<T>::infinity();
    }
  return !skips_hidden_tiles(d) || visible;
}

struct Emulated {
  std::vector<double> out, lse, dq, dk, dv;
};

// flash_forward's loop: an item per (slab, query tile, Ev chunk), online softmax over 64-key
// tiles, dropout words read the way a thread of the tile reads them.
template <typename T>
void emulate_forward(const Problem<T>& pr, Emulated& em) {
  const AttentionDims d = attention_dims(pr.g);
  const TileGrid grid = forward_grid(d);
  const int C = grid.cols;
  const T ninf = -std::numeric_limits<T>::infinity(), factor = static_cast<T>(d.factor);
  em.out.assign(d.batch * d.L * d.Ev, std::nan("")), em.lse.assign(d.batch * d.L, std::nan(""));
  for (int64_t item = 0; item < grid.items(); ++item) {
    const TileItem it = decode_item(item, grid.tiles, grid.chunks);
    const int64_t b = it.slab, i0 = it.tile * kTileQ, c0 = it.chunk * C;
    const int nq = static_cast<int>(min64(kTileQ, d.L - i0)), nc = chunk_width(d.Ev, c0, C);
    const T* v = pr.v.template data<T>() + pr.g.v_off[b] + c0;
    std::vector<T> m(kTileQ, ninf), l(kTileQ, T(0));
    Tile<T> acc(kTileQ, std::vector<T>(C, T(0))), s;
    const int64_t kend = key_end(d, i0);
    for (int64_t j0 = 0; j0 < kend; j0 += kTileK) {
      const int nk = static_cast<int>(min64(kTileK, kend - j0));
      if (!emulate_scores(d, pr, b, i0, nq, j0, nk, s)) continue;
      for (int r = 0; r < kTileQ; ++r) {
        T tmax = ninf;
        for (int c = 0; c < kTileK; ++c) tmax = max_ignoring_nan(tmax, s[r][c]);
        const RowRescale<T> step = online_rescale(m[r], tmax);
        T sum = 0;
        for (int c = 0; c < kTileK; ++c)
          sum += s[r][c] = step.dead ? T(0) : attention_exp(s[r][c] - step.m);
        if (step.dead) continue;
        if (d.dropout)
          for (int c = 0; c < kTileK; ++c) {
            uint32_t w[4];
            dropout_words(d, b * d.L + i0 + r, j0 + c % 16, w);  // thread tx = c % 16, j = c / 16
            s[r][c] *= T(dropout_kept(d, w[c / 16]));
          }
        l[r] = l[r] * step.alpha + sum;
        m[r] = step.m;
        if (step.alpha != T(1))
          for (int cc = 0; cc < C; ++cc) acc[r][cc] *= step.alpha;
      }
      for (int r = 0; r < kTileQ; ++r)  // tile_product: v rows past nk, columns past nc read 0
        for (int c = 0; c < nk; ++c)
          for (int cc = 0; cc < nc; ++cc) acc[r][cc] += s[r][c] * v[(j0 + c) * d.v_rs + cc];
    }
    for (int r = 0; r < nq; ++r) {
      const int64_t row = b * d.L + i0 + r;
      for (int cc = 0; cc < nc; ++cc)
        em.out[row * d.Ev + c0 + cc] = row_output(acc[r][cc], l[r], factor);
      if (it.chunk == 0) em.lse[row] = row_lse(m[r], l[r]);
    }
  }
}

// tile_grads: p (times keep) replaces s, ds replaces dp.
template <typename T>
void emulate_grads(const AttentionDims& d, const std::vector<T>& lse, const std::vector<T>& delta,
                   int64_t b, int64_t i0, int nq, int64_t j0, int nk, Tile<T>& s, Tile<T>& dp) {
  for (int r = 0; r < kTileQ; ++r)
    for (int c = 0; c < kTileK; ++c) {
      const int64_t row = b * d.L + i0 + r;
      const bool valid = r < nq && c < nk;
      bool kept = true;
      if (d.dropout && r < nq) {
        uint32_t w[4];
        dropout_words(d, row, j0 + c % 16, w);
        kept = dropout_kept(d, w[c / 16]);
      }
      const T p = valid ? attention_exp(s[r][c] - lse[row]) : T(0);
      dp[r][c] = valid ? score_grad(d, p, dp[r][c], delta[row], kept, T(d.factor)) : T(0);
      s[r][c] = p * T(kept);
    }
}

// dp[r][c] = dout_r . v_c for the valid part, 0 elsewhere.
template <typename T>
void emulate_dp(const AttentionDims& d, const Problem<T>& pr, int64_t b, int64_t i0, int nq,
                int64_t j0, int nk, Tile<T>& dp) {
  const T* dout = pr.dout.template data<T>() + b * d.L * d.Ev;
  const T* v = pr.v.template data<T>() + pr.g.v_off[b];
  dp.assign(kTileQ, std::vector<T>(kTileK, T(0)));
  for (int r = 0; r < nq; ++r)
    for (int c = 0; c < nk; ++c)
      for (int64_t e = 0; e < d.Ev; ++e)
        dp[r][c] += dout[(i0 + r) * d.Ev + e] * v[(j0 + c) * d.v_rs + e];
}

// flash_delta, flash_backward_kv and flash_backward_q, from the emulated forward's out and lse.
template <typename T>
void emulate_backward(const Problem<T>& pr, Emulated& em) {
  const AttentionDims d = attention_dims(pr.g);
  const int64_t rows = d.batch * d.L, q_tiles = ceil_div(d.L, kTileQ);
  const T* dout = pr.dout.template data<T>();
  std::vector<T> lse(rows), delta(rows, T(0));
  for (int64_t r = 0; r < rows; ++r) {
    lse[r] = static_cast<T>(em.lse[r]);
    for (int64_t c = 0; c < d.Ev; ++c)
      delta[r] += dout[r * d.Ev + c] * static_cast<T>(em.out[r * d.Ev + c]);
  }
  const T scale = static_cast<T>(d.scale), factor = static_cast<T>(d.factor);
  em.dk.assign(d.kv_batch * d.S * d.E, std::nan(""));
  em.dv.assign(d.kv_batch * d.S * d.Ev, std::nan(""));
  em.dq.assign(rows * d.E, std::nan(""));
  const KvMembers members = kv_members(pr.g.kv_index, d.kv_batch);
  const TileGrid kv = backward_kv_grid(d, sizeof(T));
  Tile<T> s, dp;
  for (int64_t item = 0; item < kv.items(); ++item) {
    const TileItem it = decode_item(item, kv.tiles, kv.chunks);
    const int64_t u = it.slab, j0 = it.tile * kTileK, c0 = it.chunk * kv.cols;
    const int nce = chunk_width(d.E, c0, kv.cols), ncv = chunk_width(d.Ev, c0, kv.cols);
    Tile<T> dk(kTileK, std::vector<T>(kv.cols, T(0))), dv = dk;
    for (int64_t mi = members.start[u]; mi < members.start[u + 1]; ++mi) {
      const int64_t b = members.members[mi];
      const T* q = pr.q.template data<T>() + pr.g.q_off[b];
      for (int64_t qt = first_query_tile(d, j0); qt < q_tiles; ++qt) {
        const int64_t i0 = qt * kTileQ, kend = key_end(d, i0);
        if (j0 >= kend) continue;
        const int nq = static_cast<int>(min64(kTileQ, d.L - i0));
        const int nk = static_cast<int>(min64(kTileK, kend - j0));
        if (!emulate_scores(d, pr, b, i0, nq, j0, nk, s)) continue;
        emulate_dp(d, pr, b, i0, nq, j0, nk, dp);
        emulate_grads(d, lse, delta, b, i0, nq, j0, nk, s, dp);
        for (int c = 0; c < kTileK; ++c)
          for (int r = 0; r < nq; ++r) {
            for (int cc = 0; cc < ncv; ++cc)
              dv[c][cc] += s[r][c] * dout[(b * d.L + i0 + r) * d.Ev + c0 + cc];
            for (int cc = 0; cc < nce; ++cc) dk[c][cc] += dp[r][c] * q[(i0 + r) * d.q_rs + c0 + cc];
          }
      }
    }
    for (int c = 0; c < min64(kTileK, d.S - j0); ++c) {
      for (int cc = 0; cc < nce; ++cc)
        em.dk[(u * d.S + j0 + c) * d.E + c0 + cc] = dk[c][cc] * scale;
      for (int cc = 0; cc < ncv; ++cc)
        em.dv[(u * d.S + j0 + c) * d.Ev + c0 + cc] = dv[c][cc] * factor;
    }
  }
  const TileGrid qg = backward_q_grid(d);
  for (int64_t item = 0; item < qg.items(); ++item) {
    const TileItem it = decode_item(item, qg.tiles, qg.chunks);
    const int64_t b = it.slab, i0 = it.tile * kTileQ, c0 = it.chunk * qg.cols;
    const int nq = static_cast<int>(min64(kTileQ, d.L - i0)), nce = chunk_width(d.E, c0, qg.cols);
    const T* k = pr.k.template data<T>() + pr.g.k_off[b];
    Tile<T> dq(kTileQ, std::vector<T>(qg.cols, T(0)));
    const int64_t kend = key_end(d, i0);
    for (int64_t j0 = 0; j0 < kend; j0 += kTileK) {
      const int nk = static_cast<int>(min64(kTileK, kend - j0));
      if (!emulate_scores(d, pr, b, i0, nq, j0, nk, s)) continue;
      emulate_dp(d, pr, b, i0, nq, j0, nk, dp);
      emulate_grads(d, lse, delta, b, i0, nq, j0, nk, s, dp);
      for (int r = 0; r < kTileQ; ++r)
        for (int c = 0; c < nk; ++c)
          for (int cc = 0; cc < nce; ++cc) dq[r][cc] += dp[r][c] * k[(j0 + c) * d.k_rs + c0 + cc];
    }
    for (int r = 0; r < nq; ++r)
      for (int cc = 0; cc < nce; ++cc)
        em.dq[(b * d.L + i0 + r) * d.E + c0 + cc] = dq[r][cc] * scale;
  }
}

template <typename T>
std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> out(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = t.data<T>()[i];
  return out;
}

// Equal where both are NaN or both the same infinity, else within tol (relative to 1 + |want|).
void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol,
                  const char* what, const Case& c) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    const double a = got[i], b = want[i];
    if (std::isnan(b) || std::isinf(b)) {
      ASSERT_TRUE((std::isnan(a) && std::isnan(b)) || a == b)
          << what << " at " << i << ": " << a << " vs " << b << " L=" << c.L << " S=" << c.S;
      continue;
    }
    ASSERT_NEAR(a, b, tol * (1 + std::abs(b)))
        << what << " at " << i << " L=" << c.L << " S=" << c.S << " E=" << c.E << " Ev=" << c.Ev
        << " causal=" << c.causal << " mask=" << int(c.mask) << " p=" << c.dropout_p;
  }
}

template <typename T>
void check(const Case& c, double tol) {
  const Problem<T> pr = make_problem<T>(c);
  const AttentionGeom& g = pr.g;
  Emulated em;
  emulate_forward(pr, em);
  emulate_backward(pr, em);
  // The cpu kernels: the contract the device kernels keep.
  const DType dt = dtype_of<T>::value;
  Tensor out = Tensor::empty({g.batch, g.L, g.Ev}, dt), lse = Tensor::empty({g.batch, g.L}, dt);
  cpu::sdpa_flash_forward(g, pr.q, pr.k, pr.v, pr.mask, out, lse);
  Tensor dq = Tensor::empty({g.batch, g.L, g.E}, dt);
  Tensor dk = Tensor::empty({g.kv_batch, g.S, g.E}, dt);
  Tensor dv = Tensor::empty({g.kv_batch, g.S, g.Ev}, dt);
  cpu::sdpa_flash_backward(g, pr.q, pr.k, pr.v, pr.mask, out, lse, pr.dout, dq, dk, dv);
  expect_close(em.out, as_doubles<T>(out), tol, "out vs cpu", c);
  expect_close(em.lse, as_doubles<T>(lse), tol, "lse vs cpu", c);
  expect_close(em.dq, as_doubles<T>(dq), tol, "dq vs cpu", c);
  expect_close(em.dk, as_doubles<T>(dk), tol, "dk vs cpu", c);
  expect_close(em.dv, as_doubles<T>(dv), tol, "dv vs cpu", c);
  if (c.nan) return;  // the naive loop has no NaN semantics of its own
  const Reference ref = naive(pr);
  expect_close(em.out, ref.out, tol, "out", c);
  expect_close(em.lse, ref.lse, tol, "lse", c);
  expect_close(em.dq, ref.dq, tol, "dq", c);
  expect_close(em.dk, ref.dk, tol, "dk", c);
  expect_close(em.dv, ref.dv, tol, "dv", c);
}

const Case kCases[] = {
    {1, 1, 3, 2},
    {7, 130, 5, 3, false, AttentionMask::keep},
    {130, 67, 16, 9, true},
    {65, 200, 8, 8, true},
    {70, 129, 4, 6, false, AttentionMask::additive},
    {66, 131, 6, 5, false, AttentionMask::keep, 0.0, true},
    {67, 70, 3, 4, false, AttentionMask::additive, 0.0, true},
    {129, 129, 33, 150},                       // Ev > 128: two output chunks of 128
    {64, 64, 80, 70, true},                    // 128-column chunks, exact tiles
    {3, 5, 0, 4},                              // E = 0: every score 0
    {5, 7, 3, 0},                              // Ev = 0: only the lse
    {3, 0, 4, 5},                              // S = 0: every row without keys
    {0, 5, 4, 3},                              // L = 0: dk, dv 0
    {40, 70, 7, 5, false, AttentionMask::none, 0.0, false, true},  // NaN scores
};

TEST(CudaAttentionTiles, MatchNaiveAndCpuFloat64) {
  for (const Case& c : kCases) check<double>(c, 1e-11);
}

TEST(CudaAttentionTiles, MatchNaiveAndCpuFloat32) {
  for (const Case& c : kCases) check<float>(c, 3e-5 * std::sqrt(double(c.S + c.E + c.Ev)));
}

const Case kDropoutCases[] = {
    {7, 130, 5, 3, false, AttentionMask::keep, 0.3},
    {130, 67, 16, 9, true, AttentionMask::none, 0.5},
    {65, 200, 8, 70, true, AttentionMask::none, 0.1},
    {70, 129, 4, 6, false, AttentionMask::additive, 0.7},
    {33, 65, 5, 5, false, AttentionMask::none, 1.0},
};

TEST(CudaAttentionTiles, DropoutMatchesNaiveAndCpuFloat64) {
  for (const Case& c : kDropoutCases) check<double>(c, 1e-11);
}

TEST(CudaAttentionTiles, DropoutMatchesNaiveAndCpuFloat32) {
  for (const Case& c : kDropoutCases) check<float>(c, 3e-5 * std::sqrt(double(c.S + c.E + c.Ev)));
}

}  // namespace
}  // namespace dc::cuda_kernels
