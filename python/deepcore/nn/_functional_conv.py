"""Convolution, pooling and 2-D normalisation functions of deepcore.nn.functional.

torch.nn.functional's names, signatures and defaults; the work happens in C++
(csrc/ops/conv.cpp, pool.cpp, norm.cpp). Re-exported by deepcore.nn.functional.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

from .. import _C
from .._C import Tensor
from ..amp.autocast_mode import _cast_inputs

__all__ = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "pad", "max_pool1d",
    "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
    "batch_norm", "group_norm", "instance_norm", "interpolate", "upsample", "dropout1d",
    "dropout2d", "dropout3d",
]

_IntOrPair = Union[int, Sequence[int]]


def _dc():
    import deepcore  # the package, imported lazily: it imports this module while loading

    return deepcore


def conv1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: _IntOrPair = 1,
           padding: Union[str, _IntOrPair] = 0, dilation: _IntOrPair = 1,
           groups: int = 1) -> Tensor:
    return _C.conv1d(input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: _IntOrPair = 1,
           padding: Union[str, _IntOrPair] = 0, dilation: _IntOrPair = 1,
           groups: int = 1) -> Tensor:
    return _C.conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     stride: _IntOrPair = 1, padding: _IntOrPair = 0,
                     output_padding: _IntOrPair = 0, groups: int = 1,
                     dilation: _IntOrPair = 1) -> Tensor:
    return _C.conv_transpose1d(input, weight, bias, stride, padding, output_padding, groups,
                               dilation)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     stride: _IntOrPair = 1, padding: _IntOrPair = 0,
                     output_padding: _IntOrPair = 0, groups: int = 1,
                     dilation: _IntOrPair = 1) -> Tensor:
    return _C.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups,
                               dilation)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: Optional[float] = None) -> Tensor:
    value = 0.0 if value is None else value
    if mode in ("reflect", "replicate"):  # in float32 under autocast, as torch's CPU lists say
        return _padded_fp32(input, pad, mode, value)
    return _C._pad(input, list(pad), mode, value)


@_cast_inputs("fp32")
def _padded_fp32(input: Tensor, pad: Sequence[int], mode: str, value: float) -> Tensor:
    return _C._pad(input, list(pad), mode, value)


# ---- pooling ----------------------------------------------------------------------------------

def _stride(stride):
    return None if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
        else stride


def max_pool2d(input: Tensor, kernel_size: _IntOrPair, stride: Optional[_IntOrPair] = None,
               padding: _IntOrPair = 0, dilation: _IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False):
    out, idx = _C._max_pool2d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


def max_pool1d(input: Tensor, kernel_size: _IntOrPair, stride: Optional[_IntOrPair] = None,
               padding: _IntOrPair = 0, dilation: _IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False):
    out, idx = _C._max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


def avg_pool2d(input: Tensor, kernel_size: _IntOrPair, stride: Optional[_IntOrPair] = None,
               padding: _IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    return _C._avg_pool2d(input, kernel_size, _stride(stride), padding, ceil_mode,
                          count_include_pad, divisor_override)


def avg_pool1d(input: Tensor, kernel_size: _IntOrPair, stride: Optional[_IntOrPair] = None,
               padding: _IntOrPair = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    return _C._avg_pool1d(input, kernel_size, _stride(stride), padding, ceil_mode,
                          count_include_pad)


def _adaptive_size(input: Tensor, output_size):
    """output_size: int or pair; None entries keep the input's size."""
    if isinstance(output_size, int):
        return [output_size, output_size]
    sizes = list(output_size)
    return [input.shape[input.dim() - 2 + i] if s is None else s for i, s in enumerate(sizes)]


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    return _C._adaptive_avg_pool2d(input, _adaptive_size(input, output_size))


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    out, idx = _C._adaptive_max_pool2d(input, _adaptive_size(input, output_size))
    return (out, idx) if return_indices else out


# ---- normalisation ----------------------------------------------------------------------------

def batch_norm(input: Tensor, running_mean: Optional[Tensor], running_var: Optional[Tensor],
               weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    return _C._batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def group_norm(input: Tensor, num_groups: int, weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    return _C._group_norm(input, num_groups, weight, bias, eps)


def instance_norm(input: Tensor, running_mean: Optional[Tensor] = None,
                  running_var: Optional[Tensor] = None, weight: Optional[Tensor] = None,
                  bias: Optional[Tensor] = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    return _C._instance_norm(input, running_mean, running_var, weight, bias, use_input_stats,
                             momentum, eps)


# ---- channel dropout --------------------------------------------------------------------------

def _channel_dropout(op: str, input: Tensor, p: float, training: bool, inplace: bool,
                     feature_dims: int) -> Tensor:
    """Zeroes whole channels: one keep/drop draw per (sample, channel) of (N, C, *features) or
    (C, *features) input, survivors scaled by 1 / (1 - p)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"[{op}] dropout probability has to be between 0 and 1, but got {p}")
    nd = input.dim()
    if nd not in (feature_dims + 1, feature_dims + 2):
        raise ValueError(f"[{op}] expected a {feature_dims + 1}-D or {feature_dims + 2}-D "
                         f"input, got shape {tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    mask_shape = list(input.shape[:nd - feature_dims]) + [1] * feature_dims
    mask = _C.dropout(_dc().ones(mask_shape, dtype=input.dtype, device=input.device), p, True)
    if inplace:
        return _C.mul_(input, mask)
    return _C.mul(input, mask)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zeroes whole channels of (N, C, L) or (C, L) input."""
    return _channel_dropout("dropout1d", input, p, training, inplace, 1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zeroes whole channels of (N, C, H, W) or (C, H, W) input."""
    return _channel_dropout("dropout2d", input, p, training, inplace, 2)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zeroes whole channels of (N, C, D, H, W) or (C, D, H, W) input."""
    return _channel_dropout("dropout3d", input, p, training, inplace, 3)


# ---- interpolate ------------------------------------------------------------------------------

def _source_index(out: int, inp: int, scale: Optional[float], align_corners: bool, mode: str):
    """Per output position along one dim: (i0, i1, lambda) for linear, i0 for nearest."""
    import numpy as np

    o = np.arange(out, dtype=np.float64)
    if mode == "nearest":
        s = (1.0 / scale) if scale else inp / out
        return np.minimum(np.floor(o * s).astype(np.int64), inp - 1)
    if align_corners:
        src = o * ((inp - 1) / (out - 1)) if out > 1 else np.zeros_like(o)
    else:
        s = (1.0 / scale) if scale else inp / out
        src = np.maximum((o + 0.5) * s - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), inp - 1)
    i1 = np.minimum(i0 + 1, inp - 1)
    return i0, i1, src - i0


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: Optional[bool] = None, recompute_scale_factor=None,
                antialias: bool = False) -> Tensor:
    """nearest / linear / bilinear resizing of the trailing 1 or 2 dims of (N, C, ...) input,
    composed of index_select and weighted sums (so it differentiates like any composite)."""
    import numpy as np

    spatial = input.dim() - 2
    if spatial not in (1, 2):
        raise ValueError(f"[interpolate] expected a 3-D or 4-D input, got shape "
                         f"{tuple(input.shape)}")
    if mode not in ("nearest", "linear", "bilinear"):
        raise ValueError(f"[interpolate] mode must be 'nearest', 'linear' or 'bilinear', "
                         f"got '{mode}'")
    if mode in ("linear", "bilinear") and (mode == "linear") != (spatial == 1):
        raise ValueError(f"[interpolate] mode '{mode}' expects a {4 - (mode == 'linear')}-D "
                         f"input, got shape {tuple(input.shape)}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("[interpolate] align_corners option can only be set with the "
                         "interpolating modes: linear | bilinear")
    if (size is None) == (scale_factor is None):
        raise ValueError("[interpolate] exactly one of size and scale_factor must be given")
    in_sizes = list(input.shape[2:])
    if size is not None:
        out_sizes = [size] * spatial if isinstance(size, int) else list(size)
        scales = [None] * spatial
    else:
        scales = ([float(scale_factor)] * spatial if isinstance(scale_factor, (int, float))
                  else [float(s) for s in scale_factor])
        out_sizes = [int(np.floor(i * s)) for i, s in zip(in_sizes, scales)]
        if recompute_scale_factor:
            scales = [None] * spatial
    if len(out_sizes) != spatial or any(s <= 0 for s in out_sizes):
        raise ValueError(f"[interpolate] invalid output size {out_sizes} for input "
                         f"{tuple(input.shape)}")
    out = input
    for k in range(spatial):
        dim = 2 + k
        ndim_after = spatial - k - 1
        if mode == "nearest":
            idx = _source_index(out_sizes[k], in_sizes[k], scales[k], False, mode)
            out = _C.index_select(out, dim, _dc().tensor(idx, device=input.device))
            continue
        i0, i1, lam = _source_index(out_sizes[k], in_sizes[k], scales[k], bool(align_corners),
                                    mode)
        lam_t = _dc().tensor(lam.reshape([-1] + [1] * ndim_after), dtype=input.dtype,
                              device=input.device)
        a = _C.index_select(out, dim, _dc().tensor(i0, device=input.device))
        b = _C.index_select(out, dim, _dc().tensor(i1, device=input.device))
        out = _C.add(a, _C.mul(_C.sub(b, a), lam_t))
    return out


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
             align_corners: Optional[bool] = None) -> Tensor:
    return interpolate(input, size, scale_factor, mode, align_corners)
