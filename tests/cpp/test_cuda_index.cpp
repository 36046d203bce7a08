// The host-side logic of the CUDA indexing kernels (kernels/cuda/index_plan.h), run on the host
// one thread after another and compared with the cpu kernels: the offsets each thread of
// index_gather / index_scatter / scatter_dim computes, both scatter strategies of Note [CUDA
// scatter order] (columns in order; elements with the last-write table or sums), the
// last-write table under any insertion order, the parallel Fisher-Yates rounds of randperm
// (Note [Parallel Fisher-Yates]) and nonzero's chunks. Shapes are awkward: size-1 dims,
// transposed and broadcast operands, duplicate indices. A kernel's steps running one after
// another are the parallel run whenever the steps of one launch commute, which these do (their
// shared writes are atomic max, atomic add of integers, or identical stores).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "core/tensor.h"
#include "kernels/cpu/creation.h"
#include "kernels/cpu/index.h"
#include "kernels/cuda/index_plan.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace {

Shape contiguous_strides_of(const Shape& shape) {
  Shape s(shape.size());
  int64_t st = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    s[d] = st;
    st *= shape[d];
  }
  return s;
}

Shape random_shape(std::mt19937& rng, int nd, int64_t max_size) {
  Shape s(static_cast<size_t>(nd));
  for (auto& x : s) x = 1 + static_cast<int64_t>(rng() % static_cast<uint32_t>(max_size));
  return s;
}

// A float64 tensor of `shape` whose memory order is a random permutation of its dims, with gaps
// (every stride scaled by `spread`); values random. Its elements never share memory.
Tensor strided_f64(const Shape& shape, std::mt19937& rng, int64_t spread = 1) {
  std::vector<size_t> order(shape.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  Shape strides(shape.size());
  int64_t st = spread;
  for (size_t k = order.size(); k-- > 0;) {
    strides[order[k]] = st;
    st *= shape[order[k]];
  }
  Tensor base = Tensor::empty({std::max<int64_t>(st, 1)}, DType::Float64);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int64_t i = 0; i < base.numel(); ++i) base.data<double>()[i] = u(rng);
  return Tensor::make_view(base.storage(), shape, strides, 0, DType::Float64);
}

// A copy of t with the same strides over a fresh copy of its storage.
Tensor clone_layout(const Tensor& t) {
  const size_t bytes = t.storage()->nbytes;
  Tensor base = Tensor::empty({static_cast<int64_t>(bytes / sizeof(double))}, DType::Float64);
  std::memcpy(base.data_ptr(), t.storage()->data, bytes);
  return Tensor::make_view(base.storage(), t.sizes(), t.strides(), t.offset(), t.dtype());
}

::testing::AssertionResult same_storage(const Tensor& a, const Tensor& b) {
  if (std::memcmp(a.storage()->data, b.storage()->data, a.storage()->nbytes) == 0)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the storages differ";
}

double& at_bytes(const Tensor& t, int64_t bytes) {
  return *reinterpret_cast<double*>(static_cast<char*>(t.data_ptr()) + bytes);
}

// ---- index_gather / index_scatter ---------------------------------------------------------

// An indexed tensor (outer dims, one indexed dim, inner dims) and B offsets into its indexed dim
// (duplicates likely), with the geometry the op layer passes.
struct IndexCase {
  Tensor t;
  cpu::IndexGeometry g;
  Tensor offsets;
  int64_t B = 0, O = 1, I = 1;
};

IndexCase random_index_case(std::mt19937& rng, bool broadcast_ok) {
  IndexCase c;
  const int outer_nd = static_cast<int>(rng() % 3), inner_nd = static_cast<int>(rng() % 3);
  const Shape shape = random_shape(rng, outer_nd + 1 + inner_nd, 4);
  c.t = strided_f64(shape, rng, 1 + rng() % 2);
  Shape strides = c.t.strides();
  if (broadcast_ok)  // reading only: some dims broadcast (stride 0)
    for (auto& s : strides)
      if (rng() % 4 == 0) s = 0;
  c.t = Tensor::make_view(c.t.storage(), shape, strides, 0, DType::Float64);
  for (int d = 0; d < outer_nd; ++d) {
    c.g.outer_sizes.push_back(shape[d]);
    c.g.outer_strides.push_back(strides[d]);
  }
  for (int d = outer_nd + 1; d < outer_nd + 1 + inner_nd; ++d) {
    c.g.inner_sizes.push_back(shape[d]);
    c.g.inner_strides.push_back(strides[d]);
  }
  c.B = static_cast<int64_t>(rng() % 7);  // 0 included
  c.offsets = Tensor::empty({c.B}, DType::Int64);
  for (int64_t b = 0; b < c.B; ++b)
    c.offsets.data<int64_t>()[b] =
        static_cast<int64_t>(rng() % static_cast<uint32_t>(shape[outer_nd])) * strides[outer_nd];
  c.O = numel_of(c.g.outer_sizes);
  c.I = numel_of(c.g.inner_sizes);
  return c;
}

TEST(CudaIndex, GatherWalkMatchesTheCpuKernel) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 400; ++trial) {
    const IndexCase c = random_index_case(rng, true);
    const int64_t n = c.O * c.B * c.I;
    Tensor want = Tensor::empty({n}, DType::Float64), got = Tensor::empty({n}, DType::Float64);
    cpu::index_gather(want, c.t, c.g, c.offsets);
    if (n == 0) continue;
    const IndexWalk w = index_walk(c.g, c.B, sizeof(double), "index");
    for (int64_t r = 0; r < n; ++r) {  // index_gather_kernel's thread r
      int64_t b;
      const int64_t at = w.at(r, b);
      got.data<double>()[r] = at_bytes(c.t, at + c.offsets.data<int64_t>()[b] * 8);
    }
    ASSERT_TRUE(same_storage(got, want)) << "trial " << trial;
  }
}

// index_scatter's three ways (columns; elements summing; elements with the last-write table)
// against the cpu, overwriting and accumulating, with duplicate offsets.
TEST(CudaIndex, ScatterPathsMatchTheCpuKernel) {
  std::mt19937 rng(12);
  for (int trial = 0; trial < 400; ++trial) {
    const IndexCase c = random_index_case(rng, false);
    const int64_t n = c.O * c.B * c.I;
    Tensor values = strided_f64({std::max<int64_t>(n, 1)}, rng);
    const double* v = values.data<double>();
    const int64_t* off = c.offsets.data<int64_t>();
    for (bool accumulate : {false, true}) {
      Tensor want = clone_layout(c.t);
      cpu::index_scatter(want, values, c.g, c.offsets, accumulate);
      if (n == 0) continue;
      const IndexWalk w = index_walk(c.g, c.B, sizeof(double), "index_put_");

      Tensor columns = clone_layout(c.t);  // index_scatter_columns' thread per column
      for (int64_t col = 0; col < c.O * c.I; ++col) {
        int64_t vi;
        const int64_t base = w.column(col, vi);
        for (int64_t b = 0; b < c.B; ++b, vi += c.I) {
          double& d = at_bytes(columns, base + off[b] * 8);
          d = accumulate ? d + v[vi] : v[vi];
        }
      }
      ASSERT_TRUE(same_storage(columns, want)) << "columns, trial " << trial;

      Tensor elements = clone_layout(c.t);
      if (accumulate) {  // index_scatter_add_elements: one thread after another, in r order
        for (int64_t r = 0; r < n; ++r) {
          int64_t b;
          const int64_t at = w.at(r, b);
          at_bytes(elements, at + off[b] * 8) += v[r];
        }
      } else {  // record_offsets (in a shuffled order), mark_last_offsets, the stores
        std::vector<uint64_t> keys(static_cast<size_t>(last_write_capacity(c.B)), kEmptyKey);
        std::vector<int64_t> last(keys.size(), -1);
        const LastWriteTable table{keys.data(), last.data(), static_cast<int64_t>(keys.size())};
        std::vector<int64_t> order(static_cast<size_t>(c.B));
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), rng);
        for (int64_t b : order)
          record_write<HostAtomics>(table, static_cast<uint64_t>(off[b]), b);
        std::vector<uint8_t> is_last(static_cast<size_t>(c.B));
        for (int64_t b = 0; b < c.B; ++b)
          is_last[b] = last_write(table, static_cast<uint64_t>(off[b])) == b;
        for (int64_t r = 0; r < n; ++r) {
          int64_t b;
          const int64_t at = w.at(r, b);
          if (is_last[b]) at_bytes(elements, at + off[b] * 8) = v[r];
        }
      }
      ASSERT_TRUE(same_storage(elements, want))
          << "elements, accumulate " << accumulate << ", trial " << trial;
    }
  }
}

// ---- scatter along a dim ---------------------------------------------------------------------

TEST(CudaIndex, ScatterDimPathsMatchTheCpuKernel) {
  std::mt19937 rng(13);
  for (int trial = 0; trial < 500; ++trial) {
    const int nd = 1 + static_cast<int>(rng() % 4);
    const int64_t dim = static_cast<int64_t>(rng() % nd);
    const Shape dst_shape = random_shape(rng, nd, 4);
    Shape idx_shape(static_cast<size_t>(nd)), src_shape(static_cast<size_t>(nd));
    for (int d = 0; d < nd; ++d) {
      idx_shape[d] = d == dim ? 1 + static_cast<int64_t>(rng() % 6)  // longer than dst: repeats
                              : 1 + static_cast<int64_t>(rng() % dst_shape[d]);
      src_shape[d] = idx_shape[d] + static_cast<int64_t>(rng() % 2);
    }
    const Tensor dst = strided_f64(dst_shape, rng, 1 + rng() % 2);
    Tensor src = strided_f64(src_shape, rng);
    if (rng() % 3 == 0) {  // broadcast src along some dims
      Shape st = src.strides();
      for (auto& s : st)
        if (rng() % 2 == 0) s = 0;
      src = Tensor::make_view(src.storage(), src_shape, st, 0, DType::Float64);
    }
    // The index: int64 in a transposed layout, values in range with duplicates.
    Tensor idx_base = strided_f64(idx_shape, rng);
    Tensor idx = Tensor::empty({std::max<int64_t>(idx_base.storage()->nbytes / 8, 1)},
                               DType::Int64);
    idx = Tensor::make_view(idx.storage(), idx_shape, idx_base.strides(), 0, DType::Int64);
    const int64_t total = idx.numel(), n = idx_shape[dim];
    {
      int64_t* raw = static_cast<int64_t*>(idx.storage()->data);
      for (size_t i = 0; i < idx.storage()->nbytes / 8; ++i)
        raw[i] = static_cast<int64_t>(rng() % static_cast<uint32_t>(dst_shape[dim]));
    }
    const int64_t item = sizeof(double);
    const char* ip = static_cast<const char*>(idx.data_ptr());
    const char* sp = static_cast<const char*>(src.data_ptr());
    const int64_t s_dst = dst.strides()[dim] * item, s_idx = idx.strides()[dim] * 8,
                  s_src = src.strides()[dim] * item;
    const auto index_at = [&](int64_t bytes) {
      return *reinterpret_cast<const int64_t*>(ip + bytes);
    };
    const auto src_at = [&](int64_t bytes) {
      return *reinterpret_cast<const double*>(sp + bytes);
    };
    for (bool accumulate : {false, true}) {
      Tensor want = clone_layout(dst);
      cpu::scatter_dim(want, dim, idx, src, accumulate);

      Tensor columns = clone_layout(dst);  // scatter_dim_columns' thread per line
      const OffsetCalc<3> oc = scatter_line_offsets(idx_shape, dst.strides(), idx.strides(),
                                                    src.strides(), dim, item);
      for (int64_t line = 0; line < total / n; ++line) {
        int64_t o[3];
        oc.get(line, o);
        for (int64_t j = 0; j < n; ++j) {
          double& d = at_bytes(columns, o[0] + index_at(o[1] + j * s_idx) * s_dst);
          const double v = src_at(o[2] + j * s_src);
          d = accumulate ? d + v : v;
        }
      }
      ASSERT_TRUE(same_storage(columns, want)) << "columns, trial " << trial;

      Tensor elements = clone_layout(dst);
      const OffsetCalc<3> oe = gather_offsets(idx_shape, src.strides(), idx.strides(),
                                              dst.strides(), dim, item);
      if (accumulate) {  // scatter_dim_add_elements, in e order
        for (int64_t e = 0; e < total; ++e) {
          int64_t o[3];
          oe.get(e, o);
          at_bytes(elements, o[2] + index_at(o[1]) * s_dst) += src_at(o[0]);
        }
      } else {  // record_line_writes (shuffled), then scatter_dim_last_elements
        const DimLines lines = dim_lines(idx_shape, dim);
        std::vector<uint64_t> keys(static_cast<size_t>(last_write_capacity(total)), kEmptyKey);
        std::vector<int64_t> last(keys.size(), -1);
        const LastWriteTable table{keys.data(), last.data(), static_cast<int64_t>(keys.size())};
        auto key_of = [&](int64_t e, int64_t (&o)[3], int64_t& j) {
          oe.get(e, o);
          int64_t line;
          lines.split(e, line, j);
          return static_cast<uint64_t>(line * dst_shape[dim] + index_at(o[1]));
        };
        std::vector<int64_t> order(static_cast<size_t>(total));
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), rng);
        for (int64_t e : order) {
          int64_t o[3], j;
          const uint64_t key = key_of(e, o, j);
          record_write<HostAtomics>(table, key, j);
        }
        for (int64_t e = 0; e < total; ++e) {
          int64_t o[3], j;
          const uint64_t key = key_of(e, o, j);
          if (last_write(table, key) == j)
            at_bytes(elements, o[2] + index_at(o[1]) * s_dst) = src_at(o[0]);
        }
      }
      ASSERT_TRUE(same_storage(elements, want))
          << "elements, accumulate " << accumulate << ", trial " << trial;
    }
  }
}

// DimLines numbers a position's line as the row-major order of the other dims, which is the
// order scatter_line_offsets walks them in.
TEST(CudaIndex, DimLinesSplitPositionsIntoLineAndCoordinate) {
  const Shape shape = {3, 1, 4, 5};
  for (int64_t dim = 0; dim < 4; ++dim) {
    const DimLines lines = dim_lines(shape, dim);
    Shape pos(4, 0);
    for (int64_t e = 0; e < numel_of(shape); ++e) {
      int64_t line, j, want_line = 0;
      lines.split(e, line, j);
      for (int64_t d = 0; d < 4; ++d)
        if (d != dim) want_line = want_line * shape[d] + pos[d];
      ASSERT_EQ(j, pos[dim]) << "dim " << dim << " e " << e;
      ASSERT_EQ(line, want_line) << "dim " << dim << " e " << e;
      for (int64_t d = 3; d >= 0; --d) {  // row-major successor
        if (++pos[d] < shape[d]) break;
        pos[d] = 0;
      }
    }
  }
}

// ---- the last-write table ------------------------------------------------------------------

TEST(CudaIndex, LastWriteTableKeepsTheLargestPositionOfEveryKey) {
  std::mt19937_64 rng(14);
  for (int64_t count : {1, 2, 7, 16, 100, 5000}) {
    // Keys from a small range (many repeats), large values, and values that differ only in
    // their high bits.
    std::vector<std::pair<uint64_t, int64_t>> writes;
    for (int64_t p = 0; p < count; ++p) {
      uint64_t key = rng() % static_cast<uint64_t>(count / 3 + 1);
      if (p % 5 == 1) key = rng() >> 1;
      if (p % 7 == 2) key = (rng() % 4) << 60;
      writes.emplace_back(key, p);
    }
    std::shuffle(writes.begin(), writes.end(), rng);
    std::vector<uint64_t> keys(static_cast<size_t>(last_write_capacity(count)), kEmptyKey);
    std::vector<int64_t> last(keys.size(), -1);
    ASSERT_GE(static_cast<int64_t>(keys.size()), 2 * count);
    ASSERT_EQ(keys.size() & (keys.size() - 1), 0u);  // a power of two
    const LastWriteTable table{keys.data(), last.data(), static_cast<int64_t>(keys.size())};
    std::map<uint64_t, int64_t> want;
    for (auto [key, p] : writes) {
      record_write<HostAtomics>(table, key, p);
      want[key] = std::max(want.count(key) ? want[key] : int64_t(-1), p);
    }
    for (auto [key, p] : want) ASSERT_EQ(last_write(table, key), p) << "key " << key;
    const auto used =
        std::count_if(keys.begin(), keys.end(), [](uint64_t k) { return k != kEmptyKey; });
    EXPECT_EQ(static_cast<size_t>(used), want.size());  // one slot per key
  }
}

TEST(CudaIndex, ScatterPathPicksColumnsWhenTheyAreEnough) {
  EXPECT_EQ(scatter_path(1, 1000000), ScatterPath::elements);  // one long chain
  EXPECT_EQ(scatter_path(768, 8192), ScatterPath::elements);   // an embedding's gradient
  EXPECT_EQ(scatter_path(1, kShortChain), ScatterPath::columns);
  EXPECT_EQ(scatter_path(kManyColumns, 1000), ScatterPath::columns);
}

// ---- randperm's rounds -------------------------------------------------------------------------

// The device's shuffle run on the host: rounds of the three phases until no step waits (or
// max_rounds, then shuffle_finish). Checks, every round, that the steps that swap touch
// disjoint positions and that the reservations are all cleared after it.
std::vector<int64_t> parallel_shuffle(const std::vector<int64_t>& keys, int max_rounds,
                                      int* rounds_out) {
  const int64_t n = static_cast<int64_t>(keys.size());
  std::vector<int64_t> perm(keys.size()), reserved(keys.size(), -1);
  std::vector<uint8_t> state(keys.size(), kShuffleWaiting);
  std::iota(perm.begin(), perm.end(), 0);
  if (n > 0) state[0] = kShuffleDone;
  const ShuffleArrays s{keys.data(), perm.data(), reserved.data(), state.data()};
  int64_t left = n - 1;
  int rounds = 0;
  for (; left > 0 && rounds < max_rounds; ++rounds) {
    int64_t waiting = 0;
    for (int64_t i = 0; i < n; ++i) shuffle_reserve<HostAtomics>(s, i);
    std::set<int64_t> touched;
    for (int64_t i = 1; i < n; ++i) {
      const int64_t h = swap_target(keys.data(), i);
      if (state[i] != kShuffleWaiting || reserved[i] != i || reserved[h] != i) continue;
      EXPECT_TRUE(touched.insert(i).second) << "round " << rounds << " step " << i;
      if (h != i) EXPECT_TRUE(touched.insert(h).second) << "round " << rounds << " step " << i;
    }
    for (int64_t i = 0; i < n; ++i) shuffle_commit<HostAtomics>(s, i, &waiting);
    for (int64_t i = 0; i < n; ++i) shuffle_release(s, i);
    EXPECT_TRUE(
        std::all_of(reserved.begin(), reserved.end(), [](int64_t r) { return r == -1; }));
    EXPECT_LT(waiting, left);  // the earliest waiting step always swaps
    left = waiting;
  }
  if (left > 0) shuffle_finish(keys.data(), perm.data(), state.data(), n);
  *rounds_out = rounds;
  return perm;
}

std::vector<int64_t> cpu_permutation(const std::vector<int64_t>& keys) {
  const int64_t n = static_cast<int64_t>(keys.size());
  Tensor k = Tensor::empty({n}, DType::Int64), out = Tensor::empty({n}, DType::Int64);
  std::copy(keys.begin(), keys.end(), k.data<int64_t>());
  cpu::permutation_into(out, k);
  return std::vector<int64_t>(out.data<int64_t>(), out.data<int64_t>() + n);
}

TEST(CudaIndex, ParallelShuffleGivesTheCpuPermutation) {
  std::mt19937_64 rng(15);
  for (int64_t n : {0, 1, 2, 3, 5, 17, 64, 1000, 100003}) {
    std::vector<int64_t> keys(static_cast<size_t>(n));
    for (auto& k : keys) k = static_cast<int64_t>(rng() >> 1);  // randint(0, INT64_MAX)'s range
    int rounds = 0;
    ASSERT_EQ(parallel_shuffle(keys, kMaxShuffleRounds, &rounds), cpu_permutation(keys)) << n;
    // O(log n) rounds for random keys: the device never needs the host's help with them.
    EXPECT_LT(rounds, kMaxShuffleRounds / 2) << "n=" << n;
  }
}

// Keys that chain every step (all zeros: each step swaps with position 0) need n - 1 rounds: the
// rounds stop at the cap and the host finishes, still with the sequential result. Keys that
// swap each position with itself finish in one round.
TEST(CudaIndex, ParallelShuffleFinishesChainedKeysOnTheHost) {
  for (int64_t n : {2, 65, 300}) {
    const std::vector<int64_t> zeros(static_cast<size_t>(n), 0);
    int rounds = 0;
    ASSERT_EQ(parallel_shuffle(zeros, kMaxShuffleRounds, &rounds), cpu_permutation(zeros)) << n;
    EXPECT_EQ(rounds, std::min<int64_t>(n - 1, kMaxShuffleRounds));
    std::vector<int64_t> self(static_cast<size_t>(n));
    std::iota(self.begin(), self.end(), 0);
    ASSERT_EQ(parallel_shuffle(self, kMaxShuffleRounds, &rounds), cpu_permutation(self)) << n;
    EXPECT_EQ(rounds, 1);
  }
  // A small cap on random keys: part done on the device, the rest on the host.
  std::mt19937_64 rng(16);
  std::vector<int64_t> keys(5000);
  for (auto& k : keys) k = static_cast<int64_t>(rng() >> 1);
  for (int cap : {0, 1, 2, 3}) {
    int rounds = 0;
    ASSERT_EQ(parallel_shuffle(keys, cap, &rounds), cpu_permutation(keys)) << "cap " << cap;
  }
}

// ---- nonzero -----------------------------------------------------------------------------------

TEST(CudaIndex, NonzeroChunksCoverEveryPositionOnce) {
  for (int64_t n : {1, 255, 256, 257, 1000, 65536, 1000003})
    for (int64_t max_blocks : {1, 3, 132 * 32}) {
      const NonzeroPlan p = nonzero_plan(n, 256, max_blocks);
      ASSERT_GT(p.blocks, 0);
      EXPECT_LE(p.blocks, max_blocks);
      EXPECT_EQ(p.chunk % 256, 0);
      EXPECT_GE(p.blocks * p.chunk, n);         // every position in a chunk
      EXPECT_LT((p.blocks - 1) * p.chunk, n);  // and no chunk empty
    }
  EXPECT_EQ(nonzero_plan(0, 256, 100).blocks, 0);
}

TEST(CudaIndex, UnravelGivesRowMajorCoordinates) {
  Unravel u;
  const Shape shape = {2, 1, 3, 5};
  u.nd = 4;
  for (int d = 0; d < 4; ++d) u.sizes[d] = shape[d];
  Shape pos(4, 0);
  for (int64_t e = 0; e < 30; ++e) {
    int64_t c[4];
    u.coords(e, c);
    for (int d = 0; d < 4; ++d) ASSERT_EQ(c[d], pos[d]) << e;
    for (int d = 3; d >= 0; --d) {
      if (++pos[d] < shape[d]) break;
      pos[d] = 0;
    }
  }
}

}  // namespace
}  // namespace dc::cuda_kernels
