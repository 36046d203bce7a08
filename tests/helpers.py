"""One harness for comparing deepcore ops with PyTorch (the numeric oracle).

``check_op(dc_fn, torch_fn, shapes, ...)`` builds seeded random inputs, runs both libraries,
compares the forward result with dtype-aware tolerances, backpropagates the same random
upstream gradient through both and compares the gradient of every input. It then repeats the
case with each input made non-contiguous in turn (transposed, sliced with a step, expanded from
a size-1 dim), so the strided and broadcast paths of every kernel are exercised; gradients are
compared on the leaf the view was taken from, which also checks the view's own backward.

``gradcheck_op`` runs ``deepcore.autograd.gradcheck`` (finite differences) in float64.
"""
from __future__ import annotations

import numbers
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

import deepcore as dc

FLOAT_DTYPES = (dc.float32, dc.float64)
INT_DTYPES = (dc.int32, dc.int64)
ALL_DTYPES = (dc.bool, dc.int32, dc.int64, dc.float32, dc.float64)

_TO_TORCH = {dc.bool: torch.bool, dc.int32: torch.int32, dc.int64: torch.int64,
             dc.float32: torch.float32, dc.float64: torch.float64}
_TO_DC = {v: k for k, v in _TO_TORCH.items()}
_TO_NP = {dc.bool: np.bool_, dc.int32: np.int32, dc.int64: np.int64,
          dc.float32: np.float32, dc.float64: np.float64}

# Forward tolerances (rtol, atol) per dtype; integer and bool results must match exactly.
TOLS = {dc.float32: (1e-5, 1e-6), dc.float64: (1e-10, 1e-12)}
# Gradients go through more arithmetic (and different summation orders).
GRAD_TOLS = {dc.float32: (1e-4, 1e-5), dc.float64: (1e-9, 1e-11)}

# Broadcasting pairs used by binary ops: (a, b) with every kind of size-1 / missing dim.
BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((2, 1, 4), (3, 1)),
    ((1, 5), (6, 1)),
    ((2, 3, 4), ()),
    ((), (2, 3)),
    ((0, 3), (3,)),
    ((33,), (33,)),  # not a multiple of any vector width
]


def torch_dtype(d):
    return _TO_TORCH[d]


def dc_dtype(d):
    return _TO_DC[d]


def np_dtype(d):
    return _TO_NP[d]


def to_numpy(x) -> np.ndarray:
    if isinstance(x, dc.Tensor):
        return np.array(x.detach().numpy(), copy=True)
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy().copy()
    return np.asarray(x)


def assert_close(actual, expected, *, rtol=None, atol=None, check_dtype=True, msg=""):
    """deepcore `actual` vs torch `expected`: same shape, same dtype, values within tolerance."""
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)), f"{msg}: expected a sequence, got {type(actual)}"
        assert len(actual) == len(expected), f"{msg}: {len(actual)} results vs {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, rtol=rtol, atol=atol, check_dtype=check_dtype, msg=f"{msg}[{i}]")
        return
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, dc.Tensor), f"{msg}: expected a Tensor, got {type(actual)}"
        assert tuple(actual.shape) == tuple(expected.shape), \
            f"{msg}: shape {tuple(actual.shape)} != torch {tuple(expected.shape)}"
        if check_dtype:
            assert actual.dtype == dc_dtype(expected.dtype), \
                f"{msg}: dtype {actual.dtype} != torch {expected.dtype}"
        dt = actual.dtype
    else:
        dt = None
    a, e = to_numpy(actual), to_numpy(expected)
    if dt is not None and dt.is_floating_point or a.dtype.kind == "f":
        r, t = TOLS.get(dt, (1e-5, 1e-6)) if dt is not None else (1e-5, 1e-6)
        r = r if rtol is None else rtol
        t = t if atol is None else atol
        np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=r, atol=t,
                                   equal_nan=True, err_msg=msg)
    else:
        np.testing.assert_array_equal(a, e, err_msg=msg)


# ---- inputs ---------------------------------------------------------------------------------

def random_array(rng, shape, dtype, low=-2.0, high=2.0):
    if dtype == dc.bool:
        return rng.random(shape) < 0.5
    if dtype in INT_DTYPES:
        lo, hi = int(np.floor(low)), int(np.ceil(high))
        if hi <= lo:
            hi = lo + 1
        return rng.integers(lo, hi + 1, size=shape).astype(np_dtype(dtype))
    return rng.uniform(low, high, size=shape).astype(np_dtype(dtype))


class _Input:
    """One operand: the array of values, how to lay it out, and the leaf grads are taken on."""

    def __init__(self, arr, layout):
        self.arr = arr
        self.layout = layout

    def build(self, lib, requires_grad):
        """Returns (leaf, operand) in `lib` ('dc' or 'torch'); operand has self.arr's values."""
        arr = self.arr
        if self.layout == "transposed":
            base = np.ascontiguousarray(np.swapaxes(arr, -1, -2))
        elif self.layout == "strided":
            shape = arr.shape[:-1] + (2 * arr.shape[-1] + 1,)
            base = np.zeros(shape, dtype=arr.dtype)
            base[..., 1::2] = arr
        else:  # contiguous, or "expanded" (arr already has its size-1 dim; expanded below)
            base = np.ascontiguousarray(arr)
        if lib == "dc":
            leaf = dc.tensor(base)
        else:
            leaf = torch.from_numpy(base.copy())
        if requires_grad:
            leaf.requires_grad_(True)
        if self.layout == "transposed":
            op = leaf.transpose(-1, -2)
        elif self.layout == "strided":
            op = leaf[..., 1::2]
        elif isinstance(self.layout, tuple) and self.layout[0] == "expanded":
            op = leaf.expand(*self.layout[1])
        else:
            op = leaf
        return leaf, op


def _layouts(shape):
    """Non-contiguous ways to present an operand of `shape`."""
    out = []
    if len(shape) >= 2 and shape[-1] > 1 and shape[-2] > 1:
        out.append("transposed")
    if len(shape) >= 1 and shape[-1] > 0:
        out.append("strided")
    for d, s in enumerate(shape):
        if s > 1:
            out.append(("expanded", tuple(shape), d))
            break
    return out


def _is_shape(s):
    return isinstance(s, tuple)


def _per_input(value, n):
    if isinstance(value, (list, tuple)) and len(value) == n and not isinstance(value, dc.dtype):
        return list(value)
    return [value] * n


def _run(fn, args):
    out = fn(*args)
    return out


def _float_outputs(out):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, (dc.Tensor, torch.Tensor))]


def check_op(dc_fn: Callable, torch_fn: Callable, shapes: Iterable[Sequence], *,
             dtypes=(dc.float32, dc.float64), grad: bool = True, noncontig: bool = True,
             low=-2.0, high=2.0, rtol=None, atol=None, grad_rtol=None, grad_atol=None,
             check_dtype: bool = True, seed: int = 0, init: Callable | None = None) -> int:
    """Compares dc_fn and torch_fn on every case; returns the number of cases run.

    shapes: one entry per case; each entry is a tuple with one item per operand: a shape tuple
      (a random tensor), or a Python number / other object passed to both functions as is.
    dtypes: dtypes to try; an entry may be a tuple giving one dtype per operand (promotion).
    low/high: value range of random inputs; a per-operand list is allowed.
    init: optional fn(rng, shape, dtype, operand_index) -> ndarray to draw inputs.
    grad: also compare gradients for floating operands (when the output is floating).
    """
    n_cases = 0
    for case_i, case in enumerate(shapes):
        case = tuple(case)
        for dt_i, dts in enumerate(dtypes):
            dts = _per_input(dts, len(case))
            lows, highs = _per_input(low, len(case)), _per_input(high, len(case))
            rng = np.random.default_rng(seed + 7919 * case_i + 104729 * dt_i)
            arrays = []
            for k, item in enumerate(case):
                if _is_shape(item):
                    arr = (init(rng, item, dts[k], k) if init else
                           random_array(rng, item, dts[k], lows[k], highs[k]))
                    arrays.append(np.asarray(arr, dtype=np_dtype(dts[k])))
                else:
                    arrays.append(item)
            variants = [["contig"] * len(case)]
            if noncontig:
                for k, item in enumerate(case):
                    if not _is_shape(item):
                        continue
                    for lay in _layouts(item):
                        v = ["contig"] * len(case)
                        v[k] = lay
                        variants.append(v)
            grng = np.random.default_rng(seed + 31 * case_i + 17 * dt_i + 1)
            for variant in variants:
                _compare_once(dc_fn, torch_fn, case, arrays, dts, variant, grad, grng, rtol, atol,
                              grad_rtol, grad_atol, check_dtype,
                              f"case {case} dtypes {[str(d) for d in dts]} layout {variant}")
                n_cases += 1
    return n_cases


def _compare_once(dc_fn, torch_fn, case, arrays, dts, variant, grad, grng, rtol, atol,
                  grad_rtol, grad_atol, check_dtype, msg):
    dc_args, th_args, dc_leaves, th_leaves = [], [], [], []
    for k, item in enumerate(case):
        if not _is_shape(item):
            dc_args.append(item)
            th_args.append(item)
            dc_leaves.append(None)
            th_leaves.append(None)
            continue
        lay = variant[k]
        arr = arrays[k]
        if isinstance(lay, tuple):  # expanded: take one slice along the dim, expand it back
            d = lay[2]
            arr = np.take(arr, [0], axis=d)
        inp = _Input(arr, lay)
        wants = grad and dts[k].is_floating_point
        dl, do = inp.build("dc", wants)
        tl, to = inp.build("torch", wants)
        dc_args.append(do)
        th_args.append(to)
        dc_leaves.append(dl if wants else None)
        th_leaves.append(tl if wants else None)
    expected = torch_fn(*th_args)
    actual = dc_fn(*dc_args)
    assert_close(actual, expected, rtol=rtol, atol=atol, check_dtype=check_dtype,
                 msg=f"forward {msg}")
    if not grad or not any(l is not None for l in dc_leaves):
        return
    th_outs = [o for o in _float_outputs(expected) if o.requires_grad]
    dc_outs = [a for a, o in zip(_float_outputs(actual), _float_outputs(expected))
               if o.requires_grad]
    if not th_outs:
        return
    ups = [grng.standard_normal(tuple(o.shape)).astype(np_dtype(dc_dtype(o.dtype)))
           for o in th_outs]
    torch.autograd.backward(th_outs, [torch.from_numpy(u) for u in ups])
    for o in dc_outs:
        assert o.requires_grad, f"{msg}: deepcore output does not require grad"
    dc.autograd.backward(dc_outs, [dc.tensor(u) for u in ups])
    for k, (dl, tl) in enumerate(zip(dc_leaves, th_leaves)):
        if dl is None:
            continue
        if tl.grad is None:
            assert dl.grad is None or not np.any(to_numpy(dl.grad)), \
                f"{msg}: input {k} got a gradient, torch has none"
            continue
        assert dl.grad is not None, f"backward {msg}: input {k} has no gradient"
        r, a = GRAD_TOLS[dts[k]]
        assert_close(dl.grad, tl.grad, rtol=grad_rtol or r, atol=grad_atol or a,
                     msg=f"grad of input {k}, {msg}")


def gradcheck_op(dc_fn: Callable, shapes: Sequence, *, low=-2.0, high=2.0, seed=0,
                 init: Callable | None = None, eps=1e-6, atol=1e-5, rtol=1e-3) -> bool:
    """Finite-difference check of dc_fn's gradients in float64 on one case."""
    rng = np.random.default_rng(seed)
    lows, highs = _per_input(low, len(shapes)), _per_input(high, len(shapes))
    args = []
    for k, item in enumerate(shapes):
        if _is_shape(item):
            arr = (init(rng, item, dc.float64, k) if init else
                   random_array(rng, item, dc.float64, lows[k], highs[k]))
            args.append(dc.tensor(np.asarray(arr, dtype=np.float64), requires_grad=True))
        else:
            args.append(item)
    return dc.autograd.gradcheck(dc_fn, args, eps=eps, atol=atol, rtol=rtol)


def is_number(x) -> bool:
    return isinstance(x, numbers.Number)


# ---- tensor arguments of a built OpInfo sample (test_ops.Built), by path --------------------
# A path is (position or keyword, index into a list/tuple argument, ...).

def tensor_paths(built, keep) -> list:
    """(path, tensor) for every deepcore tensor argument of `built` for which keep(path, t)."""
    out = []

    def walk(x, path):
        if isinstance(x, dc.Tensor):
            if keep(path, x):
                out.append((path, x))
        elif isinstance(x, (list, tuple)):
            for j, v in enumerate(x):
                walk(v, path + (j,))
    for k, a in enumerate(built.args):
        walk(a, (k,))
    for k, a in built.kwargs.items():
        walk(a, (k,))
    return out


def tensors_at(built, paths) -> list:
    """The arguments of `built` at `paths`."""
    out = []
    for p in paths:
        x = built.args[p[0]] if isinstance(p[0], int) else built.kwargs[p[0]]
        for j in p[1:]:
            x = x[j]
        out.append(x)
    return out


def put_tensors(built, paths, values):
    """(args, kwargs) of `built` with `values` in place of the arguments at `paths`."""
    args, kwargs = list(built.args), dict(built.kwargs)

    def put(x, path, v):
        if not path:
            return v
        new = list(x)
        new[path[0]] = put(x[path[0]], path[1:], v)
        return type(x)(new)
    for p, v in zip(paths, values):
        if isinstance(p[0], int):
            args[p[0]] = put(args[p[0]], p[1:], v)
        else:
            kwargs[p[0]] = put(kwargs[p[0]], p[1:], v)
    return args, kwargs
