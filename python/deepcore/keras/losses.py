"""Keras losses: ``loss(y_true, y_pred, sample_weight=None)`` -> scalar tensor.

Each loss computes one value per sample and reduces them as Keras does
("sum_over_batch_size"): ``sum(loss * sample_weight) / batch_size``. Probabilities are clipped
to ``[1e-7, 1 - 1e-7]`` before the log, as Keras does, unless ``from_logits=True``.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import deepcore as dc
import deepcore.nn.functional as F

__all__ = ["Loss", "BinaryCrossentropy", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "Huber",
           "get", "serialize"]

EPSILON = 1e-7


def _float_target(y_true, y_pred):
    y_true = dc.as_tensor(y_true)
    if y_true.dtype != y_pred.dtype:
        y_true = y_true.to(y_pred.dtype)
    return y_true


def _match_rank(y_true, y_pred):
    # Keras squeezes or expands a trailing 1 so (N,) targets meet (N, 1) outputs.
    if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
        return y_true.unsqueeze(-1)
    if y_true.dim() == y_pred.dim() + 1 and y_true.shape[-1] == 1:
        return y_true.squeeze(-1)
    return y_true


def _per_sample(values):
    """Mean over every axis but the batch axis: (N, ...) -> (N,)."""
    if values.dim() <= 1:
        return values
    return values.reshape(values.shape[0], -1).mean(1)


class Loss:
    name = "loss"

    def __init__(self, name: Optional[str] = None):
        if name is not None:
            self.name = name

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        per_sample = self.call(y_true, y_pred)
        if sample_weight is None:
            return per_sample.mean()
        w = dc.as_tensor(sample_weight).to(per_sample.dtype).reshape(-1)
        return (per_sample * w).sum() / per_sample.shape[0]

    def get_config(self) -> dict:
        return {"name": self.name}


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"
    accuracy_kind = "binary"  # what metrics="accuracy" means with this loss

    def __init__(self, from_logits: bool = False, name: Optional[str] = None):
        super().__init__(name)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_true = _match_rank(_float_target(y_true, y_pred), y_pred)
        if self.from_logits:
            values = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
        else:
            p = y_pred.clamp(EPSILON, 1.0 - EPSILON)
            values = -(y_true * p.log() + (1.0 - y_true) * (1.0 - p).log())
        return _per_sample(values)

    def get_config(self) -> dict:
        return {"name": self.name, "from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"
    accuracy_kind = "categorical"  # what metrics="accuracy" means with this loss

    def __init__(self, from_logits: bool = False, name: Optional[str] = None):
        super().__init__(name)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_true = _float_target(y_true, y_pred)
        if self.from_logits:
            logp = F.log_softmax(y_pred, dim=-1)
        else:
            p = y_pred / y_pred.sum(-1, keepdim=True)
            logp = p.clamp(EPSILON, 1.0 - EPSILON).log()
        values = -(y_true * logp).sum(-1)
        return _per_sample(values)

    def get_config(self) -> dict:
        return {"name": self.name, "from_logits": self.from_logits}


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"
    accuracy_kind = "sparse_categorical"  # what metrics="accuracy" means with this loss

    def __init__(self, from_logits: bool = False, name: Optional[str] = None):
        super().__init__(name)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_true = dc.as_tensor(y_true)
        if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
            y_true = y_true.squeeze(-1)
        y_true = y_true.to(dc.int64)
        classes = y_pred.shape[-1]
        flat = y_pred.reshape(-1, classes)
        if self.from_logits:
            logp = F.log_softmax(flat, dim=-1)
        else:
            logp = flat.clamp(EPSILON, 1.0 - EPSILON).log()
        values = F.nll_loss(logp, y_true.reshape(-1), reduction="none")
        return _per_sample(values.reshape(tuple(y_pred.shape[:-1])))

    def get_config(self) -> dict:
        return {"name": self.name, "from_logits": self.from_logits}


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def call(self, y_true, y_pred):
        y_true = _match_rank(_float_target(y_true, y_pred), y_pred)
        return _per_sample((y_pred - y_true) ** 2)


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def call(self, y_true, y_pred):
        y_true = _match_rank(_float_target(y_true, y_pred), y_pred)
        return _per_sample((y_pred - y_true).abs())


class Huber(Loss):
    name = "huber_loss"

    def __init__(self, delta: float = 1.0, name: Optional[str] = None):
        super().__init__(name)
        self.delta = float(delta)

    def call(self, y_true, y_pred):
        y_true = _match_rank(_float_target(y_true, y_pred), y_pred)
        return _per_sample(F.huber_loss(y_pred, y_true, reduction="none", delta=self.delta))

    def get_config(self) -> dict:
        return {"name": self.name, "delta": self.delta}


_ALIASES: Dict[str, Callable[[], Loss]] = {
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
}
_CLASSES = {cls.__name__: cls for cls in (BinaryCrossentropy, CategoricalCrossentropy,
                                           SparseCategoricalCrossentropy, MeanSquaredError,
                                           MeanAbsoluteError, Huber)}


class _FunctionLoss(Loss):
    """A plain ``fn(y_true, y_pred)`` returning per-sample (or already reduced) values."""

    def __init__(self, fn):
        super().__init__(getattr(fn, "__name__", "loss"))
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


def get(identifier) -> Loss:
    """A Loss from a name ('mse', 'binary_crossentropy', ...), a Loss, or a callable."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _ALIASES:
            raise ValueError(f"[compile] unknown loss {identifier!r}; known losses: "
                             f"{sorted(_ALIASES)}")
        return _ALIASES[identifier]()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"[load_model] unknown loss class {identifier.get('class_name')!r}")
        return cls(**identifier.get("config", {}))
    if callable(identifier):
        return _FunctionLoss(identifier)
    raise TypeError(f"[compile] loss must be a string, a Loss or a callable, got "
                    f"{type(identifier).__name__}")


def serialize(loss: Loss) -> Optional[dict]:
    """The loss as ``{"class_name", "config"}``, or None for a user function."""
    if type(loss) in _CLASSES.values():
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    return None
