"""``deepcore.accelerator``: PyTorch's device-agnostic accelerator queries.

Current tutorials choose their device with
``torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"``.
deepcore's only accelerator is CUDA (when built with it); without one, ``is_available`` is
False and ``current_accelerator`` returns None, as PyTorch does on a CPU-only machine.
"""
from __future__ import annotations

from . import cuda as _cuda


def is_available() -> bool:
    return _cuda.is_available()


def device_count() -> int:
    return _cuda.device_count()


def current_accelerator(check_available: bool = False):
    if not _cuda.is_available():
        return None
    from ._tensor import device
    return device("cuda")


def current_device_index() -> int:
    return _cuda.current_device()


def synchronize(device=None) -> None:
    _cuda.synchronize(device)
