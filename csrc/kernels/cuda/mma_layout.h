#pragma once
// Note [Tensor-core GEMM layouts]
// The bookkeeping of the tensor-core GEMM (kernels/cuda/gemm_tc.cu), in plain C++ that nvcc and
// the cpu compilers both compile: which element of A, B and C each lane's registers hold in the
// mma.sync shapes the kernel issues, where each element of a tile sits in shared memory, which
// 16-byte chunk of a tile each thread copies, which lanes give ldmatrix which row, which sub-tile
// each warp computes. The kernel calls these functions; tests/cpp/test_cuda_mma.cpp calls the
// same ones to emulate the kernel on the host -- every warp, lane and k-step, with the mma and
// ldmatrix as the PTX ISA defines them -- against a naive GEMM, since no GPU checks it here.
//
// Block: C[128 x 128] per block of 256 threads (8 warps, 2 along M x 4 along N, each warp a
// 64 x 32 sub-tile: 4 x 4 mma tiles of 16 x 8, 64 float accumulators per lane). The K loop
// stages 64 bytes of K per row (32 bf16/fp16 values, 16 fp32 ones) of A and B in shared memory,
// two stages, filled by cp.async while the other is multiplied.
//
// Tiles. An operand's tile is `rows` (M for A, N for B) x BK (K). It is stored one of two ways:
//   K-major    tile[row][k], row stride BK + 16 bytes: for an operand contiguous along K;
//   row-major  tile[k][row], row stride 136 elements: for one contiguous along M (A) or N (B).
// Each is filled by 16-byte copies of what is contiguous in global memory. The padding is what
// keeps the fragment reads free of bank conflicts: 8 ldmatrix rows 80 bytes apart (K-major) or
// 272 bytes apart (row-major, 16-bit) fall in 8 different 16-byte bank groups, and the TF32
// scalar reads (g * 20 + t, or t * 136 + g, for lane = 4 g + t) in 32 different banks.
//
// mma shapes (PTX ISA, "Matrix Fragments for mma.m16n8k16" and "... mma.m16n8k8"), with
// g = lane / 4 and t = lane % 4:
//   m16n8k16 bf16/fp16  A 16x16: a[i] (i < 8, two per 32-bit register, low half first) at
//                       row g + 8 * ((i / 2) % 2), col 2 t + i % 2 + 8 * (i / 4);
//                       B 16x8: b[i] (i < 4) at k 2 t + i % 2 + 8 * (i / 2), n g;
//   m16n8k8 tf32        A 16x8: a[i] (i < 4) at row g + 8 * (i % 2), col t + 4 * (i / 2);
//                       B 8x8: b[i] (i < 2) at k t + 4 i, n g;
//   C/D 16x8 f32 (both) c[i] (i < 4) at row g + 8 * (i / 2), col 2 t + i % 2.
// The 16-bit fragments come from ldmatrix.x4 (m8n8, .trans for row-major tiles): lanes 8j..8j+7
// give the addresses of the 8 rows of matrix j (16 bytes each), and lane l receives in register
// j the elements (l / 4, 2 (l % 4)) and (l / 4, 2 (l % 4) + 1) of matrix j -- of its transpose
// with .trans. ldmatrix_x4_coord picks the rows so that registers 0..3 are A's a0a1, a2a3, a4a5,
// a6a7, and for B the two registers of n-tile 2 j and then the two of n-tile 2 j + 1.
//
// The 16-bit conversions are core/half.h's, which both compilers build.
#include <cstdint>
#include <cstring>

#include "core/half.h"

#include "kernels/host_device.h"

namespace dc::cuda_kernels::mma {

// ---- block shape --------------------------------------------------------------------------------

constexpr int kThreads = 256;                   // 8 warps
constexpr int kBlockM = 128, kBlockN = 128;     // C tile of a block
constexpr int kWarpsN = 4;                      // warps along N (2 along M)
constexpr int kWarpM = 64, kWarpN = 32;         // C sub-tile of a warp
constexpr int kMmaM = 16;                       // rows of one mma tile
constexpr int kMmaN = 8;                        // columns of one mma tile
constexpr int kMTiles = kWarpM / kMmaM;         // 4 mma tiles along M per warp
constexpr int kNTiles = kWarpN / kMmaN;         // 4 along N
constexpr int kKBytes = 64;                     // bytes of K per tile row and stage
constexpr int kRowMajorLd = kBlockM + 8;        // row-major tile stride, in elements
constexpr int kStageBytes = 10240;              // one operand's tile of one stage (see below)
constexpr int kStages = 2;
constexpr int kChunks = kBlockM * kKBytes / 16; // 16-byte chunks per tile: 512
constexpr int kChunksPerThread = kChunks / kThreads;

static_assert(kBlockM == kBlockN, "A and B tiles share one addressing");
static_assert((kBlockM / kWarpM) * kWarpsN * 32 == kThreads && kWarpsN * kWarpN == kBlockN,
              "the warps tile the block");

enum TileMajor : int {
  kMajorK = 0,    // tile[row][k]
  kMajorRow = 1,  // tile[k][row]
};

// K per stage: 32 bf16/fp16 values, 16 fp32 ones.
DC_HD constexpr int block_k(int elem_bytes) { return kKBytes / elem_bytes; }
// Elements per 16-byte chunk.
DC_HD constexpr int chunk_elems(int elem_bytes) { return 16 / elem_bytes; }
// Row stride of a tile, in elements.
DC_HD constexpr int tile_ld(int major, int elem_bytes) {
  return major == kMajorK ? block_k(elem_bytes) + chunk_elems(elem_bytes) : kRowMajorLd;
}
// Element offset of (row, k) of a tile.
DC_HD constexpr int tile_offset(int major, int elem_bytes, int row, int k) {
  return major == kMajorK ? row * tile_ld(kMajorK, elem_bytes) + k
                          : k * kRowMajorLd + row;
}
// Elements a tile spans (its last element's offset + 1, rounded up to whole rows).
DC_HD constexpr int tile_span(int major, int elem_bytes) {
  return major == kMajorK ? kBlockM * tile_ld(kMajorK, elem_bytes)
                          : block_k(elem_bytes) * kRowMajorLd;
}
static_assert(tile_span(kMajorK, 2) * 2 <= kStageBytes &&
                  tile_span(kMajorRow, 2) * 2 <= kStageBytes &&
                  tile_span(kMajorK, 4) * 4 <= kStageBytes &&
                  tile_span(kMajorRow, 4) * 4 <= kStageBytes,
              "a stage holds either tile layout of either element size");
static_assert((tile_ld(kMajorK, 2) * 2) % 16 == 0 && (tile_ld(kMajorK, 4) * 4) % 16 == 0 &&
                  (kRowMajorLd * 2) % 16 == 0 && kStageBytes % 16 == 0,
              "tile rows and stages start on 16 bytes (cp.async and ldmatrix need it)");

struct TileCoord {
  int row, k;
};

// The tile element that starts 16-byte chunk `chunk` (< kChunks) of a tile: K-major chunks run
// along K (4 per row), row-major ones along the row (16 or 32 per k). Thread t copies chunks
// t + i * kThreads, so that neighbouring threads read neighbouring global memory.
DC_HD constexpr TileCoord chunk_coord(int major, int elem_bytes, int chunk) {
  const int v = chunk_elems(elem_bytes);
  if (major == kMajorK) {
    const int per_row = block_k(elem_bytes) / v;
    return {chunk / per_row, (chunk % per_row) * v};
  }
  const int per_k = kBlockM / v;
  return {(chunk % per_k) * v, chunk / per_k};
}

// How many of a chunk's elements exist in the operand (rows x K), the chunk starting at global
// (row, k); the rest are zero-filled (cp.async's src-size, or zeros stored by the plain loads).
DC_HD constexpr int chunk_valid(int major, int elem_bytes, int64_t row, int64_t k, int64_t rows,
                                int64_t K) {
  const int64_t v = chunk_elems(elem_bytes);
  if (row >= rows || k >= K) return 0;
  const int64_t left = major == kMajorK ? K - k : rows - row;
  return static_cast<int>(left < v ? left : v);
}

// ---- warps and fragments ------------------------------------------------------------------------

struct Coord {
  int row, col;
};

// The C sub-tile of warp w (row along M, col along N, within the block).
DC_HD constexpr Coord warp_origin(int warp) {
  return {(warp / kWarpsN) * kWarpM, (warp % kWarpsN) * kWarpN};
}

// m16n8k16 bf16/fp16: element i (< 8) of A's fragment, (row, k) of the 16 x 16 tile.
DC_HD constexpr Coord mma16_a(int lane, int i) {
  return {lane / 4 + 8 * ((i / 2) % 2), 2 * (lane % 4) + i % 2 + 8 * (i / 4)};
}
// m16n8k16: element i (< 4) of B's fragment, (k, n) of the 16 x 8 tile.
DC_HD constexpr Coord mma16_b(int lane, int i) {
  return {2 * (lane % 4) + i % 2 + 8 * (i / 2), lane / 4};
}
// m16n8k8 tf32: element i (< 4) of A's fragment, (row, k) of the 16 x 8 tile.
DC_HD constexpr Coord mma8_a(int lane, int i) {
  return {lane / 4 + 8 * (i % 2), lane % 4 + 4 * (i / 2)};
}
// m16n8k8 tf32: element i (< 2) of B's fragment, (k, n) of the 8 x 8 tile.
DC_HD constexpr Coord mma8_b(int lane, int i) { return {lane % 4 + 4 * i, lane / 4}; }
// Both shapes: element i (< 4) of the accumulator, (row, col) of the 16 x 8 tile.
DC_HD constexpr Coord mma_c(int lane, int i) {
  return {lane / 4 + 8 * (i / 2), 2 * (lane % 4) + i % 2};
}

// ldmatrix.x4 over a 16 (rows) x 16 (k) block of a 16-bit tile: the tile element whose address
// lane gives (the first of the 8 contiguous elements of a matrix row). For A, matrix j covers
// rows 8 (j % 2) and k 8 (j / 2), giving a0a1, a2a3, a4a5, a6a7; for B, rows (n) 8 (j / 2) and
// k 8 (j % 2), giving b0b1 and b2b3 of the first n-tile, then of the second. K-major tiles are
// read as stored (matrix rows along the tile rows), row-major ones with .trans (matrix rows
// along k).
DC_HD constexpr TileCoord ldmatrix_x4_coord(bool b_operand, int major, int lane) {
  const int j = lane / 8, r = lane % 8;
  const int row_half = b_operand ? j / 2 : j % 2;
  const int k_half = b_operand ? j % 2 : j / 2;
  return major == kMajorK ? TileCoord{8 * row_half + r, 8 * k_half}
                          : TileCoord{8 * row_half, 8 * k_half + r};
}

// 16-bit operands, k-step ks (16 wide) of a stage: the element offset lane gives ldmatrix for
// A's mma tile mi of warp w, and for B's pair of n-tiles 2 nj, 2 nj + 1.
DC_HD constexpr int a_ldmatrix_offset(int major, int warp, int mi, int ks, int lane) {
  const TileCoord c = ldmatrix_x4_coord(false, major, lane);
  return tile_offset(major, 2, warp_origin(warp).row + mi * kMmaM + c.row, ks * 16 + c.k);
}
DC_HD constexpr int b_ldmatrix_offset(int major, int warp, int nj, int ks, int lane) {
  const TileCoord c = ldmatrix_x4_coord(true, major, lane);
  return tile_offset(major, 2, warp_origin(warp).col + nj * 2 * kMmaN + c.row, ks * 16 + c.k);
}
// fp32 operands (TF32), k-step ks (8 wide): the element offset of A's a[i] of mma tile mi, and
// of B's b[i] of n-tile ni, read one at a time.
DC_HD constexpr int a_tf32_offset(int major, int warp, int mi, int ks, int lane, int i) {
  const Coord c = mma8_a(lane, i);
  return tile_offset(major, 4, warp_origin(warp).row + mi * kMmaM + c.row, ks * 8 + c.col);
}
DC_HD constexpr int b_tf32_offset(int major, int warp, int ni, int ks, int lane, int i) {
  const Coord c = mma8_b(lane, i);
  return tile_offset(major, 4, warp_origin(warp).col + ni * kMmaN + c.col, ks * 8 + c.row);
}
// The C element of accumulator c[i] of mma tile (mi, ni) of warp w, within the block.
DC_HD constexpr Coord c_position(int warp, int mi, int ni, int lane, int i) {
  const Coord o = warp_origin(warp), c = mma_c(lane, i);
  return {o.row + mi * kMmaM + c.row, o.col + ni * kMmaN + c.col};
}

// ---- the epilogue -------------------------------------------------------------------------------

// C = act(alpha * acc + beta * C + bias), in float as the cpu's 16-bit GEMMs compute it
// (gemm_bf16_store; the float16 GEMM runs the float32 one on widened copies). beta == 0 never
// reads C (the caller passes 0); no bias adds nothing (so -0 stays -0); relu keeps NaN, as
// torch.relu.
DC_HD inline float epilogue_value(float acc, float alpha, float beta, float c_old, bool has_bias,
                                  float bias, bool relu) {
  float v = alpha * acc;
  if (beta != 0.0f) v += beta * c_old;
  if (has_bias) v += bias;
  return relu && v < 0.0f ? 0.0f : v;
}

// ---- planning (host) ----------------------------------------------------------------------------

// How the kernel fills an operand's tiles. rows: M (A) or N (B); strides in elements along the
// rows, along K and between batches; addr: the first element's address. The tile runs along the
// operand's unit stride (row-major tiles only when the rows are contiguous and K is not); the
// 16-byte cp.async copies need the chunks aligned: the address, and every stride a copy can be
// offset by, multiples of 16 bytes. Other operands (strided, or unaligned like a K of 130) are
// read one element at a time into the same tiles.
struct OperandPlan {
  int major = kMajorK;
  bool vector = false;
};
inline OperandPlan plan_operand(int elem_bytes, int64_t rows, int64_t K, int64_t batch,
                                int64_t row_stride, int64_t k_stride, int64_t batch_stride,
                                uintptr_t addr) {
  OperandPlan p;
  p.major = (row_stride == 1 && k_stride != 1 && rows > 1) ? kMajorRow : kMajorK;
  const int64_t unit = p.major == kMajorK ? k_stride : row_stride;
  const int64_t other = p.major == kMajorK ? row_stride : k_stride;
  const int64_t other_extent = p.major == kMajorK ? rows : K;
  const auto aligned = [elem_bytes](int64_t stride) { return (stride * elem_bytes) % 16 == 0; };
  p.vector = (unit == 1 || (p.major == kMajorK && K == 1)) && addr % 16 == 0 &&
             (other_extent <= 1 || aligned(other)) && (batch <= 1 || aligned(batch_stride));
  return p;
}

// The grid: blocks along M in grid.x (up to 2^31 - 1), along N in grid.y (up to 65535), batches
// in grid.z, at most 65535 per launch (the launches cover the batch one after another). A C
// shared by every batch (batch stride 0, updated in batch order as the cpu does) gets one batch
// per launch, so that stream order serialises the updates.
struct GridPlan {
  int64_t m_blocks = 0, n_blocks = 0, batch_per_launch = 0;
};
inline GridPlan plan_grid(int64_t M, int64_t N, int64_t batch, int64_t c_batch_stride) {
  GridPlan g;
  if (M <= 0 || N <= 0 || batch <= 0) return g;  // nothing to launch
  g.m_blocks = (M + kBlockM - 1) / kBlockM;
  g.n_blocks = (N + kBlockN - 1) / kBlockN;
  g.batch_per_launch = (c_batch_stride == 0 && batch > 1) ? 1 : (batch < 65535 ? batch : 65535);
  return g;
}

// ---- 16-bit floats and TF32 ---------------------------------------------------------------------

DC_HD inline uint32_t float_bits(float f) { return half_detail::bits(f); }
DC_HD inline float bits_float(uint32_t u) { return half_detail::from_bits(u); }

// What cvt.rna.tf32.f32 makes of a float: 10 mantissa bits, rounded to nearest with ties away
// from zero, the low 13 bits zero; NaN and infinity pass through. The kernel issues the
// instruction; the host emulation of the kernel calls this.
DC_HD inline float tf32_round(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7f800000u) == 0x7f800000u) return f;
  return bits_float((u + 0x1000u) & 0xffffe000u);
}

}  // namespace dc::cuda_kernels::mma
