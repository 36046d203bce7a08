"""``Variable``: PyTorch's pre-0.4 wrapper, kept for the scripts that still import it.

Since PyTorch 0.4 every tensor is a Variable: ``Variable(t)`` returns a tensor sharing
``t``'s data, detached from its history (a leaf), that requires grad only if asked to; and
``isinstance(t, Variable)`` holds for every tensor. ``volatile=True`` no longer does anything
(``no_grad()`` replaced it) and says so.
"""
from __future__ import annotations

import warnings

from .._C import Tensor


class _VariableMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor)


class _ExecutionEngine:
    """``Variable._execution_engine``: the engine's entry points torch code reaches for."""

    @staticmethod
    def queue_callback(callback) -> None:
        """Runs `callback()` once the backward pass in progress finishes (RuntimeError outside
        one): DistributedDataParallel waits for its gradient all-reduces this way."""
        from .. import _C
        _C._queue_callback(callback)


class Variable(metaclass=_VariableMeta):
    _execution_engine = _ExecutionEngine()

    def __new__(cls, data, requires_grad: bool = False, volatile: bool = False):
        if volatile:
            warnings.warn("volatile was removed and now has no effect. Use "
                          "`with torch.no_grad():` instead.", UserWarning, stacklevel=2)
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        out = data.detach()
        return out.requires_grad_(True) if requires_grad else out
