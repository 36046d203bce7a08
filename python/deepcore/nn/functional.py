"""deepcore.nn.functional: torch.nn.functional's names, signatures and defaults.

The work happens in C++ (csrc/ops/softmax.cpp, loss.cpp, norm.cpp, dropout.cpp, unary.cpp);
this module only adapts arguments: legacy ``size_average``/``reduce``, ``inplace=``, and softmax's implicit ``dim``.

Differences from PyTorch: the pointwise losses (mse_loss, l1_loss, smooth_l1_loss, huber_loss,
binary_cross_entropy[_with_logits], kl_div) raise ValueError when input and target shapes
differ, where PyTorch broadcasts with a warning.
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence, Union

from .. import _C
from .._C import Tensor
from ..amp.autocast_mode import _cast_inputs

__all__ = [
    "softmax", "log_softmax", "softmin", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
    "smooth_l1_loss", "huber_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "kl_div", "layer_norm", "rms_norm", "dropout", "linear", "relu", "relu_", "gelu", "silu",
    "sigmoid", "tanh", "softplus", "leaky_relu", "leaky_relu_", "elu", "selu", "celu",
    "hardtanh", "relu6", "hardsigmoid", "hardswish", "logsigmoid", "mish", "softsign",
    "tanhshrink", "threshold", "hardshrink", "softshrink", "glu", "prelu", "bilinear",
]


# ---- helpers ----------------------------------------------------------------------------------

def _reduction(size_average, reduce, reduction: str) -> str:
    """The reduction string, honouring PyTorch's deprecated size_average/reduce flags."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn("size_average and reduce args will be deprecated, please use "
                  "reduction='mean'/'sum'/'none' instead.", stacklevel=3)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _inplace_result(input: Tensor, result: Tensor) -> Tensor:
    """Writes an out-of-place result back into ``input`` (for ops without an _ kernel)."""
    _C.copy_(input, result)
    return input


# ---- softmax family -----------------------------------------------------------------------

def softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("softmax", input.dim())
    return _C.softmax(input, dim, dtype)


def log_softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("log_softmax", input.dim())
    return _C.log_softmax(input, dim, dtype)


def softmin(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("softmin", input.dim())
    if dtype is not None:
        input = input.to(dtype)
    return _C.softmax(_C.neg(input), dim)


# ---- losses -----------------------------------------------------------------------------------

def cross_entropy(input: Tensor, target, weight: Optional[Tensor] = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    return _C._cross_entropy(input, target, weight, ignore_index,
                             _reduction(size_average, reduce, reduction), label_smoothing)


def nll_loss(input: Tensor, target, weight: Optional[Tensor] = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    return _C._nll_loss(input, target, weight, ignore_index,
                        _reduction(size_average, reduce, reduction))


def _weighted_loss(op: str, unreduced: Tensor, input: Tensor, weight: Tensor, reduction: str,
                   mean_over_weight: bool) -> Tensor:
    """PyTorch's weighted pointwise losses: weight must have the input's shape; 'mean' divides
    by sum(weight) for mse_loss/l1_loss and by the element count for huber_loss (as PyTorch)."""
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"[{op}] weight must have the input's shape {tuple(input.shape)}, got "
                         f"{tuple(weight.shape)}")
    out = _C.mul(unreduced, weight)
    if reduction == "none":
        return out
    if reduction == "sum":
        return _C.sum(out)
    if reduction == "mean":
        return _C.div(_C.sum(out), _C.sum(weight)) if mean_over_weight else _C.mean(out)
    raise ValueError(f"[{op}] reduction must be 'none', 'mean' or 'sum', got '{reduction}'")


def mse_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
             weight: Optional[Tensor] = None) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    if weight is None:
        return _C._mse_loss(input, target, reduction)
    return _weighted_loss("mse_loss", _C._mse_loss(input, target, "none"), input, weight,
                          reduction, True)


def l1_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
            weight: Optional[Tensor] = None) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    if weight is None:
        return _C._l1_loss(input, target, reduction)
    return _weighted_loss("l1_loss", _C._l1_loss(input, target, "none"), input, weight,
                          reduction, True)


def smooth_l1_loss(input: Tensor, target, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    return _C._smooth_l1_loss(input, target, _reduction(size_average, reduce, reduction), beta)


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0,
               weight: Optional[Tensor] = None) -> Tensor:
    if weight is None:
        return _C._huber_loss(input, target, reduction, delta)
    return _weighted_loss("huber_loss", _C._huber_loss(input, target, "none", delta), input,
                          weight, reduction, False)


def binary_cross_entropy(input: Tensor, target, weight: Optional[Tensor] = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    return _C._binary_cross_entropy(input, target, weight,
                                    _reduction(size_average, reduce, reduction))


def binary_cross_entropy_with_logits(input: Tensor, target, weight: Optional[Tensor] = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Optional[Tensor] = None) -> Tensor:
    return _C._binary_cross_entropy_with_logits(
        input, target, weight, _reduction(size_average, reduce, reduction), pos_weight)


def kl_div(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    if reduction == "mean" and size_average is None and reduce is None:
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size. 'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.", stacklevel=2)
    return _C._kl_div(input, target, _reduction(size_average, reduce, reduction), log_target)


# ---- normalisation, dropout, linear --------------------------------------------------------

def layer_norm(input: Tensor, normalized_shape: Union[int, Sequence[int]],
               weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
               eps: float = 1e-5) -> Tensor:
    return _C.layer_norm(input, normalized_shape, weight, bias, eps)


def rms_norm(input: Tensor, normalized_shape: Union[int, Sequence[int]],
             weight: Optional[Tensor] = None, eps: Optional[float] = None) -> Tensor:
    return _C.rms_norm(input, normalized_shape, weight, eps)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"[dropout] dropout probability has to be between 0 and 1, but got {p}")
    return _C.dropout_(input, p, training) if inplace else _C.dropout(input, p, training)


def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    return _C.linear(input, weight, bias)


def _rnn_layer(input: Tensor, hx: Tensor, cx: Optional[Tensor], weight_ih: Tensor,
               weight_hh: Tensor, bias_ih: Optional[Tensor], bias_hh: Optional[Tensor],
               weight_hr: Optional[Tensor], batch_sizes: Optional[list], mode: str,
               reverse: bool = False, linear_before_reset: bool = True) -> list:
    """One layer and direction of RNN_TANH / RNN_RELU / LSTM / GRU over a whole (T, B, I) or
    packed (N, I) sequence: [output, h_n] (+ c_n for LSTM). The recurrent modules of
    deepcore.nn and deepcore.keras stack it (Note [RNN layer] in csrc/ops/rnn.cpp)."""
    return _C._rnn_layer(input, hx, cx, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr,
                         batch_sizes, mode, reverse, linear_before_reset)


# ---- activations ------------------------------------------------------------------------------

def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return _C.relu_(input) if inplace else _C.relu(input)


relu_ = _C.relu_


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    return _C.gelu(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _C.silu_(input) if inplace else _C.silu(input)


def sigmoid(input: Tensor) -> Tensor:
    return _C.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return _C.tanh(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return _C.softplus(input, beta, threshold)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    if inplace:
        return _C.leaky_relu_(input, negative_slope)
    return _C.leaky_relu(input, negative_slope)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return _C.leaky_relu_(input, negative_slope)


def _maybe_inplace(input: Tensor, result: Tensor, inplace: bool) -> Tensor:
    return _inplace_result(input, result) if inplace else result


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, _C.elu(input, alpha), inplace)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, _C.selu(input), inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, _C.celu(input, alpha), inplace)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, _C.hardtanh(input, min_val, max_val), inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, _C.relu6(input), inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, _C.hardsigmoid(input), inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, _C.hardswish(input), inplace)


def logsigmoid(input: Tensor) -> Tensor:
    return _C.logsigmoid(input)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, _C.mish(input), inplace)


def softsign(input: Tensor) -> Tensor:
    return _C.softsign(input)


def tanhshrink(input: Tensor) -> Tensor:
    return _C.tanhshrink(input)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """y = x if x > threshold else value."""
    if input.dtype.is_floating_point:
        out = _C._threshold(input, threshold, value)
    else:  # integers keep their dtype, as in torch
        out = _C.where(_C.gt(input, threshold), input, _C._full([], value, input.dtype, False))
    return _maybe_inplace(input, out, inplace)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """y = x where |x| > lambd, else 0."""
    return _C._hardshrink(input, lambd)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """y = x - lambd if x > lambd, x + lambd if x < -lambd, else 0."""
    return _C._softshrink(input, lambd)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b), where a and b are the two halves of ``input`` along ``dim``."""
    size = input.shape[dim]
    if size % 2 != 0:
        raise ValueError(f"[glu] halving dimension must be even, but dimension {dim} is size "
                         f"{size}")
    a, b = _C.chunk(input, 2, dim)
    return _C.mul(a, _C.sigmoid(b))


@_cast_inputs("lower")  # torch's CPU autocast lists it
def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """y = x if x >= 0 else weight * x; a weight of several values is per channel (dim 1)."""
    channels = input.shape[1] if input.dim() >= 2 else 1
    if weight.dim() > 1 or weight.numel() not in (1, channels):
        raise ValueError(f"[prelu] weight has {weight.numel()} values, expected 1 or the "
                         f"{channels} channels of input {tuple(input.shape)}")
    if weight.numel() > 1:
        weight = _C._reshape(weight, [-1] + [1] * (input.dim() - 2))
    return _C.where(_C.ge(input, 0.0), input, _C.mul(weight, input))


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Optional[Tensor] = None) -> Tensor:
    """y[..., o] = input1[..., i] weight[o, i, j] input2[..., j] + bias[o]."""
    o, i, j = weight.shape
    batch = list(input1.shape[:-1])
    x1 = _C._reshape(input1, [-1, i])                                   # (N, i)
    x2 = _C._reshape(input2, [-1, j])                                   # (N, j)
    # (N, i) @ (i, o*j) -> (N, o, j); then contract j against x2.
    w = _C._reshape(_C._permute(weight, [1, 0, 2]), [i, o * j])
    t = _C._reshape(_C.mm(x1, w), [-1, o, j])
    out = _C.sum(_C.mul(t, _C.unsqueeze(x2, 1)), -1)                   # (N, o)
    if bias is not None:
        out = _C.add(out, bias)
    return _C._reshape(out, batch + [o])


if hasattr(_C, "one_hot"):
    one_hot = _C.one_hot
    __all__.append("one_hot")

from .. import _indexing

embedding = _indexing.embedding_functional
__all__.append("embedding")
from ._embedding_bag import embedding_bag  # noqa: E402
__all__.append("embedding_bag")

from . import _functional_conv  # noqa: E402
from ._functional_conv import *  # noqa: E402,F401,F403
from ._attention import scaled_dot_product_attention  # noqa: E402
from .modules.attention import multi_head_attention_forward  # noqa: E402

__all__ += _functional_conv.__all__
__all__ += ["scaled_dot_product_attention", "multi_head_attention_forward"]
