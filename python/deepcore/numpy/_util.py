"""Conversions shared by the deepcore.numpy modules: inputs to tensors, dtypes, axis arguments."""
from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _C
from .._C import Tensor
from .._creation import _dt
from .._tensor import tensor

ArrayLike = Any  # a Tensor, a NumPy array, a Python/NumPy scalar or a nested list of these
DTypeLike = Any  # a deepcore dtype, a NumPy dtype or scalar type, float/int/bool, or a name
Axis = Optional[Union[int, Sequence[int]]]

FLOAT32 = _C.dtype.float32


def to_dtype(dtype: DTypeLike) -> Optional[_C.dtype]:
    """The deepcore dtype named by ``dtype`` (None stays None)."""
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype == "bool_":
        dtype = "bool"
    return _dt(dtype)


def _holds_tensor(obj) -> bool:
    if isinstance(obj, Tensor):
        return True
    return isinstance(obj, (list, tuple)) and any(_holds_tensor(x) for x in obj)


def _stack_nested(obj, dtype) -> Tensor:
    """A nested list mixing tensors and numbers, stacked with differentiable ops."""
    if isinstance(obj, (list, tuple)):
        parts = [_stack_nested(x, dtype) for x in obj]
        if not parts:
            return tensor([], dtype=dtype)
        target = dtype or _result_dtype(parts)
        return _C.stack([p.to(target) for p in parts], 0)
    return obj if isinstance(obj, Tensor) else tensor(obj, dtype=dtype)


def _result_dtype(parts) -> _C.dtype:
    out = parts[0].dtype
    for p in parts[1:]:
        out = _C.promote_types(out, p.dtype)
    return out


def asarray(a: ArrayLike, dtype: DTypeLike = None) -> Tensor:
    """``a`` as a tensor, without copying (and without leaving the graph) when it is one."""
    dtype = to_dtype(dtype)
    if isinstance(a, Tensor):
        return a if dtype is None or a.dtype == dtype else a.to(dtype)
    if _holds_tensor(a):
        return _stack_nested(a, dtype)
    if isinstance(a, np.ndarray) and (dtype is None or _dt(a.dtype.type) == dtype):
        try:
            return _C.from_numpy(a)
        except (TypeError, ValueError):
            pass
    return tensor(a, dtype=dtype)


def operand(x: ArrayLike):
    """A binary op's operand: tensors and Python numbers (weakly typed, as in NumPy 2 and JAX)
    pass through; anything else becomes a tensor."""
    if isinstance(x, (Tensor, bool, numbers.Number)) and not isinstance(x, np.generic):
        return x
    if isinstance(x, np.generic) and x.ndim == 0 and not isinstance(x, np.ndarray):
        return x.item()
    return asarray(x)


def operands(x1: ArrayLike, x2: ArrayLike) -> Tuple[Any, Any]:
    """Both operands of a binary op; at least one of the two comes back a tensor."""
    a, b = operand(x1), operand(x2)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = asarray(a)
    return a, b


def normalize_axes(axis: Axis, ndim: int, name: str) -> Tuple[int, ...]:
    """``axis`` as a sorted tuple of non-negative axes; None means every axis."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    out = []
    for ax in axes:
        ax = int(ax)
        out.append(normalize_axis(ax, ndim, name))
    if len(set(out)) != len(out):
        raise ValueError(f"[{name}] repeated axis in {axis!r}")
    return tuple(sorted(out))


def normalize_axis(axis: int, ndim: int, name: str) -> int:
    """One axis, made non-negative, checked against ``ndim``."""
    if not isinstance(axis, numbers.Integral) or not -ndim <= int(axis) < ndim:
        raise ValueError(f"[{name}] axis {axis} is out of bounds for an array of dimension "
                         f"{ndim}")
    return int(axis) % ndim
