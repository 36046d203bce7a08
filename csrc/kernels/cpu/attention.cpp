// The fused attention kernels: the build of the active ISA (Note [Per-ISA kernels]).
#include "kernels/cpu/attention.h"

#include "kernels/cpu/isa.h"

namespace dc::cpu {

void sdpa_flash_forward(const AttentionGeom& g, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& mask, const Tensor& out,
                        const Tensor& lse) {
  for_active_isa(&generic::sdpa_flash_forward, &avx2::sdpa_flash_forward,
                 &avx512::sdpa_flash_forward)(g, q, k, v, mask, out, lse);
}

void sdpa_flash_backward(const AttentionGeom& g, const Tensor& q, const Tensor& k,
                         const Tensor& v, const Tensor& mask, const Tensor& out,
                         const Tensor& lse, const Tensor& dout, const Tensor& dq,
                         const Tensor& dk, const Tensor& dv) {
  for_active_isa(&generic::sdpa_flash_backward, &avx2::sdpa_flash_backward,
                 &avx512::sdpa_flash_backward)(g, q, k, v, mask, out, lse, dout, dq, dk, dv);
}

void sdpa_dropout_mask(const AttentionGeom& g, const Tensor& drop) {
  for_active_isa(&generic::sdpa_dropout_mask, &avx2::sdpa_dropout_mask,
                 &avx512::sdpa_dropout_mask)(g, drop);
}

}  // namespace dc::cpu
