"""Samples, the OpInfo entry and the registry lookups every family module uses."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as TF

import deepcore as dc
import deepcore.nn.functional as F
from helpers import BROADCAST_PAIRS, GRAD_TOLS, INT_DTYPES, TOLS, np_dtype

F32, F64, I32, I64, BOOL = dc.float32, dc.float64, dc.int32, dc.int64, dc.bool
FLOATS = (F32, F64)
NUMERIC = (F32, F64, I32, I64)
ALL = (BOOL, I32, I64, F32, F64)

# ---- samples --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DType:
    """A dtype argument (``x.to(dtype)``, ``zeros(..., dtype=)``): converted per library."""
    dtype: Any


class Sample:
    """Positional and keyword arguments of one call, plus how to judge its result.

    check: fn(deepcore_result, torch_result, deepcore_args) replacing value comparison, for
      results that are random (shape, dtype and the distribution's support are checked instead).
    grad: False where the sample's gradient is not comparable (random results).
    xfail: names a known deepcore bug that makes this sample raise; the tests expect the error
      and fail when it goes away (strict), so the entry is updated with the fix.
    """

    def __init__(self, *args, check: Optional[Callable] = None, grad: bool = True,
                 desc: str = "", xfail: str = "", **kwargs):
        self.args = args
        self.kwargs = kwargs
        self.check = check
        self.grad = grad
        self.desc = desc
        self.xfail = xfail  # a known deepcore bug: the call must raise (strict)

    def __repr__(self):
        def r(a):
            if isinstance(a, np.ndarray):
                return f"{a.dtype}{list(a.shape)}"
            if isinstance(a, (list, tuple)):
                return "[" + ", ".join(r(x) for x in a) + "]"
            return repr(a)
        parts = [r(a) for a in self.args] + [f"{k}={r(v)}" for k, v in self.kwargs.items()]
        return f"{self.desc + ': ' if self.desc else ''}({', '.join(parts)})"


def arr(rng, shape, dtype, low=-2.0, high=2.0):
    """Uniform values in [low, high) (integers: inclusive; bool: fair coin)."""
    if dtype == BOOL:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype in INT_DTYPES:
        lo, hi = int(np.floor(low)), int(np.ceil(high))
        return np.asarray(rng.integers(lo, max(hi, lo + 1) + 1, size=shape), np_dtype(dtype))
    return np.asarray(rng.uniform(low, high, size=shape), np_dtype(dtype))


def away(rng, shape, dtype, lo=0.5, hi=2.0):
    """Values of either sign with |v| in [lo, hi]: away from kinks and poles at 0."""
    if dtype in INT_DTYPES:
        v = rng.integers(max(1, int(lo)), int(hi) + 4, size=shape) * rng.choice([-1, 1], shape)
        return np.asarray(v, np_dtype(dtype))
    v = rng.uniform(lo, hi, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return np.asarray(v, np_dtype(dtype))


def off_half(rng, shape, dtype):
    """Values whose fractional part is far from the rounding boundaries (round, floor...)."""
    if dtype in INT_DTYPES:
        return arr(rng, shape, dtype, -5, 5)
    v = rng.integers(-5, 6, size=shape) + rng.choice([0.2, 0.7, -0.3, 0.4, -0.6], size=shape)
    return np.asarray(v, np_dtype(dtype))


def idx(rng, shape, n):
    """int64 indices in [0, n)."""
    return np.asarray(rng.integers(0, n, size=shape), np.int64)


UNARY_SHAPES = [(3, 4), (2, 3, 5), (), (0, 3), (37,)]
PAIRS = [p if p != ((33,), (33,)) else ((37,), (37,)) for p in BROADCAST_PAIRS]


def reduction_tols(n: int) -> dict:
    """Tolerances for results that sum n terms of O(1) inputs: up to ~n ulps of the sum."""
    e32, e64 = 2.0 ** -24, 2.0 ** -53
    return {F32: (max(1e-5, 4 * n * e32), max(1e-6, 4 * n * e32)),
            F64: (max(1e-10, 4 * n * e64), max(1e-12, 4 * n * e64))}


# ---- the entry ------------------------------------------------------------------------------

@dataclasses.dataclass
class OpInfo:
    """How to run and judge one registered op.

    name: the registry name. op / ref: deepcore and torch callables (default: looked up by
      name, see `resolve`). samples: fn(rng, dtype) -> list[Sample].
    dtypes: the dtypes samples are drawn in. tols / grad_tols: per dtype (rtol, atol); integer
      and bool results must match exactly.
    grad: compare gradients with torch (default: the registry's differentiable mark).
    gradcheck / gradgrad: finite-difference checks of first / second derivatives in float64.
    meta: runs on the meta device (false for data-dependent output shapes).
    factory: creates a tensor from sizes (the meta check passes device="meta").
    inplace: mutates its first argument (gradients are taken through a clone of the leaf,
      which is then viewed in the sample's layout).
    layouts: which argument positions may be presented non-contiguous (None: every array).
    expand: whether the expanded layout applies (it makes values constant along a dim).
    grad_args: which argument positions / keyword names require grad (None: every floating
      array).
    skips / xfails: check name -> reason; each names the reason in words.
    """
    name: str
    samples: Callable
    op: Optional[Callable] = None
    ref: Optional[Callable] = None
    dtypes: Sequence = FLOATS
    tols: dict = dataclasses.field(default_factory=dict)
    grad_tols: dict = dataclasses.field(default_factory=dict)
    grad: Optional[bool] = None
    gradcheck: Optional[bool] = None
    gradgrad: bool = False
    meta: bool = True
    factory: bool = False
    inplace: bool = False
    layouts: Optional[Sequence[int]] = None
    expand: bool = True
    grad_args: Optional[Sequence] = None
    skips: dict = dataclasses.field(default_factory=dict)
    xfails: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.tols = {**TOLS, **self.tols}
        self.grad_tols = {**GRAD_TOLS, **self.grad_tols}
        self.label = self.name  # the test id: the name as written, add_ for add's in-place form
        self.name = registry_name(self.name)
        functional = _functional(self.label)
        if self.op is None:
            self.op = resolve(dc, F, dc.Tensor, self.label, functional)
        if self.ref is None:
            self.ref = resolve(torch, TF, torch.Tensor, self.label, functional)


# Families whose ops are called through nn.functional on both sides: torch's top-level
# namesakes (torch.batch_norm, torch.kl_div, ...) are the raw aten signatures. Where the
# registry says which module exports an op ("module"), that decides.
FUNCTIONAL_FAMILIES = {"loss", "norm", "pool", "conv", "dropout", "softmax"}
REGISTRY = {op["name"]: op for op in dc._C._op_registry()}


def _functional(name: str) -> bool:
    op = REGISTRY.get(name, {})
    if "module" in op:
        return op["module"] == "deepcore.nn.functional" or op["family"] in FUNCTIONAL_FAMILIES
    return op.get("family") in FUNCTIONAL_FAMILIES


def registry_name(name: str) -> str:
    """The registry entry an op is filed under: itself, or (where the registry lists in-place
    forms as a variant, not a name) the out-of-place op whose "inplace" variant it is."""
    if name in REGISTRY:
        return name
    base = name[:-1]
    if name.endswith("_") and "inplace" in REGISTRY.get(base, {}).get("variants", ()):
        return base
    raise KeyError(f"{name} is not a registered op")


def resolve(mod, functional, tensor_cls, name, prefer_functional=False):
    """The callable named `name`: module attribute, nn.functional attribute, Tensor method."""
    for ns in ((functional, mod) if prefer_functional else (mod, functional)):
        if hasattr(ns, name):
            return getattr(ns, name)
    if hasattr(tensor_cls, name):
        return method(name)
    raise AttributeError(f"no callable named {name}")


def method(name):
    def call(self, *args, **kwargs):
        return getattr(self, name)(*args, **kwargs)
    call.__name__ = f"Tensor.{name}"
    return call


def both(fn):
    """The same code for both libraries; `fn(lib, *args)` gets deepcore or torch as `lib`."""
    return {"op": lambda *a, **k: fn(dc, *a, **k), "ref": lambda *a, **k: fn(torch, *a, **k)}


OPS: list[OpInfo] = []


def add(name, samples, **kw):
    OPS.append(OpInfo(name, samples, **kw))
