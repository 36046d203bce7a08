"""``deepcore.cuda``: the queries PyTorch programs make of ``torch.cuda``.

Scripts ask ``torch.cuda.is_available()`` before choosing a device, seed the GPU generator
unconditionally and build ``torch.cuda.amp.GradScaler(enabled=...)``. On a build without a
CUDA backend these answer the way PyTorch does on a machine without a GPU: availability is
False, seeding is a no-op (PyTorch seeds CUDA lazily and silently), and calls that need a
device raise.
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
        raise RuntimeError(f"torch.cuda.{what}: this build of deepcore has no CUDA backend")


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
