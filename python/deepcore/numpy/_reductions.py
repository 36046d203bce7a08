"""Reductions with NumPy's signatures: ``axis`` (None, an int or a tuple), ``keepdims``,
``dtype``, ``ddof``, ``initial`` and ``where`` translated to deepcore's ``dim``/``keepdim``.

``axis=()`` reduces nothing, as in NumPy (deepcore's ``dim=()``, like torch's, would reduce
every axis). ``out=`` is refused: deepcore.numpy, like jax.numpy, returns new arrays.
"""
from __future__ import annotations

from typing import Optional, Tuple

from .. import _C
from .._C import Tensor
from .._creation import full_like as _full_like, ones_like as _ones_like, \
    zeros_like as _zeros_like
from .._reduce import var as _var
from ._util import ArrayLike, Axis, DTypeLike, FLOAT32, asarray, normalize_axes, \
    normalize_axis, operand, to_dtype

__all__ = ["sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "std",
           "var", "all", "any", "cumsum", "cumprod", "ptp", "average", "count_nonzero"]


def _prepare(name: str, a: ArrayLike, axis: Axis, out, where, fill) -> Tuple[Tensor, tuple]:
    """``a`` as a tensor (elements outside ``where`` replaced by ``fill``) and the sorted
    axes to reduce."""
    if out is not None:
        raise NotImplementedError(f"[{name}] out= is not supported: deepcore.numpy returns new "
                                  "arrays, as jax.numpy does")
    a = asarray(a)
    if where is not None:
        if fill is None:
            raise ValueError(f"[{name}] where= needs initial= to fill the masked-out elements")
        mask = asarray(where)
        a = _C.where(mask if mask.dtype == _C.dtype.bool else mask != 0, a, operand(fill))
    return a, normalize_axes(axis, a.ndim, name)


def _float(a: Tensor, dtype: DTypeLike) -> Tensor:
    """``a`` in ``dtype``, or in float32 when it is an integer or bool tensor."""
    dtype = to_dtype(dtype)
    if dtype is not None:
        return a.to(dtype)
    return a if a.dtype.is_floating_point else a.to(FLOAT32)


def _accumulator(a: Tensor, dtype: DTypeLike) -> Tensor:
    """``a`` cast for sum/prod: integers and bools accumulate in int64, as NumPy on 64-bit."""
    dtype = to_dtype(dtype)
    if dtype is not None:
        return a.to(dtype)
    return a if a.dtype.is_floating_point else a.to(_C.dtype.int64)


def sum(a: ArrayLike, axis: Axis = None, dtype: DTypeLike = None, out=None,  # noqa: A001
        keepdims: bool = False, initial: Optional[ArrayLike] = None,
        where: Optional[ArrayLike] = None) -> Tensor:
    """The sum of the elements over ``axis`` (all of them when None)."""
    a, axes = _prepare("sum", a, axis, out, where, 0)
    a = _accumulator(a, dtype)
    res = _C.sum(a, axes, keepdims) if axes else _C.clone(a)
    return res if initial is None else res + operand(initial)


def prod(a: ArrayLike, axis: Axis = None, dtype: DTypeLike = None, out=None,
         keepdims: bool = False, initial: Optional[ArrayLike] = None,
         where: Optional[ArrayLike] = None) -> Tensor:
    """The product of the elements over ``axis`` (all of them when None)."""
    a, axes = _prepare("prod", a, axis, out, where, 1)
    a = _accumulator(a, dtype)
    res = _C.prod(a, axes, keepdims) if axes else _C.clone(a)
    return res if initial is None else res * operand(initial)


def mean(a: ArrayLike, axis: Axis = None, dtype: DTypeLike = None, out=None,
         keepdims: bool = False, *, where: Optional[ArrayLike] = None) -> Tensor:
    """The arithmetic mean over ``axis``; integer inputs give float32."""
    a, axes = _prepare("mean", a, axis, out, where, 0)
    a = _float(a, dtype)
    if where is None:
        return _C.mean(a, axes, keepdims) if axes else _C.clone(a)
    count = _C.sum(_ones_like(a) * (asarray(where) != 0), axes, keepdims)
    return _C.sum(a, axes, keepdims) / count


def _extreme(name: str, op, a, axis, out, keepdims, initial, where) -> Tensor:
    a, axes = _prepare(name, a, axis, out, where, initial)
    res = op(a, axes, keepdims) if axes else _C.clone(a)
    if initial is None:
        return res
    return (_C.maximum if op is _C.amax else _C.minimum)(res, operand(initial))


def max(a: ArrayLike, axis: Axis = None, out=None, keepdims: bool = False,  # noqa: A001
        initial: Optional[ArrayLike] = None, where: Optional[ArrayLike] = None) -> Tensor:
    """The largest element over ``axis``; the gradient is shared among tied maxima."""
    return _extreme("max", _C.amax, a, axis, out, keepdims, initial, where)


def min(a: ArrayLike, axis: Axis = None, out=None, keepdims: bool = False,  # noqa: A001
        initial: Optional[ArrayLike] = None, where: Optional[ArrayLike] = None) -> Tensor:
    """The smallest element over ``axis``; the gradient is shared among tied minima."""
    return _extreme("min", _C.amin, a, axis, out, keepdims, initial, where)


amax, amin = max, min


def _arg(name: str, op, a: ArrayLike, axis: Optional[int], out, keepdims: bool) -> Tensor:
    if out is not None:
        raise NotImplementedError(f"[{name}] out= is not supported")
    a = asarray(a)
    if axis is None:
        res = op(a.reshape([-1]), 0, False)
        return res.reshape([1] * a.ndim) if keepdims else res
    return op(a, normalize_axis(axis, a.ndim, name), keepdims)


def argmax(a: ArrayLike, axis: Optional[int] = None, out=None, *,
           keepdims: bool = False) -> Tensor:
    """The index of the largest element along ``axis`` (of the flattened array when None)."""
    return _arg("argmax", _C.argmax, a, axis, out, keepdims)


def argmin(a: ArrayLike, axis: Optional[int] = None, out=None, *,
           keepdims: bool = False) -> Tensor:
    """The index of the smallest element along ``axis`` (of the flattened array when None)."""
    return _arg("argmin", _C.argmin, a, axis, out, keepdims)


def var(a: ArrayLike, axis: Axis = None, dtype: DTypeLike = None, out=None, ddof: int = 0,
        keepdims: bool = False, *, where: Optional[ArrayLike] = None,
        correction: Optional[float] = None) -> Tensor:
    """The variance over ``axis``: mean squared deviation, divided by N - ddof."""
    if where is not None:
        raise NotImplementedError("[var] where= is not supported")
    a, axes = _prepare("var", a, axis, out, None, None)
    a = _float(a, dtype)
    ddof = ddof if correction is None else correction
    if not axes:
        return _zeros_like(a)
    return _var(a, axes, keepdim=keepdims, correction=ddof)


def std(a: ArrayLike, axis: Axis = None, dtype: DTypeLike = None, out=None, ddof: int = 0,
        keepdims: bool = False, *, where: Optional[ArrayLike] = None,
        correction: Optional[float] = None) -> Tensor:
    """The standard deviation over ``axis``: sqrt of ``var`` with the same ``ddof``."""
    return _C.sqrt(var(a, axis, dtype, out, ddof, keepdims, where=where, correction=correction))


def _logical(name: str, op, a, axis, out, keepdims, where, fill) -> Tensor:
    a, axes = _prepare(name, a, axis, out, where, fill)
    if a.dtype != _C.dtype.bool:
        a = a != 0
    return op(a, axes, keepdims) if axes else a


def all(a: ArrayLike, axis: Axis = None, out=None, keepdims: bool = False, *,  # noqa: A001
        where: Optional[ArrayLike] = None) -> Tensor:
    """Whether every element over ``axis`` is true (nonzero)."""
    return _logical("all", _C.all, a, axis, out, keepdims, where, True)


def any(a: ArrayLike, axis: Axis = None, out=None, keepdims: bool = False, *,  # noqa: A001
        where: Optional[ArrayLike] = None) -> Tensor:
    """Whether any element over ``axis`` is true (nonzero)."""
    return _logical("any", _C.any, a, axis, out, keepdims, where, False)


def _cumulative(name: str, op, a: ArrayLike, axis: Optional[int], dtype, out) -> Tensor:
    if out is not None:
        raise NotImplementedError(f"[{name}] out= is not supported")
    a = _accumulator(asarray(a), dtype)
    if axis is None:
        return op(a.reshape([-1]), 0)
    return op(a, normalize_axis(axis, a.ndim, name))


def cumsum(a: ArrayLike, axis: Optional[int] = None, dtype: DTypeLike = None,
           out=None) -> Tensor:
    """Running sums along ``axis`` (of the flattened array when None)."""
    return _cumulative("cumsum", _C.cumsum, a, axis, dtype, out)


def cumprod(a: ArrayLike, axis: Optional[int] = None, dtype: DTypeLike = None,
            out=None) -> Tensor:
    """Running products along ``axis`` (of the flattened array when None)."""
    return _cumulative("cumprod", _C.cumprod, a, axis, dtype, out)


def ptp(a: ArrayLike, axis: Axis = None, out=None, keepdims: bool = False) -> Tensor:
    """The range (max - min) over ``axis``."""
    return max(a, axis, out, keepdims) - min(a, axis, out, keepdims)


def average(a: ArrayLike, axis: Axis = None, weights: Optional[ArrayLike] = None,
            returned: bool = False, *, keepdims: bool = False):
    """The mean over ``axis``, weighted by ``weights`` (broadcastable to ``a``, or 1-D along a
    single ``axis``); with ``returned``, also the sum of the weights."""
    a = _float(asarray(a), None)
    if weights is None:
        avg = mean(a, axis, keepdims=keepdims)
        n = a.numel() / (avg.numel() if avg.numel() else 1)
        return (avg, _full_like(avg, n)) if returned else avg
    w = asarray(weights).to(a.dtype)
    if w.ndim == 1 and a.ndim > 1 and axis is not None and not isinstance(axis, tuple):
        ax = normalize_axis(axis, a.ndim, "average")
        w = w.reshape([-1 if i == ax else 1 for i in range(a.ndim)])
    scl = sum(w * _ones_like(a), axis, keepdims=keepdims)
    avg = sum(a * w, axis, keepdims=keepdims) / scl
    return (avg, scl) if returned else avg


def count_nonzero(a: ArrayLike, axis: Axis = None, *, keepdims: bool = False) -> Tensor:
    """The number of nonzero elements over ``axis``."""
    return sum(asarray(a) != 0, axis, keepdims=keepdims)

