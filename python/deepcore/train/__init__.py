"""``deepcore.train``: the training loop behind ``keras.Model.fit``, for any nn.Module."""
from .trainer import Trainer, fit  # noqa: F401
from .state import capture_rng, restore_rng, load_state, save_state  # noqa: F401

__all__ = ["Trainer", "fit", "capture_rng", "restore_rng", "load_state", "save_state"]
