// CUDA argsort_rows and select_rows (topk) over x[rows, n] contiguous, into idx[rows, n] (or
// [rows, k]) of int64: the stable ascending or descending order of each row, NaN the largest
// value, as kernels/cpu/sort.h defines them. A bitonic network on (key, index) pairs, rows
// padded to a power of two, in shared-memory tiles where it can and global memory where a
// step's pairs span more than a tile (Note [CUDA sorting] in kernels/cuda/sort_plan.h). Every
// dtype a tensor can have is served; the 16-bit floats are sorted by their bits.
//
// Compiled only; no GPU has run these yet (README, "Devices").
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/sort_plan.h"

namespace dc::cuda_kernels {
namespace {

// Stages first_size..last_size of the network, the strides below g.span, tile by tile in shared
// memory. The pairs come from x (from_pairs false) or the scratch `pairs`; they go back to
// `pairs`, or, when `out` is set, the first k indices of each row go to out[rows, k]. The
// __syncthreads are reached by every thread of the block: the loops around them have the same
// trip counts for the whole block.
template <typename T>
__global__ void __launch_bounds__(kSortThreads)
    bitonic_tiles(const T* x, SortPair* pairs, int64_t* out, SortGeom g, int64_t first_size,
                  int64_t last_size, bool descending, bool from_pairs) {
  __shared__ SortPair tile[kSortTile];
  const int64_t total = g.total(), ntiles = g.tiles();
  for (int64_t t = blockIdx.x; t < ntiles; t += gridDim.x) {
    const int64_t base = t * g.tile;
    // Whole tiles, or (rows shorter than a tile) the rows that are left: a multiple of P.
    const int64_t count = total - base < g.tile ? total - base : g.tile;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x)
      tile[e] = from_pairs ? pairs[base + e] : load_pair(x, g, base + e, descending);
    __syncthreads();
    for (int64_t size = first_size; size <= last_size; size *= 2) {
      for (int64_t stride = (size < g.span ? size : g.span) / 2; stride > 0; stride /= 2) {
        for (int64_t q = threadIdx.x; q < count / 2; q += blockDim.x)
          bitonic_step(tile, base, q, size, stride, g.padded);
        __syncthreads();
      }
    }
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
      const int64_t i = base + e;
      if (!out) {
        pairs[i] = tile[e];
      } else {
        const int64_t j = i % g.padded;
        if (j < g.k) out[(i / g.padded) * g.k + j] = tile[e].index;
      }
    }
    __syncthreads();  // every thread is done with the tile before the next one is loaded
  }
}

// One step (size, stride >= the tile) over the whole scratch array, a thread per pair.
__global__ void bitonic_global_step(SortPair* pairs, SortGeom g, int64_t size, int64_t stride) {
  const int64_t n = g.total() / 2;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < n; q += step)
    bitonic_step(pairs, 0, q, size, stride, g.padded);
}

template <typename T>
void sort_rows_as(const Tensor& idx, const Tensor& x, int64_t n, int64_t k, bool descending,
                  const char* name) {
  const SortGeom g = sort_geom(x.numel() / n, n, k);
  const std::vector<BitonicLaunch> plan = bitonic_launches(g);
  const int64_t cap = max_blocks(x.device());
  // Rows longer than a tile keep their pairs in global memory between launches.
  DeviceBuffer scratch(g.padded > g.span ? static_cast<size_t>(g.total()) * sizeof(SortPair) : 0);
  SortPair* pairs = scratch.as<SortPair>();
  const T* px = static_cast<const T*>(x.data_ptr());
  int64_t* pi = static_cast<int64_t*>(idx.data_ptr());
  for (size_t s = 0; s < plan.size(); ++s) {
    const BitonicLaunch& l = plan[s];
    if (l.in_tiles) {
      const int64_t blocks = g.tiles() < cap ? g.tiles() : cap;
      bitonic_tiles<T><<<static_cast<unsigned>(blocks), kSortThreads, 0, stream()>>>(
          px, pairs, s + 1 == plan.size() ? pi : nullptr, g, l.first_size, l.last_size,
          descending, s > 0);
    } else {
      const LaunchConfig c = elementwise_launch(g.total() / 2, cap);
      bitonic_global_step<<<static_cast<unsigned>(c.blocks), c.threads, 0, stream()>>>(
          pairs, g, l.first_size, l.stride);
    }
    check_launch(name);
  }
}

// idx[rows, k] = the first k of each row of x in sorted order.
void sort_rows(const Tensor& idx, const Tensor& x, int64_t k, bool descending, const char* name) {
  if (x.numel() == 0 || k == 0) return;
  const int64_t n = x.dim() == 0 ? 1 : x.sizes().back();
  DC_CHECK(k >= 0 && k <= n, ValueError, "[", name, "] k = ", k, " is out of range for rows of ",
           n, " (input of shape ", x.shape_str(), ")");
  switch (x.dtype()) {
    case DType::Bool: return sort_rows_as<bool>(idx, x, n, k, descending, name);
    case DType::Int32: return sort_rows_as<int32_t>(idx, x, n, k, descending, name);
    case DType::Int64: return sort_rows_as<int64_t>(idx, x, n, k, descending, name);
    case DType::Float32: return sort_rows_as<float>(idx, x, n, k, descending, name);
    case DType::Float64: return sort_rows_as<double>(idx, x, n, k, descending, name);
    case DType::Float16: return sort_rows_as<F16Bits>(idx, x, n, k, descending, name);
    case DType::BFloat16: return sort_rows_as<Bf16Bits>(idx, x, n, k, descending, name);
    default: break;
  }
  DC_THROW(TypeError, "[", name, "] no cuda kernel for ", dtype_name(x.dtype()));
}

void cuda_argsort_rows(const Tensor& idx, const Tensor& x, bool descending) {
  if (x.numel() == 0) return;
  sort_rows(idx, x, x.dim() == 0 ? 1 : x.sizes().back(), descending, "argsort");
}

void cuda_select_rows(const Tensor& idx, const Tensor& x, int64_t k, bool largest) {
  sort_rows(idx, x, k, largest, "topk");
}

}  // namespace

void fill_sort(dispatch::KernelTable& t) {
  t.argsort_rows = cuda_argsort_rows;
  t.select_rows = cuda_select_rows;
}

}  // namespace dc::cuda_kernels
