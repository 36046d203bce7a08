"""deepcore.nn: neural-network building blocks with torch.nn's names and semantics."""
from . import (
    functional,
    init,
    parallel,
    utils,
)
from .modules import *  # noqa: F403
from .modules import __all__ as _modules_all
from .parameter import Buffer, Parameter
from .parallel import DataParallel

__all__ = ["functional", "init", "parallel", "utils", "Parameter", "Buffer", "DataParallel"]
__all__ += list(_modules_all)
