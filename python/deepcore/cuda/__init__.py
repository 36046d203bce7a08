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


def _cublas_search_paths() -> list:
    """Where cuBLAS may be (csrc/cuda/cublas.h): $DEEPCORE_CUBLAS if set, then the nvidia-cublas
    wheel's copy (CUDA 13, then 12 layouts); the loader then tries the plain sonames."""
    import os
    paths = [os.environ["DEEPCORE_CUBLAS"]] if os.environ.get("DEEPCORE_CUBLAS") else []
    try:
        import nvidia
        roots = list(nvidia.__path__)
    except ImportError:
        roots = []
    for root in roots:
        for rel in ("cu13/lib/libcublas.so.13", "cublas/lib/libcublas.so.12"):
            if os.path.exists(os.path.join(root, rel)):
                paths.append(os.path.join(root, rel))
    return paths


if _BUILT:
    _C._cuda_cublas_search_paths(_cublas_search_paths())


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
    def _cuda_attributes(d: int) -> dict:
        return {"multi_processor_count": 1, "clock_rate": 0, "memory_clock_rate": 0,
                "memory_bus_width": 0, "l2_cache_size": 0}

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
    """Name, compute capability (major, minor), total memory, SM count, clocks (kHz), memory bus
    width (bits) and L2 size of a device, under torch's attribute names."""
    _require("get_device_properties")
    import types
    d = _index(device)
    major, minor = divmod(_rt()._cuda_capability(d), 10)
    return types.SimpleNamespace(name=_rt()._cuda_device_name(d), major=major, minor=minor,
                                 total_memory=_rt()._cuda_total_memory(d),
                                 **_rt()._cuda_attributes(d))


def get_device_capability(device=None):
    _require("get_device_capability")
    return divmod(_rt()._cuda_capability(_index(device)), 10)


# ---- streams and events (Note [Streams and events] in csrc/core/device_memory.h) ------------

class Stream:
    """A CUDA stream from the device's pool (32 per priority, handed out round-robin, as
    torch's). Work queued on one stream runs in order; ``with deepcore.cuda.stream(s):`` queues
    the ops of the block on ``s``. ``priority`` < 0 takes the high-priority pool."""

    def __new__(cls, device=None, priority: int = 0, **kwargs):
        _require("Stream")
        index = _index(device)
        handle = kwargs.get("stream_ptr")
        if handle is None:
            handle = _C._stream_from_pool(index, int(priority))
        self = super().__new__(cls)
        self.device = _device_of(index)
        self.cuda_stream = int(handle)
        self.priority = int(priority)
        return self

    def __init__(self, device=None, priority: int = 0, **kwargs):
        pass

    @classmethod
    def _wrap(cls, index: int, handle: int) -> "Stream":
        return cls(index, stream_ptr=handle)

    def query(self) -> bool:
        """True when all the work queued on the stream has finished."""
        return _C._stream_query(self.device.index, self.cuda_stream)

    def synchronize(self) -> None:
        """Waits until all the work queued on the stream has finished."""
        _C._stream_synchronize(self.device.index, self.cuda_stream)

    def wait_event(self, event: "Event") -> None:
        """Work queued on this stream from now on waits for ``event``."""
        event.wait(self)

    def wait_stream(self, stream: "Stream") -> None:
        """Work queued on this stream from now on waits for the work queued on ``stream`` so
        far."""
        self.wait_event(stream.record_event())

    def record_event(self, event: "Event | None" = None) -> "Event":
        """Records ``event`` (a new one if None) at this point of the stream."""
        event = Event() if event is None else event
        event.record(self)
        return event

    def __eq__(self, other) -> bool:
        return (isinstance(other, Stream) and self.cuda_stream == other.cuda_stream
                and self.device == other.device)

    def __hash__(self) -> int:
        return hash((self.cuda_stream, str(self.device)))

    def __repr__(self) -> str:
        return f"<deepcore.cuda.Stream device={self.device} cuda_stream={self.cuda_stream:#x}>"


class Event:
    """A CUDA event: a point in a stream that other streams wait for (``Stream.wait_event``), the
    host waits for (``synchronize``) or polls (``query``), and, with ``enable_timing=True``, the
    milliseconds between two of them (``elapsed_time``). Created on the device at its first
    record, as torch's."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False,
                 interprocess: bool = False):
        _require("Event")
        if interprocess:
            raise NotImplementedError("[cuda] Event(interprocess=True): events shared between "
                                      "processes are not supported")
        self.enable_timing = bool(enable_timing)
        self.blocking = bool(blocking)
        self._handle = None
        self._device = None

    def record(self, stream: "Stream | None" = None) -> None:
        """Marks the current point of ``stream`` (the current stream if None)."""
        stream = current_stream() if stream is None else stream
        if self._handle is None:
            self._device = stream.device.index
            self._handle = _C._event_create(self._device, self.enable_timing, self.blocking)
        elif stream.device.index != self._device:
            raise ValueError(f"[cuda] Event.record: the event belongs to cuda:{self._device}, "
                             f"the stream to {stream.device}")
        _C._event_record(self._device, self._handle, stream.cuda_stream)

    def wait(self, stream: "Stream | None" = None) -> None:
        """Work queued on ``stream`` (the current stream if None) from now on waits for this
        event. Waiting for an event never recorded returns at once, as in CUDA."""
        stream = current_stream() if stream is None else stream
        if self._handle is not None:
            _C._stream_wait_event(stream.device.index, stream.cuda_stream, self._handle)

    def query(self) -> bool:
        """True when the work before the event's record has finished (or it was never
        recorded)."""
        return self._handle is None or _C._event_query(self._handle)

    def synchronize(self) -> None:
        """Waits until the work before the event's record has finished."""
        if self._handle is not None:
            _C._event_synchronize(self._handle)

    def elapsed_time(self, end_event: "Event") -> float:
        """Milliseconds from this event's record to ``end_event``'s; both need
        ``enable_timing=True`` and must have been recorded (and ``end_event`` completed)."""
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("[cuda] Event.elapsed_time: both events must be created with "
                               "enable_timing=True")
        if self._handle is None or end_event._handle is None:
            raise RuntimeError("[cuda] Event.elapsed_time: both events must be recorded first")
        return _C._event_elapsed_ms(self._handle, end_event._handle)

    def __del__(self):
        if getattr(self, "_handle", None) is not None and _C is not None:
            try:
                _C._event_destroy(self._handle)
            except Exception:  # noqa: BLE001  (the backend may be gone at interpreter exit)
                pass

    def __repr__(self) -> str:
        state = "unrecorded" if self._handle is None else f"cuda:{self._device}"
        return f"<deepcore.cuda.Event {state} enable_timing={self.enable_timing}>"


def _device_of(index: int):
    from .. import device
    return device(f"cuda:{index}")


def current_stream(device=None) -> Stream:
    """The stream this thread queues work on for ``device`` (the default stream, unless a
    ``stream()`` block or ``set_stream`` changed it)."""
    _require("current_stream")
    index = _index(device)
    return Stream._wrap(index, _C._current_stream(index))


def default_stream(device=None) -> Stream:
    """The device's default stream (handle 0)."""
    _require("default_stream")
    return Stream._wrap(_index(device), 0)


def set_stream(stream: Stream) -> None:
    """Makes ``stream`` the current stream of its device for this thread."""
    _require("set_stream")
    if stream is not None:
        _C._set_current_stream(stream.device.index, stream.cuda_stream)


class StreamContext:
    """``with deepcore.cuda.stream(s):`` -- ops of the block queue their work on ``s``; the
    previous current stream of that device comes back at exit. ``None`` changes nothing."""

    def __init__(self, stream: "Stream | None"):
        _require("stream")
        self.stream = stream
        self._prev = None

    def __enter__(self):
        if self.stream is not None:
            index = self.stream.device.index
            self._prev = (index, _C._current_stream(index))
            _C._set_current_stream(index, self.stream.cuda_stream)
        return self.stream

    def __exit__(self, *exc):
        if self._prev is not None:
            _C._set_current_stream(*self._prev)
            self._prev = None
        return False


def stream(stream: "Stream | None") -> StreamContext:
    """The context that makes ``stream`` current on its device."""
    return StreamContext(stream)


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
