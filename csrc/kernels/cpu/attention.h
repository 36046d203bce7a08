#pragma once
// Fused (flash-style) scaled dot-product attention, forward and backward. Kernels only compute:
// the op layer (csrc/ops/attention.cpp) checks arguments, resolves broadcasting and grouped
// heads into per-slab offsets (AttentionGeom) and records autograd. Design: Note [Flash
// attention on the CPU] in csrc/kernels/cpu/vec/attention_kernels.cpp.
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace dc::cpu {

enum class AttentionMask { none, keep, additive };  // keep: bool, true takes part

// One call's geometry. The output has `batch` slabs (every leading dim and the query heads,
// flattened); slab b reads
//   q[L, E]  at q.data + q_off[b], rows q_rs apart, unit column stride
//   k[S, E]  at k.data + k_off[b], rows k_rs apart        (the same for every query head of a
//   v[S, Ev] at v.data + v_off[b], rows v_rs apart         key/value slab: no copy for GQA)
//   mask[L, S] at mask.data + m_off[b], strides (m_rs, m_cs), 0 where it broadcasts
// kv_index[b] in [0, kv_batch) names the key/value slab, so gradients of k and v (written as
// kv_batch contiguous slabs) sum over every query head and broadcast batch that reads it.
struct AttentionGeom {
  int64_t batch = 0, kv_batch = 0;
  int64_t L = 0, S = 0, E = 0, Ev = 0;
  std::vector<int64_t> q_off, k_off, v_off, m_off, kv_index;
  int64_t q_rs = 0, k_rs = 0, v_rs = 0, m_rs = 0, m_cs = 0;
  AttentionMask mask = AttentionMask::none;
  bool causal = false;  // key j visible to query i when j <= i (top-left aligned)
  double scale = 1.0;
  // Dropout on the probabilities, 0 <= dropout_p <= 1 (0: none): entry (b, i, j) is kept when
  // the Philox draw at (seed, offset + attention_dropout_counter(b * L + i, j)) says so (Note
  // [Dropout inside flash attention] in kernels/cpu/vec/attention_kernels.cpp).
  double dropout_p = 0.0;
  uint64_t seed = 0, offset = 0;
  // Counters one call reserves from the generator: every row of every slab.
  uint64_t dropout_counters() const;
};

// Philox counters per query row: 16 per 64 keys (one philox16 block of 64 draws).
inline uint64_t attention_dropout_row_counters(int64_t S) {
  return static_cast<uint64_t>((S + 63) / 64) * 16;
}
inline uint64_t AttentionGeom::dropout_counters() const {
  return static_cast<uint64_t>(batch) * static_cast<uint64_t>(L) *
         attention_dropout_row_counters(S);
}

// out[batch, L, Ev] (contiguous) = (softmax(q k^T * scale + mask) * drop) v per slab, drop the
// dropout factor (1 without dropout, see sdpa_dropout_mask); lse[batch, L] = the row's
// logsumexp of the masked scores (dropout does not enter it), +inf for a row with no key (its
// output is 0). float32 / float64; mask: bool or the dtype of q (unread when none).
void sdpa_flash_forward(const AttentionGeom& g, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& mask, const Tensor& out,
                        const Tensor& lse);
// Given dout[batch, L, Ev] (contiguous) and the forward's out and lse:
// dq[batch, L, E], dk[kv_batch, S, E], dv[kv_batch, S, Ev], all contiguous and overwritten.
void sdpa_flash_backward(const AttentionGeom& g, const Tensor& q, const Tensor& k,
                         const Tensor& v, const Tensor& mask, const Tensor& out,
                         const Tensor& lse, const Tensor& dout, const Tensor& dq,
                         const Tensor& dk, const Tensor& dv);

// drop[batch, L, S] (contiguous, the dtype of q) = the dropout factor the kernels apply to
// each probability: 1 / (1 - dropout_p) where kept, else 0. Only for the composite backward
// (create_graph=True), which needs the mask as a tensor; g.dropout_p > 0.
void sdpa_dropout_mask(const AttentionGeom& g, const Tensor& drop);

// The per-ISA builds (csrc/kernels/cpu/vec/attention_kernels.cpp).
#define DC_ATTENTION_ISA_DECLS                                                               \
  void sdpa_flash_forward(const AttentionGeom& g, const Tensor& q, const Tensor& k,        \
                          const Tensor& v, const Tensor& mask, const Tensor& out,          \
                          const Tensor& lse);                                              \
  void sdpa_flash_backward(const AttentionGeom& g, const Tensor& q, const Tensor& k,       \
                           const Tensor& v, const Tensor& mask, const Tensor& out,         \
                           const Tensor& lse, const Tensor& dout, const Tensor& dq,        \
                           const Tensor& dk, const Tensor& dv);                            \
  void sdpa_dropout_mask(const AttentionGeom& g, const Tensor& drop);
namespace avx512 { DC_ATTENTION_ISA_DECLS }
namespace avx2 { DC_ATTENTION_ISA_DECLS }
namespace generic { DC_ATTENTION_ISA_DECLS }
#undef DC_ATTENTION_ISA_DECLS

}  // namespace dc::cpu
