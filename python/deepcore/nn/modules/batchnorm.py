"""BatchNorm1d/2d, InstanceNorm1d/2d, GroupNorm (torch.nn's names, arguments, defaults,
buffers, repr and state_dict keys) on the normalisation ops of csrc/ops/norm.cpp."""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Mapping, Optional

from ... import _C
from ..._C import Tensor
from ..._C import dtype as _dtype
from ...autograd.grad_mode import no_grad
from .. import functional as F
from .. import init
from ._factory import empty_param_data, register_affine
from .module import Module, _layer_error

__all__ = ["BatchNorm1d", "BatchNorm2d", "InstanceNorm1d", "InstanceNorm2d", "GroupNorm"]


def _zero_count() -> Tensor:
    return _C._full([], 0, _dtype.int64, False)


class _NormBase(Module):
    """Common state of BatchNorm and InstanceNorm: weight (ones) / bias (zeros) when affine;
    running_mean (zeros), running_var (ones) and num_batches_tracked (int64 0) buffers when
    track_running_stats."""

    _version = 2
    __constants__ = ["track_running_stats", "momentum", "eps", "num_features", "affine"]

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        register_affine(self, affine, bias, (num_features,), device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", empty_param_data((num_features,), device,
                                                                  dtype))
            self.register_buffer("running_var", empty_param_data((num_features,), device,
                                                                 dtype))
            self.register_buffer("num_batches_tracked", _zero_count())
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return ("{num_features}, eps={eps}, momentum={momentum}, affine={affine}, "
                "bias={use_bias}, track_running_stats={track_running_stats}".format(
                    **self.__dict__, use_bias=self.bias is not None))

    def _short_description(self) -> str:
        return f"{type(self).__name__} {self.num_features}"

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str,
                              local_metadata: Dict[str, Any], strict: bool,
                              missing_keys: List[str], unexpected_keys: List[str],
                              error_msgs: List[str]) -> None:
        version = local_metadata.get("version", None)
        if (version is None or version < 2) and self.track_running_stats:
            # Checkpoints from before num_batches_tracked existed load with the count kept.
            key = prefix + "num_batches_tracked"
            if key not in state_dict:
                state_dict[key] = (self.num_batches_tracked
                                   if self.num_batches_tracked is not None else _zero_count())
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def _check_features(self, input: Tensor, feature_dim: int) -> None:
        c = input.shape[feature_dim]
        if c != self.num_features:
            raise _layer_error(ValueError, f"{self!r}: expected input with {self.num_features} "
                                           f"channels, got input of shape "
                                           f"{tuple(input.shape)}")


def _check_tensor(layer: Module, input: Any) -> None:
    if not isinstance(input, Tensor):
        raise _layer_error(TypeError, f"{layer!r}: expected a deepcore.Tensor input, got "
                                      f"{type(input).__name__}")


class _BatchNorm(_NormBase):
    _ranks = (4,)

    def _check_input_dim(self, input: Tensor) -> None:
        _check_tensor(self, input)
        if input.dim() not in self._ranks:
            want = " or ".join(f"{r}D" for r in self._ranks)
            raise _layer_error(ValueError, f"{self!r}: expected {want} input (got "
                                           f"{input.dim()}D input of shape "
                                           f"{tuple(input.shape)})")
        self._check_features(input, 1)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        # PyTorch's update rule: momentum=None means a cumulative average (factor 1/n).
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        use_batch_stats = self.training or (self.running_mean is None
                                            and self.running_var is None)
        track = not self.training or self.track_running_stats
        try:
            return F.batch_norm(input, self.running_mean if track else None,
                                self.running_var if track else None, self.weight, self.bias,
                                use_batch_stats, factor, self.eps)
        except ValueError as err:
            raise _layer_error(ValueError, f"{self!r}: {err.args[0]}") from err


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) input: per channel, batch statistics in
    training (and running-stat updates), the running statistics in eval mode."""

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W) input: per channel, batch statistics in training
    (and running-stat updates), the running statistics in eval mode."""

    _ranks = (4,)


class _InstanceNorm(_NormBase):
    _no_batch_dim = 3

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def _apply_instance_norm(self, input: Tensor) -> Tensor:
        return F.instance_norm(input, self.running_mean, self.running_var, self.weight,
                               self.bias, self.training or not self.track_running_stats,
                               self.momentum if self.momentum is not None else 0.0, self.eps)

    def forward(self, input: Tensor) -> Tensor:
        _check_tensor(self, input)
        nb = self._no_batch_dim
        if input.dim() not in (nb, nb + 1):
            raise _layer_error(ValueError, f"{self!r}: expected {nb}D or {nb + 1}D input (got "
                                           f"{input.dim()}D input of shape "
                                           f"{tuple(input.shape)})")
        feature_dim = input.dim() - nb
        if input.shape[feature_dim] != self.num_features:
            if self.affine or self.track_running_stats:
                self._check_features(input, feature_dim)
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. "
                          "You can silence this warning by not passing in num_features, "
                          "which is not used because affine=False", stacklevel=2)
        try:
            if input.dim() == nb:
                return self._apply_instance_norm(input.unsqueeze(0)).squeeze(0)
            return self._apply_instance_norm(input)
        except ValueError as err:
            raise _layer_error(ValueError, f"{self!r}: {err.args[0]}") from err


class InstanceNorm1d(_InstanceNorm):
    """Per-sample, per-channel normalisation of (N, C, L) or (C, L) input."""

    _no_batch_dim = 2


class InstanceNorm2d(_InstanceNorm):
    """Per-sample, per-channel normalisation of (N, C, H, W) or (C, H, W) input (affine and
    running statistics off by default, as PyTorch)."""

    _no_batch_dim = 3


class GroupNorm(Module):
    """Normalises (N, C, *) input over groups of C/num_groups channels (and all spatial
    positions) per sample; per-channel weight (ones) and bias (zeros) when affine."""

    __constants__ = ["num_groups", "num_channels", "eps", "affine"]

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device: Any = None, dtype: Any = None, *,
                 bias: bool = True) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups != 0:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        register_affine(self, affine, bias, (num_channels,), device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        _check_tensor(self, input)
        if input.dim() < 2 or input.shape[1] != self.num_channels:
            raise _layer_error(ValueError, f"{self!r}: expected input with {self.num_channels} "
                                           f"channels, got input of shape "
                                           f"{tuple(input.shape)}")
        try:
            return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)
        except ValueError as err:
            raise _layer_error(ValueError, f"{self!r}: {err.args[0]}") from err

    def extra_repr(self) -> str:
        return ("{num_groups}, {num_channels}, eps={eps}, affine={affine}, "
                "bias={use_bias}".format(**self.__dict__, use_bias=self.bias is not None))
