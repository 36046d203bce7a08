"""Array creation with NumPy's signatures (shape as one int or a tuple, dtype= keyword).

Default dtypes are deepcore's: Python floats give float32 (as jax.numpy without x64), Python
ints give int64, bools give bool. A NumPy array keeps its dtype (a float64 array stays float64).
"""
from __future__ import annotations

import numbers
from typing import List, Optional, Sequence, Union

from .. import _C
from .._C import Tensor
from .._creation import zeros as _zeros, full as _full
from ._util import ArrayLike, DTypeLike, FLOAT32, asarray as _asarray, to_dtype

Shape = Union[int, Sequence[int]]

__all__ = ["array", "asarray", "astype", "zeros", "ones", "full", "empty", "zeros_like",
           "ones_like", "full_like", "empty_like", "arange", "linspace", "logspace", "eye",
           "identity", "meshgrid", "tri", "tril", "triu"]


def _shape(shape: Shape) -> List[int]:
    if isinstance(shape, numbers.Integral):
        return [int(shape)]
    return [int(s) for s in shape]


def _scalar_dtype(value) -> _C.dtype:
    if isinstance(value, Tensor):
        return value.dtype
    if isinstance(value, bool):
        return _C.dtype.bool
    if isinstance(value, numbers.Integral):
        return _C.dtype.int64
    return _asarray(value).dtype if not isinstance(value, numbers.Number) else FLOAT32


def array(object: ArrayLike, dtype: DTypeLike = None, copy: bool = True,  # noqa: A002
          ndmin: int = 0) -> Tensor:
    """A tensor holding ``object`` (a copy unless ``copy=False``); differentiable through
    tensors, including tensors nested in lists."""
    out = _asarray(object, dtype)
    if copy and out is object:
        out = _C.clone(out)
    if out.ndim < ndmin:
        out = out.reshape([1] * (ndmin - out.ndim) + list(out.shape))
    return out


def asarray(a: ArrayLike, dtype: DTypeLike = None, copy: Optional[bool] = None) -> Tensor:
    """``a`` as a tensor, shared (not copied) when it already is one of ``dtype``."""
    out = _asarray(a, dtype)
    return _C.clone(out) if copy and out is a else out


def astype(x: ArrayLike, dtype: DTypeLike, copy: bool = True) -> Tensor:
    """``x`` converted to ``dtype`` (the array API's astype)."""
    x = _asarray(x)
    out = x.to(to_dtype(dtype))
    return _C.clone(out) if copy and out is x else out


def zeros(shape: Shape, dtype: DTypeLike = None) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    return _zeros(_shape(shape), dtype=to_dtype(dtype) or FLOAT32)


def ones(shape: Shape, dtype: DTypeLike = None) -> Tensor:
    """A tensor of ones (float32 unless ``dtype`` says otherwise)."""
    return _full(_shape(shape), 1, dtype=to_dtype(dtype) or FLOAT32)


def empty(shape: Shape, dtype: DTypeLike = None) -> Tensor:
    """A tensor of the given shape; like jax.numpy, it is filled with zeros."""
    return zeros(shape, dtype)


def full(shape: Shape, fill_value: ArrayLike, dtype: DTypeLike = None) -> Tensor:
    """A tensor filled with ``fill_value`` (broadcast; differentiable when it is a tensor);
    the dtype follows the fill value unless given."""
    dtype = to_dtype(dtype) or _scalar_dtype(fill_value)
    if isinstance(fill_value, numbers.Number):
        return _full(_shape(shape), fill_value, dtype=dtype)
    fill = _asarray(fill_value, dtype)
    return _C.clone(fill.expand(_shape(shape))).contiguous()


def _like_shape(a: ArrayLike, shape) -> List[int]:
    return list(_asarray(a).shape) if shape is None else _shape(shape)


def _like_dtype(a: ArrayLike, dtype) -> _C.dtype:
    return to_dtype(dtype) or _asarray(a).dtype


def zeros_like(a: ArrayLike, dtype: DTypeLike = None, shape: Optional[Shape] = None) -> Tensor:
    """Zeros with the shape and dtype of ``a``."""
    return _zeros(_like_shape(a, shape), dtype=_like_dtype(a, dtype))


def ones_like(a: ArrayLike, dtype: DTypeLike = None, shape: Optional[Shape] = None) -> Tensor:
    """Ones with the shape and dtype of ``a``."""
    return _full(_like_shape(a, shape), 1, dtype=_like_dtype(a, dtype))


def empty_like(a: ArrayLike, dtype: DTypeLike = None, shape: Optional[Shape] = None) -> Tensor:
    """A tensor with the shape and dtype of ``a``, filled with zeros as in jax.numpy."""
    return zeros_like(a, dtype, shape)


def full_like(a: ArrayLike, fill_value: ArrayLike, dtype: DTypeLike = None,
              shape: Optional[Shape] = None) -> Tensor:
    """``fill_value`` broadcast to the shape of ``a``, in the dtype of ``a``."""
    return full(_like_shape(a, shape), fill_value, _like_dtype(a, dtype))


def _number(v):
    return v.item() if isinstance(v, Tensor) or hasattr(v, "item") else v


def arange(start: ArrayLike, stop: ArrayLike = None, step: ArrayLike = None,
           dtype: DTypeLike = None) -> Tensor:
    """Evenly spaced values in [start, stop); int64 when every bound is an int, float32 when
    any is a float (``arange(10.0)`` is float), as in NumPy."""
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    vals = [_number(v) for v in (start, stop, step)]
    if vals[2] == 0:
        raise ValueError("[arange] step must not be zero")
    if dtype is None:
        is_int = all(isinstance(v, numbers.Integral) for v in vals)
        dtype = _C.dtype.int64 if is_int else FLOAT32
    return _C._arange(float(vals[0]), float(vals[1]), float(vals[2]), to_dtype(dtype), False)


def linspace(start: ArrayLike, stop: ArrayLike, num: int = 50, endpoint: bool = True,
             retstep: bool = False, dtype: DTypeLike = None):
    """``num`` evenly spaced samples from ``start`` to ``stop`` (``stop`` left out when
    ``endpoint=False``); with ``retstep``, also the spacing."""
    start, stop, num = float(_number(start)), float(_number(stop)), int(num)
    if num < 0:
        raise ValueError(f"[linspace] num must be non-negative, got {num}")
    div = (num - 1) if endpoint else num
    step = (stop - start) / div if div > 0 else float("nan")
    target = to_dtype(dtype) or FLOAT32
    work = target if target.is_floating_point else _C.dtype.float64
    if endpoint:
        out = _C._linspace(start, stop, num, work, False)
    else:
        out = _C._linspace(start, stop, num + 1, work, False)[:num]
    if not target.is_floating_point:
        out = _C.floor(out)
    out = out.to(target)
    return (out, step) if retstep else out


def logspace(start: ArrayLike, stop: ArrayLike, num: int = 50, endpoint: bool = True,
             base: float = 10.0, dtype: DTypeLike = None) -> Tensor:
    """``base ** linspace(start, stop, num)``."""
    exps = linspace(start, stop, num, endpoint, dtype=_C.dtype.float64)
    return _C.pow(float(base), exps).to(to_dtype(dtype) or FLOAT32)


def _offsets(n: int, m: Optional[int]) -> Tensor:
    """cols - rows of an (n, m) grid."""
    m = n if m is None else m
    rows = _C._arange(0.0, float(n), 1.0, _C.dtype.int64, False).reshape([n, 1])
    cols = _C._arange(0.0, float(m), 1.0, _C.dtype.int64, False).reshape([1, m])
    return cols - rows


def eye(N: int, M: Optional[int] = None, k: int = 0, dtype: DTypeLike = None) -> Tensor:
    """An (N, M) matrix with ones on the ``k``-th diagonal."""
    return (_offsets(int(N), M) == int(k)).to(to_dtype(dtype) or FLOAT32)


def identity(n: int, dtype: DTypeLike = None) -> Tensor:
    """The (n, n) identity matrix."""
    return eye(n, dtype=dtype)


def tri(N: int, M: Optional[int] = None, k: int = 0, dtype: DTypeLike = None) -> Tensor:
    """An (N, M) matrix with ones at and below the ``k``-th diagonal."""
    return (_offsets(int(N), M) <= int(k)).to(to_dtype(dtype) or FLOAT32)


def _check_matrix(m: Tensor, name: str) -> Tensor:
    if m.ndim < 2:
        raise ValueError(f"[{name}] input must be at least 2-d, got shape {tuple(m.shape)}")
    return m


def tril(m: ArrayLike, k: int = 0) -> Tensor:
    """``m`` with the elements above the ``k``-th diagonal zeroed (the last two axes)."""
    return _C.tril(_check_matrix(_asarray(m), "tril"), int(k))


def triu(m: ArrayLike, k: int = 0) -> Tensor:
    """``m`` with the elements below the ``k``-th diagonal zeroed (the last two axes)."""
    return _C.triu(_check_matrix(_asarray(m), "triu"), int(k))


def meshgrid(*xi: ArrayLike, copy: bool = True, sparse: bool = False,
             indexing: str = "xy") -> List[Tensor]:
    """Coordinate grids from 1-D coordinate vectors; ``indexing='xy'`` (the default, as in
    NumPy) swaps the first two output axes, ``'ij'`` does not."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"[meshgrid] indexing must be 'xy' or 'ij', got {indexing!r}")
    vecs = [_asarray(x).reshape([-1]) for x in xi]
    n = len(vecs)
    shape = [v.shape[0] for v in vecs]
    if indexing == "xy" and n >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, v in enumerate(vecs):
        axis = i
        if indexing == "xy" and n >= 2 and i < 2:
            axis = 1 - i
        view = [1] * n
        view[axis] = v.shape[0]
        g = v.reshape(view)
        out.append(g if sparse else _C.clone(g.expand(shape)).contiguous())
    return out
