"""deepcore.func: torch.func's reverse-mode transforms over deepcore's autograd engine.

``grad``, ``value_and_grad`` and ``vjp`` take functions of tensors (or of pytrees of tensors:
dicts, lists, tuples, namedtuples; handled by the ``optree`` package) and return functions,
so they compose: ``grad(grad(f))`` is the second derivative.

Note [Transforms over the tape]
Each call marks the chosen arguments as the differentiation inputs of one level: a tensor
that already takes part in an outer level's graph is aliased (``view_as``), so the inner
gradient stays a differentiable function of the outer input; any other tensor is detached
and made to require grad. The inner level then runs ``autograd.grad`` with
``create_graph=True`` whenever an outer level is recording, so nesting gives higher
derivatives, and leaves the callers' ``.grad`` fields untouched, as torch.func does.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import optree

from .. import _C
from .._C import Tensor
from .._creation import zeros_like as _zeros_like
from ..autograd import grad as _autograd_grad
from ..autograd.grad_mode import enable_grad as _enable_grad
from ._vmap import vmap

__all__ = ["grad", "value_and_grad", "vjp", "functional_call", "vmap", "jvp", "jacfwd", "jacrev",
           "hessian"]

_ArgNums = Union[int, Tuple[int, ...]]


def _is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def _mark(t: Tensor) -> Tensor:
    """A differentiation input for this level (Note [Transforms over the tape])."""
    if not t.dtype.is_floating_point:
        raise TypeError(f"[deepcore.func] can only differentiate with respect to floating-point "
                        f"tensors, got one of dtype {t.dtype} and shape {tuple(t.shape)}")
    if t.requires_grad:
        return t.view_as(t)
    return t.detach().requires_grad_()


def _mark_tree(tree) -> Tuple[list, Any]:
    """The leaves of ``tree`` with its tensors marked for this level, and its structure."""
    leaves, spec = optree.tree_flatten(tree)
    return [_mark(x) if _is_tensor(x) else x for x in leaves], spec


def _regroup(marked_trees, flat, keep_graph: bool) -> list:
    """Gradients ``flat`` (one per marked tensor, in order) put back into the structure of each
    marked tree, None where a leaf was not a tensor."""
    it = iter(flat)
    out = []
    for marked, spec in marked_trees:
        g = [(next(it) if keep_graph else next(it).detach()) if _is_tensor(x) else None
             for x in marked]
        out.append(optree.tree_unflatten(spec, g))
    return out


def _argnums(argnums: _ArgNums, nargs: int, name: str) -> Tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise ValueError(f"[{name}] argnums must name at least one argument")
    out = []
    for n in nums:
        if not isinstance(n, int) or not -nargs <= n < nargs:
            raise ValueError(f"[{name}] argnums {argnums!r} out of range for {nargs} positional "
                             "argument(s)")
        out.append(n % nargs)
    return tuple(out)


def _grads(outputs, inputs, cotangents, create_graph: bool):
    """d(outputs . cotangents)/d(inputs), zeros where an input does not take part (and for
    every input when no output depends on any)."""
    live = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
    if not live:
        return [_zeros_like(i) for i in inputs]
    res = _autograd_grad([o for o, _ in live], inputs,
                         grad_outputs=[c for _, c in live] if live[0][1] is not None else None,
                         retain_graph=True, create_graph=create_graph, allow_unused=True)
    return [_zeros_like(i) if r is None else r for r, i in zip(res, inputs)]


def _split_aux(result, has_aux: bool, name: str):
    """(output, aux) of f's result; aux is None without has_aux."""
    if not has_aux:
        return result, None
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(f"[{name}] has_aux=True needs f to return an (output, aux) pair")
    return result


def _recording(*trees) -> bool:
    """Whether an outer level (or the caller's own graph) records through these inputs."""
    return _C.is_grad_enabled() and any(
        t.requires_grad for tree in trees for t in optree.tree_leaves(tree) if _is_tensor(t))


def value_and_grad(func: Callable, argnums: _ArgNums = 0, has_aux: bool = False) -> Callable:
    """``value_and_grad(f)(*args)`` -> ``(f(*args), df/dargs[argnums])``; with ``has_aux``, f
    returns ``(value, aux)`` and the result is ``((value, aux), grads)``. f's value must be a
    scalar (0-d) floating-point tensor, as in torch.func. The gradients have the structure of the arguments."""

    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "value_and_grad")
        outer = _recording(*[args[n] for n in nums])
        args = list(args)
        leaves_per_arg = []
        with _enable_grad():
            for n in nums:
                marked, spec = _mark_tree(args[n])
                if not any(_is_tensor(x) for x in marked):
                    raise TypeError(f"[value_and_grad] argument {n} holds no tensor to "
                                    "differentiate with respect to")
                leaves_per_arg.append((marked, spec))
                args[n] = optree.tree_unflatten(spec, marked)
            value, aux = _split_aux(func(*args, **kwargs), has_aux, "value_and_grad")
            if not _is_tensor(value) or value.dim() != 0 or \
                    not value.dtype.is_floating_point:
                raise TypeError("[value_and_grad] f must return a scalar (0-d) floating-point "
                                "tensor, got " + (f"shape {tuple(value.shape)} of dtype "
                                                  f"{value.dtype}" if _is_tensor(value)
                                                  else type(value).__name__))
            inputs = [x for marked, _ in leaves_per_arg for x in marked if _is_tensor(x)]
            flat = _grads([value], inputs, [None], outer)
        grads = _regroup(leaves_per_arg, flat, outer)
        grads = grads[0] if isinstance(argnums, int) else tuple(grads)
        if not outer:
            value = value.detach()
        return ((value, aux), grads) if has_aux else (value, grads)

    return wrapper


def grad(func: Callable, argnums: _ArgNums = 0, has_aux: bool = False) -> Callable:
    """``grad(f)(*args)``: the gradient of f's scalar value with respect to
    ``args[argnums]`` (a tuple of gradients for a tuple of argnums); ``(grads, aux)`` with
    ``has_aux``."""
    vg = value_and_grad(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        if has_aux:
            (_, aux), grads = vg(*args, **kwargs)
            return grads, aux
        return vg(*args, **kwargs)[1]

    return wrapper


def vjp(func: Callable, *primals, has_aux: bool = False):
    """``vjp(f, *primals)`` -> ``(f(*primals), vjp_fn)``: ``vjp_fn(cotangents)`` returns the
    cotangents pulled back to every primal (a tuple, one per primal, with its structure).
    ``cotangents`` has the structure of f's output. With ``has_aux``, f returns
    ``(output, aux)`` and ``aux`` comes last."""
    outer = _recording(*primals)
    flat_primals = []
    args = []
    with _enable_grad():
        for p in primals:
            marked, spec = _mark_tree(p)
            flat_primals.append((marked, spec))
            args.append(optree.tree_unflatten(spec, marked))
        output, aux = _split_aux(func(*args), has_aux, "vjp")
    out_leaves, out_spec = optree.tree_flatten(output)
    for o in out_leaves:
        if not _is_tensor(o):
            raise TypeError(f"[vjp] f must return tensors (or pytrees of them), got "
                            f"{type(o).__name__}")
    inputs = [x for marked, _ in flat_primals for x in marked if _is_tensor(x)]

    def vjp_fn(cotangents):
        ct_leaves, ct_spec = optree.tree_flatten(cotangents)
        if ct_spec != out_spec:
            raise ValueError(f"[vjp] cotangents must have the structure of f's output "
                             f"({out_spec}), got {ct_spec}")
        for o, c in zip(out_leaves, ct_leaves):
            if tuple(o.shape) != tuple(c.shape):
                raise ValueError(f"[vjp] cotangent of shape {tuple(c.shape)} for an output "
                                 f"of shape {tuple(o.shape)}")
        record = outer or _recording(cotangents)
        with _enable_grad():
            flat = _grads(out_leaves, inputs, ct_leaves, record)
        return tuple(_regroup(flat_primals, flat, record))

    out = output if outer else optree.tree_map(
        lambda t: t.detach() if _is_tensor(t) else t, output)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def functional_call(module, parameter_and_buffer_dicts: Union[Dict[str, Any],
                                                              Sequence[Dict[str, Any]]],
                    args: Any = (), kwargs: Optional[Dict[str, Any]] = None, *,
                    tie_weights: bool = True, strict: bool = False):
    """Calls ``module(*args, **kwargs)`` with its parameters and buffers replaced by the
    tensors of ``parameter_and_buffer_dicts`` (keys as in ``state_dict``), then restores them.
    With ``tie_weights``, a tensor given for one name of a tied parameter serves every name
    of it. ``strict`` requires every parameter and buffer to be given."""
    if isinstance(parameter_and_buffer_dicts, dict):
        given = dict(parameter_and_buffer_dicts)
    else:
        given = {}
        for d in parameter_and_buffer_dicts:
            overlap = set(given) & set(d)
            if overlap:
                raise ValueError(f"[functional_call] {sorted(overlap)} given more than once")
            given.update(d)
    slots = {}  # name -> (owner module, attribute, registry dict)
    for prefix, mod in module.named_modules(remove_duplicate=False):
        for reg in (mod._parameters, mod._buffers):
            for attr in reg:
                slots[f"{prefix}.{attr}" if prefix else attr] = (mod, attr, reg)
    unknown = sorted(set(given) - set(slots))
    if unknown:
        raise ValueError(f"[functional_call] {type(module).__name__} has no parameter or "
                         f"buffer named {unknown}")
    if tie_weights:  # a value given for one name of a shared tensor serves all its names
        by_tensor: Dict[int, list] = {}
        for name, (mod, attr, reg) in slots.items():
            if reg[attr] is not None:
                by_tensor.setdefault(id(reg[attr]), []).append(name)
        for names in by_tensor.values():
            chosen = [n for n in names if n in given]
            if chosen:
                for n in names:
                    given.setdefault(n, given[chosen[0]])
    if strict:
        missing = sorted(set(slots) - set(given))
        if missing:
            raise ValueError(f"[functional_call] strict=True and no value for {missing}")
    saved = []
    try:
        for name, value in given.items():
            mod, attr, reg = slots[name]
            saved.append((reg, attr, reg[attr]))
            reg[attr] = value
        if not isinstance(args, tuple):
            args = (args,)
        return module(*args, **(kwargs or {}))
    finally:
        for reg, attr, old in reversed(saved):
            reg[attr] = old


from ._forward import hessian, jacfwd, jacrev, jvp  # noqa: E402  (uses vjp above)
