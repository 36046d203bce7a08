"""Top-level op functions (deepcore.exp, deepcore.cat, ...), PyTorch's names and signatures."""
from __future__ import annotations

from . import _C
from ._tensor import _shape_args

# The schema's functions bound in C++ under their own names; those written in Python come
# from their modules (_creation, _reduce, ...).
for _op in _C._op_registry():
    if ("function" in _op["variants"] and _op["binding"] == _op["name"] and
            _op["module"] == "deepcore"):
        globals()[_op["name"]] = getattr(_C, _op["name"])
        if "inplace" in _op["variants"]:
            globals()[_op["name"] + "_"] = getattr(_C, _op["name"] + "_")

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
