"""RMSprop, like torch.optim.RMSprop."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .. import _C
from .._C import Tensor
from .optimizer import Optimizer, ParamsT, _to_float

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """Implements RMSprop (Hinton), with PyTorch's defaults and update order.

    Per parameter, with g its gradient (negated if ``maximize``)::

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        centered: a = lerp(a, g, 1 - alpha); d = sqrt(v - a * a) + eps, else d = sqrt(v) + eps
        momentum: b = momentum * b + g / d; p = p - lr * b, else p = p - lr * g / d

    State: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0) and ``grad_avg``
    (centered). The update of a whole param group is one fused C++ call.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, capturable: bool = False,
                 foreach: Optional[bool] = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        self._reject_unsupported(differentiable=differentiable)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _check_group(self, group: Dict[str, Any]) -> None:
        for key, label in [("lr", "learning rate"), ("eps", "epsilon value"),
                           ("momentum", "momentum value"), ("weight_decay", "weight_decay value"),
                           ("alpha", "alpha value")]:
            if not 0.0 <= _to_float(group[key]):
                raise ValueError(f"[RMSprop] Invalid {label}: {group[key]}")

    def _update_group(self, group: Dict[str, Any], params: List[Tensor],
                      grads: List[Tensor]) -> None:
        momentum, centered = float(group["momentum"]), bool(group["centered"])
        square_avgs, grad_avgs, bufs, steps = [], [], [], []
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = self._step_state()
                state["square_avg"] = self._zeros_state(p)
            if momentum > 0:
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = self._zeros_state(p)
                bufs.append(state["momentum_buffer"])
            if centered:
                if "grad_avg" not in state:
                    state["grad_avg"] = self._zeros_state(p)
                grad_avgs.append(state["grad_avg"])
            square_avgs.append(state["square_avg"])
            steps.append(state["step"])
        _C._rmsprop_step(params, grads, square_avgs, grad_avgs, bufs, steps,
                         lr=_to_float(group["lr"]), alpha=float(group["alpha"]),
                         eps=float(group["eps"]), weight_decay=float(group["weight_decay"]),
                         momentum=momentum, centered=centered, maximize=bool(group["maximize"]))
