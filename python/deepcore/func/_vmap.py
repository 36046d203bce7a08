"""deepcore.func.vmap: a function of one example made into a function of a batch.

Note [vmap over traced graphs]
deepcore has no batched tensor subclass; vmap works on the graph the tracer records instead
(Note [Traced graphs] in csrc/jit/graph.h). A call

1. checks ``in_dims`` against the arguments and finds the batch size;
2. traces ``func`` once on one example (every mapped input sliced at its in_dim, index 0,
   cloned so an in-place op in ``func`` does not write the caller's data twice), and keeps the
   graph for later calls with the same structure, shapes, dtypes and in_dims;
3. interprets the graph on the whole batch: each value is a physical tensor whose batch dim is
   0 (inputs are moved there once) or None (the same for every example). A node whose tensor
   arguments are all unbatched runs as recorded; otherwise its op's batching rule runs
   (_batching.py, Note [Batching rules]); an op without one runs in a Python loop over the
   batch, with a warning naming it once;
4. moves the batch dims of the outputs to ``out_dims``.

The interpreter runs every node under the grad mode it was traced with, so autograd records
the batched forward. A ``_grad`` node (``deepcore.func.grad`` inside vmap) then differentiates
the sum over the batch of its outputs; since examples do not interact, that gives each
example's gradient, provided each example has its own copy of every value it differentiates
with respect to. So values that are inputs of a ``_grad`` node are made batched where they are
created (expanded and cloned; a fresh leaf when they were one): shared parameters become one
copy per example, and ``vmap(grad(loss), in_dims=(None, 0, 0))`` gives per-example gradients.

Nesting: tracing does not nest on a thread, so a vmap called while a trace runs (the outer vmap
tracing ``vmap(f)``, or deepcore.jit) traces ``func`` on a helper thread, and interprets the
graph through the Python bindings, which the outer trace records like any other op calls.

As with deepcore.jit, the function's Python runs once per trace (side effects such as prints
happen then, on the example), tensors it captures are constants of the graph, and a cached
graph is dropped when a module it used changes training mode or parameters. With
``chunk_size``, each chunk draws its own numbers under randomness='same'.
"""
from __future__ import annotations

import functools
import threading
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import optree

from .. import _C, _trace_state
from .._C import Tensor
from .._jit import GraphBreakError, _module_guard, _static_key, trace_call, user_frame
from . import _batching
from ._batching import RULES, VmapError, is_random

__all__ = ["vmap"]

_InDims = Union[int, None, tuple]
_RANDOMNESS = ("error", "different", "same")
_warned_ops: set = set()


def _is_t(x) -> bool:
    return isinstance(x, Tensor)


def _movedim(t: Tensor, src: int, dst: int) -> Tensor:
    order = [i for i in range(t.dim()) if i != src]
    order.insert(dst, src)
    return t.permute(order)


def _example_shape(x: Tensor, d: Optional[int]) -> tuple:
    shape = list(x.shape)
    if d is not None:
        del shape[d]
    return tuple(shape)


def _user_stacklevel() -> int:
    """The warnings stacklevel (seen from the caller) of the first frame outside deepcore."""
    return user_frame(2)[1] - 1


def _fname(func) -> str:
    return getattr(func, "__name__", type(func).__name__)


# ---- in_dims / out_dims --------------------------------------------------------------------

def _flat_dims(dims, tree, what: str, func) -> list:
    """One dim (int or None) per leaf of ``tree``, ``dims`` being a prefix of its structure."""
    n = len(optree.tree_leaves(tree, none_is_leaf=True))
    if dims is None or isinstance(dims, int):
        return [dims] * n
    try:
        full = optree.tree_broadcast_prefix(dims, tree, none_is_leaf=True)
    except ValueError as err:
        of = "inputs" if what == "in_dims" else "outputs"
        raise ValueError(f"vmap({_fname(func)}, {what}={dims!r}, ...): {what} is not "
                         f"compatible with the structure of the {of}: {err}") from None
    flat = optree.tree_leaves(full, none_is_leaf=True)
    for d in flat:
        if d is not None and (not isinstance(d, int) or isinstance(d, bool)):
            raise ValueError(f"vmap({_fname(func)}, {what}={dims!r}, ...): expected every "
                             f"{what} entry to be an int or None, got {d!r}")
    return flat


def _batch_args(func, in_dims, args, kwargs):
    """(leaves, spec, dims, B) for the flattened ``(args, kwargs)``: a dim per leaf, normalized
    to be non-negative, None for kwargs and unmapped leaves."""
    if not isinstance(in_dims, (int, tuple)) and in_dims is not None:
        raise ValueError(f"vmap({_fname(func)}, in_dims={in_dims!r}, ...): expected in_dims to "
                         f"be an int or a (potentially nested) tuple matching the structure of "
                         f"the inputs, got {type(in_dims).__name__}")
    if isinstance(in_dims, tuple) and len(in_dims) != len(args):
        raise ValueError(f"vmap({_fname(func)}, in_dims={in_dims!r}, ...)(<inputs>): in_dims is "
                         f"not compatible with the structure of the inputs: expected one entry "
                         f"per positional argument ({len(args)}), got {len(in_dims)}")
    arg_dims = _flat_dims(in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args),
                          tuple(args), "in_dims", func)
    leaves, spec = optree.tree_flatten((tuple(args), kwargs), none_is_leaf=True)
    dims = list(arg_dims) + [None] * (len(leaves) - len(arg_dims))
    # which positional argument each leaf is, for messages
    owner = []
    for k, a in enumerate(args):
        owner += [k] * len(optree.tree_leaves(a, none_is_leaf=True))
    sizes = []
    for j, (x, d) in enumerate(zip(leaves, dims)):
        if d is None:
            continue
        if not _is_t(x):
            raise ValueError(f"vmap({_fname(func)}, in_dims={in_dims!r}, ...)(<inputs>): Got "
                             f"in_dim={d} for input {owner[j]}, but that input is of type "
                             f"{type(x).__name__}. We cannot vmap over non-Tensor arguments, "
                             "please use None as the respective in_dim")
        r = x.dim()
        if not -r <= d < r:
            raise ValueError(f"vmap({_fname(func)}, in_dims={in_dims!r}, ...)(<inputs>): Got "
                             f"in_dim={d} for input {owner[j]}, but that input is a Tensor of "
                             f"dimensionality {r} so expected in_dim to satisfy "
                             f"-{r} <= in_dim < {r}")
        dims[j] = d % r
        sizes.append((owner[j], dims[j], x.shape[dims[j]]))
    if not sizes:
        raise ValueError(f"vmap({_fname(func)}, in_dims={in_dims!r}, ...)(<inputs>): at least "
                         "one input must be a Tensor mapped over (in_dims gave None for every "
                         "Tensor input)")
    if len({s for _, _, s in sizes}) > 1:
        detail = ", ".join(f"input {k} has size {s} at dim {d}" for k, d, s in sizes)
        raise ValueError(f"vmap({_fname(func)}, in_dims={in_dims!r}, ...)(<inputs>): Expected "
                         "all tensors to have the same size in the mapped dimension, got sizes "
                         f"{[s for _, _, s in sizes]} for the mapped dimension ({detail})")
    B = sizes[0][2]
    if B == 0:
        raise ValueError(f"vmap({_fname(func)}, ...): the mapped dimension has size 0; vmap "
                         "traces one example, so it needs at least one")
    return leaves, spec, dims, B


# ---- tracing -------------------------------------------------------------------------------

class _Entry:
    """A traced example: the graph, its nodes, and what the interpreter needs beside."""

    def __init__(self, tc):
        g = tc.graph
        self.graph = g
        self.nodes = g.nodes
        self.outputs = g.outputs
        self.consts = list(g._g.outputs_const)
        self.out_spec = tc._out_spec
        self.out_static = tc._out_static
        gg = g._g
        self.shapes = [[tuple(gg.value_shape(o)) if o >= 0 else None for o in outs]
                       for _, _, outs, _ in self.nodes]
        self.dtypes = {o: gg.value_dtype(o) for _, _, outs, _ in self.nodes for o in outs
                       if o >= 0}
        self.modules: list = []
        self.guards: list = []
        self.epoch = -1
        # values some _grad node differentiates with respect to (Note [vmap over traced graphs])
        self.force = set()
        for op, args, _, _ in self.nodes:
            if op == "_grad":
                self.force.update(a[1] for a in args[1] if isinstance(a, tuple))


    def guard(self, modules: list) -> None:
        """Keeps the training modes and parameters of the modules the trace used: the graph
        holds their parameters as constants and took their train/eval branches."""
        self.modules = modules
        self.guards = [_module_guard(m) for m in modules]
        self.epoch = _trace_state.epoch

    def valid(self) -> bool:
        if self.epoch == _trace_state.epoch:
            return True
        if [_module_guard(m) for m in self.modules] != self.guards:
            return False
        self.epoch = _trace_state.epoch
        return True


def _trace(func, leaves, spec, dims) -> _Entry:
    def example(x, d):
        if not _is_t(x):
            return x
        e = x.select(d, 0) if d is not None else x
        return e.detach().clone().requires_grad_(x.requires_grad) if \
            x.dtype.is_floating_point else e.clone()

    def run():
        args, kwargs = optree.tree_unflatten(spec, [example(x, d) for x, d in zip(leaves, dims)])
        # note the modules the call uses, for the guards (an outer jit trace notes them too)
        outer = (_trace_state.active, _trace_state.modules, _trace_state.optimizers)
        _trace_state.active, _trace_state.modules, _trace_state.optimizers = True, {}, {}
        try:
            entry = _Entry(trace_call(func, *args, **kwargs))
        except GraphBreakError as err:
            raise GraphBreakError(
                f"vmap({_fname(func)}): {err}. vmap traces the function on one example and "
                "runs the graph on the batch, so the function cannot read tensor values from "
                "Python (item(), bool(), data-dependent if/for)") from None
        finally:
            modules = _trace_state.modules
            _trace_state.active, _trace_state.modules, _trace_state.optimizers = outer
            if outer[0]:
                outer[1].update(modules)
        entry.guard(list(modules.values()))
        return entry

    if not _C._jit_tracing():
        return run()
    box: Dict[str, Any] = {}
    grad_mode = _C.is_grad_enabled()

    def work():  # tracing does not nest on one thread (Note [vmap over traced graphs])
        _C._set_grad_enabled(grad_mode)
        try:
            box["entry"] = run()
        except BaseException as err:  # noqa: BLE001  (re-raised on the caller's thread)
            box["err"] = err

    th = threading.Thread(target=work, name="deepcore-vmap-trace")
    th.start()
    th.join()
    if "err" in box:
        raise box["err"]
    return box["entry"]


# ---- running ops ---------------------------------------------------------------------------

_BINDINGS: Optional[Dict[str, Tuple[list, list]]] = None


def _split_params(sig: str) -> Tuple[list, list]:
    body = sig.rsplit(" -> ", 1)[0]
    body = body[body.index("(") + 1:body.rindex(")")]
    parts, depth, cur = [], 0, ""
    for ch in body:
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
    pos, kw, star = [], [], False
    for p in parts:
        if p == "*":
            star = True
            continue
        name = p.split("=")[0].split()[-1]
        (kw if star else pos).append(name)
    return pos, kw


def _call_binding(name: str, args: list) -> list:
    """Runs op ``name`` through its Python binding (recorded by an outer trace)."""
    global _BINDINGS
    if _BINDINGS is None:
        _BINDINGS = {}
        for o in _C._op_registry(True):
            _BINDINGS.setdefault(o["binding"] or o["name"], _split_params(o["signature"]))
    fn = getattr(_C, name, None)
    if fn is None:
        raise RuntimeError(f"vmap: op '{name}' has no Python binding to run it under an outer "
                           "trace (nested vmap or jit(vmap(...)))")
    pos, kw = _BINDINGS.get(name, (None, None))
    if pos is not None and len(args) == len(pos) + len(kw) and kw:
        out = fn(*args[:len(pos)], **dict(zip(kw, args[len(pos):])))
    else:
        out = fn(*args)
    if isinstance(out, (list, tuple)):
        return list(out)
    return [out]


class _Ctx:
    """What a batching rule sees of its node (Note [Batching rules])."""
    __slots__ = ("B", "name", "randomness", "out_shapes", "_graph", "_i")

    def __init__(self, B, name, randomness, out_shapes, graph, i):
        self.B = B
        self.name = name
        self.randomness = randomness
        self.out_shapes = out_shapes
        self._graph = graph
        self._i = i

    def call(self, args: list) -> list:
        """The node's op on new arguments (same layout as recorded)."""
        name = self.name
        if name == "detach":
            return [args[0].detach()]
        if name == "_set_requires_grad":
            return [args[0].requires_grad_(args[1])]
        if _C._jit_tracing():
            return _call_binding(name, args)
        return self._graph.call(self._i, args)


def _force(t: Tensor, B: int) -> Tensor:
    """An unbatched value made into one copy per example (for a _grad node's inputs)."""
    e = t.unsqueeze(0).expand([B] + list(t.shape)).clone()
    if t.requires_grad and t.is_leaf:
        e = e.detach().requires_grad_()
    return e


def _grad_node(ctx, args, bdims):
    """autograd.grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused)
    on the batch: the examples' outputs are summed (Note [vmap over traced graphs])."""
    from ..autograd import grad as autograd_grad
    from .._creation import ones_like
    outs, ins, gos = args[0], args[1], args[2]
    B = ctx.B
    if any(b is None for b in bdims[1]) or \
            any(gos[k] is not None and bdims[2][k] is not None and ob is None
                for k, ob in enumerate(bdims[0]) if gos):
        # an input shared by the batch that could not be copied per example (a tensor the
        # function captured), or cotangents batched over one shared graph (a vjp_fn made
        # outside vmap, as jacrev does): one backward pass per example
        a = list(args)
        a[3] = True  # the examples' passes share the graph
        return _fallback(ctx, a, bdims)
    grad_outputs = []
    for k, (o, ob) in enumerate(zip(outs, bdims[0])):
        go = gos[k] if gos else None
        gb = bdims[2][k] if gos else None
        if go is None:
            go = ones_like(o)
        elif gb is None and ob is not None:
            go = _batching._materialize(go, None, B)
        grad_outputs.append(go)
    res = autograd_grad(list(outs), list(ins), grad_outputs=grad_outputs, retain_graph=args[3],
                        create_graph=args[4], allow_unused=args[5])
    return list(res), [b for b in bdims[1]]


def _run_node(ctx, args, bdims, randomness):
    name = ctx.name
    if name == "_grad":
        if not _batching._any_batched(bdims):
            return ctx.call(args), [None] * len(ctx.out_shapes)
        return _grad_node(ctx, args, bdims)
    random = is_random(name, args)
    batched = _batching._any_batched(bdims)
    if random and randomness == "error":
        raise ValueError(f"vmap: called random operation '{name}' while in randomness='error' "
                         "mode. Please either use the 'same' or 'different' randomness flags on "
                         "vmap or perform the randomness operation out of vmap")
    if not batched and (not random or randomness == "same"):
        outs = ctx.call(args)
        return outs, [None] * len(outs)
    if name in ("_backward", "_get_grad", "_set_grad"):
        raise VmapError(f"vmap: '{name}' (.backward() or .grad) on batched values is not "
                        "supported inside vmap; use deepcore.func.grad")
    rule = RULES.get(name)
    if rule is not None:
        return rule(ctx, args, bdims)
    return _fallback(ctx, args, bdims)


def _fallback(ctx, args, bdims):
    name = ctx.name
    if name not in _warned_ops:
        _warned_ops.add(name)
        warnings.warn(f"vmap: no batching rule for '{name}'; running it in a loop over the "
                      "batch", UserWarning, stacklevel=_user_stacklevel())
    return _batching.loop(ctx, args, bdims)


def _interpret(entry: _Entry, phys: list, batched: list, B: int, randomness: str) -> list:
    """Runs the traced graph on the batch: (tensor, batch dim 0 or None) per graph output."""
    env: Dict[int, tuple] = {}
    for v, (t, b) in enumerate(zip(phys, batched)):
        if v in entry.force and not b:
            t, b = _force(t, B), True
        env[v] = (t, 0 if b else None)

    def resolve(a):
        if isinstance(a, tuple) and len(a) == 2 and a[0] == "%":
            return env[a[1]]
        return a, None

    grad_was = _C.is_grad_enabled()
    try:
        for i, (op, args, outs, gm) in enumerate(entry.nodes):
            vals, bds = [], []
            for a in args:
                if isinstance(a, list) and any(isinstance(x, (tuple, Tensor)) for x in a):
                    pairs = [resolve(x) for x in a]
                    vals.append([p[0] for p in pairs])
                    bds.append([p[1] for p in pairs])
                else:
                    v, b = resolve(a)
                    vals.append(v)
                    bds.append(b)
            shapes = entry.shapes[i]
            ctx = _Ctx(B, op, randomness, shapes, entry.graph, i)
            _C._set_grad_enabled(gm)
            res, rb = _run_node(ctx, vals, bds, randomness)
            for o, r, b, want_shape in zip(outs, res, rb, shapes):
                if o < 0:
                    continue
                if r is None:
                    env[o] = (r, None)
                    continue
                logical = tuple(r.shape[1:]) if b is not None else tuple(r.shape)
                if logical != want_shape:
                    raise RuntimeError(f"[vmap] internal: the batching rule for '{op}' gave a "
                                       f"result of logical shape {logical}, the trace recorded "
                                       f"{want_shape}")
                want = entry.dtypes[o]
                if r.dtype != want:  # promotion differs when a 0-d value became 1-d
                    r = r.to(want)
                if o in entry.force and b is None:
                    r, b = _force(r, B), 0
                env[o] = (r, b)
    finally:
        _C._set_grad_enabled(grad_was)
    return [env[o] if o >= 0 else (c, None) for o, c in zip(entry.outputs, entry.consts)]


def _cat_chunks(chunks: List[list], sizes: List[int]) -> list:
    """The results of the chunks of a batch, joined along the batch dim."""
    out = []
    for k in range(len(chunks[0])):
        parts = [c[k] for c in chunks]
        if all(b is None for _, b in parts):
            out.append(parts[0])
            continue
        out.append((_C.cat([_batching._materialize(t, b, n)
                            for (t, b), n in zip(parts, sizes)], 0), 0))
    return out


def _place_outputs(func, entry: _Entry, results: list, out_dims, B: int):
    it = iter(results)
    leaves = [next(it) if s is None else (s[0], None) for s in entry.out_static]
    tree = optree.tree_unflatten(entry.out_spec, [x for x, _ in leaves])
    dims = _flat_dims(out_dims, tree, "out_dims", func)
    placed = []
    for k, ((x, b), d) in enumerate(zip(leaves, dims)):
        if not _is_t(x):
            if d is not None:
                raise ValueError(f"vmap({_fname(func)}, ...): `{_fname(func)}` must only "
                                 f"return Tensors, got type {type(x).__name__} for output {k}. "
                                 "Did you mean to set out_dims= to None for output?")
            placed.append(x)
            continue
        if d is None:
            if b is not None:
                raise ValueError(f"vmap({_fname(func)}, ..., out_dims={out_dims!r}): output {k} "
                                 "depends on a batched input, so its out_dim cannot be None")
            placed.append(x)
            continue
        rank = x.dim() - (1 if b is not None else 0) + 1
        if not -rank <= d < rank:
            raise ValueError(f"vmap({_fname(func)}, ..., out_dims={out_dims!r}): out_dim {d} "
                             f"out of range for output {k} of logical rank {rank - 1} (expected "
                             f"-{rank} <= out_dim < {rank})")
        d %= rank
        if b is None:
            x = _batching._materialize(x, None, B)
        placed.append(_movedim(x, 0, d) if d else x)
    return optree.tree_unflatten(entry.out_spec, placed)


def vmap(func: Callable, in_dims: _InDims = 0, out_dims: Union[int, None, tuple] = 0,
         randomness: str = "error", *, chunk_size: Optional[int] = None) -> Callable:
    """``vmap(f)(*batched_args)``: f of one example mapped over dim ``in_dims`` of its inputs,
    as torch.func.vmap. ``in_dims``/``out_dims`` are an int, None (not mapped) or pytrees of
    those matching the positional arguments / outputs; keyword arguments are not mapped.
    ``randomness``: 'error' (random ops raise), 'different' (independent draws per example)
    or 'same' (one draw shared by the batch). ``chunk_size`` runs the batch that many examples
    at a time. See Note [vmap over traced graphs]."""
    if randomness not in _RANDOMNESS:
        raise ValueError(f"vmap: randomness must be one of {_RANDOMNESS}, got {randomness!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"vmap: chunk_size must be None or a positive int, got {chunk_size!r}")
    cache: Dict[Any, _Entry] = {}

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        leaves, spec, dims, B = _batch_args(func, in_dims, args, kwargs)
        key = (spec, tuple(dims), _C.is_grad_enabled(), tuple(
            (_example_shape(x, d), x.dtype, x.requires_grad) if _is_t(x) else _static_key(x)
            for x, d in zip(leaves, dims)))
        entry = cache.get(key)
        if entry is None or not entry.valid():
            entry = _trace(func, leaves, spec, dims)
            cache[key] = entry
        phys, batched = [], []
        for x, d in zip(leaves, dims):
            if _is_t(x):
                phys.append(_movedim(x, d, 0) if d else x)
                batched.append(d is not None)
        if chunk_size is None or chunk_size >= B:
            results = _interpret(entry, phys, batched, B, randomness)
        else:
            chunks, sizes = [], []
            for s in range(0, B, chunk_size):
                n = min(chunk_size, B - s)
                part = [t.narrow(0, s, n) if b else t for t, b in zip(phys, batched)]
                chunks.append(_interpret(entry, part, batched, n, randomness))
                sizes.append(n)
            results = _cat_chunks(chunks, sizes)
        return _place_outputs(func, entry, results, out_dims, B)

    return wrapper
