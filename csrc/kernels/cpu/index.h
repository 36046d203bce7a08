#pragma once
// Indexing kernels: gather/scatter along one dim, gather/scatter through precomputed element
// offsets (advanced indexing, index_select, index_add, embedding), index wrapping, nonzero.
//
// Note [Index kernels trust their indices]
// Kernels never see a raw user index: the op layer (csrc/ops/index.cpp) first runs
// wrap_indices, which checks every value against the dim size and wraps negatives, and it
// checks the shapes. Kernels therefore only compute; they are the place to make loops fast.
// Scatter kernels apply the contributions to one destination element in a fixed order
// (increasing index position), so accumulation with duplicate indices gives the same bits
// whatever the thread count.
#include <cstdint>

#include "core/tensor.h"

namespace dc::cpu {

// Wraps idx[i] in [-size, size) into [0, size) in place. With allow_negative false only
// [0, size) is accepted. Returns false (and the first bad value in *bad) if a value is out of
// range; the array is then partly wrapped.
bool wrap_indices(int64_t* idx, int64_t n, int64_t size, bool allow_negative, int64_t* bad);
// The same over a contiguous int64 tensor, in place.
bool wrap_index(const Tensor& idx, int64_t size, bool allow_negative, int64_t* bad);

// The geometry of an indexed source or destination: the dims before (outer) and after (inner)
// the block of indexed dims, sizes and element strides. Offsets of the indexed block are
// precomputed per index position b (sum over indexed dims of index * stride).
struct IndexGeometry {
  Shape outer_sizes, outer_strides;
  Shape inner_sizes, inner_strides;
};

// out[o, b, i] = src[o . outer_strides + offsets[b] + i . inner_strides]
// out: contiguous (O, B, I) of src's dtype; offsets: contiguous int64 (B); src: any strides.
void index_gather(const Tensor& out, const Tensor& src, const IndexGeometry& g,
                  const Tensor& offsets);

// dst[o . outer_strides + offsets[b] + i . inner_strides] (= or +=) values[o, b, i]
// values: contiguous (O, B, I) of dst's dtype, not aliasing dst; dst must not overlap itself.
void index_scatter(const Tensor& dst, const Tensor& values, const IndexGeometry& g,
                   const Tensor& offsets, bool accumulate);

// out[p] = src[p with p[dim] := idx[p]] for every position p of idx's shape.
// out has idx's shape; idx: int64 in range (any strides); src: any strides, every size other
// than dim at least idx's.
void gather_dim(const Tensor& out, const Tensor& src, int64_t dim, const Tensor& idx);

// dst[p with p[dim] := idx[p]] (= or +=) src[p] for every position p of idx's shape.
// For one position outside dim, p[dim] runs in increasing order (last write wins).
void scatter_dim(const Tensor& dst, int64_t dim, const Tensor& idx, const Tensor& src,
                 bool accumulate);

// Coordinates of the nonzero elements in row-major order: int64 (n, t.dim()). NaN is nonzero.
Tensor nonzero(const Tensor& t);

}  // namespace dc::cpu
