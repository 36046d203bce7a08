"""deepcore.numpy.linalg: norms with numpy.linalg's signatures, built from deepcore ops.

Matrix norms that need a singular value decomposition (``ord=2``, ``-2``, ``'nuc'``) are not
available: deepcore has no SVD yet.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Union

from .. import _C
from .._C import Tensor
from ._products import matmul, outer, tensordot, trace, diagonal, cross
from ._util import ArrayLike, FLOAT32, asarray, normalize_axes

__all__ = ["norm", "vector_norm", "matrix_norm", "matmul", "outer", "tensordot", "trace",
           "diagonal", "cross", "vecdot"]

Ord = Optional[Union[int, float, str]]


def _float(x: ArrayLike) -> Tensor:
    x = asarray(x)
    return x if x.dtype.is_floating_point else x.to(FLOAT32)


def _vector_norm(x: Tensor, ord, axes, keepdims: bool) -> Tensor:
    a = _C.abs(x)
    if ord == math.inf:
        return _C.amax(a, axes, keepdims)
    if ord == -math.inf:
        return _C.amin(a, axes, keepdims)
    if ord == 0:
        return _C.sum((x != 0).to(x.dtype), axes, keepdims)
    if ord == 1:
        return _C.sum(a, axes, keepdims)
    if ord == 2:
        return _C.sqrt(_C.sum(x * x, axes, keepdims))
    if isinstance(ord, str):
        raise ValueError(f"[norm] invalid norm order {ord!r} for vectors")
    p = float(ord)
    return _C.pow(_C.sum(_C.pow(a, p), axes, keepdims), 1.0 / p)


def _matrix_norm(x: Tensor, ord, axes, keepdims: bool) -> Tensor:
    row, col = axes
    if ord in ("fro", "f"):
        out = _C.sqrt(_C.sum(x * x, list(axes), True))
    elif ord in (1, -1):
        sums = _C.sum(_C.abs(x), [row], True)
        out = (_C.amax if ord == 1 else _C.amin)(sums, [col], True)
    elif ord in (math.inf, -math.inf):
        sums = _C.sum(_C.abs(x), [col], True)
        out = (_C.amax if ord == math.inf else _C.amin)(sums, [row], True)
    elif ord in (2, -2, "nuc"):
        raise NotImplementedError(f"[norm] matrix norm ord={ord!r} needs singular values, "
                                  "which deepcore cannot compute yet")
    else:
        raise ValueError(f"[norm] invalid norm order {ord!r} for matrices")
    if keepdims:
        return out
    return out.reshape([s for i, s in enumerate(out.shape) if i not in (row, col)])


def norm(x: ArrayLike, ord: Ord = None, axis: Optional[Union[int, Sequence[int]]] = None,
         keepdims: bool = False) -> Tensor:
    """A vector or matrix norm of ``x``, as ``numpy.linalg.norm``: with ``axis`` None, the
    2-norm of the flattened array when ``ord`` is None, else the vector norm of a 1-d or the
    matrix norm of a 2-d array; an int axis gives vector norms, a pair matrix norms."""
    x = _float(x)
    if axis is None and ord is None:
        out = _C.sqrt(_C.sum(x * x, list(range(x.ndim)), keepdims)) if x.ndim else _C.abs(x)
        return out
    if axis is None:
        if x.ndim not in (1, 2):
            raise ValueError(f"[norm] ord={ord!r} without axis needs a 1-d or 2-d array, got "
                             f"shape {tuple(x.shape)}")
        axis = tuple(range(x.ndim))
    axes = normalize_axes(axis, x.ndim, "norm")
    if isinstance(axis, numbers.Integral) or len(axes) == 1:
        return _vector_norm(x, 2 if ord is None else ord, list(axes), keepdims)
    if len(axes) == 2:
        as_given = [a % x.ndim for a in axis]
        return _matrix_norm(x, "fro" if ord is None else ord, as_given, keepdims)
    raise ValueError(f"[norm] axis must be an int or a pair, got {axis!r}")


def vector_norm(x: ArrayLike, /, *, axis=None, keepdims: bool = False,
                ord: Union[int, float] = 2) -> Tensor:
    """The vector norm over ``axis`` (every axis when None, treating x as one vector)."""
    x = _float(x)
    axes = list(normalize_axes(axis, x.ndim, "vector_norm"))
    if not axes:
        return _C.abs(x)
    return _vector_norm(x, ord, axes, keepdims)


def matrix_norm(x: ArrayLike, /, *, keepdims: bool = False, ord: Ord = "fro") -> Tensor:
    """The matrix norm over the last two axes."""
    x = _float(x)
    return _matrix_norm(x, ord, [x.ndim - 2, x.ndim - 1], keepdims)


def vecdot(x1: ArrayLike, x2: ArrayLike, /, *, axis: int = -1) -> Tensor:
    """The dot product of vectors along ``axis``, broadcasting the other axes."""
    a, b = asarray(x1), asarray(x2)
    return _C.sum(a * b, [axis], False)

