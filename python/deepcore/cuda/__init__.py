"""``deepcore.cuda``: the queries PyTorch programs make of ``torch.cuda``.

Scripts ask ``torch.cuda.is_available()`` before choosing a device, seed the GPU generator
unconditionally, read memory statistics and build ``torch.cuda.amp.GradScaler(enabled=...)``.
On a build without a CUDA backend these answer the way PyTorch does on a machine without a
GPU: availability is False, the device count and memory statistics are 0, seeding and
``empty_cache`` are no-ops (PyTorch seeds CUDA lazily and silently), and everything that needs
a device (streams, events, device properties, synchronize) raises a RuntimeError saying that
deepcore was built without CUDA. A CUDA build (``DEEPCORE_CUDA=1 pip install .``) on a machine
whose driver reports no device answers the same, and those calls say "no CUDA device".
"""
from __future__ import annotations

from .. import _C
from . import amp  # noqa: F401

_BUILT = bool(_C._build_info()["cuda"])


def is_available() -> bool:
    """True when deepcore was built with CUDA and the driver reports a device."""
    return device_count() > 0


def device_count() -> int:
    return _C._device_count("cuda")


def _fake() -> bool:
    """True while the tests' fake device stands in for a GPU (Note [The fake device] in
    csrc/dispatch/fake_device.cpp)."""
    return (_C._device_backend("cuda") or "").startswith("fake")


class _FakeRuntime:
    """The device queries of the fake device: one device, index 0, host memory."""

    @staticmethod
    def _cuda_device_count() -> int:
        return 1

    @staticmethod
    def _cuda_current_device() -> int:
        return 0

    @staticmethod
    def _cuda_set_device(d: int) -> None:
        if d != 0:
            raise IndexError(f"[cuda] device cuda:{d} does not exist: there is 1 CUDA device")

    @staticmethod
    def _cuda_synchronize(d: int) -> None:
        _FakeRuntime._cuda_set_device(d)

    @staticmethod
    def _cuda_empty_cache(d: int) -> None:
        pass

    @staticmethod
    def _cuda_device_name(d: int) -> str:
        return "deepcore fake device (host memory)"

    @staticmethod
    def _cuda_capability(d: int) -> int:
        return 0

    @staticmethod
    def _cuda_total_memory(d: int) -> int:
        return 0

    @staticmethod
    def _cuda_memory_stats(d: int) -> dict:
        now, peak = _C._fake_cuda_allocated()
        return {"allocated_bytes": now, "max_allocated_bytes": peak, "reserved_bytes": now,
                "max_reserved_bytes": peak}

    @staticmethod
    def _cuda_reset_peak(d: int) -> None:
        _C._fake_cuda_reset_peak()


def _rt():
    """The runtime queries: the CUDA build's bindings, or the fake device's."""
    return _FakeRuntime if _fake() else _C


def is_initialized() -> bool:
    return False


def _require(what: str) -> None:
    """RuntimeError unless a device is there: `what` (deepcore.cuda.<what>, or a dotted name)
    needs one."""
    name = what if "." in what else f"deepcore.cuda.{what}"
    if _fake():
        return
    if not _BUILT:
        raise RuntimeError(f"[cuda] {name}: deepcore was built without CUDA")
    if _rt()._cuda_device_count() == 0:
        raise RuntimeError(f"[cuda] {name}: no CUDA device: deepcore was built with CUDA, but "
                           "the driver reports no device on this machine")


def _index(device) -> int:
    """A device index from None (the current device), an int, "cuda:1" or a deepcore.device."""
    if device is None:
        return 0 if _fake() else _rt()._cuda_current_device()
    if isinstance(device, int):
        return device
    text = str(device)
    if text == "cuda":
        return 0 if _fake() else _rt()._cuda_current_device()
    if text.startswith("cuda:") and text[5:].isdigit():
        return int(text[5:])
    raise ValueError(f"[cuda] expected a CUDA device, got {device!r}")


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
    """Returns the cached blocks of every device to the driver; without a device there are
    none."""
    for d in range(device_count()):
        _rt()._cuda_empty_cache(d)


def synchronize(device=None) -> None:
    _require("synchronize")
    _rt()._cuda_synchronize(_index(device))


def current_device() -> int:
    _require("current_device")
    return _rt()._cuda_current_device()


def set_device(device) -> None:
    _require("set_device")
    _rt()._cuda_set_device(_index(device))


def get_device_name(device=None) -> str:
    _require("get_device_name")
    return _rt()._cuda_device_name(_index(device))


def get_device_properties(device=None):
    """Name, compute capability (major, minor) and total memory of a device."""
    _require("get_device_properties")
    import types
    d = _index(device)
    major, minor = divmod(_rt()._cuda_capability(d), 10)
    return types.SimpleNamespace(name=_rt()._cuda_device_name(d), major=major, minor=minor,
                                 total_memory=_rt()._cuda_total_memory(d))


def get_device_capability(device=None):
    _require("get_device_capability")
    return divmod(_rt()._cuda_capability(_index(device)), 10)


def current_stream(device=None):
    _require("current_stream")
    raise NotImplementedError("[cuda] deepcore.cuda.current_stream: streams are not built yet")


def default_stream(device=None):
    _require("default_stream")
    raise NotImplementedError("[cuda] deepcore.cuda.default_stream: streams are not built yet")


def stream(stream):
    """The context that makes `stream` current; needs a CUDA backend."""
    _require("stream")
    raise NotImplementedError("[cuda] deepcore.cuda.stream: streams are not built yet")


class Stream:
    """A CUDA stream; needs a CUDA backend."""

    def __init__(self, device=None, priority: int = 0, **kwargs):
        _require("Stream")
        raise NotImplementedError("[cuda] deepcore.cuda.Stream: streams are not built yet")


class Event:
    """A CUDA event; needs a CUDA backend."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False):
        _require("Event")
        raise NotImplementedError("[cuda] deepcore.cuda.Event: events are not built yet")


# Memory statistics (Note [Caching device allocator]): 0 without a device, as PyTorch reports
# before any allocation.
def _stat(device, key: str) -> int:
    if device_count() == 0:
        return 0
    return int(_rt()._cuda_memory_stats(_index(device))[key])


def memory_allocated(device=None) -> int:
    return _stat(device, "allocated_bytes")


def max_memory_allocated(device=None) -> int:
    return _stat(device, "max_allocated_bytes")


def memory_reserved(device=None) -> int:
    return _stat(device, "reserved_bytes")


def max_memory_reserved(device=None) -> int:
    return _stat(device, "max_reserved_bytes")


def reset_peak_memory_stats(device=None) -> None:
    """Resets the peak statistics of a device; without a device there are none."""
    if device_count():
        _rt()._cuda_reset_peak(_index(device))
