"""MultiheadAttention and multi_head_attention_forward (torch.nn's, same parameters and
state_dict keys).

Note [MHA layout]
Inputs arrive as (L, N, E) (torch's default) or (N, L, E) (``batch_first``). The projections
run on that layout as it is: self-attention with packed weights is ONE matmul producing
(.., .., 3E), which a view splits into (3, N, H, L, hd) without a copy; cross-attention with
key is value is two matmuls. The heads go to scaled_dot_product_attention as (N, H, L, hd)
views, its (N, H, L, hd) result is permuted back to the input's layout and goes through
``out_proj``. So the hot path is in_proj, SDPA and out_proj: no loop over heads or time steps,
and no transpose of the inputs for either layout.

Note [MHA masks]
torch.nn's masks say True = masked OUT (SDPA's say True = takes part), or are float and added
to the scores. ``attn_mask`` is (L, S) or (N*H, L, S), viewed as (N, H, L, S); the key padding
mask (N, S) is viewed as (N, 1, 1, S). They are merged by broadcasting into one mask of at
most (N, H, L, S): a logical OR when both are bool (kept bool, so SDPA can take its boolean
path), a sum once either is float (a bool mask then becomes 0 / -inf, torch's canonical
form). ``bias_k``/``bias_v`` and ``add_zero_attn`` each append one key that no mask hides.
With ``need_weights`` the softmax is computed here so the weights can be returned (a row whose
keys are all masked gives NaN there, as torch's); otherwise SDPA computes the attention.
``is_causal`` is a hint that ``attn_mask`` is causal: as torch, without a key padding mask
and without weights the mask is dropped and SDPA applies its causal triangle.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Tuple

from ... import _C, cat
from ..._C import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ._factory import empty_param_data
from .linear import Linear
from .module import Module, _layer_error

__all__ = ["MultiheadAttention", "NonDynamicallyQuantizableLinear",
           "multi_head_attention_forward"]

_BOOL = _C.dtype.bool


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear under torch's name for MultiheadAttention.out_proj (the same layer; the name
    only matters to torch's quantization tooling and to reprs)."""


def _shape(t: Any) -> tuple:
    return tuple(getattr(t, "shape", ()))


def _err(where: str, message: str) -> BaseException:
    return _layer_error(ValueError, f"{where}: {message}")


def _check_inputs(where: str, query: Tensor, key: Tensor, value: Tensor, embed_dim: int,
                  num_heads: int, kdim: int, vdim: int, key_padding_mask: Optional[Tensor],
                  attn_mask: Optional[Tensor]) -> bool:
    """torch's _mha_shape_check plus the feature sizes; returns whether the input is batched."""
    for label, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise _layer_error(TypeError, f"{where}: {label} must be a Tensor, got "
                                          f"{type(t).__name__}")
    q, k, v = _shape(query), _shape(key), _shape(value)
    if len(q) not in (2, 3):
        raise _err(where, f"query should be unbatched 2-D (L, E) or batched 3-D, got shape {q}")
    batched = len(q) == 3
    want = len(q)
    if len(k) != want or len(v) != want:
        raise _err(where, f"key and value must be {want}-D like query {q}, got key {k} and "
                          f"value {v}")
    if q[-1] != embed_dim:
        raise _err(where, f"query {q} has {q[-1]} features, expected embed_dim={embed_dim}")
    if k[-1] != kdim:
        raise _err(where, f"key {k} has {k[-1]} features, expected kdim={kdim}")
    if v[-1] != vdim:
        raise _err(where, f"value {v} has {v[-1]} features, expected vdim={vdim}")
    if k[:-1] != v[:-1]:
        raise _err(where, f"key {k} and value {v} must have the same sequence length and batch")
    for label, m in (("key_padding_mask", key_padding_mask), ("attn_mask", attn_mask)):
        if m is None:
            continue
        if not isinstance(m, Tensor):
            raise _layer_error(TypeError, f"{where}: {label} must be a Tensor, got "
                                          f"{type(m).__name__}")
        if m.dtype != _BOOL and not m.dtype.is_floating_point:
            raise _layer_error(TypeError, f"{where}: only bool and floating {label} are "
                                          f"supported, got {m.dtype}")
    if key_padding_mask is not None and key_padding_mask.dim() != want - 1:
        raise _err(where, f"key_padding_mask {_shape(key_padding_mask)} must be "
                          f"{want - 1}-D for a {want}-D query {q}")
    if attn_mask is not None and attn_mask.dim() not in (2, 3):
        raise _err(where, f"attn_mask {_shape(attn_mask)} must be 2-D (L, S) or 3-D "
                          f"(N*num_heads, L, S)")
    return batched


def _split_heads(x: Tensor, batch_first: bool, num_heads: int) -> Tensor:
    """(N, L, E) or (L, N, E) -> (N, H, L, hd), a view."""
    x = x.unflatten(-1, (num_heads, -1))
    return x.transpose(1, 2) if batch_first else x.permute(1, 2, 0, 3)


def _split_packed(x: Tensor, batch_first: bool, parts: int, num_heads: int) -> Tuple[Tensor]:
    """(.., .., parts*E) -> ``parts`` tensors (N, H, L, hd), views of one projection."""
    x = x.unflatten(-1, (parts, num_heads, -1))
    x = x.permute(2, 0, 3, 1, 4) if batch_first else x.permute(2, 1, 3, 0, 4)
    return x.unbind(0)


def _project(query: Tensor, key: Tensor, value: Tensor, embed_dim: int, num_heads: int,
             in_proj_weight: Optional[Tensor], in_proj_bias: Optional[Tensor],
             q_proj_weight: Optional[Tensor], k_proj_weight: Optional[Tensor],
             v_proj_weight: Optional[Tensor], batch_first: bool) -> Tuple[Tensor, ...]:
    """q, k, v as (N, H, L|S, hd) (Note [MHA layout])."""
    b = in_proj_bias
    if q_proj_weight is None:  # packed (3E, E)
        w = in_proj_weight
        if query is key and key is value:
            return _split_packed(F.linear(query, w, b), batch_first, 3, num_heads)
        w_q, w_kv = w.narrow(0, 0, embed_dim), w.narrow(0, embed_dim, 2 * embed_dim)
        b_q = None if b is None else b.narrow(0, 0, embed_dim)
        b_kv = None if b is None else b.narrow(0, embed_dim, 2 * embed_dim)
        q = _split_heads(F.linear(query, w_q, b_q), batch_first, num_heads)
        if key is value:
            k, v = _split_packed(F.linear(key, w_kv, b_kv), batch_first, 2, num_heads)
            return q, k, v
        w_k, w_v = w_kv.chunk(2, 0)
        b_k, b_v = (None, None) if b is None else b_kv.chunk(2, 0)
    else:
        b_q, b_k, b_v = (None, None, None) if b is None else b.chunk(3, 0)
        q = _split_heads(F.linear(query, q_proj_weight, b_q), batch_first, num_heads)
        w_k, w_v = k_proj_weight, v_proj_weight
    k = _split_heads(F.linear(key, w_k, b_k), batch_first, num_heads)
    v = _split_heads(F.linear(value, w_v, b_v), batch_first, num_heads)
    return q, k, v


def _append_key(mask: Optional[Tensor], extra: int) -> Optional[Tensor]:
    """``extra`` more key columns that no mask hides (False, or 0.0 when additive)."""
    if mask is None or extra == 0:
        return mask
    return F.pad(mask, (0, extra), value=False if mask.dtype == _BOOL else 0.0)


def _additive(mask: Tensor, dtype: Any) -> Tensor:
    if mask.dtype == _BOOL:
        return mask.new_zeros(tuple(mask.shape), dtype=dtype).masked_fill(mask, -math.inf)
    return mask if mask.dtype == dtype else mask.to(dtype)


def _merge_masks(attn_mask: Optional[Tensor], key_padding_mask: Optional[Tensor],
                 dtype: Any) -> Optional[Tensor]:
    """One mask broadcastable to (N, H, L, S): bool masked-out, or additive (Note [MHA masks])."""
    if attn_mask is None and key_padding_mask is None:
        return None
    if key_padding_mask is None or attn_mask is None:
        mask = attn_mask if key_padding_mask is None else key_padding_mask
        return mask if mask.dtype == _BOOL else _additive(mask, dtype)
    if attn_mask.dtype == _BOOL and key_padding_mask.dtype == _BOOL:
        return attn_mask.logical_or(key_padding_mask)
    return _additive(attn_mask, dtype) + _additive(key_padding_mask, dtype)


def _shape_masks(where: str, attn_mask: Optional[Tensor], key_padding_mask: Optional[Tensor],
                 is_causal: bool, n: int, num_heads: int, tgt_len: int, src_len: int,
                 kv_len: int, query: Tensor, key: Tensor) -> Tuple[Optional[Tensor], ...]:
    """Checks the masks' shapes and views them as (N, H, L, S) / (N, 1, 1, S) (Note [MHA
    masks]); ``kv_len`` is the number of keys (static_k's when given)."""
    if key_padding_mask is not None:
        if _shape(key_padding_mask) != (n, kv_len):
            raise _err(where, f"key_padding_mask {_shape(key_padding_mask)} does not match "
                              f"(batch, source length) = {(n, kv_len)}")
        key_padding_mask = key_padding_mask.reshape(n, 1, 1, kv_len)
    if is_causal and attn_mask is None:
        raise _layer_error(RuntimeError, f"{where}: is_causal=True needs attn_mask (the causal "
                                         "mask, e.g. Transformer.generate_square_subsequent_"
                                         "mask); it is a hint about that mask")
    if attn_mask is not None:
        expect = (tgt_len, src_len) if attn_mask.dim() == 2 else (n * num_heads, tgt_len,
                                                                  src_len)
        if _shape(attn_mask) != expect:
            raise _err(where, f"the {attn_mask.dim()}-D attn_mask is {_shape(attn_mask)}, but "
                              f"should be {expect} for query {_shape(query)} and key "
                              f"{_shape(key)} with num_heads={num_heads}")
        if attn_mask.dim() == 3:
            attn_mask = attn_mask.reshape(n, num_heads, tgt_len, src_len)
    return attn_mask, key_padding_mask


def _attend(where: str, query: Tensor, key: Tensor, value: Tensor, num_heads: int,
            in_proj_weight: Optional[Tensor], in_proj_bias: Optional[Tensor],
            bias_k: Optional[Tensor], bias_v: Optional[Tensor], add_zero_attn: bool,
            dropout_p: float, out_proj_weight: Tensor, out_proj_bias: Optional[Tensor],
            training: bool, key_padding_mask: Optional[Tensor], need_weights: bool,
            attn_mask: Optional[Tensor], q_proj_weight: Optional[Tensor],
            k_proj_weight: Optional[Tensor], v_proj_weight: Optional[Tensor],
            static_k: Optional[Tensor], static_v: Optional[Tensor],
            average_attn_weights: bool, is_causal: bool, batch_first: bool,
            embed_dim: int) -> Tuple[Tensor, Optional[Tensor]]:
    """The forward shared by the module and the functional form; errors start with ``where``."""
    if q_proj_weight is None:
        if in_proj_weight is None:
            raise _err(where, "in_proj_weight is None and no separate q/k/v weights were given")
        kdim = vdim = in_proj_weight.shape[1]
    else:
        if k_proj_weight is None or v_proj_weight is None:
            raise _err(where, "separate projection weights need q, k and v weights")
        kdim, vdim = k_proj_weight.shape[1], v_proj_weight.shape[1]
    batched = _check_inputs(where, query, key, value, embed_dim, num_heads, kdim, vdim,
                            key_padding_mask, attn_mask)
    weight = in_proj_weight if q_proj_weight is None else q_proj_weight
    if not query.dtype == key.dtype == value.dtype == weight.dtype:
        raise _layer_error(TypeError, f"{where}: query, key and value ({query.dtype}, "
                                      f"{key.dtype}, {value.dtype}) must have the dtype of "
                                      f"the projection weights ({weight.dtype})")
    if not batched:  # one sequence: a batch of 1 (torch ignores batch_first here)
        batch_first = True
        same_qk, same_kv = query is key, key is value  # keeps the one-matmul paths
        query = query.unsqueeze(0)
        key = query if same_qk else key.unsqueeze(0)
        value = key if same_kv else value.unsqueeze(0)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    n, tgt_len = (query.shape[0], query.shape[1]) if batch_first else (query.shape[1],
                                                                       query.shape[0])
    src_len = key.shape[1] if batch_first else key.shape[0]
    if (key.shape[0] if batch_first else key.shape[1]) != n:
        raise _err(where, f"query {_shape(query)} and key {_shape(key)} have different batch "
                          f"sizes (batch_first={batch_first})")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise _err(where, f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")

    kv_len = src_len if static_k is None or static_k.dim() != 3 else static_k.shape[1]
    attn_mask, key_padding_mask = _shape_masks(where, attn_mask, key_padding_mask, is_causal,
                                               n, num_heads, tgt_len, src_len, kv_len,
                                               query, key)
    sdpa_causal = bool(is_causal) and key_padding_mask is None and not need_weights
    if sdpa_causal:
        attn_mask = None

    q, k, v = _project(query, key, value, embed_dim, num_heads, in_proj_weight, in_proj_bias,
                       q_proj_weight, k_proj_weight, v_proj_weight, batch_first)
    extra = 0
    if bias_k is not None or bias_v is not None:
        if bias_k is None or bias_v is None:
            raise _err(where, "bias_k and bias_v must be given together")
        if static_k is not None or static_v is not None:
            raise _err(where, "bias_k/bias_v cannot be added to static_k/static_v")
        k = cat([k, bias_k.reshape(1, num_heads, 1, head_dim).expand(n, -1, -1, -1)], 2)
        v = cat([v, bias_v.reshape(1, num_heads, 1, head_dim).expand(n, -1, -1, -1)], 2)
        extra += 1
    for label, static in (("static_k", static_k), ("static_v", static_v)):
        if static is not None and (static.dim() != 3 or static.shape[0] != n * num_heads
                                   or static.shape[2] != head_dim):
            raise _err(where, f"{label} {_shape(static)} must be (N*num_heads, S, head_dim) = "
                              f"({n * num_heads}, S, {head_dim})")
    if static_k is not None:
        k = static_k.reshape(n, num_heads, -1, head_dim)
    if static_v is not None:
        v = static_v.reshape(n, num_heads, -1, head_dim)
    if add_zero_attn:
        k = cat([k, k.new_zeros((n, num_heads, 1, head_dim))], 2)
        v = cat([v, v.new_zeros((n, num_heads, 1, head_dim))], 2)
        extra += 1
    mask = _merge_masks(_append_key(attn_mask, extra), _append_key(key_padding_mask, extra),
                        q.dtype)
    if mask is not None and mask.shape[-1] != k.shape[2]:
        raise _err(where, f"the masks cover {mask.shape[-1]} keys but there are {k.shape[2]} "
                          "(static_k changes the source length; masks must match it)")
    dropout_p = float(dropout_p) if training else 0.0

    weights = None
    if need_weights:
        scores = (q * math.sqrt(1.0 / head_dim)).matmul(k.transpose(-2, -1))
        if mask is not None:
            scores = (scores.masked_fill(mask, -math.inf) if mask.dtype == _BOOL
                      else scores + mask)
        weights = F.softmax(scores, -1)
        if dropout_p > 0.0:
            weights = F.dropout(weights, dropout_p, True)
        out = weights.matmul(v)
        if average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            weights = weights.squeeze(0)
    else:
        sdpa_mask = mask.logical_not() if mask is not None and mask.dtype == _BOOL else mask
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=sdpa_mask,
                                             dropout_p=dropout_p, is_causal=sdpa_causal)
    # (N, H, L, hd) -> the input's layout (N, L, E) or (L, N, E), then out_proj.
    out = out.transpose(1, 2) if batch_first else out.permute(2, 0, 1, 3)
    out = F.linear(out.flatten(-2), out_proj_weight, out_proj_bias)
    return (out if batched else out.squeeze(0)), weights


def multi_head_attention_forward(
        query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
        in_proj_weight: Optional[Tensor], in_proj_bias: Optional[Tensor],
        bias_k: Optional[Tensor], bias_v: Optional[Tensor], add_zero_attn: bool,
        dropout_p: float, out_proj_weight: Tensor, out_proj_bias: Optional[Tensor],
        training: bool = True, key_padding_mask: Optional[Tensor] = None,
        need_weights: bool = True, attn_mask: Optional[Tensor] = None,
        use_separate_proj_weight: bool = False, q_proj_weight: Optional[Tensor] = None,
        k_proj_weight: Optional[Tensor] = None, v_proj_weight: Optional[Tensor] = None,
        static_k: Optional[Tensor] = None, static_v: Optional[Tensor] = None,
        average_attn_weights: bool = True,
        is_causal: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
    """torch.nn.functional.multi_head_attention_forward: query (L, N, E), key (S, N, Ek),
    value (S, N, Ev) (or unbatched (L, E) ...) -> (attn_output (L, N, E), attn_weights
    (N, L, S) averaged over heads, (N, H, L, S) if not ``average_attn_weights``, or None)."""
    if not use_separate_proj_weight:
        q_proj_weight = k_proj_weight = v_proj_weight = None
    elif q_proj_weight is None:
        raise _err("[multi_head_attention_forward]",
                   "use_separate_proj_weight=True needs q_proj_weight, k_proj_weight and "
                   "v_proj_weight")
    return _attend("[multi_head_attention_forward]", query, key, value, num_heads,
                   in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
                   out_proj_weight, out_proj_bias, training, key_padding_mask, need_weights,
                   attn_mask, q_proj_weight, k_proj_weight, v_proj_weight, static_k, static_v,
                   average_attn_weights, is_causal, False, embed_dim_to_check)


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention: softmax(Q K^T / sqrt(hd) + mask) V over ``num_heads``
    heads of size embed_dim // num_heads, between an input projection and ``out_proj``.

    Parameters (torch's names and layouts): ``in_proj_weight`` (3E, E) when kdim == vdim ==
    embed_dim, else ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim), ``v_proj_weight``
    (E, vdim); ``in_proj_bias`` (3E); ``bias_k``/``bias_v`` (1, 1, E) with ``add_bias_kv``;
    ``out_proj`` (Linear E->E). Initialisation (torch's): xavier_uniform_ projections, zero
    biases, xavier_normal_ bias_k/bias_v. See Note [MHA layout] and Note [MHA masks].
    """

    __constants__ = ["batch_first"]
    bias_k: Optional[Tensor]
    bias_v: Optional[Tensor]

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: Optional[int] = None, vdim: Optional[int] = None,
                 batch_first: bool = False, device: Any = None, dtype: Any = None) -> None:
        name = f"MultiheadAttention(embed_dim={embed_dim}, num_heads={num_heads})"
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"{name}: embed_dim and num_heads must be greater than 0")
        if embed_dim % num_heads != 0:
            raise ValueError(f"{name}: embed_dim {embed_dim} must be divisible by num_heads "
                             f"{num_heads}")
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads

        def param(*shape: int) -> Parameter:
            return Parameter(empty_param_data(shape, device, dtype))

        if self._qkv_same_embed_dim:
            self.in_proj_weight = param(3 * embed_dim, embed_dim)
            for unused in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(unused, None)
        else:
            self.q_proj_weight = param(embed_dim, embed_dim)
            self.k_proj_weight = param(embed_dim, self.kdim)
            self.v_proj_weight = param(embed_dim, self.vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = param(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias,
                                                        device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = param(1, 1, embed_dim)
            self.bias_v = param(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Optional[Tensor] = None, need_weights: bool = True,
                attn_mask: Optional[Tensor] = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        """query (L, N, E) / (N, L, E) with batch_first / (L, E) unbatched; key and value
        (S, N, kdim|vdim) likewise. Returns (attn_output shaped like query, attn_weights
        (N, L, S), (N, H, L, S) if not ``average_attn_weights``, or None)."""
        # With packed weights q/k/v_proj_weight are registered as None.
        return _attend(self._short_description(), query, key, value, self.num_heads,
                       self.in_proj_weight, self.in_proj_bias, self.bias_k, self.bias_v,
                       self.add_zero_attn, self.dropout, self.out_proj.weight,
                       self.out_proj.bias, self.training, key_padding_mask, need_weights,
                       attn_mask, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight,
                       None, None, average_attn_weights, is_causal, self.batch_first,
                       self.embed_dim)

    def _short_description(self) -> str:
        kv = "" if self._qkv_same_embed_dim else f", kdim={self.kdim}, vdim={self.vdim}"
        return (f"MultiheadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads}"
                f"{kv})")
