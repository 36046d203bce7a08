// The tensor-core flash attention forward (kernels/cuda/attention_tc.cu) emulated on the host:
// every thread's cp.async or element copies, every warp's ldmatrix and mma.sync as the PTX ISA
// defines them, the quad shuffles, and the per-lane online softmax, dropout and p rounding
// through the plan's own functions (the plan is tested in test_cuda_attention_tc_plan.cpp). The
// emulated output is held against a naive attention in double, within the error of rounding p
// and the output to 16 bits, and against a reference that rounds p as the kernel does, within
// float accumulation error: far tighter, at awkward L, S, E, Ev, with GQA, padded and unaligned
// rows, bool and additive masks (broadcast rows, rows without keys), is_causal, dropout and NaN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "core/half.h"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention_tc_plan.h"
#include "ptx_emulation.h"

namespace dc::cuda_kernels::flash_tc {
namespace {

using cpu::AttentionGeom;
using cpu::AttentionMask;
using mma::Coord;
using mma::TileCoord;
using ptx_emulation::emulate_ldmatrix_x4;
using ptx_emulation::half_of;
using ptx_emulation::lane_offsets;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kHeadDims[] = {64, 128};


// ---- the kernel, emulated -----------------------------------------------------------------------

// A host buffer of 16-bit values starting on 64 bytes, padding NaN: a read of anything but the
// operands' elements poisons the result.
struct HostBuf {
  std::vector<uint16_t> raw;
  uint16_t* p = nullptr;
  size_t n = 0;
  void init(size_t count, uint16_t nan) {
    raw.assign(count + 64, nan);
    const uintptr_t a = (reinterpret_cast<uintptr_t>(raw.data()) + 63) & ~uintptr_t(63);
    p = reinterpret_cast<uint16_t*>(a);
    n = count;
  }
  uintptr_t addr() const { return reinterpret_cast<uintptr_t>(p); }
  bool holds(const uint16_t* x, int64_t count) const { return x >= p && x + count <= p + n; }
};

template <int Kd>
uint16_t nan_bits() {
  return Kd == kBf16 ? 0x7fc0 : 0x7e00;
}

struct Case {
  int64_t L, S, E, Ev;
  bool causal = false;
  AttentionMask mask = AttentionMask::none;
  double dropout_p = 0.0;
  bool broadcast_rows = false;  // the mask's rows broadcast (m_rs = 0)
  bool aligned = true;          // 16-byte rows and slabs (cp.async), else element copies
  bool nan = false;             // a NaN in one query row and one key row
};

// Two batch entries x two query heads over one key/value head each (GQA), rows padded past E.
template <int Kd>
struct Problem {
  AttentionGeom g;
  HostBuf q, k, v, add;
  std::unique_ptr<bool[]> keep;
  const void* mask = nullptr;
};

template <int Kd>
std::unique_ptr<Problem<Kd>> make_problem(const Case& c, uint32_t seed) {
  constexpr int64_t kBatch = 2, kHeads = 2;
  auto pr = std::make_unique<Problem<Kd>>();
  AttentionGeom& g = pr->g;
  g.batch = kBatch * kHeads, g.kv_batch = kBatch;
  g.L = c.L, g.S = c.S, g.E = c.E, g.Ev = c.Ev;
  const auto up8 = [](int64_t n) { return (n + 7) / 8 * 8; };
  g.q_rs = c.aligned ? up8(c.E) + 8 : c.E + 3;
  g.k_rs = c.aligned ? up8(c.E) + 16 : c.E + 1;
  g.v_rs = c.aligned ? up8(c.Ev) + 8 : c.Ev + 5;
  g.mask = c.mask, g.causal = c.causal, g.scale = 0.37;
  g.dropout_p = c.dropout_p, g.seed = 0x9e3779b97f4a7c15ULL, g.offset = 77;
  const int64_t qs = c.aligned ? 8 : 1, ks = c.aligned ? 16 : 2, vs = c.aligned ? 8 : 3;
  for (int64_t b = 0; b < g.batch; ++b) {
    const int64_t u = b / kHeads;
    g.kv_index.push_back(u);
    g.q_off.push_back(qs + b * c.L * g.q_rs);
    g.k_off.push_back(ks + u * c.S * g.k_rs);
    g.v_off.push_back(vs + u * c.S * g.v_rs);
    g.m_off.push_back(u * (c.broadcast_rows ? c.S : c.L * c.S));
  }
  g.m_rs = c.broadcast_rows ? 0 : c.S, g.m_cs = 1;
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const uint16_t nan = nan_bits<Kd>();
  const auto fill = [&](HostBuf& buf, const std::vector<int64_t>& off, int64_t slabs,
                        int64_t rows, int64_t rs, int64_t cols) {
    buf.init(static_cast<size_t>(16 + slabs * rows * rs + 16), nan);
    for (int64_t b = 0; b < slabs; ++b)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t e = 0; e < cols; ++e) buf.p[off[b] + r * rs + e] = to_bits<Kd>(nd(gen));
  };
  fill(pr->q, g.q_off, g.batch, c.L, g.q_rs, c.E);
  std::vector<int64_t> k_slabs, v_slabs;
  for (int64_t u = 0; u < kBatch; ++u) k_slabs.push_back(g.k_off[u * kHeads]);
  for (int64_t u = 0; u < kBatch; ++u) v_slabs.push_back(g.v_off[u * kHeads]);
  fill(pr->k, k_slabs, kBatch, c.S, g.k_rs, c.E);
  fill(pr->v, v_slabs, kBatch, c.S, g.v_rs, c.Ev);
  if (c.nan && c.L > 1 && c.S > 1 && c.E > 0) {
    pr->q.p[g.q_off[1] + (c.L - 1) * g.q_rs] = nan;
    pr->k.p[g.k_off[2] + (c.S / 2) * g.k_rs] = nan;
  }
  const int64_t mrows = c.broadcast_rows ? 1 : c.L, mn = kBatch * mrows * c.S;
  if (c.mask == AttentionMask::keep) {
    pr->keep.reset(new bool[std::max<int64_t>(mn, 1)]);
    for (int64_t i = 0; i < mn; ++i) pr->keep[i] = gen() % 4 != 0;
    if (!c.broadcast_rows) {
      // a row of batch entry 1 that sees no key, one of entry 0 that sees none in its first tile
      for (int64_t j = 0; j < c.S; ++j) pr->keep[(c.L + c.L / 2) * c.S + j] = false;
      for (int64_t j = 0; j < std::min<int64_t>(c.S - 1, kBlockK + 3); ++j)
        pr->keep[(c.L / 3) * c.S + j] = false;
    }
    pr->mask = pr->keep.get();
  } else if (c.mask == AttentionMask::additive) {
    pr->add.init(static_cast<size_t>(mn), nan);
    for (int64_t i = 0; i < mn; ++i)
      pr->add.p[i] = to_bits<Kd>(gen() % 5 == 0 ? -std::numeric_limits<float>::infinity()
                                                : nd(gen));
    if (!c.broadcast_rows) {
      const uint16_t ninf = to_bits<Kd>(-std::numeric_limits<float>::infinity());
      for (int64_t j = 0; j < c.S; ++j) pr->add.p[(c.L / 2) * c.S + j] = ninf;
      for (int64_t j = 0; j < std::min<int64_t>(c.S - 1, kBlockK + 3); ++j)
        pr->add.p[(c.L + c.L / 3) * c.S + j] = ninf;
    }
    pr->mask = pr->add.p;
  }
  return pr;
}

// load_tile of attention_tc.cu for every thread: cp.async (the first `valid` elements read, the
// rest zero) or element loads. Every read is checked to lie in the operand's buffer.
void emulate_load(int D, uint16_t* tile, const uint16_t* src, int64_t rs, int rows, int64_t cols,
                  bool vec, const HostBuf& buf) {
  for (int tid = 0; tid < kThreads; ++tid)
    for (int i = 0; i < chunks_per_thread(D); ++i) {
      const TileCoord c = chunk_coord(D, tid + i * kThreads);
      const int valid = chunk_valid(c.row, c.k, rows, cols);
      uint16_t* dst = tile + tile_offset(D, c.row, c.k);
      const uint16_t* from = valid > 0 ? src + c.row * rs + c.k : src;
      if (vec) {
        ASSERT_EQ(reinterpret_cast<uintptr_t>(from) % 16, 0u) << "cp.async source unaligned";
        ASSERT_TRUE(buf.holds(from, valid)) << "cp.async reads outside the operand";
      } else if (valid > 0) {
        ASSERT_TRUE(buf.holds(from, valid)) << "an element load outside the operand";
      }
      for (int e = 0; e < 8; ++e) dst[e] = e < valid ? from[e] : uint16_t(0);
    }
}

// mma.sync m16n8k16 with f32 accumulation (ptx_emulation.h) on the accumulators d[lane].
template <int Kd>
void emulate_mma(float (*d[32])[4], const uint32_t (&a)[32][4], const uint32_t (&b)[32][2]) {
  ptx_emulation::emulate_mma16([&](int lane, int i) -> float& { return (*d[lane])[i]; }, a, b,
                               [](uint16_t h) { return to_float<Kd>(h); });
}

// The quad shuffles of the kernel: for o = 1, 2: v = op(v, v of lane ^ o), all lanes at once.
template <typename Op>
void quad_reduce(float (&v)[32], Op op) {
  for (int o = 1; o < 4; o *= 2) {
    float next[32];
    for (int lane = 0; lane < 32; ++lane) next[lane] = op(v[lane], v[lane ^ o]);
    std::copy(next, next + 32, v);
  }
}

// A warp's ldmatrix.x4 of the B fragments of two n-tiles (lanes' addresses from offset(lane))
// and the two mma.sync they feed with A fragments a; acc(lane, n) is the lane's accumulator of
// n-tile n.
template <int Kd, typename Offset, typename Acc>
void emulate_x4_mma(const uint16_t* tile, Offset offset, bool trans, const uint32_t (&a)[32][4],
                    Acc acc) {
  uint32_t r[32][4], b[2][32][2];
  float (*d[2][32])[4];
  emulate_ldmatrix_x4(tile, lane_offsets(offset).at, trans, r);
  for (int lane = 0; lane < 32; ++lane)
    for (int n = 0; n < 2; ++n) {
      b[n][lane][0] = r[lane][2 * n];
      b[n][lane][1] = r[lane][2 * n + 1];
      d[n][lane] = acc(lane, n);
    }
  emulate_mma<Kd>(d[0], a, b[0]);
  emulate_mma<Kd>(d[1], a, b[1]);
}

struct Emulated {
  std::vector<float> out_pre, lse;  // the output before its rounding; the lse in float
  std::vector<uint16_t> out;
  std::vector<int> out_writes, lse_writes;
};

// flash_forward_tc over the whole grid, thread by thread.
template <int Kd, int D>
void emulate_forward(const Problem<Kd>& pr, Emulated& em) {
  constexpr int NS = kScoreTiles, NO = D / 8, KS = D / 16;
  const AttentionGeom& g = pr.g;
  const AttentionDims d = attention_dims(g);
  const Grid grid = query_tile_grid(d);
  em.out_pre.assign(g.batch * g.L * g.Ev, std::nanf(""));
  em.out.assign(g.batch * g.L * g.Ev, nan_bits<Kd>());
  em.lse.assign(g.batch * g.L, std::nanf(""));
  em.out_writes.assign(em.out.size(), 0);
  em.lse_writes.assign(em.lse.size(), 0);
  const bool q_vec = vector_rows(pr.q.addr(), g.q_off, g.q_rs, g.L, g.E);
  const bool k_vec = vector_rows(pr.k.addr(), g.k_off, g.k_rs, g.S, g.E);
  const bool v_vec = vector_rows(pr.v.addr(), g.v_off, g.v_rs, g.S, g.Ev);
  std::vector<uint16_t> smem(kSmemTiles * tile_elems(D));
  uint16_t* const k_tiles = smem.data();
  uint16_t* const v_tiles = k_tiles + 2 * tile_elems(D);
  uint16_t* const q_tile = v_tiles + tile_elems(D);
  struct Lane {  // one thread's registers
    uint32_t qf[KS][4];
    float o[NO][4], s[NS][4], m[2], l[2];
  };
  std::vector<Lane> th(kThreads);
  const float ninf = -std::numeric_limits<float>::infinity();
  const float scale = static_cast<float>(d.scale), factor = static_cast<float>(d.factor);
  const int e_steps = steps16(d.E), v_steps = steps16(d.Ev);
  for (int64_t item = 0; item < grid.items(); ++item) {
    const Item it = decode_query_tile(item, grid.tiles);
    const int64_t b = it.slab, i0 = it.tile * kBlockQ;
    const int nq = static_cast<int>(min64(kBlockQ, d.L - i0));
    const uint16_t* q = pr.q.p + g.q_off[b] + i0 * d.q_rs;
    const uint16_t* k = pr.k.p + g.k_off[b];
    const uint16_t* v = pr.v.p + g.v_off[b];
    const void* mask = pr.mask ? mask_slab<uint16_t>(d, pr.mask, g.m_off[b]) : nullptr;
    const int64_t kend = key_end(d, i0), key_tiles = ceil_div(kend, kBlockK);
    std::fill(smem.begin(), smem.end(), nan_bits<Kd>());
    emulate_load(D, q_tile, q, d.q_rs, nq, d.E, q_vec, pr.q);
    if (key_tiles > 0) {
      const int nk = static_cast<int>(min64(kBlockK, kend));
      emulate_load(D, k_tiles, k, d.k_rs, nk, d.E, k_vec, pr.k);
      emulate_load(D, v_tiles, v, d.v_rs, nk, d.Ev, v_vec, pr.v);
    }
    if (::testing::Test::HasFatalFailure()) return;
    th.assign(kThreads, Lane{{}, {}, {}, {ninf, ninf}, {0.0f, 0.0f}});
    for (int warp = 0; warp < kWarps; ++warp)
      for (int ks = 0; ks < e_steps; ++ks) {
        uint32_t regs[32][4];
        const auto at = [&](int lane) { return q_ldmatrix_offset(D, warp, ks, lane); };
        emulate_ldmatrix_x4(q_tile, lane_offsets(at).at, false, regs);
        for (int lane = 0; lane < 32; ++lane)
          std::memcpy(th[32 * warp + lane].qf[ks], regs[lane], sizeof regs[lane]);
      }
    for (int64_t t = 0; t < key_tiles; ++t) {
      const int64_t j0 = t * kBlockK;
      const int nk = static_cast<int>(min64(kBlockK, kend - j0));
      if (t + 1 < key_tiles) {  // lands in the other buffer, q's before tile 1
        const int64_t j1 = j0 + kBlockK;
        const int n1 = static_cast<int>(min64(kBlockK, kend - j1));
        const int next = static_cast<int>((t + 1) & 1) * tile_elems(D);
        emulate_load(D, k_tiles + next, k + j1 * d.k_rs, d.k_rs, n1, d.E, k_vec, pr.k);
        emulate_load(D, v_tiles + next, v + j1 * d.v_rs, d.v_rs, n1, d.Ev, v_vec, pr.v);
        if (::testing::Test::HasFatalFailure()) return;
      }
      const int cur = static_cast<int>(t & 1) * tile_elems(D);
      const uint16_t* ktile = k_tiles + cur;
      const uint16_t* vtile = v_tiles + cur;
      bool visible = false;
      for (int warp = 0; warp < kWarps; ++warp) {
        Lane* w = &th[32 * warp];
        for (int lane = 0; lane < 32; ++lane) std::memset(w[lane].s, 0, sizeof w[lane].s);
        for (int ks = 0; ks < e_steps; ++ks) {
          uint32_t a[32][4];
          for (int lane = 0; lane < 32; ++lane)
            std::memcpy(a[lane], w[lane].qf[ks], sizeof a[lane]);
          for (int nj = 0; nj < NS / 2; ++nj)
            emulate_x4_mma<Kd>(
                ktile, [&](int lane) { return k_ldmatrix_offset(D, nj, ks, lane); }, false, a,
                [&](int lane, int n) { return &w[lane].s[2 * nj + n]; });
        }
        for (int lane = 0; lane < 32; ++lane)
          for (int ni = 0; ni < NS; ++ni)
            for (int i = 0; i < 4; ++i) {
              const Coord c = acc_coord(warp, ni, lane, i);
              float& x = w[lane].s[ni][i];
              x = tile_score<Kd>(d, x, scale, mask, i0, nq, j0, nk, c.row, c.col);
              visible = visible || x > ninf;
            }
      }
      if (skips_hidden_tiles(d) && !visible) continue;  // __syncthreads_or over the block
      for (int warp = 0; warp < kWarps; ++warp) {
        Lane* w = &th[32 * warp];
        RowRescale<float> step[32][2];
        float sum[2][32];
        for (int h = 0; h < 2; ++h) {
          float mx[32];
          for (int lane = 0; lane < 32; ++lane) mx[lane] = lane_row_max(w[lane].s, h);
          quad_reduce(mx, [](float x, float y) { return max_ignoring_nan(x, y); });
          for (int lane = 0; lane < 32; ++lane) {
            step[lane][h] = online_rescale(w[lane].m[h], mx[lane]);
            sum[h][lane] = lane_row_exp(w[lane].s, h, step[lane][h]);
          }
          quad_reduce(sum[h], [](float x, float y) { return x + y; });
        }
        for (int lane = 0; lane < 32; ++lane)
          for (int h = 0; h < 2; ++h) {
            if (step[lane][h].dead) continue;
            if (d.dropout)
              lane_dropout(d, w[lane].s, h, b * d.L + i0 + acc_coord(warp, 0, lane, 2 * h).row,
                           j0, lane);
            lane_row_update(w[lane].o, w[lane].m[h], w[lane].l[h], h, step[lane][h],
                            sum[h][lane]);
          }
        for (int kk = 0; kk < kKeySteps; ++kk) {
          uint32_t a[32][4];
          for (int lane = 0; lane < 32; ++lane)
            for (int j = 0; j < 4; ++j) a[lane][j] = p_register<Kd>(w[lane].s, kk, j);
          for (int nj = 0; nj < v_steps; ++nj)
            emulate_x4_mma<Kd>(
                vtile, [&](int lane) { return v_ldmatrix_offset(D, kk, nj, lane); }, true, a,
                [&](int lane, int n) { return &w[lane].o[2 * nj + n]; });
        }
      }
    }
    for (int warp = 0; warp < kWarps; ++warp)
      for (int lane = 0; lane < 32; ++lane)
        for (int h = 0; h < 2; ++h) {
          const Lane& w = th[32 * warp + lane];
          const int r = acc_coord(warp, 0, lane, 2 * h).row;
          if (r >= nq) continue;
          const int64_t row = b * d.L + i0 + r;
          for (int ni = 0; ni < NO; ++ni)
            for (int e = 0; e < 2; ++e) {
              const int c = acc_coord(warp, ni, lane, 2 * h + e).col;
              if (c >= d.Ev) continue;
              const float x = row_output(w.o[ni][2 * h + e], w.l[h], factor);
              em.out_pre[row * d.Ev + c] = x;
              em.out[row * d.Ev + c] = to_bits<Kd>(x);
              ++em.out_writes[row * d.Ev + c];
            }
          if (lane % 4 == 0) {
            em.lse[row] = row_lse(w.m[h], w.l[h]);
            ++em.lse_writes[row];
          }
        }
  }
}

// ---- references -------------------------------------------------------------------------------

// Per output element: the naive attention in double; the same with p rounded to 16 bits as the
// kernel rounds it (exp(s - m) against the running max m of the key tile, 64 keys, rescaled to
// the final max); and the error bounds of each comparison.
struct Reference {
  std::vector<double> out, lse, out_rounded_p;
  std::vector<double> tol_naive, tol_rounded, tol_lse;
  std::vector<bool> dead;  // out 0, lse +inf: no visible key, or a NaN score among them
};

// Float accumulation error: summing up to a few hundred terms in float, a few ulps relative to
// the magnitude of the terms (the exact products of 16-bit values add no error of their own).
constexpr double kFloatSum = 0x1p-16;
// Scores this close (relatively) to a rounding boundary of p may round the other way in the
// kernel's float arithmetic than in the reference's double.
constexpr double kTieGuard = 0x1p-16;

template <int Kd>
double round16(double x) {
  return to_float<Kd>(to_bits<Kd>(static_cast<float>(x)));
}
// |round16(p) - p| for p in [0, 1]: half an ulp relative (2^-8 bfloat16, 2^-11 float16), and
// float16's subnormal spacing 2^-24 below 2^-14.
template <int Kd>
double p_rounding_bound(double p) {
  return Kd == kBf16 ? p * 0x1p-8 : std::max(p * 0x1p-11, 0x1p-25);
}

// The same for the output's rounding, of any magnitude below float16's 65504.
template <int Kd>
double out_rounding_bound(double x) {
  return Kd == kBf16 ? std::abs(x) * 0x1p-8 : std::max(std::abs(x) * 0x1p-11, 0x1p-25);
}

template <int Kd>
Reference reference(const Problem<Kd>& pr) {
  const AttentionGeom& g = pr.g;
  const AttentionDims d = attention_dims(g);
  const int64_t L = g.L, S = g.S, Ev = g.Ev;
  const double u_out = Kd == kBf16 ? 0x1p-8 : 0x1p-11;
  Reference ref;
  const size_t n_out = static_cast<size_t>(g.batch * L * Ev);
  ref.out.assign(n_out, 0), ref.out_rounded_p.assign(n_out, 0);
  ref.tol_naive.assign(n_out, 0), ref.tol_rounded.assign(n_out, 0);
  ref.lse.assign(g.batch * L, kInf), ref.tol_lse.assign(g.batch * L, 0);
  ref.dead.assign(g.batch * L, true);
  const auto val = [](const uint16_t* p) { return double(to_float<Kd>(*p)); };
  for (int64_t b = 0; b < g.batch; ++b) {
    const uint16_t* q = pr.q.p + g.q_off[b];
    const uint16_t* k = pr.k.p + g.k_off[b];
    const uint16_t* v = pr.v.p + g.v_off[b];
    for (int64_t i = 0; i < L; ++i) {
      const int64_t row = b * L + i;
      std::vector<double> s(S, -kInf);
      double m = -kInf;
      bool has_nan = false;
      for (int64_t j = 0; j < S; ++j) {
        if (g.causal && j > i) continue;
        const int64_t at = g.m_off[b] + i * g.m_rs + j * g.m_cs;
        if (g.mask == AttentionMask::keep && !pr.keep[at]) continue;
        double dot = 0;
        for (int64_t e = 0; e < g.E; ++e) dot += val(q + i * g.q_rs + e) * val(k + j * g.k_rs + e);
        s[j] = dot * static_cast<double>(static_cast<float>(g.scale));
        if (g.mask == AttentionMask::additive) s[j] += val(pr.add.p + at);
        has_nan = has_nan || std::isnan(s[j]);
        if (s[j] > m) m = s[j];
      }
      if (m == -kInf || has_nan) continue;  // dead: out 0, lse +inf
      ref.dead[row] = false;
      // l over every key (dropout after the sum); the running max of each key's 64-key tile
      double l = 0, run = -kInf;
      std::vector<double> tile_max(S, -kInf);
      for (int64_t j0 = 0; j0 < S; j0 += kBlockK) {
        for (int64_t j = j0; j < std::min(S, j0 + kBlockK); ++j) run = std::max(run, s[j]);
        for (int64_t j = j0; j < std::min(S, j0 + kBlockK); ++j) tile_max[j] = run;
      }
      for (int64_t j = 0; j < S; ++j) l += std::exp(s[j] - m);
      ref.lse[row] = m + std::log(l);
      ref.tol_lse[row] = kFloatSum * (1 + std::abs(ref.lse[row]));
      for (int64_t c = 0; c < Ev; ++c) {
        double exact = 0, rounded = 0, magnitude = 0, p_bound = 0, flips = 0;
        for (int64_t j = 0; j < S; ++j) {
          if (s[j] == -kInf) continue;
          const bool kept = g.dropout_p == 0.0 || dropout_keep(d, row, j);
          if (!kept) continue;
          const double vj = val(v + j * g.v_rs + c), w = std::exp(tile_max[j] - m);
          const double p = std::exp(s[j] - tile_max[j]);  // as the kernel's running max sees it
          const double p16 = round16<Kd>(p);
          exact += p * w * vj;
          rounded += p16 * w * vj;
          magnitude += p16 * w * std::abs(vj);
          p_bound += p_rounding_bound<Kd>(p) * w * std::abs(vj);
          const double lo = round16<Kd>(p * (1 - kTieGuard)), hi = round16<Kd>(p * (1 + kTieGuard));
          if (lo != hi) flips += (hi - lo) * w * std::abs(vj);
        }
        const double f = d.factor / l;
        const size_t at = static_cast<size_t>(row * Ev + c);
        ref.out[at] = exact * f;
        ref.out_rounded_p[at] = rounded * f;
        const double fl = kFloatSum * magnitude * f;
        ref.tol_rounded[at] = fl + flips * f;
        ref.tol_naive[at] = (1 + u_out) * (p_bound * f + fl) + out_rounding_bound<Kd>(exact * f);
      }
    }
  }
  return ref;
}

// ---- the comparison -----------------------------------------------------------------------------

// Summed over a test's outputs, the unrounded output's distance to the naive attention (the
// rounding of p) and to the reference that rounds p as the kernel does (float arithmetic only).
struct ErrorSums {
  double naive = 0, rounded_p = 0;
};

template <int Kd>
void check(const Case& c, uint32_t seed, ErrorSums& sums) {
  std::ostringstream os;
  os << "L=" << c.L << " S=" << c.S << " E=" << c.E << " Ev=" << c.Ev << " causal=" << c.causal
     << " mask=" << int(c.mask) << " p=" << c.dropout_p << " broadcast=" << c.broadcast_rows
     << " aligned=" << c.aligned << " nan=" << c.nan;
  SCOPED_TRACE(os.str());
  const auto pr = make_problem<Kd>(c, seed);
  Emulated em;
  const int D = head_dim(c.E, c.Ev);
  ASSERT_GT(D, 0);
  if (D == 64)
    emulate_forward<Kd, 64>(*pr, em);
  else
    emulate_forward<Kd, 128>(*pr, em);
  if (::testing::Test::HasFatalFailure()) return;
  const Reference ref = reference(*pr);
  const int64_t L = c.L, Ev = c.Ev;
  for (int64_t row = 0; row < pr->g.batch * L; ++row) {
    ASSERT_EQ(em.lse_writes[row], 1) << "row " << row;
    if (ref.dead[row]) {
      ASSERT_EQ(em.lse[row], std::numeric_limits<float>::infinity()) << "row " << row;
    } else {
      ASSERT_NEAR(em.lse[row], ref.lse[row], ref.tol_lse[row]) << "row " << row;
    }
    for (int64_t col = 0; col < Ev; ++col) {
      const size_t at = static_cast<size_t>(row * Ev + col);
      ASSERT_EQ(em.out_writes[at], 1) << "row " << row << " col " << col;
      ASSERT_EQ(em.out[at], to_bits<Kd>(em.out_pre[at]));
      const double got = to_float<Kd>(em.out[at]);
      if (ref.dead[row]) {
        ASSERT_EQ(got, 0.0) << "row " << row << " col " << col;
        continue;
      }
      ASSERT_NEAR(got, ref.out[at], ref.tol_naive[at]) << "naive, row " << row << " col " << col;
      ASSERT_NEAR(em.out_pre[at], ref.out_rounded_p[at], ref.tol_rounded[at])
          << "p rounded as the kernel, row " << row << " col " << col;
      sums.naive += std::abs(em.out_pre[at] - ref.out[at]);
      sums.rounded_p += std::abs(em.out_pre[at] - ref.out_rounded_p[at]);
    }
  }
}

const Case kCases[] = {
    {1, 1, 16, 16},
    {7, 130, 64, 64, false, AttentionMask::keep},
    {130, 67, 128, 128, true},                    // L > S, causal
    {65, 200, 32, 96, true},                      // L < S, causal
    {70, 129, 48, 16, false, AttentionMask::additive},
    {66, 131, 72, 40, false, AttentionMask::keep, 0.0, true, false},  // broadcast rows, unaligned
    {67, 70, 24, 56, false, AttentionMask::additive, 0.0, true},
    {64, 64, 80, 128, true},                      // exact tiles, D = 128
    {129, 64, 8, 8},                              // E < 16: one zero-padded step
    {40, 70, 100, 7, false, AttentionMask::none, 0.0, false, false},  // odd E, Ev: element copies
    {40, 70, 100, 7},                             // ... and aligned rows with a partial chunk
    {3, 5, 0, 16},                                // E = 0: every score 0
    {5, 7, 16, 0},                                // Ev = 0: only the lse
    {3, 0, 16, 16},                               // S = 0: every row without keys
    {0, 5, 16, 16},                               // L = 0: nothing
    {40, 70, 32, 32, false, AttentionMask::none, 0.0, false, true, true},  // NaN scores
};

const Case kDropoutCases[] = {
    {7, 130, 64, 64, false, AttentionMask::keep, 0.3},
    {130, 67, 128, 128, true, AttentionMask::none, 0.5},
    {65, 200, 16, 72, true, AttentionMask::none, 0.1},
    {70, 129, 48, 16, false, AttentionMask::additive, 0.7},
    {33, 65, 16, 16, false, AttentionMask::none, 1.0},  // nothing kept: out 0, lse as without
};

// p's rounding is what separates the kernel from exact attention: the reference that rounds p
// as the kernel does sits more than 16 times closer, on average, than the naive one (measured:
// about 1700 times in bfloat16, 60 in float16).
void expect_p_rounding_dominates(const ErrorSums& sums) {
  EXPECT_GT(sums.naive, 0.0);
  EXPECT_LT(16 * sums.rounded_p, sums.naive);
}

template <int Kd, size_t N>
void check_all(const Case (&cases)[N], uint32_t seed) {
  ErrorSums sums;
  for (const Case& c : cases) {
    check<Kd>(c, seed++, sums);
    if (::testing::Test::HasFatalFailure()) return;
  }
  expect_p_rounding_dominates(sums);
}

TEST(CudaAttentionTcKernel, EmulatedBf16MatchesReferences) { check_all<kBf16>(kCases, 1); }
TEST(CudaAttentionTcKernel, EmulatedF16MatchesReferences) { check_all<kF16>(kCases, 100); }
TEST(CudaAttentionTcKernel, EmulatedBf16DropoutMatchesReferences) {
  check_all<kBf16>(kDropoutCases, 200);
}
TEST(CudaAttentionTcKernel, EmulatedF16DropoutMatchesReferences) {
  check_all<kF16>(kDropoutCases, 300);
}

}  // namespace
}  // namespace dc::cuda_kernels::flash_tc
