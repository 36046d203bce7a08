"""deepcore.nn: neural-network building blocks with torch.nn's names and semantics."""
from . import functional  # noqa: F401
from . import init  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from .parameter import Buffer, Parameter  # noqa: F401
from . import utils  # noqa: F401,E402

__all__ = ["functional", "init", "utils", "Parameter", "Buffer"] + list(_modules_all)
