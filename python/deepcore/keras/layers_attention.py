"""Keras' MultiHeadAttention on deepcore.

Weights keep Keras' names and layouts, so ``get_weights`` / ``set_weights`` exchange arrays
with Keras 3 unchanged: ``query/kernel`` (dim, heads, key_dim), ``query/bias`` (heads,
key_dim), the same for ``key`` and ``value`` (value_dim), and ``attention_output/kernel``
(heads, value_dim, out_dim) with ``attention_output/bias`` (out_dim,). The projections run as
single matmuls over the flattened (heads * dim) axis.

Masks follow Keras: ``attention_mask`` (B, T, S) is True (or 1) where a query may attend to a
key; masked scores get Keras' large negative number before the softmax, so a query whose keys
are all masked attends uniformly, as in Keras.
"""
from __future__ import annotations

import math
from typing import Optional

import deepcore as dc
import deepcore.nn.functional as F
from .. import nn
from .layers import KerasTensor, Layer, _weight, register
from .mixed_precision import AutocastVariables

__all__ = ["MultiHeadAttention"]


class _Projection(AutocastVariables, nn.Module):
    """``kernel`` (in, heads, dim) and ``bias`` (heads, dim): x (..., in) -> (..., heads, dim)."""

    def __init__(self, kernel_shape, bias_shape, use_bias: bool, kernel_initializer: str,
                 bias_initializer: str):
        super().__init__()
        self.kernel = _weight(kernel_shape, kernel_initializer)
        self.bias = _weight(bias_shape, bias_initializer) if use_bias else None


# Keras' _large_negative_number for float32/float64 (it uses -3e4 for half types).
_LARGE_NEGATIVE = -1e9


@register
class MultiHeadAttention(Layer):
    """``MultiHeadAttention(num_heads, key_dim)``; call as ``mha(query, value, key=None,
    attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False)``.
    """

    def __init__(self, num_heads: int, key_dim: int, value_dim: Optional[int] = None,
                 dropout: float = 0.0, use_bias: bool = True, output_shape=None,
                 attention_axes=None, kernel_initializer: str = "glorot_uniform",
                 bias_initializer: str = "zeros", seed=None, **kwargs):
        super().__init__(**kwargs)
        for label, v in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"[MultiHeadAttention] {label} must be a positive integer, "
                                 f"got {v!r}")
        if attention_axes is not None and tuple(
                [attention_axes] if isinstance(attention_axes, int) else attention_axes) \
                not in ((1,), (-2,)):
            raise ValueError("[MultiHeadAttention] attention_axes other than the sequence axis "
                             f"(None or (1,)) are not supported, got {attention_axes!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"[MultiHeadAttention] dropout must be in [0, 1), got {dropout}")
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim if value_dim is not None else key_dim
        self.dropout_rate = float(dropout)
        self.use_bias = use_bias
        self.output_shape_arg = output_shape
        self.attention_axes = attention_axes
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer

    # Weights are made on the first call, when the query, value and key sizes are known.
    def build(self, input_shape) -> None:
        pass

    def _build_from(self, q_dim: int, v_dim: int, k_dim: int) -> None:
        if getattr(self, "query", None) is not None:
            return
        h = self.num_heads
        out = self.output_shape_arg
        out_dim = q_dim if out is None else (out if isinstance(out, int) else int(out[-1]))
        opts = (self.use_bias, self.kernel_initializer, self.bias_initializer)
        self.query = _Projection((q_dim, h, self.key_dim), (h, self.key_dim), *opts)
        self.key = _Projection((k_dim, h, self.key_dim), (h, self.key_dim), *opts)
        self.value = _Projection((v_dim, h, self.value_dim), (h, self.value_dim), *opts)
        self.attention_output = _Projection((h, self.value_dim, out_dim), (out_dim,), *opts)
        self._convert_variables()  # made after build, so stored in the policy's dtype here
        if not self.trainable:
            for p in self.parameters():
                p.requires_grad_(False)

    def __call__(self, inputs, *args, **kwargs):
        if args and any(isinstance(a, KerasTensor) for a in args):
            inputs, args = [inputs, *args], ()  # a symbolic call mha(q, v[, k])
        elif isinstance(kwargs.get("value"), KerasTensor):
            inputs = [inputs, kwargs.pop("value")] + (
                [kwargs.pop("key")] if isinstance(kwargs.get("key"), KerasTensor) else [])
        return super().__call__(inputs, *args, **kwargs)

    def _project(self, x, proj: _Projection, dim: int):
        # x (B, T, in) @ kernel (in, heads * dim) -> (B, T, heads, dim)
        w = proj.kernel.reshape(proj.kernel.shape[0], self.num_heads * dim)
        y = x.matmul(w).reshape(*x.shape[:-1], self.num_heads, dim)
        return y if proj.bias is None else y + proj.bias

    def _mask(self, attention_mask, use_causal_mask, query_mask, value_mask, key_mask, T, S):
        mask = None
        if attention_mask is not None:
            mask = attention_mask if isinstance(attention_mask, dc.Tensor) \
                else dc.tensor(attention_mask)
            mask = mask.to(dc.bool)
        for m, axis in ((query_mask, -1), (value_mask, -2), (key_mask, -2)):
            if m is not None:
                m = (m if isinstance(m, dc.Tensor) else dc.tensor(m)).to(dc.bool).unsqueeze(axis)
                mask = m if mask is None else dc.logical_and(mask, m)
        if use_causal_mask:
            causal = dc.ones(T, S, dtype=dc.bool).tril()
            mask = causal if mask is None else dc.logical_and(mask, causal)
        if mask is not None:
            ms = tuple(mask.shape)
            if len(ms) > 3 or any(a not in (1, b) for a, b in zip(reversed(ms), (S, T))):
                raise ValueError(f"[MultiHeadAttention] layer {self.name!r}: attention_mask of "
                                 f"shape {ms} does not broadcast to (batch, {T}, {S})")
        return mask

    def call(self, query, value=None, key=None, query_mask=None, value_mask=None,
             key_mask=None, attention_mask=None, return_attention_scores: bool = False,
             training=None, use_causal_mask: bool = False):
        if isinstance(query, (list, tuple)):
            query, value, key = (list(query) + [None, None])[:3]
        if value is None:
            raise ValueError(f"[MultiHeadAttention] layer {self.name!r} needs a value tensor: "
                             "call it as mha(query, value)")
        key = value if key is None else key
        for label, t in (("query", query), ("value", value), ("key", key)):
            if t.dim() != 3:
                raise ValueError(f"[MultiHeadAttention] layer {self.name!r} expects 3-D "
                                 f"(batch, seq, dim) inputs, got {label} of shape "
                                 f"{tuple(t.shape)}")
        self._build_from(query.shape[-1], value.shape[-1], key.shape[-1])
        if query.shape[-1] != self.query.kernel.shape[0] or \
                value.shape[-1] != self.value.kernel.shape[0] or \
                key.shape[-1] != self.key.kernel.shape[0]:
            raise ValueError(f"[MultiHeadAttention] layer {self.name!r} was built for query, "
                             f"value and key sizes {self.query.kernel.shape[0]}, "
                             f"{self.value.kernel.shape[0]} and {self.key.kernel.shape[0]}; got "
                             f"{query.shape[-1]}, {value.shape[-1]} and {key.shape[-1]}")
        T, S = query.shape[1], value.shape[1]
        mask = self._mask(attention_mask, use_causal_mask, query_mask, value_mask, key_mask,
                          T, S)
        q = self._project(query, self.query, self.key_dim).transpose(1, 2)  # (B, H, T, k)
        k = self._project(key, self.key, self.key_dim).transpose(1, 2)  # (B, H, S, k)
        v = self._project(value, self.value, self.value_dim).transpose(1, 2)  # (B, H, S, v)
        training = self.training if training is None else bool(training)
        drop = self.dropout_rate if training else 0.0
        scale = 1.0 / math.sqrt(self.key_dim)
        additive = None
        if mask is not None:
            keep = mask.unsqueeze(-3) if mask.dim() == 3 else mask
            additive = dc.logical_not(keep).to(q.dtype) * _LARGE_NEGATIVE
        probs = None
        if return_attention_scores:
            scores = q.mul(scale).matmul(k.transpose(-2, -1))
            if additive is not None:
                scores = scores + additive
            probs = F.softmax(scores, dim=-1)
            out = F.dropout(probs, drop, True).matmul(v) if drop > 0.0 else probs.matmul(v)
        else:  # the fused kernel, dropout on the probabilities included
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=additive, dropout_p=drop,
                                                 scale=scale)
        # (B, H, T, v) -> (B, T, H * v) @ (H * v, out)
        out = out.transpose(1, 2).reshape(out.shape[0], T, self.num_heads * self.value_dim)
        w = self.attention_output.kernel
        out = out.matmul(w.reshape(self.num_heads * self.value_dim, w.shape[-1]))
        if self.attention_output.bias is not None:
            out = out + self.attention_output.bias
        return (out, probs) if return_attention_scores else out

    def get_config(self) -> dict:
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout_rate,
                "use_bias": self.use_bias, "output_shape": self.output_shape_arg,
                "attention_axes": self.attention_axes,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer}
