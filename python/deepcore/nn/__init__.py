"""deepcore.nn: neural-network building blocks with torch.nn's names and semantics."""
from . import (
    functional,
    init,
    utils,
)
from .modules import *  # noqa: F403
from .modules import __all__ as _modules_all
from .parameter import Buffer, Parameter

__all__ = ["functional", "init", "utils", "Parameter", "Buffer"] + list(_modules_all)
