"""Tensor indexing: x[i], x[a:b:c], x[None], x[...], x[mask], x[idx_tensor], and assignment."""
from __future__ import annotations

import numbers

import numpy as np

from . import _C
from ._C import Tensor
from ._tensor import tensor


def _is_advanced(idx) -> bool:
    return isinstance(idx, (Tensor, np.ndarray, list)) or (
        isinstance(idx, bool)
    )


def _expand_index(t: Tensor, index):
    if not isinstance(index, tuple):
        index = (index,)
    n_ell = sum(1 for i in index if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("[index] an index can only have a single ellipsis ('...')")
    consumed = 0
    for i in index:
        if i is None or i is Ellipsis:
            continue
        if isinstance(i, Tensor) and i.dtype == _C.dtype.bool:
            consumed += i.dim()
        elif isinstance(i, np.ndarray) and i.dtype == np.bool_:
            consumed += i.ndim
        else:
            consumed += 1
    if consumed > t.dim():
        raise IndexError(
            f"[index] too many indices for tensor of dimension {t.dim()} "
            f"(got {consumed}, shape {tuple(t.shape)})")
    out = []
    for i in index:
        if i is Ellipsis:
            out.extend([slice(None)] * (t.dim() - consumed))
        else:
            out.append(i)
    if n_ell == 0:
        out.extend([slice(None)] * (t.dim() - consumed))
    return out


def _basic_index(t: Tensor, items):
    """Applies ints, slices and None; returns (view, remaining advanced indices by dim)."""
    result = t
    dim = 0
    advanced = []  # (dim in result, index tensor)
    for i in items:
        if i is None:
            result = _C.unsqueeze(result, dim)
            dim += 1
        elif isinstance(i, slice):
            start, stop, step = i.start, i.stop, i.step
            step = 1 if step is None else int(step)
            if step <= 0:
                raise ValueError("[index] slice step must be positive")
            size = result.shape[dim]
            start = 0 if start is None else int(start)
            stop = size if stop is None else int(stop)
            if not (start == 0 and stop >= size and step == 1):
                result = _C._slice(result, dim, start, stop, step)
            dim += 1
        elif isinstance(i, (bool, np.bool_)):
            advanced.append((dim, "bool", bool(i)))
            result = _C.unsqueeze(result, dim)
            dim += 1
        elif isinstance(i, numbers.Integral) or (
                isinstance(i, Tensor) and i.dim() == 0 and not i.dtype.is_floating_point
                and i.dtype != _C.dtype.bool):
            i = int(i)
            size = result.shape[dim]
            if i < -size or i >= size:
                raise IndexError(
                    f"[index] index {i} is out of bounds for dimension {dim} with size {size}")
            result = _C.select(result, dim, i)
        else:
            idx = i if isinstance(i, Tensor) else tensor(i)
            if idx.dtype.is_floating_point:
                raise IndexError(
                    "[index] tensors used as indices must be long, int or bool tensors, got "
                    f"{idx.dtype}")
            advanced.append((dim, "tensor", idx))
            dim += idx.dim() if idx.dtype == _C.dtype.bool else 1
    return result, advanced


def _advanced_list(result: Tensor, advanced):
    indices = [None] * result.dim()
    for dim, kind, idx in advanced:
        if kind == "bool":
            # x[True] adds a dim of size 1 (done above); x[False] selects nothing.
            indices[dim] = _C._full([1 if idx else 0], 0, _C.dtype.int64, False)
        elif idx.dtype == _C.dtype.bool:
            nz = _C.nonzero(idx)
            for k in range(idx.dim()):
                indices[dim + k] = _C.select(nz, 1, k)
        else:
            indices[dim] = idx
    return indices


def _getitem(self: Tensor, index):
    items = _expand_index(self, index)
    result, advanced = _basic_index(self, items)
    if not advanced:
        if result is self:
            result = _C._view(self, list(self.shape))
        return result
    return _C.index(result, _advanced_list(result, advanced))


def _setitem(self: Tensor, index, value):
    items = _expand_index(self, index)
    target, advanced = _basic_index(self, items)
    if not advanced:
        _C.copy_(target, value)
        return
    indices = _advanced_list(target, advanced)
    v = value if isinstance(value, Tensor) else tensor(value, dtype=self.dtype)
    _C.index_put_(target, indices, v, False)



Tensor.__getitem__ = _getitem
Tensor.__setitem__ = _setitem
