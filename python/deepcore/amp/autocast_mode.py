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
        # Without a dtype, the one in force (set by an enclosing context), as torch does.
        self.fast_dtype = get_autocast_dtype(self.device) if dtype is None else dtype
        if self.fast_dtype not in (_C.dtype.bfloat16, _C.dtype.float16):
            raise ValueError(f"[autocast] dtype must be deepcore.bfloat16 or deepcore.float16, "
                             f"got {self.fast_dtype}")
        self._enabled = bool(enabled)
        self._saved: list[tuple[bool, Any]] = []

    def __enter__(self) -> "autocast":
        self._saved.append(_C._autocast_state())
        _C._set_autocast(self._enabled, self.fast_dtype)
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
    """The dtype autocast casts to on this thread (bfloat16 until a context sets another)."""
    _device_type(device_type)
    return _C._autocast_state()[1]


def _cast_inputs(policy: str) -> Callable[[Callable], Callable]:
    """The autocast policy of an op written in Python ("lower" or "fp32"): while autocast is
    on, its floating tensor arguments (float64 excepted) are cast before it runs, as the
    precision step of the C++ bindings does (Note [Precision policies])."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            enabled, low = _C._autocast_state()
            if not enabled:
                return fn(*args, **kwargs)
            to = low if policy == "lower" else _C.dtype.float32

            def cast(a):
                if isinstance(a, _C.Tensor) and a.dtype.is_floating_point and \
                        a.dtype not in (_C.dtype.float64, to):
                    return _C._to_dtype(a, to, False)
                return a
            return fn(*[cast(a) for a in args], **{k: cast(v) for k, v in kwargs.items()})
        return wrapper
    return wrap
