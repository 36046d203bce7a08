"""Gradient clipping: clip_grad_norm_ (and its two halves, get_total_norm and
clip_grads_with_norm_) and clip_grad_value_.

The total norm is computed with a handful of tensor ops whatever the number of parameters: one
norm per gradient, one norm of their stack, one clamped scale multiplied into each gradient.
Nothing is read back to Python unless ``error_if_nonfinite`` asks for it.
"""
from __future__ import annotations

import math
import warnings
from typing import Iterable, List, Optional, Union

from ... import _C
from ..._C import Tensor
from ...autograd.grad_mode import no_grad

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
           "clip_grads_with_norm_"]

_tensor_or_tensors = Union[Tensor, Iterable[Tensor]]


def _as_list(tensors: _tensor_or_tensors) -> List[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def get_total_norm(tensors: _tensor_or_tensors, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: Optional[bool] = None) -> Tensor:
    """The ``norm_type`` norm of all ``tensors`` together, as if concatenated (0-d tensor)."""
    tensors = [t for t in _as_list(tensors) if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return _C._full([], 0.0, _C.dtype.float32, False)
    with no_grad():
        dtype = tensors[0].dtype
        if math.isinf(norm_type) and norm_type > 0:
            norms = [_C.amax(_C.abs(t)) for t in tensors]
        else:
            norms = [_C._norm(t, norm_type, None, False) for t in tensors]
        norms = [n if n.dtype == dtype else _C._to_dtype(n, dtype, False) for n in norms]
        if len(norms) == 1:
            total = norms[0]
        elif math.isinf(norm_type) and norm_type > 0:
            total = _C.amax(_C.stack(norms, 0))
        else:
            total = _C._norm(_C.stack(norms, 0), norm_type, None, False)
    if error_if_nonfinite and not bool(_C.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm anyway, "
                           "set `error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters: _tensor_or_tensors, max_norm: float, total_norm: Tensor,
                          foreach: Optional[bool] = None) -> None:
    """Scales every gradient by min(1, max_norm / (total_norm + 1e-6))."""
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    with no_grad():
        coef = _C.clamp(_C.div(float(max_norm), _C.add(total_norm, 1e-6)), None, 1.0)
        for g in grads:
            _C.mul_(g, coef if coef.dtype == g.dtype else _C._to_dtype(coef, g.dtype, False))


def clip_grad_norm_(parameters: _tensor_or_tensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: Optional[bool] = None) -> Tensor:
    """Rescales the gradients in place so their joint ``norm_type`` norm is at most
    ``max_norm``; returns the norm before clipping (a 0-d tensor)."""
    parameters = _as_list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters: _tensor_or_tensors, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: Optional[bool] = None) -> Tensor:
    """The old name of ``clip_grad_norm_``, still accepted (with a FutureWarning) as torch
    does."""
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torch.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters: _tensor_or_tensors, clip_value: float,
                     foreach: Optional[bool] = None) -> None:
    """Clamps every gradient to [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    with no_grad():
        for p in _as_list(parameters):
            if p.grad is not None:
                _C.clamp_(p.grad, -clip_value, clip_value)
