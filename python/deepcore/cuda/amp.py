"""``deepcore.cuda.amp``: PyTorch's older spelling of ``deepcore.amp.GradScaler``."""
from __future__ import annotations

from ..amp.grad_scaler import GradScaler as _GradScaler


class GradScaler(_GradScaler):
    """``torch.cuda.amp.GradScaler(...)``, the same as ``torch.amp.GradScaler("cuda", ...)``."""
    _stacklevel = 3

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True) -> None:
        super().__init__("cuda", init_scale=init_scale, growth_factor=growth_factor,
                         backoff_factor=backoff_factor, growth_interval=growth_interval,
                         enabled=enabled)
