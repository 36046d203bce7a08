// CUDA indexing kernels: the contracts of kernels/cpu/index.h (Note [Index kernels trust their
// indices]: every index value is in range, checked and wrapped by wrap_index first).
//   index_gather   out[o, b, i] = src[outer(o) + offsets[b] + inner(i)], a thread per element of
//                  the contiguous (O, B, I) out (IndexWalk in index_plan.h).
//   index_scatter  dst[outer(o) + offsets[b] + inner(i)] (= or +=) values[o, b, i].
//   gather_dim     out[p] = src[p with p[dim] := idx[p]], a thread per position of idx's shape
//                  (gather_offsets in launch.h: src's stride along dim is 0, the index value
//                  times it is added per element).
//   scatter_dim    dst[p with p[dim] := idx[p]] (= or +=) src[p].
//   wrap_index     negatives wrapped in place; the first out-of-range value read back.
//   nonzero        two passes over chunks of the row-major order: count, then compact.
// Both scatters apply the writes to one destination in the cpu's order, or through atomics, as
// Note [CUDA scatter order] (index_plan.h) says. Copies move raw words of the dtype's size, so
// every dtype is gathered and overwritten; accumulation covers bool (or), int32, int64, float32
// and float64.
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda/index_plan.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace {

// f(static_cast<W*>(nullptr)) with W the unsigned word of `item` bytes.
template <typename F>
void with_word(int64_t item, DType dtype, const char* op, F&& f) {
  switch (item) {
    case 1: return f(static_cast<uint8_t*>(nullptr));
    case 2: return f(static_cast<uint16_t*>(nullptr));
    case 4: return f(static_cast<uint32_t*>(nullptr));
    case 8: return f(static_cast<uint64_t*>(nullptr));
    default: DC_THROW(TypeError, "[", op, "] no cuda kernel for ", dtype_name(dtype));
  }
}

// d += v as the cpu's combine() does it: or for bool, wrapping sums for the integers (computed
// unsigned, where wrapping is defined), IEEE sums for the floats. `plain` for a thread that owns
// the destination, `atomic` for one that may share it.
template <typename T>
struct AddInto {
  __device__ static void plain(T* d, T v) {
    if constexpr (std::is_same_v<T, bool>) {
      *d = *d || v;
    } else if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;
      *d = static_cast<T>(static_cast<U>(*d) + static_cast<U>(v));
    } else {
      *d = *d + v;
    }
  }
  __device__ static void atomic(T* d, T v) {
    if constexpr (std::is_same_v<T, bool>) {
      if (v) *d = true;  // every writer stores the same true: the order does not matter
    } else if constexpr (std::is_same_v<T, int64_t>) {
      atomicAdd(reinterpret_cast<unsigned long long*>(d), static_cast<unsigned long long>(v));
    } else {
      atomicAdd(d, v);  // int, float, double (sm_60 and later)
    }
  }
};

// ---- gather along a dim --------------------------------------------------------------------

template <typename Word>
__global__ void gather_kernel(int64_t n, OffsetCalc<3> oc, char* out, const char* idx,
                              const char* src, int64_t src_dim_stride) {
  DC_GRID_STRIDE(i, n) {
    int64_t off[3];
    oc.get(i, off);
    const int64_t k = *reinterpret_cast<const int64_t*>(idx + off[1]);
    *reinterpret_cast<Word*>(out + off[0]) =
        *reinterpret_cast<const Word*>(src + off[2] + k * src_dim_stride);
  }
}

void cuda_gather_dim(const Tensor& out, const Tensor& src, int64_t dim, const Tensor& idx) {
  DC_CHECK(idx.dim() >= 1 && dim >= 0 && dim < idx.dim(), ValueError,
           "[gather] kernel needs a dim of a tensor with at least one dim");
  DC_CHECK(idx.dim() <= kMaxDims, ValueError, "[gather] the cuda kernel takes at most ",
           kMaxDims, " dims, got an index of shape ", idx.shape_str());
  const int64_t n = idx.numel();
  if (n == 0) return;
  const int64_t item = static_cast<int64_t>(src.itemsize());
  const OffsetCalc<3> oc = gather_offsets(idx.sizes(), out.strides(), idx.strides(),
                                          src.strides(), dim, item);
  const LaunchConfig c = launch_for(n, out);
  char* o = static_cast<char*>(out.data_ptr());
  const char* ip = static_cast<const char*>(idx.data_ptr());
  const char* sp = static_cast<const char*>(src.data_ptr());
  const int64_t sd = src.strides()[dim] * item;
  with_word(item, src.dtype(), "gather", [&](auto* w) {
    using Word = std::remove_pointer_t<decltype(w)>;
    gather_kernel<Word><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        n, oc, o, ip, sp, sd);
  });
  check_launch("gather");
}

// ---- index_gather --------------------------------------------------------------------------

template <typename Word>
__global__ void index_gather_kernel(int64_t n, IndexWalk w, Word* out, const char* src,
                                    const int64_t* offsets, int64_t item) {
  DC_GRID_STRIDE(r, n) {
    int64_t b;
    const int64_t at = w.at(r, b);
    out[r] = *reinterpret_cast<const Word*>(src + at + offsets[b] * item);
  }
}

void cuda_index_gather(const Tensor& out, const Tensor& src, const cpu::IndexGeometry& g,
                       const Tensor& offsets) {
  const int64_t B = offsets.numel(), O = numel_of(g.outer_sizes), I = numel_of(g.inner_sizes);
  if (B == 0 || O == 0 || I == 0) return;
  const int64_t item = static_cast<int64_t>(src.itemsize()), n = O * B * I;
  const IndexWalk w = index_walk(g, B, item, "index");
  const LaunchConfig c = launch_for(n, out);
  with_word(item, src.dtype(), "index", [&](auto* word) {
    using Word = std::remove_pointer_t<decltype(word)>;
    index_gather_kernel<Word><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        n, w, static_cast<Word*>(out.data_ptr()), static_cast<const char*>(src.data_ptr()),
        static_cast<const int64_t*>(offsets.data_ptr()), item);
  });
  check_launch("index");
}

// ---- index_scatter -------------------------------------------------------------------------

// Columns (Note [CUDA scatter order]): a thread per (o, i) walks b in order. T: the raw word
// (overwrite) or the sum type (accumulate).
template <typename T, bool kAccumulate>
__global__ void index_scatter_columns(int64_t columns, IndexWalk w, char* dst, const T* values,
                                      const int64_t* offsets, int64_t item) {
  DC_GRID_STRIDE(c, columns) {
    int64_t v;
    const int64_t base = w.column(c, v);
    for (int64_t b = 0; b < w.B; ++b, v += w.I) {
      T* d = reinterpret_cast<T*>(dst + base + offsets[b] * item);
      if constexpr (kAccumulate) AddInto<T>::plain(d, values[v]);
      else *d = values[v];
    }
  }
}

// Elements, accumulating: a thread per value, atomics where destinations repeat.
template <typename T>
__global__ void index_scatter_add_elements(int64_t n, IndexWalk w, char* dst, const T* values,
                                           const int64_t* offsets, int64_t item) {
  DC_GRID_STRIDE(r, n) {
    int64_t b;
    const int64_t at = w.at(r, b);
    AddInto<T>::atomic(reinterpret_cast<T*>(dst + at + offsets[b] * item), values[r]);
  }
}

// Elements, overwriting: the destination of (o, b, i) repeats exactly where offsets[b] does, so
// the last write of each is found over the B offsets once (record, then mark), and only the
// values of the marked b are stored.
__global__ void record_offsets(int64_t B, LastWriteTable t, const int64_t* offsets) {
  DC_GRID_STRIDE(b, B) record_write<DeviceAtomics>(t, static_cast<uint64_t>(offsets[b]), b);
}
__global__ void mark_last_offsets(int64_t B, LastWriteTable t, const int64_t* offsets,
                                  uint8_t* is_last) {
  DC_GRID_STRIDE(b, B) is_last[b] = last_write(t, static_cast<uint64_t>(offsets[b])) == b;
}
template <typename Word>
__global__ void index_scatter_last_elements(int64_t n, IndexWalk w, char* dst,
                                            const Word* values, const int64_t* offsets,
                                            const uint8_t* is_last, int64_t item) {
  DC_GRID_STRIDE(r, n) {
    int64_t b;
    const int64_t at = w.at(r, b);
    if (is_last[b]) *reinterpret_cast<Word*>(dst + at + offsets[b] * item) = values[r];
  }
}

// The table of `keys` destination keys: device slots, keys empty and positions -1.
struct LastWriteScratch {
  LastWriteTable table;
  DeviceBuffer keys, last;
  LastWriteScratch(int64_t n, const char* op)
      : keys(static_cast<size_t>(last_write_capacity(n)) * sizeof(uint64_t)),
        last(static_cast<size_t>(last_write_capacity(n)) * sizeof(int64_t)) {
    table.capacity = last_write_capacity(n);
    table.keys = keys.as<uint64_t>();
    table.last = last.as<int64_t>();
    fill_device_bytes(table.keys, 0xff, static_cast<size_t>(table.capacity) * sizeof(uint64_t), op);
    fill_device_bytes(table.last, 0xff, static_cast<size_t>(table.capacity) * sizeof(int64_t), op);
  }
};

void cuda_index_scatter(const Tensor& dst, const Tensor& values, const cpu::IndexGeometry& g,
                        const Tensor& offsets, bool accumulate) {
  const int64_t B = offsets.numel(), O = numel_of(g.outer_sizes), I = numel_of(g.inner_sizes);
  if (B == 0 || O == 0 || I == 0) return;
  const char* op = "index_put_";
  const int64_t item = static_cast<int64_t>(dst.itemsize()), n = O * B * I;
  const IndexWalk w = index_walk(g, B, item, op);
  char* d = static_cast<char*>(dst.data_ptr());
  const int64_t* off = static_cast<const int64_t*>(offsets.data_ptr());
  const ScatterPath path = scatter_path(O * I, B);
  if (accumulate) {
    with_value_type(dst.dtype(), op, [&](auto* type) {
      using T = std::remove_pointer_t<decltype(type)>;
      const T* v = static_cast<const T*>(values.data_ptr());
      if (path == ScatterPath::columns) {
        const LaunchConfig c = launch_for(O * I, dst);
        index_scatter_columns<T, true><<<static_cast<unsigned>(c.blocks), c.threads, 0,
                                         stream()>>>(O * I, w, d, v, off, item);
      } else {
        const LaunchConfig c = launch_for(n, dst);
        index_scatter_add_elements<T><<<static_cast<unsigned>(c.blocks), c.threads, 0,
                                        stream()>>>(n, w, d, v, off, item);
      }
    });
    check_launch(op);
    return;
  }
  with_word(item, dst.dtype(), op, [&](auto* word) {
    using Word = std::remove_pointer_t<decltype(word)>;
    const Word* v = static_cast<const Word*>(values.data_ptr());
    if (path == ScatterPath::columns) {
      const LaunchConfig c = launch_for(O * I, dst);
      index_scatter_columns<Word, false><<<static_cast<unsigned>(c.blocks), c.threads, 0,
                                           stream()>>>(O * I, w, d, v, off, item);
      return;
    }
    LastWriteScratch scratch(B, op);
    DeviceBuffer is_last(static_cast<size_t>(B));
    const LaunchConfig cb = launch_for(B, dst);
    record_offsets<<<static_cast<unsigned>(cb.blocks), cb.threads, 0, stream()>>>(
        B, scratch.table, off);
    mark_last_offsets<<<static_cast<unsigned>(cb.blocks), cb.threads, 0, stream()>>>(
        B, scratch.table, off, is_last.as<uint8_t>());
    const LaunchConfig c = launch_for(n, dst);
    index_scatter_last_elements<Word><<<static_cast<unsigned>(c.blocks), c.threads, 0,
                                        stream()>>>(n, w, d, v, off, is_last.as<uint8_t>(),
                                                    item);
  });
  check_launch(op);
}

// ---- scatter along a dim -------------------------------------------------------------------

// Byte strides along dim of the three operands, and the destination's size there.
struct DimSteps {
  int64_t dst, idx, src, dst_size;
};

// Columns: a thread per line walks j in order (oc: scatter_line_offsets: 0 dst, 1 idx, 2 src).
template <typename T, bool kAccumulate>
__global__ void scatter_dim_columns(int64_t lines, int64_t n, OffsetCalc<3> oc, DimSteps s,
                                    char* dst, const char* idx, const char* src) {
  DC_GRID_STRIDE(line, lines) {
    int64_t off[3];
    oc.get(line, off);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t k = *reinterpret_cast<const int64_t*>(idx + off[1] + j * s.idx);
      T* d = reinterpret_cast<T*>(dst + off[0] + k * s.dst);
      const T v = *reinterpret_cast<const T*>(src + off[2] + j * s.src);
      if constexpr (kAccumulate) AddInto<T>::plain(d, v);
      else *d = v;
    }
  }
}

// Elements (oe: gather_offsets with 0 src, 1 idx, 2 dst whose stride along dim is 0).
template <typename T>
__global__ void scatter_dim_add_elements(int64_t total, OffsetCalc<3> oe, DimSteps s, char* dst,
                                         const char* idx, const char* src) {
  DC_GRID_STRIDE(e, total) {
    int64_t off[3];
    oe.get(e, off);
    const int64_t k = *reinterpret_cast<const int64_t*>(idx + off[1]);
    AddInto<T>::atomic(reinterpret_cast<T*>(dst + off[2] + k * s.dst),
                       *reinterpret_cast<const T*>(src + off[0]));
  }
}

// Overwriting elements: the destination key of position e is (line, index value); j orders the
// writes to it.
__device__ inline uint64_t line_key(int64_t e, const OffsetCalc<3>& oe, DimLines lines,
                                    const DimSteps& s, const char* idx, int64_t (&off)[3],
                                    int64_t& j) {
  oe.get(e, off);
  int64_t line;
  lines.split(e, line, j);
  const int64_t k = *reinterpret_cast<const int64_t*>(idx + off[1]);
  return static_cast<uint64_t>(line * s.dst_size + k);
}
__global__ void record_line_writes(int64_t total, OffsetCalc<3> oe, DimLines lines, DimSteps s,
                                   const char* idx, LastWriteTable t) {
  DC_GRID_STRIDE(e, total) {
    int64_t off[3], j;
    const uint64_t key = line_key(e, oe, lines, s, idx, off, j);
    record_write<DeviceAtomics>(t, key, j);
  }
}
template <typename Word>
__global__ void scatter_dim_last_elements(int64_t total, OffsetCalc<3> oe, DimLines lines,
                                          DimSteps s, char* dst, const char* idx,
                                          const char* src, LastWriteTable t) {
  DC_GRID_STRIDE(e, total) {
    int64_t off[3], j;
    const uint64_t key = line_key(e, oe, lines, s, idx, off, j);
    if (last_write(t, key) != j) continue;
    const int64_t k = *reinterpret_cast<const int64_t*>(idx + off[1]);
    *reinterpret_cast<Word*>(dst + off[2] + k * s.dst) =
        *reinterpret_cast<const Word*>(src + off[0]);
  }
}

void cuda_scatter_dim(const Tensor& dst, int64_t dim, const Tensor& idx, const Tensor& src,
                      bool accumulate) {
  DC_CHECK(idx.dim() >= 1 && dim >= 0 && dim < idx.dim(), ValueError,
           "[scatter] kernel needs a dim of a tensor with at least one dim");
  DC_CHECK(idx.dim() <= kMaxDims, ValueError, "[scatter] the cuda kernel takes at most ",
           kMaxDims, " dims, got an index of shape ", idx.shape_str());
  const Shape& shape = idx.sizes();
  const int64_t n = shape[dim], total = idx.numel();
  if (total == 0) return;
  const char* op = "scatter";
  const int64_t item = static_cast<int64_t>(dst.itemsize()), lines = total / n;
  const DimSteps s{dst.strides()[dim] * item, idx.strides()[dim] * int64_t(sizeof(int64_t)),
                   src.strides()[dim] * item, dst.sizes()[dim]};
  char* d = static_cast<char*>(dst.data_ptr());
  const char* ip = static_cast<const char*>(idx.data_ptr());
  const char* sp = static_cast<const char*>(src.data_ptr());
  const ScatterPath path = scatter_path(lines, n);
  auto columns = [&](auto* type, auto accumulate_tag) {
    using T = std::remove_pointer_t<decltype(type)>;
    const OffsetCalc<3> oc = scatter_line_offsets(shape, dst.strides(), idx.strides(),
                                                  src.strides(), dim, item);
    const LaunchConfig c = launch_for(lines, dst);
    scatter_dim_columns<T, decltype(accumulate_tag)::value>
        <<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(lines, n, oc, s, d, ip,
                                                                        sp);
  };
  const OffsetCalc<3> oe = gather_offsets(shape, src.strides(), idx.strides(), dst.strides(),
                                          dim, item);
  const LaunchConfig c = launch_for(total, dst);
  if (accumulate) {
    with_value_type(dst.dtype(), op, [&](auto* type) {
      using T = std::remove_pointer_t<decltype(type)>;
      if (path == ScatterPath::columns) return columns(type, std::true_type{});
      scatter_dim_add_elements<T><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
          total, oe, s, d, ip, sp);
    });
    check_launch(op);
    return;
  }
  with_word(item, dst.dtype(), op, [&](auto* word) {
    using Word = std::remove_pointer_t<decltype(word)>;
    if (path == ScatterPath::columns) return columns(word, std::false_type{});
    const DimLines dl = dim_lines(shape, dim);
    LastWriteScratch scratch(total, op);
    record_line_writes<<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        total, oe, dl, s, ip, scratch.table);
    scatter_dim_last_elements<Word><<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
        total, oe, dl, s, d, ip, sp, scratch.table);
  });
  check_launch(op);
}

// ---- wrap_index ----------------------------------------------------------------------------

// idx[i] in [lo, size) is wrapped into [0, size); the position of the first value outside goes
// to *first_bad by atomic min (all bytes 0xff: none).
__global__ void wrap_index_kernel(int64_t n, int64_t* idx, int64_t size, int64_t lo,
                                  unsigned long long* first_bad) {
  DC_GRID_STRIDE(i, n) {
    const int64_t v = idx[i];
    if (v < lo || v >= size) atomicMin(first_bad, static_cast<unsigned long long>(i));
    else if (v < 0) idx[i] = v + size;
  }
}

// true if every value was in range. Otherwise false, with the first bad value (in index order,
// as the cpu reports it) in *bad; the in-range values are wrapped either way. Reads a flag back:
// the op needs the answer before it goes on.
bool cuda_wrap_index(const Tensor& idx, int64_t size, bool allow_negative, int64_t* bad) {
  const int64_t n = idx.numel();
  if (n == 0) return true;
  const char* op = "index";
  DeviceBuffer first(sizeof(unsigned long long));
  fill_device_bytes(first.get(), 0xff, sizeof(unsigned long long), op);
  int64_t* p = static_cast<int64_t*>(idx.data_ptr());
  const LaunchConfig c = launch_for(n, idx);
  wrap_index_kernel<<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
      n, p, size, allow_negative ? -size : 0, first.as<unsigned long long>());
  check_launch("wrap_index");
  unsigned long long at = 0;
  copy_to_host(&at, first.get(), sizeof at, op);
  if (at == ~0ull) return true;
  copy_to_host(bad, p + at, sizeof(int64_t), op);  // left as it was: out of range
  return false;
}

// ---- nonzero -------------------------------------------------------------------------------

constexpr int kNonzeroThreads = 256;

// Whether the element at p is nonzero, as `x != 0` in its dtype: NaN is nonzero, -0 is zero
// (the 16-bit floats by their bits, so that no conversion is needed).
template <typename T>
struct NonzeroTest {
  __device__ static bool at(const char* p) { return *reinterpret_cast<const T*>(p) != T(0); }
};
struct NonzeroTest16Float {
  __device__ static bool at(const char* p) {
    return (*reinterpret_cast<const uint16_t*>(p) & 0x7fffu) != 0;
  }
};

// Pass 1: block g counts the nonzeros of its chunk (warp sums, then one atomic per warp: an
// integer sum, the same in any order).
template <typename Test>
__global__ void nonzero_count(int64_t n, int64_t chunk, OffsetCalc<1> oc, const char* p,
                              unsigned long long* counts) {
  const int64_t begin = blockIdx.x * chunk, end = min(n, begin + chunk);
  unsigned long long c = 0;
  for (int64_t e = begin + threadIdx.x; e < end; e += blockDim.x) {
    int64_t off[1];
    oc.get(e, off);
    c += Test::at(p + off[0]);
  }
  for (int s = 16; s > 0; s /= 2) c += __shfl_down_sync(0xffffffffu, c, s);
  if ((threadIdx.x & 31) == 0 && c != 0) atomicAdd(&counts[blockIdx.x], c);
}

// Pass 2: block g writes the coordinates of its chunk's nonzeros from row block_rows[g] on, in
// order: tiles of kNonzeroThreads positions, each thread's row from the warp's ballot and the
// counts of the warps before it. Every thread of the block runs the same number of tiles, so
// the barriers are reached by all.
template <typename Test>
__global__ void nonzero_write(int64_t n, int64_t chunk, OffsetCalc<1> oc, const char* p,
                              Unravel shape, const int64_t* block_rows, int64_t* out) {
  constexpr int kWarps = kNonzeroThreads / 32;
  __shared__ int warp_start[kWarps + 1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t begin = blockIdx.x * chunk, end = min(n, begin + chunk);
  int64_t row = block_rows[blockIdx.x];
  for (int64_t tile = begin; tile < end; tile += kNonzeroThreads) {
    const int64_t e = tile + threadIdx.x;
    bool nonzero = false;
    if (e < end) {
      int64_t off[1];
      oc.get(e, off);
      nonzero = Test::at(p + off[0]);
    }
    const unsigned ballot = __ballot_sync(0xffffffffu, nonzero);
    if (lane == 0) warp_start[warp + 1] = __popc(ballot);
    __syncthreads();
    if (threadIdx.x == 0) {
      warp_start[0] = 0;
      for (int k = 1; k <= kWarps; ++k) warp_start[k] += warp_start[k - 1];
    }
    __syncthreads();
    if (nonzero)
      shape.coords(e, out + (row + warp_start[warp] + __popc(ballot & ((1u << lane) - 1))) *
                                shape.nd);
    row += warp_start[kWarps];
    __syncthreads();  // warp_start is rewritten by the next tile
  }
}

Tensor cuda_nonzero(const Tensor& t) {
  const int64_t N = t.numel(), nd = t.dim();
  DC_CHECK(nd <= kMaxDims, ValueError, "[nonzero] the cuda kernel takes at most ", kMaxDims,
           " dims, got shape ", t.shape_str());
  if (N == 0) return Tensor::empty({0, nd}, DType::Int64, t.device());
  const char* op = "nonzero";
  const int64_t item = static_cast<int64_t>(t.itemsize());
  const std::vector<int64_t> strides[1] = {t.strides()};
  const int64_t itemsize[1] = {item};
  const OffsetCalc<1> oc = make_offsets<1>(t.sizes(), strides, itemsize);
  const NonzeroPlan plan = nonzero_plan(N, kNonzeroThreads, max_blocks(t.device()));
  const char* p = static_cast<const char*>(t.data_ptr());
  Unravel shape;
  shape.nd = static_cast<int>(nd);
  for (int64_t d = 0; d < nd; ++d) shape.sizes[d] = t.sizes()[d];
  Tensor out;
  auto run = [&](auto test) {
    using Test = decltype(test);
    const size_t blocks = static_cast<size_t>(plan.blocks);
    DeviceBuffer counts(blocks * sizeof(unsigned long long));
    fill_device_bytes(counts.get(), 0, blocks * sizeof(unsigned long long), op);
    nonzero_count<Test><<<static_cast<unsigned>(plan.blocks), kNonzeroThreads, 0, stream()>>>(
        N, plan.chunk, oc, p, counts.as<unsigned long long>());
    check_launch(op);
    std::vector<int64_t> rows(blocks);
    copy_to_host(rows.data(), counts.get(), blocks * sizeof(int64_t), op);
    int64_t total = 0;
    for (int64_t& r : rows) {  // counts -> first row of each block
      const int64_t count = r;
      r = total;
      total += count;
    }
    out = Tensor::empty({total, nd}, DType::Int64, t.device());
    if (total == 0 || nd == 0) return;
    const DeviceBuffer block_rows = upload(rows);
    nonzero_write<Test><<<static_cast<unsigned>(plan.blocks), kNonzeroThreads, 0, stream()>>>(
        N, plan.chunk, oc, p, shape, block_rows.as<int64_t>(),
        static_cast<int64_t*>(out.data_ptr()));
    check_launch(op);
  };
  switch (t.dtype()) {
    case DType::Bool: run(NonzeroTest<uint8_t>{}); break;
    case DType::Int32: run(NonzeroTest<int32_t>{}); break;
    case DType::Int64: run(NonzeroTest<int64_t>{}); break;
    case DType::Float32: run(NonzeroTest<float>{}); break;
    case DType::Float64: run(NonzeroTest<double>{}); break;
    case DType::BFloat16:
    case DType::Float16: run(NonzeroTest16Float{}); break;
    default: DC_THROW(TypeError, "[nonzero] no cuda kernel for ", dtype_name(t.dtype()));
  }
  return out;
}

}  // namespace

void fill_index(dispatch::KernelTable& t) {
  t.gather_dim = cuda_gather_dim;
  t.index_gather = cuda_index_gather;
  t.index_scatter = cuda_index_scatter;
  t.scatter_dim = cuda_scatter_dim;
  t.wrap_index = cuda_wrap_index;
  t.nonzero = cuda_nonzero;
}

}  // namespace dc::cuda_kernels
