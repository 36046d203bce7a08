"""Elementwise functions with NumPy's names, each one deepcore op (so each is differentiable
where its math is).

Python scalars are weakly typed, as in NumPy 2 and JAX: ``multiply(x, 2.5)`` keeps x's float
dtype, and a float scalar with an integer array gives float32 (deepcore's default float).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

from .. import _C
from .._C import Tensor
from .._composite import isclose as _isclose
from .._creation import full_like as _full_like
from ._util import ArrayLike, FLOAT32, asarray, operand, operands

# name: (deepcore op, what it computes). One row per function, as the op tables in csrc/ops.
UNARY = {
    "abs": (_C.abs, "absolute value"),
    "absolute": (_C.abs, "absolute value"),
    "negative": (_C.neg, "-x"),
    "sqrt": (_C.sqrt, "square root"),
    "square": (_C.square, "x * x"),
    "exp": (_C.exp, "e ** x"),
    "exp2": (_C.exp2, "2 ** x"),
    "expm1": (_C.expm1, "exp(x) - 1, accurate near 0"),
    "log": (_C.log, "natural logarithm"),
    "log2": (_C.log2, "base-2 logarithm"),
    "log10": (_C.log10, "base-10 logarithm"),
    "log1p": (_C.log1p, "log(1 + x), accurate near 0"),
    "sin": (_C.sin, "sine"),
    "cos": (_C.cos, "cosine"),
    "tan": (_C.tan, "tangent"),
    "arcsin": (_C.asin, "inverse sine"),
    "arccos": (_C.acos, "inverse cosine"),
    "arctan": (_C.atan, "inverse tangent"),
    "sinh": (_C.sinh, "hyperbolic sine"),
    "cosh": (_C.cosh, "hyperbolic cosine"),
    "tanh": (_C.tanh, "hyperbolic tangent"),
    "arcsinh": (_C.asinh, "inverse hyperbolic sine"),
    "arccosh": (_C.acosh, "inverse hyperbolic cosine"),
    "arctanh": (_C.atanh, "inverse hyperbolic tangent"),
    "sign": (_C.sign, "-1, 0 or 1 by the sign of x"),
    "floor": (_C.floor, "largest integer <= x"),
    "ceil": (_C.ceil, "smallest integer >= x"),
    "trunc": (_C.trunc, "x rounded toward zero"),
    "fix": (_C.trunc, "x rounded toward zero"),
    "reciprocal": (_C.reciprocal, "1 / x"),
    "isnan": (_C.isnan, "whether x is NaN"),
    "isinf": (_C.isinf, "whether x is +inf or -inf"),
    "isfinite": (_C.isfinite, "whether x is neither infinite nor NaN"),
    "logical_not": (_C.logical_not, "not x, elementwise"),
    "sinc": (_C.sinc, "sin(pi x) / (pi x)"),
}

BINARY = {
    "add": (_C.add, "x1 + x2"),
    "subtract": (_C.sub, "x1 - x2"),
    "multiply": (_C.mul, "x1 * x2"),
    "divide": (_C.div, "x1 / x2 (true division: integers give floats)"),
    "true_divide": (_C.div, "x1 / x2 (true division: integers give floats)"),
    "power": (_C.pow, "x1 ** x2"),
    "pow": (_C.pow, "x1 ** x2"),
    "remainder": (_C.remainder, "x1 mod x2, with the sign of x2 (Python's %)"),
    "mod": (_C.remainder, "x1 mod x2, with the sign of x2 (Python's %)"),
    "fmod": (_C.fmod, "x1 mod x2, with the sign of x1 (C's fmod)"),
    "arctan2": (_C.atan2, "the angle of the point (x2, x1)"),
    "hypot": (_C.hypot, "sqrt(x1 ** 2 + x2 ** 2)"),
    "copysign": (_C.copysign, "|x1| with the sign of x2"),
    "maximum": (_C.maximum, "the larger of x1 and x2 (NaN if either is)"),
    "minimum": (_C.minimum, "the smaller of x1 and x2 (NaN if either is)"),
    "logaddexp": (_C.logaddexp, "log(exp(x1) + exp(x2)), without overflow"),
    "logaddexp2": (_C.logaddexp2, "log2(2 ** x1 + 2 ** x2), without overflow"),
    "logical_and": (_C.logical_and, "x1 and x2, elementwise"),
    "logical_or": (_C.logical_or, "x1 or x2, elementwise"),
    "logical_xor": (_C.logical_xor, "x1 xor x2, elementwise"),
    "equal": (_C.eq, "x1 == x2"),
    "not_equal": (_C.ne, "x1 != x2"),
    "less": (_C.lt, "x1 < x2"),
    "less_equal": (_C.le, "x1 <= x2"),
    "greater": (_C.gt, "x1 > x2"),
    "greater_equal": (_C.ge, "x1 >= x2"),
    "bitwise_and": (_C.bitwise_and, "x1 & x2"),
    "bitwise_or": (_C.bitwise_or, "x1 | x2"),
    "bitwise_xor": (_C.bitwise_xor, "x1 ^ x2"),
}


def _make_unary(name: str, op: Callable, what: str) -> Callable:
    def fn(x: ArrayLike, /) -> Tensor:
        return op(asarray(x))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise {what}."
    return fn


def _make_binary(name: str, op: Callable, what: str) -> Callable:
    def fn(x1: ArrayLike, x2: ArrayLike, /) -> Tensor:
        return op(*operands(x1, x2))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise {what}, broadcasting x1 against x2."
    return fn


for _name, (_op, _what) in UNARY.items():
    globals()[_name] = _make_unary(_name, _op, _what)
for _name, (_op, _what) in BINARY.items():
    globals()[_name] = _make_binary(_name, _op, _what)


def positive(x: ArrayLike, /) -> Tensor:
    """Elementwise +x (a new tensor equal to x)."""
    return _C.clone(asarray(x))


def floor_divide(x1: ArrayLike, x2: ArrayLike, /) -> Tensor:
    """Elementwise floor(x1 / x2), broadcasting x1 against x2; for floats, NumPy's exact
    rule: consistent with ``remainder`` even where x1 / x2 rounds up to an integer."""
    a, b = operands(x1, x2)
    q = _C.floor_divide(a, b)
    if not q.dtype.is_floating_point:
        return q
    # NumPy's npy_divmod: floor((a - fmod(a, b)) / b), exact where floor(a / b) is not.
    a, b = asarray(a, q.dtype), asarray(b, q.dtype)
    mod = _C.fmod(a, b)
    div = (a - mod) / b
    div = _C.where((mod != 0) & ((b < 0) != (mod < 0)), div - 1, div)
    fl = _C.floor(div)
    fl = _C.where(div - fl > 0.5, fl + 1, fl)
    return _C.where(b == 0, a / b, fl)


def round(a: ArrayLike, decimals: int = 0) -> Tensor:  # noqa: A001
    """``a`` rounded to ``decimals`` decimal places, halves to even (NumPy's rule)."""
    a = asarray(a)
    if decimals == 0 or not a.dtype.is_floating_point:
        return _C.round(a) if a.dtype.is_floating_point else _C.clone(a)
    scale = 10.0 ** int(decimals)
    return _C.round(a * scale) / scale


around = round


def clip(a: ArrayLike, a_min: Optional[ArrayLike] = None, a_max: Optional[ArrayLike] = None, *,
         min: Optional[ArrayLike] = None, max: Optional[ArrayLike] = None) -> Tensor:  # noqa: A002
    """``a`` limited to [min, max]; either bound may be None (``a_min``/``a_max`` are NumPy's
    older names for them)."""
    lo = min if min is not None else a_min
    hi = max if max is not None else a_max
    a = asarray(a)
    if lo is None and hi is None:
        return _C.clone(a)
    return _C.clamp(a, None if lo is None else operand(lo), None if hi is None else operand(hi))


def where(condition: ArrayLike, x: ArrayLike = None, y: ArrayLike = None, /):
    """``x`` where ``condition`` holds, else ``y`` (broadcast together); with the condition
    alone, the indices of its nonzero elements, one tensor per axis (``nonzero``)."""
    if x is None and y is None:
        return nonzero(condition)
    if x is None or y is None:
        raise ValueError("[where] give both x and y, or neither")
    cond = asarray(condition)
    if cond.dtype != _C.dtype.bool:
        cond = cond != 0
    x, y = operands(x, y)
    return _C.where(cond, x, y)


def nonzero(a: ArrayLike) -> tuple:
    """The indices of the nonzero elements of ``a``, one int64 tensor per axis."""
    a = asarray(a)
    if a.ndim == 0:
        raise ValueError("[nonzero] not defined for 0-d arrays; use atleast_1d first")
    return tuple(_C.nonzero(a, as_tuple=True))


def heaviside(x1: ArrayLike, x2: ArrayLike, /) -> Tensor:
    """The Heaviside step: 0 where x1 < 0, x2 where x1 == 0, 1 where x1 > 0."""
    x1, x2 = operands(x1, x2)
    x1 = asarray(x1)
    dtype = x1.dtype if x1.dtype.is_floating_point else FLOAT32
    zero, one = _full_like(x1, 0, dtype=dtype), _full_like(x1, 1, dtype=dtype)
    return _C.where(x1 < 0, zero, _C.where(x1 > 0, one, operand(x2)))


def deg2rad(x: ArrayLike, /) -> Tensor:
    """Degrees converted to radians."""
    return asarray(x) * (math.pi / 180.0)


def rad2deg(x: ArrayLike, /) -> Tensor:
    """Radians converted to degrees."""
    return asarray(x) * (180.0 / math.pi)


radians, degrees = deg2rad, rad2deg


def isclose(a: ArrayLike, b: ArrayLike, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """Whether |a - b| <= atol + rtol * |b|, elementwise."""
    a, b = operands(a, b)
    a = asarray(a)
    return _isclose(a, b if isinstance(b, Tensor) else asarray(b, a.dtype), rtol, atol,
                    equal_nan)


def allclose(a: ArrayLike, b: ArrayLike, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """Whether every element of ``a`` is close to ``b`` (see ``isclose``)."""
    return bool(_C.all(isclose(a, b, rtol, atol, equal_nan)).item())


__all__ = sorted(UNARY) + sorted(BINARY) + [
    "floor_divide", "positive", "round", "around", "clip", "where", "nonzero", "heaviside",
    "deg2rad", "rad2deg", "radians", "degrees", "isclose", "allclose"]
