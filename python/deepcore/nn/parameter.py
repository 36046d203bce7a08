"""nn.Parameter and nn.Buffer: tensors that a Module registers when they are assigned to it."""
from __future__ import annotations

from typing import Any, Optional

from .. import _C
from .._C import Tensor

__all__ = ["Parameter", "Buffer"]


class Parameter(Tensor):
    """A Tensor that is a module parameter: assigning one to a Module attribute registers it.

    ``Parameter(t)`` shares ``t``'s storage (as in PyTorch) but is a fresh autograd leaf, so it
    requires grad by default even when ``t`` came out of a graph.
    """

    def __init__(self, data: Optional[Tensor] = None, requires_grad: bool = True) -> None:
        if data is None:
            data = _C._empty([0], _C.dtype.float32, False)
        elif not isinstance(data, Tensor):
            from .. import tensor
            data = tensor(data)
        super().__init__(data)
        if requires_grad:
            self.requires_grad = True

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo: dict) -> "Parameter":
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(_C.clone(self.detach()), self.requires_grad)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, protocol: int) -> Any:
        return (_rebuild_parameter, (_C.clone(self.detach()), self.requires_grad))


def _rebuild_parameter(data: Tensor, requires_grad: bool) -> Parameter:
    return Parameter(data, requires_grad)


class _BufferMeta(type):
    # Buffer(...) returns a plain Tensor marked as a buffer, so isinstance asks the mark.
    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, Tensor) and getattr(instance, "_is_buffer", False)


class Buffer(metaclass=_BufferMeta):
    """Marks a tensor as a buffer: assigning ``nn.Buffer(t)`` to a Module attribute registers
    it with ``register_buffer`` (``persistent`` says whether it goes into the state_dict)."""

    def __new__(cls, data: Optional[Tensor] = None, *, persistent: bool = True) -> Tensor:
        if data is None:
            data = _C._empty([0], _C.dtype.float32, False)
        elif not isinstance(data, Tensor):
            from .. import tensor
            data = tensor(data)
        t = data.detach()
        t._is_buffer = True
        t.persistent = persistent
        return t
