"""deepcore.onnx.export: writes a model's traced graph as an ONNX model, built with the ``onnx``
package's helpers. The op table is in _export_ops.py.

Note [ONNX export]
1. Tracing. The model runs once under deepcore's tracer (Note [Traced graphs] in
   csrc/jit/graph.h) in eval mode, strictly and without the JIT's passes, so each node is one op
   call as the model made it. A forward pre-hook and post-hook on every submodule calls a marker
   op (``detach`` of a tensor only the exporter holds); the markers bracket each module's nodes
   in the node list, which gives every node its module path (for node names and errors), and
   they are left out of the ONNX graph. A trace that breaks under no_grad is tried once more with
   grad enabled: a module may keep an inference-only cache whose key reads tensor metadata
   (BertSelfAttention's stacked QKV weights read data_ptr()), which a trace cannot record, and
   take its plain path under autograd. The ops are the same either way.
2. Dynamic axes. A traced graph has fixed sizes: a view's target shape, a slice's end, arange's
   length are integers in the node. With ``dynamic_axes`` the model is traced twice more with
   every dynamic axis resized (the inputs repeated cyclically along it, so token ids stay valid;
   symbol j grows by j+1 and 2j+3, or shrinks by as much when growing fails, e.g. past a
   model's block size). The three graphs must have the same nodes. Each integer argument and
   each dimension that differs between them is solved as c * (product of symbols) + k and
   checked on all three traces: two traces fit a wrong formula whenever two symbols change in
   proportion, the third does not. The ONNX graph computes such sizes from Shape of the inputs;
   Reshape takes 0 (copy) and -1 (infer) where they say the same, which keeps ONNX shape
   inference symbolic. A graph whose nodes change with the size (Python branching on it, a
   constant built from it) cannot have that axis dynamic: the error names the node and module.
3. Aliasing. ONNX values are immutable, so an in-place op is exported as its functional form.
   That is exact unless another view of the memory it writes is read afterwards, or it writes a
   parameter or buffer; both raise an error naming the op and the module.
4. Names. Parameters and buffers become initializers named by their state_dict keys (found by
   identity, else by the same storage, shape and strides); other constants are ``const_N``, one
   per distinct small value. Node outputs are named after the module path and the ONNX op.

Note [deepcore functions in ONNX]
deepcore -> ONNX -> deepcore is bit-exact: ``deepcore.onnx.load(export(model))`` returns what
``model`` returns, to the last bit. Most ops map to one ONNX op that the loader runs on the
kernel the model ran. Some ops have no ONNX op of their own, and their expansion into standard
ops rounds differently from deepcore's fused kernel: scaled_dot_product_attention (MatMul,
Softmax, MatMul), gelu before opset 20, silu, mish before opset 18, logsigmoid, tanhshrink,
expm1, log1p, log2, log10, exp2, erfc, float remainder, var, std, rms_norm, group_norm before
opset 21 and batch_norm on batch statistics. Loaded back as their expansions they differed in
the last bits (measured on float32 N(0, 16) inputs: gelu 4.8e-7, silu and var 1.9e-6
absolute; GPT's logits 1.9e-8, BERT's hidden states 2.4e-7). Each of these is
exported as a call of a model-local function (ModelProto.functions) in domain ``ai.deepcore``,
version 1, named after the op (``Silu``, ``Gelu``, ``ScaledDotProductAttentionCausal``, ...;
FUNCTIONS in _export_ops.py lists them), whose body is the standard-op expansion. The file
stays standard ONNX: the checker and shape inference read the bodies, and onnxruntime, or any
runtime, inlines them. ``deepcore.onnx.load`` knows these names (FUNCTIONS in _import_ops.py)
and runs deepcore's kernel for the call instead of the body; a function it does not know
(another domain or name, another version) is inlined, as any producer's functions are.
  - A body is written once per function and serves every call, so it cannot depend on a call's
    arguments: what varies (the attention scale, reduced axes, eps) is a function attribute
    read through ref_attr_name, and a structural variant (attention with a causal triangle, a
    boolean mask or an additive mask) is a function of its own. Floating constants are double
    Constants cast with CastLike to the first input, so one body serves float32 and float64.
  - Attributes are float32 (ONNX FLOAT), as LayerNormalization's epsilon. float32 kernels
    round them so anyway; a float64 model whose scale or eps is not a float32 number runs with
    it rounded (a relative change below 6e-8), so it comes back close, not bit-exact.
  - Attention is called on (B, H, L, E): rank 2 and 3 inputs are unsqueezed to rank 4 around
    the call (the kernel gives the same bits; leading dims are batch dims to it). Attention of
    higher rank keeps the plain expansion in the graph, exact to a few ulps only.
  - Ops that ONNX has, where deepcore's kernel is a valid implementation of the op, stay
    standard ops and the loader picks the kernel: InstanceNormalization, GroupNormalization
    (opset 21), Selu and HardSigmoid with hardsigmoid's constants, Shrink, GlobalAveragePool.
"""
from __future__ import annotations

import dataclasses
import inspect
import io
import math
import os
import sys
from itertools import combinations_with_replacement
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _C
from .._C import Tensor
from .._jit import Graph

__all__ = ["export", "UnsupportedOperatorError", "SUPPORTED_OPSETS"]

SUPPORTED_OPSETS = (17, 18, 19, 20, 21)

# Note [deepcore functions in ONNX]: the domain and version of the model-local functions whose
# calls deepcore.onnx.load runs on deepcore's kernels.
FUNCTION_DOMAIN, FUNCTION_VERSION = "ai.deepcore", 1


class UnsupportedOperatorError(NotImplementedError):
    """An op of the traced graph that ONNX cannot express (or not with these arguments).
    ``op`` is deepcore's op name and ``module`` the module path where the model called it."""

    def __init__(self, message: str, op: str = "", module: str = "") -> None:
        super().__init__(message)
        self.op = op
        self.module = module


def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - the [onnx] extra is missing
        raise ImportError("[onnx.export] needs the 'onnx' package: pip install deepcore[onnx]") \
            from None
    return onnx


# ---- arguments -----------------------------------------------------------------------------

def _split_args(args: Any) -> Tuple[tuple, dict]:
    """torch.onnx.export's ``args``: a tensor, or a tuple whose last element may be a dict of
    keyword arguments."""
    if isinstance(args, Tensor):
        return (args,), {}
    if isinstance(args, list):
        args = tuple(args)
    if not isinstance(args, tuple):
        raise TypeError(f"[onnx.export] args must be a Tensor or a tuple of arguments, got "
                        f"{type(args).__name__}")
    if args and isinstance(args[-1], dict):
        return args[:-1], dict(args[-1])
    return args, {}


def _check_arg(value: Any, what: str) -> None:
    if isinstance(value, (list, tuple, dict)) and any(
            isinstance(x, Tensor) for x in (value.values() if isinstance(value, dict) else value)):
        raise TypeError(f"[onnx.export] {what} is a {type(value).__name__} of tensors; pass "
                        "each tensor as its own argument")


def _default_names(model: Any, args: tuple, kwargs: dict) -> List[str]:
    """Names of the tensor inputs: the forward parameters they bind to, else input_N."""
    try:
        params = list(inspect.signature(getattr(model, "forward", model)).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p.name for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            names.append(positional[i] if i < len(positional) else f"input_{i}")
    names += [k for k, v in kwargs.items() if isinstance(v, Tensor)]
    return names


def _names(given: Optional[Sequence[str]], default: List[str], what: str) -> List[str]:
    if given is None:
        return list(default)
    if isinstance(given, str) or not all(isinstance(n, str) and n for n in given):
        raise TypeError(f"[onnx.export] {what} must be a list of non-empty strings, got "
                        f"{given!r}")
    given = list(given)
    if len(given) > len(default):
        raise ValueError(f"[onnx.export] {len(given)} {what} given for {len(default)} "
                         f"tensor(s): {given}")
    names = given + default[len(given):]
    if len(set(names)) != len(names):
        raise ValueError(f"[onnx.export] {what} must be distinct, got {names}")
    return names


def _parse_dynamic_axes(dynamic_axes: Any, known: List[str]) -> Dict[str, Dict[int, str]]:
    """{name: {axis: dim name}} from torch's two spellings ({axis: name} or [axes])."""
    if dynamic_axes is None:
        return {}
    if not isinstance(dynamic_axes, dict):
        raise TypeError(f"[onnx.export] dynamic_axes must be a dict, got "
                        f"{type(dynamic_axes).__name__}")
    out: Dict[str, Dict[int, str]] = {}
    for name, axes in dynamic_axes.items():
        if name not in known:
            raise ValueError(f"[onnx.export] dynamic_axes names {name!r}, which is neither an "
                             f"input nor an output; the names are {known}")
        if isinstance(axes, dict):
            items = list(axes.items())
        elif isinstance(axes, (list, tuple)):
            items = [(a, f"{name}_dynamic_axes_{i + 1}") for i, a in enumerate(axes)]
        else:
            raise TypeError(f"[onnx.export] dynamic_axes[{name!r}] must be a dict {{axis: name}} "
                            f"or a list of axes, got {type(axes).__name__}")
        for axis, dim in items:
            if isinstance(axis, bool) or not isinstance(axis, int) or \
                    not isinstance(dim, str) or not dim:
                raise TypeError(f"[onnx.export] dynamic_axes[{name!r}] must map int axes to "
                                f"non-empty names, got {axis!r}: {dim!r}")
        out[name] = dict(items)
    return out


# ---- tracing (Note [ONNX export], 1) --------------------------------------------------------

def _flatten_outputs(out: Any, leaves: List[Tensor]) -> None:
    """Tensors of a forward's result in order: tuples, lists, dicts (insertion order), objects
    with ``to_tuple()`` (model outputs) and dataclasses; None is skipped."""
    if out is None:
        return
    if isinstance(out, Tensor):
        leaves.append(out)
    elif isinstance(out, (tuple, list)):
        for x in out:
            _flatten_outputs(x, leaves)
    elif isinstance(out, dict):
        for x in out.values():
            _flatten_outputs(x, leaves)
    elif callable(getattr(out, "to_tuple", None)):
        _flatten_outputs(out.to_tuple(), leaves)
    elif dataclasses.is_dataclass(out) and not isinstance(out, type):
        for f in dataclasses.fields(out):
            _flatten_outputs(getattr(out, f.name), leaves)
    else:
        raise TypeError(f"[onnx.export] the model returned a {type(out).__name__}; only "
                        "tensors (in tuples, lists, dicts or model output objects) and None "
                        "can be outputs of an ONNX graph")


class _ModuleMarks:
    """Forward hooks that put a marker node into the trace when a submodule starts and ends,
    and note where an exception left the model (Note [ONNX export], 1)."""

    def __init__(self, model: Any) -> None:
        from .._creation import zeros
        self.marker = zeros(1)
        self.events: List[Optional[str]] = []  # a module path on entry, None on exit
        self.failed: Dict[int, str] = {}  # id(exception) -> innermost module it left
        self.types = {"": getattr(model, "__name__", type(model).__name__)}
        self.handles = []
        named = getattr(model, "named_modules", None)
        for path, m in (named() if named is not None else ()):
            self.types[path] = type(m).__name__
            self.handles.append(m.register_forward_pre_hook(self._enter(path)))
            self.handles.append(m.register_forward_hook(self._exit(path), always_call=True))

    def _enter(self, path: str):
        def hook(module, args):
            if _C._jit_tracing():
                self.marker.detach()
                self.events.append(path)
        return hook

    def _exit(self, path: str):
        def hook(module, args, output):
            exc = sys.exc_info()[1]
            if exc is not None:
                self.failed.setdefault(id(exc), path)
            elif _C._jit_tracing():
                self.marker.detach()
                self.events.append(None)
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def where(self, path: Optional[str]) -> str:
        if path is None:
            return "in the model"
        if path == "":
            return f"at the model's top level ({self.types.get('', 'model')})"
        return f"at module '{path}' ({self.types.get(path, '?')})"


class _Trace:
    """One traced call: its nodes (markers removed from consideration by `is_marker`), the
    module path of every node, value shapes and dtypes, and the outputs."""

    def __init__(self, graph: Graph, marks: _ModuleMarks, events: List[Optional[str]]):
        data = graph.export()
        self.graph = graph
        self.nodes = data["nodes"]
        self.value_shapes = data["value_shapes"]
        self.value_dtypes = data["value_dtypes"]
        self.outputs = data["outputs"]
        self.is_marker = [n["op"] == "detach" and len(n["args"]) == 1 and
                          n["args"][0] is marks.marker for n in self.nodes]
        self.path: List[str] = []
        stack: List[str] = []
        it = iter(events)
        for marker in self.is_marker:
            if marker:
                ev = next(it, None)
                if ev is None:
                    if stack:
                        stack.pop()
                else:
                    stack.append(ev)
            self.path.append(stack[-1] if stack else "")


def _trace_once(model: Any, marks: _ModuleMarks, args: tuple, kwargs: dict,
                tensors: List[Tensor]) -> _Trace:
    marks.events = []
    _C._jit_begin(tensors, True)
    try:
        out = model(*args, **kwargs)
        leaves: List[Tensor] = []
        _flatten_outputs(out, leaves)
    except BaseException:
        _C._jit_abort()
        raise
    if not leaves:
        _C._jit_abort()
        raise ValueError(f"[onnx.export] {type(model).__name__} returned no tensor to export")
    return _Trace(Graph(_C._jit_end(leaves)), marks, marks.events)


def _trace(model: Any, marks: _ModuleMarks, args: tuple, kwargs: dict,
           tensors: List[Tensor], grad: Optional[bool] = None) -> Tuple[_Trace, bool]:
    """Traces under no_grad, and once more with grad enabled if that breaks (Note [ONNX
    export], 1); `grad` forces one mode. Returns the trace and the grad mode it took."""
    reasons = []
    for mode in ((False, True) if grad is None else (grad,)):
        previous = _C.is_grad_enabled()
        _C._set_grad_enabled(mode)
        try:
            return _trace_once(model, marks, args, kwargs, tensors), mode
        except _C.GraphBreakError as err:
            reasons.append((err, f"{err} ({marks.where(marks.failed.get(id(err)))})"))
        finally:
            _C._set_grad_enabled(previous)
    raise RuntimeError(f"[onnx.export] {type(model).__name__} cannot be traced into one graph: "
                       f"{reasons[0][1]}") from reasons[0][0]


# ---- dynamic axes (Note [ONNX export], 2) ----------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SymDim:
    """A size that depends on the dynamic axes: coef * prod(symbols) + offset."""

    coef: int
    syms: Tuple[int, ...]
    offset: int = 0

    def label(self, names: Sequence[str]) -> str:
        s = "*".join(names[i] for i in self.syms)
        if self.coef != 1:
            s = f"{self.coef}*{s}"
        return s + (f"{self.offset:+d}" if self.offset else "")


@dataclasses.dataclass(frozen=True)
class Unsolved:
    """A size that varies with the dynamic axes in no form SymDim can say (a strided
    convolution's output, for one): its value in each trace."""

    values: Tuple[int, ...]


Size = Union[int, SymDim, Unsolved]


def _solve(vals: Sequence[int], sym_vals: Sequence[Sequence[int]]) -> Size:
    if all(v == vals[0] for v in vals):
        return int(vals[0])
    best = None
    for degree in (1, 2, 3):
        for mono in combinations_with_replacement(range(len(sym_vals[0])), degree):
            m = [math.prod(sv[i] for i in mono) for sv in sym_vals]
            den, num = m[1] - m[0], vals[1] - vals[0]
            if den == 0 or num % den:
                continue
            c = num // den
            k = vals[0] - c * m[0]
            if c and all(v == c * mt + k for v, mt in zip(vals, m)):
                rank = (k != 0, degree)
                if best is None or rank < best[0]:
                    best = (rank, SymDim(c, mono, k))
    return best[1] if best is not None else Unsolved(tuple(int(v) for v in vals))


def _probe_deltas(j: int) -> Tuple[int, int]:
    """How much symbol j grows (or shrinks) in the second and third traces."""
    return j + 1, 2 * j + 3


def _resize(t: Tensor, axis: int, n: int) -> Tensor:
    """`t` with `n` entries along `axis`, its own repeated cyclically."""
    from .._creation import arange
    index = _C.remainder(arange(n, dtype=_C.dtype.int64), t.shape[axis])
    return t.index_select(axis, index)


class _Symbols:
    """The dynamic-axis symbols: each one's name, the input and axis its runtime size comes
    from, and its size in each trace."""

    def __init__(self) -> None:
        self.names: List[str] = []
        self.source: List[Tuple[int, int]] = []
        self.sizes: List[List[int]] = [[]]  # per trace, per symbol

    def add(self, name: str, input_index: int, axis: int, size: int, input_name: str) -> int:
        if name in self.names:
            j = self.names.index(name)
            if self.sizes[0][j] != size:
                raise ValueError(f"[onnx.export] dynamic axis '{name}' is {self.sizes[0][j]} in "
                                 f"one input and {size} in '{input_name}' axis {axis}")
            return j
        if size < 1:
            raise ValueError(f"[onnx.export] dynamic axis '{name}' of '{input_name}' has size "
                             f"{size}; trace with a non-empty example")
        self.names.append(name)
        self.source.append((input_index, axis))
        self.sizes[0].append(size)
        return len(self.names) - 1


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _integral(x: Any) -> bool:
    return _is_int(x) or (isinstance(x, float) and x.is_integer())


def _compare_args(a: Any, b: Any, where: str) -> Optional[str]:
    """Why two traces' arguments of one node differ in more than their integers (None: they
    agree). Integral floats count as integers (arange's bounds are floats)."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        if a is b:
            return None
        if not (isinstance(a, Tensor) and isinstance(b, Tensor)) or a.shape != b.shape or \
                a.dtype != b.dtype:
            return f"a constant tensor {where} changes shape with the size"
        if not np.array_equal(a.detach().numpy(), b.detach().numpy()):
            return f"a constant tensor {where} changes value with the size"
        return None
    if isinstance(a, tuple) and a[:1] == ("%",):
        return None if a == b else f"the values read {where} change with the size"
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"an argument list {where} changes length with the size"
        for x, y in zip(a, b):
            why = _compare_args(x, y, where)
            if why:
                return why
        return None
    if _integral(a) and _integral(b) and type(a) is type(b):
        return None
    if type(a) is not type(b) or a != b:
        return f"an argument {where} changes from {a!r} to {b!r} with the size"
    return None


def _structure_difference(t0: _Trace, t1: _Trace, marks: _ModuleMarks) -> Optional[str]:
    if len(t0.nodes) != len(t1.nodes):
        return f"it has {len(t0.nodes)} nodes at one size and {len(t1.nodes)} at another"
    for i, (a, b) in enumerate(zip(t0.nodes, t1.nodes)):
        where = f"(node {i}, op '{a['op']}' {marks.where(t0.path[i])})"
        if a["op"] != b["op"] or a["outputs"] != b["outputs"] or len(a["args"]) != len(b["args"]):
            return f"node {i} is '{a['op']}' at one size and '{b['op']}' at another {where}"
        why = _compare_args(a["args"], b["args"], where)
        if why:
            return why
    for v, (a, b) in enumerate(zip(t0.value_shapes, t1.value_shapes)):
        if len(a) != len(b):
            return f"value %{v} has rank {len(a)} at one size and {len(b)} at another"
    if [o if isinstance(o, tuple) else None for o in t0.outputs] != \
            [o if isinstance(o, tuple) else None for o in t1.outputs]:
        return "its outputs change with the size"
    return None


class _ProbeMismatch(RuntimeError):
    pass


def _probe(model: Any, marks: _ModuleMarks, base: _Trace, grad: bool, args: tuple,
           kwargs: dict, positions: List[Tuple[str, Any]], dyn: Dict[int, Dict[int, int]],
           syms: _Symbols) -> List[_Trace]:
    """The two extra traces of Note [ONNX export], 2: every symbol grown, or (if that fails)
    shrunk where it can stay >= 2."""
    s0 = syms.sizes[0]
    up = [[s + _probe_deltas(j)[t] for j, s in enumerate(s0)] for t in (0, 1)]
    down = [[s - _probe_deltas(j)[t] if s - _probe_deltas(j)[1] >= 2 else up[t][j]
             for j, s in enumerate(s0)] for t in (0, 1)]
    failure = ""
    for rows in ([up, down] if down != up else [up]):
        traces = [base]
        try:
            for row in rows:
                new_args, new_kwargs, tensors = list(args), dict(kwargs), []
                for i, (kind, key) in enumerate(positions):
                    t = args[key] if kind == "arg" else kwargs[key]
                    for axis, j in dyn.get(i, {}).items():
                        t = _resize(t, axis, row[j])
                    if kind == "arg":
                        new_args[key] = t
                    else:
                        new_kwargs[key] = t
                    tensors.append(t)
                tr, _ = _trace(model, marks, tuple(new_args), new_kwargs, tensors, grad)
                assert all(tr.value_shapes[i][axis] == row[j] for i, axes in dyn.items()
                           for axis, j in axes.items()), "the inputs were not resized"
                why = _structure_difference(base, tr, marks)
                if why:
                    raise _ProbeMismatch(why)
                traces.append(tr)
        except (ValueError, IndexError, RuntimeError, TypeError) as err:
            failure = failure or str(err)  # the grown sizes' failure tells the most
            continue
        syms.sizes[1:] = rows
        return traces
    names = ", ".join(f"'{n}'" for n in syms.names)
    raise RuntimeError(f"[onnx.export] the graph of {type(model).__name__} changes when the "
                       f"dynamic axes ({names}) change size, so they cannot be dynamic: "
                       f"{failure}")


class Sizes:
    """Integer arguments and value dimensions solved over the traces (with one trace: as
    traced)."""

    def __init__(self, traces: List[_Trace], syms: _Symbols) -> None:
        self.traces = traces
        self.syms = syms
        self._shapes: Dict[int, List[Size]] = {}

    def _solve(self, vals: Sequence[Any]) -> Size:
        if len(self.traces) == 1:
            return int(vals[0])
        return _solve([int(v) for v in vals], self.syms.sizes)

    def arg(self, i: int, k: int, e: Optional[int] = None) -> Any:
        """Argument k (element e of a list) of node i: integers (and floats that are integral
        in every trace but not the same in all) solved, anything else as traced."""
        vals = []
        for tr in self.traces:
            a = tr.nodes[i]["args"][k]
            vals.append(a if e is None else a[e])
        v = vals[0]
        if _is_int(v):
            return self._solve(vals)
        if isinstance(v, float) and any(x != v for x in vals):
            return self._solve(vals)
        return v

    def shape(self, v: int) -> List[Size]:
        s = self._shapes.get(v)
        if s is None:
            per = [tr.value_shapes[v] for tr in self.traces]
            s = [self._solve([p[d] for p in per]) for d in range(len(per[0]))]
            self._shapes[v] = s
        return s


# ---- the ONNX graph ------------------------------------------------------------------------

INT64_MAX = 2 ** 63 - 1

# deepcore dtype name -> (ONNX element type name, NumPy dtype)
DTYPES = {"float32": ("FLOAT", np.float32), "float64": ("DOUBLE", np.float64),
           "int32": ("INT32", np.int32), "int64": ("INT64", np.int64), "bool": ("BOOL", np.bool_)}

# The ops whose result is a view of (or the same memory as) their first argument, and the
# in-place ops: their result is their first argument (Note [ONNX export], 3).
_VIEW_OPS = frozenset({
    "_view", "view", "_reshape", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze",
    "_permute", "permute", "transpose", "swapaxes", "t", "_T", "select", "_slice", "narrow",
    "split", "chunk", "unbind", "_expand", "expand", "broadcast_to", "alias", "detach",
    "diagonal", "as_strided", "contiguous", "dropout", "_to_dtype", "_set_requires_grad"})


def is_inplace(op: str) -> bool:
    return op.endswith("_") and not op.startswith("_")


class Builder:
    """Collects the ONNX nodes and initializers for one export, and gives the op table
    (_export_ops.py) the current node's arguments as ONNX names and sizes."""

    def __init__(self, model, marks, traces, sizes, syms, in_names, opset) -> None:
        onnx = _onnx()
        self.helper, self.numpy_helper, self.TensorProto = onnx.helper, onnx.numpy_helper, \
            onnx.TensorProto
        self.marks, self.sizes, self.syms, self.opset = marks, sizes, syms, opset
        self.trace = traces[0]
        self.nodes: list = []
        self.initializers: list = []
        self.env: Dict[int, str] = {i: n for i, n in enumerate(in_names)}
        self.input_names = in_names
        self.used = set(in_names)
        self.preset: Dict[int, str] = {}  # value id -> graph output name
        self.live: set = set()  # the values the graph's outputs need
        self._counter = 0
        self._cache: Dict[Any, str] = {}
        self._keep: list = []  # tensors whose id() keys the cache
        self.param_names: Dict[int, str] = {}
        self.storage_names: Dict[tuple, str] = {}
        self.functions: Dict[str, Any] = {}  # name -> FunctionProto of the calls made
        for getter in ("named_parameters", "named_buffers"):
            for name, t in (getattr(model, getter)() if hasattr(model, getter) else ()):
                if t is not None and id(t) not in self.param_names:
                    self.param_names[id(t)] = name
                    self.storage_names.setdefault(self._storage_key(t), name)
        self.index = -1
        self.op = ""
        self.path = ""
        self.args: list = []
        self.outputs: List[int] = []

    # ---- names and nodes ----
    @staticmethod
    def _storage_key(t: Tensor) -> tuple:
        return (t.data_ptr(), tuple(t.shape), tuple(t.stride()), t.dtype.name)

    def fresh(self, hint: str) -> str:
        prefix = "/" + self.path.replace(".", "/") + "/" if self.path else "/"
        while True:
            self._counter += 1
            name = f"{prefix}{hint}_{self._counter}"
            if name not in self.used:
                self.used.add(name)
                return name

    def emit(self, op_type: str, inputs: Sequence[str], outputs: Union[int, Sequence[str]] = 1,
             **attrs: Any):
        """Adds a node; returns its output name (a list when it has several)."""
        names = [self.fresh(op_type) for _ in range(outputs)] if isinstance(outputs, int) \
            else list(outputs)
        while inputs and inputs[-1] == "":
            inputs = inputs[:-1]
        self.nodes.append(self.helper.make_node(
            op_type, list(inputs), names, name=self.fresh(op_type + "_node"),
            **{k: v for k, v in attrs.items() if v is not None}))
        return names[0] if len(names) == 1 else names

    def call(self, fn: "FunctionDef", inputs: Sequence[str],
             outputs: Union[int, Sequence[str]] = 1, **attrs: Any):
        """A call of the deepcore function `fn` (Note [deepcore functions in ONNX]); its
        FunctionProto joins the model on first use. Returns the output name(s)."""
        if set(attrs) != set(fn.attrs) or len(inputs) != len(fn.inputs):
            raise RuntimeError(f"[onnx.export] function {fn.name} takes inputs {fn.inputs} and "
                               f"attributes {sorted(fn.attrs)}; called with {len(inputs)} "
                               f"inputs and attributes {sorted(attrs)}")
        if fn.name not in self.functions:
            body = FunctionBody(self, fn.inputs[0])
            outs = fn.body(body, *fn.inputs)
            outs = [outs] if isinstance(outs, str) else list(outs)
            self.functions[fn.name] = self.helper.make_function(
                FUNCTION_DOMAIN, fn.name, list(fn.inputs), outs, body.nodes,
                [self.helper.make_opsetid("", self.opset)], attributes=list(fn.attrs),
                doc_string=fn.doc)
        n_out = len(self.functions[fn.name].output)
        names = [self.fresh(fn.name) for _ in range(n_out)] if isinstance(outputs, int) \
            else list(outputs)
        self.nodes.append(self.helper.make_node(
            fn.name, list(inputs), names, name=self.fresh(fn.name + "_node"),
            domain=FUNCTION_DOMAIN, **attrs))
        return names[0] if len(names) == 1 else names

    def fail(self, why: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(
            f"[onnx.export] op '{self.op}' {self.marks.where(self.path)} {why}", self.op,
            self.path)

    # ---- the current node's outputs ----
    def out(self, j: int = 0) -> str:
        """The name node output j gets (its graph output name if it is one)."""
        v = self.outputs[j]
        name = self.preset.get(v) or self.fresh(self.op.strip("_") or "value")
        self.env[v] = name
        return name

    def set(self, j: int, name: str) -> None:
        """Output j is the existing value `name`."""
        v = self.outputs[j]
        if v in self.preset:
            last = self.nodes[-1] if self.nodes else None
            if last is not None and name in last.output and name not in self.env.values() \
                    and name not in self._cache.values():
                # A temporary the last node just made: name it after the graph output.
                last.output[list(last.output).index(name)] = self.preset[v]
            else:
                self.emit("Identity", [name], [self.preset[v]])
            name = self.preset[v]
        self.env[v] = name

    def out_dtype(self, j: int = 0) -> str:
        return self.trace.value_dtypes[self.outputs[j]].name

    def out_shape(self, j: int = 0) -> List[Size]:
        return self.sizes.shape(self.outputs[j])

    def out_used(self, j: int) -> bool:
        return self.outputs[j] in self.live

    # ---- the current node's arguments ----
    def raw(self, k: int) -> Any:
        return self.args[k]

    def arg(self, k: int, e: Optional[int] = None) -> Any:
        """Argument k (element e): a Size for integers, else as traced."""
        return self.sizes.arg(self.index, k, e)

    def sizes_arg(self, k: int) -> List[Size]:
        return [self.arg(k, e) for e in range(len(self.args[k]))]

    def int(self, k: int, e: Optional[int] = None) -> int:
        v = self.arg(k, e)
        if not _is_int(v):
            raise self.fail(f"has argument {k} = {v!r}, which changes with the dynamic axes; "
                            "only a fixed value can be exported here")
        return v

    def ints(self, k: int) -> List[int]:
        a = self.args[k]
        if a is None:
            return []
        return [self.int(k, e) for e in range(len(a))] if isinstance(a, (list, tuple)) \
            else [self.int(k)]

    def dtype(self, k: int) -> Optional[str]:
        return self.tensor_dtype(self.args[k])

    def shape(self, k: int) -> List[Size]:
        return self.tensor_shape(self.args[k])

    def tensor_dtype(self, a: Any) -> Optional[str]:
        """The dtype name of an argument (a graph value or a constant)."""
        if isinstance(a, tuple):
            return self.trace.value_dtypes[a[1]].name
        return a.dtype.name if isinstance(a, Tensor) else None

    def tensor_shape(self, a: Any) -> List[Size]:
        if isinstance(a, tuple):
            return self.sizes.shape(a[1])
        return list(a.shape) if isinstance(a, Tensor) else []

    def rank(self, k: int) -> int:
        return len(self.shape(k))

    def x(self, k: int, dtype: Optional[str] = None) -> str:
        """Tensor argument k as an ONNX name ("" for None), cast to `dtype` if given."""
        return self.tensor(self.args[k], dtype)

    def xs(self, k: int, dtype: Optional[str] = None) -> List[str]:
        return [self.tensor(a, dtype) for a in self.args[k]]

    def tensor(self, a: Any, dtype: Optional[str] = None) -> str:
        if a is None:
            return ""
        if isinstance(a, tuple):
            name = self.env[a[1]]
            have = self.trace.value_dtypes[a[1]].name
            return name if dtype is None or dtype == have else self.cast(name, dtype)
        if isinstance(a, Tensor):
            return self.constant_tensor(a, dtype)
        if isinstance(a, (bool, int, float)):
            return self.const(np.array(a, dtype=DTYPES[dtype or _python_dtype(a)][1]))
        raise self.fail(f"has an argument of type {type(a).__name__} where a tensor is expected")

    def cast(self, name: str, dtype: str) -> str:
        key = ("cast", name, dtype)
        if key not in self._cache:
            self._cache[key] = self.emit("Cast", [name], to=self.onnx_type(dtype))
        return self._cache[key]

    def onnx_type(self, dtype: str) -> int:
        if dtype not in DTYPES:
            raise self.fail(f"uses dtype {dtype}, which the exporter has no ONNX type for")
        return getattr(self.TensorProto, DTYPES[dtype][0])

    # ---- constants ----
    def constant_tensor(self, t: Tensor, dtype: Optional[str] = None) -> str:
        name = self.param_names.get(id(t)) or self.storage_names.get(self._storage_key(t))
        if name is not None:
            if ("init", name) not in self._cache:
                self._cache[("init", name)] = name
                self.used.add(name)
                self.initializers.append(self.numpy_helper.from_array(_to_numpy(t), name))
            return name if dtype is None or dtype == t.dtype.name else self.cast(name, dtype)
        key = ("tensor", id(t), dtype)
        if key not in self._cache:
            arr = _to_numpy(t)
            if dtype is not None:
                arr = arr.astype(DTYPES[dtype][1])
            self._keep.append(t)
            self._cache[key] = self.const(arr)
        return self._cache[key]

    def const(self, arr: Any, dtype: Optional[str] = None) -> str:
        """An initializer holding `arr` (small ones shared by value)."""
        arr = np.asarray(arr, dtype=DTYPES[dtype][1] if dtype else None)
        key = ("const", arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 64 else None
        if key is not None and key in self._cache:
            return self._cache[key]
        name = "const"
        while name in self.used:
            self._counter += 1
            name = f"const_{self._counter}"
        self.used.add(name)
        self.initializers.append(self.numpy_helper.from_array(np.array(arr, order="C"), name))
        if key is not None:
            self._cache[key] = name
        return name

    # ---- sizes as tensors ----
    def shape_of_input(self, i: int, axis: int) -> str:
        key = ("dim", i, axis)
        if key not in self._cache:
            self._cache[key] = self.emit("Shape", [self.input_names[i]], start=axis,
                                         end=axis + 1)
        return self._cache[key]

    def size_tensor(self, d: Size) -> str:
        """A 1-D int64 tensor of one element holding the size `d`."""
        if _is_int(d):
            return self.const(np.array([d], dtype=np.int64))
        if isinstance(d, Unsolved):
            raise self.fail(f"needs a size that changes with the dynamic axes "
                            f"({', '.join(self.syms.names)}) as {list(d.values)} across the "
                            "traced sizes, which is not c * (product of axes) + k")
        key = ("size", d)
        if key not in self._cache:
            t = None
            for j in d.syms:
                s = self.shape_of_input(*self.syms.source[j])
                t = s if t is None else self.emit("Mul", [t, s])
            if d.coef != 1:
                t = self.emit("Mul", [t, self.const(np.array([d.coef], dtype=np.int64))])
            if d.offset:
                t = self.emit("Add", [t, self.const(np.array([d.offset], dtype=np.int64))])
            self._cache[key] = t
        return self._cache[key]

    def sizes_tensor(self, dims: Sequence[Size]) -> str:
        """A 1-D int64 tensor of the sizes (fixed runs as one constant)."""
        parts: List[str] = []
        run: List[int] = []
        for d in dims:
            if _is_int(d):
                run.append(d)
                continue
            if run:
                parts.append(self.const(np.array(run, dtype=np.int64)))
                run = []
            parts.append(self.size_tensor(d))
        if run or not parts:
            parts.append(self.const(np.array(run, dtype=np.int64)))
        return parts[0] if len(parts) == 1 else self.emit("Concat", parts, axis=0)

    def scalar(self, d: Any, dtype: str = "int64") -> str:
        """A 0-d tensor of `dtype` holding the number or size `d`."""
        if not isinstance(d, (SymDim, Unsolved)):
            return self.const(np.array(d, dtype=DTYPES[dtype][1]))
        key = ("scalar", d, dtype)
        if key not in self._cache:
            t = self.emit("Reshape", [self.size_tensor(d), self.const(np.zeros(0, np.int64))])
            self._cache[key] = t if dtype == "int64" else self.cast(t, dtype)
        return self._cache[key]

    def reshape(self, x: str, src: Sequence[Size], dst: Sequence[Size]) -> str:
        """Reshape from `src` to `dst` sizes: 0 where a dimension is copied from the same
        position, -1 for a single unknown one, else sizes computed from the inputs' shapes."""
        if list(src) == list(dst):
            return x
        zero_ok = 0 not in [d for d in dst if _is_int(d)]
        target: List[Size] = []
        unknown = []
        for j, d in enumerate(dst):
            if _is_int(d):
                target.append(d)
            elif zero_ok and j < len(src) and src[j] == d:
                target.append(0)
            else:
                target.append(d)
                unknown.append(j)
        if len(unknown) == 1 and zero_ok:
            target[unknown[0]] = -1
        return self.emit("Reshape", [x, self.sizes_tensor(target)], allowzero=0 if zero_ok else 1)

    def value_info(self, name: str, dtype: str, dims: Sequence[Any]):
        shape = [d if _is_int(d) else (d if isinstance(d, str) else None) for d in dims]
        return self.helper.make_tensor_value_info(name, self.onnx_type(dtype), shape)


@dataclasses.dataclass(frozen=True)
class FunctionDef:
    """A deepcore function (Note [deepcore functions in ONNX]): its formal inputs, the names of
    its attributes (every call gives all of them), and ``body(fb, *inputs) -> output name(s)``,
    which writes the standard-op expansion into the FunctionBody ``fb``."""

    name: str
    inputs: Tuple[str, ...]
    attrs: Tuple[str, ...]
    body: Any
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class AttrRef:
    """A node attribute inside a function body that takes the value of the function's
    attribute ``name`` (ref_attr_name)."""

    name: str
    kind: str  # "FLOAT", "INT" or "INTS"


class FunctionBody:
    """Collects the nodes of one function body. Functions hold no initializers, so constants
    are Constant nodes; floating ones are written in double and cast with CastLike to the first
    input's type, so one body serves float32 and float64 calls."""

    def __init__(self, b: Builder, like: str) -> None:
        self.helper, self.numpy_helper, self.TensorProto = b.helper, b.numpy_helper, \
            b.TensorProto
        self.opset = b.opset
        self.like = like
        self.nodes: list = []
        self._counter = 0
        self._cache: Dict[Any, str] = {}

    def emit(self, op_type: str, inputs: Sequence[str], outputs: int = 1, **attrs: Any):
        """Adds a node (AttrRef values become attribute references); returns its output
        name(s)."""
        names = []
        for _ in range(outputs):
            self._counter += 1
            names.append(f"{op_type}_{self._counter}")
        plain = {k: v for k, v in attrs.items() if v is not None and not isinstance(v, AttrRef)}
        node = self.helper.make_node(op_type, list(inputs), names, **plain)
        proto = _onnx().AttributeProto
        for key, ref in attrs.items():
            if isinstance(ref, AttrRef):
                node.attribute.append(proto(name=key, ref_attr_name=ref.name,
                                            type=getattr(proto, ref.kind)))
        self.nodes.append(node)
        return names[0] if len(names) == 1 else names

    def const(self, value: Any) -> str:
        """A constant: Python floats in the first input's type, ints as int64, bools."""
        arr = np.asarray(value)
        key = (arr.dtype.kind, arr.shape, arr.tobytes())
        if key not in self._cache:
            if arr.dtype.kind == "f":
                c = self.emit("Constant", [], value=self.numpy_helper.from_array(
                    arr.astype(np.float64), "value"))
                self._cache[key] = self.emit("CastLike", [c, self.like])
            else:
                arr = arr if arr.dtype == np.bool_ else arr.astype(np.int64)
                self._cache[key] = self.emit(
                    "Constant", [], value=self.numpy_helper.from_array(arr, "value"))
        return self._cache[key]

    def attr(self, name: str, kind: str) -> str:
        """The function attribute `name` as a tensor (FLOAT in the first input's type, INT a
        0-d int64, INTS a 1-D int64)."""
        key = ("attr", name)
        if key not in self._cache:
            field = {"FLOAT": "value_float", "INT": "value_int", "INTS": "value_ints"}[kind]
            c = self.emit("Constant", [], **{field: AttrRef(name, kind)})
            self._cache[key] = self.emit("CastLike", [c, self.like]) if kind == "FLOAT" else c
        return self._cache[key]


def _python_dtype(a: Any) -> str:
    return "bool" if isinstance(a, bool) else "int64" if isinstance(a, int) else "float32"


def _to_numpy(t: Tensor) -> np.ndarray:
    return np.array(t.detach().numpy(), order="C")  # (ascontiguousarray makes 0-d 1-d)


def _live_nodes(trace: _Trace) -> Tuple[List[bool], set]:
    """Which nodes the outputs need, and the values they read."""
    live_values = {o[1] for o in trace.outputs if isinstance(o, tuple)}
    live = [False] * len(trace.nodes)
    for i in range(len(trace.nodes) - 1, -1, -1):
        node = trace.nodes[i]
        if trace.is_marker[i] or not any(v in live_values for v in node["outputs"]):
            continue
        live[i] = True
        stack = [node["args"]]
        while stack:
            a = stack.pop()
            if isinstance(a, tuple) and a[:1] == ("%",):
                live_values.add(a[1])
            elif isinstance(a, (list, tuple)):
                stack.extend(a)
    return live, live_values


def _value_refs(args: Any) -> List[int]:
    out, stack = [], [args]
    while stack:
        a = stack.pop()
        if isinstance(a, tuple) and a[:1] == ("%",):
            out.append(a[1])
        elif isinstance(a, (list, tuple)):
            stack.extend(a)
    return out


def _check_aliasing(b: Builder, live: List[bool], graph_outputs: set) -> None:
    """Note [ONNX export], 3: an in-place write must not be seen through another view (even
    a write whose own result nobody reads), nor write a constant that a live node needs."""
    tr = b.trace
    base: Dict[int, int] = {}  # value -> the value whose memory it is
    members: Dict[int, List[int]] = {}  # that value -> every value of the same memory
    last_read = {v: len(tr.nodes) for v in graph_outputs}
    for i, node in enumerate(tr.nodes):
        if live[i]:
            for v in _value_refs(node["args"]):
                last_read[v] = i
    for i, node in enumerate(tr.nodes):
        first = node["args"][0] if node["args"] else None
        src = first[1] if isinstance(first, tuple) and first[:1] == ("%",) else None
        if is_inplace(node["op"]):
            b.index, b.op, b.path = i, node["op"], tr.path[i]
            if isinstance(first, Tensor) and live[i]:
                name = b.param_names.get(id(first))
                what = f"parameter or buffer '{name}'" if name else "a constant tensor"
                raise b.fail(f"writes into {what}; an ONNX graph cannot change its weights")
            if src is not None and any(u != src and last_read.get(u, -1) > i
                                       for u in members.get(base.get(src, src), [])):
                raise b.fail("writes in place into a tensor that another view of it reads "
                             "later; ONNX values cannot alias, so write the model without the "
                             "in-place op")
        shares = src is not None and (node["op"] in _VIEW_OPS or is_inplace(node["op"]))
        for v in node["outputs"]:
            if v >= 0:
                root = base.get(src, src) if shares else v
                base[v] = root
                group = members.setdefault(root, [root])
                if v != root:
                    group.append(v)


def build_graph(model, marks, traces, sizes, syms, tensors, in_names, out_names, axes, opset):
    """The ONNX GraphProto of the traced call (Note [ONNX export])."""
    from ._export_ops import OPS
    b = Builder(model, marks, traces, sizes, syms, in_names, opset)
    tr = b.trace
    live, live_values = _live_nodes(tr)
    b.live = live_values
    outputs = tr.outputs
    out_values = {o[1] for o in outputs if isinstance(o, tuple)}
    _check_aliasing(b, live, out_values)
    for name, o in zip(out_names, outputs):
        if isinstance(o, tuple) and o[1] >= tr.graph.num_inputs and o[1] not in b.preset:
            b.preset[o[1]] = name
            b.used.add(name)
    for i, node in enumerate(tr.nodes):
        if not live[i]:
            continue
        b.index, b.op, b.path = i, node["op"], tr.path[i]
        b.args, b.outputs = node["args"], node["outputs"]
        mapper = OPS.get(b.op)
        if mapper is None:
            shapes = ", ".join(f"{b.dtype(k)}{list(b.trace.value_shapes[a[1]])}"
                               for k, a in enumerate(b.args) if isinstance(a, tuple))
            raise b.fail(f"has no ONNX mapping (tensor inputs: {shapes or 'none'})")
        try:
            mapper(b)
        except UnsupportedOperatorError:
            raise
        except Exception as err:
            raise RuntimeError(f"[onnx.export] exporting op '{b.op}' {marks.where(b.path)} "
                               f"failed: {type(err).__name__}: {err}") from err
        for j, v in enumerate(b.outputs):
            if v in live_values and v not in b.env:
                raise RuntimeError(f"[onnx.export] op '{b.op}' {marks.where(b.path)}: output "
                                   f"{j} was not exported")
    b.path = ""
    graph_outputs = []
    for name, o in zip(out_names, outputs):
        if isinstance(o, tuple):
            v = o[1]
            if b.env.get(v) != name:
                b.emit("Identity", [b.env[v]], [name])
            dtype, dims = tr.value_dtypes[v].name, sizes.shape(v)
        else:
            b.emit("Identity", [b.constant_tensor(o)], [name])
            dtype, dims = o.dtype.name, list(o.shape)
        names = axes.get(name, {})
        labels = []
        for d, s in enumerate(dims):
            if d in names or d - len(dims) in names:
                labels.append(names.get(d, names.get(d - len(dims))))
            elif isinstance(s, SymDim):
                labels.append(s.label(syms.names))
            elif isinstance(s, Unsolved):
                labels.append(f"{name}_dim_{d}")
            else:
                labels.append(s)
        graph_outputs.append(b.value_info(name, dtype, labels))
    graph_inputs = []
    for name, t in zip(in_names, tensors):
        dims: List[Any] = list(t.shape)
        for axis, dim in axes.get(name, {}).items():
            dims[axis] = dim
        graph_inputs.append(b.value_info(name, t.dtype.name, dims))
    graph = b.helper.make_graph(b.nodes, f"{type(model).__name__}", graph_inputs,
                                graph_outputs, initializer=b.initializers)
    return graph, list(b.functions.values())


# ---- export --------------------------------------------------------------------------------

def export(model: Any, args: Any, f: Any, input_names: Optional[Sequence[str]] = None,
           output_names: Optional[Sequence[str]] = None,
           dynamic_axes: Optional[Dict[str, Any]] = None, opset_version: Optional[int] = 18,
           export_params: bool = True, do_constant_folding: bool = True, verbose: bool = False,
           **unsupported: Any):
    """Exports ``model`` (a deepcore ``nn.Module`` or a function of tensors) as ONNX, with
    torch.onnx.export's arguments: ``args`` a tensor or a tuple of arguments (a trailing dict:
    keyword arguments; tensors become the graph's inputs, other values are baked in), ``f`` a
    path or a binary file object, ``dynamic_axes`` ``{name: {axis: dim_name}}`` or
    ``{name: [axes]}``, opset 17 to 21. The model is traced in eval mode (its training flags
    are restored afterwards); Note [ONNX export] tells how. Returns the ``onnx.ModelProto``
    that was written. ``export_params`` must be True (the weights are always stored);
    ``do_constant_folding`` is accepted for torch's signature (ONNX runtimes fold the
    weight-only subgraphs, such as transposed weights, themselves); ``verbose`` prints the
    graph."""
    if unsupported:
        raise TypeError(f"[onnx.export] unsupported arguments {sorted(unsupported)}")
    if not export_params:
        raise ValueError("[onnx.export] export_params=False (weights as graph inputs) is not "
                         "supported; the weights are stored as initializers")
    if opset_version is None:
        opset_version = 18
    if isinstance(opset_version, bool) or opset_version not in SUPPORTED_OPSETS:
        raise ValueError(f"[onnx.export] opset_version must be one of {list(SUPPORTED_OPSETS)}, "
                         f"got {opset_version!r}")
    if not (isinstance(f, (str, os.PathLike)) or callable(getattr(f, "write", None))):
        raise TypeError(f"[onnx.export] f must be a path or a binary file object, got "
                        f"{type(f).__name__}")
    if isinstance(f, io.TextIOBase):
        raise TypeError("[onnx.export] f is a text file; open it in binary mode ('wb')")
    if not callable(model):
        raise TypeError(f"[onnx.export] model must be a Module or a function, got "
                        f"{type(model).__name__}")
    onnx = _onnx()
    call_args, call_kwargs = _split_args(args)
    for i, a in enumerate(call_args):
        _check_arg(a, f"argument {i}")
    for k, a in call_kwargs.items():
        _check_arg(a, f"keyword argument '{k}'")
    positions = [("arg", i) for i, a in enumerate(call_args) if isinstance(a, Tensor)]
    positions += [("kw", k) for k, a in call_kwargs.items() if isinstance(a, Tensor)]
    tensors = [call_args[k] if kind == "arg" else call_kwargs[k] for kind, k in positions]
    in_names = _names(input_names, _default_names(model, call_args, call_kwargs), "input_names")

    modules = list(model.modules()) if hasattr(model, "modules") else []
    training = [m.training for m in modules]
    marks = _ModuleMarks(model)
    try:
        for m in modules:
            m.training = False
        base, grad = _trace(model, marks, call_args, call_kwargs, tensors)
        n_out = len(base.outputs)
        out_names = _names(output_names, [f"output_{i}" for i in range(n_out)], "output_names")
        if set(in_names) & set(out_names):
            raise ValueError(f"[onnx.export] a name is both an input and an output: "
                             f"{sorted(set(in_names) & set(out_names))}")
        axes = _parse_dynamic_axes(dynamic_axes, in_names + out_names)
        syms = _Symbols()
        dyn: Dict[int, Dict[int, int]] = {}
        for i, (name, t) in enumerate(zip(in_names, tensors)):
            for axis, dim in axes.get(name, {}).items():
                if not -t.dim() <= axis < t.dim():
                    raise ValueError(f"[onnx.export] dynamic_axes: input '{name}' of shape "
                                     f"{tuple(t.shape)} has no axis {axis}")
                axis %= t.dim()
                dyn.setdefault(i, {})[axis] = syms.add(dim, i, axis, t.shape[axis], name)
        for name, o in zip(out_names, base.outputs):
            rank = len(base.value_shapes[o[1]]) if isinstance(o, tuple) else o.dim()
            for axis in axes.get(name, {}):
                if not -rank <= axis < rank:
                    raise ValueError(f"[onnx.export] dynamic_axes: output '{name}' has rank "
                                     f"{rank}, no axis {axis}")
        traces = [base]
        if syms.names:
            traces = _probe(model, marks, base, grad, call_args, call_kwargs, positions, dyn,
                            syms)
    finally:
        marks.remove()
        for m, t in zip(modules, training):
            m.training = t

    graph, functions = build_graph(model, marks, traces, Sizes(traces, syms), syms, tensors,
                                   in_names, out_names, axes, opset_version)
    opset = [onnx.helper.make_opsetid("", opset_version)]
    ir_version = onnx.helper.find_min_ir_version_for(opset)
    if functions:  # Note [deepcore functions in ONNX]
        opset.append(onnx.helper.make_opsetid(FUNCTION_DOMAIN, FUNCTION_VERSION))
    from .. import __version__
    proto = onnx.helper.make_model(graph, opset_imports=opset, producer_name="deepcore",
                                   producer_version=__version__, ir_version=ir_version,
                                   functions=functions)
    if verbose:
        print(onnx.printer.to_text(proto.graph))
        for fn in proto.functions:
            print(onnx.printer.to_text(fn))
    size = proto.ByteSize()
    if size >= 2 ** 31:
        raise ValueError(f"[onnx.export] the model is {size / 2 ** 30:.1f} GiB; a single ONNX "
                         "protobuf holds at most 2 GiB, and external data files are not "
                         "written by this exporter")
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    if isinstance(f, (str, os.PathLike)):
        from ..serialization import _atomic_write
        _atomic_write(os.fspath(f), data)
    else:
        f.write(data)
    return proto
