"""torch.nn.functional.embedding_bag: sums, means or maxima of bags of embedding rows.

The bag layout (which rows go to which bag) depends only on the offsets, so it is worked out
once on the host with NumPy; the reductions are differentiable ops on the gathered rows
(index_add for sum and mean, a padded max_dim for max), so the weight gets its gradient like
from embedding.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _C
from .._C import Tensor
from .._indexing import embedding_functional
from .._tensor import _on_device, tensor

__all__ = ["embedding_bag"]


def _bags(name, input, offsets, include_last_offset):
    """(flat indices, bag id of each index, number of bags) from torch's two input layouts."""
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError(f"[{name}] offsets must be None for a 2-D input of shape "
                             f"{tuple(input.shape)} (each row is a bag)")
        b, n = input.shape
        return _C.flatten(input, 0, -1), np.repeat(np.arange(b), n), b
    if input.dim() != 1:
        raise ValueError(f"[{name}] input must be 1-D (with offsets) or 2-D, got shape "
                         f"{tuple(input.shape)}")
    if offsets is None or offsets.dim() != 1:
        raise ValueError(f"[{name}] a 1-D input needs 1-D offsets, got "
                         f"{None if offsets is None else tuple(offsets.shape)}")
    n = input.shape[0]
    off = offsets.numpy().astype(np.int64)
    if include_last_offset:
        if off.size == 0:
            raise ValueError(f"[{name}] include_last_offset needs at least one offset")
        ends = off[1:]
        off = off[:-1]
    else:
        ends = np.append(off[1:], n)
    if off.size and (off[0] != 0 or (np.diff(np.append(off, ends[-1])) < 0).any()
                     or ends[-1] > n):
        raise ValueError(f"[{name}] offsets {offsets.tolist()} must start at 0, not decrease "
                         f"and stay within the {n} indices")
    lengths = np.maximum(ends - off, 0)
    bag_of = np.repeat(np.arange(off.size), lengths)
    if bag_of.size != n:  # with include_last_offset the tail after the last offset is unused
        input = _C.narrow(input, 0, 0, int(bag_of.size))
    return input, bag_of, int(off.size)


def embedding_bag(input: Tensor, weight: Tensor, offsets: Optional[Tensor] = None,
                  max_norm: Optional[float] = None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Optional[Tensor] = None, include_last_offset: bool = False,
                  padding_idx: Optional[int] = None) -> Tensor:
    """Per bag, the sum / mean / max of the rows of weight at its indices; padding_idx entries
    are left out of their bag (an empty bag gives zeros)."""
    name = "embedding_bag"
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"[{name}] mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if max_norm is not None or scale_grad_by_freq:
        raise NotImplementedError(f"[{name}] max_norm and scale_grad_by_freq are not supported")
    if per_sample_weights is not None and mode != "sum":
        raise ValueError(f"[{name}] per_sample_weights are only supported with mode='sum', got "
                         f"mode={mode!r}")
    if per_sample_weights is not None and tuple(per_sample_weights.shape) != tuple(input.shape):
        raise ValueError(f"[{name}] per_sample_weights of shape "
                         f"{tuple(per_sample_weights.shape)} must match input "
                         f"{tuple(input.shape)}")
    flat, bag_of, nbags = _bags(name, input, offsets, include_last_offset)
    keep = np.ones(bag_of.size, dtype=bool)
    if padding_idx is not None:
        n = weight.shape[0]
        if not -n <= padding_idx < n:
            raise ValueError(f"[{name}] padding_idx {padding_idx} must be within "
                             f"num_embeddings {n}")
        keep = flat.numpy() != (padding_idx % n)
    rows = embedding_functional(flat, weight)  # (N, D); bad indices raise here
    d = weight.shape[1]
    if per_sample_weights is not None:
        psw = _C.flatten(per_sample_weights, 0, -1)
        psw = _C.narrow(psw, 0, 0, rows.shape[0])
        rows = _C.mul(rows, _C.unsqueeze(psw, 1))
    dev = weight.device
    kept = tensor(np.nonzero(keep)[0].astype(np.int64), device=dev)
    rows = _C.index_select(rows, 0, kept)
    bag_kept = bag_of[keep]
    counts = np.bincount(bag_kept, minlength=nbags)
    if mode in ("sum", "mean"):
        with _on_device(dev):
            zeros = _C._full([nbags, d], 0, weight.dtype, False)
        out = _C.index_add(zeros, 0, tensor(bag_kept.astype(np.int64), device=dev), rows)
        if mode == "mean":
            div = tensor(np.maximum(counts, 1).astype(np.float64), dtype=weight.dtype, device=dev)
            out = _C.div(out, _C.unsqueeze(div, 1))
        return out
    # max: rows gathered into (bags, longest bag, D), padded with -inf, then max over the bag.
    longest = int(counts.max()) if counts.size else 0
    if longest == 0:
        with _on_device(dev):
            return _C._full([nbags, d], 0, weight.dtype, False)
    slot = np.full((nbags, longest), rows.shape[0], dtype=np.int64)  # the -inf row
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(bag_kept.size) - starts[bag_kept]
    slot[bag_kept, pos] = np.arange(bag_kept.size)
    with _on_device(dev):
        pad = _C._full([1, d], float("-inf"), weight.dtype, False)
    table = _C.cat([rows, pad], 0)
    picked = _C._reshape(_C.index_select(table, 0, tensor(slot.reshape(-1), device=dev)),
                         [nbags, longest, d])
    values, _ = _C._max_dim(picked, 1, False)
    empty = tensor((counts == 0)[:, None], device=dev)
    return _C.masked_fill(values, empty, 0.0)
