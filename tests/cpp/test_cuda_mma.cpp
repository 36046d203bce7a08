// The tensor-core GEMM (kernels/cuda/gemm_tc.cu) without a GPU: its layouts (Note [Tensor-core
// GEMM layouts] in kernels/cuda/mma_layout.h) are bijections onto their tiles and read shared
// memory without bank conflicts; the kernel, emulated on the host -- every thread's cp.async or
// element loads into the two stages, every warp's ldmatrix and mma.sync as the PTX ISA defines
// them, the epilogue -- through the same layout functions, equals a naive GEMM at awkward sizes
// and strides; and its 16-bit conversions give core/half.h's bits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "core/half.h"
#include "kernels/cuda/mma_layout.h"
#include "ptx_emulation.h"

namespace dc::cuda_kernels::mma {
namespace {

// ---- layouts ------------------------------------------------------------------------------------

// Calls f(lane, i) for every register element of a fragment and checks that the coordinates it
// returns cover a rows x cols tile exactly once.
template <typename F>
void expect_covers_once(int rows, int cols, int per_lane, F f, const char* what) {
  std::vector<int> hits(rows * cols, 0);
  for (int lane = 0; lane < 32; ++lane)
    for (int i = 0; i < per_lane; ++i) {
      const Coord c = f(lane, i);
      ASSERT_TRUE(c.row >= 0 && c.row < rows && c.col >= 0 && c.col < cols)
          << what << " lane " << lane << " element " << i;
      ++hits[c.row * cols + c.col];
    }
  for (int e = 0; e < rows * cols; ++e) EXPECT_EQ(hits[e], 1) << what << " element " << e;
}

TEST(CudaMma, FragmentLayoutsCoverTheirTilesOnce) {
  expect_covers_once(16, 16, 8, mma16_a, "m16n8k16 A");
  expect_covers_once(16, 8, 4, mma16_b, "m16n8k16 B");
  expect_covers_once(16, 8, 4, mma8_a, "m16n8k8 A");
  expect_covers_once(8, 8, 2, mma8_b, "m16n8k8 B");
  expect_covers_once(16, 8, 4, mma_c, "C");
  // The PTX ISA's own examples: lane 5 (g = 1, t = 1) holds A(1, 2), A(9, 3), A(1, 10) of
  // m16n8k16, B(k = 2, n = 1) and B(k = 11, n = 1), and C(9, 3).
  EXPECT_EQ(mma16_a(5, 0).row, 1);
  EXPECT_EQ(mma16_a(5, 0).col, 2);
  EXPECT_EQ(mma16_a(5, 3).row, 9);
  EXPECT_EQ(mma16_a(5, 3).col, 3);
  EXPECT_EQ(mma16_a(5, 4).col, 10);
  EXPECT_EQ(mma16_b(5, 0).row, 2);
  EXPECT_EQ(mma16_b(5, 3).row, 11);
  EXPECT_EQ(mma16_b(5, 3).col, 1);
  EXPECT_EQ(mma_c(5, 3).row, 9);
  EXPECT_EQ(mma_c(5, 3).col, 3);
  EXPECT_EQ(mma8_a(5, 1).row, 9);
  EXPECT_EQ(mma8_a(5, 2).col, 5);
  EXPECT_EQ(mma8_b(5, 1).row, 5);
}

TEST(CudaMma, WarpsTileTheBlockOnce) {
  std::vector<int> hits(kBlockM * kBlockN, 0);
  for (int warp = 0; warp < kThreads / 32; ++warp)
    for (int mi = 0; mi < kMTiles; ++mi)
      for (int ni = 0; ni < kNTiles; ++ni)
        for (int lane = 0; lane < 32; ++lane)
          for (int i = 0; i < 4; ++i) {
            const Coord c = c_position(warp, mi, ni, lane, i);
            ASSERT_TRUE(c.row >= 0 && c.row < kBlockM && c.col >= 0 && c.col < kBlockN);
            ++hits[c.row * kBlockN + c.col];
          }
  for (int h : hits) EXPECT_EQ(h, 1);
}

constexpr int kMajors[] = {kMajorK, kMajorRow};
constexpr int kElemBytes[] = {2, 4};

TEST(CudaMma, TileOffsetsAreDistinctAndInsideAStage) {
  for (int major : kMajors)
    for (int eb : kElemBytes) {
      std::set<int> seen;
      for (int row = 0; row < kBlockM; ++row)
        for (int k = 0; k < block_k(eb); ++k) {
          const int o = tile_offset(major, eb, row, k);
          ASSERT_TRUE(o >= 0 && o < tile_span(major, eb) && o * eb < kStageBytes);
          EXPECT_TRUE(seen.insert(o).second) << "major " << major << " bytes " << eb;
        }
    }
}

// Each chunk's elements -- along K in a K-major tile, along the rows in a row-major one -- sit
// at consecutive offsets from a 16-byte boundary, and the chunks cover the tile once.
TEST(CudaMma, ChunksCoverTheTileOnce) {
  for (int major : kMajors)
    for (int eb : kElemBytes) {
      const int v = chunk_elems(eb), bk = block_k(eb);
      std::vector<int> hits(kBlockM * bk, 0);
      for (int chunk = 0; chunk < kChunks; ++chunk) {
        const TileCoord c = chunk_coord(major, eb, chunk);
        const int start = tile_offset(major, eb, c.row, c.k);
        EXPECT_EQ(start * eb % 16, 0);
        for (int e = 0; e < v; ++e) {
          const int row = major == kMajorK ? c.row : c.row + e;
          const int k = major == kMajorK ? c.k + e : c.k;
          ASSERT_TRUE(row < kBlockM && k < bk) << "chunk " << chunk;
          EXPECT_EQ(tile_offset(major, eb, row, k), start + e);
          ++hits[row * bk + k];
        }
      }
      for (int h : hits) EXPECT_EQ(h, 1) << "major " << major << " bytes " << eb;
    }
}

TEST(CudaMma, ChunkValidCountsTheElementsInside) {
  // K-major: along K; row-major: along the rows; nothing past either edge.
  EXPECT_EQ(chunk_valid(kMajorK, 2, 0, 0, 1, 130), 8);
  EXPECT_EQ(chunk_valid(kMajorK, 2, 0, 128, 1, 130), 2);
  EXPECT_EQ(chunk_valid(kMajorK, 2, 1, 0, 1, 130), 0);
  EXPECT_EQ(chunk_valid(kMajorK, 4, 3, 124, 7, 127), 3);
  EXPECT_EQ(chunk_valid(kMajorK, 4, 3, 128, 7, 127), 0);
  EXPECT_EQ(chunk_valid(kMajorRow, 2, 256, 5, 257, 6), 1);
  EXPECT_EQ(chunk_valid(kMajorRow, 2, 256, 6, 257, 6), 0);
  EXPECT_EQ(chunk_valid(kMajorRow, 4, 4, 0, 7, 1), 3);
}

// The 32 lanes' ldmatrix rows (8 contiguous elements each) cover the 16 x 16 block once, from
// 16-byte boundaries; and the 8 rows of each matrix fall in 8 different 16-byte bank groups.
TEST(CudaMma, LdmatrixRowsCoverTheBlockOnceWithoutBankConflicts) {
  for (bool b_operand : {false, true})
    for (int major : kMajors) {
      std::vector<int> hits(16 * 16, 0);
      for (int lane = 0; lane < 32; ++lane) {
        const TileCoord c = ldmatrix_x4_coord(b_operand, major, lane);
        const int start = tile_offset(major, 2, c.row, c.k);
        EXPECT_EQ(start * 2 % 16, 0);
        for (int e = 0; e < 8; ++e) {
          const int row = major == kMajorK ? c.row : c.row + e;
          const int k = major == kMajorK ? c.k + e : c.k;
          ASSERT_TRUE(row < 16 && k < 16);
          EXPECT_EQ(tile_offset(major, 2, row, k), start + e);
          ++hits[row * 16 + k];
        }
      }
      for (int h : hits) EXPECT_EQ(h, 1) << "b " << b_operand << " major " << major;
      for (int warp = 0; warp < 8; ++warp)
        for (int j = 0; j < 4; ++j) {
          std::set<int> groups;
          for (int r = 0; r < 8; ++r) {
            const int lane = 8 * j + r;
            const int off = b_operand ? b_ldmatrix_offset(major, warp, 1, 1, lane)
                                      : a_ldmatrix_offset(major, warp, 3, 1, lane);
            groups.insert(off * 2 / 16 % 8);
          }
          EXPECT_EQ(groups.size(), 8u) << "b " << b_operand << " major " << major;
        }
    }
}

TEST(CudaMma, Tf32FragmentReadsAreFreeOfBankConflicts) {
  for (int major : kMajors)
    for (int i = 0; i < 4; ++i) {
      std::set<int> a_banks, b_banks;
      for (int lane = 0; lane < 32; ++lane) {
        a_banks.insert(a_tf32_offset(major, 5, 2, 1, lane, i) % 32);
        if (i < 2) b_banks.insert(b_tf32_offset(major, 5, 3, 1, lane, i) % 32);
      }
      EXPECT_EQ(a_banks.size(), 32u) << "major " << major;
      if (i < 2) EXPECT_EQ(b_banks.size(), 32u) << "major " << major;
    }
}

TEST(CudaMma, OperandPlans) {
  // row-major A (M, K) contiguous, 16-byte rows: K-major tiles by cp.async
  OperandPlan p = plan_operand(2, 100, 64, 1, 64, 1, 0, 4096);
  EXPECT_EQ(p.major, kMajorK);
  EXPECT_TRUE(p.vector);
  // K = 130 bf16: rows 260 bytes apart, not 16-byte aligned: element loads
  EXPECT_FALSE(plan_operand(2, 100, 130, 1, 130, 1, 0, 4096).vector);
  // ... unless there is a single row
  EXPECT_TRUE(plan_operand(2, 1, 130, 1, 130, 1, 0, 4096).vector);
  // transposed A (contiguous along M): row-major tiles
  p = plan_operand(4, 96, 33, 1, 1, 96, 0, 4096);
  EXPECT_EQ(p.major, kMajorRow);
  EXPECT_TRUE(p.vector);
  // an unaligned address, an odd batch stride, a stride along both dims
  EXPECT_FALSE(plan_operand(2, 64, 64, 1, 64, 1, 0, 4098).vector);
  EXPECT_FALSE(plan_operand(2, 64, 64, 2, 64, 1, 4100, 4096).vector);
  EXPECT_TRUE(plan_operand(2, 64, 64, 2, 64, 1, 0, 4096).vector);  // a broadcast batch
  p = plan_operand(2, 64, 64, 1, 128, 2, 0, 4096);
  EXPECT_EQ(p.major, kMajorK);
  EXPECT_FALSE(p.vector);
  // K = 1 reads one element per row: K-major copies whatever the K stride
  EXPECT_TRUE(plan_operand(4, 64, 1, 1, 4, 64, 0, 4096).vector);
}

TEST(CudaMma, GridPlans) {
  GridPlan g = plan_grid(257, 130, 3, 257 * 130);
  EXPECT_EQ(g.m_blocks, 3);
  EXPECT_EQ(g.n_blocks, 2);
  EXPECT_EQ(g.batch_per_launch, 3);
  EXPECT_EQ(plan_grid(0, 5, 2, 0).m_blocks, 0);  // nothing to launch
  EXPECT_EQ(plan_grid(5, 5, 0, 0).m_blocks, 0);
  EXPECT_EQ(plan_grid(5, 5, 200000, 25).batch_per_launch, 65535);
  EXPECT_EQ(plan_grid(5, 5, 4, 0).batch_per_launch, 1);  // one C for every batch: in order
}

// ---- conversions --------------------------------------------------------------------------------

TEST(CudaMma, Tf32RoundsToNearestTiesAwayFromZero) {
  const float ulp = std::ldexp(1.0f, -10);  // of 1.0 in TF32
  EXPECT_EQ(tf32_round(1.0f + ulp), 1.0f + ulp);
  EXPECT_EQ(tf32_round(1.0f + ulp * 0.49f), 1.0f);
  EXPECT_EQ(tf32_round(1.0f + ulp * 0.5f), 1.0f + ulp);  // a tie: away from zero
  EXPECT_EQ(tf32_round(-1.0f - ulp * 0.5f), -1.0f - ulp);
  EXPECT_EQ(tf32_round(1.0f + ulp * 1.5f), 1.0f + 2 * ulp);
  EXPECT_EQ(float_bits(tf32_round(3.14159265f)) & 0x1fffu, 0u);
  EXPECT_TRUE(std::isinf(tf32_round(std::numeric_limits<float>::max())));
  EXPECT_TRUE(std::isnan(tf32_round(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isinf(tf32_round(std::numeric_limits<float>::infinity())));
}

// ---- the kernel, emulated -----------------------------------------------------------------------

enum Kind { kBf16, kF16, kTf32 };

template <Kind K>
struct KindTraits {
  using E = uint16_t;
  static float to_float(E x) { return K == kBf16 ? bf16_bits_to_float(x) : f16_bits_to_float(x); }
  static E from_float(float x) { return K == kBf16 ? float_to_bf16_bits(x) : float_to_f16_bits(x); }
  // the cpu's rounding (core/half.h), for the reference
  static E cpu_round(float x) { return K == kBf16 ? float_to_bf16_bits(x) : float_to_f16_bits(x); }
  static E nan() { return K == kBf16 ? 0x7fc0 : 0x7e00; }
};
template <>
struct KindTraits<kTf32> {
  using E = float;
  static float to_float(E x) { return x; }
  static E from_float(float x) { return x; }
  static E cpu_round(float x) { return x; }
  static E nan() { return std::numeric_limits<float>::quiet_NaN(); }
};

// A batch of rows x cols matrices at buf[offset + z * sb + r * sr + c * sc].
template <typename E>
struct HostMatrix {
  std::vector<E> buf;
  int64_t offset = 0, sb = 0, sr = 0, sc = 0;
  E& at(int64_t z, int64_t r, int64_t c) { return buf[offset + z * sb + r * sr + c * sc]; }
  const E* data() const { return buf.data() + offset; }
};

// How a matrix is laid out: contiguous along its columns (ld rounded up to `align` elements),
// along its rows (transposed), strided along both, or shifted one element off 16 bytes.
enum class Layout { rows, cols, strided, misaligned };

template <typename E>
HostMatrix<E> make_matrix(int64_t batch, int64_t rows, int64_t cols, Layout layout,
                          bool broadcast_batch, int align, E fill) {
  HostMatrix<E> m;
  const auto up = [align](int64_t n) { return (n + align - 1) / align * align; };
  int64_t per_batch = 0;
  switch (layout) {
    case Layout::rows: m.sr = up(cols); m.sc = 1; per_batch = rows * m.sr; break;
    case Layout::cols: m.sr = 1; m.sc = up(rows); per_batch = cols * m.sc; break;
    case Layout::strided: m.sr = 2 * cols + 1; m.sc = 2; per_batch = rows * m.sr; break;
    case Layout::misaligned:
      m.sr = up(cols); m.sc = 1; per_batch = rows * m.sr; m.offset = 1; break;
  }
  m.sb = broadcast_batch ? 0 : up(per_batch);
  m.buf.assign(static_cast<size_t>(m.offset + (broadcast_batch ? 1 : batch) * up(per_batch) + 8),
               fill);
  return m;
}

// The operand as the kernel sees it: strides along its rows (M for A, N for B) and along K.
template <typename E>
struct EmuOperand {
  const E* p;
  const E* lo;  // the buffer, for checking that every read stays inside it
  const E* hi;
  int64_t batch, row, k, rows;
  OperandPlan plan;
};

// load_tile of gemm_tc.cu: each thread's chunks, by cp.async (the first `valid` elements read,
// the rest zero) or element by element.
template <typename E>
void emulate_load(E* tile, const EmuOperand<E>& op, const E* base, int64_t row0, int64_t k0,
                  int64_t K) {
  constexpr int kE = sizeof(E), kV = chunk_elems(kE);
  const int major = op.plan.major;
  for (int tid = 0; tid < kThreads; ++tid)
    for (int i = 0; i < kChunksPerThread; ++i) {
      const TileCoord c = chunk_coord(major, kE, tid + i * kThreads);
      const int64_t row = row0 + c.row, k = k0 + c.k;
      const int valid = chunk_valid(major, kE, row, k, op.rows, K);
      E* dst = tile + tile_offset(major, kE, c.row, c.k);
      ASSERT_EQ(reinterpret_cast<uintptr_t>(dst) % 16, 0u);
      if (op.plan.vector) {
        const E* src = valid > 0 ? base + row * op.row + k * op.k : base;
        ASSERT_EQ(reinterpret_cast<uintptr_t>(src) % 16, 0u) << "cp.async source unaligned";
        ASSERT_TRUE(src >= op.lo && src + valid <= op.hi) << "cp.async reads outside";
        for (int e = 0; e < kV; ++e) dst[e] = e < valid ? src[e] : E(0);
      } else {
        for (int e = 0; e < kV; ++e) {
          const int64_t r = major == kMajorK ? row : row + e;
          const int64_t kk = major == kMajorK ? k + e : k;
          if (e < valid) {
            const E* src = base + r * op.row + kk * op.k;
            ASSERT_TRUE(src >= op.lo && src < op.hi) << "element load outside";
            dst[e] = *src;
          } else {
            dst[e] = E(0);
          }
        }
      }
    }
}

// mma.sync m16n8k16 (bf16/fp16 in, f32 accumulate) and m16n8k8 (tf32): D = A B + C with the
// fragments placed by the PTX ISA's layouts. The test data keep every sum exact in float, so
// the hardware's summation order does not matter.
template <Kind K>
void emulate_mma(float (&d)[32][4], const uint32_t (&a)[32][4], const uint32_t (&b)[32][2]) {
  if constexpr (K != kTf32) {
    ptx_emulation::emulate_mma16([&](int lane, int i) -> float& { return d[lane][i]; }, a, b,
                                 [](uint16_t h) { return KindTraits<K>::to_float(h); });
  } else {
    float A[16][8], B[8][8];
    for (int lane = 0; lane < 32; ++lane) {
      for (int i = 0; i < 4; ++i) {
        const Coord c = mma8_a(lane, i);
        A[c.row][c.col] = bits_float(a[lane][i]);
      }
      for (int i = 0; i < 2; ++i) {
        const Coord c = mma8_b(lane, i);
        B[c.row][c.col] = bits_float(b[lane][i]);
      }
    }
    for (int lane = 0; lane < 32; ++lane)
      for (int i = 0; i < 4; ++i) {
        const Coord c = mma_c(lane, i);
        float s = d[lane][i];
        for (int k = 0; k < 8; ++k) s += A[c.row][k] * B[k][c.col];
        d[lane][i] = s;
      }
  }
}

struct Epilogue {
  float alpha = 1, beta = 0;
  bool relu = false, bias = false;
};

// gemm_mma of gemm_tc.cu over the whole grid: C[z] = epilogue(A[z] @ B[z]).
template <Kind Kd>
void emulate_gemm(int64_t batch, int64_t M, int64_t N, int64_t K,
                  const EmuOperand<typename KindTraits<Kd>::E>& a,
                  const EmuOperand<typename KindTraits<Kd>::E>& b,
                  HostMatrix<typename KindTraits<Kd>::E>& c, const typename KindTraits<Kd>::E* bias,
                  const Epilogue& ep) {
  using E = typename KindTraits<Kd>::E;
  using T = KindTraits<Kd>;
  constexpr int kE = sizeof(E), kBK = block_k(kE), kTileElems = kStageBytes / kE;
  const GridPlan g = plan_grid(M, N, batch, c.sb);
  std::vector<E> smem(static_cast<size_t>(kStages) * 2 * kTileElems);
  // float acc[warp][mi][ni][lane][i], the registers of every thread of a block
  std::vector<float> acc_store(8 * kMTiles * kNTiles * 32 * 4);
  auto acc = [&](int w, int mi, int ni) {
    return reinterpret_cast<float(*)[4]>(&acc_store[((w * kMTiles + mi) * kNTiles + ni) * 128]);
  };
  for (int64_t z = 0; z < batch; ++z)
    for (int64_t bx = 0; bx < g.m_blocks; ++bx)
      for (int64_t by = 0; by < g.n_blocks; ++by) {
        // Shared memory starts as NaN: a read of anything no load wrote poisons the result.
        std::fill(smem.begin(), smem.end(), T::nan());
        std::fill(acc_store.begin(), acc_store.end(), 0.0f);
        const int64_t m0 = bx * kBlockM, n0 = by * kBlockN;
        const E* A = a.p + z * a.batch;
        const E* B = b.p + z * b.batch;
        auto tile = [&](int stage, int operand) {
          return smem.data() + (stage * 2 + operand) * kTileElems;
        };
        const int64_t slices = (K + kBK - 1) / kBK;
        if (slices > 0) {
          emulate_load(tile(0, 0), a, A, m0, 0, K);
          emulate_load(tile(0, 1), b, B, n0, 0, K);
        }
        for (int64_t kt = 0; kt < slices; ++kt) {
          if (kt + 1 < slices) {
            const int next = static_cast<int>((kt + 1) & 1);
            emulate_load(tile(next, 0), a, A, m0, (kt + 1) * kBK, K);
            emulate_load(tile(next, 1), b, B, n0, (kt + 1) * kBK, K);
          }
          const E* As = tile(static_cast<int>(kt & 1), 0);
          const E* Bs = tile(static_cast<int>(kt & 1), 1);
          for (int warp = 0; warp < 8; ++warp) {
            if constexpr (Kd == kTf32) {
              for (int ks = 0; ks < kBK / 8; ++ks) {
                uint32_t af[kMTiles][32][4], bf[kNTiles][32][2];
                for (int lane = 0; lane < 32; ++lane) {
                  for (int mi = 0; mi < kMTiles; ++mi)
                    for (int i = 0; i < 4; ++i)
                      af[mi][lane][i] = float_bits(
                          tf32_round(As[a_tf32_offset(a.plan.major, warp, mi, ks, lane, i)]));
                  for (int ni = 0; ni < kNTiles; ++ni)
                    for (int i = 0; i < 2; ++i)
                      bf[ni][lane][i] = float_bits(
                          tf32_round(Bs[b_tf32_offset(b.plan.major, warp, ni, ks, lane, i)]));
                }
                for (int mi = 0; mi < kMTiles; ++mi)
                  for (int ni = 0; ni < kNTiles; ++ni)
                    emulate_mma<Kd>(*reinterpret_cast<float(*)[32][4]>(acc(warp, mi, ni)),
                                    af[mi], bf[ni]);
              }
            } else {
              for (int ks = 0; ks < kBK / 16; ++ks) {
                uint32_t af[kMTiles][32][4], bf[kNTiles][32][2];
                for (int mi = 0; mi < kMTiles; ++mi) {
                  int offsets[32];
                  for (int lane = 0; lane < 32; ++lane)
                    offsets[lane] = a_ldmatrix_offset(a.plan.major, warp, mi, ks, lane);
                  ptx_emulation::emulate_ldmatrix_x4(As, offsets, a.plan.major == kMajorRow, af[mi]);
                }
                for (int nj = 0; nj < kNTiles / 2; ++nj) {
                  int offsets[32];
                  for (int lane = 0; lane < 32; ++lane)
                    offsets[lane] = b_ldmatrix_offset(b.plan.major, warp, nj, ks, lane);
                  uint32_t r[32][4];
                  ptx_emulation::emulate_ldmatrix_x4(Bs, offsets, b.plan.major == kMajorRow, r);
                  for (int lane = 0; lane < 32; ++lane) {
                    bf[2 * nj][lane][0] = r[lane][0];
                    bf[2 * nj][lane][1] = r[lane][1];
                    bf[2 * nj + 1][lane][0] = r[lane][2];
                    bf[2 * nj + 1][lane][1] = r[lane][3];
                  }
                }
                for (int mi = 0; mi < kMTiles; ++mi)
                  for (int ni = 0; ni < kNTiles; ++ni)
                    emulate_mma<Kd>(*reinterpret_cast<float(*)[32][4]>(acc(warp, mi, ni)),
                                    af[mi], bf[ni]);
              }
            }
          }
        }
        for (int warp = 0; warp < 8; ++warp)
          for (int mi = 0; mi < kMTiles; ++mi)
            for (int ni = 0; ni < kNTiles; ++ni)
              for (int lane = 0; lane < 32; ++lane)
                for (int i = 0; i < 4; ++i) {
                  const Coord pos = c_position(warp, mi, ni, lane, i);
                  const int64_t row = m0 + pos.row, col = n0 + pos.col;
                  if (row >= M || col >= N) continue;
                  E& out = c.at(z, row, col);
                  const float old = ep.beta != 0.0f ? T::to_float(out) : 0.0f;
                  const float bv = bias ? T::to_float(bias[col]) : 0.0f;
                  out = T::from_float(epilogue_value(acc(warp, mi, ni)[lane][i], ep.alpha,
                                                     ep.beta, old, bias != nullptr, bv, ep.relu));
                }
      }
}

struct Case {
  int64_t batch, M, N, K;
  Layout a, b, c;
  bool broadcast_b;
  Epilogue ep;
};

// Small integers: every product and sum is exact in float (and in bf16/fp16/tf32 storage), so
// the emulated kernel must give the reference's bits exactly.
template <Kind Kd>
void check_case(const Case& cs, std::mt19937& rng) {
  using E = typename KindTraits<Kd>::E;
  using T = KindTraits<Kd>;
  std::uniform_int_distribution<int> small(-3, 3);
  const int align = 16 / static_cast<int>(sizeof(E));
  auto A = make_matrix<E>(cs.batch, cs.M, cs.K, cs.a, false, align, T::nan());
  auto B = make_matrix<E>(cs.batch, cs.K, cs.N, cs.b, cs.broadcast_b, align, T::nan());
  auto C = make_matrix<E>(cs.batch, cs.M, cs.N, cs.c, false, align, T::nan());
  for (int64_t z = 0; z < cs.batch; ++z) {
    for (int64_t i = 0; i < cs.M; ++i)
      for (int64_t k = 0; k < cs.K; ++k) A.at(z, i, k) = T::from_float(float(small(rng)));
    if (z == 0 || !cs.broadcast_b)
      for (int64_t k = 0; k < cs.K; ++k)
        for (int64_t j = 0; j < cs.N; ++j) B.at(z, k, j) = T::from_float(float(small(rng)));
    // beta == 0 must not read C: it keeps its NaNs then
    if (cs.ep.beta != 0.0f)
      for (int64_t i = 0; i < cs.M; ++i)
        for (int64_t j = 0; j < cs.N; ++j) C.at(z, i, j) = T::from_float(float(small(rng)));
  }
  std::vector<E> bias;
  if (cs.ep.bias)
    for (int64_t j = 0; j < cs.N; ++j) bias.push_back(T::from_float(float(small(rng))));

  // The reference, in double, rounded by the cpu's conversions.
  HostMatrix<E> want = C;
  for (int64_t z = 0; z < cs.batch; ++z)
    for (int64_t i = 0; i < cs.M; ++i)
      for (int64_t j = 0; j < cs.N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < cs.K; ++k)
          s += double(T::to_float(A.at(z, i, k))) * double(T::to_float(B.at(z, k, j)));
        double v = cs.ep.alpha * s;
        if (cs.ep.beta != 0.0f) v += cs.ep.beta * double(T::to_float(C.at(z, i, j)));
        if (cs.ep.bias) v += double(T::to_float(bias[j]));
        if (cs.ep.relu && v < 0) v = 0;
        want.at(z, i, j) = T::cpu_round(static_cast<float>(v));
      }

  const auto emu_operand = [&](const HostMatrix<E>& m, bool is_b, int64_t rows) {
    EmuOperand<E> o;
    o.p = m.data();
    o.lo = m.buf.data();
    o.hi = m.buf.data() + m.buf.size();
    o.batch = m.sb;
    o.row = is_b ? m.sc : m.sr;  // B's rows run along N, its columns
    o.k = is_b ? m.sr : m.sc;
    o.rows = rows;
    o.plan = plan_operand(static_cast<int>(sizeof(E)), rows, cs.K, cs.batch, o.row, o.k, o.batch,
                          reinterpret_cast<uintptr_t>(o.p));
    return o;
  };
  emulate_gemm<Kd>(cs.batch, cs.M, cs.N, cs.K, emu_operand(A, false, cs.M),
                   emu_operand(B, true, cs.N), C, cs.ep.bias ? bias.data() : nullptr, cs.ep);
  for (int64_t z = 0; z < cs.batch; ++z)
    for (int64_t i = 0; i < cs.M; ++i)
      for (int64_t j = 0; j < cs.N; ++j) {
        E got = C.at(z, i, j), exp = want.at(z, i, j);
        ASSERT_EQ(std::memcmp(&got, &exp, sizeof(E)), 0)
            << "batch " << cs.batch << " M " << cs.M << " N " << cs.N << " K " << cs.K
            << " layouts " << int(cs.a) << int(cs.b) << int(cs.c) << " at (" << z << ", " << i
            << ", " << j << "): " << T::to_float(got) << " != " << T::to_float(exp);
      }
  // Nothing outside C's elements was written.
  for (size_t e = 0; e < C.buf.size(); ++e) {
    E got = C.buf[e], exp = want.buf[e];
    ASSERT_EQ(std::memcmp(&got, &exp, sizeof(E)), 0) << "element " << e << " of C's buffer";
  }
}

constexpr int64_t kSizes[][3] = {{1, 1, 1},     {7, 130, 127},  {130, 7, 257}, {127, 257, 130},
                                 {257, 1, 7},   {1, 127, 257},  {130, 130, 1}, {257, 257, 130},
                                 {129, 128, 0}};

template <Kind Kd>
void check_all(uint32_t seed) {
  std::mt19937 rng(seed);
  const Layout layouts[][2] = {{Layout::rows, Layout::rows},   {Layout::rows, Layout::cols},
                               {Layout::cols, Layout::rows},   {Layout::cols, Layout::cols},
                               {Layout::strided, Layout::rows}, {Layout::rows, Layout::strided},
                               {Layout::misaligned, Layout::misaligned}};
  for (const auto& l : layouts)
    for (const auto& s : kSizes) {
      Case cs{1, s[0], s[1], s[2], l[0], l[1], Layout::rows, false, {}};
      check_case<Kd>(cs, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  // The epilogue, batches (a broadcast B; a C laid out by columns), beta reading C.
  const Epilogue eps[] = {{0.5f, 0.25f, true, true}, {2.0f, 0.0f, false, true},
                          {1.0f, -1.0f, true, false}};
  for (const Epilogue& ep : eps) {
    check_case<Kd>({3, 130, 257, 127, Layout::rows, Layout::cols, Layout::cols, true, ep}, rng);
    check_case<Kd>({2, 7, 130, 257, Layout::cols, Layout::rows, Layout::rows, false, ep}, rng);
    check_case<Kd>({2, 127, 9, 0, Layout::rows, Layout::rows, Layout::rows, false, ep}, rng);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(CudaMma, EmulatedBf16KernelEqualsNaiveGemm) { check_all<kBf16>(1); }
TEST(CudaMma, EmulatedF16KernelEqualsNaiveGemm) { check_all<kF16>(2); }
TEST(CudaMma, EmulatedTf32KernelEqualsNaiveGemm) { check_all<kTf32>(3); }

// Values that are not small integers (bf16): the emulated kernel within the output's rounding
// and float32 summation of the double reference.
TEST(CudaMma, EmulatedKernelOnRealValues) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t M = 130, N = 127, K = 257;
  using T = KindTraits<kBf16>;
  auto A = make_matrix<uint16_t>(1, M, K, Layout::rows, false, 8, 0);
  auto B = make_matrix<uint16_t>(1, K, N, Layout::cols, false, 8, 0);
  auto C = make_matrix<uint16_t>(1, M, N, Layout::rows, false, 8, 0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) A.at(0, i, k) = T::from_float(u(rng));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) B.at(0, k, j) = T::from_float(u(rng));
  EmuOperand<uint16_t> a{A.data(), A.buf.data(), A.buf.data() + A.buf.size(), 0, A.sr, 1, M, {}};
  EmuOperand<uint16_t> b{B.data(), B.buf.data(), B.buf.data() + B.buf.size(), 0, B.sc, 1, N, {}};
  a.plan = plan_operand(2, M, K, 1, a.row, a.k, 0, reinterpret_cast<uintptr_t>(a.p));
  b.plan = plan_operand(2, N, K, 1, b.row, b.k, 0, reinterpret_cast<uintptr_t>(b.p));
  emulate_gemm<kBf16>(1, M, N, K, a, b, C, nullptr, {});
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = double(T::to_float(A.at(0, i, k))) * T::to_float(B.at(0, k, j));
        s += p;
        mag += std::fabs(p);
      }
      // bf16 output: half an ulp of bf16 plus float32 summation error
      const double tol = std::fabs(s) * std::ldexp(1.0, -8) + mag * K * std::ldexp(1.0, -24);
      ASSERT_NEAR(T::to_float(C.at(0, i, j)), s, tol) << i << ", " << j;
    }
}

}  // namespace
}  // namespace dc::cuda_kernels::mma
