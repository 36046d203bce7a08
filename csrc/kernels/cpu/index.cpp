// Indexing kernels (see Note [Index kernels trust their indices] in index.h).
#include "kernels/cpu/index.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/parallel.h"

namespace dc::cpu {
namespace {

constexpr int kMaxDims = 16;

// Row-major walk over up to kMaxDims dims for N operands at once; off[k] is operand k's
// element offset of the current position. seek() jumps anywhere, next() steps by one.
template <int N>
struct Counter {
  int nd = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];
  int64_t idx[kMaxDims];
  int64_t off[N];

  void add_dim(int64_t size, const int64_t (&st)[N]) {
    DC_CHECK(nd < kMaxDims, ValueError, "[index] tensors with more than ", kMaxDims,
             " dimensions are not supported");
    sizes[nd] = size;
    for (int k = 0; k < N; ++k) strides[k][nd] = st[k];
    ++nd;
  }
  void seek(int64_t pos) {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      idx[d] = pos % sizes[d];
      pos /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += idx[d] * strides[k][d];
    }
  }
  void next() {
    for (int d = nd - 1; d >= 0; --d) {
      ++idx[d];
      for (int k = 0; k < N; ++k) off[k] += strides[k][d];
      if (idx[d] < sizes[d]) return;
      for (int k = 0; k < N; ++k) off[k] -= strides[k][d] * sizes[d];
      idx[d] = 0;
    }
  }
};

// One operand's dims with size-1 dims dropped and neighbours that step contiguously merged,
// so a contiguous inner block becomes a single dim with stride 1.
Counter<1> merged_walk(const Shape& sizes, const Shape& strides) {
  Counter<1> c;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    if (c.nd > 0 && c.strides[0][c.nd - 1] == strides[d] * sizes[d]) {
      c.sizes[c.nd - 1] *= sizes[d];
      c.strides[0][c.nd - 1] = strides[d];
      continue;
    }
    c.add_dim(sizes[d], {strides[d]});
  }
  return c;
}

// Calls f(i, element offset) for i in [i0, i1) of the walk `inner` (a merged single operand).
template <typename F>
inline void for_each_inner(const Counter<1>& inner, int64_t i0, int64_t i1, F&& f) {
  if (inner.nd == 0) {
    for (int64_t i = i0; i < i1; ++i) f(i, int64_t(0));
  } else if (inner.nd == 1) {
    const int64_t st = inner.strides[0][0];
    for (int64_t i = i0; i < i1; ++i) f(i, i * st);
  } else {
    Counter<1> c = inner;
    c.seek(i0);
    for (int64_t i = i0; i < i1; ++i, c.next()) f(i, c.off[0]);
  }
}

template <typename T>
inline void combine(T& dst, T v, bool accumulate) {
  if (!accumulate) dst = v;
  else if constexpr (std::is_same_v<T, bool>) dst = dst || v;
  else dst = static_cast<T>(dst + v);
}

// The walk over every dim of `shape` except `dim`, for the given operands' strides.
template <int N>
Counter<N> walk_except(const Shape& shape, int64_t dim, const Tensor* (&ops)[N]) {
  Counter<N> c;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d == dim) continue;
    int64_t st[N];
    for (int k = 0; k < N; ++k) st[k] = ops[k]->strides()[d];
    c.add_dim(shape[d], st);
  }
  return c;
}

}  // namespace

bool wrap_indices(int64_t* idx, int64_t n, int64_t size, bool allow_negative, int64_t* bad) {
  const int64_t lo = allow_negative ? -size : 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = idx[i];
    if (v < lo || v >= size) {
      *bad = v;
      return false;
    }
    idx[i] = v < 0 ? v + size : v;
  }
  return true;
}

bool wrap_index(const Tensor& idx, int64_t size, bool allow_negative, int64_t* bad) {
  return wrap_indices(idx.data<int64_t>(), idx.numel(), size, allow_negative, bad);
}

void index_gather(const Tensor& out, const Tensor& src, const IndexGeometry& g,
                  const Tensor& offsets) {
  const int64_t B = offsets.numel(), O = numel_of(g.outer_sizes), I = numel_of(g.inner_sizes);
  if (B == 0 || O == 0 || I == 0) return;
  Counter<1> outer;
  for (size_t d = 0; d < g.outer_sizes.size(); ++d)
    outer.add_dim(g.outer_sizes[d], {g.outer_strides[d]});
  const Counter<1> inner = merged_walk(g.inner_sizes, g.inner_strides);
  const int64_t* off = offsets.data<int64_t>();
  DC_DISPATCH_ALL_AND_HALF(src.dtype(), "index", [&] {
    const scalar_t* s = src.data<scalar_t>();
    scalar_t* o = out.data<scalar_t>();
    const bool unit = inner.nd == 1 && inner.strides[0][0] == 1;
    // Rows r = (o, b) of I elements each; a thread takes a contiguous range of rows.
    parallel_for(0, O * B, std::max<int64_t>(1, kGrainSize / I), [&](int64_t r0, int64_t r1) {
      Counter<1> oc = outer;
      oc.seek(r0 / B);
      for (int64_t r = r0, b = r0 % B; r < r1; ++r, ++b) {
        if (b == B) {
          b = 0;
          oc.next();
        }
        const scalar_t* base = s + oc.off[0] + off[b];
        scalar_t* dst = o + r * I;
        if (I == 1) {
          *dst = *base;
        } else if (unit) {
          std::memcpy(static_cast<void*>(dst), base, sizeof(scalar_t) * I);
        } else {
          for_each_inner(inner, 0, I, [&](int64_t i, int64_t so) { dst[i] = base[so]; });
        }
      }
    });
  });
}

void index_scatter(const Tensor& dst, const Tensor& values, const IndexGeometry& g,
                   const Tensor& offsets, bool accumulate) {
  const int64_t B = offsets.numel(), O = numel_of(g.outer_sizes), I = numel_of(g.inner_sizes);
  if (B == 0 || O == 0 || I == 0) return;
  Counter<1> outer;
  for (size_t d = 0; d < g.outer_sizes.size(); ++d)
    outer.add_dim(g.outer_sizes[d], {g.outer_strides[d]});
  const Counter<1> inner = merged_walk(g.inner_sizes, g.inner_strides);
  const int64_t* off = offsets.data<int64_t>();
  // Duplicate offsets only collide across b, so a task owns an (o, inner chunk) pair and runs
  // every b in order: deterministic whatever the thread count.
  constexpr int64_t kChunk = 4096;
  const int64_t nchunks = (I + kChunk - 1) / kChunk;
  const int64_t work_per_task = B * std::min(I, kChunk);
  DC_DISPATCH_ALL_AND_HALF(dst.dtype(), "index_put_", [&] {
    scalar_t* d = dst.data<scalar_t>();
    const scalar_t* v = values.data<scalar_t>();
    parallel_for(0, O * nchunks, std::max<int64_t>(1, kGrainSize / work_per_task),
                 [&](int64_t t0, int64_t t1) {
                   Counter<1> oc = outer;
                   for (int64_t task = t0; task < t1; ++task) {
                     const int64_t o = task / nchunks, c = task % nchunks;
                     const int64_t i0 = c * kChunk, i1 = std::min(I, i0 + kChunk);
                     oc.seek(o);
                     for (int64_t b = 0; b < B; ++b) {
                       scalar_t* base = d + oc.off[0] + off[b];
                       const scalar_t* row = v + (o * B + b) * I;
                       for_each_inner(inner, i0, i1, [&](int64_t i, int64_t so) {
                         combine(base[so], row[i], accumulate);
                       });
                     }
                   }
                 });
  });
}

void gather_dim(const Tensor& out, const Tensor& src, int64_t dim, const Tensor& idx) {
  DC_CHECK(idx.dim() >= 1 && dim >= 0 && dim < idx.dim(), ValueError,
           "[gather] kernel needs a dim of a tensor with at least one dim");
  const Shape& shape = idx.sizes();
  const int64_t n = shape[dim], total = idx.numel();
  if (total == 0) return;
  const Tensor* ops[3] = {&out, &idx, &src};
  const Counter<3> base = walk_except<3>(shape, dim, ops);
  const int64_t out_sd = out.strides()[dim], idx_sd = idx.strides()[dim],
                src_sd = src.strides()[dim];
  const int64_t* ix = idx.data<int64_t>();
  DC_DISPATCH_ALL_AND_HALF(src.dtype(), "gather", [&] {
    const scalar_t* s = src.data<scalar_t>();
    scalar_t* o = out.data<scalar_t>();
    parallel_for(0, total / n, std::max<int64_t>(1, kGrainSize / n), [&](int64_t p0, int64_t p1) {
      Counter<3> c = base;
      c.seek(p0);
      for (int64_t p = p0; p < p1; ++p, c.next()) {
        scalar_t* op = o + c.off[0];
        const int64_t* ip = ix + c.off[1];
        const scalar_t* sp = s + c.off[2];
        for (int64_t j = 0; j < n; ++j) op[j * out_sd] = sp[ip[j * idx_sd] * src_sd];
      }
    });
  });
}

void scatter_dim(const Tensor& dst, int64_t dim, const Tensor& idx, const Tensor& src,
                 bool accumulate) {
  DC_CHECK(idx.dim() >= 1 && dim >= 0 && dim < idx.dim(), ValueError,
           "[scatter] kernel needs a dim of a tensor with at least one dim");
  const Shape& shape = idx.sizes();
  const int64_t n = shape[dim], total = idx.numel();
  if (total == 0) return;
  const Tensor* ops[3] = {&dst, &idx, &src};
  const Counter<3> base = walk_except<3>(shape, dim, ops);
  const int64_t dst_sd = dst.strides()[dim], idx_sd = idx.strides()[dim],
                src_sd = src.strides()[dim];
  const int64_t* ix = idx.data<int64_t>();
  DC_DISPATCH_ALL_AND_HALF(dst.dtype(), "scatter", [&] {
    scalar_t* d = dst.data<scalar_t>();
    const scalar_t* s = src.data<scalar_t>();
    // Positions that differ outside `dim` write to different elements, so they may run in
    // parallel; along `dim` one thread goes in order.
    parallel_for(0, total / n, std::max<int64_t>(1, kGrainSize / n), [&](int64_t p0, int64_t p1) {
      Counter<3> c = base;
      c.seek(p0);
      for (int64_t p = p0; p < p1; ++p, c.next()) {
        scalar_t* dp = d + c.off[0];
        const int64_t* ip = ix + c.off[1];
        const scalar_t* sp = s + c.off[2];
        for (int64_t j = 0; j < n; ++j)
          combine(dp[ip[j * idx_sd] * dst_sd], sp[j * src_sd], accumulate);
      }
    });
  });
}

Tensor nonzero(const Tensor& t) {
  const int64_t N = t.numel(), nd = t.dim();
  Counter<1> walk;
  for (int64_t d = 0; d < nd; ++d) walk.add_dim(t.sizes()[d], {t.strides()[d]});
  // Chunks of the row-major order: count per chunk, prefix-sum, then write in place.
  const int64_t nchunks =
      N <= kGrainSize ? 1 : std::min<int64_t>(4 * get_num_threads(), N / kGrainSize);
  std::vector<int64_t> counts(nchunks + 1, 0);
  auto chunk_begin = [&](int64_t c) { return N * c / nchunks; };
  Tensor out;
  DC_DISPATCH_ALL_AND_HALF(t.dtype(), "nonzero", [&] {
    const scalar_t* p = t.data<scalar_t>();
    if (N > 0) {
      parallel_for(0, nchunks, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          Counter<1> w = walk;
          const int64_t i0 = chunk_begin(c), i1 = chunk_begin(c + 1);
          w.seek(i0);
          int64_t cnt = 0;
          for (int64_t i = i0; i < i1; ++i, w.next()) cnt += p[w.off[0]] != scalar_t(0);
          counts[c + 1] = cnt;
        }
      });
    }
    for (int64_t c = 0; c < nchunks; ++c) counts[c + 1] += counts[c];
    out = Tensor::empty({counts[nchunks], nd}, DType::Int64);
    if (N == 0 || counts[nchunks] == 0) return;
    int64_t* o = out.data<int64_t>();
    parallel_for(0, nchunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        Counter<1> w = walk;
        const int64_t i0 = chunk_begin(c), i1 = chunk_begin(c + 1);
        w.seek(i0);
        int64_t row = counts[c];
        for (int64_t i = i0; i < i1; ++i, w.next()) {
          if (p[w.off[0]] == scalar_t(0)) continue;
          for (int64_t d = 0; d < nd; ++d) o[row * nd + d] = w.idx[d];
          ++row;
        }
      }
    });
  });
  return out;
}

}  // namespace dc::cpu
