"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter), like torch.optim.AdamW."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from .adam import Adam
from .optimizer import ParamsT

__all__ = ["AdamW"]


class AdamW(Adam):
    """Adam whose weight decay multiplies the parameters by ``1 - lr * weight_decay`` each
    step instead of being added to the gradient. Default ``weight_decay=1e-2``."""

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: Optional[bool] = None,
                 capturable: bool = False, differentiable: bool = False,
                 fused: Optional[bool] = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        # A state saved from Adam still decays like AdamW once loaded here, as in PyTorch.
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
