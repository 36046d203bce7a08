"""Metrics of the training loop (``deepcore.train``), which are also Keras' metrics:
``deepcore.keras.metrics`` re-exports this module. Stateful objects with
``update_state(y_true, y_pred, sample_weight=None)``, ``result()`` and ``reset_state()``. The
state is two floats (a weighted total and a count), so a metric is cheap to checkpoint
(``get_state`` / ``set_state``).

``'accuracy'`` is resolved like Keras: binary when the loss is binary cross-entropy or the
output has one unit, categorical for one-hot targets, sparse categorical for integer targets.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

import deepcore as dc

__all__ = ["Metric", "Mean", "MeanMetricWrapper", "BinaryAccuracy", "CategoricalAccuracy",
           "SparseCategoricalAccuracy", "MeanAbsoluteError", "MeanSquaredError", "get",
           "resolve_accuracy"]


def _np(value) -> np.ndarray:
    if isinstance(value, dc.Tensor):
        return value.detach().numpy()
    return np.asarray(value)


class Metric:
    """A running weighted mean of per-sample values (what every built-in metric is)."""

    name = "metric"

    def __init__(self, name: Optional[str] = None):
        if name is not None:
            self.name = name
        self.reset_state()

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def values(self, y_true, y_pred) -> np.ndarray:
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        v = np.asarray(self.values(_np(y_true), _np(y_pred)), dtype=np.float64).reshape(-1)
        if sample_weight is None:
            self.total += float(v.sum())
            self.count += v.size
        else:
            w = _np(sample_weight).astype(np.float64).reshape(-1)
            if w.size != v.size:  # per-sample weights on per-element values (e.g. (N, 1))
                w = np.repeat(w, v.size // max(w.size, 1))
            self.total += float((v * w).sum())
            self.count += float(w.sum())

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def get_state(self) -> dict:
        return {"total": self.total, "count": self.count}

    def set_state(self, state: dict) -> None:
        self.total = float(state["total"])
        self.count = float(state["count"])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} result={self.result():.4f}>"


class Mean(Metric):
    """Mean of the values given to ``update_state(values)`` (the loss tracker)."""

    name = "mean"

    def update_state(self, values, sample_weight=None) -> None:  # noqa: D102
        v = _np(values).astype(np.float64).reshape(-1)
        self.total += float(v.sum())
        self.count += v.size


def _align(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        return y_true[..., None]
    return y_true


class BinaryAccuracy(Metric):
    name = "binary_accuracy"

    def __init__(self, name: Optional[str] = None, threshold: float = 0.5):
        self.threshold = threshold
        super().__init__(name)

    def values(self, y_true, y_pred):
        y_true = _align(y_true, y_pred)
        return (y_true > 0.5) == (y_pred > self.threshold)


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"

    def values(self, y_true, y_pred):
        return np.argmax(y_true, -1) == np.argmax(y_pred, -1)


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"

    def values(self, y_true, y_pred):
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        return y_true.astype(np.int64) == np.argmax(y_pred, -1)


class MeanAbsoluteError(Metric):
    name = "mean_absolute_error"

    def values(self, y_true, y_pred):
        y_true = _align(y_true, y_pred)
        d = np.abs(y_pred - y_true)
        return d.reshape(d.shape[0], -1).mean(1) if d.ndim > 1 else d


class MeanSquaredError(Metric):
    name = "mean_squared_error"

    def values(self, y_true, y_pred):
        y_true = _align(y_true, y_pred)
        d = (y_pred - y_true) ** 2
        return d.reshape(d.shape[0], -1).mean(1) if d.ndim > 1 else d


class MeanMetricWrapper(Metric):
    """Wraps ``fn(y_true, y_pred) -> per-sample values`` (NumPy arrays in, array out)."""

    def __init__(self, fn: Callable, name: Optional[str] = None):
        self.fn = fn
        super().__init__(name or getattr(fn, "__name__", "metric"))

    def values(self, y_true, y_pred):
        return _np(self.fn(y_true, y_pred))


class _Accuracy(Metric):
    """'accuracy' before the first batch tells which kind it is (see ``resolve_accuracy``)."""

    def __init__(self, name: str = "accuracy", loss=None):
        self.loss = loss
        self.inner: Optional[Metric] = None
        super().__init__(name)

    def reset_state(self) -> None:
        super().reset_state()
        if getattr(self, "inner", None) is not None:
            self.inner.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if self.inner is None:
            self.inner = resolve_accuracy(self.loss, _np(y_true), _np(y_pred))
        self.inner.update_state(y_true, y_pred, sample_weight)

    def result(self) -> float:
        return self.inner.result() if self.inner is not None else 0.0

    def get_state(self) -> dict:
        if self.inner is None:
            return {"total": 0.0, "count": 0.0, "kind": None}
        threshold = getattr(self.inner, "threshold", None)
        return {**self.inner.get_state(), "kind": type(self.inner).__name__,
                "threshold": threshold}

    def set_state(self, state: dict) -> None:
        kind = state.get("kind")
        if kind is not None:
            cls = {c.__name__: c for c in (BinaryAccuracy, CategoricalAccuracy,
                                            SparseCategoricalAccuracy)}[kind]
            self.inner = cls(self.name) if cls is not BinaryAccuracy else \
                cls(self.name, threshold=state.get("threshold", 0.5))
            self.inner.set_state(state)


def resolve_accuracy(loss, y_true: np.ndarray, y_pred: np.ndarray) -> Metric:
    """Keras' choice for 'accuracy' given the loss and the first batch's shapes. A loss names
    the accuracy that goes with it in ``accuracy_kind`` ('binary', thresholded at 0 when the
    loss takes logits; 'categorical'; 'sparse_categorical'), as the keras losses do; this
    module knows no loss class, so the loop does not depend on keras."""
    name = "accuracy"
    kind = getattr(loss, "accuracy_kind", None)
    if kind == "binary":
        return BinaryAccuracy(name, threshold=0.0 if getattr(loss, "from_logits", False) else 0.5)
    if kind == "sparse_categorical":
        return SparseCategoricalAccuracy(name)
    if kind == "categorical":
        return CategoricalAccuracy(name)
    if y_pred.ndim >= 1 and y_pred.shape[-1] == 1 or y_pred.ndim == 1:
        return BinaryAccuracy(name)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == y_pred.shape[-1]:
        return CategoricalAccuracy(name)
    return SparseCategoricalAccuracy(name)


_NAMES = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
}


def get(identifier, loss=None) -> Metric:
    """A Metric from a name, a Metric, a Metric class, or a per-sample function."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            return _Accuracy(identifier, loss)
        if identifier not in _NAMES:
            raise ValueError(f"[compile] unknown metric {identifier!r}; known metrics: "
                             f"{sorted(list(_NAMES) + ['accuracy'])}")
        return _NAMES[identifier](identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(f"[compile] a metric must be a string, a Metric or a callable, got "
                    f"{type(identifier).__name__}")


def serialize(metric: Metric):
    """A name load_model can pass back to ``get`` (None when it can't be rebuilt)."""
    if isinstance(metric, _Accuracy):
        return metric.name
    if type(metric) in _NAMES.values() and metric.name in _NAMES:
        return metric.name
    return None
