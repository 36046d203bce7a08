"""deepcore.numpy: a NumPy-style namespace over deepcore tensors, as jax.numpy is over JAX.

``import deepcore.numpy as jnp`` gives NumPy's (and the array API's) names, signatures and
semantics: ``axis``/``keepdims`` instead of ``dim``/``keepdim``, ``axis=None`` reducing every
axis, ``dot`` and ``split`` as NumPy defines them. Every function takes tensors, NumPy arrays,
scalars or nested lists, returns deepcore Tensors, and is built from deepcore ops, so it is
differentiable with ``deepcore.func.grad`` or ``deepcore.autograd.grad`` wherever the math is.

Dtypes: Python floats give float32 and Python ints int64 (deepcore's defaults; jax.numpy without
x64 gives float32 and int32); a NumPy array keeps its dtype. Integer inputs to ``mean``, ``var``,
``std``, ``divide`` and the transcendental functions give float32. Arrays are values: there is
no ``out=``, and ``empty`` returns zeros, as in jax.numpy.
"""
from __future__ import annotations

import builtins as _builtins
import math as _math

from .._C import Tensor
from .. import _C
from .._type_info import finfo, iinfo
from . import linalg
from ._creation import *  # noqa: F401,F403
from ._creation import __all__ as _creation_all
from ._elementwise import *  # noqa: F401,F403
from ._elementwise import __all__ as _elementwise_all
from ._products import *  # noqa: F401,F403
from ._products import __all__ as _products_all
from ._reductions import *  # noqa: F401,F403
from ._reductions import __all__ as _reductions_all
from ._shape import *  # noqa: F401,F403
from ._shape import __all__ as _shape_all
from ._util import DTypeLike, asarray as _asarray, to_dtype

ndarray = Tensor

# ---- dtypes ---------------------------------------------------------------------------------
bool_ = _C.dtype.bool
bool = _C.dtype.bool  # noqa: A001  (the array API's name)
int32 = _C.dtype.int32
int64 = _C.dtype.int64
float32 = _C.dtype.float32
float64 = _C.dtype.float64
float_ = float32
int_ = int64

# ---- constants --------------------------------------------------------------------------------
pi = _math.pi
e = _math.e
inf = _math.inf
nan = _math.nan
euler_gamma = 0.5772156649015329
newaxis = None


def promote_types(type1: DTypeLike, type2: DTypeLike) -> _C.dtype:
    """The smallest dtype both ``type1`` and ``type2`` convert to safely."""
    return _C.promote_types(to_dtype(type1), to_dtype(type2))


def result_type(*arrays_and_dtypes) -> _C.dtype:
    """The dtype an operation on all the given arrays and dtypes returns."""
    out = None
    for x in arrays_and_dtypes:
        is_dtype = isinstance(x, (_C.dtype, str, type)) and not isinstance(x, Tensor)
        d = to_dtype(x) if is_dtype else _asarray(x).dtype
        out = d if out is None else _C.promote_types(out, d)
    if out is None:
        raise ValueError("[result_type] needs at least one array or dtype")
    return out


class floating:
    """The kind of floating-point dtypes, for ``issubdtype``."""


class integer:
    """The kind of integer dtypes, for ``issubdtype``."""


def issubdtype(arg1: DTypeLike, arg2) -> _builtins.bool:
    """Whether dtype ``arg1`` is ``arg2``, or of its kind (``floating``, ``integer``)."""
    d = to_dtype(arg1)
    if arg2 is floating:
        return d.is_floating_point
    if arg2 is integer:
        return d in (int32, int64)
    return d == to_dtype(arg2)


__all__ = (list(_creation_all) + list(_elementwise_all) + list(_products_all) +
           list(_reductions_all) + list(_shape_all) +
           ["linalg", "ndarray", "bool_", "bool", "int32", "int64", "float32", "float64",
            "float_", "int_", "pi", "e", "inf", "nan", "euler_gamma", "newaxis", "finfo",
            "iinfo", "promote_types", "result_type", "issubdtype", "floating", "integer"])
