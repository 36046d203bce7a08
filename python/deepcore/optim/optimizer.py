"""Optimizer base class with PyTorch's interface.

The base class keeps the bookkeeping (param groups, per-parameter state, state_dict in
PyTorch's format); each subclass gathers the parameters of a group that have a gradient and
hands them, with their state tensors, to one fused C++ update (``deepcore._C._<name>_step``).
"""
from __future__ import annotations

import copy
from collections import OrderedDict, defaultdict
from itertools import chain
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from .. import _trace_state
from .._C import Tensor

__all__ = ["Optimizer", "required"]

ParamsT = Union[Iterable[Tensor], Iterable[Dict[str, Any]]]


class _RequiredParameter:
    """Marks a hyperparameter that every param group must set."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _to_float(value: Any) -> float:
    """A hyperparameter as a Python float (a 1-element tensor is accepted, like PyTorch)."""
    if isinstance(value, Tensor):
        return float(value.item())
    return float(value)


def _scalar_dtype():
    """The dtype of state['step']: float64 when the default dtype is float64, like PyTorch."""
    import deepcore
    if deepcore.get_default_dtype() == deepcore.float64:
        return deepcore.float64
    return deepcore.float32


class _RemovableHandle:
    _next_id = 0

    def __init__(self, hooks: "OrderedDict[int, Callable]") -> None:
        self.hooks = hooks
        self.id = _RemovableHandle._next_id
        _RemovableHandle._next_id += 1

    def remove(self) -> None:
        self.hooks.pop(self.id, None)


class Optimizer:
    """Base class for all optimizers.

    Args:
        params: an iterable of tensors, or of dicts defining parameter groups (each with a
            ``"params"`` entry and optional per-group hyperparameters).
        defaults: default values of the hyperparameters, used by groups that don't set them.
    """

    def __init__(self, params: ParamsT, defaults: Dict[str, Any]) -> None:
        self.defaults = defaults
        self._step_pre_hooks: "OrderedDict[int, Callable]" = OrderedDict()
        self._step_post_hooks: "OrderedDict[int, Callable]" = OrderedDict()
        if isinstance(params, Tensor):
            raise TypeError(
                f"[{self._name}] params argument given to the optimizer should be an iterable "
                "of Tensors or dicts, but got a Tensor")
        if isinstance(params, (set, frozenset)):
            raise TypeError(
                f"[{self._name}] optimizer parameters need to be organized in ordered "
                "collections, but the ordering of tensors in sets will change between runs. "
                "Please use a list instead.")
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: List[Dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError(f"[{self._name}] optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def __getstate__(self) -> Dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_step_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_step_post_hooks", OrderedDict())

    def __repr__(self) -> str:
        out = self._name + " ("
        for i, group in enumerate(self.param_groups):
            out += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    out += f"    {key}: {group[key]}\n"
        return out + ")"

    # ---- parameter groups -----------------------------------------------------------------

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Adds a param group (e.g. layers unfrozen during fine-tuning)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"[{self._name}] param_group must be a dict, but got "
                            f"{type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                f"[{self._name}] optimizer parameters need to be organized in ordered "
                "collections, but the ordering of tensors in sets will change between runs. "
                "Please use a list instead.")
        else:
            params = list(params)
        names, tensors = [], []
        for p in params:
            if isinstance(p, tuple):  # (name, tensor) pairs from named_parameters()
                names.append(p[0])
                tensors.append(p[1])
            else:
                tensors.append(p)
        if names and len(names) != len(tensors):
            raise ValueError(f"[{self._name}] all optimizer params should be with/without names. "
                             "Some param names are missing")
        for p in tensors:
            if not isinstance(p, Tensor):
                raise TypeError(f"[{self._name}] optimizer can only optimize Tensors, but one of "
                                f"the params is {type(p).__module__}.{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"[{self._name}] can't optimize a non-leaf Tensor")
        param_group["params"] = tensors
        if names:
            param_group["param_names"] = names

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"[{self._name}] parameter group didn't specify a value of "
                                 f"required optimization parameter {name}")
            param_group.setdefault(name, default)
        self._check_group(param_group)

        ids = [id(p) for p in tensors]
        if len(ids) != len(set(ids)):
            raise ValueError(f"[{self._name}] a parameter group contains the same parameter "
                             "more than once")
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if not seen.isdisjoint(ids):
            raise ValueError(f"[{self._name}] some parameters appear in more than one "
                             "parameter group")
        self.param_groups.append(param_group)

    def _check_group(self, group: Dict[str, Any]) -> None:
        """Validates a group's hyperparameters (subclasses raise ValueError naming themselves)."""

    # ---- gradients and steps --------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Resets the gradients of all optimized tensors (to None by default)."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad_(False)
                    g.zero_()

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Performs one optimization step; returns what the closure returned (if given)."""
        if _trace_state.active:
            _trace_state.note_optimizer(self)
        loss = None
        if closure is not None:
            import deepcore
            with deepcore.enable_grad():
                loss = closure()
        for hook in list(self._step_pre_hooks.values()):
            hook(self, (), {})
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update_group(group, params, [p.grad for p in params])
        for hook in list(self._step_post_hooks.values()):
            hook(self, (), {})
        return loss

    def _update_group(self, group: Dict[str, Any], params: List[Tensor],
                      grads: List[Tensor]) -> None:
        raise NotImplementedError

    def register_step_pre_hook(self, hook: Callable) -> _RemovableHandle:
        """hook(optimizer, args, kwargs) runs before each step."""
        handle = _RemovableHandle(self._step_pre_hooks)
        self._step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable) -> _RemovableHandle:
        """hook(optimizer, args, kwargs) runs after each step."""
        handle = _RemovableHandle(self._step_post_hooks)
        self._step_post_hooks[handle.id] = hook
        return handle

    def _zeros_state(self, p: Tensor) -> Tensor:
        import deepcore
        return deepcore.zeros(p.shape, dtype=p.dtype)

    def _step_state(self) -> Tensor:
        import deepcore
        return deepcore.tensor(0.0, dtype=_scalar_dtype())

    # ---- state dict -------------------------------------------------------------------------

    def state_dict(self) -> Dict[str, Any]:
        """The optimizer state in PyTorch's format.

        ``state`` maps each parameter's index (counted across groups, in order) to its state
        dict; ``param_groups`` holds the hyperparameters with ``params`` as index lists. The
        state tensors are the live ones (not copies), like PyTorch.
        """
        index: Dict[int, int] = {}
        start = 0

        def pack(group: Dict[str, Any]) -> Dict[str, Any]:
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        groups = [pack(g) for g in self.param_groups]
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restores a state from :meth:`state_dict` (of this or another optimizer with the
        same group layout). State tensors are copied and cast to their parameter's dtype;
        ``step`` keeps its own dtype."""
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError(f"[{self._name}] loaded state dict has a different number of "
                             "parameter groups")
        for g, s in zip(groups, saved_groups):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"[{self._name}] loaded state dict contains a parameter group "
                                 "that doesn't match the size of optimizer's group")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))

        def cast(param: Tensor, value: Any, key: Any = None) -> Any:
            if isinstance(value, Tensor):
                if key == "step":
                    return value.detach().clone()
                if value.dtype.is_floating_point and value.shape != param.shape:
                    raise ValueError(
                        f"[{self._name}] loaded state '{key}' has shape {tuple(value.shape)} "
                        f"but its parameter has shape {tuple(param.shape)}")
                out = value.detach().to(param.dtype) if value.dtype.is_floating_point \
                    else value.detach()
                return out.clone().contiguous()
            if isinstance(value, dict):
                return {k: cast(param, v, k) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(cast(param, v) for v in value)
            return copy.deepcopy(value)

        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                state[id_map[k]] = cast(id_map[k], v)
            else:
                state[k] = v

        new_groups = []
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            new_groups.append(s)
        self.__setstate__({"state": state, "param_groups": new_groups})

    # ---- helpers for subclasses -----------------------------------------------------------

    def _reject_unsupported(self, **flags: Any) -> None:
        for name, value in flags.items():
            if value:
                raise ValueError(
                    f"[{self._name}] {name}=True is not supported: deepcore's optimizer steps "
                    "are fused C++ kernels that record no autograd graph")
