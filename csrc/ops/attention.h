#pragma once
// The fused scaled dot-product attention under F.scaled_dot_product_attention
// (python/deepcore/nn/_attention.py, Note [SDPA paths]).
#include "core/tensor.h"

namespace dc::ops {

// softmax(q k^T * scale + mask) v: q (..., Hq, L, E), k (..., Hk, S, E), v (..., Hk, S, Ev),
// leading dims broadcast; k and v have the same leading dims. attn_mask (optional): bool (true
// takes part) or additive of q's dtype, broadcastable to (..., Hq, L, S); it gets no gradient.
// enable_gqa: Hq is a multiple of Hk. A row with no visible key gives zeros.
Tensor sdpa_flash(const Tensor& query, const Tensor& key, const Tensor& value,
                   const Tensor& attn_mask, bool is_causal, double scale, bool enable_gqa);

}  // namespace dc::ops
