// The plan of the tensor-core flash attention forward (kernels/cuda/attention_tc_plan.h),
// without a GPU: the copies cover each shared-memory tile once, every lane's ldmatrix address
// gives the fragment element mma16_a / mma16_b expect, free of bank conflicts, the score
// accumulators become p's A fragments in place, the items and key tiles cover every visible
// score and every output once, and the dropout words are the float kernels'. The kernel itself
// is emulated in test_cuda_attention_tc.cpp.
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
using ptx_emulation::LaneOffsets;
using ptx_emulation::lane_offsets;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kHeadDims[] = {64, 128};

// ---- the plan -----------------------------------------------------------------------------------

TEST(CudaAttentionTcPlan, CopiesCoverEachTileOnce) {
  for (int D : kHeadDims) {
    EXPECT_EQ(tile_elems(D) * 2 % 16, 0) << "every tile buffer starts on 16 bytes";
    EXPECT_EQ(smem_bytes(D), size_t(kSmemTiles) * tile_elems(D) * 2);
    std::vector<int> hits(kBlockK * D, 0);
    for (int t = 0; t < kThreads; ++t)
      for (int i = 0; i < chunks_per_thread(D); ++i) {
        const TileCoord c = chunk_coord(D, t + i * kThreads);
        ASSERT_TRUE(c.row >= 0 && c.row < kBlockK && c.k >= 0 && c.k + 8 <= D) << D << " " << t;
        const int at = tile_offset(D, c.row, c.k);
        EXPECT_EQ(at * 2 % 16, 0) << "cp.async needs 16-byte destinations";
        EXPECT_LE(at + 8, tile_elems(D));
        for (int e = 0; e < 8; ++e) ++hits[c.row * D + c.k + e];
        if (t + 1 < kThreads) {  // neighbouring threads: neighbouring 16 bytes of a row
          const TileCoord n = chunk_coord(D, t + 1 + i * kThreads);
          if (n.row == c.row) EXPECT_EQ(n.k, c.k + 8);
        }
      }
    for (int h : hits) ASSERT_EQ(h, 1) << "D " << D;
  }
  EXPECT_EQ(chunk_valid(3, 96, 10, 100), 4);   // a partial chunk at the end of a row
  EXPECT_EQ(chunk_valid(3, 104, 10, 100), 0);  // past E
  EXPECT_EQ(chunk_valid(10, 0, 10, 100), 0);   // past the tile's rows
  EXPECT_EQ(chunk_valid(0, 0, 1, 0), 0);       // E = 0
  EXPECT_EQ(chunk_valid(0, 8, 1, 64), 8);
}

TEST(CudaAttentionTcPlan, HeadDimsAndVectorCopies) {
  EXPECT_EQ(head_dim(0, 0), 64);
  EXPECT_EQ(head_dim(64, 7), 64);
  EXPECT_EQ(head_dim(65, 16), 128);
  EXPECT_EQ(head_dim(16, 128), 128);
  EXPECT_EQ(head_dim(129, 16), 0);
  EXPECT_EQ(head_dim(64, 256), 0);
  EXPECT_EQ(steps16(0), 0);
  EXPECT_EQ(steps16(1), 1);
  EXPECT_EQ(steps16(16), 1);
  EXPECT_EQ(steps16(100), 7);
  const std::vector<int64_t> aligned = {0, 8, 4096}, odd = {0, 8, 4097};
  EXPECT_TRUE(vector_rows(4096, aligned, 72, 5, 64));
  EXPECT_TRUE(vector_rows(4096, aligned, 104, 5, 100));  // a partial last chunk: src-size
  EXPECT_FALSE(vector_rows(4096, odd, 72, 5, 64));
  EXPECT_FALSE(vector_rows(4098, aligned, 72, 5, 64));
  EXPECT_FALSE(vector_rows(4096, aligned, 100, 5, 100));  // rows 200 bytes apart
  EXPECT_TRUE(vector_rows(4096, aligned, 100, 1, 100));   // ... unless there is one row
  EXPECT_FALSE(vector_rows(4096, aligned, 72, 0, 64));    // nothing to copy: no address
  EXPECT_FALSE(vector_rows(4096, aligned, 72, 5, 0));
}


// A tile whose element (row, col) holds row * 256 + col: what a fragment register holds names
// the element it came from.
std::vector<uint16_t> coordinate_tile(int D) {
  std::vector<uint16_t> t(tile_elems(D));
  for (int r = 0; r < kBlockK; ++r)
    for (int c = 0; c < pitch(D); ++c) t[tile_offset(D, r, c)] = static_cast<uint16_t>(r * 256 + c);
  return t;
}


// One ldmatrix.x4 of a tile of D columns, lanes' addresses from offset(lane): the 8 rows of
// each matrix fall in 8 different 16-byte bank groups, and half h of register j of each lane
// holds the tile element want(lane, j, h) (a Coord).
template <typename Offset, typename Want>
void expect_fragments(int D, Offset offset, bool trans, Want want, const char* what) {
  const std::vector<uint16_t> tile = coordinate_tile(D);
  const LaneOffsets off = lane_offsets(offset);
  for (int j = 0; j < 4; ++j) {
    std::set<int> groups;
    for (int r = 0; r < 8; ++r) groups.insert(off.at[8 * j + r] * 2 / 16 % 8);
    EXPECT_EQ(groups.size(), 8u) << what << " matrix " << j;
  }
  uint32_t regs[32][4];
  emulate_ldmatrix_x4(tile.data(), off.at, trans, regs);
  for (int lane = 0; lane < 32; ++lane)
    for (int j = 0; j < 4; ++j)
      for (int h = 0; h < 2; ++h) {
        const uint16_t got = half_of(regs[lane][j], h);
        const Coord c = want(lane, j, h);
        ASSERT_EQ(got / 256, c.row) << what << " lane " << lane << " register " << j;
        ASSERT_EQ(got % 256, c.col) << what << " lane " << lane << " register " << j;
      }
}

// Every fragment element of q, k and v comes from the tile element the mma layout puts there:
// q's A fragments (rows of warp w, e-step ks), k's B fragments of score n-tiles 2 nj, 2 nj + 1
// (k = e, n = key), v's of output n-tiles 2 nj, 2 nj + 1 (k = key, n = output column).
TEST(CudaAttentionTcPlan, LdmatrixGivesTheMmaFragments) {
  for (int D : kHeadDims) {
    for (int w = 0; w < kWarps; ++w)
      for (int ks = 0; ks < D / 16; ++ks)
        expect_fragments(
            D, [&](int lane) { return q_ldmatrix_offset(D, w, ks, lane); }, false,
            [&](int lane, int j, int h) {
              const Coord a = mma::mma16_a(lane, 2 * j + h);
              return Coord{kWarpRows * w + a.row, 16 * ks + a.col};
            },
            "q");
    for (int nj = 0; nj < kScoreTiles / 2; ++nj)
      for (int ks = 0; ks < D / 16; ++ks)
        expect_fragments(
            D, [&](int lane) { return k_ldmatrix_offset(D, nj, ks, lane); }, false,
            [&](int lane, int j, int h) {
              const Coord b = mma::mma16_b(lane, 2 * (j % 2) + h);
              return Coord{16 * nj + 8 * (j / 2) + b.col, 16 * ks + b.row};
            },
            "k");
    for (int kk = 0; kk < kKeySteps; ++kk)
      for (int nj = 0; nj < D / 16; ++nj)
        expect_fragments(
            D, [&](int lane) { return v_ldmatrix_offset(D, kk, nj, lane); }, true,
            [&](int lane, int j, int h) {
              const Coord b = mma::mma16_b(lane, 2 * (j % 2) + h);
              return Coord{16 * kk + b.row, 16 * nj + 8 * (j / 2) + b.col};
            },
            "v");
  }
}

// p's A fragment of key step kk, element i, is the score accumulator of the same lane that
// holds the same (row, key).
TEST(CudaAttentionTcPlan, ScoreAccumulatorsAreTheAFragmentsOfP) {
  for (int lane = 0; lane < 32; ++lane)
    for (int kk = 0; kk < kKeySteps; ++kk)
      for (int i = 0; i < 8; ++i) {
        const Coord a = mma::mma16_a(lane, i);
        const AccSlot src = p_source(kk, i);
        ASSERT_TRUE(src.ni >= 0 && src.ni < kScoreTiles && src.i >= 0 && src.i < 4);
        const Coord c = acc_coord(0, src.ni, lane, src.i);
        EXPECT_EQ(c.row, a.row) << lane << " " << kk << " " << i;
        EXPECT_EQ(c.col, 16 * kk + a.col) << lane << " " << kk << " " << i;
      }
  // p_register packs them low half first
  float s[kScoreTiles][4];
  for (int ni = 0; ni < kScoreTiles; ++ni)
    for (int i = 0; i < 4; ++i) s[ni][i] = 1.0f / float(1 + 4 * ni + i);
  for (int kk = 0; kk < kKeySteps; ++kk)
    for (int j = 0; j < 4; ++j) {
      const AccSlot lo = p_source(kk, 2 * j), hi = p_source(kk, 2 * j + 1);
      const float x = s[lo.ni][lo.i], y = s[hi.ni][hi.i];
      EXPECT_EQ(p_register<kBf16>(s, kk, j),
                uint32_t(float_to_bf16_bits(x)) | uint32_t(float_to_bf16_bits(y)) << 16);
      EXPECT_EQ(p_register<kF16>(s, kk, j),
                uint32_t(float_to_f16_bits(x)) | uint32_t(float_to_f16_bits(y)) << 16);
    }
  // A lane's two rows: slots 0, 1 are row g, slots 2, 3 row g + 8.
  for (int lane = 0; lane < 32; ++lane)
    for (int ni = 0; ni < kScoreTiles; ++ni)
      for (int i = 0; i < 4; ++i)
        EXPECT_EQ(acc_coord(1, ni, lane, i).row, 16 + lane / 4 + 8 * (i / 2));
}

TEST(CudaAttentionTcPlan, ItemsCoverEachQueryTileOnceLongestFirst) {
  for (int64_t slabs : {1, 3})
    for (int64_t tiles : {1, 4}) {
      Grid g{slabs, tiles};
      std::set<std::pair<int64_t, int64_t>> seen;
      for (int64_t item = 0; item < g.items(); ++item) {
        const Item it = decode_query_tile(item, tiles);
        ASSERT_TRUE(it.slab >= 0 && it.slab < slabs && it.tile >= 0 && it.tile < tiles);
        seen.insert({it.slab, it.tile});
        if (item % tiles > 0) EXPECT_EQ(decode_query_tile(item - 1, tiles).tile, it.tile + 1);
      }
      EXPECT_EQ(static_cast<int64_t>(seen.size()), g.items());
    }
  AttentionDims d;
  d.batch = 3, d.L = 130;
  EXPECT_EQ(query_tile_grid(d).items(), 9);
  d.L = 0;
  EXPECT_EQ(query_tile_grid(d).items(), 0);  // launch nothing
}

// The items, their key tiles and the lanes' accumulators visit every score the softmax sees
// (causal: j <= i) exactly once, and the epilogue writes every output element and every lse
// once.
TEST(CudaAttentionTcPlan, TilesCoverVisibleScoresAndOutputsOnce) {
  for (bool causal : {false, true})
    for (int64_t L : {1, 16, 63, 64, 65, 130})
      for (int64_t S : {1, 63, 64, 65, 130})
        for (int64_t Ev : {1, 16, 72}) {
          AttentionDims d;
          d.batch = 1, d.L = L, d.S = S, d.Ev = Ev, d.causal = causal;
          const Grid grid = query_tile_grid(d);
          const int NO = head_dim(1, Ev) / 8;
          std::vector<int> score_hits(L * S, 0), out_hits(L * Ev, 0), lse_hits(L, 0);
          for (int64_t item = 0; item < grid.items(); ++item) {
            const Item it = decode_query_tile(item, grid.tiles);
            const int64_t i0 = it.tile * kBlockQ, kend = key_end(d, i0);
            const int nq = static_cast<int>(min64(kBlockQ, L - i0));
            for (int64_t j0 = 0; j0 < kend; j0 += kBlockK) {
              const int nk = static_cast<int>(min64(kBlockK, kend - j0));
              for (int warp = 0; warp < kWarps; ++warp)
                for (int lane = 0; lane < 32; ++lane)
                  for (int ni = 0; ni < kScoreTiles; ++ni)
                    for (int i = 0; i < 4; ++i) {
                      const Coord c = acc_coord(warp, ni, lane, i);
                      if (c.row < nq && c.col < nk) ++score_hits[(i0 + c.row) * S + j0 + c.col];
                    }
            }
            for (int warp = 0; warp < kWarps; ++warp)
              for (int lane = 0; lane < 32; ++lane)
                for (int h = 0; h < 2; ++h) {
                  const int r = acc_coord(warp, 0, lane, 2 * h).row;
                  if (r >= nq) continue;
                  for (int ni = 0; ni < NO; ++ni)
                    for (int e = 0; e < 2; ++e) {
                      const int c = acc_coord(warp, ni, lane, 2 * h + e).col;
                      if (c < Ev) ++out_hits[(i0 + r) * Ev + c];
                    }
                  if (lane % 4 == 0) ++lse_hits[i0 + r];
                }
          }
          for (int64_t i = 0; i < L; ++i)
            for (int64_t j = 0; j < S; ++j) {
              const int h = score_hits[i * S + j];
              if (!causal || j <= i) ASSERT_EQ(h, 1) << L << " " << S << " " << i << " " << j;
              else ASSERT_LE(h, 1);
            }
          for (int h : out_hits) ASSERT_EQ(h, 1) << L << " " << Ev;
          for (int h : lse_hits) ASSERT_EQ(h, 1) << L;
        }
}

// lane_dropout keeps exactly what the float kernels and the cpu keep (attention_plan.h's
// dropout_keep, itself checked against the cpu's sdpa_dropout_mask bit for bit).
TEST(CudaAttentionTcPlan, DropoutWordsAreTheFloatKernels) {
  AttentionGeom g;
  g.batch = 2, g.kv_batch = 1, g.L = 70, g.S = 200, g.E = 16, g.Ev = 16;
  for (double p : {0.1, 0.5, 0.9, 1.0}) {
    g.dropout_p = p, g.seed = 0x9e3779b97f4a7c15ULL, g.offset = 77;
    const AttentionDims d = attention_dims(g);
    for (int64_t row : {int64_t(0), int64_t(69), int64_t(139)})
      for (int64_t j0 : {0, 64, 128, 192})
        for (int lane = 0; lane < 32; ++lane)
          for (int h = 0; h < 2; ++h) {
            float s[kScoreTiles][4];
            for (auto& t : s)
              for (float& x : t) x = 1.0f;
            lane_dropout(d, s, h, row, j0, lane);
            for (int ni = 0; ni < kScoreTiles; ++ni) {
              for (int e = 0; e < 2; ++e) {
                const int64_t key = j0 + acc_coord(0, ni, lane, 2 * h + e).col;
                if (key < g.S) ASSERT_EQ(s[ni][2 * h + e] == 1.0f, dropout_keep(d, row, key));
              }
              ASSERT_EQ(s[ni][2 - 2 * h], 1.0f) << "the other row is untouched";
            }
          }
  }
}

}  // namespace
}  // namespace dc::cuda_kernels::flash_tc
