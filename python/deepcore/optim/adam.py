"""Adam (and, with decoupled weight decay, AdamW), like torch.optim.Adam."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .. import _C
from .._C import Tensor
from .optimizer import Optimizer, ParamsT, _to_float

__all__ = ["Adam"]


class Adam(Optimizer):
    """Implements Adam (Kingma & Ba), with PyTorch's defaults and update order.

    Per parameter, at step t, with g its gradient (negated if ``maximize``)::

        g = g + weight_decay * p            (p = p * (1 - lr * weight_decay) if decoupled)
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) (amsgrad)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v or v_hat) / sqrt(1 - beta2^t) + eps)

    State per parameter: ``step`` (a float scalar tensor), ``exp_avg``, ``exp_avg_sq`` and,
    with amsgrad, ``max_exp_avg_sq``. The update of a whole param group is one fused C++ call.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: Optional[bool] = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False,
                 fused: Optional[bool] = None, decoupled_weight_decay: bool = False) -> None:
        self._reject_unsupported(differentiable=differentiable)
        betas = tuple(_to_float(b) for b in betas)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group: Dict[str, Any]) -> None:
        name = self._name
        lr, eps, betas, wd = group["lr"], group["eps"], group["betas"], group["weight_decay"]
        if not 0.0 <= _to_float(lr):
            raise ValueError(f"[{name}] Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"[{name}] Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"[{name}] Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"[{name}] Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= wd:
            raise ValueError(f"[{name}] Invalid weight_decay value: {wd}")

    def _update_group(self, group: Dict[str, Any], params: List[Tensor],
                      grads: List[Tensor]) -> None:
        amsgrad = bool(group["amsgrad"])
        exp_avgs, exp_avg_sqs, max_sqs, steps = [], [], [], []
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = self._step_state()
                state["exp_avg"] = self._zeros_state(p)
                state["exp_avg_sq"] = self._zeros_state(p)
            if amsgrad:
                if "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = self._zeros_state(p)
                max_sqs.append(state["max_exp_avg_sq"])
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        beta1, beta2 = group["betas"]
        _C._adam_step(params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps,
                      lr=_to_float(group["lr"]), beta1=_to_float(beta1), beta2=_to_float(beta2),
                      eps=float(group["eps"]), weight_decay=float(group["weight_decay"]),
                      amsgrad=amsgrad, maximize=bool(group["maximize"]),
                      decoupled_weight_decay=bool(group.get("decoupled_weight_decay", False)))
