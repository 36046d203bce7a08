#pragma once
// The fused scaled dot-product attention under F.scaled_dot_product_attention
// (python/deepcore/nn/_attention.py, Note [SDPA paths]).
#include "core/tensor.h"

namespace dc::ops {

// softmax(q k^T * scale + mask) v: q (..., Hq, L, E), k (..., Hk, S, E), v (..., Hk, S, Ev),
// leading dims broadcast; k and v have the same leading dims. attn_mask (optional): bool (true
// takes part) or additive of q's dtype, broadcastable to (..., Hq, L, S); it gets no gradient.
// enable_gqa: Hq is a multiple of Hk. A row with no visible key gives zeros. dropout_p > 0
// drops each probability with that chance after the softmax and scales the kept ones by
// 1 / (1 - dropout_p), the mask drawn from the default generator (Note [Dropout inside flash
// attention] in kernels/cpu/vec/attention_kernels.cpp).
Tensor sdpa_flash(const Tensor& query, const Tensor& key, const Tensor& value,
                   const Tensor& attn_mask, bool is_causal, double scale, bool enable_gqa,
                   double dropout_p = 0.0);

}  // namespace dc::ops
