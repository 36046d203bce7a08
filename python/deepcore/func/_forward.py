"""Forward mode for deepcore.func: ``jvp`` and ``jacfwd``, with ``jacrev`` and ``hessian``.

Note [Forward mode over a trace]
``jvp(f, primals, tangents)`` traces f once on the primals (deepcore._jit.trace_call: every op
call recorded as a node, Note [Traced graphs] in csrc/jit/graph.h), then walks the nodes in
order: each node's primal results are recomputed by calling its op on the recomputed arguments,
and its output tangents come from the op's forward rule in _jvp_rules.RULES, given the
arguments, their tangents (None: zero) and the results. Rules are written with ordinary
differentiable ops, so reverse mode runs through a jvp (jacrev(jacfwd(f))) and the primal
recomputation keeps the autograd connection to the primals.

jacfwd pushes every basis direction through one walk: each value carries a list of tangents,
one per direction, and each node runs its rule once per direction on primals computed once
(which also keeps rules of in-place ops seeing the values from before the write).

In-place ops get the out-of-place rule on a copy of the written argument taken before the
call; the new tangent replaces the written value's, or, when the written tensor is a view made
in the graph (``y[0] = v`` is select + copy_), is copied into the same view of the base's
tangent, which is materialised (and copied once, so no other value's tangent is changed) first.

Autograd calls inside f (``_grad`` nodes: grad, vjp, jacrev inside jacfwd, so hessian) are
differentiated in reverse over forward mode: for g = (dy/dx)^T v, the tangent is
dg = (dy/dx)^T dv + d/dx (v . dy), where dy is y's tangent. The nodes between x and y are run
again from a fresh alias of x (so the gradient follows only those paths and treats x's own
tangent as a constant), and both terms come from one autograd.grad call. For this the primals
must require grad while f runs, so a trace that contains an autograd call is redone with the
primals marked (as vjp marks them), and the results are detached again unless an outer level
records.

An op without a rule raises NotImplementedError naming it; there is no fallback to
double-vjp. Ops the registry marks not differentiable, and results that are not floating
point, get zero tangents.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import optree

import deepcore as dc

from .. import _C
from .._C import Tensor
from .._jit import trace_call
from ..autograd import grad as _autograd_grad
from ..autograd.grad_mode import enable_grad as _enable_grad, no_grad as _no_grad
from ._jvp_rules import RULES
from . import _argnums, _split_aux  # defined before func/__init__.py imports this module

__all__ = ["jvp", "jacfwd", "jacrev", "hessian"]

_ArgNums = Union[int, Tuple[int, ...]]

# Ops whose result shares the argument's storage: a tangent written through such a result
# must reach the base's tangent.
_VIEW_OPS = frozenset(
    "_view _reshape _permute _expand transpose swapaxes t _T squeeze unsqueeze flatten "
    "unflatten _slice select narrow split chunk unbind as_strided alias "
    "_set_requires_grad".split())
_AUTOGRAD_OPS = frozenset(["_grad", "_backward", "_get_grad", "_set_grad"])
_RANDOM_OPS = frozenset(
    "bernoulli bernoulli_ uniform_ normal_ _rand _randn _randint _randperm _multinomial "
    "dropout dropout_ rand_like randn_like randint_like".split())

_REGISTRY: Dict[str, dict] = {}


def _registry() -> Dict[str, dict]:
    if not _REGISTRY:
        for o in _C._op_registry():
            _REGISTRY[o["binding"] or o["name"]] = o
            _REGISTRY.setdefault(o["name"], o)
    return _REGISTRY


def _is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def _is_ref(a) -> bool:
    return isinstance(a, tuple) and len(a) == 2 and a[0] == "%"


def _subst(args: list, env: Dict[int, Any]) -> list:
    out = []
    for a in args:
        if _is_ref(a):
            out.append(env[a[1]])
        elif isinstance(a, list):
            out.append([env[v[1]] if _is_ref(v) else v for v in a])
        else:
            out.append(a)
    return out


def _tangent_args(args: list, tan: Dict[int, list], k: int) -> list:
    """The tangents mirroring args for direction k (None for constants and non-tensors)."""
    out = []
    for a in args:
        if _is_ref(a):
            out.append(tan[a[1]][k])
        elif isinstance(a, list):
            out.append([tan[v[1]][k] if _is_ref(v) else None for v in a])
        else:
            out.append(None)
    return out


def _refs(args: list) -> List[int]:
    ids = []
    for a in args:
        if _is_ref(a):
            ids.append(a[1])
        elif isinstance(a, list):
            ids += [v[1] for v in a if _is_ref(v)]
    return ids


def _any_tangent(targs: list) -> bool:
    return any((any(v is not None for v in t) if isinstance(t, list) else t is not None)
               for t in targs)


def _inplace(name: str) -> bool:
    entry = _registry().get(name)
    if entry is not None:
        return entry["inplace_of"] is not None or "(a!)" in entry["signature"]
    return name.endswith("_") and not name.startswith("_")


def _rule_for(name: str):
    rule = RULES.get(name)
    if rule is None:
        entry = _registry().get(name)
        if entry is not None and entry["inplace_of"]:
            base = _registry().get(entry["inplace_of"])
            rule = RULES.get(entry["inplace_of"]) or (
                RULES.get(base["binding"]) if base is not None and base["binding"] else None)
    return rule


def _nondifferentiable(name: str) -> bool:
    entry = _registry().get(name)
    return entry is not None and not entry["differentiable"]


class _Walk:
    """One interpretation of a traced graph with K tangent directions (see the Note)."""

    def __init__(self, tc, primals: List[Tensor], tangents: List[List[Optional[Tensor]]]):
        self.graph = tc.graph
        self.nodes = tc.graph.nodes
        self.k = len(tangents)
        self.p: Dict[int, Any] = dict(enumerate(primals))
        self.t: Dict[int, list] = {i: [tangents[k][i] for k in range(self.k)]
                                   for i in range(len(primals))}
        self.view_of: Dict[int, tuple] = {}   # value -> (node, base value, output position)
        self.args_of: Dict[int, list] = {}    # view node -> its primal arguments
        self.owned: set = set()               # (value, k) whose tangent may be written into

    def copy(self) -> "_Walk":
        w = _Walk.__new__(_Walk)
        w.graph, w.nodes, w.k = self.graph, self.nodes, self.k
        w.p, w.t = dict(self.p), {v: list(ts) for v, ts in self.t.items()}
        w.view_of, w.args_of, w.owned = dict(self.view_of), self.args_of, set(self.owned)
        return w

    def run(self, start: int = 0, stop: Optional[int] = None, only=None) -> None:
        for i in range(start, len(self.nodes) if stop is None else stop):
            if only is None or i in only:
                self.step(i)

    # -- one node ------------------------------------------------------------------------------
    def step(self, i: int) -> None:
        name, args, outs, grad_mode = self.nodes[i]
        if name == "_grad":
            return self._grad_node(i)
        if name in _AUTOGRAD_OPS:
            raise NotImplementedError(f"jvp: no forward rule for '{name}' (only "
                                      "autograd.grad-style calls are supported inside jvp)")
        pargs = _subst(args, self.p)
        targs = [_tangent_args(args, self.t, k) for k in range(self.k)]
        live = [k for k in range(self.k) if _any_tangent(targs[k])]
        inplace = _inplace(name)
        written = args[0][1] if inplace and args and _is_ref(args[0]) else None
        rargs = pargs
        if live and inplace and _is_tensor(pargs[0]):
            rargs = [pargs[0].clone()] + pargs[1:]  # the value before the write, for the rule
            for k in live:
                if targs[k][0] is not None:
                    targs[k][0] = targs[k][0].clone()
        results = list(self.graph.call(i, pargs))
        for j, v in enumerate(outs):
            if v >= 0:
                self.p[v] = results[j]
        new = [[None] * len(outs) for _ in range(self.k)]
        floats = any(_is_tensor(r) and r.dtype.is_floating_point for r in results)
        if live and floats and not _nondifferentiable(name):
            rule = _rule_for(name)
            if rule is None:
                raise NotImplementedError(f"jvp: no forward rule for '{name}'")

            def call(new_args, _i=i):
                return list(self.graph.call(_i, new_args))
            with (_enable_grad() if grad_mode else _no_grad()):
                for k in live:
                    got = rule(rargs, targs[k], results, call)
                    new[k] = [t if t is not None and _is_tensor(r) and r.dtype.is_floating_point
                              else None for t, r in zip(got, results)]
        if name in _VIEW_OPS and args and _is_ref(args[0]):
            self.args_of[i] = pargs
            for j, v in enumerate(outs):
                if v >= 0:
                    self.view_of[v] = (i, args[0][1], j)
        for j, v in enumerate(outs):
            if v >= 0:
                self.t[v] = [new[k][j] for k in range(self.k)]
                for k in range(self.k):
                    self.owned.discard((v, k))
        if written is not None and live:
            self._write_back(written, outs[0], [new[k][0] for k in range(self.k)])

    def _write_back(self, target: int, out: int, tans: list) -> None:
        """An in-place op wrote `target` (now value `out`): give it the new tangents."""
        if target in self.view_of:
            self.view_of[out] = self.view_of[target]
            for k in range(self.k):
                tv = self._materialize(target, k)
                if tans[k] is None:
                    tv.zero_()
                else:
                    tv.copy_(tans[k])
                self.t[out][k] = tv
                self.owned.add((out, k))

    def _materialize(self, v: int, k: int) -> Tensor:
        """v's tangent in direction k as a tensor that may be written: a private copy for a
        base, the same view of the base's tangent for a view."""
        if (v, k) in self.owned:
            return self.t[v][k]
        if v in self.view_of:
            i, base, j = self.view_of[v]
            bt = self._materialize(base, k)
            vargs = list(self.args_of[i])
            vargs[0] = bt
            t = list(self.graph.call(i, vargs))[j]
        else:
            t = self.t[v][k]
            t = dc.zeros_like(self.p[v]) if t is None else t.clone()
        self.t[v][k] = t
        self.owned.add((v, k))
        return t

    # -- autograd calls: reverse over forward (see the Note) ------------------------------------
    def _grad_node(self, i: int) -> None:
        _, args, outs, _ = self.nodes[i]
        y_ref, x_ref, v_ref = args[0], args[1], args[2]
        xs = [a[1] for a in x_ref]
        sub = self.copy()
        for x in xs:
            sub.p[x] = self.p[x].view_as(self.p[x])
            sub.view_of.pop(x, None)
        dirty = set(xs)
        only = set()
        for j in range(i):
            if set(_refs(self.nodes[j][1])) & dirty:
                only.add(j)
                dirty.update(v for v in self.nodes[j][2] if v >= 0)
        with _enable_grad():
            sub.run(0, i, only)
        ys = [sub.p[a[1]] if _is_ref(a) else a for a in y_ref]
        vs = _subst(v_ref, sub.p) if v_ref else [None] * len(ys)
        vs = [dc.ones_like(y) if v is None else v for y, v in zip(ys, vs)]
        xin = [sub.p[x] for x in xs]
        with _enable_grad():
            live = [(y, v) for y, v in zip(ys, vs) if _is_tensor(y) and y.requires_grad]
            if live:
                g = _autograd_grad([y for y, _ in live], xin, [v for _, v in live],
                                   retain_graph=True, create_graph=True, allow_unused=True)
            else:
                g = [None] * len(xin)
            for j, v in enumerate(outs):
                if v >= 0:
                    self.p[v] = g[j] if g[j] is not None else dc.zeros_like(xin[j])
                    self.t[v] = [None] * self.k
            for k in range(self.k):
                terms_o, terms_g = [], []
                for a, y, v in zip(y_ref, ys, vs):
                    dy = sub.t[a[1]][k] if _is_ref(a) else None
                    if dy is not None and dy.requires_grad:
                        terms_o.append(dy)
                        terms_g.append(v)
                for a, y in zip(v_ref, ys):
                    dv = sub.t[a[1]][k] if _is_ref(a) else None
                    if dv is not None and y.requires_grad:
                        terms_o.append(y)
                        terms_g.append(dv)
                if not terms_o:
                    continue
                dg = _autograd_grad(terms_o, xin, terms_g, retain_graph=True, create_graph=True,
                                    allow_unused=True)
                for j, v in enumerate(outs):
                    if v >= 0:
                        self.t[v][k] = dg[j]


# ---- jvp ---------------------------------------------------------------------------------------

def _check_tangents(primals, tangents, name: str):
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise TypeError(f"[{name}] primals and tangents must be tuples, got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    p_leaves, p_spec = optree.tree_flatten(primals, none_is_leaf=True)
    t_leaves, t_spec = optree.tree_flatten(tangents, none_is_leaf=True)
    if p_spec != t_spec:
        raise ValueError(f"[{name}] tangents must have the structure of primals ({p_spec}), "
                         f"got {t_spec}")
    for p, t in zip(p_leaves, t_leaves):
        if not _is_tensor(p) or not _is_tensor(t):
            raise TypeError(f"[{name}] primals and tangents must hold tensors only, got "
                            f"{type(p).__name__} and {type(t).__name__}")
        if not p.dtype.is_floating_point:
            raise TypeError(f"[{name}] primals must be floating point, got {p.dtype}")
        if tuple(p.shape) != tuple(t.shape):
            raise ValueError(f"[{name}] tangent of shape {tuple(t.shape)} for a primal of "
                             f"shape {tuple(p.shape)}")
    return p_leaves, p_spec, t_leaves


def _recording(leaves) -> bool:
    return _C.is_grad_enabled() and any(_is_tensor(t) and t.requires_grad for t in leaves)


def _distinct(leaves: list) -> list:
    """A leaf passed twice becomes an alias the second time: the trace tells inputs apart by
    identity, and each position carries its own tangent."""
    seen, out = set(), []
    for x in leaves:
        out.append(x.view_as(x) if id(x) in seen else x)
        seen.add(id(x))
    return out


def _forward(func: Callable, p_leaves: list, p_spec, tangent_sets: list, has_aux: bool,
             name: str, randomness: str = "same"):
    """Traces func on the primals and walks it with every tangent set (a list of tangent
    leaves each). Returns (outputs, output spec, aux, [output tangents per set])."""
    outer = _recording(p_leaves)
    aux_box = []

    def traced(*leaves):
        primals = optree.tree_unflatten(p_spec, list(leaves))
        out, aux = _split_aux(func(*primals), has_aux, name)
        aux_box.append(aux)
        return out

    leaves = _distinct(p_leaves)
    marked = False
    with _enable_grad():
        tc = trace_call(traced, *leaves)
        if any(n[0] in _AUTOGRAD_OPS for n in tc.graph.nodes) and not outer:
            marked = True
            leaves = [x if x.requires_grad else x.detach().requires_grad_() for x in leaves]
            aux_box.clear()
            tc = trace_call(traced, *leaves)
    if randomness == "error":
        for n in tc.graph.nodes:
            if n[0] in _RANDOM_OPS and not (n[0].startswith("dropout") and
                                           (not n[1][2] or n[1][1] == 0)):
                raise RuntimeError(f"[{name}] called random operation '{n[0]}' while in "
                                   "randomness error mode; pass randomness='same' or "
                                   "'different'")
    if len(tc.inputs) != len(leaves):
        raise ValueError(f"[{name}] the traced function's inputs do not match the primals")
    tans = [list(ts) for ts in tangent_sets]
    w = _Walk(tc, list(tc.inputs), tans)
    w.run()
    outs_p, outs_t = [], [[] for _ in tans]
    consts = tc.graph._g.outputs_const
    for o, c in zip(tc.graph.outputs, consts):
        if o < 0:
            outs_p.append(c)
            for k in range(len(tans)):
                outs_t[k].append(dc.zeros_like(c))
            continue
        p = w.p[o]
        outs_p.append(p)
        for k in range(len(tans)):
            t = w.t[o][k]
            outs_t[k].append(dc.zeros_like(p) if t is None else t)
    if marked or not outer:
        keep = outer
        outs_p = [p if keep else p.detach() for p in outs_p]
        outs_t = [[t if keep else t.detach() for t in ts] for ts in outs_t]
    aux = aux_box[-1] if aux_box else None
    return outs_p, tc, aux, outs_t


def jvp(func: Callable, primals: tuple, tangents: tuple, *, strict: bool = False,
        has_aux: bool = False):
    """``jvp(f, primals, tangents)`` -> ``(f(*primals), J_f(primals) @ tangents)`` in true
    forward mode (Note [Forward mode over a trace]). ``primals`` and ``tangents`` are tuples of
    the same structure (pytrees of floating-point tensors); with ``has_aux``, f returns
    ``(output, aux)`` and the result is ``(output, jvp_out, aux)``."""
    del strict
    p_leaves, p_spec, t_leaves = _check_tangents(primals, tangents, "jvp")
    outs_p, tc, aux, outs_t = _forward(func, p_leaves, p_spec, [t_leaves], has_aux, "jvp")
    out, tan = tc.unflatten(outs_p), tc.unflatten(outs_t[0])
    return (out, tan, aux) if has_aux else (out, tan)


# ---- jacobians ---------------------------------------------------------------------------------

def _diff_leaves(args, nums, name):
    """Per argnum: (its leaves, its spec), every leaf a floating-point tensor."""
    per = []
    for n in nums:
        leaves, spec = optree.tree_flatten(args[n])
        for x in leaves:
            if not _is_tensor(x) or not x.dtype.is_floating_point:
                raise TypeError(f"[{name}] argument {n} must hold floating-point tensors only")
        per.append((leaves, spec))
    return per


def _with_args(func, args, kwargs, nums, specs):
    """A function of the chosen arguments' leaves (one flat list) calling func."""
    def f(*flat):
        full = list(args)
        it = iter(flat)
        for n, (leaves, spec) in zip(nums, specs):
            full[n] = optree.tree_unflatten(spec, [next(it) for _ in leaves])
        return func(*full, **kwargs)
    return f


def _assemble(out_leaves, out_spec, blocks, per, argnums):
    """The jacobian pytree: per output leaf, per argnum, the input's structure, each leaf
    ``blocks[o][l]`` of shape output.shape + input.shape."""
    jac_leaves = []
    for o in range(len(out_leaves)):
        per_arg, pos = [], 0
        for leaves, spec in per:
            per_arg.append(optree.tree_unflatten(spec, blocks[o][pos:pos + len(leaves)]))
            pos += len(leaves)
        jac_leaves.append(per_arg[0] if isinstance(argnums, int) else tuple(per_arg))
    return optree.tree_unflatten(out_spec, jac_leaves)


def jacfwd(func: Callable, argnums: _ArgNums = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:
    """The jacobian of func with respect to ``args[argnums]`` in forward mode: one tangent
    direction per input element, all pushed through one walk of the traced graph. Each leaf of
    the result has shape ``output.shape + input.shape``; tuple argnums give tuples, pytree
    inputs and outputs nest as in torch.func. With ``has_aux``: ``(jacobian, aux)``.
    ``randomness='error'`` raises on random ops; 'same' and 'different' allow them (every
    direction then sees the same random draw)."""
    if randomness not in ("error", "same", "different"):
        raise ValueError(f"[jacfwd] randomness must be 'error', 'same' or 'different', got "
                         f"{randomness!r}")

    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "jacfwd")
        per = _diff_leaves(args, nums, "jacfwd")
        flat = [x for leaves, _ in per for x in leaves]
        sizes = [x.numel() for x in flat]
        total = sum(sizes)
        sets = []
        for li, x in enumerate(flat):
            eye = dc.eye(max(sizes[li], 1), dtype=x.dtype) if sizes[li] else None
            for e in range(sizes[li]):
                sets.append([eye[e].reshape(tuple(x.shape)) if j == li else dc.zeros_like(y)
                             for j, y in enumerate(flat)])
        f = _with_args(func, args, kwargs, nums, per)
        _, spec = optree.tree_flatten(tuple(flat))
        outs_p, tc, aux, outs_t = _forward(lambda *xs: f(*xs), flat, spec, sets, has_aux,
                                           "jacfwd", randomness)
        del total
        blocks = []
        for o, p in enumerate(outs_p):
            row, start = [], 0
            for li, x in enumerate(flat):
                n = sizes[li]
                cols = [outs_t[k][o] for k in range(start, start + n)]
                start += n
                if cols:
                    j = dc.stack(cols, -1) if p.dim() else dc.stack(cols, 0)
                else:
                    j = dc.zeros(tuple(p.shape) + (0,), dtype=p.dtype)
                row.append(j.reshape(tuple(p.shape) + tuple(x.shape)))
            blocks.append(row)
        out_struct = tc.unflatten(outs_p)
        out_leaves, out_spec = optree.tree_flatten(out_struct)
        jac = _assemble(out_leaves, out_spec, blocks, per, argnums)
        return (jac, aux) if has_aux else jac

    return wrapper


def jacrev(func: Callable, argnums: _ArgNums = 0, has_aux: bool = False, *,
           chunk_size: Optional[int] = None) -> Callable:
    """The jacobian of func with respect to ``args[argnums]`` in reverse mode: one vjp per
    output element (deepcore.func.vjp). Same result structure as :func:`jacfwd`."""
    del chunk_size
    from . import vjp as _vjp

    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "jacrev")
        per = _diff_leaves(args, nums, "jacrev")
        flat = [x for leaves, _ in per for x in leaves]
        f = _with_args(func, args, kwargs, nums, per)
        res = _vjp(f, *flat, has_aux=has_aux)
        output, vjp_fn = res[0], res[1]
        aux = res[2] if has_aux else None
        out_leaves, out_spec = optree.tree_flatten(output)
        blocks = []
        for o, y in enumerate(out_leaves):
            rows = []
            n = y.numel()
            eye = dc.eye(max(n, 1), dtype=y.dtype)
            for r in range(n):
                cts = [eye[r].reshape(tuple(y.shape)) if j == o else dc.zeros_like(z)
                       for j, z in enumerate(out_leaves)]
                rows.append(vjp_fn(optree.tree_unflatten(out_spec, cts)))
            row = []
            for li, x in enumerate(flat):
                if rows:
                    j = dc.stack([g[li] for g in rows], 0)
                else:
                    j = dc.zeros((0,) + tuple(x.shape), dtype=x.dtype)
                row.append(j.reshape(tuple(y.shape) + tuple(x.shape)))
            blocks.append(row)
        jac = _assemble(out_leaves, out_spec, blocks, per, argnums)
        return (jac, aux) if has_aux else jac

    return wrapper


def hessian(func: Callable, argnums: _ArgNums = 0) -> Callable:
    """The hessian of a scalar func: ``jacfwd(jacrev(func, argnums), argnums)``."""
    return jacfwd(jacrev(func, argnums), argnums)
