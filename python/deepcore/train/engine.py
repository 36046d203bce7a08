"""The training/test/predict steps shared by keras models and ``Trainer``.

A subclass provides ``module`` (the nn.Module), ``optimizer``, ``_forward(x)`` and
``_loss_value(y_pred, y, sample_weight)``; this class does the rest of one step and keeps the
metrics (a loss tracker first, then the user's metrics). ``_ddp``, when set, is the
DistributedDataParallel that trains ``module`` across processes (deepcore/train/distributed.py):
training steps run through it, evaluation and prediction through the plain module.

Mixed precision: ``_precision_context()`` is entered around the forward and the loss of every
step (``Trainer`` returns a ``deepcore.autocast`` there; keras models cast per layer instead,
deepcore/keras/mixed_precision.py), and a ``grad_scaler`` (a ``deepcore.amp.GradScaler``)
scales the loss before ``backward`` and skips the steps whose gradients overflowed.
"""
from __future__ import annotations

import contextlib
from typing import Dict, List, Optional

import numpy as np

from . import metrics as metrics_mod


def unpack(batch):
    """(x,), (x, y) or (x, y, sample_weight) from a batch tuple/list, or x alone."""
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return batch[0], batch[1], batch[2]
        raise ValueError(f"[fit] a batch must be x, (x, y) or (x, y, sample_weight); got a "
                         f"{type(batch).__name__} of {len(batch)} items")
    return batch, None, None


def _moved(tree, device: str):
    """The tensors of a batch (a tensor, or lists/tuples/dicts of them) on `device`."""
    from .._C import Tensor
    if isinstance(tree, Tensor):
        return tree.to(device)
    if isinstance(tree, (list, tuple)):
        return type(tree)(_moved(v, device) for v in tree)
    if isinstance(tree, dict):
        return {k: _moved(v, device) for k, v in tree.items()}
    return tree


def batch_size_of(x) -> int:
    while isinstance(x, (list, tuple)):
        x = x[0]
    if isinstance(x, dict):
        return batch_size_of(next(iter(x.values())))
    return int(x.shape[0])


def class_weights_for(y, class_weight: Dict[int, float]) -> np.ndarray:
    """Per-sample weights from ``{class: weight}``: one-hot targets use their argmax,
    integer or 0/1 targets their value."""
    y = y.detach().numpy() if hasattr(y, "detach") else np.asarray(y)
    if y.ndim >= 2 and y.shape[-1] > 1:
        labels = y.argmax(-1)
    else:
        labels = np.rint(y.reshape(len(y), -1)[:, 0]).astype(np.int64)
    return np.array([class_weight.get(int(c), 1.0) for c in labels.reshape(-1)],
                    dtype=np.float32)


class StepEngine:
    module = None
    optimizer = None
    scheduler = None
    scheduler_interval = "epoch"
    scheduler_monitor = "val_loss"
    stop_training = False
    class_weight: Optional[Dict[int, float]] = None
    grad_scaler = None
    _ddp = None

    def _precision_context(self):
        """Entered around each step's forward and loss (an autocast, for mixed precision)."""
        return contextlib.nullcontext()

    def _network(self):
        """What a step calls: the DistributedDataParallel wrapper while training with grad
        enabled (its backward averages the gradients), otherwise the plain module, so
        evaluation starts no collective."""
        from .._C import is_grad_enabled
        return self._ddp if self._ddp is not None and is_grad_enabled() else self.module

    def _init_metrics(self, metrics, loss) -> None:
        self._loss_tracker = metrics_mod.Mean("loss")
        self._metrics: List[metrics_mod.Metric] = [metrics_mod.get(m, loss)
                                                   for m in (metrics or [])]

    def metric_objects(self) -> List[metrics_mod.Metric]:
        return [self._loss_tracker] + self._metrics

    @property
    def metrics_names(self) -> List[str]:
        return [m.name for m in self.metric_objects()]

    def reset_metrics(self) -> None:
        for m in self.metric_objects():
            m.reset_state()

    def logs(self) -> Dict[str, float]:
        return {m.name: float(m.result()) for m in self.metric_objects()}

    def _sample_weight(self, y, sw):
        if self.class_weight is None or y is None:
            return sw
        from .. import from_numpy
        cw = from_numpy(class_weights_for(y, self.class_weight))
        return cw if sw is None else cw * sw

    def _update_metrics(self, loss, y, y_pred, sw) -> None:
        self._loss_tracker.update_state(float(loss.item()))
        if y is not None and self._metrics:
            y_pred = y_pred.detach()
            if y_pred.dtype.is_floating_point and y_pred.dtype.itemsize < 4:
                y_pred = y_pred.float()  # metrics in float32, as Keras computes them
            if y_pred.device.type != "cpu":  # metrics read on the host
                y, y_pred, sw = _moved((y, y_pred, sw), "cpu")
            for m in self._metrics:
                m.update_state(y, y_pred, sw)

    def _unpack(self, batch):
        """(x, y, sample_weight) of a batch, on the device of the module's parameters (data
        loaders yield cpu tensors; a model moved with .to("cuda") computes there)."""
        x, y, sw = unpack(batch)
        p = next(iter(self.module.parameters()), None) if self.module is not None else None
        if p is not None and p.device.type != "cpu":
            x, y, sw = _moved((x, y, sw), str(p.device))
        return x, y, sw

    def train_step(self, batch) -> int:
        x, y, sw = self._unpack(batch)
        sw = self._sample_weight(y, sw)
        self.optimizer.zero_grad()
        with self._precision_context():
            y_pred = self._forward(x)
            loss = self._loss_value(y_pred, y, sw)
        scaler = self.grad_scaler
        if scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(self.optimizer)  # skipped when a gradient is inf/NaN
            scaler.update()
        self._update_metrics(loss, y, y_pred, sw)
        return batch_size_of(x)

    def test_step(self, batch) -> int:
        x, y, sw = self._unpack(batch)
        with self._precision_context():
            y_pred = self._forward(x)
            loss = self._loss_value(y_pred, y, sw)
        self._update_metrics(loss, y, y_pred, sw)
        return batch_size_of(x)

    def predict_step(self, batch):
        x, _, _ = self._unpack(batch)
        with self._precision_context():
            out = self._forward(x)
        if isinstance(out, (list, tuple)):
            return [o.detach().cpu().numpy() for o in out]
        return out.detach().cpu().numpy()
