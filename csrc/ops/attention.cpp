// _sdpa_flash: the fused attention kernel behind F.scaled_dot_product_attention, with its
// derivative (fused kernel; composite ops when a graph is built through the backward, Note
// [Fused backward with a composite fallback] in softmax.cpp). Kernel design: Note [Flash
// attention on the CPU] in kernels/cpu/vec/attention_kernels.cpp. Which calls reach it:
// Note [SDPA paths] in python/deepcore/nn/_attention.py.
#include "ops/attention.h"

#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/rng.h"
#include "dispatch/kernels.h"
#include "kernels/cpu/attention.h"
#include "ops/ops.h"

namespace dc::ops {

using autograd::GradCtx;

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

Shape batch_dims(const Tensor& t) { return Shape(t.sizes().begin(), t.sizes().end() - 2); }

// The tensor with a unit stride along its last dim (the kernel reads rows in place).
Tensor unit_rows(const Tensor& t) {
  if (t.sizes().back() <= 1 || t.stride(-1) == 1) return t;
  autograd::GradModeGuard off(false);
  return contiguous_clone(t);
}

// Query heads per key/value head, or 1 when the heads are not grouped.
int64_t gqa_groups(const Tensor& q, const Tensor& k, bool enable_gqa) {
  if (!enable_gqa || q.dim() < 3 || k.dim() < 3) return 1;
  const int64_t hq = q.sizes()[q.dim() - 3], hk = k.sizes()[k.dim() - 3];
  DC_CHECK(hk > 0 && hq % hk == 0, ValueError, "[", kOp, "] enable_gqa=True needs the query "
           "heads (", hq, ") to be a multiple of the key/value heads (", hk, "), got query ",
           q.shape_str(), " and key ", k.shape_str());
  return hq / hk;
}

bool sixteen_bit(DType t) { return t == DType::BFloat16 || t == DType::Float16; }

void check_args(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                bool is_causal) {
  for (const Tensor* t : {&q, &k, &v}) {
    DC_CHECK(t->dim() >= 2, ValueError, "[", kOp, "] query, key and value need at least 2 dims "
             "(..., L, E), got query ", q.shape_str(), ", key ", k.shape_str(), ", value ",
             v.shape_str());
    DC_CHECK(t->dtype() == DType::Float32 || t->dtype() == DType::Float64 ||
                 (sixteen_bit(t->dtype()) && t->device().type == DeviceType::CUDA),
             TypeError, "[", kOp, "] expected float32 or float64 query, key and value (or "
             "bfloat16/float16 on CUDA), got ", dtype_name(t->dtype()), " on ", t->device().str());
  }
  // The tensor-core kernel for 16-bit operands (kernels/cuda/attention_tc.cu) has no backward
  // yet: deepcore.nn.functional sends a 16-bit call here only when no gradient is needed.
  DC_CHECK(!sixteen_bit(q.dtype()) || !autograd::any_requires_grad({&q, &k, &v, &mask}),
           NotImplementedError, "[", kOp, "] the fused bfloat16/float16 kernel has no backward "
           "yet; the composite path serves calls that need gradients");
  DC_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), TypeError, "[", kOp,
           "] query, key and value must have the same dtype, got ", dtype_name(q.dtype()), ", ",
           dtype_name(k.dtype()), " and ", dtype_name(v.dtype()));
  DC_CHECK(q.sizes().back() == k.sizes().back(), ValueError, "[", kOp, "] query and key must "
           "have the same embedding size, got query ", q.shape_str(), " and key ", k.shape_str());
  DC_CHECK(k.sizes()[k.dim() - 2] == v.sizes()[v.dim() - 2] && batch_dims(k) == batch_dims(v),
           ValueError, "[", kOp, "] the fused kernel needs key and value of the same leading "
           "dims and length, got key ", k.shape_str(), " and value ", v.shape_str());
  if (mask.defined()) {
    DC_CHECK(mask.dtype() == DType::Bool || mask.dtype() == q.dtype(), TypeError, "[", kOp,
             "] attn_mask must be bool or of the query's dtype (", dtype_name(q.dtype()),
             "), got ", dtype_name(mask.dtype()));
    DC_CHECK(!is_causal, ValueError, "[", kOp, "] pass either attn_mask or is_causal=True, "
             "not both");
  }
}

// Resolves broadcasting and grouped heads into per-slab offsets (cpu::AttentionGeom). q, k, v
// have unit strides along their last dim. `out_batch` receives the output's leading dims.
cpu::AttentionGeom make_geom(const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& mask, bool is_causal, double scale, int64_t groups,
                             Shape& out_batch) {
  const Shape qb = batch_dims(q), kb = batch_dims(k);
  Shape kq = kb;  // k's leading dims as the query sees them (grouped heads widened)
  if (groups > 1) kq.back() *= groups;
  const size_t nb = std::max(qb.size(), kq.size());
  out_batch.assign(nb, 1);
  for (size_t d = 0; d < nb; ++d) {
    const int64_t a = d + qb.size() >= nb ? qb[d + qb.size() - nb] : 1;
    const int64_t b = d + kq.size() >= nb ? kq[d + kq.size() - nb] : 1;
    DC_CHECK(a == b || a == 1 || b == 1, ValueError, "[", kOp, "] the leading dims of query ",
             q.shape_str(), " and key ", k.shape_str(), " do not broadcast");
    out_batch[d] = a == 1 ? b : a;
  }
  cpu::AttentionGeom g;
  g.L = q.sizes()[q.dim() - 2];
  g.S = k.sizes()[k.dim() - 2];
  g.E = q.sizes().back();
  g.Ev = v.sizes().back();
  g.q_rs = q.stride(-2), g.k_rs = k.stride(-2), g.v_rs = v.stride(-2);
  g.causal = is_causal;
  g.scale = scale;
  g.batch = 1;
  for (int64_t s : out_batch) g.batch *= s;
  g.kv_batch = 1;
  for (int64_t s : kb) g.kv_batch *= s;
  if (mask.defined()) {
    g.mask = mask.dtype() == DType::Bool ? cpu::AttentionMask::keep : cpu::AttentionMask::additive;
    Shape full = out_batch;
    full.push_back(g.L);
    full.push_back(g.S);
    DC_CHECK(static_cast<size_t>(mask.dim()) <= full.size(), ValueError, "[", kOp,
             "] attn_mask ", mask.shape_str(), " has more dims than the attention scores ",
             shape_str(full));
    for (int64_t d = 0; d < mask.dim(); ++d) {
      const int64_t m = mask.sizes()[d], f = full[full.size() - mask.dim() + d];
      DC_CHECK(m == f || m == 1, ValueError, "[", kOp, "] attn_mask ", mask.shape_str(),
               " does not broadcast to the attention scores ", shape_str(full));
    }
    auto mstride = [&](int64_t from_end) {  // 1: S, 2: L
      return mask.dim() >= from_end && mask.sizes()[mask.dim() - from_end] > 1
                 ? mask.stride(-from_end) : 0;
    };
    g.m_rs = mstride(2);
    g.m_cs = mstride(1);
  }
  // Walk the output's leading dims; each operand indexes its own (aligned right, size 1
  // broadcasting; k and v see head h of a group as h / groups).
  g.q_off.resize(g.batch), g.k_off.resize(g.batch), g.v_off.resize(g.batch);
  g.m_off.assign(g.batch, 0), g.kv_index.resize(g.batch);
  Shape idx(nb, 0);
  for (int64_t b = 0; b < g.batch; ++b) {
    int64_t qo = 0, ko = 0, vo = 0, mo = 0, kvi = 0;
    for (size_t d = 0; d < nb; ++d) {
      const int64_t i = idx[d];
      if (d + qb.size() >= nb) {
        const int64_t qd = d + qb.size() - nb;
        if (qb[qd] > 1) qo += i * q.stride(qd);
      }
      if (d + kb.size() >= nb) {
        const int64_t kd = d + kb.size() - nb;
        const int64_t ki = kb[kd] == 1 ? 0 : (groups > 1 && d == nb - 1 ? i / groups : i);
        ko += ki * k.stride(kd);
        vo += ki * v.stride(kd);
        kvi = kvi * kb[kd] + ki;
      }
      if (mask.defined() && d + mask.dim() >= nb + 2) {
        const int64_t md = d + mask.dim() - nb - 2;
        if (mask.sizes()[md] > 1) mo += i * mask.stride(md);
      }
    }
    g.q_off[b] = qo, g.k_off[b] = ko, g.v_off[b] = vo, g.m_off[b] = mo, g.kv_index[b] = kvi;
    for (size_t d = nb; d-- > 0;) {  // next multi-index
      if (++idx[d] < out_batch[d]) break;
      idx[d] = 0;
    }
  }
  return g;
}

// k (..., Hk, S, E) -> (..., Hk * groups, S, E), each head repeated (composite path only).
Tensor repeat_heads(const Tensor& t, int64_t groups) {
  if (groups == 1) return t;
  Shape s = t.sizes(), e = t.sizes();
  e.insert(e.end() - 2, groups);
  Shape r = s;
  r[r.size() - 3] *= groups;
  return reshape(expand(unsqueeze(t, -3), e), r);
}

// The derivative written with differentiable ops, for backward passes that build a graph:
// the probabilities are recomputed as the composite forward (_math in _attention.py) does.
// `drop` (..., L, S): the dropout factors of the forward (sdpa_dropout_mask), or undefined.
tensor_list composite_backward(const Tensor& g, const Tensor& q, const Tensor& k,
                               const Tensor& v, const Tensor& mask, bool is_causal,
                               double scale, int64_t groups, const Tensor& drop) {
  const Tensor kk = repeat_heads(k, groups), vv = repeat_heads(v, groups);
  const int64_t L = q.sizes()[q.dim() - 2], S = k.sizes()[k.dim() - 2];
  Tensor s = matmul(q, transpose(kk, -2, -1)) * scale;
  Tensor keep;
  if (is_causal) keep = tril(full({L, S}, Scalar(true), DType::Bool));
  if (mask.defined() && mask.dtype() == DType::Bool) keep = mask;
  if (mask.defined() && mask.dtype() != DType::Bool) s = s + mask;
  const Tensor ninf = wrap_scalar(-std::numeric_limits<double>::infinity());
  if (keep.defined()) s = masked_fill(s, logical_not(keep), ninf);
  const Tensor dead = eq(amax(s, {-1}, true), ninf);
  const Tensor p = masked_fill(softmax(masked_fill(s, dead, wrap_scalar(0.0)), -1), dead,
                               wrap_scalar(0.0));
  // With dropout the output is (p * drop) v: dv reads the dropped p, and dp (the gradient of
  // p) is that of the dropped p times drop.
  const Tensor pd = drop.defined() ? p * drop : p;
  Tensor dp = matmul(g, transpose(vv, -2, -1));
  if (drop.defined()) dp = dp * drop;
  const Tensor ds = p * (dp - sum(dp * p, {-1}, true));
  Tensor dq = sum_to(matmul(ds, kk) * scale, q.sizes());
  Tensor dk = sum_to(matmul(transpose(ds, -2, -1), q) * scale, kk.sizes());
  Tensor dv = sum_to(matmul(transpose(pd, -2, -1), g), vv.sizes());
  if (groups > 1) {  // sum over the query heads of each group
    Shape split = k.sizes();
    split.insert(split.end() - 2, groups);
    dk = sum(reshape(dk, split), {-3});
    Shape vsplit = v.sizes();
    vsplit.insert(vsplit.end() - 2, groups);
    dv = sum(reshape(dv, vsplit), {-3});
  }
  return {dq, dk, dv};
}

}  // namespace

Tensor sdpa_flash(const Tensor& query, const Tensor& key, const Tensor& value,
                   const Tensor& attn_mask, bool is_causal, double scale, bool enable_gqa,
                   double dropout_p) {
  DC_OP_GUARD("_sdpa_flash", query, key, value, attn_mask);
  check_args(query, key, value, attn_mask, is_causal);
  DC_CHECK(dropout_p >= 0.0 && dropout_p <= 1.0, ValueError, "[", kOp, "] dropout_p must be "
           "in [0, 1], got ", dropout_p);
  const int64_t groups = gqa_groups(query, key, enable_gqa);
  const Tensor q = unit_rows(query), k = unit_rows(key), v = unit_rows(value);
  Shape out_batch;
  cpu::AttentionGeom g = make_geom(q, k, v, attn_mask, is_causal, scale, groups, out_batch);
  // One draw of the generator per call, as every random op (Note [Random streams]); the
  // backward recomputes the mask from the same seed and offset.
  uint64_t seed = 0, offset = 0;
  if (dropout_p > 0.0) {
    Generator& gen = default_generator();
    seed = gen.seed;
    offset = gen.reserve(g.dropout_counters());
    g.dropout_p = dropout_p, g.seed = seed, g.offset = offset;
  }
  Shape out_shape = out_batch, lse_shape = out_batch;
  out_shape.push_back(g.L);
  out_shape.push_back(g.Ev);
  lse_shape.push_back(g.L);
  Tensor out = Tensor::empty(out_shape, q.dtype());
  // a 16-bit logsumexp near 10 would be off by up to 3% once exponentiated: keep it in float32
  Tensor lse = Tensor::empty(lse_shape, sixteen_bit(q.dtype()) ? DType::Float32 : q.dtype());
  DC_KERNEL(sdpa_flash_forward)(g, q, k, v, attn_mask, out, lse);
  // Two GEMMs per visible score: q k^T and p v (about half the scores with is_causal).
  const double visible = is_causal ? 0.5 : 1.0;
  dispatch::add_flops(2.0 * visible * g.batch * g.L * g.S * (g.E + g.Ev));
  autograd::record(
      "scaled_dot_product_attention", {query, key, value}, {out},
      [is_causal, scale, groups, dropout_p, seed, offset](GradCtx& c) -> tensor_list {
        const Tensor qs = c.saved(0), ks = c.saved(1), vs = c.saved(2), mask = c.saved(3);
        const Tensor out = c.saved(4), lse = c.saved(5);
        const Tensor& gr = c.grad();
        const Tensor q = unit_rows(qs), k = unit_rows(ks), v = unit_rows(vs);
        Shape ob;
        cpu::AttentionGeom g = make_geom(q, k, v, mask, is_causal, scale, groups, ob);
        g.dropout_p = dropout_p, g.seed = seed, g.offset = offset;
        if (autograd::any_requires_grad({&gr, &qs, &ks, &vs, &mask})) {
          Tensor drop;  // the forward's mask, materialised: this path forms L x S tensors anyway
          if (dropout_p > 0.0) {
            Shape ds = ob;
            ds.push_back(g.L);
            ds.push_back(g.S);
            drop = Tensor::empty(ds, q.dtype());
            DC_KERNEL(sdpa_dropout_mask)(g, drop);
          }
          return composite_backward(gr, qs, ks, vs, mask, is_causal, scale, groups, drop);
        }
        Tensor dout = to_dtype(gr, q.dtype());
        if (!dout.is_contiguous()) dout = contiguous_clone(dout);
        Shape dq_shape = ob;
        dq_shape.push_back(g.L);
        dq_shape.push_back(g.E);
        Tensor dq = Tensor::empty(dq_shape, q.dtype());
        Tensor dk = Tensor::empty(k.sizes(), k.dtype());
        Tensor dv = Tensor::empty(v.sizes(), v.dtype());
        DC_KERNEL(sdpa_flash_backward)(g, q, k, v, mask, out, lse, dout, dq, dk, dv);
        dispatch::add_flops(5.0 * (is_causal ? 0.5 : 1.0) * g.batch * g.L * g.S * g.E);
        return {c.needs(0) ? sum_to(dq, qs.sizes()) : Tensor(), c.needs(1) ? dk : Tensor(),
                c.needs(2) ? dv : Tensor()};
      },
      {query, key, value, attn_mask, out, lse});
  return out;
}

}  // namespace dc::ops
