"""deepcore.vision: torchvision-style paths; ``deepcore.vision.models`` re-exports
deepcore.models."""
from . import models

__all__ = ["models"]
