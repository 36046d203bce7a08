"""Tensor indexing: x[i], x[a:b:c], x[None], x[...], x[mask], x[idx_tensor], and assignment.

Basic indices (ints, slices, None, ...) become views (select/slice/unsqueeze); what is left
(integer and bool tensors, lists, NumPy arrays, Python bools) goes to the C++ advanced
indexing op in one call: ``_C.index`` to read, ``_C.index_put_`` to write. Ints are applied
as ``select`` first, like PyTorch, so ``x[0, :, [0, 1]]`` on (5, 6, 7) has shape (6, 2).
Also defines the indexing functions (deepcore.gather, ...) and their Tensor methods.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _C
from ._C import Tensor
from ._tensor import install_methods, tensor

_BOOL = _C.dtype.bool
_INT64 = _C.dtype.int64


def _as_index_tensor(i) -> Tensor:
    """Lists, tuples and NumPy arrays as index tensors ([] is an empty int64 index)."""
    t = tensor(i)
    if t.dtype.is_floating_point:
        if t.numel() == 0:
            return _C._to_dtype(t, _INT64, False)
        raise IndexError(
            f"[index] tensors used as indices must be long, int or bool tensors, got {t.dtype}")
    return t


def _is_bool_scalar(i) -> bool:
    return isinstance(i, (bool, np.bool_)) or (
        isinstance(i, Tensor) and i.dim() == 0 and i.dtype == _BOOL)


def _is_int_scalar(i) -> bool:
    if isinstance(i, (bool, np.bool_)):
        return False
    if isinstance(i, numbers.Integral):
        return True
    return (isinstance(i, Tensor) and i.dim() == 0 and not i.dtype.is_floating_point
            and i.dtype != _BOOL)


def _sequence_as_tuple(index) -> bool:
    """PyTorch (like old NumPy) reads x[[0, [1]]] or x[[0, slice(1)]] as x[0, [1]]: a short list
    holding sequences, tensors, slices, None or Ellipsis is a tuple of indices."""
    if not isinstance(index, list) or len(index) >= 32:
        return False
    return any(isinstance(i, (list, tuple, np.ndarray, Tensor, slice)) or i is None
               or i is Ellipsis for i in index)


def _expand_index(t: Tensor, index):
    """The index as a list covering every dim: Ellipsis expanded, sequences made tensors."""
    if _sequence_as_tuple(index):
        index = tuple(index)
    elif not isinstance(index, tuple):
        index = (index,)
    items = []
    for i in index:
        if isinstance(i, (list, tuple, np.ndarray)):
            i = _as_index_tensor(i)
        items.append(i)
    n_ell = sum(1 for i in items if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("[index] an index can only have a single ellipsis ('...')")
    consumed = 0
    for i in items:
        if i is None or i is Ellipsis or _is_bool_scalar(i):
            continue
        if isinstance(i, Tensor) and i.dtype == _BOOL:
            consumed += i.dim()
        else:
            consumed += 1
    if consumed > t.dim():
        raise IndexError(
            f"[index] too many indices for tensor of dimension {t.dim()} "
            f"(got {consumed}, shape {tuple(t.shape)})")
    out = []
    for i in items:
        if i is Ellipsis:
            out.extend([slice(None)] * (t.dim() - consumed))
        else:
            out.append(i)
    return out


def _basic_index(t: Tensor, items):
    """Applies ints, slices and None as views; returns (view, [(dim, index tensor)])."""
    result = t
    dim = 0
    advanced = []
    for i in items:
        if i is None:
            result = _C.unsqueeze(result, dim)
            dim += 1
        elif isinstance(i, slice):
            step = 1 if i.step is None else int(i.step)
            if step <= 0:
                raise ValueError("[index] slice step must be greater than zero")
            size = result.shape[dim]
            start = 0 if i.start is None else int(i.start)
            stop = size if i.stop is None else int(i.stop)
            if not (start == 0 and stop >= size and step == 1):
                result = _C._slice(result, dim, start, stop, step)
            dim += 1
        elif _is_bool_scalar(i):
            # x[True] adds a unit dim indexed by [0]; x[False] the same dim indexed by [].
            result = _C.unsqueeze(result, dim)
            advanced.append((dim, _C._full([1 if bool(i) else 0], 0, _INT64, False)))
            dim += 1
        elif _is_int_scalar(i):
            i = int(i)
            size = result.shape[dim]
            if i < -size or i >= size:
                raise IndexError(
                    f"[index] index {i} is out of bounds for dimension {dim} with size {size}")
            result = _C.select(result, dim, i)
        elif isinstance(i, Tensor):
            if i.dtype.is_floating_point:
                raise IndexError(
                    "[index] tensors used as indices must be long, int or bool tensors, got "
                    f"{i.dtype}")
            advanced.append((dim, i))
            dim += i.dim() if i.dtype == _BOOL else 1
        else:
            raise IndexError(
                "[index] only integers, slices (`:`), ellipsis (`...`), None and long, int or "
                f"bool tensors are valid indices (got {type(i).__name__})")
    return result, advanced


def _advanced_list(advanced):
    """The C++ index list: None for ':' dims; a bool mask consumes mask.dim() dims."""
    indices = []
    cur = 0
    for dim, idx in advanced:
        indices.extend([None] * (dim - cur))
        indices.append(idx)
        cur = dim + (idx.dim() if idx.dtype == _BOOL else 1)
    return indices


def _getitem(self: Tensor, index):
    items = _expand_index(self, index)
    result, advanced = _basic_index(self, items)
    if not advanced:
        if result is self:
            result = _C._view(self, list(self.shape))
        return result
    return _C.index(result, _advanced_list(advanced))


def _setitem(self: Tensor, index, value):
    items = _expand_index(self, index)
    target, advanced = _basic_index(self, items)
    if not isinstance(value, Tensor) and isinstance(value, (list, tuple, np.ndarray)):
        value = tensor(value)
    if not advanced:
        _C.copy_(target, value)
        return
    _C.index_put_(target, _advanced_list(advanced), value, False)


Tensor.__getitem__ = _getitem
Tensor.__setitem__ = _setitem


# ---- functions and methods ---------------------------------------------------------------------

index_select = _C.index_select
index_add = _C.index_add
gather = _C.gather
take_along_dim = _C.take_along_dim
scatter = _C.scatter
scatter_add = _C.scatter_add
masked_fill = _C.masked_fill
masked_select = _C.masked_select
nonzero = _C.nonzero
index_put = _C.index_put
index_put_ = _C.index_put_
embedding = _C.embedding  # torch.embedding(weight, input, padding_idx=-1)


def argwhere(input: Tensor) -> Tensor:
    return _C.nonzero(input)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """torch.nn.functional.one_hot: int64 (*, num_classes)."""
    return _C.one_hot(tensor, num_classes)


def embedding_functional(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
                         scale_grad_by_freq=False, sparse=False) -> Tensor:
    """torch.nn.functional.embedding: rows of ``weight`` at ``input``; ``padding_idx`` (may be
    negative) gets no gradient."""
    if max_norm is not None or scale_grad_by_freq:
        raise NotImplementedError("[embedding] max_norm and scale_grad_by_freq are not supported")
    if padding_idx is None:
        padding_idx = -1
    else:
        n = weight.shape[0]
        if not -n <= padding_idx < n:
            raise ValueError(f"[embedding] padding_idx {padding_idx} must be within "
                             f"num_embeddings {n}")
        padding_idx = padding_idx + n if padding_idx < 0 else padding_idx
    return _C.embedding(weight, input, padding_idx)


install_methods(globals())

__all__ = ["index_select", "index_add", "gather", "take_along_dim", "scatter", "scatter_add",
           "masked_fill", "masked_select", "nonzero", "argwhere", "index_put", "index_put_",
           "embedding"]
