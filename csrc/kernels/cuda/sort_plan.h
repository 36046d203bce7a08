#pragma once
// Note [CUDA sorting]
// argsort_rows and select_rows (topk) of kernels/cpu/sort.h on the device, over x[rows, n]
// contiguous. Each value becomes an unsigned key whose integer order is the sort's (sort_key,
// the cpu's radix keys of Note [Sorting by radix] widened to 64 bits): NaN is the largest key,
// -0 and +0 are one key, and a descending sort complements the key. Pairs (key, index) are all
// distinct, so ordering them by key, then index, is a total order, and any correct sort of the
// pairs gives the stable order the cpu gives -- a bitonic network too, which on keys alone
// would not be stable. topk(k) keeps the first k of that order: the cpu's selection ranks the
// same pairs (Note [topk by selection] in kernels/cpu/sort.cpp), largest as descending.
//
// The bitonic network: each row is padded to P, a power of two, with sentinel pairs (the
// largest key, indices n, n + 1, ...: after every real pair, NaN included, so the row's pairs
// take its first n places). Stage `size` = 2, 4, ..., P; within it, step `stride` = size / 2,
// ..., 1 compares element lo (with bit `stride` of its position clear) with lo + stride,
// ascending where bit `size` of lo's position in its row is clear (always at the last stage,
// size == P). Steps run in tiles of up to kSortTile elements in shared memory: a block loads a
// tile, runs every step whose pairs stay inside it, and writes it back. Rows no longer than a
// tile share tiles (P divides the tile), so they sort in one launch, which reads x and writes
// the indices. A longer row takes a tile launch for the stages up to the tile, then per larger
// stage one launch per stride >= the tile (global memory, a thread per pair) and one tile
// launch for its strides below the tile, on a scratch copy of the pairs.
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cuda/half_storage.h"
#include "kernels/host_device.h"

namespace dc::cuda_kernels {

// Shared-memory tile: 2048 pairs of 16 bytes = 32 KiB, under the 48 KiB of a static array.
constexpr int64_t kSortTile = 2048;
constexpr int kSortThreads = 512;  // threads of a tile block: two pairs each per step

struct SortPair {
  uint64_t key;
  int64_t index;
};

// ---- keys ------------------------------------------------------------------------------------


DC_HD inline uint64_t sort_key(bool v) { return v ? 1u : 0u; }
DC_HD inline uint64_t sort_key(int32_t v) { return static_cast<uint32_t>(v) ^ 0x80000000u; }
DC_HD inline uint64_t sort_key(int64_t v) {
  return static_cast<uint64_t>(v) ^ (uint64_t(1) << 63);
}
// A float's bits with the sign flipped (every bit for a negative): integer order is value
// order. Every NaN maps to the largest key; -0 to +0's (the compare, not the bits, decides).
DC_HD inline uint64_t sort_key(float v) {
  if (v != v) return 0xffffffffu;
  if (v == 0.0f) return 0x80000000u;
  uint32_t u;
  std::memcpy(&u, &v, sizeof(u));
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
DC_HD inline uint64_t sort_key(double v) {
  constexpr uint64_t sign = uint64_t(1) << 63;
  if (v != v) return ~uint64_t(0);
  if (v == 0.0) return sign;
  uint64_t u;
  std::memcpy(&u, &v, sizeof(u));
  return (u & sign) ? ~u : (u | sign);
}
// The 16-bit floats (half_storage.h's tags) are sign and magnitude like float32: the same map on
// their bits; kInfBits is +inf's.
template <uint16_t kInfBits>
DC_HD inline uint64_t half_sort_key(uint16_t bits) {
  const uint32_t mag = bits & 0x7fffu;
  if (mag > kInfBits) return 0xffffu;  // NaN
  if (mag == 0) return 0x8000u;
  return (bits & 0x8000u) ? (~uint32_t(bits) & 0xffffu) : (bits | 0x8000u);
}
DC_HD inline uint64_t sort_key(F16Bits v) { return half_sort_key<0x7c00>(v.bits); }
DC_HD inline uint64_t sort_key(Bf16Bits v) { return half_sort_key<0x7f80>(v.bits); }

// Whether pair a sorts before b: the smaller key, then the smaller index.
DC_HD inline bool pair_before(const SortPair& a, const SortPair& b) {
  return a.key < b.key || (a.key == b.key && a.index < b.index);
}
// a, b := the two in ascending (or descending) order. The pairs are distinct.
DC_HD inline void compare_exchange(SortPair& a, SortPair& b, bool ascending) {
  if (pair_before(b, a) == ascending) {
    const SortPair t = a;
    a = b;
    b = t;
  }
}

// ---- geometry --------------------------------------------------------------------------------

struct SortGeom {
  int64_t rows = 0, n = 0, k = 0;  // rows of n values; the first k of each sorted row are kept
  int64_t padded = 0;              // P: n rounded up to a power of two
  int64_t tile = 0;                // elements of a shared-memory tile (a power of two)
  int64_t span = 0;                // min(P, tile): the aligned block a tile's steps stay within
  DC_HD int64_t total() const { return rows * padded; }
  DC_HD int64_t tiles() const { return (total() + tile - 1) / tile; }
};

// `tile` is kSortTile in the kernels; the tests take smaller ones to reach the global steps.
inline SortGeom sort_geom(int64_t rows, int64_t n, int64_t k, int64_t tile = kSortTile) {
  SortGeom g;
  g.rows = rows, g.n = n, g.k = k, g.tile = tile;
  g.padded = 1;
  while (g.padded < n) g.padded *= 2;
  g.span = g.padded < tile ? g.padded : tile;
  return g;
}

// The pair of element i of the padded rows (row i / P, place i % P) of x[rows, n].
template <typename T>
DC_HD inline SortPair load_pair(const T* x, const SortGeom& g, int64_t i, bool descending) {
  const int64_t r = i / g.padded, j = i % g.padded;
  if (j >= g.n) return {~uint64_t(0), j};
  const uint64_t key = sort_key(x[r * g.n + j]);
  return {descending ? ~key : key, j};
}

// Pair q of a step of `stride` over an array: its lower element (the q-th position with bit
// `stride` clear). Strides are powers of two.
DC_HD inline int64_t bitonic_lo(int64_t q, int64_t stride) {
  return ((q & ~(stride - 1)) << 1) | (q & (stride - 1));
}
// Step (size, stride), pair q, on elements a[0..] that start at position `base` of the padded
// rows (a tile, or the whole array with base 0): a compare-exchange, ascending where bit `size`
// of lo's place in its row is clear.
DC_HD inline void bitonic_step(SortPair* a, int64_t base, int64_t q, int64_t size, int64_t stride,
                               int64_t padded) {
  const int64_t lo = bitonic_lo(q, stride);
  const bool ascending = (((base + lo) & (padded - 1)) & size) == 0;
  compare_exchange(a[lo], a[lo + stride], ascending);
}

// One launch of the network: a tile launch runs stages first_size..last_size (doubling), each
// with strides min(size, span) / 2 down to 1; a global launch runs the one step
// (first_size, stride).
struct BitonicLaunch {
  bool in_tiles;
  int64_t first_size, last_size, stride;
};

// The launches that sort the padded rows; the first reads x, the last (a tile launch) writes
// the indices. Always at least one (rows of one element need their index written).
inline std::vector<BitonicLaunch> bitonic_launches(const SortGeom& g) {
  std::vector<BitonicLaunch> out;
  out.push_back({true, 2, g.span, 0});
  for (int64_t size = 2 * g.span; size <= g.padded; size *= 2) {
    for (int64_t stride = size / 2; stride >= g.span; stride /= 2)
      out.push_back({false, size, size, stride});
    out.push_back({true, size, size, 0});
  }
  return out;
}

}  // namespace dc::cuda_kernels
