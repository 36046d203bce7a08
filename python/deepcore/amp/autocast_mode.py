"""``deepcore.autocast``: mixed precision by op, as ``torch.autocast``.

Inside the context (or a function decorated with it) the ops that gain from 16-bit arithmetic
(matmul, linear, convolution, bmm, attention) cast their floating inputs to the autocast dtype,
and the ops that lose accuracy in it (losses, prod) to float32; the others run in the dtype
they are given. The lists are torch's for the CPU; each op's policy is its ``amp=`` word in
csrc/ops/ops.schema, and the casts happen in C++ as the op is called (Note [Precision
policies] in csrc/dispatch/precision.h). The casts are differentiable ops, so ``backward``
after the context gives each parameter a gradient of its own dtype.

    with deepcore.autocast("cpu", dtype=deepcore.bfloat16):
        loss = loss_fn(model(x), y)
    loss.backward()
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

from .. import _C

_DEFAULT_DTYPES = {"cpu": _C.dtype.bfloat16, "cuda": _C.dtype.float16}


def _device_type(device_type) -> str:
    name = str(device_type)
    kind = name.split(":", 1)[0]
    if kind not in _DEFAULT_DTYPES:
        raise ValueError(f"[autocast] device_type must be 'cpu' or 'cuda', got {name!r}")
    return kind


class autocast:  # noqa: N801  (torch's name)
    def __init__(self, device_type: str, dtype: Optional[_C.dtype] = None,
                 enabled: bool = True, cache_enabled: Optional[bool] = None) -> None:
        self.device = _device_type(device_type)
        self.fast_dtype = _DEFAULT_DTYPES[self.device] if dtype is None else dtype
        if self.fast_dtype not in (_C.dtype.bfloat16, _C.dtype.float16):
            raise ValueError(f"[autocast] dtype must be deepcore.bfloat16 or deepcore.float16, "
                             f"got {self.fast_dtype}")
        self._enabled = bool(enabled)
        self._saved: list[tuple[bool, Any]] = []

    def __enter__(self) -> "autocast":
        self._saved.append(_C._autocast_state())
        if self._enabled:
            _C._set_autocast(True, self.fast_dtype)
        else:
            _C._set_autocast(False, self._saved[-1][1])
        return self

    def __exit__(self, *exc) -> None:
        enabled, dtype = self._saved.pop()
        _C._set_autocast(enabled, dtype)

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)
        return wrapper


def is_autocast_enabled(device_type: Optional[str] = None) -> bool:
    if device_type is not None:
        _device_type(device_type)
    return bool(_C._autocast_state()[0])


def get_autocast_dtype(device_type: str = "cpu") -> _C.dtype:
    _device_type(device_type)
    enabled, dtype = _C._autocast_state()
    return dtype if enabled else _DEFAULT_DTYPES[_device_type(device_type)]
