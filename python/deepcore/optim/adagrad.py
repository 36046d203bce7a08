"""Adagrad, like torch.optim.Adagrad."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .. import _C
from .._C import Tensor
from .optimizer import Optimizer, ParamsT, _to_float

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Implements Adagrad (Duchi et al.), with PyTorch's defaults and update order.

    Per parameter, at step t, with g its gradient (negated if ``maximize``)::

        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g;  p = p - clr * g / (sqrt(s) + eps)

    State (created with the optimizer, like PyTorch): ``step`` and ``sum`` (filled with
    ``initial_accumulator_value``). The update of a whole param group is one fused C++ call.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: Optional[bool] = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 fused: Optional[bool] = None) -> None:
        self._reject_unsupported(differentiable=differentiable)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _init_state(self, group: Dict[str, Any], p: Tensor) -> None:
        import deepcore
        state = self.state[p]
        if len(state) == 0:
            state["step"] = self._step_state()
            state["sum"] = deepcore.full(p.shape, float(group["initial_accumulator_value"]),
                                         dtype=p.dtype)

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            self._init_state(group, p)

    def _check_group(self, group: Dict[str, Any]) -> None:
        for key, label in [("lr", "learning rate"), ("lr_decay", "lr_decay value"),
                           ("weight_decay", "weight_decay value"),
                           ("initial_accumulator_value", "initial_accumulator_value value"),
                           ("eps", "epsilon value")]:
            if not 0.0 <= _to_float(group[key]):
                raise ValueError(f"[Adagrad] Invalid {label}: {group[key]}")

    def _update_group(self, group: Dict[str, Any], params: List[Tensor],
                      grads: List[Tensor]) -> None:
        for p in params:
            self._init_state(group, p)
        sums = [self.state[p]["sum"] for p in params]
        steps = [self.state[p]["step"] for p in params]
        _C._adagrad_step(params, grads, sums, steps, lr=_to_float(group["lr"]),
                         lr_decay=float(group["lr_decay"]), eps=float(group["eps"]),
                         weight_decay=float(group["weight_decay"]),
                         maximize=bool(group["maximize"]))
