"""deepcore.nn: neural-network building blocks with torch.nn's names and semantics.

It also holds the activations of ``jax.nn`` as plain functions (``sigmoid``, ``relu``,
``softmax``, ``log_softmax``, ``gelu``, ``tanh``, ``softplus``, ``silu``), with JAX's
signatures, so that ``import deepcore as jax`` runs ``jax.nn.sigmoid(...)``.
"""
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
from .functional import relu, sigmoid, silu, softplus, tanh  # noqa: F401  (jax.nn's)

__all__ = ["functional", "init", "parallel", "utils", "Parameter", "Buffer", "DataParallel"]
__all__ += list(_modules_all)


def softmax(x, axis: int = -1):
    """jax.nn.softmax: ``exp(x)`` normalised to sum to 1 along ``axis``."""
    return functional.softmax(x, dim=axis)


def log_softmax(x, axis: int = -1):
    """jax.nn.log_softmax: ``x`` minus its logsumexp along ``axis``."""
    return functional.log_softmax(x, dim=axis)


def gelu(x, approximate: bool = True):
    """jax.nn.gelu: the tanh approximation by default (as JAX), the exact erf form with
    ``approximate=False``."""
    return functional.gelu(x, approximate="tanh" if approximate else "none")
