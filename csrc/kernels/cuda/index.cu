// CUDA torch.gather along a dim: dc::cpu::gather_dim's contract (kernels/cpu/index.h). A thread
// per position p of the index's shape: out[p] = src[p with p[dim] := idx[p]]. The three
// operands' offsets come from one OffsetCalc over the index's shape (gather_offsets in
// launch.h, Note [CUDA elementwise iteration]) in which src's stride along dim is 0; the index
// value times that stride is added per element. Elements are copied as raw words of the
// dtype's size, so every dtype is served.
//
// Compiled only; no GPU has run this yet (README, "Devices").
#include <cstdint>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.h"

namespace dc::cuda_kernels {
namespace {

template <typename Word>
__global__ void gather_kernel(int64_t n, OffsetCalc<3> oc, char* out, const char* idx,
                              const char* src, int64_t src_dim_stride) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += step) {
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
  const LaunchConfig c = elementwise_launch(n, max_blocks(out.device()));
  char* o = static_cast<char*>(out.data_ptr());
  const char* ip = static_cast<const char*>(idx.data_ptr());
  const char* sp = static_cast<const char*>(src.data_ptr());
  const int64_t sd = src.strides()[dim] * item;
  const unsigned blocks = static_cast<unsigned>(c.blocks);
  auto run = [&](auto word) {
    gather_kernel<decltype(word)><<<blocks, c.threads, 0, stream()>>>(n, oc, o, ip, sp, sd);
  };
  switch (item) {
    case 1: run(uint8_t{}); break;
    case 2: run(uint16_t{}); break;
    case 4: run(uint32_t{}); break;
    case 8: run(uint64_t{}); break;
    default:
      DC_THROW(TypeError, "[gather] no cuda kernel for ", dtype_name(src.dtype()));
  }
  check_launch("gather");
}

}  // namespace

void fill_index(dispatch::KernelTable& t) { t.gather_dim = cuda_gather_dim; }

}  // namespace dc::cuda_kernels
