"""deepcore.jit and deepcore.compile: trace a function once through the dispatcher into a C++
graph, then replay the graph on later calls (Note [Traced graphs] in csrc/jit/graph.h).

A call looks its inputs up in a cache keyed by what the graph assumed: the tensors' shapes,
dtypes, devices, layouts and requires_grad flags, which inputs are the same tensor, the
non-tensor arguments, and the grad mode; plus, for every module and optimizer the traced call
used, the module's training mode and parameter identities and the optimizer's hyperparameters.
A miss traces again (a warning after ``max_retraces`` traces of one function).

Tracing runs the function for real, so the first call's result is the eager result. Reading
tensor values from Python while tracing (``.item()``, ``.numpy()``, ``if x.sum() > 0``) breaks
the graph: deepcore warns with the file and line and runs that signature eagerly from then on;
``strict=True`` raises :class:`GraphBreakError` instead. ``check=True`` runs eager and compiled
side by side and raises on any difference.
"""
from __future__ import annotations

import functools
import os
import sys
import warnings
from typing import Any, Callable, Dict, List, Optional

import optree

from . import _C, _trace_state
from ._C import Tensor

__all__ = ["jit", "compile", "GraphBreakError", "JitCheckError", "JitWarning"]

GraphBreakError = _C.GraphBreakError
GraphBreakError.__module__ = "deepcore"
GraphBreakError.__doc__ = "Python code that a graph cannot stand for, met while tracing."


class JitCheckError(AssertionError):
    """``jit(fn, check=True)``: the compiled graph and the eager call disagree."""


class JitWarning(UserWarning):
    """Graph breaks and repeated retracing."""


_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_frame(depth: int = 1):
    """The innermost Python frame outside the deepcore package, seen from `depth` frames up,
    and how many frames up it is (None, n past the outermost)."""
    f, level = sys._getframe(depth), depth
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG_DIR):
        f, level = f.f_back, level + 1
    return f, level


def _user_location() -> str:
    """file:line of the innermost Python frame outside the deepcore package."""
    f, _ = user_frame(2)
    return f"{f.f_code.co_filename}:{f.f_lineno}" if f is not None else ""


_C._jit_set_location_hook(_user_location)

_EAGER = object()  # a cache entry for a signature whose trace broke


def _is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def _static_key(x):
    try:
        hash(x)
        return (type(x), x)
    except TypeError:
        return (type(x), id(x))


def _module_guard(m) -> tuple:
    return (tuple(sub.training for sub in m.modules()),
            tuple(id(p) for p in m.parameters()), tuple(id(b) for b in m.buffers()))


def _optimizer_guard(o, patched: bool = False) -> tuple:
    """Parameter lists, state size and hyperparameters. With `patched` (every float
    hyperparameter of the optimizer is an argument the replay sets from the param group, see
    _OPTIMIZER_FLOATS), a float only counts as zero or not: Python branches on that."""
    def value(k, v):
        if k == "params":
            return tuple(map(id, v))
        def number(e):
            return isinstance(e, (int, float)) and not isinstance(e, bool)
        if patched and number(v):
            return ("zero", v == 0)
        if patched and isinstance(v, tuple) and all(number(e) for e in v):
            return ("zero",) + tuple(e == 0 for e in v)
        return (type(v), v)
    return tuple(tuple((k, value(k, v)) for k, v in g.items())
                 for g in o.param_groups) + (len(o.state),)


# The float arguments of the fused optimizer steps that come from a param group: node argument
# index -> (group key, element of a tuple value or None). deepcore.jit sets them from the groups
# before each replay, so a learning-rate scheduler does not make every step trace again.
_OPTIMIZER_FLOATS = {
    "sgd_step_": {3: ("lr", None), 4: ("momentum", None), 5: ("dampening", None),
                  6: ("weight_decay", None)},
    "adam_step_": {6: ("lr", None), 7: ("betas", 0), 8: ("betas", 1), 9: ("eps", None),
                   10: ("weight_decay", None)},
    "rmsprop_step_": {6: ("lr", None), 7: ("alpha", None), 8: ("eps", None),
                      9: ("weight_decay", None), 10: ("momentum", None)},
    "adagrad_step_": {4: ("lr", None), 5: ("lr_decay", None), 6: ("eps", None),
                      7: ("weight_decay", None)},
}


def _group_float(group, key, elem):
    v = group.get(key)
    if elem is not None:
        v = v[elem] if isinstance(v, (tuple, list)) and len(v) > elem else None
    return v if isinstance(v, (float, int)) and not isinstance(v, bool) else None


def _hyperparameter_plan(g, optimizers):
    """(node, argument, group, key, element) for every float argument of an optimizer step
    node in `g` that is its group's value, and the optimizers all of whose float
    hyperparameters that covers."""
    plan, covered = [], set()
    groups = [(o, grp) for o in optimizers for grp in o.param_groups]
    seen_groups = set()
    for i in range(g.num_nodes):
        op, args, _, _ = g.node(i)
        floats = _OPTIMIZER_FLOATS.get(op)
        if floats is None:
            continue
        ids = {id(t) for t in args[0] if _is_tensor(t)}
        match = [(o, grp) for o, grp in groups if ids <= {id(p) for p in grp["params"]}]
        if len(match) != 1:
            continue
        o, grp = match[0]
        ok = True
        for k, (key, elem) in floats.items():
            v = _group_float(grp, key, elem)
            if v is None or float(v) != args[k]:
                ok = False
                continue
            plan.append((i, k, grp, key, elem))
        if ok:
            seen_groups.add(id(grp))
    for o in optimizers:
        if type(o).__module__.startswith("deepcore.optim") and \
                all(id(grp) in seen_groups for grp in o.param_groups):
            covered.add(id(o))
    return plan, covered


class _Entry:
    __slots__ = ("graph", "out_spec", "out_static", "single", "modules", "optimizers",
                 "module_guards", "optimizer_guards", "epoch", "plan", "patched", "seen")

    def __init__(self, graph, out_spec, out_static, modules, optimizers):
        self.graph = graph
        self.out_spec = out_spec
        self.out_static = out_static
        self.single = out_spec.num_leaves == 1 and out_spec.num_nodes == 1 and \
            out_static == [None]  # the function returns one tensor
        # Only the outermost modules: a module's guard covers its submodules.
        inner = {id(s) for m in modules for s in m.modules() if s is not m}
        self.modules = [m for m in modules if id(m) not in inner]
        self.optimizers = optimizers
        self.plan, covered = _hyperparameter_plan(graph, optimizers)
        self.patched = [id(o) in covered for o in optimizers]
        self.module_guards = [_module_guard(m) for m in self.modules]
        self.optimizer_guards = [_optimizer_guard(o, p)
                                 for o, p in zip(optimizers, self.patched)]
        self.seen = [self._snapshot(o) for o in optimizers]
        self.epoch = _trace_state.epoch

    @staticmethod
    def _snapshot(o) -> tuple:
        """The objects an optimizer's groups hold now: while they are the same objects, the
        guard and the hyperparameters set into the graph still hold. (A parameter swapped
        into a group's list in place shows as new optimizer state on its first step.)"""
        return (len(o.state),) + tuple((len(g["params"]), *g.values()) for g in o.param_groups)

    @staticmethod
    def _same(a: tuple, b: tuple) -> bool:
        if len(a) != len(b) or a[0] != b[0]:
            return False
        for x, y in zip(a[1:], b[1:]):
            if len(x) != len(y) or x[0] != y[0] or any(u is not v for u, v in zip(x[1:], y[1:])):
                return False
        return True

    def valid(self) -> bool:
        # Module state (training mode, parameters, buffers) can only change through calls that
        # bump _trace_state.epoch; the guards are compared again only then.
        if self.epoch != _trace_state.epoch:
            if self.module_guards != [_module_guard(m) for m in self.modules]:
                return False
            self.epoch = _trace_state.epoch
        changed = False
        for j, o in enumerate(self.optimizers):
            snap = self._snapshot(o)
            if self._same(snap, self.seen[j]):
                continue
            if _optimizer_guard(o, self.patched[j]) != self.optimizer_guards[j]:
                return False
            self.seen[j] = snap
            changed = True
        if changed:
            for i, k, grp, key, elem in self.plan:
                self.graph.set_float_arg(i, k, float(_group_float(grp, key, elem)))
        return True


class Graph:
    """A traced graph: ``str(graph)`` is its text; ``export()`` a plain-Python description."""

    def __init__(self, g):
        self._g = g

    def __str__(self) -> str:
        return str(self._g)

    __repr__ = __str__

    @property
    def nodes(self) -> List[tuple]:
        """(op, args, outputs, grad_mode) per node; graph values are ("%", id) pairs."""
        return [self._g.node(i) for i in range(self._g.num_nodes)]

    @property
    def num_inputs(self) -> int:
        return self._g.num_inputs

    def call(self, i: int, args: list) -> list:
        """Runs node i's op on ``args`` (its argument list with tensors in place of values)
        and returns its results as a list of tensors."""
        return self._g.call_node(i, args)

    def run(self, inputs: list) -> list:
        """Replays the graph on new input tensors."""
        return self._g.run(inputs)

    @property
    def outputs(self) -> List[int]:
        return list(self._g.outputs)

    def export(self) -> Dict[str, Any]:
        """The graph as data: inputs (shape, dtype), nodes and outputs. Constant tensors are
        deepcore tensors; graph values are ("%", id) pairs."""
        g = self._g
        return {
            "inputs": [(tuple(g.value_shape(i)), g.value_dtype(i)) for i in range(g.num_inputs)],
            "nodes": [{"op": op, "args": args, "outputs": list(outs), "grad_mode": gm}
                      for op, args, outs, gm in self.nodes],
            "outputs": [("%", o) if o >= 0 else c for o, c in zip(g.outputs, g.outputs_const)],
            "value_shapes": [tuple(g.value_shape(v)) for v in range(g.num_values)],
            "value_dtypes": [g.value_dtype(v) for v in range(g.num_values)],
        }


def _compare(eager, compiled, where: str) -> None:
    le, _ = optree.tree_flatten(eager, none_is_leaf=True)
    lc, _ = optree.tree_flatten(compiled, none_is_leaf=True)
    if len(le) != len(lc):
        raise JitCheckError(f"[jit] {where}: the compiled call returned {len(lc)} leaves, "
                            f"the eager call {len(le)}")
    for i, (a, b) in enumerate(zip(le, lc)):
        if _is_tensor(a) != _is_tensor(b):
            raise JitCheckError(f"[jit] {where}: output {i} is a tensor in one call only")
        if not _is_tensor(a):
            if a != b:
                raise JitCheckError(f"[jit] {where}: output {i} is {b!r} compiled, {a!r} eager")
            continue
        if tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
            raise JitCheckError(f"[jit] {where}: output {i} is {b.dtype}{list(b.shape)} "
                                f"compiled, {a.dtype}{list(a.shape)} eager")
        if a.numel() == 0:
            continue
        x, y = a.detach(), b.detach()
        same = (x == y) | (_C.isnan(x) & _C.isnan(y)) if x.dtype.is_floating_point else x == y
        if not bool(same.all()):
            diff = float((x.double() - y.double()).abs().nan_to_num(float("inf")).max())
            raise JitCheckError(f"[jit] {where}: output {i} ({a.dtype}{list(a.shape)}) differs "
                                f"from the eager result: max abs difference {diff:g}")


class _Jitted:
    """The callable deepcore.jit returns (see the module docstring)."""

    def __init__(self, fn: Callable, *, strict: bool, check: bool, max_retraces: int,
                 optimize: bool, _fusion_fault: bool = False):
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._strict = strict
        self._check = check
        self._max_retraces = max_retraces
        self._optimize = optimize
        self._fusion_fault = _fusion_fault
        self._cache: Dict[Any, list] = {}
        self._traces = 0
        self._warned = False
        self._last: Optional[Graph] = None
        self.graph_breaks: List[str] = []

    def __get__(self, obj, objtype=None):
        """On a method: one compiled function per instance, kept on the instance."""
        if obj is None:
            return self
        slot = f"_jit_{self._fn.__name__}_{id(self)}"
        bound = getattr(obj, "__dict__", {}).get(slot)
        if bound is None:
            bound = _Jitted(self._fn.__get__(obj, objtype), strict=self._strict,
                            check=self._check, max_retraces=self._max_retraces,
                            optimize=self._optimize, _fusion_fault=self._fusion_fault)
            if hasattr(obj, "__dict__"):
                obj.__dict__[slot] = bound
        return bound

    @property
    def graph(self) -> Optional[Graph]:
        """The graph of the most recent trace (None before the first call or after a break)."""
        return self._last

    @property
    def num_traces(self) -> int:
        return self._traces

    @staticmethod
    def _key(leaves, spec, tensors):
        static = tuple(_static_key(x) for x in leaves if not _is_tensor(x))
        return (spec, _C.is_grad_enabled(), _C._jit_signature(tensors), static)

    def __call__(self, *args, **kwargs):
        if _C._jit_tracing():
            # Inside another trace: the outer graph records the ops of this call.
            return self._fn(*args, **kwargs)
        if not kwargs and all(type(a) is Tensor for a in args):
            # The common call, tensors only: no pytree to flatten.
            tensors = list(args)
            key = (len(args), _C.is_grad_enabled(), _C._jit_signature(tensors))
        else:
            leaves, spec = optree.tree_flatten((args, kwargs), none_is_leaf=True)
            tensors = [x for x in leaves if _is_tensor(x)]
            key = self._key(leaves, spec, tensors)
        for entry in self._cache.get(key, ()):
            if entry is _EAGER:
                return self._fn(*args, **kwargs)
            if (entry.modules or entry.optimizers) and not entry.valid():
                continue
            try:
                outs = entry.graph.run(tensors)
            except _C._GuardMiss:
                continue
            if entry.single:
                result = outs[0]
            else:
                it = iter(outs)
                result = optree.tree_unflatten(
                    entry.out_spec, [next(it) if s is None else s[0] for s in entry.out_static])
            if self._check:
                _compare(self._fn(*args, **kwargs), result, self.__name__)
            return result
        return self._trace(key, tensors, args, kwargs)

    def _trace(self, key, tensors, args, kwargs):
        self._traces += 1
        if self._traces > self._max_retraces and not self._warned:
            self._warned = True
            warnings.warn(f"[jit] {self.__name__} was traced {self._traces} times; each new "
                          "input signature (shape, dtype, requires_grad, non-tensor argument) "
                          "traces again", JitWarning, stacklevel=3)
        _trace_state.active = True
        _trace_state.modules = {}
        _trace_state.optimizers = {}
        _C._jit_begin(tensors, self._strict)
        try:
            out = self._fn(*args, **kwargs)
            out_leaves, out_spec = optree.tree_flatten(out, none_is_leaf=True)
            out_tensors = [x for x in out_leaves if _is_tensor(x)]
            escaped = _C._jit_escaped(out_tensors)
        except BaseException:
            _C._jit_abort()
            raise
        finally:
            _trace_state.active = False
        modules = list(_trace_state.modules.values())
        optimizers = list(_trace_state.optimizers.values())
        _trace_state.modules, _trace_state.optimizers = {}, {}
        if escaped:
            # State the call created and stored (optimizer moments): trace again next call.
            _C._jit_abort()
            return out
        try:
            g = _C._jit_end(out_tensors)
        except GraphBreakError as err:
            if self._strict:
                raise
            reason = str(err)
            self.graph_breaks.append(reason)
            warnings.warn(f"[jit] graph break in {self.__name__}: {reason}; this signature "
                          "runs eagerly", JitWarning, stacklevel=3)
            self._cache.setdefault(key, []).append(_EAGER)
            self._last = None
            return out
        if self._optimize:
            g.optimize(fault=self._fusion_fault)
        entry = _Entry(g, out_spec, [None if _is_tensor(x) else (x,) for x in out_leaves],
                       modules, optimizers)
        self._cache.setdefault(key, []).append(entry)
        self._last = Graph(g)
        if self._check:
            it = iter(g.run(tensors))
            replay = optree.tree_unflatten(
                out_spec, [next(it) if s is None else s[0] for s in entry.out_static])
            _compare(out, replay, self.__name__)
        return out


def jit(fn: Optional[Callable] = None, *, strict: bool = False, check: bool = False,
        max_retraces: int = 8, optimize: bool = True):
    """Compiles ``fn`` by tracing (see the module docstring). Works as ``jit(fn)``, as a
    decorator (``@jit`` or ``@jit(strict=True)``), on methods, and on modules (then as
    :func:`compile`)."""
    if fn is None:
        return lambda f: jit(f, strict=strict, check=check, max_retraces=max_retraces,
                             optimize=optimize)
    from .nn.modules.module import Module
    if isinstance(fn, Module):
        return compile(fn, strict=strict, check=check, max_retraces=max_retraces,
                       optimize=optimize)
    if not callable(fn):
        raise TypeError(f"[jit] expected a function, method or module, got {type(fn).__name__}")
    return _Jitted(fn, strict=strict, check=check, max_retraces=max_retraces, optimize=optimize)


def _trace_with(fn, example_inputs, *, strict: bool = False, check_trace: bool = False,
                **_torch_options):
    """torch.jit.trace's spelling: ``fn`` (a function or module) compiled and traced once on
    ``example_inputs`` (a tensor or a tuple of them)."""
    compiled = jit(fn, strict=strict, check=check_trace)
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    compiled(*args)
    return compiled


jit.trace = _trace_with


def compile(model=None, *, strict: bool = False, check: bool = False, max_retraces: int = 8,
            optimize: bool = True, **_torch_options):
    """A module whose forward replays traced graphs (torch.compile's entry point). Parameters,
    buffers and the state_dict are the wrapped module's (under ``_orig_mod``, as in torch);
    functions are compiled as by :func:`jit`, and ``@compile()`` decorates. torch's
    ``mode=``/``backend=``/``dynamic=``/``fullgraph=`` options are accepted;
    ``fullgraph=True`` means ``strict=True``."""
    if model is None:
        return lambda m: compile(m, strict=strict, check=check, max_retraces=max_retraces,
                                 optimize=optimize, **_torch_options)
    strict = strict or bool(_torch_options.get("fullgraph", False))
    from .nn.modules.module import Module
    if not isinstance(model, Module):
        return jit(model, strict=strict, check=check, max_retraces=max_retraces,
                   optimize=optimize)
    return _CompiledModule(model, strict=strict, check=check, max_retraces=max_retraces,
                           optimize=optimize)


def _compiled_module_class():
    from .nn.modules.module import Module

    class OptimizedModule(Module):
        """A module compiled by deepcore.compile: calls replay traced graphs of ``_orig_mod``."""

        def __init__(self, mod, **options):
            super().__init__()
            self._orig_mod = mod
            object.__setattr__(self, "_compiled_call", _Jitted(
                lambda *a, **k: mod(*a, **k), **options))
            functools.update_wrapper(self._compiled_call, mod.forward)

        def forward(self, *args, **kwargs):
            return self._compiled_call(*args, **kwargs)

        @property
        def graph(self) -> Optional[Graph]:
            return self._compiled_call.graph

        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self._modules["_orig_mod"], name)

    return OptimizedModule


def _CompiledModule(model, **options):
    global _COMPILED_CLASS
    if _COMPILED_CLASS is None:
        _COMPILED_CLASS = _compiled_module_class()
    return _COMPILED_CLASS(model, **options)


_COMPILED_CLASS = None


class TracedCall:
    """One traced call, for the transforms that interpret graphs (deepcore.func's vmap and
    jvp): ``graph`` (a :class:`Graph`; ``graph.call(i, args)`` runs node i's op on new
    arguments), ``inputs`` (the traced tensors, graph values 0..n-1, in pytree-leaf order of
    ``(args, kwargs)``) and ``unflatten(tensors)``, which puts result tensors (one per graph
    output) back into the structure the function returned."""

    def __init__(self, graph, inputs, out_spec, out_static, eager_result):
        self.graph = graph
        self.inputs = inputs
        self._out_spec = out_spec
        self._out_static = out_static
        self.eager_result = eager_result

    def unflatten(self, tensors):
        it = iter(tensors)
        return optree.tree_unflatten(
            self._out_spec, [next(it) if s is None else s[0] for s in self._out_static])


def trace_call(fn: Callable, *args, **kwargs) -> TracedCall:
    """Traces ``fn(*args, **kwargs)`` strictly (a graph break raises GraphBreakError) with no
    passes, so each node is one op call as the function made it."""
    leaves, _ = optree.tree_flatten((args, kwargs), none_is_leaf=True)
    tensors = [x for x in leaves if _is_tensor(x)]
    _C._jit_begin(tensors, True)
    try:
        out = fn(*args, **kwargs)
        out_leaves, out_spec = optree.tree_flatten(out, none_is_leaf=True)
        out_tensors = [x for x in out_leaves if _is_tensor(x)]
    except BaseException:
        _C._jit_abort()
        raise
    g = _C._jit_end(out_tensors)
    return TracedCall(Graph(g), tensors, out_spec,
                      [None if _is_tensor(x) else (x,) for x in out_leaves], out)
