"""``deepcore.amp``: ``GradScaler``, loss scaling for reduced-precision gradients."""
from .grad_scaler import GradScaler  # noqa: F401
