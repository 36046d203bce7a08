"""``deepcore.amp``: ``autocast`` (mixed precision by op) and ``GradScaler`` (loss scaling for
float16 gradients)."""
from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: F401
from .grad_scaler import GradScaler  # noqa: F401
