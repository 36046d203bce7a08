"""Reductions as top-level functions and Tensor methods, with PyTorch's signatures.

The work is in C++ (deepcore._C); this module only resolves PyTorch's overloads:
``max(t)`` / ``max(t, dim)`` / ``max(t, other)``, ``var(t, unbiased)`` vs ``correction=``,
``norm(p='fro')``, and wraps (values, indices) results in named tuples
(``deepcore.return_types.max`` like ``torch.return_types.max``).
"""
from __future__ import annotations

import builtins as _builtins
import collections as _collections
import numbers as _numbers
import sys as _sys
import types as _types

from . import _C
from ._C import Tensor
from ._tensor import install_methods

# ---- named-tuple results ----------------------------------------------------------------------

return_types = _types.ModuleType("deepcore.return_types",
                                 "Named tuples returned by reductions (like torch.return_types).")


def _result_type(name, fields):
    cls = _collections.namedtuple(name, fields)
    cls.__module__ = "deepcore.return_types"
    setattr(return_types, name, cls)
    return cls


for _name in ("max", "min", "mode", "median", "kthvalue", "sort", "topk", "cummax", "cummin"):
    _result_type(_name, ["values", "indices"])
_result_type("aminmax", ["min", "max"])
_sys.modules["deepcore.return_types"] = return_types


def _is_dim(x) -> bool:
    return isinstance(x, _numbers.Integral)


def _extreme(name, input, dim, keepdim, other):
    if other is not None or isinstance(dim, Tensor):
        # Binary form: max(input, other) is maximum(input, other).
        other = dim if other is None else other
        return _C.maximum(input, other) if name == "max" else _C.minimum(input, other)
    if dim is None:
        if keepdim:
            raise TypeError(f"[{name}] keepdim=True needs a dim")
        return _C._max_all(input) if name == "max" else _C._min_all(input)
    if not _is_dim(dim):
        raise TypeError(f"[{name}] dim must be an int or a tensor (binary form), "
                        f"got {type(dim).__name__}")
    fn = _C._max_dim if name == "max" else _C._min_dim
    values, indices = fn(input, int(dim), _builtins.bool(keepdim))
    return getattr(return_types, name)(values, indices)


def max(input, dim=None, keepdim=False, *, other=None):  # noqa: A001
    """max(input) -> 0-d; max(input, dim, keepdim=False) -> (values, indices);
    max(input, other) -> maximum(input, other)."""
    return _extreme("max", input, dim, keepdim, other)


def min(input, dim=None, keepdim=False, *, other=None):  # noqa: A001
    """min(input) -> 0-d; min(input, dim, keepdim=False) -> (values, indices);
    min(input, other) -> minimum(input, other)."""
    return _extreme("min", input, dim, keepdim, other)


def aminmax(input, *, dim=None, keepdim=False):
    """(min, max) over dim (all dims if None)."""
    if dim is None and input.numel() == 0:
        raise RuntimeError("[aminmax] cannot compute aminmax over an empty tensor: the "
                           "operation has no identity")
    d = () if dim is None else dim
    return return_types.aminmax(_C.amin(input, d, keepdim), _C.amax(input, d, keepdim))


# ---- var / std ----------------------------------------------------------------------------------

def _correction(name, dim, unbiased, correction):
    if isinstance(dim, _builtins.bool):  # var(input, unbiased)
        if unbiased is not None:
            raise TypeError(f"[{name}] unbiased given twice")
        dim, unbiased = None, dim
    if correction is not None and unbiased is not None:
        raise TypeError(f"[{name}] pass either unbiased or correction, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return dim, float(correction)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over dim with divisor N - correction (unbiased=False means correction=0)."""
    dim, c = _correction("var", dim, unbiased, correction)
    return _C._var(input, dim, c, _builtins.bool(keepdim))


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation over dim with divisor N - correction."""
    dim, c = _correction("std", dim, unbiased, correction)
    return _C._std(input, dim, c, _builtins.bool(keepdim))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    dim, c = _correction("var_mean", dim, unbiased, correction)
    return _C._var(input, dim, c, keepdim), _C.mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    dim, c = _correction("std_mean", dim, unbiased, correction)
    return _C._std(input, dim, c, keepdim), _C.mean(input, dim, keepdim)


# ---- norm ---------------------------------------------------------------------------------------

def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector p-norm over dim (all dims if None): p = 2 / 'fro', 1, inf, -inf, 0 or any float."""
    if dtype is not None:
        input = _C._to_dtype(input, dtype, False)
    if p is None or (isinstance(p, str) and p == "fro"):
        p = 2.0
    elif isinstance(p, str):
        raise ValueError(f"[norm] unsupported norm type {p!r}: expected a number or 'fro'")
    return _C._norm(input, float(p), dim, _builtins.bool(keepdim))


# ---- the rest are plain C++ functions ---------------------------------------------------------

prod = _C.prod
amax = _C.amax
amin = _C.amin
argmax = _C.argmax
argmin = _C.argmin
logsumexp = _C.logsumexp
all = _C.all  # noqa: A001
any = _C.any  # noqa: A001
count_nonzero = _C.count_nonzero
cumsum = _C.cumsum
cumprod = _C.cumprod
logcumsumexp = _C.logcumsumexp


def cummax(input, dim):
    """Running maximum along dim and the index each value came from (the last of ties)."""
    return return_types.cummax(*_C._cummax(input, int(dim)))


def cummin(input, dim):
    """Running minimum along dim and the index each value came from (the last of ties)."""
    return return_types.cummin(*_C._cummin(input, int(dim)))


__all__ = ["cumprod", "logcumsumexp", "cummax", "cummin", "return_types", "max", "min", "aminmax", "var", "std", "var_mean", "std_mean", "norm",
           "prod", "amax", "amin", "argmax", "argmin", "logsumexp", "all", "any",
           "count_nonzero", "cumsum"]


install_methods(globals())
