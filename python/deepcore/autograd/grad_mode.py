"""no_grad / enable_grad / set_grad_enabled: context managers and decorators (thread-local)."""
from __future__ import annotations

import functools

from .. import _C


class _GradMode:
    _enabled: bool

    def __new__(cls, orig_func=None):
        # Bare decorator (@no_grad without parentheses), as torch allows.
        if orig_func is not None and callable(orig_func):
            return cls()(orig_func)
        return super().__new__(cls)

    def __init__(self, orig_func=None):
        pass

    def __enter__(self):
        self._prev = _C.is_grad_enabled()
        _C._set_grad_enabled(self._enabled)
        return self

    def __exit__(self, *exc):
        _C._set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Disables graph recording inside the block (or the decorated function)."""
    _enabled = False


class enable_grad(_GradMode):
    """Enables graph recording inside the block, even within no_grad."""
    _enabled = True


class inference_mode(_GradMode):
    _enabled = False

    def __new__(cls, mode=True):
        if callable(mode):
            return cls()(mode)
        return object.__new__(cls)

    def __init__(self, mode: bool = True):
        self._enabled = not mode


class set_grad_enabled(_GradMode):
    def __new__(cls, mode: bool):
        return object.__new__(cls)

    def __init__(self, mode: bool):
        self._enabled = bool(mode)
        self._prev = _C.is_grad_enabled()
        _C._set_grad_enabled(self._enabled)  # also works as a plain function call

    def __enter__(self):
        return self

    def __call__(self, fn):
        _C._set_grad_enabled(self._prev)
        mode = self._enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper
