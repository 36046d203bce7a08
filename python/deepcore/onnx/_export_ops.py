"""The ONNX form of each traced op (Note [ONNX export] in _exporter.py): ``OPS[name](b)`` emits
the nodes for the current node of the Builder ``b``, reading its arguments with ``b.x(k)``
(a tensor as an ONNX name), ``b.arg(k)`` / ``b.int(k)`` (sizes, solved over dynamic axes) and
writing its results to ``b.out(j)``. An op missing here raises UnsupportedOperatorError naming
it and the module that called it. The rows follow opsets 17..21: where an opset added an op
(Mish 18, Gelu 20) or moved attributes to inputs (Reduce* axes 18), both forms are here.
The ops whose standard expansion would not load back bit-exact are calls of the functions in
FUNCTIONS (Note [deepcore functions in ONNX] in _exporter.py).

In-place ops (``relu_``, ``add_``, ...) share their functional form: the exporter has checked
that no other view sees the write (Note [ONNX export], 3)."""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from ._exporter import DTYPES, INT64_MAX, AttrRef, Builder, FunctionBody, FunctionDef, Size

OPS: Dict[str, Callable[[Builder], None]] = {}


def op(*names: str, inplace: bool = False):
    """Registers a mapper under `names` (and their in-place `name_` forms)."""
    def register(fn):
        for n in names:
            OPS[n] = fn
            if inplace:
                OPS[n + "_"] = fn
        return fn
    return register


def _axis(d: int, rank: int) -> int:
    return d + rank if d < 0 else d


def _floating(dtype: Optional[str]) -> bool:
    return dtype in ("float32", "float64")


def _i64(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# ---- deepcore functions (Note [deepcore functions in ONNX]) ----------------------------------
# Each body writes the standard-op expansion with ``f`` a FunctionBody: ``f.const(v)`` (floats in
# the first input's type), ``f.attr(name, kind)`` (a function attribute as a tensor) and
# AttrRef for attributes passed on to a node.

FUNCTIONS: Dict[str, FunctionDef] = {}


def function(name: str, inputs: Sequence[str] = ("X",), attrs: Sequence[str] = (),
             doc: str = ""):
    """Registers ``body(f, *inputs)`` as the deepcore function `name`; `doc` (else the body's
    docstring) becomes the FunctionProto's doc_string."""
    def register(body):
        text = " ".join((doc or body.__doc__ or "").split())
        FUNCTIONS[name] = FunctionDef(name, tuple(inputs), tuple(attrs), body, text)
        return body
    return register


Axes = Union[List[int], AttrRef]


def _f_reduce(f: FunctionBody, op_type: str, x: str, axes: Axes,
              keepdims: Union[int, AttrRef]) -> str:
    """Reduce* over `axes` (a list, or an AttrRef of kind INTS) in a body: an input from opset
    18 (13 for ReduceSum), an attribute before."""
    if op_type == "ReduceSum" or f.opset >= 18:
        t = f.attr(axes.name, "INTS") if isinstance(axes, AttrRef) else f.const(_i64(axes))
        return f.emit(op_type, [x, t], keepdims=keepdims)
    return f.emit(op_type, [x], axes=axes, keepdims=keepdims)


def _f_standardize(f: FunctionBody, x: str, axes: Axes) -> str:
    """(x - mean) / sqrt(var + epsilon) over `axes`, the biased variance; epsilon is the
    function's attribute."""
    centred = f.emit("Sub", [x, _f_reduce(f, "ReduceMean", x, axes, 1)])
    var = _f_reduce(f, "ReduceMean", f.emit("Mul", [centred, centred]), axes, 1)
    eps = f.attr("epsilon", "FLOAT")
    return f.emit("Div", [centred, f.emit("Sqrt", [f.emit("Add", [var, eps])])])


def _f_per_channel(f: FunctionBody, x: str, normalize: Callable[[str], str], scale: str,
                   bias: str) -> str:
    """normalize() of x seen as (N, C, rest), then scale and bias per channel C, in x's
    shape: a body that serves any rank."""
    shape = f.emit("Shape", [x])
    flat = f.emit("Reshape", [x, f.emit("Concat", [f.emit("Shape", [x], end=2),
                                                   f.const(_i64([-1]))], axis=0)])
    one = f.const(_i64([1]))
    y = f.emit("Mul", [normalize(flat), f.emit("Unsqueeze", [scale, one])])
    return f.emit("Reshape", [f.emit("Add", [y, f.emit("Unsqueeze", [bias, one])]), shape])


# deepcore op -> (function, body of x): unary ops that ONNX lacks (Mish: before opset 18).
_UNARY_FUNCTIONS = {
    "silu": ("Silu", lambda f, x: f.emit("Mul", [x, f.emit("Sigmoid", [x])])),
    "logsigmoid": ("LogSigmoid",
                   lambda f, x: f.emit("Neg", [f.emit("Softplus", [f.emit("Neg", [x])])])),
    "tanhshrink": ("Tanhshrink", lambda f, x: f.emit("Sub", [x, f.emit("Tanh", [x])])),
    "expm1": ("Expm1", lambda f, x: f.emit("Sub", [f.emit("Exp", [x]), f.const(1.0)])),
    "log1p": ("Log1p", lambda f, x: f.emit("Log", [f.emit("Add", [x, f.const(1.0)])])),
    "log2": ("Log2", lambda f, x: f.emit("Div", [f.emit("Log", [x]), f.const(math.log(2.0))])),
    "log10": ("Log10",
              lambda f, x: f.emit("Div", [f.emit("Log", [x]), f.const(math.log(10.0))])),
    "exp2": ("Exp2", lambda f, x: f.emit("Pow", [f.const(2.0), x])),
    "erfc": ("Erfc", lambda f, x: f.emit("Sub", [f.const(1.0), f.emit("Erf", [x])])),
    "mish": ("Mish",
             lambda f, x: f.emit("Mul", [x, f.emit("Tanh", [f.emit("Softplus", [x])])])),
}
for _op, (_fname, _body) in _UNARY_FUNCTIONS.items():
    function(_fname, doc=f"deepcore's {_op}, elementwise")(_body)


@function("Gelu")
def _gelu_erf_body(f: FunctionBody, x: str) -> str:
    """0.5 x (1 + erf(x / sqrt(2))): ONNX Gelu (approximate='none') before opset 20."""
    t = f.emit("Erf", [f.emit("Mul", [x, f.const(1.0 / math.sqrt(2.0))])])
    return f.emit("Mul", [f.emit("Mul", [x, f.const(0.5)]), f.emit("Add", [t, f.const(1.0)])])


@function("GeluTanh")
def _gelu_tanh_body(f: FunctionBody, x: str) -> str:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): ONNX Gelu (approximate='tanh')."""
    cube = f.emit("Mul", [f.emit("Mul", [x, x]), x])
    inner = f.emit("Add", [x, f.emit("Mul", [cube, f.const(0.044715)])])
    t = f.emit("Tanh", [f.emit("Mul", [inner, f.const(math.sqrt(2.0 / math.pi))])])
    return f.emit("Mul", [f.emit("Mul", [x, f.const(0.5)]), f.emit("Add", [t, f.const(1.0)])])


@function("Remainder", inputs=("A", "B"))
def _remainder_body(f: FunctionBody, a: str, b: str) -> str:
    """a - floor(a / b) * b, the sign of the divisor (float remainder; ONNX Mod's fmod=0 is
    for integers only)."""
    return f.emit("Sub", [a, f.emit("Mul", [f.emit("Floor", [f.emit("Div", [a, b])]), b])])


def _variance_body(std: bool):
    def body(f: FunctionBody, x: str) -> str:
        """Variance (std: its square root) over `axes` with Bessel's `correction`: deepcore's
        var / std."""
        axes = AttrRef("axes", "INTS")
        centred = f.emit("Sub", [x, _f_reduce(f, "ReduceMean", x, axes, 1)])
        var = _f_reduce(f, "ReduceMean", f.emit("Mul", [centred, centred]), axes,
                        AttrRef("keepdims", "INT"))
        sizes = f.emit("Gather", [f.emit("Shape", [x]), f.attr("axes", "INTS")], axis=0)
        n = f.emit("CastLike", [_f_reduce(f, "ReduceProd", sizes, [0], 0), x])
        dof = f.emit("Max", [f.emit("Sub", [n, f.attr("correction", "FLOAT")]), f.const(0.0)])
        var = f.emit("Mul", [var, f.emit("Div", [n, dof])])
        return f.emit("Sqrt", [var]) if std else var
    return body


function("Var", attrs=("axes", "correction", "keepdims"))(_variance_body(False))
function("Std", attrs=("axes", "correction", "keepdims"))(_variance_body(True))


@function("RmsNorm", inputs=("X", "scale"), attrs=("axes", "epsilon"))
def _rms_norm_body(f: FunctionBody, x: str, scale: str) -> str:
    """x / sqrt(mean(x^2) + epsilon) * scale over the trailing `axes`."""
    ms = _f_reduce(f, "ReduceMean", f.emit("Mul", [x, x]), AttrRef("axes", "INTS"), 1)
    eps = f.attr("epsilon", "FLOAT")
    y = f.emit("Div", [x, f.emit("Sqrt", [f.emit("Add", [ms, eps])])])
    return f.emit("Mul", [y, scale])


@function("GroupNorm", inputs=("X", "scale", "B"), attrs=("num_groups", "epsilon"))
def _group_norm_body(f: FunctionBody, x: str, scale: str, bias: str) -> str:
    """Statistics per (sample, group of channels), scale and bias per channel: ONNX
    GroupNormalization of opset 21 (18 to 20 take them per group)."""
    def normalize(flat: str) -> str:
        groups = f.emit("Unsqueeze", [f.attr("num_groups", "INT"), f.const(_i64([0]))])
        shape = f.emit("Concat", [f.const(_i64([0])), groups, f.const(_i64([-1]))], axis=0)
        grouped = _f_standardize(f, f.emit("Reshape", [flat, shape]), [2])
        return f.emit("Reshape", [grouped, f.emit("Shape", [flat])])
    return _f_per_channel(f, x, normalize, scale, bias)


@function("BatchNormBatchStats", inputs=("X", "scale", "B"), attrs=("epsilon",))
def _batch_stats_body(f: FunctionBody, x: str, scale: str, bias: str) -> str:
    """Batch normalisation with the batch's own statistics (a BatchNorm without running
    statistics, as in training), scale and bias per channel (axis 1)."""
    return _f_per_channel(f, x, lambda flat: _f_standardize(f, flat, [0, 2]), scale, bias)


def _attention_body(causal: bool, mask: Optional[str]):
    # `rank`: 4 in a function body, (B, H, L, E); the expansion in the graph passes its own
    def body(f, q: str, k: str, v: str, m: str = "", rank: int = 4) -> str:
        """softmax(Q K^T * scale [+ mask]) V on (B, H, L, E), torch's
        scaled_dot_product_attention; is_causal keeps the lower triangle aligned at the top
        left; a boolean mask keeps True, an additive one is added; a query row that sees no
        key gives zeros."""
        k_t = f.emit("Transpose", [k], perm=list(range(rank - 2)) + [rank - 1, rank - 2])
        scores = f.emit("Mul", [f.emit("MatMul", [q, k_t]), f.attr("scale", "FLOAT")])
        if causal:
            true = f.helper.make_tensor("one", f.TensorProto.BOOL, [1], [True])
            ones = f.emit("ConstantOfShape", [f.emit("Shape", [scores], start=-2)], value=true)
            scores = f.emit("Where", [f.emit("Trilu", [ones], upper=0), scores,
                                      f.const(-math.inf)])
        if mask == "bool":
            scores = f.emit("Where", [m, scores, f.const(-math.inf)])
        elif mask == "additive":
            scores = f.emit("Add", [scores, m])
        probs = f.emit("Softmax", [scores], axis=-1)
        if mask:  # a query that sees no key: the kernel gives 0, Softmax NaN
            probs = f.emit("Where", [f.emit("IsNaN", [probs]), f.const(0.0), probs])
        return f.emit("MatMul", [probs, v])
    return body


# (is_causal, mask kind) -> the attention function
_ATTENTION = {(False, None): "ScaledDotProductAttention",
              (True, None): "ScaledDotProductAttentionCausal",
              (False, "bool"): "ScaledDotProductAttentionBoolMask",
              (False, "additive"): "ScaledDotProductAttentionAdditiveMask"}
for (_causal, _mask), _fname in _ATTENTION.items():
    function(_fname, ("Q", "K", "V") + (("mask",) if _mask else ()), ("scale",))(
        _attention_body(_causal, _mask))


class _Inline:
    """A FunctionBody's interface over the Builder, for a function body expanded in the graph
    itself: its attributes are the given values."""

    def __init__(self, b: Builder, like_dtype: str, attrs: Dict[str, object]) -> None:
        self.b, self.dtype, self.attrs = b, like_dtype, attrs
        self.helper, self.TensorProto, self.opset = b.helper, b.TensorProto, b.opset

    def emit(self, op_type: str, inputs: Sequence[str], outputs: int = 1, **attrs: object):
        return self.b.emit(op_type, inputs, outputs, **attrs)

    def const(self, value: object) -> str:
        arr = np.asarray(value)
        return self.b.const(arr, self.dtype if arr.dtype.kind == "f" else None)

    def attr(self, name: str, kind: str) -> str:
        return self.const(self.attrs[name])


# ---- elementwise -----------------------------------------------------------------------------

# deepcore op -> ONNX op of the same meaning (input cast to the result dtype).
_UNARY = {
    "neg": "Neg", "abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "sin": "Sin",
    "cos": "Cos", "tan": "Tan", "asin": "Asin", "acos": "Acos", "atan": "Atan", "sinh": "Sinh",
    "cosh": "Cosh", "asinh": "Asinh", "acosh": "Acosh", "atanh": "Atanh", "tanh": "Tanh",
    "sigmoid": "Sigmoid", "relu": "Relu", "erf": "Erf", "reciprocal": "Reciprocal",
    "floor": "Floor", "ceil": "Ceil", "round": "Round", "sign": "Sign", "selu": "Selu",
    "softsign": "Softsign", "logical_not": "Not", "hardswish": "HardSwish",
}


def _unary(onnx_op: str):
    def emit(b: Builder) -> None:
        b.emit(onnx_op, [b.x(0, b.out_dtype())], [b.out()])
    return emit


for _name, _onnx_op in _UNARY.items():
    OPS[_name] = OPS[_name + "_"] = _unary(_onnx_op)


def _composite(fn: Callable[[Builder, str], str]):
    """A mapper from fn(b, x) -> result name, x cast to the result dtype."""
    def emit(b: Builder) -> None:
        b.set(0, fn(b, b.x(0, b.out_dtype())))
    return emit


def _c(b: Builder, value: float) -> str:
    """A scalar of the current result's dtype."""
    return b.const(np.array(value), b.out_dtype())


def _gelu(b: Builder, x: str) -> str:
    approximate = b.raw(1) if len(b.args) > 1 else "none"
    if b.opset >= 20:
        return b.emit("Gelu", [x], approximate=approximate)
    return b.call(FUNCTIONS["GeluTanh" if approximate == "tanh" else "Gelu"], [x])


def _softplus(b: Builder, x: str) -> str:
    beta, threshold = float(b.arg(1)), float(b.arg(2))
    bx = x if beta == 1.0 else b.emit("Mul", [x, _c(b, beta)])
    y = b.emit("Softplus", [bx])
    if beta != 1.0:
        y = b.emit("Div", [y, _c(b, beta)])
    # torch returns x itself where beta * x > threshold (softplus is x there in float).
    return b.emit("Where", [b.emit("Greater", [bx, _c(b, threshold)]), x, y])


def _mish(b: Builder, x: str) -> str:
    return b.emit("Mish", [x]) if b.opset >= 18 else b.call(FUNCTIONS["Mish"], [x])


def _threshold(b: Builder, x: str) -> str:
    return b.emit("Where", [b.emit("Greater", [x, _c(b, float(b.arg(1)))]), x,
                            _c(b, float(b.arg(2)))])


def _shrink(soft: bool):
    def fn(b: Builder, x: str) -> str:
        lambd = float(b.arg(1)) if len(b.args) > 1 else 0.5
        return b.emit("Shrink", [x], lambd=lambd, bias=lambd if soft else 0.0)
    return fn


_COMPOSITE = {
    "rsqrt": lambda b, x: b.emit("Reciprocal", [b.emit("Sqrt", [x])]),
    "square": lambda b, x: b.emit("Mul", [x, x]),
    "relu6": lambda b, x: b.emit("Clip", [x, _c(b, 0.0), _c(b, 6.0)]),
    "hardsigmoid": lambda b, x: b.emit("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5),
    "leaky_relu": lambda b, x: b.emit("LeakyRelu", [x], alpha=float(b.arg(1))),
    "elu": lambda b, x: b.emit("Elu", [x], alpha=float(b.arg(1))),
    "celu": lambda b, x: b.emit("Celu", [x], alpha=float(b.arg(1))),
    "hardtanh": lambda b, x: b.emit("Clip", [x, _c(b, float(b.arg(1))),
                                             _c(b, float(b.arg(2)))]),
    "gelu": _gelu, "softplus": _softplus, "mish": _mish, "_threshold": _threshold,
    "_hardshrink": _shrink(False), "_softshrink": _shrink(True),
}
for _name, _fn in _COMPOSITE.items():
    OPS[_name] = OPS[_name + "_"] = _composite(_fn)
for _name, (_fname, _) in _UNARY_FUNCTIONS.items():
    if _name != "mish":  # mish is a standard op from opset 18 (_mish)
        OPS[_name] = OPS[_name + "_"] = _composite(
            lambda b, x, fn=FUNCTIONS[_fname]: b.call(fn, [x]))


@op("clamp", "clamp_")
def _clamp(b: Builder) -> None:
    dt = b.out_dtype()
    lo, hi = ("" if b.raw(k) is None else b.tensor(b.raw(k), dt) for k in (1, 2))
    b.emit("Clip", [b.x(0, dt), lo, hi], [b.out()])


@op("clamp_tensor")
def _clamp_tensor(b: Builder) -> None:
    dt = b.out_dtype()
    y = b.x(0, dt)
    if b.raw(1) is not None:
        y = b.emit("Max", [y, b.x(1, dt)])
    if b.raw(2) is not None:
        y = b.emit("Min", [y, b.x(2, dt)])
    b.set(0, y)


@op("add", "sub", inplace=True)
def _add_sub(b: Builder) -> None:
    dt = b.out_dtype()
    other = b.x(1, dt)
    alpha = b.arg(2) if len(b.args) > 2 else 1
    if alpha != 1:
        other = b.emit("Mul", [other, b.const(np.array(alpha), dt)])
    b.emit("Add" if b.op.startswith("add") else "Sub", [b.x(0, dt), other], [b.out()])


_BINARY = {"mul": "Mul", "maximum": "Max", "minimum": "Min", "pow": "Pow", "fmod": "Mod"}


@op(*_BINARY, inplace=True)
def _binary(b: Builder) -> None:
    dt = b.out_dtype()
    extra = {"fmod": 1} if b.op.startswith("fmod") else {}
    b.emit(_BINARY[b.op.rstrip("_")], [b.x(0, dt), b.x(1, dt)], [b.out()], **extra)


def _floor_div(b: Builder, x: str, y: str, dt: str) -> str:
    if _floating(dt):
        return b.emit("Floor", [b.emit("Div", [x, y])])
    # Integer Div truncates; floor is one less where the remainder's sign differs from y's.
    q = b.emit("Div", [x, y])
    r = b.emit("Sub", [x, b.emit("Mul", [q, y])])
    zero = b.const(np.array(0), dt)
    off = b.emit("And", [b.emit("Not", [b.emit("Equal", [r, zero])]),
                         b.emit("Xor", [b.emit("Less", [r, zero]), b.emit("Less", [y, zero])])])
    return b.emit("Sub", [q, b.emit("Cast", [off], to=b.onnx_type(dt))])


@op("div", "div_", "floor_divide", "remainder")
def _div(b: Builder) -> None:
    dt = b.out_dtype()
    x, y = b.x(0, dt), b.x(1, dt)
    mode = "floor" if b.op == "floor_divide" else (b.raw(2) if len(b.args) > 2 else None)
    if b.op == "remainder":
        if not _floating(dt):
            b.emit("Mod", [x, y], [b.out()])  # fmod=0: the sign of the divisor, as Python's %
            return
        b.call(FUNCTIONS["Remainder"], [x, y], [b.out()])
    elif mode == "floor":
        b.set(0, _floor_div(b, x, y, dt))
    elif mode == "trunc" and _floating(dt):
        q = b.emit("Div", [x, y])
        b.emit("Mul", [b.emit("Sign", [q]), b.emit("Floor", [b.emit("Abs", [q])])], [b.out()])
    else:  # true division, or integer division that truncates
        b.emit("Div", [x, y], [b.out()])


def _common_dtype(b: Builder, ks: Sequence[int]) -> str:
    """The dtype a comparison computes in: deepcore's promotion of its arguments (numbers,
    0-d and n-d tensors rank differently, so stand-ins of the same rank are promoted)."""
    import deepcore
    stand_ins = []
    for k in ks:
        a = b.raw(k)
        if isinstance(a, (bool, int, float)):
            stand_ins.append(a)
        else:
            stand_ins.append(deepcore.zeros([1] * b.rank(k),
                                            dtype=getattr(deepcore, b.tensor_dtype(a))))
    return deepcore.result_type(*stand_ins).name


_COMPARE = {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
            "ge": "GreaterOrEqual", "ne": "Equal"}


@op(*_COMPARE)
def _compare(b: Builder) -> None:
    dt = _common_dtype(b, (0, 1))
    y = b.emit(_COMPARE[b.op], [b.x(0, dt), b.x(1, dt)])
    if b.op == "ne":
        y = b.emit("Not", [y])
    b.set(0, y)


_LOGICAL = {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor",
            "bitwise_and": "BitwiseAnd", "bitwise_or": "BitwiseOr", "bitwise_xor": "BitwiseXor"}


@op(*_LOGICAL)
def _logical(b: Builder) -> None:
    dt = b.out_dtype()
    name = _LOGICAL[b.op]
    if name.startswith("Bitwise") and dt != "bool" and b.opset < 18:
        raise b.fail(f"needs ONNX {name}, which opset 18 added (exporting to {b.opset})")
    if dt == "bool":
        name = {"BitwiseAnd": "And", "BitwiseOr": "Or", "BitwiseXor": "Xor"}.get(name, name)
        b.emit(name, [b.x(0, "bool"), b.x(1, "bool")], [b.out()])
    else:
        b.emit(name, [b.x(0, dt), b.x(1, dt)], [b.out()])


@op("where")
def _where(b: Builder) -> None:
    dt = b.out_dtype()
    b.emit("Where", [b.x(0, "bool"), b.x(1, dt), b.x(2, dt)], [b.out()])


@op("masked_fill", "masked_fill_")
def _masked_fill(b: Builder) -> None:
    dt = b.out_dtype()
    b.emit("Where", [b.x(1, "bool"), b.x(2, dt), b.x(0, dt)], [b.out()])


@op("isnan", "isinf")
def _isnan(b: Builder) -> None:
    b.emit("IsNaN" if b.op == "isnan" else "IsInf", [b.x(0)], [b.out()])


# ---- linear algebra --------------------------------------------------------------------------

@op("matmul", "mm", "bmm", "mv", "dot")
def _matmul(b: Builder) -> None:
    dt = b.out_dtype()
    b.emit("MatMul", [b.x(0, dt), b.x(1, dt)], [b.out()])


@op("outer")
def _outer(b: Builder) -> None:
    dt = b.out_dtype()
    col = b.emit("Unsqueeze", [b.x(0, dt), b.const(_i64([1]))])
    b.emit("Mul", [col, b.x(1, dt)], [b.out()])


@op("addmm")
def _addmm(b: Builder) -> None:
    dt = b.out_dtype()
    b.emit("Gemm", [b.x(1, dt), b.x(2, dt), b.x(0, dt)], [b.out()], beta=float(b.arg(3)),
           alpha=float(b.arg(4)))


@op("linear")
def _linear(b: Builder) -> None:
    dt = b.out_dtype()
    x, w, bias = b.x(0, dt), b.x(1, dt), b.x(2, dt)
    if b.rank(0) == 2:
        b.emit("Gemm", [x, w, bias], [b.out()], transB=1)
        return
    y = b.emit("MatMul", [x, b.emit("Transpose", [w], perm=[1, 0])])
    b.set(0, b.emit("Add", [y, bias]) if bias else y)


# ---- convolution and pooling -----------------------------------------------------------------

def _spatial(b: Builder, k: int, n: int) -> List[int]:
    """An int[] argument of n spatial dims (one value stands for all)."""
    v = b.ints(k)
    return v * n if len(v) == 1 else v


@op("conv1d", "conv2d")
def _conv(b: Builder) -> None:
    n = b.rank(1) - 2
    kernel = [int(s) for s in b.shape(1)[2:]]
    stride, dilation = _spatial(b, 3, n), _spatial(b, 5, n)
    mode = b.raw(7) if len(b.args) > 7 else ""
    if mode == "same":
        total = [d * (kk - 1) for d, kk in zip(dilation, kernel)]
        pads = [t // 2 for t in total] + [t - t // 2 for t in total]
    elif mode == "valid":
        pads = [0] * (2 * n)
    else:
        pads = _spatial(b, 4, n) * 2
    dt = b.out_dtype()
    b.emit("Conv", [b.x(0, dt), b.x(1, dt), b.x(2, dt)], [b.out()], kernel_shape=kernel,
           strides=stride, pads=pads, dilations=dilation, group=b.int(6))


@op("conv_transpose1d", "conv_transpose2d")
def _conv_transpose(b: Builder) -> None:
    n = b.rank(1) - 2
    dt = b.out_dtype()
    b.emit("ConvTranspose", [b.x(0, dt), b.x(1, dt), b.x(2, dt)], [b.out()],
           kernel_shape=[int(s) for s in b.shape(1)[2:]], strides=_spatial(b, 3, n),
           pads=_spatial(b, 4, n) * 2, output_padding=_spatial(b, 5, n), group=b.int(6),
           dilations=_spatial(b, 7, n))


@op("_max_pool1d", "_max_pool2d")
def _max_pool(b: Builder) -> None:
    if b.out_used(1):
        raise b.fail("returns indices, which ONNX MaxPool numbers differently; only the "
                     "pooled values can be exported")
    n = b.rank(0) - 2
    kernel = _spatial(b, 1, n)
    stride = _spatial(b, 2, n) if b.raw(2) else kernel
    b.emit("MaxPool", [b.x(0)], [b.out()], kernel_shape=kernel, strides=stride,
           pads=_spatial(b, 3, n) * 2, dilations=_spatial(b, 4, n), ceil_mode=int(b.raw(5)))


@op("avg_pool2d", "_avg_pool1d")
def _avg_pool(b: Builder) -> None:
    if len(b.args) > 6 and b.raw(6):
        raise b.fail(f"has divisor_override={b.raw(6)}, which ONNX AveragePool lacks")
    n = b.rank(0) - 2
    kernel = _spatial(b, 1, n)
    stride = _spatial(b, 2, n) if b.raw(2) else kernel
    b.emit("AveragePool", [b.x(0)], [b.out()], kernel_shape=kernel, strides=stride,
           pads=_spatial(b, 3, n) * 2, ceil_mode=int(b.raw(4)),
           count_include_pad=int(b.raw(5)))


@op("_adaptive_avg_pool1d", "_adaptive_avg_pool2d", "_adaptive_max_pool2d")
def _adaptive_pool(b: Builder) -> None:
    is_max = "max" in b.op
    if is_max and b.out_used(1):
        raise b.fail("returns indices, which ONNX MaxPool numbers differently")
    size = b.shape(0)[2:]
    out = b.out_shape(0)[2:]
    if all(o == 1 for o in out):
        b.emit("GlobalMaxPool" if is_max else "GlobalAveragePool", [b.x(0)], [b.out()])
        return
    if not all(isinstance(s, int) and isinstance(o, int) and o and s % o == 0
               for s, o in zip(size, out)):
        raise b.fail(f"pools {size} to {out}; ONNX has no adaptive pooling, so the input "
                     "size must be a fixed multiple of the output size")
    kernel = [s // o for s, o in zip(size, out)]
    b.emit("MaxPool" if is_max else "AveragePool", [b.x(0)], [b.out()], kernel_shape=kernel,
           strides=kernel)


@op("_pad")
def _pad(b: Builder) -> None:
    pad = b.sizes_arg(1)
    rank = b.rank(0)
    begins, ends = [0] * rank, [0] * rank
    for i in range(len(pad) // 2):  # torch: (left, right) pairs from the last dim backwards
        begins[rank - 1 - i], ends[rank - 1 - i] = pad[2 * i], pad[2 * i + 1]
    mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
            "circular": "wrap"}.get(b.raw(2))
    if mode is None or (mode == "wrap" and b.opset < 19):
        raise b.fail(f"pads in mode '{b.raw(2)}', which opset {b.opset} cannot express")
    dt = b.out_dtype()
    value = b.const(np.array(b.raw(3)), dt) if mode == "constant" else ""
    b.emit("Pad", [b.x(0), b.sizes_tensor(begins + ends), value], [b.out()], mode=mode)


# ---- normalisation ---------------------------------------------------------------------------

def _param_or(b: Builder, k: int, fill: float, dt: str) -> str:
    """Tensor argument k, or `fill` once per channel (axis 1) when it is None."""
    if b.raw(k) is not None:
        return b.x(k, dt)
    channels = b.shape(0)[1] if b.rank(0) > 1 else 1
    if not isinstance(channels, int):
        raise b.fail("normalises a channel dimension that changes with the dynamic axes "
                     "without weights")
    return b.const(np.full(channels, fill), dt)


def _reduce(b: Builder, op_type: str, x: str, axes: Optional[List[int]], keepdims: bool,
            out: Optional[str] = None) -> str:
    """Reduce* over `axes` (None: all). Opset 18 moved the axes of all but ReduceSum (13) from
    an attribute to an input."""
    outs = [out] if out else 1
    if axes is None:
        return b.emit(op_type, [x], outs, keepdims=int(keepdims))
    if op_type == "ReduceSum" or b.opset >= 18:
        return b.emit(op_type, [x, b.const(_i64(axes))], outs, keepdims=int(keepdims))
    return b.emit(op_type, [x], outs, axes=axes, keepdims=int(keepdims))


@op("_batch_norm")
def _batch_norm(b: Builder) -> None:
    dt = b.out_dtype()
    scale, bias = _param_or(b, 3, 1.0, dt), _param_or(b, 4, 0.0, dt)
    eps = float(b.arg(7))
    if b.raw(5) or b.raw(1) is None or b.raw(2) is None:  # batch statistics
        b.call(FUNCTIONS["BatchNormBatchStats"], [b.x(0, dt), scale, bias], [b.out()],
               epsilon=eps)
        return
    b.emit("BatchNormalization", [b.x(0, dt), scale, bias, b.x(1, dt), b.x(2, dt)],
           [b.out()], epsilon=eps)


@op("_instance_norm")
def _instance_norm(b: Builder) -> None:
    dt = b.out_dtype()
    if not b.raw(5) and b.raw(1) is not None:
        raise b.fail("uses running statistics in an instance norm; export it with "
                     "use_input_stats (track_running_stats=False)")
    b.emit("InstanceNormalization", [b.x(0, dt), _param_or(b, 3, 1.0, dt),
                                     _param_or(b, 4, 0.0, dt)], [b.out()],
           epsilon=float(b.arg(7)))


@op("_group_norm")
def _group_norm(b: Builder) -> None:
    dt = b.out_dtype()
    inputs = [b.x(0, dt), _param_or(b, 2, 1.0, dt), _param_or(b, 3, 0.0, dt)]
    attrs = {"num_groups": b.int(1), "epsilon": float(b.arg(4))}
    if b.opset >= 21:  # per-channel scale and bias (18 to 20 take them per group)
        b.emit("GroupNormalization", inputs, [b.out()], **attrs)
    else:
        b.call(FUNCTIONS["GroupNorm"], inputs, [b.out()], **attrs)


@op("layer_norm")
def _layer_norm(b: Builder) -> None:
    dt = b.out_dtype()
    shape = b.ints(1)
    scale = b.x(2, dt) if b.raw(2) is not None else b.const(np.ones(shape), dt)
    b.emit("LayerNormalization", [b.x(0, dt), scale, b.x(3, dt)], [b.out()],
           axis=-len(shape), epsilon=float(b.arg(4)))


@op("rms_norm")
def _rms_norm(b: Builder) -> None:
    dt = b.out_dtype()
    n = len(b.ints(1))
    eps = b.arg(3)
    eps = float(np.finfo(np.float32 if dt == "float32" else np.float64).eps) if eps is None \
        else float(eps)
    scale = b.x(2, dt) if b.raw(2) is not None else b.const(np.ones(b.ints(1)), dt)
    b.call(FUNCTIONS["RmsNorm"], [b.x(0, dt), scale], [b.out()], axes=list(range(-n, 0)),
           epsilon=eps)


# ---- reductions ------------------------------------------------------------------------------

def _dims(b: Builder, k: int) -> Optional[List[int]]:
    """A dim argument: None (or empty) means every dimension."""
    if b.raw(k) is None:
        return None
    dims = b.ints(k)
    return [_axis(d, b.rank(0)) for d in dims] or None


_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "prod": "ReduceProd", "amax": "ReduceMax",
           "amin": "ReduceMin", "logsumexp": "ReduceLogSumExp"}


@op(*_REDUCE)
def _reduction(b: Builder) -> None:
    x = b.x(0, b.out_dtype())
    if b.rank(0) == 0:
        b.set(0, x)
        return
    _reduce(b, _REDUCE[b.op], x, _dims(b, 1), bool(b.raw(2)), b.out())


@op("_max_all", "_min_all")
def _extreme_all(b: Builder) -> None:
    _reduce(b, "ReduceMax" if b.op == "_max_all" else "ReduceMin", b.x(0), None, False, b.out())


@op("_max_dim", "_min_dim")
def _extreme_dim(b: Builder) -> None:
    is_max = b.op == "_max_dim"
    d, keep = _axis(b.int(1), b.rank(0)), int(bool(b.raw(2)))
    x = b.x(0)
    _reduce(b, "ReduceMax" if is_max else "ReduceMin", x, [d], bool(keep), b.out(0))
    b.emit("ArgMax" if is_max else "ArgMin", [x], [b.out(1)], axis=d, keepdims=keep)


@op("argmax", "argmin")
def _arg_extreme(b: Builder) -> None:
    onnx_op = "ArgMax" if b.op == "argmax" else "ArgMin"
    if b.raw(1) is None:
        flat = b.emit("Reshape", [b.x(0), b.const(_i64([-1]))])
        y = b.emit(onnx_op, [flat], axis=0, keepdims=0)
        b.set(0, b.reshape(y, [], b.out_shape(0)) if b.out_shape(0) else y)
        return
    b.emit(onnx_op, [b.x(0)], [b.out()], axis=_axis(b.int(1), b.rank(0)),
           keepdims=int(bool(b.raw(2))))


@op("_var", "_std")
def _var(b: Builder) -> None:
    dims = _dims(b, 1) or list(range(b.rank(0)))
    b.call(FUNCTIONS["Std" if b.op == "_std" else "Var"], [b.x(0, b.out_dtype())], [b.out()],
           axes=dims, correction=float(b.arg(2)), keepdims=int(bool(b.raw(3))))


@op("_norm")
def _norm(b: Builder) -> None:
    dt = b.out_dtype()
    x, p = b.x(0, dt), float(b.arg(1))
    dims, keep = _dims(b, 2), bool(b.raw(3))
    if p in (1.0, 2.0):
        _reduce(b, "ReduceL1" if p == 1.0 else "ReduceL2", x, dims, keep, b.out())
    elif math.isinf(p):
        _reduce(b, "ReduceMax" if p > 0 else "ReduceMin", b.emit("Abs", [x]), dims, keep,
                b.out())
    elif p == 0.0:  # the count of non-zero entries
        nonzero = b.emit("Cast", [b.emit("Not", [b.emit("Equal", [x, _c(b, 0.0)])])],
                         to=b.onnx_type(dt))
        _reduce(b, "ReduceSum", nonzero, dims, keep, b.out())
    else:
        total = _reduce(b, "ReduceSum", b.emit("Pow", [b.emit("Abs", [x]), _c(b, p)]), dims,
                        keep)
        b.emit("Pow", [total, _c(b, 1.0 / p)], [b.out()])


@op("cumsum")
def _cumsum(b: Builder) -> None:
    b.emit("CumSum", [b.x(0, b.out_dtype()), b.const(np.array(b.int(1)))], [b.out()])


@op("softmax", "log_softmax")
def _softmax(b: Builder) -> None:
    b.emit("Softmax" if b.op == "softmax" else "LogSoftmax", [b.x(0, b.out_dtype())],
           [b.out()], axis=b.int(1))


@op("_sdpa_flash")
def _sdpa(b: Builder) -> None:
    """A call of the attention function of its kind on (B, H, L, E); rank 2 and 3 are
    unsqueezed to 4 around it, higher ranks are expanded in the graph (Note [deepcore functions
    in ONNX]). The kernel refuses a mask together with is_causal."""
    if float(b.raw(7) if len(b.args) > 7 else 0.0) != 0.0:
        raise b.fail("applies attention dropout; export the model in eval mode")
    dt = b.out_dtype()
    if b.raw(6) and b.shape(0)[-3] != b.shape(1)[-3]:
        raise b.fail("uses grouped-query attention (enable_gqa), which is not exported")
    causal, has_mask = bool(b.raw(4)), b.raw(3) is not None
    mask = None if not has_mask else "bool" if b.dtype(3) == "bool" else "additive"
    inputs = [b.x(0, dt), b.x(1, dt), b.x(2, dt)]
    if has_mask:
        inputs.append(b.x(3) if mask == "bool" else b.x(3, dt))
    ranks = [b.rank(k) for k in range(3)]
    scale = float(b.raw(5))
    if max(ranks) > 4:
        body = _attention_body(causal, mask)
        b.set(0, body(_Inline(b, dt, {"scale": scale}), *inputs, rank=max(ranks)))
        return
    for k, r in enumerate(ranks):
        if r < 4:
            inputs[k] = b.emit("Unsqueeze", [inputs[k], b.const(_i64(list(range(4 - r))))])
    y = b.call(FUNCTIONS[_ATTENTION[(causal, mask)]], inputs, scale=scale)
    out_rank = len(b.out_shape(0))
    if out_rank < 4:
        y = b.emit("Squeeze", [y, b.const(_i64(list(range(4 - out_rank))))])
    b.set(0, y)


# ---- shapes ----------------------------------------------------------------------------------

@op("_view", "view", "_reshape", "reshape", "flatten", "unflatten")
def _view(b: Builder) -> None:
    b.set(0, b.reshape(b.x(0), b.shape(0), b.out_shape(0)))


@op("contiguous", "clone", "detach", "alias", "_set_requires_grad")
def _identity(b: Builder) -> None:
    b.set(0, b.x(0))


@op("dropout", "dropout_")
def _dropout(b: Builder) -> None:
    if b.raw(2) and float(b.raw(1)) > 0.0:
        raise b.fail("drops activations (training=True); export the model in eval mode")
    b.set(0, b.x(0))


@op("_to_dtype")
def _to_dtype(b: Builder) -> None:
    b.set(0, b.x(0, b.out_dtype()))


@op("squeeze")
def _squeeze(b: Builder) -> None:
    shape = b.shape(0)
    dims = range(len(shape)) if b.raw(2) or not b.raw(1) else \
        [_axis(d, len(shape)) for d in b.ints(1)]
    axes = [d for d in dims if shape[d] == 1]
    b.set(0, b.emit("Squeeze", [b.x(0), b.const(_i64(axes))]) if axes else b.x(0))


@op("unsqueeze")
def _unsqueeze(b: Builder) -> None:
    d = _axis(b.int(1), b.rank(0) + 1)
    b.emit("Unsqueeze", [b.x(0), b.const(_i64([d]))], [b.out()])


@op("_permute", "permute")
def _permute(b: Builder) -> None:
    rank = b.rank(0)
    b.emit("Transpose", [b.x(0)], [b.out()], perm=[_axis(d, rank) for d in b.ints(1)])


@op("transpose", "swapaxes", "t", "_T")
def _transpose(b: Builder) -> None:
    rank = b.rank(0)
    perm = list(range(rank))
    if b.op in ("t", "_T"):
        perm.reverse()
    else:
        d0, d1 = _axis(b.int(1), rank), _axis(b.int(2), rank)
        perm[d0], perm[d1] = perm[d1], perm[d0]
    b.set(0, b.emit("Transpose", [b.x(0)], perm=perm) if perm != sorted(perm) else b.x(0))


@op("select")
def _select(b: Builder) -> None:
    d = _axis(b.int(1), b.rank(0))
    b.emit("Gather", [b.x(0), b.scalar(b.arg(2))], [b.out()], axis=d)


def _slice(b: Builder, x: str, d: int, start: Size, end: Size, step: int) -> str:
    if end == b.shape(0)[d] and not isinstance(end, int):
        end = INT64_MAX  # to the end, whatever the size
    return b.emit("Slice", [x, b.sizes_tensor([start]), b.sizes_tensor([end]),
                            b.const(_i64([d])), b.const(_i64([step]))])


@op("_slice")
def _slice_op(b: Builder) -> None:
    d = _axis(b.int(1), b.rank(0))
    b.set(0, _slice(b, b.x(0), d, b.arg(2), b.arg(3), b.int(4)))


@op("narrow")
def _narrow(b: Builder) -> None:
    d = _axis(b.int(1), b.rank(0))
    start, length = b.arg(2), b.arg(3)
    if isinstance(start, int) and isinstance(length, int):
        b.set(0, _slice(b, b.x(0), d, start, start + length, 1))
        return
    s = b.sizes_tensor([start])
    e = b.emit("Add", [s, b.sizes_tensor([length])])
    b.emit("Slice", [b.x(0), s, e, b.const(_i64([d]))], [b.out()])


@op("split", "chunk", "unbind")
def _split(b: Builder) -> None:
    rank = b.rank(0)
    d = _axis(b.int(1 if b.op == "unbind" else 2), rank)
    n = len(b.outputs)
    if b.op == "unbind":
        parts = b.emit("Split", [b.x(0), b.const(_i64([1] * n))], n, axis=d)
        parts = [parts] if n == 1 else parts
        for j, p in enumerate(parts):
            b.emit("Squeeze", [p, b.const(_i64([d]))], [b.out(j)])
        return
    sizes = [b.out_shape(j)[d] for j in range(n)]
    b.emit("Split", [b.x(0), b.sizes_tensor(sizes)], [b.out(j) for j in range(n)], axis=d)


@op("cat")
def _cat(b: Builder) -> None:
    dt = b.out_dtype()
    rank = len(b.out_shape(0))
    # torch's cat skips 1-D empty tensors beside tensors of higher rank.
    parts = [b.tensor(a, dt) for a in b.raw(0) if not (rank > 1 and b.tensor_shape(a) == [0])]
    b.emit("Concat", parts, [b.out()], axis=_axis(b.int(1), rank))


@op("stack")
def _stack(b: Builder) -> None:
    dt = b.out_dtype()
    d = b.const(_i64([_axis(b.int(1), len(b.out_shape(0)))]))
    parts = [b.emit("Unsqueeze", [b.tensor(a, dt), d]) for a in b.raw(0)]
    b.emit("Concat", parts, [b.out()], axis=_axis(b.int(1), len(b.out_shape(0))))


@op("_expand", "expand", "broadcast_to")
def _expand(b: Builder) -> None:
    src, dst = b.shape(0), b.out_shape(0)
    # 1 keeps the input's size under ONNX's broadcasting, whatever it is at run time.
    target = [1 if i >= len(dst) - len(src) and src[i - len(dst) + len(src)] == s else s
              for i, s in enumerate(dst)]
    b.emit("Expand", [b.x(0), b.sizes_tensor(target)], [b.out()])


@op("_repeat")
def _repeat(b: Builder) -> None:
    reps = b.sizes_arg(1)
    x = b.x(0)
    extra = len(reps) - b.rank(0)
    if extra > 0:
        x = b.emit("Unsqueeze", [x, b.const(_i64(list(range(extra))))])
    b.emit("Tile", [x, b.sizes_tensor(reps)], [b.out()])


@op("flip")
def _flip(b: Builder) -> None:
    rank = b.rank(0)
    dims = [_axis(d, rank) for d in b.ints(1)]
    n = len(dims)
    b.emit("Slice", [b.x(0), b.const(_i64([-1] * n)), b.const(_i64([-INT64_MAX] * n)),
                     b.const(_i64(dims)), b.const(_i64([-1] * n))], [b.out()])


@op("tril", "triu")
def _tri(b: Builder) -> None:
    b.emit("Trilu", [b.x(0), b.scalar(b.arg(1))], [b.out()], upper=int(b.op == "triu"))


@op("index_select")
def _index_select(b: Builder) -> None:
    b.emit("Gather", [b.x(0), b.x(2, "int64")], [b.out()], axis=_axis(b.int(1), b.rank(0)))


@op("gather")
def _gather(b: Builder) -> None:
    b.emit("GatherElements", [b.x(0), b.x(2, "int64")], [b.out()],
           axis=_axis(b.int(1), b.rank(0)))


@op("embedding")
def _embedding(b: Builder) -> None:
    b.emit("Gather", [b.x(0), b.x(1, "int64")], [b.out()], axis=0)


@op("index")
def _index(b: Builder) -> None:
    idx = b.raw(1)
    used = [i for i, t in enumerate(idx) if t is not None]
    if len(used) != 1 or b.tensor_dtype(idx[used[0]]) == "bool":
        raise b.fail("indexes with several index tensors or a boolean mask; only one integer "
                     "index tensor (x[..., idx]) is exported")
    b.emit("Gather", [b.x(0), b.tensor(idx[used[0]], "int64")], [b.out()], axis=used[0])


@op("one_hot")
def _one_hot(b: Builder) -> None:
    n = b.arg(1)
    if n == -1:
        raise b.fail("takes num_classes from the data; pass num_classes explicitly")
    b.emit("OneHot", [b.x(0, "int64"), b.scalar(n), b.const(_i64([0, 1]))], [b.out()], axis=-1)


@op("_argsort")
def _argsort(b: Builder) -> None:
    d = _axis(b.int(1), b.rank(0))
    k = b.sizes_tensor([b.shape(0)[d]])
    _, idx = b.emit("TopK", [b.x(0), k], 2, axis=d, largest=int(bool(b.raw(2))), sorted=1)
    b.set(0, idx)


@op("_topk_indices")
def _topk_indices(b: Builder) -> None:
    # (input, k, dim, largest): TopK keeps ties in index order, as the kernel does.
    d = _axis(b.int(2), b.rank(0))
    _, idx = b.emit("TopK", [b.x(0), b.sizes_tensor([b.int(1)])], 2, axis=d,
                    largest=int(bool(b.raw(3))), sorted=1)
    b.set(0, idx)


# ---- creation --------------------------------------------------------------------------------

def _fill(b: Builder, value: float) -> None:
    arr = np.array([value], dtype=DTYPES[b.out_dtype()][1])
    b.emit("ConstantOfShape", [b.sizes_tensor(b.out_shape(0))], [b.out()],
           value=b.numpy_helper.from_array(arr, "value"))


@op("_full")
def _full(b: Builder) -> None:
    _fill(b, b.raw(1))


@op("_empty", "zero_")
def _zeros(b: Builder) -> None:
    _fill(b, 0)


@op("fill_")
def _fill_inplace(b: Builder) -> None:
    if not isinstance(b.raw(1), (bool, int, float)):
        raise b.fail("fills with a tensor value; only a number can be exported")
    _fill(b, b.raw(1))


@op("copy_")
def _copy(b: Builder) -> None:
    b.emit("Expand", [b.x(1, b.out_dtype()), b.sizes_tensor(b.out_shape(0))], [b.out()])


@op("_arange")
def _arange(b: Builder) -> None:
    dt = b.out_dtype()
    b.emit("Range", [b.scalar(b.arg(k), dt) for k in (0, 1, 2)], [b.out()])


@op("_linspace")
def _linspace(b: Builder) -> None:
    dt, steps = b.out_dtype(), b.arg(2)
    start, end = float(b.arg(0)), float(b.arg(1))
    index = b.emit("Cast", [b.emit("Range", [b.scalar(0), b.scalar(steps), b.scalar(1)])],
                   to=b.onnx_type("float64"))
    step = b.emit("Div", [b.const(np.array(end - start)),
                          b.emit("Max", [b.emit("Sub", [b.scalar(steps, "float64"),
                                                        b.const(np.array(1.0))]),
                                         b.const(np.array(1.0))])])
    y = b.emit("Add", [b.emit("Mul", [index, step]), b.const(np.array(start))])
    b.set(0, b.cast(y, dt) if dt != "float64" else y)


@op("_eye")
def _eye(b: Builder) -> None:
    dt = b.out_dtype()
    zeros = b.emit("ConstantOfShape", [b.sizes_tensor(b.out_shape(0))],
                   value=b.numpy_helper.from_array(np.zeros(1, DTYPES[dt][1]), "value"))
    b.emit("EyeLike", [zeros], [b.out()])


# ---- recurrent layers ------------------------------------------------------------------------

# Gate blocks of deepcore's (torch's) weights in ONNX's order: LSTM i,f,g,o -> i,o,f,c; GRU
# r,z,n -> z,r,h.
_GATES = {"LSTM": ("LSTM", [0, 3, 1, 2]), "GRU": ("GRU", [1, 0, 2]),
          "RNN_TANH": ("RNN", [0]), "RNN_RELU": ("RNN", [0])}


@op("_rnn_layer")
def _rnn_layer(b: Builder) -> None:
    mode, reverse = b.raw(9), bool(b.raw(10))
    if mode not in _GATES:
        raise b.fail(f"runs recurrent mode '{mode}', which has no ONNX op")
    if b.raw(8):
        raise b.fail("runs a packed sequence (PackedSequence); export padded input instead")
    if b.raw(7) is not None:
        raise b.fail("runs an LSTM with proj_size > 0, which ONNX's LSTM cannot express")
    if b.rank(0) != 3:
        raise b.fail(f"has input of shape {b.shape(0)}; the exported layer needs (T, B, I)")
    onnx_op, blocks = _GATES[mode]
    dt = b.out_dtype()
    hidden = int(b.shape(4)[1])
    index = b.const(np.concatenate([np.arange(g * hidden, (g + 1) * hidden) for g in blocks]))
    zero = b.const(_i64([0]))

    def reorder(k: int) -> str:
        return b.emit("Gather", [b.x(k, dt), index], axis=0)

    w = b.emit("Unsqueeze", [reorder(3), zero])
    r = b.emit("Unsqueeze", [reorder(4), zero])
    bias = ""
    if b.raw(5) is not None:
        bias = b.emit("Unsqueeze", [b.emit("Concat", [reorder(5), reorder(6)], axis=0), zero])
    h0 = b.emit("Unsqueeze", [b.x(1, dt), zero])
    inputs = [b.x(0, dt), w, r, bias, "", h0]
    attrs = {"hidden_size": hidden, "direction": "reverse" if reverse else "forward"}
    if onnx_op == "LSTM":
        inputs.append(b.emit("Unsqueeze", [b.x(2, dt), zero]))
    elif onnx_op == "GRU":
        attrs["linear_before_reset"] = int(bool(b.raw(11)))
    else:
        attrs["activations"] = ["Tanh" if mode == "RNN_TANH" else "Relu"]
    outs = b.emit(onnx_op, inputs, 3 if onnx_op == "LSTM" else 2, **attrs)
    b.emit("Squeeze", [outs[0], b.const(_i64([1]))], [b.out(0)])  # (T, 1, B, H) -> (T, B, H)
    for j in range(1, len(outs)):
        b.emit("Squeeze", [outs[j], zero], [b.out(j)])
