"""deepcore.nn.init: PyTorch's weight initialisers (same names, arguments and distributions).

Every function fills the tensor in place under no_grad and returns it. Random draws come from
deepcore's generator, so ``deepcore.manual_seed`` makes initialisation reproducible.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Optional, Tuple

import numpy as np

from .. import _C
from .._C import Tensor
from ..autograd.grad_mode import no_grad

__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
    "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
    "kaiming_normal_", "orthogonal_", "sparse_",
]


def _no_generator(generator: Any, name: str) -> None:
    if generator is not None:
        raise NotImplementedError(f"[{name}] generator= is not supported: deepcore draws from "
                                  "its global generator (seed it with deepcore.manual_seed)")


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> Tuple[int, int]:
    dimensions = tensor.dim()
    if dimensions < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 "
                         "dimensions")
    num_input_fmaps = tensor.shape[1]
    num_output_fmaps = tensor.shape[0]
    receptive_field_size = 1
    for s in tensor.shape[2:]:
        receptive_field_size *= s
    return num_input_fmaps * receptive_field_size, num_output_fmaps * receptive_field_size


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# ---- plain distributions ------------------------------------------------------------------

def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fills with U(a, b)."""
    _no_generator(generator, "uniform_")
    with no_grad():
        _C.uniform_(tensor, a, b)
    return tensor


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: Any = None) -> Tensor:
    """Fills with N(mean, std^2)."""
    _no_generator(generator, "normal_")
    with no_grad():
        _C.normal_(tensor, mean, std)
    return tensor


def _erfinv(y: Tensor) -> Tensor:
    # Giles' single-precision approximation ("Approximating the erfinv function", 2010),
    # then two Newton steps on erf(x) = y, in float64: accurate to ~1e-12 on (-1, 1).
    w = _C.neg(_C.log(_C.mul(_C.sub(1.0, y), _C.add(1.0, y))))
    central = _C.lt(w, 5.0)
    wc = _C.sub(w, 2.5)
    pc = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
              -0.00417768164, 0.246640727, 1.50140941):
        pc = _C.add(_C.mul(pc, wc), c)
    wt = _C.sub(_C.sqrt(w), 3.0)
    pt = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
              0.00943887047, 1.00167406, 2.83297682):
        pt = _C.add(_C.mul(pt, wt), c)
    x = _C.mul(_C.where(central, pc, pt), y)
    two_over_sqrt_pi = 2.0 / math.sqrt(math.pi)
    for _ in range(2):
        err = _C.sub(_C.erf(x), y)
        slope = _C.mul(_C.exp(_C.neg(_C.square(x))), two_over_sqrt_pi)
        x = _C.sub(x, _C.div(err, slope))
    return x


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: Any = None) -> Tensor:
    """Fills with N(mean, std^2) truncated to [a, b] (inverse-CDF sampling, as PyTorch)."""
    _no_generator(generator, "trunc_normal_")

    def norm_cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    with no_grad():
        lo = norm_cdf((a - mean) / std)
        hi = norm_cdf((b - mean) / std)
        u = _C._empty(list(tensor.shape), _C.dtype.float64, False)
        u = _C.uniform_(u, 2 * lo - 1, 2 * hi - 1)
        # Keep erfinv's argument strictly inside (-1, 1) so the tails stay finite.
        u = _C.clamp(u, -1.0 + 1e-15, 1.0 - 1e-15)
        x = _C.add(_C.mul(_erfinv(u), std * math.sqrt(2.0)), mean)
        _C.copy_(tensor, _C.clamp(x, a, b))
    return tensor


def constant_(tensor: Tensor, val: float) -> Tensor:
    with no_grad():
        _C.fill_(tensor, val)
    return tensor


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    with no_grad():
        _C.zero_(tensor)
    return tensor


def _copy_numpy(tensor: Tensor, array: np.ndarray) -> Tensor:
    with no_grad():
        _C.copy_(tensor, _C.from_numpy(np.ascontiguousarray(array)))
    return tensor


def eye_(tensor: Tensor) -> Tensor:
    """Fills a 2-D tensor with the identity (ones on the diagonal of a rectangle)."""
    if tensor.dim() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _copy_numpy(tensor, np.eye(*tensor.shape))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fills a 3/4/5-D (convolution) weight with the Dirac delta: the identity conv."""
    dimensions = tensor.dim()
    if dimensions not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tensor.shape
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_chans_per_grp = sizes[0] // groups
    min_dim = min(out_chans_per_grp, sizes[1])
    w = np.zeros(tuple(sizes))
    for g in range(groups):
        for d in range(min_dim):
            centre = tuple(s // 2 for s in sizes[2:])
            w[(g * out_chans_per_grp + d, d) + centre] = 1
    return _copy_numpy(tensor, w)


# ---- scaled initialisers --------------------------------------------------------------------

def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> Any:
    """gain / sqrt(fan) for the kaiming initialisers, or None (with PyTorch's warning) for a
    tensor with no elements, which they leave as it is."""
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator: Any = None) -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(3 / fan) (He et al., 2015)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator: Any = None) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    return tensor if std is None else normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Tensor, gain: float = 1, generator: Any = None) -> Tensor:
    """A (semi-)orthogonal matrix (Saxe et al., 2013): QR of a Gaussian matrix with the signs
    of R's diagonal folded into Q, so Q is Haar-distributed; trailing dims are flattened."""
    _no_generator(generator, "orthogonal_")
    if tensor.dim() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    gaussian = _C.normal_(_C._empty([rows, cols], _C.dtype.float64, False), 0.0, 1.0)
    flattened = np.asarray(gaussian)
    if rows < cols:
        flattened = flattened.T
    q, r = np.linalg.qr(flattened)
    d = np.sign(np.diag(r))
    d[d == 0] = 1
    q = q * d
    if rows < cols:
        q = q.T
    return _copy_numpy(tensor, (gain * q).reshape(tuple(tensor.shape)))


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01,
            generator: Any = None) -> Tensor:
    """A 2-D tensor with N(0, std^2) entries and a ``sparsity`` fraction of each column zero."""
    if tensor.dim() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tensor.shape
    num_zeros = int(math.ceil(sparsity * rows))
    normal_(tensor, 0.0, std, generator)
    if num_zeros == 0:
        return tensor
    keep = np.ones((rows, cols))
    for col_idx in range(cols):
        keep[np.asarray(_C._randperm(rows, _C.dtype.int64))[:num_zeros], col_idx] = 0
    with no_grad():
        _C.mul_(tensor, _C.from_numpy(keep))
    return tensor
