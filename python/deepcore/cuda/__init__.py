"""``deepcore.cuda``: the queries PyTorch programs make of ``torch.cuda``.

Scripts ask ``torch.cuda.is_available()`` before choosing a device, seed the GPU generator
unconditionally, read memory statistics and build ``torch.cuda.amp.GradScaler(enabled=...)``.
On a build without a CUDA backend these answer the way PyTorch does on a machine without a
GPU: availability is False, the device count and memory statistics are 0, seeding and
``empty_cache`` are no-ops (PyTorch seeds CUDA lazily and silently), and everything that needs
a device (streams, events, device properties, synchronize) raises a RuntimeError saying that
deepcore was built without CUDA.
"""
from __future__ import annotations

from .. import _C
from . import amp  # noqa: F401

_BUILT = bool(_C._build_info()["cuda"])


def is_available() -> bool:
    return _BUILT


def device_count() -> int:
    return 1 if _BUILT else 0  # a CUDA build drives one device (no device query yet)


def is_initialized() -> bool:
    return False


def _require(what: str) -> None:
    if not _BUILT:
        raise RuntimeError(f"[cuda] deepcore.cuda.{what}: deepcore was built without CUDA")


def is_bf16_supported(including_emulation: bool = True) -> bool:
    return False


def manual_seed(seed: int) -> None:
    """Seeds the GPU generator; without a CUDA backend there is none, and this does nothing."""


def manual_seed_all(seed: int) -> None:
    """Seeds every GPU generator; without a CUDA backend this does nothing."""


def seed() -> None:
    pass


def seed_all() -> None:
    pass


def empty_cache() -> None:
    """Frees cached GPU memory; without a CUDA backend nothing is cached."""


def synchronize(device=None) -> None:
    _require("synchronize")


def current_device() -> int:
    _require("current_device")
    return 0


def set_device(device) -> None:
    _require("set_device")


def get_device_name(device=None) -> str:
    _require("get_device_name")
    return ""


def get_device_properties(device=None):
    _require("get_device_properties")


def get_device_capability(device=None):
    _require("get_device_capability")


def current_stream(device=None):
    _require("current_stream")


def default_stream(device=None):
    _require("default_stream")


def stream(stream):
    """The context that makes `stream` current; needs a CUDA backend."""
    _require("stream")


class Stream:
    """A CUDA stream; needs a CUDA backend."""

    def __init__(self, device=None, priority: int = 0, **kwargs):
        _require("Stream")


class Event:
    """A CUDA event; needs a CUDA backend."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False):
        _require("Event")


# Memory statistics: 0 without a CUDA backend, as PyTorch reports before any allocation.
def memory_allocated(device=None) -> int:
    return 0


def max_memory_allocated(device=None) -> int:
    return 0


def memory_reserved(device=None) -> int:
    return 0


def max_memory_reserved(device=None) -> int:
    return 0


def reset_peak_memory_stats(device=None) -> None:
    """Resets the peak statistics; without a CUDA backend there are none."""
