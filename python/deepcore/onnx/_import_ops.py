"""The ONNX operators ``deepcore.onnx.load`` runs, one row each (default domain, opsets 13..21).

A row's builder sees a node once, at load (its attributes decoded, the values of its inputs that
are constant at load), checks what it can, and returns the function the execution plan calls on
every forward: ``fn(*inputs)`` with ``None`` for an absent optional input, returning one tensor,
or a tuple when the node declares several outputs. Everything runs on deepcore's C++ ops, so
autograd records the graph like any model's.

The calls of deepcore's own model-local functions (domain ``ai.deepcore``, Note [deepcore functions
in ONNX] in _exporter.py) have rows too, in FUNCTIONS: they run deepcore's kernel, where
inlining the function's body would round differently.

Note [ONNX shapes at run time]
Shape tensors (``Shape -> Gather -> Concat -> Reshape`` chains) are ordinary int64 tensors, so a
graph exported with dynamic axes runs at any size. An op that needs Python ints (Reshape's
shape, Slice's starts) reads them once at load when the input is constant, else calls
``tolist()`` on the small tensor each forward (about 2 us).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from .. import _C
from .._C import Tensor
from ._exporter import FUNCTION_DOMAIN, FUNCTION_VERSION

__all__ = ["DTYPES", "FUNCTIONS", "FUNCTION_DOMAIN", "FUNCTION_VERSION", "MAX_OPSET",
           "MIN_OPSET", "NP_DTYPES", "OPS", "NodeSpec", "OpRow", "function", "op"]

MIN_OPSET, MAX_OPSET = 13, 21

# ONNX TensorProto element types that deepcore holds (the other types are refused at load).
DTYPES = {1: _C.dtype.float32, 11: _C.dtype.float64, 6: _C.dtype.int32, 7: _C.dtype.int64,
          9: _C.dtype.bool}
NP_DTYPES = {_C.dtype.float32: np.float32, _C.dtype.float64: np.float64,
             _C.dtype.int32: np.int32, _C.dtype.int64: np.int64, _C.dtype.bool: np.bool_}


class NodeSpec:
    """One node as its builder sees it: decoded attributes, and per input whether it is given
    and (when constant at load) its value."""

    def __init__(self, name: str, op: str, opset: int, attrs: Dict[str, Any],
                 inputs: Sequence[bool], consts: Sequence[Optional[Tensor]],
                 outputs: Sequence[bool], shapes: Sequence[Optional[tuple]],
                 initial: Sequence[Optional[Tensor]] = (), domain: str = "") -> None:
        self.name, self.op, self.opset, self.attrs = name, op, opset, attrs
        self.domain = domain  # "" or FUNCTION_DOMAIN; opset is the default domain's either way
        self.present = list(inputs)      # input i given (an empty name is an absent input)
        self.consts = list(consts)       # input i's value when it is constant at load
        self.shapes = list(shapes)       # input i's shape when known at load (initializers)
        self.initial = list(initial) or [None] * len(self.present)  # initializers' values
        self.out_used = list(outputs)    # output i has a consumer name
        self.n_out = len(outputs)

    def where(self) -> str:
        version = FUNCTION_VERSION if self.domain else self.opset
        return f"node '{self.name}' (op '{self.op}', domain '{self.domain}', opset {version})"

    def unsupported(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"[onnx.load] {self.where()} is not supported: {what}")

    def invalid(self, what: str) -> ValueError:
        return ValueError(f"[onnx.load] {self.where()} is invalid: {what}")

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def has(self, i: int) -> bool:
        return i < len(self.present) and self.present[i]

    def const_ints(self, i: int) -> Optional[List[int]]:
        """Input i as a list of ints when constant at load (None when runtime or absent)."""
        c = self.consts[i] if i < len(self.consts) else None
        return None if c is None else _ints(c)

    def const_value(self, i: int) -> Any:
        c = self.consts[i] if i < len(self.consts) else None
        return None if c is None else c.item()


class OpRow:
    __slots__ = ("attrs", "build", "foldable", "since")

    def __init__(self, build: Callable[[NodeSpec], Callable], attrs: Sequence[str],
                 since: int, foldable: bool) -> None:
        self.build, self.attrs, self.since, self.foldable = build, frozenset(attrs), since, foldable


OPS: Dict[str, OpRow] = {}
FUNCTIONS: Dict[str, OpRow] = {}  # the functions of FUNCTION_DOMAIN, by name


def op(*names: str, attrs: Sequence[str] = (), since: int = MIN_OPSET, foldable: bool = True):
    """Registers a builder for ``names``; ``since`` is the first opset with the form built here
    (Gelu 20, LayerNormalization 17, ...); attributes outside ``attrs`` are refused at load."""
    def register(build):
        for name in names:
            OPS[name] = OpRow(build, attrs, since, foldable)
        return build
    return register


def function(*names: str, attrs: Sequence[str] = ()):
    """Registers a builder for calls of deepcore's functions ``names`` (domain FUNCTION_DOMAIN,
    version FUNCTION_VERSION); every attribute in ``attrs`` is required."""
    def register(build):
        def checked(spec: NodeSpec):
            missing = [a for a in attrs if a not in spec.attrs]
            if missing:
                raise spec.invalid(f"attribute '{missing[0]}' is required")
            return build(spec)
        for name in names:
            FUNCTIONS[name] = OpRow(checked, attrs, MIN_OPSET, True)
        return build
    return register


# ---- value helpers ------------------------------------------------------------------------------

def _ints(t: Tensor) -> List[int]:
    """A small int tensor (a shape, axes, indices) as a flat list of Python ints."""
    if t.is_cuda:
        t = _C._to_device(t, "cpu")
    a = _C._to_numpy(_C.contiguous(t), True)
    return a.tolist() if a.ndim == 1 else [int(v) for v in a.reshape(-1)]


def _norm_axis(axis: int, rank: int, what: str) -> int:
    if not -rank <= axis < max(rank, 1):
        raise IndexError(f"[onnx] {what}: axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _int_tensor(values: Sequence[int], like: Tensor) -> Tensor:
    """A small int64 tensor on ``like``'s device (shape values, index lists)."""
    t = _C.from_numpy(np.array(values, dtype=np.int64))
    return _C._to_device(t, str(like.device)) if like.is_cuda else t


def _on_device_of(t: Tensor, like: Tensor) -> Tensor:
    """``t`` (made on the CPU) moved to ``like``'s device when that is not the CPU."""
    return _C._to_device(t, str(like.device)) if like.is_cuda else t


def _torch_pads(pads: Sequence[int]) -> List[int]:
    """ONNX pads [b1, b2, ..., e1, e2, ...] (first axis first) -> torch's pad list (last dim
    first: [b_last, e_last, b_prev, e_prev, ...])."""
    n = len(pads) // 2
    out: List[int] = []
    for i in reversed(range(n)):
        out += [int(pads[i]), int(pads[i + n])]
    return out


def _keep_dtype(out: Tensor, x: Tensor) -> Tensor:
    """ONNX results keep the input's type where torch-style kernels widen (int32 sums)."""
    return out if out.dtype == x.dtype else _C._to_dtype(out, x.dtype, False)


def _fix_negative(idx: Tensor, size: int) -> Tensor:
    """ONNX indices may count from the end; deepcore's index ops take them in [0, size)."""
    return _C.where(_C.lt(idx, 0), _C.add(idx, size), idx)


# ---- elementwise ---------------------------------------------------------------------------------

_UNARY = {
    "Abs": _C.abs, "Neg": _C.neg, "Exp": _C.exp, "Log": _C.log, "Sqrt": _C.sqrt,
    "Reciprocal": _C.reciprocal, "Floor": _C.floor, "Ceil": _C.ceil, "Round": _C.round,
    "Sign": _C.sign, "Erf": _C.erf, "Tanh": _C.tanh, "Sigmoid": _C.sigmoid, "Relu": _C.relu,
    "Sin": _C.sin, "Cos": _C.cos, "Tan": _C.tan, "Asin": _C.asin, "Acos": _C.acos,
    "Atan": _C.atan, "Sinh": _C.sinh, "Cosh": _C.cosh, "Asinh": _C.asinh, "Acosh": _C.acosh,
    "Atanh": _C.atanh, "IsNaN": _C.isnan, "Not": _C.logical_not, "Softsign": _C.softsign,
    "HardSwish": _C.hardswish,
}
_BINARY = {
    "Add": _C.add, "Sub": _C.sub, "Mul": _C.mul, "Equal": _C.eq, "Less": _C.lt,
    "LessOrEqual": _C.le, "Greater": _C.gt, "GreaterOrEqual": _C.ge, "And": _C.logical_and,
    "Or": _C.logical_or, "Xor": _C.logical_xor, "BitwiseAnd": _C.bitwise_and,
    "BitwiseOr": _C.bitwise_or, "BitwiseXor": _C.bitwise_xor,
}
_VARIADIC = {"Max": _C.maximum, "Min": _C.minimum, "Sum": _C.add, "Mean": _C.add}

for _name, _fn in _UNARY.items():
    op(_name)(lambda spec, fn=_fn: fn)
for _name, _fn in _BINARY.items():
    op(_name, since=18 if _name.startswith("Bitwise") else MIN_OPSET)(lambda spec, fn=_fn: fn)
op("Identity")(lambda spec: lambda x: x)
op("Softplus")(lambda spec: lambda x: _C.softplus(x, 1.0, math.inf))
op("Mish", since=18)(lambda spec: _C.mish)


@op(*_VARIADIC)
def _variadic(spec: NodeSpec):
    fn, mean = _VARIADIC[spec.op], spec.op == "Mean"

    def run(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return _C.div(out, float(len(xs))) if mean and len(xs) > 1 else out
    return run


@op("Div")
def _div(spec: NodeSpec):
    def run(a, b):  # integer Div truncates toward zero (C semantics), float is true division
        if a.dtype.is_floating_point:
            return _C.div(a, b)
        return _C.div(a, b, rounding_mode="trunc")
    return run


@op("Pow")
def _pow(spec: NodeSpec):
    def run(x, y):  # the result keeps the base's type (ONNX), whatever the exponent's
        out = _C.pow(x, y)
        return out if out.dtype == x.dtype else _C._to_dtype(out, x.dtype, False)
    return run


@op("Mod", attrs=("fmod",))
def _mod(spec: NodeSpec):
    return _C.fmod if spec.attr("fmod", 0) else _C.remainder


@op("IsInf", attrs=("detect_negative", "detect_positive"))
def _isinf(spec: NodeSpec):
    neg, pos = spec.attr("detect_negative", 1), spec.attr("detect_positive", 1)
    if neg and pos:
        return _C.isinf
    if not (neg or pos):
        return lambda x: _C.logical_and(_C.isinf(x), _C.isnan(x))  # all False, x's shape
    return lambda x: _C.logical_and(_C.isinf(x), _C.gt(x, 0.0) if pos else _C.lt(x, 0.0))


@op("LeakyRelu", attrs=("alpha",))
def _leaky_relu(spec: NodeSpec):
    alpha = spec.attr("alpha", 0.01)
    return lambda x: _C.leaky_relu(x, alpha)


@op("Elu", attrs=("alpha",))
def _elu(spec: NodeSpec):
    alpha = spec.attr("alpha", 1.0)
    return lambda x: _C.elu(x, alpha)


@op("Celu", attrs=("alpha",))
def _celu(spec: NodeSpec):
    alpha = spec.attr("alpha", 1.0)
    return lambda x: _C.celu(x, alpha)


_SELU_ALPHA, _SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875


@op("Selu", attrs=("alpha", "gamma"))
def _selu(spec: NodeSpec):
    alpha, gamma = spec.attr("alpha", _SELU_ALPHA), spec.attr("gamma", _SELU_GAMMA)
    if (alpha, gamma) == (_SELU_ALPHA, _SELU_GAMMA):  # the constants: deepcore's selu kernel
        return _C.selu
    return lambda x: _C.mul(_C.elu(x, alpha), gamma)


@op("ThresholdedRelu", attrs=("alpha",))
def _thresholded_relu(spec: NodeSpec):
    alpha = spec.attr("alpha", 1.0)
    return lambda x: _C._threshold(x, alpha, 0.0)


@op("HardSigmoid", attrs=("alpha", "beta"))
def _hard_sigmoid(spec: NodeSpec):
    alpha, beta = spec.attr("alpha", 0.2), spec.attr("beta", 0.5)
    if alpha == float(np.float32(1.0 / 6.0)) and beta == 0.5:  # hardsigmoid: x / 6 + 1/2
        return _C.hardsigmoid
    return lambda x: _C.clamp(_C.add(_C.mul(x, alpha), beta), 0.0, 1.0)


@op("PRelu")
def _prelu(spec: NodeSpec):
    return lambda x, slope: _C.where(_C.lt(x, 0.0), _C.mul(x, slope), x)


@op("Shrink", attrs=("bias", "lambd"))
def _shrink(spec: NodeSpec):
    bias, lambd = spec.attr("bias", 0.0), spec.attr("lambd", 0.5)
    if bias == 0.0:  # hardshrink: x where |x| > lambd
        return lambda x: _C._hardshrink(x, lambd)
    if bias == lambd:  # softshrink: x moved toward 0 by lambd
        return lambda x: _C._softshrink(x, lambd)

    def run(x):  # x - bias above lambd, x + bias below -lambd, 0 between
        zero = _C.mul(x, 0.0)
        return _C.where(_C.gt(x, lambd), _C.sub(x, bias),
                        _C.where(_C.lt(x, -lambd), _C.add(x, bias), zero))
    return run


@op("Gelu", attrs=("approximate",), since=20)
def _gelu(spec: NodeSpec):
    approximate = spec.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise spec.unsupported(f"approximate='{approximate}' (expected 'none' or 'tanh')")
    return lambda x: _C.gelu(x, approximate)


@op("Clip")
def _clip(spec: NodeSpec):
    lo, hi = spec.const_value(1), spec.const_value(2)
    if (lo is not None or not spec.has(1)) and (hi is not None or not spec.has(2)):
        return lambda x, *_: _C.clamp(x, lo, hi)
    return lambda x, lo=None, hi=None: _C.clamp(x, lo, hi)


@op("Where")
def _where(spec: NodeSpec):
    return _C.where


@op("Cast", attrs=("to", "saturate"))
def _cast(spec: NodeSpec):
    to = DTYPES.get(spec.attr("to"))
    if to is None:
        raise spec.unsupported(f"cast to ONNX type {spec.attr('to')} (deepcore holds float, "
                               "double, int32, int64 and bool)")
    return lambda x: x if x.dtype == to else _C._to_dtype(x, to, False)


@op("CastLike", attrs=("saturate",), since=15)
def _cast_like(spec: NodeSpec):
    return lambda x, like: x if x.dtype == like.dtype else _C._to_dtype(x, like.dtype, False)


@op("Dropout", attrs=("seed",), foldable=False)
def _dropout(spec: NodeSpec):
    ratio, training = spec.const_value(1), spec.const_value(2)
    want_mask = spec.n_out > 1 and spec.out_used[1]

    def run(x, r=None, train=None):
        p = ratio if ratio is not None else (0.5 if r is None else float(r.item()))
        on = training if training is not None else (train is not None and bool(train.item()))
        if on and p > 0.0:  # training_mode=True: drop with probability p, scale the rest
            keep = _on_device_of(_C._rand(list(x.shape), x.dtype, False), x)
            keep = _C.ge(keep, p)
            y = _C.mul(_C.mul(x, keep), 1.0 / (1.0 - p))
        else:
            y, keep = x, None
        if spec.n_out == 1:
            return y
        if want_mask and keep is None:
            keep = _on_device_of(_C._full(list(x.shape), True, _C.dtype.bool, False), x)
        return y, keep
    return run


# ---- matrix products -----------------------------------------------------------------------------

@op("MatMul")
def _matmul(spec: NodeSpec):
    return _C.matmul


@op("Gemm", attrs=("alpha", "beta", "transA", "transB"))
def _gemm(spec: NodeSpec):
    alpha, beta = spec.attr("alpha", 1.0), spec.attr("beta", 1.0)
    ta, tb = spec.attr("transA", 0), spec.attr("transB", 0)
    if alpha == 1.0 and beta == 1.0 and not ta and tb:
        def linear(a, b, c=None):  # the layout nn.Linear exports: one fused GEMM + bias
            if c is None or c.dim() == 1:
                return _C.linear(a, b, c)
            return _C.add(_C.linear(a, b, None), c)
        return linear

    def run(a, b, c=None):
        y = _C.matmul(_C.t(a) if ta else a, _C.t(b) if tb else b)
        if alpha != 1.0:
            y = _C.mul(y, alpha)
        if c is not None and beta != 0.0:
            y = _C.add(y, c if beta == 1.0 else _C.mul(c, beta))
        return y
    return run


@op("Einsum", attrs=("equation",))
def _einsum(spec: NodeSpec):
    import deepcore
    equation = spec.attr("equation")
    return lambda *xs: deepcore.einsum(equation, *xs)


# ---- softmax and reductions ------------------------------------------------------------------

@op("Softmax", "LogSoftmax", attrs=("axis",))
def _softmax(spec: NodeSpec):
    axis, fn = spec.attr("axis", -1), _C.softmax if spec.op == "Softmax" else _C.log_softmax
    return lambda x: fn(x, axis)


_REDUCE = {
    "ReduceSum": lambda x, d, k: _C.sum(x, d, k),
    "ReduceMean": lambda x, d, k: _C.mean(x, d, k),
    "ReduceMax": lambda x, d, k: _C.amax(x, d, k),
    "ReduceMin": lambda x, d, k: _C.amin(x, d, k),
    "ReduceProd": lambda x, d, k: _reduce_prod(x, d, k),
    "ReduceL1": lambda x, d, k: _C.sum(_C.abs(x), d, k),
    "ReduceL2": lambda x, d, k: _C.sqrt(_C.sum(_C.square(x), d, k)),
    "ReduceSumSquare": lambda x, d, k: _C.sum(_C.square(x), d, k),
    "ReduceLogSum": lambda x, d, k: _C.log(_C.sum(x, d, k)),
    "ReduceLogSumExp": lambda x, d, k: _C.logsumexp(x, d, k),
}


def _reduce_prod(x: Tensor, dims: List[int], keep: bool) -> Tensor:
    for d in sorted(dims, reverse=True):
        x = _C.prod(x, d, keep)
    return x


@op(*_REDUCE, attrs=("axes", "keepdims", "noop_with_empty_axes"))
def _reduce(spec: NodeSpec):
    fn, keep = _REDUCE[spec.op], bool(spec.attr("keepdims", 1))
    noop = bool(spec.attr("noop_with_empty_axes", 0))
    axes_as_input = spec.op == "ReduceSum" or spec.opset >= 18
    if axes_as_input and "axes" in spec.attrs:
        raise spec.invalid(f"'axes' is an input of {spec.op} from opset "
                           f"{13 if spec.op == 'ReduceSum' else 18}, not an attribute")
    const_axes = spec.attr("axes", []) if not axes_as_input else (
        spec.const_ints(1) if spec.has(1) else [])

    def run(x, axes_t=None):
        axes = const_axes if const_axes is not None else _ints(axes_t)
        if not axes:
            if noop:
                return x
            axes = range(x.dim())
        dims = [_norm_axis(a, x.dim(), spec.op) for a in axes]
        if x.dim() == 0:
            return x
        return _keep_dtype(fn(x, dims, keep), x)
    return run


@op("ArgMax", "ArgMin", attrs=("axis", "keepdims", "select_last_index"))
def _argmax(spec: NodeSpec):
    axis, keep = spec.attr("axis", 0), bool(spec.attr("keepdims", 1))
    last = bool(spec.attr("select_last_index", 0))
    fn = _C.argmax if spec.op == "ArgMax" else _C.argmin

    def run(x):
        if not last:
            return fn(x, axis, keep)
        a = _norm_axis(axis, x.dim(), spec.op)
        idx = fn(_C.flip(x, [a]), a, keep)  # first hit from the end = last hit
        return _C.sub(x.shape[a] - 1, idx)
    return run


@op("TopK", attrs=("axis", "largest", "sorted"))
def _topk(spec: NodeSpec):
    import deepcore
    axis, largest = spec.attr("axis", -1), bool(spec.attr("largest", 1))
    k_const = spec.const_value(1)

    def run(x, k):
        kk = int(k_const if k_const is not None else _ints(k)[0])
        values, indices = deepcore.topk(x, kk, axis, largest, True)
        return values, indices
    return run


@op("CumSum", attrs=("exclusive", "reverse"))
def _cumsum(spec: NodeSpec):
    exclusive, reverse = spec.attr("exclusive", 0), spec.attr("reverse", 0)
    axis_const = spec.const_value(1)

    def run(x, axis_t):
        a = _norm_axis(int(axis_const if axis_const is not None else axis_t.item()), x.dim(),
                       "CumSum")
        y = _C.flip(x, [a]) if reverse else x
        out = _keep_dtype(_C.cumsum(y, a), x)
        if exclusive:
            out = _C.sub(out, y)
        return _C.flip(out, [a]) if reverse else out
    return run


# ---- shapes and indexing ----------------------------------------------------------------------

@op("Shape", attrs=("start", "end"))
def _shape(spec: NodeSpec):
    start, end = spec.attr("start", 0), spec.attr("end")

    return lambda x: _int_tensor(list(x.shape)[start:end], x)


@op("Size")
def _size(spec: NodeSpec):
    return lambda x: _C.squeeze(_int_tensor([x.numel()], x), None)


@op("Reshape", attrs=("allowzero",))
def _reshape(spec: NodeSpec):
    allowzero, shape_c = spec.attr("allowzero", 0), spec.const_ints(1)

    def run(x, shape_t):
        shape = shape_c if shape_c is not None else _ints(shape_t)
        if not allowzero and 0 in shape:
            shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return _C._reshape(x, shape)
    return run


@op("Flatten", attrs=("axis",))
def _flatten(spec: NodeSpec):
    axis = spec.attr("axis", 1)

    def run(x):
        a = axis + x.dim() if axis < 0 else axis
        dims = list(x.shape)
        return _C._reshape(x, [math.prod(dims[:a]), math.prod(dims[a:])])
    return run


@op("Transpose", attrs=("perm",))
def _transpose(spec: NodeSpec):
    perm = spec.attr("perm")
    return lambda x: _C._permute(x, perm if perm is not None else list(range(x.dim()))[::-1])


@op("Squeeze")
def _squeeze(spec: NodeSpec):
    axes_c = spec.const_ints(1)

    def run(x, axes_t=None):
        axes = axes_c if axes_c is not None else (None if axes_t is None else _ints(axes_t))
        if axes is None:
            return _C.squeeze(x, None)
        dims = [_norm_axis(a, x.dim(), "Squeeze") for a in axes]
        for d in dims:
            if x.shape[d] != 1:
                raise ValueError(f"[onnx] Squeeze: axis {d} of shape {tuple(x.shape)} has size "
                                 f"{x.shape[d]}, expected 1")
        return _C.squeeze(x, dims)
    return run


@op("Unsqueeze")
def _unsqueeze(spec: NodeSpec):
    axes_c = spec.const_ints(1)
    if axes_c is not None and len(axes_c) == 1:  # the common case: one axis, torch's rule too
        axis = axes_c[0]
        return lambda x, _: _C.unsqueeze(x, axis)

    def run(x, axes_t):
        axes = axes_c if axes_c is not None else _ints(axes_t)
        rank = x.dim() + len(axes)
        dims = sorted(_norm_axis(a, rank, "Unsqueeze") for a in axes)
        shape = list(x.shape)
        for d in dims:
            shape.insert(d, 1)
        return _C._reshape(x, shape)
    return run


@op("Concat", attrs=("axis",))
def _concat(spec: NodeSpec):
    axis = spec.attr("axis")
    if axis is None:
        raise spec.invalid("attribute 'axis' is required")
    return lambda *xs: _C.cat(list(xs), axis)


@op("Split", attrs=("axis", "num_outputs"))
def _split(spec: NodeSpec):
    axis, num = spec.attr("axis", 0), spec.attr("num_outputs")
    if num is not None and spec.opset < 18:
        raise spec.invalid("attribute 'num_outputs' exists from opset 18")
    sizes_c, n = spec.const_ints(1), spec.n_out

    def run(x, split_t=None):
        sizes = sizes_c if sizes_c is not None else (None if split_t is None else _ints(split_t))
        if sizes is None:
            dim = x.shape[axis]
            if num is not None:  # opset 18: ceil-sized chunks, the last one smaller
                chunk = -(-dim // num)
                sizes = [min(chunk, max(dim - i * chunk, 0)) for i in range(num)]
            elif dim % n:
                raise ValueError(f"[onnx] Split: axis {axis} of shape {tuple(x.shape)} does not "
                                 f"divide into {n} equal parts")
            else:
                sizes = [dim // n] * n
        return tuple(_C.split(x, sizes, axis))
    return run


def _slice_bounds(dim: int, start: int, end: int, step: int):
    """ONNX Slice clamping (numpy-like) for one axis; returns (start, end) for range()."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    return min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)


def _slice_axis(x: Tensor, axis: int, start: int, end: int, step: int) -> Tensor:
    dim = x.shape[axis]
    if step == 0:
        raise ValueError("[onnx] Slice: steps must not be 0")
    s, e = _slice_bounds(dim, start, end, step)
    if step > 0:
        if s == 0 and e == dim and step == 1:
            return x
        return _C._slice(x, axis, s, max(e, s), step)
    # a negative step reads x backwards: slice the flipped axis forwards
    fs, fe = dim - 1 - s, dim - 1 - e
    return _C._slice(_C.flip(x, [axis]), axis, fs, max(fe, fs), -step)


@op("Slice")
def _slice(spec: NodeSpec):
    consts = [spec.const_ints(i) if spec.has(i) else None for i in range(1, 5)]
    known = all(c is not None or not spec.has(i + 1) for i, c in enumerate(consts))

    def run(x, starts_t, ends_t, axes_t=None, steps_t=None):
        if known:
            starts, ends, axes, steps = consts
        else:
            starts, ends = _ints(starts_t), _ints(ends_t)
            axes = None if axes_t is None else _ints(axes_t)
            steps = None if steps_t is None else _ints(steps_t)
        axes = list(range(len(starts))) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
        for a, s, e, st in zip(axes, starts, ends, steps):
            x = _slice_axis(x, _norm_axis(a, x.dim(), "Slice"), s, e, st)
        return x
    return run


@op("Gather", attrs=("axis",))
def _gather(spec: NodeSpec):
    axis = spec.attr("axis", 0)
    idx_c = spec.consts[1]
    if idx_c is not None and idx_c.dim() == 0:  # a shape entry: one select
        i = int(idx_c.item())
        return lambda x, _: _C.select(x, axis, i)

    non_negative = idx_c is not None and min(_ints(idx_c), default=0) >= 0

    def run(x, idx):
        a = _norm_axis(axis, x.dim(), "Gather")
        size = x.shape[a]
        if idx.dtype != _C.dtype.int64:
            idx = _C._to_dtype(idx, _C.dtype.int64, False)
        if idx.dim() == 0:
            return _C.select(x, a, int(idx.item()))
        flat = _C._reshape(idx, [-1])
        flat = flat if non_negative else _fix_negative(flat, size)
        out = _C.index_select(x, a, flat)
        shape = list(x.shape)
        return _C._reshape(out, shape[:a] + list(idx.shape) + shape[a + 1:])
    return run


@op("GatherElements", attrs=("axis",))
def _gather_elements(spec: NodeSpec):
    axis = spec.attr("axis", 0)

    def run(x, idx):
        a = _norm_axis(axis, x.dim(), "GatherElements")
        return _C.gather(x, a, _fix_negative(_C._to_dtype(idx, _C.dtype.int64, False),
                                             x.shape[a]))
    return run


@op("GatherND", attrs=("batch_dims",))
def _gather_nd(spec: NodeSpec):
    if spec.attr("batch_dims", 0) != 0:
        raise spec.unsupported("batch_dims != 0")

    def run(x, idx):
        idx = _C._to_dtype(idx, _C.dtype.int64, False)
        k = idx.shape[-1]
        parts = [_fix_negative(_C.select(idx, -1, j), x.shape[j]) for j in range(k)]
        return _C.index(x, parts)
    return run


@op("ScatterElements", attrs=("axis", "reduction"))
def _scatter_elements(spec: NodeSpec):
    axis, reduction = spec.attr("axis", 0), spec.attr("reduction", "none")
    if reduction not in ("none", "add"):
        raise spec.unsupported(f"reduction='{reduction}' (expected 'none' or 'add')")

    def run(x, idx, updates):
        a = _norm_axis(axis, x.dim(), "ScatterElements")
        idx = _fix_negative(_C._to_dtype(idx, _C.dtype.int64, False), x.shape[a])
        if reduction == "add":
            return _C.scatter_add(x, a, idx, updates)
        return _C.scatter(x, a, idx, updates)
    return run


@op("ScatterND", attrs=("reduction",))
def _scatter_nd(spec: NodeSpec):
    reduction = spec.attr("reduction", "none")
    if reduction not in ("none", "add"):
        raise spec.unsupported(f"reduction='{reduction}' (expected 'none' or 'add')")

    def run(x, idx, updates):
        idx = _C._to_dtype(idx, _C.dtype.int64, False)
        parts = [_fix_negative(_C.select(idx, -1, j), x.shape[j]) for j in range(idx.shape[-1])]
        return _C.index_put(x, parts, updates, reduction == "add")
    return run


@op("Expand")
def _expand(spec: NodeSpec):
    shape_c = spec.const_ints(1)

    def run(x, shape_t):
        shape = shape_c if shape_c is not None else _ints(shape_t)
        # bidirectional broadcast: a 1 in `shape` keeps x's size (numpy rules, not torch's)
        xs = list(x.shape)
        n = max(len(xs), len(shape))
        xs, shape = [1] * (n - len(xs)) + xs, [1] * (n - len(shape)) + list(shape)
        out = [a if b == 1 else b for a, b in zip(xs, shape)]
        return _C._expand(x, out) if out != list(x.shape) else x
    return run


@op("Tile")
def _tile(spec: NodeSpec):
    reps_c = spec.const_ints(1)
    return lambda x, r: _C._repeat(x, reps_c if reps_c is not None else _ints(r))


@op("ConstantOfShape", attrs=("value",))
def _constant_of_shape(spec: NodeSpec):
    value = spec.attr("value")
    fill, dtype = (0.0, _C.dtype.float32) if value is None else (value.item(), value.dtype)
    shape_c = spec.const_ints(0)

    def run(shape_t):
        shape = shape_c if shape_c is not None else _ints(shape_t)
        return _on_device_of(_C._full(shape, fill, dtype, False), shape_t)
    return run


@op("Range")
def _range(spec: NodeSpec):
    def run(start, limit, delta):
        return _on_device_of(
            _C._arange(start.item(), limit.item(), delta.item(), start.dtype, False), start)
    return run


@op("EyeLike", attrs=("dtype", "k"))
def _eye_like(spec: NodeSpec):
    k, to = spec.attr("k", 0), spec.attr("dtype")
    dtype = None if to is None else DTYPES.get(to)
    if to is not None and dtype is None:
        raise spec.unsupported(f"dtype {to} (deepcore holds float, double, int32, int64 and "
                               "bool)")

    def run(x):
        if x.dim() != 2:
            raise ValueError(f"[onnx] EyeLike: input of shape {tuple(x.shape)} must be 2-D")
        eye = np.eye(x.shape[0], x.shape[1], k, dtype=NP_DTYPES[dtype or x.dtype])
        return _on_device_of(_C.from_numpy(eye), x)
    return run


@op("Trilu", attrs=("upper",), since=14)
def _trilu(spec: NodeSpec):
    fn, k_c = (_C.triu if spec.attr("upper", 1) else _C.tril), spec.const_value(1)
    return lambda x, k=None: fn(x, int(k_c if k_c is not None else (0 if k is None else k.item())))


@op("NonZero")
def _nonzero(spec: NodeSpec):
    return lambda x: _C.t(_C.nonzero(x))  # (nonzero, rank) -> ONNX's (rank, nonzero)


@op("OneHot", attrs=("axis",))
def _one_hot(spec: NodeSpec):
    axis = spec.attr("axis", -1)

    def run(idx, depth_t, values):
        depth = int(depth_t.item())
        idx = _C._to_dtype(idx, _C.dtype.int64, False)
        hot = _C.one_hot(_fix_negative(idx, depth), depth)
        off, on = _C.select(values, 0, 0), _C.select(values, 0, 1)
        out = _C.where(_C.eq(hot, 1), on, off)
        a = _norm_axis(axis, out.dim(), "OneHot")
        return out if a == out.dim() - 1 else _C._permute(
            out, list(range(a)) + [out.dim() - 1] + list(range(a, out.dim() - 1)))
    return run


@op("Pad", attrs=("mode",))
def _pad(spec: NodeSpec):
    mode = spec.attr("mode", "constant")
    modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
             "wrap": "circular"}
    if mode not in modes:
        raise spec.unsupported(f"mode='{mode}'")
    if spec.has(3) and spec.opset < 18:
        raise spec.invalid("input 'axes' exists from opset 18")
    pads_c, value_c, axes_c = spec.const_ints(1), spec.const_value(2), spec.const_ints(3)

    def run(x, pads_t, value_t=None, axes_t=None):
        pads = pads_c if pads_c is not None else _ints(pads_t)
        value = value_c if value_c is not None else (0.0 if value_t is None else value_t.item())
        axes = axes_c if axes_c is not None else (None if axes_t is None else _ints(axes_t))
        rank = x.dim()
        if axes is not None:  # pads name only `axes`: spread them over every dim
            full = [0] * (2 * rank)
            n = len(axes)
            for j, a in enumerate(axes):
                a = _norm_axis(a, rank, "Pad")
                full[a], full[a + rank] = pads[j], pads[j + n]
            pads = full
        if len(pads) != 2 * rank:
            raise ValueError(f"[onnx] Pad: {len(pads)} pads for input of shape "
                             f"{tuple(x.shape)}, expected {2 * rank}")
        tp = _torch_pads(pads)
        while len(tp) > 2 and tp[-1] == 0 and tp[-2] == 0:  # deepcore pads trailing dims only
            tp = tp[:-2]
        if not any(tp):
            return x
        return _C._pad(x, tp, modes[mode], float(value) if mode == "constant" else 0.0)
    return run


from . import _import_nn_ops  # noqa: E402,F401  (the rest of the table)
