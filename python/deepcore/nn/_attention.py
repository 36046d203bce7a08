"""scaled_dot_product_attention: argument checks, masks and grouped-query heads.

softmax(q @ k^T * scale + mask) @ v over the last two dims; every leading dim is a batch dim
and broadcasts. ``attn_mask`` is boolean (True takes part) or additive (float, added to the
scores); ``is_causal`` keeps key j for query i when j <= i (the top-left triangle, as torch).
A query row whose keys are all masked out gives zeros (and zero gradients), as in torch.

Note [SDPA paths]
Two implementations compute the same function:
  - the fused kernel `_C._sdpa_flash` (csrc/ops/attention.cpp; Note [Flash attention on the
    CPU] in csrc/kernels/cpu/vec/attention_kernels.cpp): tiled, online softmax, memory linear
    in L (it keeps one logsumexp per query row for backward, never the L x S scores), grouped
    heads read in place, masks read through their broadcast strides. dropout_p > 0 is applied
    inside it: each call draws one seed and offset from the default generator, the kernel
    decides keep/drop for entry (slab, i, j) from a Philox value at a counter of (slab, i, j),
    and backward recomputes the same mask tile by tile, so dropout stores nothing either (Note
    [Dropout inside flash attention] in attention_kernels.cpp). Its backward is a fused kernel
    too; when the backward itself is differentiated (create_graph=True) the recorded
    derivative switches to the same formula in differentiable ops, so higher-order gradients
    stay right (Note [Fused backward with a composite fallback] in csrc/ops/softmax.cpp).
  - the composite `_math` below (matmul, masked softmax, matmul), which materialises the
    scores. It serves what the kernel does not: dtypes other than float32 and float64 (except
    bfloat16/float16 on a GPU when no gradient is needed: a tensor-core forward, Note [Flash
    attention on tensor cores] in csrc/kernels/cuda/attention_tc.cu, serves those; with
    dropout_p > 0 the mask is then drawn by _C.dropout on the probabilities, a different
    stream from the kernel's), a float attn_mask that requires grad (its gradient is the
    L x S score gradient, which the kernel never forms), key and value whose leading dims
    differ (they only broadcast), and an attn_mask with more dims than the scores.
    `_use_kernel` decides.
"""
from __future__ import annotations

import math
from typing import Optional

from .. import _C
from .._C import Tensor
from .._C import dtype as _dtype

_BOOL = _dtype.bool

__all__ = ["scaled_dot_product_attention"]


def _shape(t: Tensor) -> tuple:
    return tuple(t.shape)


def _broadcast_batch(name: str, a: tuple, b: tuple, what: str) -> None:
    for x, y in zip(reversed(a), reversed(b)):
        if x != y and x != 1 and y != 1:
            raise ValueError(f"[{name}] {what} do not broadcast: {a} and {b}")


def _check(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor],
           dropout_p: float, enable_gqa: bool) -> None:
    name = "scaled_dot_product_attention"
    for label, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"[{name}] {label} must be a Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"[{name}] {label} must have at least 2 dims (..., L, E), "
                             f"got shape {_shape(t)}")
        if not t.dtype.is_floating_point:
            raise TypeError(f"[{name}] expected floating-point query, key and value, got "
                            f"{label} of dtype {t.dtype}")
    if not query.dtype == key.dtype == value.dtype:
        raise TypeError(f"[{name}] query, key and value must have the same dtype, got "
                        f"{query.dtype}, {key.dtype} and {value.dtype}")
    q, k, v = _shape(query), _shape(key), _shape(value)
    if q[-1] != k[-1]:
        raise ValueError(f"[{name}] query and key must have the same embedding size, got "
                         f"query {q} and key {k}")
    if k[-2] != v[-2]:
        raise ValueError(f"[{name}] key and value must have the same sequence length, got "
                         f"key {k} and value {v}")
    _broadcast_batch(name, k[:-2], v[:-2], "the batch dims of key and value")
    if enable_gqa and query.dim() >= 3:
        hq, hk = q[-3], k[-3]
        if hk == 0 or hq % hk != 0 or v[-3] != hk:
            raise ValueError(f"[{name}] enable_gqa=True needs the query heads ({hq}) to be a "
                             f"multiple of the key/value heads, got query {q}, key {k}, "
                             f"value {v}")
        _broadcast_batch(name, q[:-3], k[:-3], "the batch dims of query and key")
    else:
        _broadcast_batch(name, q[:-2], k[:-2], "the batch dims of query and key")
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            raise TypeError(f"[{name}] attn_mask must be a Tensor, got "
                            f"{type(attn_mask).__name__}")
        if attn_mask.dtype != _BOOL and attn_mask.dtype != query.dtype:
            raise TypeError(f"[{name}] attn_mask must be bool or of the query's dtype "
                            f"({query.dtype}), got {attn_mask.dtype}")
        _broadcast_batch(name, _shape(attn_mask), q[:-1] + (k[-2],),
                         "attn_mask and the attention scores (..., L, S)")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"[{name}] dropout_p must be in [0, 1], got {dropout_p}")


def _repeat_heads(t: Tensor, groups: int) -> Tensor:
    """(..., Hk, S, E) -> (..., Hk * groups, S, E), each head repeated ``groups`` times."""
    if groups == 1:
        return t
    s = list(t.shape)
    expanded = _C.unsqueeze(t, -3).expand(*s[:-2], groups, *s[-2:])
    return _C._reshape(expanded, s[:-3] + [s[-3] * groups] + s[-2:])


def _causal_mask(L: int, S: int) -> Tensor:
    return _C.tril(_C._full([L, S], True, _BOOL, False))


def _math(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor],
          dropout_p: float, is_causal: bool, scale: float) -> Tensor:
    """The composite path: differentiable ops only (Note [SDPA paths])."""
    L, S = query.shape[-2], key.shape[-2]
    scores = _C.mul(_C.matmul(query, _C.transpose(key, -2, -1)), scale)
    keep = None  # bool: True where a key takes part
    if is_causal:
        keep = _causal_mask(L, S)
    if attn_mask is not None:
        if attn_mask.dtype == _BOOL:
            keep = attn_mask if keep is None else _C.logical_and(keep, attn_mask)
        else:
            scores = _C.add(scores, attn_mask)
    if keep is not None:
        scores = _C.masked_fill(scores, _C.logical_not(keep), -math.inf)
    # Rows with every key masked: softmax over finite zeros, then zeroed (torch's result).
    dead = _C.eq(_C.amax(scores, [-1], True), -math.inf)
    scores = _C.masked_fill(scores, dead, 0.0)
    attn = _C.masked_fill(_C.softmax(scores, -1), dead, 0.0)
    if dropout_p > 0.0:
        attn = _C.dropout(attn, dropout_p, True)
    return _C.matmul(attn, value)


def _use_kernel(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor]) -> bool:
    """Whether the fused kernel serves this call (Note [SDPA paths])."""
    if _shape(key)[:-2] != _shape(value)[:-2]:
        return False
    if query.dtype not in (_dtype.float32, _dtype.float64):
        # bfloat16/float16: the tensor-core forward on a GPU (no backward yet), for calls that
        # need no gradient. The fake device serves the cpu kernels, which take neither.
        from .. import cuda
        needs_grad = _C.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (query, key, value, attn_mask))
        on_gpu = query.is_cuda and not cuda._fake()
        if query.dtype not in (_dtype.bfloat16, _dtype.float16) or not on_gpu or needs_grad:
            return False
    if attn_mask is not None:
        if attn_mask.dim() > max(query.dim(), key.dim()):
            return False
        if attn_mask.dtype != _BOOL and attn_mask.requires_grad and _C.is_grad_enabled():
            return False
    return True


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Optional[Tensor] = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: Optional[float] = None,
                                 enable_gqa: bool = False) -> Tensor:
    """torch.nn.functional.scaled_dot_product_attention.

    query (..., Hq, L, E), key (..., Hk, S, E), value (..., Hk, S, Ev) -> (..., Hq, L, Ev).
    ``scale`` defaults to 1/sqrt(E). With ``enable_gqa``, Hq is a multiple of Hk and each
    key/value head serves Hq/Hk query heads.
    """
    dropout_p = float(dropout_p)
    if attn_mask is not None and is_causal:
        raise ValueError("[scaled_dot_product_attention] pass either attn_mask or "
                         "is_causal=True, not both (combine the causal triangle into the mask)")
    _check(query, key, value, attn_mask, dropout_p, enable_gqa)
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1]) if query.shape[-1] > 0 else 1.0
    if _use_kernel(query, key, value, attn_mask):
        return _C._sdpa_flash(query, key, value, attn_mask, bool(is_causal), float(scale),
                              bool(enable_gqa), dropout_p)
    if enable_gqa and query.dim() >= 3 and query.shape[-3] != key.shape[-3]:
        groups = query.shape[-3] // key.shape[-3]
        key, value = _repeat_heads(key, groups), _repeat_heads(value, groups)
    return _math(query, key, value, attn_mask, dropout_p, bool(is_causal), float(scale))
