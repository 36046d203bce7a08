"""Differential fuzzing of every public op against PyTorch.

Arguments are drawn from each op's signature, a PyTorch-style schema string such as
``add(TensorLike input, TensorLike other, *, Scalar alpha=1) -> Tensor``: the registry's
``signature`` key (``deepcore._C._op_registry()``), or ``FALLBACK_SIGNATURES`` below while a
registry lacks it. Tensors come in every dtype (bool, int32, int64, float32, float64), as 0-d,
empty, size-1 and general shapes, contiguous or not (transposed, sliced with a step, expanded),
sometimes holding nan/inf or integer extremes; ints, floats, Scalars and strings include values
out of range. Every call must end in one of two ways:

- a typed Python error (ValueError, IndexError, TypeError, RuntimeError, NotImplementedError,
  OverflowError, MemoryError), where torch raises too, or
- a result that matches torch: structure, shape, dtype, values (float32 rtol 1e-4, float64
  rtol 1e-7, integers and bools exact; nan where torch has nan). In-place ops are also compared
  on the tensor they write.

A result where torch raises, or an error where torch returns, is a finding, unless it is listed
in ``DELIBERATE`` with the reason. Ops with random results are compared on shape and dtype only.

Crash safety: pytest runs the fuzzing in a worker process (``python -m test_fuzz``) that logs
each call before making it; if the worker dies (segfault, abort, SIGFPE) the test fails naming
that call, and a new worker carries on with the remaining ops so one crash hides no other.

Budget: by default one reproducible round (hypothesis ``derandomize``) of
``DEEPCORE_FUZZ_EXAMPLES`` (default 10) examples per op, about a minute on two cores. Longer
runs, with a fresh seed per round:

    DEEPCORE_FUZZ_SECONDS=600 pytest tests/test_fuzz.py      # rounds until 10 minutes pass
    DEEPCORE_FUZZ_EXAMPLES=50 DEEPCORE_FUZZ_OPS=add,split pytest tests/test_fuzz.py
    DEEPCORE_FUZZ_SEED=7 ...                                  # first round's seed

The worker can also be run by hand: ``cd tests && python -m test_fuzz --ops flip``.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

TYPED_ERRORS = (ValueError, IndexError, TypeError, RuntimeError, NotImplementedError,
                OverflowError, MemoryError)

# ---- signatures -----------------------------------------------------------------------------

# Used only while the registry has no "signature" key; the same format as csrc/ops/ops.schema.
FALLBACK_SIGNATURES = """
add(TensorLike input, TensorLike other, *, Scalar alpha=1) -> Tensor
sub(TensorLike input, TensorLike other, *, Scalar alpha=1) -> Tensor
mul(TensorLike input, TensorLike other) -> Tensor
div(TensorLike input, TensorLike other, *, str? rounding_mode=None) -> Tensor
floor_divide(TensorLike input, TensorLike other) -> Tensor
remainder(TensorLike input, TensorLike other) -> Tensor
fmod(TensorLike input, TensorLike other) -> Tensor
pow(TensorLike input, TensorLike other) -> Tensor
maximum(TensorLike input, TensorLike other) -> Tensor
eq(TensorLike input, TensorLike other) -> Tensor
lt(TensorLike input, TensorLike other) -> Tensor
bitwise_and(TensorLike input, TensorLike other) -> Tensor
where(Tensor condition, TensorLike input, TensorLike other) -> Tensor
exp(Tensor input) -> Tensor
abs(Tensor input) -> Tensor
clamp(Tensor input, TensorLike? min=None, TensorLike? max=None) -> Tensor
fill_(Tensor(a!) input, Scalar value) -> Tensor
full(int[] size, Scalar fill_value, ScalarType? dtype=None) -> Tensor
reshape(Tensor input, int[] shape) -> Tensor
permute(Tensor input, int[] dims) -> Tensor
transpose(Tensor input, int dim0, int dim1) -> Tensor
squeeze(Tensor input, int[]? dim=None) -> Tensor
unsqueeze(Tensor input, int dim) -> Tensor
flatten(Tensor input, int start_dim=0, int end_dim=-1) -> Tensor
select(Tensor input, int dim, int index) -> Tensor
narrow(Tensor input, int dim, int start, int length) -> Tensor
split(Tensor tensor, int[] split_size_or_sections, int dim=0) -> Tensor[]
chunk(Tensor input, int chunks, int dim=0) -> Tensor[]
unbind(Tensor input, int dim=0) -> Tensor[]
cat(Tensor[] tensors, int dim=0) -> Tensor
stack(Tensor[] tensors, int dim=0) -> Tensor
flip(Tensor input, int[] dims) -> Tensor
flipud(Tensor input) -> Tensor
fliplr(Tensor input) -> Tensor
sum(Tensor input, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor
cumsum(Tensor input, int dim, *, ScalarType? dtype=None) -> Tensor
index_select(Tensor input, int dim, LongTensor index) -> Tensor
gather(Tensor input, int dim, LongTensor index) -> Tensor
masked_fill(Tensor input, TensorLike mask, TensorLike value) -> Tensor
matmul(Tensor input, Tensor other) -> Tensor
softmax(Tensor input, int dim, ScalarType? dtype=None) -> Tensor
"""

# Registry ops that torch has under no name: skipped, and listed so a new one is a decision.
NO_TORCH_COUNTERPART = {"sgd_step", "adam_step", "rmsprop_step", "adagrad_step", "mish_",
                        "silu_"}

# Mixed float dtypes: deepcore's result takes the promoted dtype; torch's composite takes the
# target's (float64 input, float32 target -> float32).
PROMOTING_LOSSES = {"binary_cross_entropy_with_logits"}
# Ties: the order of equal elements (and so the indices) is the implementation's choice.
TIE_ORDER_OPS = {"topk", "kthvalue", "sort", "argsort", "msort"}

# Random results: compared on structure, shape and dtype, not values.
RANDOM_OPS = {"empty", "empty_like", "rand", "randn", "randint", "rand_like", "randn_like",
              "randint_like", "randperm", "uniform_", "normal_", "bernoulli", "bernoulli_",
              "dropout", "dropout2d"}

# Ops not fuzzed, with the reason.
NOT_FUZZED = {
    "as_strided": "reads raw storage; torch and deepcore lay out views of views differently",
    "interpolate": "scale_factor/size are typed Any; covered by test_pool",
    "upsample": "deprecated alias of interpolate",
    "norm": "p is typed Any (number or string); covered by test_reduce",
    "index": "the x[...] operator, where None means a full slice (torch: a new axis); "
             "see test_index",
    "to": "torch's Tensor.to takes (dtype, non_blocking, copy) positionally; see test_creation",
}

# Deliberate differences from torch, each (ops or "*", predicate(dc_error, torch_error,
# torch_result), why). A disagreement no row explains is a finding.
def _msg(e):
    return "" if e is None else str(e)


def _is_empty_tensor(x):
    return getattr(x, "numel", lambda: 1)() == 0


DELIBERATE = [
    # torch wraps an out-of-range Python int operand silently (int32 + 2**32 adds 0,
    # int32 < 2**31 is False); deepcore raises (Note [Scalars out of range] in core/scalar.h).
    ("*", lambda de, te, tr: "without overflow" in _msg(de) and te is None,
     "out-of-range Python number: deepcore raises where torch wraps"),
    ("*", lambda de, te, tr: "does not fit in int64" in _msg(de) and te is None,
     "a Python int beyond int64: torch wraps 2**63 .. 2**64-1 through uint64, deepcore refuses"),
    # deepcore promotes integer and bool inputs of float-valued ops (activations, losses, lerp,
    # addcmul, kl_div ...) where torch has no kernel for the dtype.
    ("*", lambda de, te, tr: de is None and (isinstance(te, NotImplementedError) or any(
        s in _msg(te) for s in ("not implemented for", "not supported", "Integral inputs",
                                "Bool inputs", "does not support bool"))),
     "deepcore computes dtypes torch has no kernel for"),
    # On an empty tensor torch skips its dtype check; deepcore checks the dtype first.
    ("*", lambda de, te, tr: isinstance(de, TypeError) and _is_empty_tensor(tr),
     "dtype checked before the shape"),
    ({"gather", "take_along_dim", "index_select", "index_add", "scatter", "scatter_add",
      "scatter_", "scatter_add_", "index_add_"},
     lambda de, te, tr: de is None and ("out of bounds" in _msg(te) or "out of range" in _msg(te)),
     "negative indices wrap (tests/test_index.py)"),
    ({"index_put", "index_put_"}, lambda de, te, tr: "expected Tensor as element" in _msg(te),
     "None in index_put's list is a full slice, as in indexing"),
    ({"isclose", "allclose"}, lambda de, te, tr: "did not match" in _msg(te),
     "mixed dtypes promote instead of raising"),
    ({"logsumexp"}, lambda de, te, tr: "doesn't match the broadcast shape" in _msg(te),
     "torch fails on a 0-d input with keepdim; deepcore returns the value"),
    ({"dropout2d", "dropout3d"}, lambda de, te, tr: isinstance(de, ValueError),
     "deepcore refuses inputs of the wrong rank (2d: 3-D or 4-D, 3d: 4-D or 5-D); torch warns"),
    ({"randint_like", "uniform_", "normal_"}, lambda de, te, tr: True,
     "random ops: bounds and dtype rules differ, results are not compared"),
    ({"addcdiv"}, lambda de, te, tr: "Integer division with addcdiv" in _msg(te),
     "integer addcdiv divides truly, as torch's message announces for the future"),
    ({"broadcast_tensors"}, lambda de, te, tr: "expected Tensor as element" in _msg(te),
     "a single list of tensors is accepted, as meshgrid accepts it"),
    ({"pow", "pow_"}, lambda de, te, tr: "negative integer powers" in _msg(de),
     "negative integer exponents are refused in tensors too, not only in Python numbers"),
    ({"lerp", "binary_cross_entropy_with_logits"},
     lambda de, te, tr: de is None and ("expected dtype" in _msg(te) or "can't be cast" in _msg(te)),
     "mixed dtypes promote instead of raising"),
    ({"dropout", "dropout_", "linear", "matmul", "mse_loss", "huber_loss", "smooth_l1_loss"},
     lambda de, te, tr: isinstance(de, TypeError) and "bool" in _msg(de),
     "bool inputs of float math are refused (torch computes some of them)"),
    ({"kl_div", "l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy"},
     lambda de, te, tr: "must have the same shape" in _msg(de),
     "input and target shapes must match; torch broadcasts them with a warning"),
    ({"addcmul"}, lambda de, te, tr: "value must not be a floating point" in _msg(de),
     "a float value with integer inputs is refused; torch truncates it (0.5 -> 0)"),
    ({"fill_", "zero_"}, lambda de, te, tr: "share memory" in _msg(de),
     "in-place writes into an expanded tensor are refused, fill_ included "
     "(tests/test_errors.py)"),
    ({"take_along_dim"}, lambda de, te, tr: de is None and "view size is not compatible" in _msg(te),
     "dim=None on a non-contiguous input: torch's flatten-by-view fails, deepcore copies"),
    ({"polygamma"}, lambda de, te, tr: "at most 170" in _msg(de),
     "n beyond 170 is refused (n! overflows); torch returns NaN"),
    ({"cummax", "cummin"},
     lambda de, te, tr: te is None and "dimension out of range" in _msg(de),
     "dim is checked on empty inputs too; torch's cummax/cummin skip the check there"),
    ({"tril_indices", "triu_indices"},
     lambda de, te, tr: "too many to index" in _msg(de) or (de is None and any(
         s in _msg(te) for s in ("negative dimension", "overflow"))),
     "sizes and offsets near 2**63 overflow torch's count; deepcore counts in Python ints"),
    # Known gaps, to fix: listed so the fuzz run stays green and the gap stays visible.
    ({"linear"}, lambda de, te, tr: "weight must be 2-D" in _msg(de) or "does not match" in _msg(de),
     "GAP: 1-D weight with a bias, and a bias broadcast to the output"),
    ({"pow", "pow_"}, lambda de, te, tr: "not implemented for dtype bool" in _msg(de),
     "GAP: pow on bool"),
]

_SIG_RE = re.compile(r"^\s*(\w+)\((.*)\)\s*->\s*(.+?)\s*$")


@dataclass
class Arg:
    name: str
    type: str           # without the trailing "?" and "(a!)"
    optional: bool      # "T?": None is a value
    default: Any        # parsed default, or REQUIRED
    kw_only: bool
    writes: bool        # Tensor(a!)


REQUIRED = object()


@dataclass
class Signature:
    name: str
    args: list = field(default_factory=list)
    returns: str = ""


def _split_top(s: str) -> list:
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _parse_default(text: str):
    text = text.strip()
    if text == "None":
        return None
    if text in ("True", "False"):
        return text == "True"
    if text.startswith(("'", '"')):
        return text[1:-1]
    if text.startswith(("(", "[")):
        inner = text[1:-1].strip()
        return [int(x) for x in inner.split(",") if x.strip()]
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_signature(sig: str) -> Signature:
    m = _SIG_RE.match(sig)
    if not m:
        raise ValueError(f"unparsable signature {sig!r}")
    out = Signature(m.group(1), [], m.group(3))
    kw_only = False
    for part in _split_top(m.group(2)):
        if part == "*":
            kw_only = True
            continue
        decl, _, default = part.partition("=")
        typ, name = decl.rsplit(None, 1)
        writes = "(a!)" in typ
        typ = typ.replace("(a!)", "")
        optional = typ.endswith("?")
        typ = typ.rstrip("?")
        out.args.append(Arg(name, typ, optional, _parse_default(default) if default else REQUIRED,
                            kw_only, writes))
    return out


def registry_signatures() -> dict:
    """name -> (signature string, registry row) for the public ops."""
    import deepcore as dc
    rows = dc._C._op_registry()
    if rows and "signature" in rows[0]:
        return {r["name"]: (r["signature"], r) for r in rows if not r["name"].startswith("_")}
    table = {}
    for line in FALLBACK_SIGNATURES.strip().splitlines():
        table[parse_signature(line).name] = (line, {})
    return table


# ---- resolving an op in both libraries -------------------------------------------------------

def resolve(name: str, row: dict):
    """(deepcore callable, torch callable, is_method) or None when torch has no such op."""
    import deepcore as dc
    import deepcore.nn.functional as dF
    import torch
    import torch.nn.functional as tF
    module = row.get("module", "")
    variants = row.get("variants") or ["function"]
    if module.endswith("nn.functional") or (not hasattr(dc, name) and hasattr(dF, name)):
        if hasattr(dF, name) and hasattr(tF, name):
            return getattr(dF, name), getattr(tF, name), False
        if hasattr(dF, name) and hasattr(torch, name):
            return getattr(dF, name), getattr(torch, name), False
    if "function" in variants and hasattr(dc, name) and hasattr(torch, name):
        return getattr(dc, name), getattr(torch, name), False
    if hasattr(dc.Tensor, name) and hasattr(torch.Tensor, name):
        return getattr(dc.Tensor, name), getattr(torch.Tensor, name), True
    if hasattr(dc, name) and hasattr(torch, name):
        return getattr(dc, name), getattr(torch, name), False
    if hasattr(dc, name) and hasattr(tF, name):
        return getattr(dc, name), getattr(tF, name), False
    # torch.special's functions under their C++ name (special_i1 is torch.special.i1).
    if name.startswith("special_") and hasattr(torch.special, name[len("special_"):]):
        return getattr(dc, name), getattr(torch.special, name[len("special_"):]), False
    return None


# ---- drawing arguments -----------------------------------------------------------------------

DTYPES = ("bool", "int32", "int64", "float32", "float64")
BIG_INTS = (2**31, -2**31 - 1, 2**62, 2**63 - 1, -2**63, 10**12)
# Sizes that fail at once in both libraries instead of allocating gigabytes.
HUGE_SIZES = (2**40, 2**62, 2**63 - 1, -2**63, -1, -7)
SPECIAL_FLOATS = (0.0, -0.0, math.inf, -math.inf, math.nan, 1e30, -1e30, 1e-30)
STR_CHOICES = {
    "rounding_mode": [None, "trunc", "floor", "round"],
    "reduction": ["mean", "sum", "none", "avg"],
    "approximate": ["none", "tanh", "erf"],
    "mode": ["constant", "reflect", "replicate", "circular", "nearest", "wrap"],
    "indexing": ["ij", "xy", "ji"],
}
DIM_NAMES = ("dim", "dim0", "dim1", "start_dim", "end_dim", "axis0", "axis1", "dims")
SIZE_NAMES = ("size", "shape", "sizes", "repeats", "normalized_shape", "output_size")


@dataclass(frozen=True)
class TensorSpec:
    """A tensor to build identically in both libraries."""
    shape: tuple
    dtype: str
    layout: str          # contiguous | transposed | strided | expanded
    seed: int
    special: bool        # sprinkle nan/inf/extremes
    low: int = -4        # value range for integer tensors (indices use it)
    high: int = 5

    def __repr__(self):
        extra = "" if self.layout == "contiguous" else f", {self.layout}"
        extra += ", special" if self.special else ""
        return f"T({self.shape}, {self.dtype}{extra}, seed={self.seed})"


@dataclass(frozen=True)
class DTypeSpec:
    name: str

    def __repr__(self):
        return self.name


def _values(spec: TensorSpec, shape) -> np.ndarray:
    rng = np.random.default_rng(spec.seed)
    if spec.dtype == "bool":
        return rng.random(shape) < 0.5
    if spec.dtype in ("int32", "int64"):
        a = rng.integers(spec.low, spec.high, size=shape).astype(spec.dtype)
        if spec.special and a.size:
            info = np.iinfo(spec.dtype)
            flat = a.reshape(-1)
            flat[rng.integers(0, a.size)] = rng.choice([info.min, info.max, 0, -1])
        return a
    a = rng.uniform(-3, 3, size=shape).astype(spec.dtype)
    if spec.special and a.size:
        flat = a.reshape(-1)
        for _ in range(max(1, a.size // 4)):
            flat[rng.integers(0, a.size)] = rng.choice(SPECIAL_FLOATS)
    return a


def build_tensor(spec: TensorSpec, lib):
    """The tensor in `lib` (deepcore or torch), with the same values and the same kind of view."""
    shape = spec.shape
    if spec.layout == "transposed" and len(shape) >= 2:
        base = _values(spec, shape[:-2] + (shape[-1], shape[-2]))
        return lib.tensor(base).transpose(-1, -2)
    if spec.layout == "strided" and len(shape) >= 1:
        base = _values(spec, shape[:-1] + (shape[-1] * 2,))
        return lib.tensor(base)[..., ::2]
    if spec.layout == "expanded" and len(shape) >= 1 and shape[0] > 1:
        base = _values(spec, (1,) + shape[1:])
        return lib.tensor(base).expand(*shape)
    return lib.tensor(_values(spec, shape))


def _lib_dtype(name, lib):
    return getattr(lib, name)


def materialize(value, lib):
    if isinstance(value, TensorSpec):
        return build_tensor(value, lib)
    if isinstance(value, DTypeSpec):
        return _lib_dtype(value.name, lib)
    if isinstance(value, list):
        return [materialize(v, lib) for v in value]
    if isinstance(value, tuple):
        return tuple(materialize(v, lib) for v in value)
    return value


def strategies():
    """Hypothesis strategies, built lazily so importing this file needs no hypothesis."""
    from hypothesis import strategies as st

    sizes = st.integers(0, 4) | st.just(1)

    @st.composite
    def base_shape(draw):
        nd = draw(st.integers(0, 4))
        return tuple(draw(sizes) for _ in range(nd))

    @st.composite
    def related_shape(draw, base):
        kind = draw(st.sampled_from(["same", "same", "same", "broadcast", "other"]))
        if kind == "same":
            return base
        if kind == "broadcast":
            keep = draw(st.integers(0, len(base)))
            s = list(base[len(base) - keep:])
            return tuple(1 if draw(st.booleans()) else x for x in s)
        return draw(base_shape())

    @st.composite
    def tensor(draw, shape, dtype, low=-4, high=5):
        layout = draw(st.sampled_from(["contiguous", "contiguous", "transposed", "strided",
                                       "expanded"]))
        return TensorSpec(shape, dtype, layout, draw(st.integers(0, 2**16)),
                          draw(st.integers(0, 7)) == 0, low, high)

    @st.composite
    def py_int(draw, lo=-5, hi=5, extremes=BIG_INTS):
        if draw(st.integers(0, 15)) == 0:
            return draw(st.sampled_from(extremes))
        return draw(st.integers(lo, hi))

    @st.composite
    def py_float(draw):
        if draw(st.integers(0, 7)) == 0:
            return draw(st.sampled_from(SPECIAL_FLOATS + (1e40, -1e300)))
        return draw(st.floats(-3, 3, allow_nan=False))

    @st.composite
    def scalar(draw):
        kind = draw(st.sampled_from(["int", "int", "float", "float", "bool"]))
        if kind == "int":
            return draw(py_int())
        if kind == "float":
            return draw(py_float())
        return draw(st.booleans())

    @st.composite
    def case(draw, sig: Signature):
        base = draw(base_shape())
        main_dtype = draw(st.sampled_from(DTYPES + ("float32", "float32")))
        nd = len(base)

        def dtype_for_other():
            return main_dtype if draw(st.integers(0, 3)) else draw(st.sampled_from(DTYPES))

        def one_tensor(first: bool):
            shape = base if first else draw(related_shape(base))
            return draw(tensor(shape, main_dtype if first else dtype_for_other()))

        def long_tensor():
            kind = draw(st.sampled_from(["1d", "1d", "like", "0d", "wrong_dtype"]))
            if kind == "0d":
                shape = ()
            elif kind == "like":
                shape = tuple(min(x, draw(st.integers(0, 3))) if draw(st.booleans()) else x
                              for x in base)
            else:
                shape = (draw(st.integers(0, 4)),)
            dtype = "int64" if kind != "wrong_dtype" else draw(st.sampled_from(DTYPES))
            hi = max([x for x in base] + [1])
            return draw(tensor(shape, dtype, low=-hi, high=hi + 1))

        def int_arg(name: str):
            if name in DIM_NAMES or name.endswith("dim"):
                return draw(py_int(-nd - 1, nd, BIG_INTS))
            if name in ("index", "start", "diagonal", "padding_idx", "ignore_index", "low"):
                return draw(py_int(-5, 5))
            return draw(py_int(-1, 5, HUGE_SIZES))

        def int_list(name: str):
            if name in DIM_NAMES or "dim" in name:
                n = draw(st.integers(0, min(nd, 3) + 1))
                return [draw(py_int(-nd - 1, nd, BIG_INTS)) for _ in range(n)]
            if name in SIZE_NAMES and draw(st.booleans()):
                # A shape with the tensor's numel, sometimes with a -1.
                shape = list(draw(st.permutations(list(base))))
                if shape and draw(st.booleans()):
                    shape[draw(st.integers(0, len(shape) - 1))] = -1
                if draw(st.booleans()):
                    shape.insert(draw(st.integers(0, len(shape))), 1)
                return shape
            n = draw(st.integers(0, 4))
            return [draw(py_int(-1, 4, HUGE_SIZES)) for _ in range(n)]

        def value_for(arg: Arg, first_tensor: bool):
            t = arg.type
            if t in ("Tensor",):
                return one_tensor(first_tensor)
            if t == "TensorLike":
                if not first_tensor and draw(st.integers(0, 3)) == 0:
                    return draw(scalar())
                if arg.name == "mask":
                    return draw(tensor(draw(related_shape(base)), "bool"))
                return one_tensor(first_tensor)
            if t == "LongTensor":
                return long_tensor()
            if t == "LongTensor?[]":
                return [None if draw(st.integers(0, 3)) == 0 else long_tensor()
                        for _ in range(draw(st.integers(1, 2)))]
            if t == "Tensor[]":
                n = draw(st.integers(1, 3))
                return [one_tensor(i == 0) for i in range(n)]
            if t == "Tensor?[]":
                return [None if draw(st.booleans()) else one_tensor(False)
                        for _ in range(draw(st.integers(0, 2)))]
            if t == "Scalar":
                return draw(scalar())
            if t == "int":
                return int_arg(arg.name)
            if t == "int[]":
                if draw(st.integers(0, 3)) == 0:
                    return int_arg(arg.name)
                return int_list(arg.name)
            if t == "float":
                if arg.name == "p":
                    return draw(st.sampled_from([0.0, 0.5, 1.0, -0.5, 1.5]))
                return draw(py_float())
            if t == "bool":
                return draw(st.booleans())
            if t == "str":
                choices = STR_CHOICES.get(arg.name)
                if choices is None:
                    choices = [arg.default] if isinstance(arg.default, str) else ["x"]
                    choices = choices + ["bogus"]
                return draw(st.sampled_from([c for c in choices if c is not None or arg.optional]))
            if t == "ScalarType":
                return DTypeSpec(draw(st.sampled_from(DTYPES)))
            raise LookupError(t)

        args, kwargs = [], {}
        first_tensor = True
        pending_defaults = []
        for arg in sig.args:
            is_tensorish = arg.type in ("Tensor", "TensorLike", "Tensor[]")
            if arg.type in ("Device", "Generator", "Any") or arg.name == "requires_grad":
                if arg.default is REQUIRED:
                    raise LookupError(arg.type)
                continue
            required = arg.default is REQUIRED
            use = required or draw(st.booleans())
            if use and arg.optional and not required and draw(st.integers(0, 3)) == 0:
                value = None
            elif use:
                value = value_for(arg, first_tensor)
            else:
                if not arg.kw_only:
                    pending_defaults.append(arg)
                if is_tensorish:
                    first_tensor = False
                continue
            if is_tensorish:
                first_tensor = False
            if arg.kw_only:
                kwargs[arg.name] = value
            else:
                # Positional; arguments skipped before this one take their defaults.
                for skipped in pending_defaults:
                    args.append(skipped.default)
                pending_defaults = []
                args.append(value)
        return tuple(args), kwargs

    return case


# ---- running one case ------------------------------------------------------------------------

class Finding(AssertionError):
    pass


def _torch_signature_mismatch(err: BaseException) -> bool:
    msg = str(err)
    return isinstance(err, TypeError) and any(
        s in msg for s in ("invalid combination of arguments", "unexpected keyword",
                           "positional argument", "got multiple values", "missing",
                           "incompatible function arguments", "must be tuple of ints",
                           "received an invalid", "argument '", "must be int", "not iterable",
                           "object cannot be interpreted"))


def _tolerance(dtype_name: str):
    return {"float32": (1e-4, 1e-5), "float64": (1e-7, 1e-9)}.get(dtype_name)


def compare(d, t, path="result", *, values=True):
    import deepcore as dc
    import torch
    if isinstance(t, torch.Tensor):
        if not isinstance(d, dc.Tensor):
            raise Finding(f"{path}: torch gives a Tensor, deepcore {type(d).__name__}")
        if tuple(d.shape) != tuple(t.shape):
            raise Finding(f"{path}: shape {tuple(d.shape)} != torch {tuple(t.shape)}")
        tname = str(t.dtype).replace("torch.", "")
        if d.dtype.name != tname:
            raise Finding(f"{path}: dtype {d.dtype.name} != torch {tname}")
        if not values or t.numel() > 1 << 20:  # an expanded view of a huge shape: no copy
            return
        a = np.array(d.detach().numpy(), copy=True)
        e = t.detach().numpy()
        tol = _tolerance(tname)
        if tol is None:
            if not np.array_equal(a, e):
                raise Finding(f"{path}: values differ\n deepcore {a!r}\n torch    {e!r}")
            return
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        if not np.array_equal(np.isnan(a64), np.isnan(e64)):
            raise Finding(f"{path}: nan positions differ\n deepcore {a!r}\n torch    {e!r}")
        ok = np.isclose(a64, e64, rtol=tol[0], atol=tol[1], equal_nan=True)
        if not ok.all():
            raise Finding(f"{path}: values differ (rtol {tol[0]})\n deepcore {a!r}\n torch    {e!r}")
        return
    if isinstance(t, (tuple, list)):
        if not isinstance(d, (tuple, list)) or len(d) != len(t):
            raise Finding(f"{path}: torch gives {type(t).__name__} of {len(t)}, deepcore {d!r:.200}")
        for i, (x, y) in enumerate(zip(d, t)):
            compare(x, y, f"{path}[{i}]", values=values)
        return
    if isinstance(t, torch.dtype):
        if d is None or getattr(d, "name", None) != str(t).replace("torch.", ""):
            raise Finding(f"{path}: dtype {d!r} != torch {t}")
        return
    if isinstance(t, (bool, int, float)) and isinstance(d, (bool, int, float)):
        if values and not (d == t or (isinstance(t, float) and math.isnan(t) and math.isnan(d))):
            raise Finding(f"{path}: {d!r} != torch {t!r}")
        return
    if t is None and d is None:
        return
    raise Finding(f"{path}: torch gives {t!r:.200}, deepcore {d!r:.200}")


CALLS = 0


def run_case(name: str, dc_fn, torch_fn, is_method: bool, case, sig: Signature, log=None):
    """Runs one drawn call in both libraries; raises Finding on a disagreement."""
    import deepcore as dc
    import torch
    global CALLS
    args, kwargs = case
    if log is not None:
        log.write(f"CALL {name}{_call_repr(args, kwargs)}\n")
        log.flush()
    CALLS += 1
    d_args, d_kwargs = materialize(list(args), dc), materialize(dict(kwargs), dc)
    t_args, t_kwargs = materialize(list(args), torch), materialize(dict(kwargs), torch)
    d_out = t_out = d_err = t_err = None
    try:
        d_out = dc_fn(*d_args, **d_kwargs)
    except TYPED_ERRORS as e:
        d_err = e
    except Exception as e:  # an untyped error is a finding in itself
        raise Finding(f"deepcore raised untyped {type(e).__name__}: {e}") from e
    try:
        t_out = torch_fn(*t_args, **t_kwargs)
    except Exception as e:
        t_err = e
    if t_err is not None and (_torch_signature_mismatch(t_err) or not isinstance(t_err, TYPED_ERRORS)
                              or "bad_alloc" in str(t_err)):
        return "skipped"  # torch cannot be asked this (its own untyped error, or no memory)
    if d_err is not None and t_err is not None:
        return "both raised"
    for ops, pred, _why in DELIBERATE:
        if (ops == "*" or name in ops) and pred(d_err, t_err, t_out):
            return "deliberate"
    if d_err is not None:
        raise Finding(f"deepcore raised {type(d_err).__name__}: {d_err}\n torch returned "
                      f"{t_out!r:.300}")
    if t_err is not None:
        raise Finding(f"torch raised {type(t_err).__name__}: {str(t_err)[:300]}\n deepcore "
                      f"returned {d_out!r:.300}")
    values = name not in RANDOM_OPS
    if name in PROMOTING_LOSSES and len({a.dtype for a in args if isinstance(a, TensorSpec)}) > 1:
        return "deliberate"
    if name in TIE_ORDER_OPS:
        # Compare the values; indices only where they point at equal values.
        if isinstance(t_out, tuple):
            compare(d_out[0], t_out[0], "result[0]")
            compare(d_out[1], t_out[1], "result[1]", values=False)
            return "compared"
        if name == "argsort":
            compare(d_out, t_out, values=False)
            return "compared"
    compare(d_out, t_out, values=values)
    # In-place ops: the written tensor too.
    for i, arg in enumerate(sig.args[:len(d_args)]):
        if arg.writes and isinstance(d_args[i], dc.Tensor):
            compare(d_args[i], t_args[i], f"argument {arg.name} after the call", values=values)
    return "compared"


def _call_repr(args, kwargs):
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"


# ---- the worker ------------------------------------------------------------------------------

def fuzz_targets(only=None):
    """[(name, Signature, dc_fn, torch_fn, is_method)] and {name: why skipped}."""
    targets, skipped = [], {}
    for name, (sig_str, row) in sorted(registry_signatures().items()):
        if only and name not in only:
            continue
        if name in NO_TORCH_COUNTERPART:
            skipped[name] = "no torch counterpart"
            continue
        if name in NOT_FUZZED:
            skipped[name] = NOT_FUZZED[name]
            continue
        sig = parse_signature(sig_str)
        fns = resolve(name, row)
        if fns is None:
            skipped[name] = "UNRESOLVED: not found in deepcore or torch"
            continue
        targets.append((name, sig) + fns)
    return targets, skipped


def worker_main(argv=None):
    p = argparse.ArgumentParser(description="fuzz deepcore ops against torch")
    p.add_argument("--log", default=None, help="file to append each call to before making it")
    p.add_argument("--skip", default="", help="comma-separated ops not to fuzz")
    p.add_argument("--ops", default=os.environ.get("DEEPCORE_FUZZ_OPS", ""))
    p.add_argument("--examples", type=int,
                   default=int(os.environ.get("DEEPCORE_FUZZ_EXAMPLES", "10")))
    p.add_argument("--seconds", type=float,
                   default=float(os.environ.get("DEEPCORE_FUZZ_SECONDS", "0")))
    p.add_argument("--seed", type=int, default=int(os.environ.get("DEEPCORE_FUZZ_SEED", "0")))
    ns = p.parse_args(argv)
    import warnings

    from hypothesis import HealthCheck, Phase, given, seed, settings

    warnings.filterwarnings("ignore")
    try:  # cap the address space so a huge allocation fails instead of exhausting the machine
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))
    except (ImportError, ValueError, OSError):
        pass
    only = {s for s in ns.ops.split(",") if s}
    skip = {s for s in ns.skip.split(",") if s}
    targets, skipped = fuzz_targets(only or None)
    log = open(ns.log, "a") if ns.log else None
    case_strategy = strategies()
    findings = []
    deadline = time.monotonic() + ns.seconds
    rnd = 0
    while True:
        for name, sig, dc_fn, torch_fn, is_method in targets:
            if name in skip:
                continue
            if log is not None:
                log.write(f"OP {name} round={rnd}\n")
                log.flush()
            try:
                strat = case_strategy(sig)
            except LookupError as e:
                skipped[name] = f"argument type {e} not drawn"
                continue

            @settings(max_examples=ns.examples, deadline=None, database=None,
                      derandomize=ns.seconds <= 0, phases=[Phase.generate, Phase.shrink],
                      suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
            @given(case=strat)
            def check(case):
                run_case(name, dc_fn, torch_fn, is_method, case, sig, log)

            if ns.seconds > 0:
                check = seed(ns.seed + rnd)(check)
            try:
                check()
            except LookupError as e:
                skipped[name] = f"argument type {e} not drawn"
            except Exception as e:  # a Finding, after hypothesis shrank it
                notes = "\n".join(getattr(e, "__notes__", []))
                findings.append(f"{name}: {str(e)[:1500]}\n{notes}")
            if log is not None:
                log.write(f"DONE {name}\n")
                log.flush()
        rnd += 1
        if time.monotonic() >= deadline:
            break
    for name, why in sorted(skipped.items()):
        print(f"SKIPPED {name}: {why}")
    for f in findings:
        print("FINDING " + f.replace("\n", "\n    "))
    print(f"FUZZ-SUMMARY calls={CALLS} ops={len(targets)} rounds={rnd} findings={len(findings)}")
    return 1 if findings else 0


# ---- the pytest side -------------------------------------------------------------------------

def test_signature_parser():
    s = parse_signature("sum(Tensor input, int[]? dim=None, bool keepdim=False, *, "
                        "ScalarType? dtype=None) -> Tensor")
    assert [a.name for a in s.args] == ["input", "dim", "keepdim", "dtype"]
    assert s.args[1].type == "int[]" and s.args[1].optional and s.args[1].default is None
    assert s.args[3].kw_only and not s.args[2].kw_only and s.args[2].default is False
    s = parse_signature("fill_(Tensor(a!) input, Scalar value) -> Tensor")
    assert s.args[0].writes and s.args[0].type == "Tensor" and s.args[1].default is REQUIRED
    s = parse_signature("amax(Tensor input, int[] dim=(), bool keepdim=False) -> Tensor")
    assert s.args[1].default == []
    s = parse_signature("max_pool1d(Tensor input, int[] kernel_size) -> (Tensor, Tensor)")
    assert s.returns == "(Tensor, Tensor)"


def test_every_op_is_fuzzed_or_explicitly_skipped():
    targets, skipped = fuzz_targets()
    unresolved = {k: v for k, v in skipped.items() if v.startswith("UNRESOLVED")}
    assert not unresolved, f"ops torch lacks that no list names: {sorted(unresolved)}"
    assert len(targets) >= 30


def test_fuzz_ops_against_torch(tmp_path):
    tests_dir = Path(__file__).resolve().parent
    log = tmp_path / "calls.log"
    seconds = float(os.environ.get("DEEPCORE_FUZZ_SECONDS", "0"))
    timeout = max(seconds * 1.5, 0) + 600
    crashes, done, outputs = [], set(), []
    start = time.monotonic()
    while len(crashes) < 10:
        cmd = [sys.executable, "-m", "test_fuzz", "--log", str(log),
               "--skip", ",".join(sorted(done | {c[0] for c in crashes}))]
        if seconds > 0:
            cmd += ["--seconds", str(max(1.0, seconds - (time.monotonic() - start)))]
        r = subprocess.run(cmd, cwd=tests_dir, capture_output=True, text=True, timeout=timeout)
        outputs.append(r.stdout)
        if r.returncode in (0, 1):
            break
        lines = log.read_text().splitlines()
        done |= {ln.split()[1] for ln in lines if ln.startswith("DONE ")}
        last = next((ln for ln in reversed(lines) if ln.startswith("CALL ")), "CALL ?")
        op = last.split()[1].split("(")[0]
        crashes.append((op, f"worker died with {r.returncode} in: {last[5:]}\n"
                            f"{r.stderr[-1500:]}"))
    out = "\n".join(outputs)
    summary = [ln for ln in out.splitlines() if ln.startswith("FUZZ-SUMMARY")]
    print("\n".join(summary))
    report = [f"CRASH {op}: {msg}" for op, msg in crashes]
    report += [blk for blk in re.split(r"\n(?=\S)", out) if blk.startswith("FINDING")]
    assert not report, "\n".join(report)
    assert summary, out[-3000:] + r.stderr[-3000:]


if __name__ == "__main__":
    sys.exit(worker_main())
