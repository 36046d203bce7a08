#pragma once
// The host-side plans and the DC_HD steps of the CUDA indexing kernels (kernels/cuda/index.cu)
// and of randperm's shuffle (kernels/cuda/creation.cu): operand offsets, which of two scatter
// strategies runs, the table that finds the last write to each destination, the rounds of the
// parallel Fisher-Yates shuffle, nonzero's chunks. Plain C++ where nvcc does not compile it, like
// launch.h: tests/cpp/test_cuda_index.cpp runs every piece against naive loops on the host
// (the device's atomics replaced by sequential stand-ins, HostAtomics), since no GPU is needed
// to get them right.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/index.h"
#include "kernels/cuda/launch.h"
#include "kernels/host_device.h"
#if defined(__CUDACC__)
#include "kernels/cuda/kernels.h"
#endif

namespace dc::cuda_kernels {

// ---- index_gather / index_scatter: (outer, indexed block, inner) ----------------------------

// The values of index_gather / index_scatter are contiguous (O, B, I); element (o, b, i) of them
// is the element at byte offset outer(o) + offsets[b] * item + inner(i) of the indexed tensor
// (dc::cpu::IndexGeometry). outer and inner are OffsetCalcs over the geometry's outer and inner
// dims (size-1 dims dropped, contiguous runs merged).
struct IndexWalk {
  int64_t B = 0, I = 0;
  OffsetCalc<1> outer, inner;

  // Element r of the values, r = (o * B + b) * I + i: b, and the byte offset without offsets[b].
  DC_HD int64_t at(int64_t r, int64_t& b) const {
    const int64_t i = r % I, ob = r / I;
    b = ob % B;
    int64_t oo[1], io[1];
    outer.get(ob / B, oo);
    inner.get(i, io);
    return oo[0] + io[0];
  }
  // Column c = o * I + i of a scatter that walks b in order: the byte offset without offsets[b],
  // and the index of values element (o, 0, i) (element (o, b, i) is b * I further).
  DC_HD int64_t column(int64_t c, int64_t& values_at) const {
    const int64_t o = c / I, i = c % I;
    values_at = o * B * I + i;
    int64_t oo[1], io[1];
    outer.get(o, oo);
    inner.get(i, io);
    return oo[0] + io[0];
  }
};

inline IndexWalk index_walk(const cpu::IndexGeometry& g, int64_t B, int64_t item,
                            const char* op) {
  DC_CHECK(g.outer_sizes.size() <= static_cast<size_t>(kMaxDims) &&
               g.inner_sizes.size() <= static_cast<size_t>(kMaxDims),
           ValueError, "[", op, "] the cuda kernel takes at most ", kMaxDims,
           " dims before and after the indexed ones, got ", g.outer_sizes.size(), " and ",
           g.inner_sizes.size());
  IndexWalk w;
  w.B = B;
  w.I = numel_of(g.inner_sizes);
  const int64_t itemsize[1] = {item};
  const std::vector<int64_t> outer_strides[1] = {g.outer_strides};
  const std::vector<int64_t> inner_strides[1] = {g.inner_strides};
  w.outer = make_offsets<1>(g.outer_sizes, outer_strides, itemsize);
  w.inner = make_offsets<1>(g.inner_sizes, inner_strides, itemsize);
  return w;
}

// ---- scatter_dim: lines along dim ------------------------------------------------------------

// Positions of the index's shape (row-major, linear e) as (line, j): j the coordinate along dim,
// line the row-major number of the position with that coordinate dropped. Two positions write
// the same destination only if their lines match (and their index values do).
struct DimLines {
  int64_t n = 1;      // index size along dim
  int64_t inner = 1;  // product of the index sizes after dim
  DC_HD void split(int64_t e, int64_t& line, int64_t& j) const {
    const int64_t in = e % inner, rest = e / inner;
    j = rest % n;
    line = rest / n * inner + in;
  }
};
inline DimLines dim_lines(const std::vector<int64_t>& shape, int64_t dim) {
  DimLines d;
  d.n = shape[dim];
  for (size_t k = static_cast<size_t>(dim) + 1; k < shape.size(); ++k) d.inner *= shape[k];
  return d;
}

// The offsets (bytes) of dst, the int64 index and src at each line of a scatter along dim: the
// walk over every dim of the index's shape but dim (lines in DimLines' numbering); j then steps
// each operand by its stride along dim.
inline OffsetCalc<3> scatter_line_offsets(const std::vector<int64_t>& shape,
                                          const std::vector<int64_t>& dst_strides,
                                          const std::vector<int64_t>& idx_strides,
                                          const std::vector<int64_t>& src_strides, int64_t dim,
                                          int64_t item) {
  std::vector<int64_t> sizes, strides[3];
  for (size_t k = 0; k < shape.size(); ++k) {
    if (static_cast<int64_t>(k) == dim) continue;
    sizes.push_back(shape[k]);
    strides[0].push_back(dst_strides[k]);
    strides[1].push_back(idx_strides[k]);
    strides[2].push_back(src_strides[k]);
  }
  const int64_t itemsize[3] = {item, static_cast<int64_t>(sizeof(int64_t)), item};
  return make_offsets<3>(sizes, strides, itemsize);
}

// ---- which scatter runs ------------------------------------------------------------------------
// Note [CUDA scatter order]
// The cpu applies the writes to one destination in increasing index position (Note [Index
// kernels trust their indices] in kernels/cpu/index.h): the last write wins, and += sums in that
// order. A scatter is a set of columns (the positions that can share a destination: index_scatter's
// b for one (o, i), scatter_dim's j for one line), each a chain of writes:
//   columns   a thread per column walks its chain in order: the cpu's results bit for bit, for
//             every dtype, but only `columns` threads of parallelism;
//   elements  a thread per write. Overwrites keep the cpu's last-write-wins exactly: a first
//             pass records, per destination key, the last position that writes it
//             (LastWriteTable), and only that write stores. Accumulation uses atomicAdd, as
//             torch's CUDA index_add_ / scatter_add_ do: integer sums are exact in any order,
//             float sums then round in the order the atomics land, so they can differ from the
//             cpu's in the last bits and from run to run (torch documents the same
//             nondeterminism; its deterministic mode sorts the indices instead).
// Columns run when they alone fill the GPU or the chains are short; elements otherwise (one
// long chain, as in index_add_ of an embedding's gradient, would serialise).
constexpr int64_t kShortChain = 32;
constexpr int64_t kManyColumns = 65536;
enum class ScatterPath { columns, elements };
inline ScatterPath scatter_path(int64_t columns, int64_t chain) {
  return chain <= kShortChain || columns >= kManyColumns ? ScatterPath::columns
                                                         : ScatterPath::elements;
}

// ---- the last write to each destination --------------------------------------------------------
// An open-addressing hash table from a destination key (a non-negative int64: an element offset,
// or line * size + index) to the largest position that writes it. Inserts from many threads
// at once claim a slot with compare-and-swap and raise its position with atomic max, so the
// table's contents do not depend on the order of the inserts. Capacity: a power of two at least
// twice the number of keys (last_write_capacity), so a probe always meets an empty slot.
// Slots: keys initialised to kEmptyKey (all bytes 0xff), last to -1 (all bytes 0xff).
constexpr uint64_t kEmptyKey = ~uint64_t(0);

struct LastWriteTable {
  uint64_t* keys = nullptr;
  int64_t* last = nullptr;
  int64_t capacity = 0;  // a power of two
};

inline int64_t last_write_capacity(int64_t keys) {
  int64_t c = 16;
  while (c < 2 * keys) c *= 2;
  return c;
}

// splitmix64's finaliser: offsets that differ in their high bits only still spread.
DC_HD inline uint64_t slot_hash(uint64_t key) {
  key ^= key >> 30;
  key *= 0xbf58476d1ce4e5b9ull;
  key ^= key >> 27;
  key *= 0x94d049bb133111ebull;
  return key ^ (key >> 31);
}

// Records that `position` writes destination `key`. A: the atomics (device or HostAtomics).
template <typename A>
DC_HD inline void record_write(const LastWriteTable& t, uint64_t key, int64_t position) {
  const uint64_t mask = static_cast<uint64_t>(t.capacity) - 1;
  for (uint64_t s = slot_hash(key) & mask;; s = (s + 1) & mask) {
    const uint64_t seen = A::cas(&t.keys[s], kEmptyKey, key);
    if (seen == kEmptyKey || seen == key) {
      A::max(&t.last[s], position);
      return;
    }
  }
}

// The largest position recorded for `key` (which was recorded).
DC_HD inline int64_t last_write(const LastWriteTable& t, uint64_t key) {
  const uint64_t mask = static_cast<uint64_t>(t.capacity) - 1;
  uint64_t s = slot_hash(key) & mask;
  while (t.keys[s] != key) s = (s + 1) & mask;
  return t.last[s];
}

// The sequential stand-ins for the device atomics: what the tests run the kernels' steps with.
struct HostAtomics {
  static uint64_t cas(uint64_t* p, uint64_t expected, uint64_t desired) {
    const uint64_t old = *p;
    if (old == expected) *p = desired;
    return old;
  }
  static void max(int64_t* p, int64_t v) { *p = std::max(*p, v); }
  static void add(int64_t* p, int64_t v) { *p += v; }
};

// ---- randperm: the Fisher-Yates shuffle in parallel rounds -----------------------------------
// Note [Parallel Fisher-Yates]
// dc::cpu::permutation_into runs, for i = n-1 down to 1, swap(perm[i], perm[h(i)]) with
// h(i) = keys[i] % (i + 1) <= i. Step i must follow an earlier step k > i only when they touch a
// common position (h(k) == i, or h(k) == h(i)); the rest may run in any order. Shun, Gu,
// Blelloch, Fineman and Gibbons (SODA 2015, "Sequential random permutation, list contraction and
// tree contraction are highly parallel") run it in rounds of deterministic reservations: every
// waiting step i reserves positions i and h(i) with an atomic max of i; a step that holds both
// reservations has no waiting earlier step touching its positions, so it swaps and is done; the
// steps done in one round touch disjoint positions. The result is the sequential one exactly,
// and for random keys the rounds number O(log n) with high probability: 17 to 20 for n = 10^3,
// 44 to 47 for 10^6, 57 to 61 for 10^7 (these steps run on the host). Each round costs three
// kernels and a count read back; after kMaxShuffleRounds (keys built to chain every step, say
// all zeros, which need n - 1 rounds) the host finishes the waiting steps in sequential order,
// which is still the sequential result: every finished step's earlier conflicting steps had
// finished before it.
constexpr int kMaxShuffleRounds = 256;
enum ShuffleState : uint8_t { kShuffleDone = 0, kShuffleWaiting = 1, kShuffleSwapped = 2 };

struct ShuffleArrays {
  const int64_t* keys = nullptr;
  int64_t* perm = nullptr;      // starts as 0, 1, ..., n-1
  int64_t* reserved = nullptr;  // -1 where nothing is reserved (all bytes 0xff)
  uint8_t* state = nullptr;     // ShuffleState of each step: 0 done (step 0 has none), else 1
};

DC_HD inline int64_t swap_target(const int64_t* keys, int64_t i) { return keys[i] % (i + 1); }

// Round phase 1 (every step i at once).
template <typename A>
DC_HD inline void shuffle_reserve(const ShuffleArrays& s, int64_t i) {
  if (s.state[i] != kShuffleWaiting) return;
  A::max(&s.reserved[i], i);
  A::max(&s.reserved[swap_target(s.keys, i)], i);
}
// Phase 2: a step holding both its reservations swaps; the others count themselves in *waiting.
template <typename A>
DC_HD inline void shuffle_commit(const ShuffleArrays& s, int64_t i, int64_t* waiting) {
  if (s.state[i] != kShuffleWaiting) return;
  const int64_t h = swap_target(s.keys, i);
  if (s.reserved[i] == i && s.reserved[h] == i) {
    const int64_t a = s.perm[i];
    s.perm[i] = s.perm[h];
    s.perm[h] = a;
    s.state[i] = kShuffleSwapped;
  } else {
    A::add(waiting, 1);
  }
}
// Phase 3: clear this round's reservations (every writer stores the same -1).
DC_HD inline void shuffle_release(const ShuffleArrays& s, int64_t i) {
  if (s.state[i] == kShuffleDone) return;
  s.reserved[i] = -1;
  s.reserved[swap_target(s.keys, i)] = -1;
  if (s.state[i] == kShuffleSwapped) s.state[i] = kShuffleDone;
}
// The host's end of a shuffle cut short: the waiting steps in sequential order.
inline void shuffle_finish(const int64_t* keys, int64_t* perm, const uint8_t* state, int64_t n) {
  for (int64_t i = n - 1; i > 0; --i)
    if (state[i] == kShuffleWaiting) std::swap(perm[i], perm[swap_target(keys, i)]);
}

// ---- nonzero -----------------------------------------------------------------------------------

// Block g of both passes takes positions [g * chunk, min(n, (g + 1) * chunk)) of the row-major
// order, chunk a multiple of the block's threads, so the blocks' counts prefix-summed place each
// block's rows.
struct NonzeroPlan {
  int64_t blocks = 0, chunk = 0;
};
inline NonzeroPlan nonzero_plan(int64_t n, int threads, int64_t max_blocks) {
  NonzeroPlan p;
  if (n <= 0) return p;
  const int64_t tiles = (n + threads - 1) / threads;
  const int64_t want = std::min<int64_t>(tiles, std::max<int64_t>(max_blocks, 1));
  p.chunk = (tiles + want - 1) / want * threads;
  p.blocks = (n + p.chunk - 1) / p.chunk;
  return p;
}

// The row-major coordinates of position e of a shape of nd dims (outermost first).
struct Unravel {
  int nd = 0;
  int64_t sizes[kMaxDims] = {};
  DC_HD void coords(int64_t e, int64_t* out) const {
    for (int d = nd - 1; d >= 0; --d) {
      out[d] = e % sizes[d];
      e /= sizes[d];
    }
  }
};

// ---- device side -------------------------------------------------------------------------------
#if defined(__CUDACC__)
// The atomics of record_write and the shuffle's rounds on the device (HostAtomics' stand-ins).
struct DeviceAtomics {
  __device__ static uint64_t cas(uint64_t* p, uint64_t expected, uint64_t desired) {
    return atomicCAS(reinterpret_cast<unsigned long long*>(p), expected, desired);
  }
  __device__ static void max(int64_t* p, int64_t v) {
    atomicMax(reinterpret_cast<long long*>(p), static_cast<long long>(v));
  }
  __device__ static void add(int64_t* p, int64_t v) {  // two's complement: the same bits
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
  }
};
#endif

}  // namespace dc::cuda_kernels
