"""Reverse-mode automatic differentiation (the engine is C++: csrc/autograd)."""
from __future__ import annotations

from typing import Optional, Sequence, Union

from .. import _C
from .._C import Tensor
from .function import Function, FunctionCtx  # noqa: F401
from .gradcheck import gradcheck, gradgradcheck  # noqa: F401
from .grad_mode import enable_grad, no_grad, set_grad_enabled  # noqa: F401
from .variable import Variable  # noqa: F401

queue_callback = Variable._execution_engine.queue_callback

_Tensors = Union[Tensor, Sequence[Tensor]]


def _as_list(x):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def backward(tensors: _Tensors, grad_tensors: Optional[_Tensors] = None,
             retain_graph: Optional[bool] = None, create_graph: bool = False,
             inputs: Optional[_Tensors] = None) -> None:
    """Accumulates d(tensors)/d(leaves) into the leaves' ``.grad``."""
    if retain_graph is None:
        retain_graph = create_graph
    _C._backward(_as_list(tensors), _as_list(grad_tensors), retain_graph, create_graph,
                 _as_list(inputs))


def grad(outputs: _Tensors, inputs: _Tensors, grad_outputs: Optional[_Tensors] = None,
         retain_graph: Optional[bool] = None, create_graph: bool = False,
         allow_unused: Optional[bool] = None, materialize_grads: bool = False):
    """Returns d(outputs)/d(inputs) as a tuple, without touching any ``.grad``."""
    if retain_graph is None:
        retain_graph = create_graph
    ins = _as_list(inputs)
    res = _C._grad(_as_list(outputs), ins, _as_list(grad_outputs), retain_graph, create_graph,
                   bool(allow_unused) or materialize_grads)
    if materialize_grads:
        from .. import zeros_like
        res = [zeros_like(i) if r is None else r for r, i in zip(res, ins)]
    return tuple(res)
