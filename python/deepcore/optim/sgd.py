"""Stochastic gradient descent (optionally with momentum), like torch.optim.SGD."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .. import _C
from .._C import Tensor
from .optimizer import Optimizer, ParamsT, _to_float

__all__ = ["SGD"]


class SGD(Optimizer):
    """Implements stochastic gradient descent (optionally with momentum).

    Per parameter, with g its gradient (negated if ``maximize``)::

        g = g + weight_decay * p
        b = g (first step) or momentum * b + (1 - dampening) * g
        g = g + momentum * b (nesterov) or b
        p = p - lr * g

    The update of a whole param group is one fused C++ call.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: Optional[bool] = None,
                 differentiable: bool = False, fused: Optional[bool] = None) -> None:
        self._reject_unsupported(differentiable=differentiable)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _check_group(self, group: Dict[str, Any]) -> None:
        if _to_float(group["lr"]) < 0.0:
            raise ValueError(f"[SGD] Invalid learning rate: {group['lr']}")
        if group["momentum"] < 0.0:
            raise ValueError(f"[SGD] Invalid momentum value: {group['momentum']}")
        if group["weight_decay"] < 0.0:
            raise ValueError(f"[SGD] Invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("[SGD] Nesterov momentum requires a momentum and zero dampening")

    def _update_group(self, group: Dict[str, Any], params: List[Tensor],
                      grads: List[Tensor]) -> None:
        momentum = float(group["momentum"])
        bufs = [self.state[p].get("momentum_buffer") for p in params] if momentum != 0 else []
        new_bufs = _C._sgd_step(
            params, grads, bufs, lr=_to_float(group["lr"]), momentum=momentum,
            dampening=float(group["dampening"]), weight_decay=float(group["weight_decay"]),
            nesterov=bool(group["nesterov"]), maximize=bool(group["maximize"]))
        for p, b in zip(params, new_bufs):
            self.state[p]["momentum_buffer"] = b
