"""Alias of deepcore.models under torchvision's path (``deepcore.vision.models.resnet18``)."""
from ..models import *  # noqa: F401,F403
from ..models import __all__  # noqa: F401
