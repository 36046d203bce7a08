"""Top-level op functions (deepcore.exp, deepcore.cat, ...), PyTorch's names and signatures."""
from __future__ import annotations

from . import _C
from ._tensor import _shape_args

_NAMES = [
    "add", "sub", "mul", "div", "floor_divide", "remainder", "fmod", "pow", "maximum", "minimum",
    "atan2", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
    "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "isnan", "isinf", "isfinite",
    "where", "clamp", "clamp_", "neg", "abs", "exp", "expm1", "log", "log2", "log10", "log1p",
    "sqrt", "rsqrt", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
    "sigmoid", "relu", "silu", "erf", "reciprocal", "square", "sign", "floor", "ceil", "round",
    "trunc", "relu_", "sigmoid_", "tanh_", "exp_", "leaky_relu_", "gelu", "softplus", "leaky_relu", "elu",
    "selu", "celu", "hardtanh", "relu6", "hardsigmoid", "hardswish", "logsigmoid", "mish",
    "clone", "transpose", "swapaxes", "t", "squeeze", "unsqueeze", "flatten", "unflatten",
    "select", "narrow", "split", "chunk", "unbind", "cat", "stack", "flip", "tril", "triu",
    "sum", "mean", "matmul", "mm", "bmm", "mv", "dot", "outer", "addmm", "as_strided",
    "bernoulli", "softmax", "log_softmax", "dropout", "layer_norm",
]
for _n in _NAMES:
    if hasattr(_C, _n):
        globals()[_n] = getattr(_C, _n)

concat = concatenate = globals()["cat"]
multiply = globals()["mul"]
subtract = globals()["sub"]
divide = globals()["div"]
true_divide = globals()["div"]
negative = globals()["neg"]
absolute = globals()["abs"]
clip = globals()["clamp"]
arctan2 = globals()["atan2"]


def reshape(input, shape):
    return _C._reshape(input, _shape_args((shape,), "reshape"))


def permute(input, dims):
    return _C._permute(input, _shape_args((dims,), "permute"))


def broadcast_to(input, size):
    return _C._expand(input, _shape_args((size,), "broadcast_to"))


def numel(input):
    return input.numel()


__all__ = [n for n in list(globals()) if not n.startswith("_")]
