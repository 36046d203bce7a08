"""The callback protocol of the training loop (``deepcore.train.loop``), shared by
``deepcore.train.Trainer`` and ``keras.Model.fit``: the ``Callback`` base class, the
``CallbackList`` that fans each hook out, and the ``History`` every fit returns.

The built-in callbacks (EarlyStopping, ModelCheckpoint, ...) live in
``deepcore.keras.callbacks``, which re-exports these names: keras builds on this module, never
the other way round.
"""
from __future__ import annotations

from typing import Dict, List, Optional

__all__ = ["Callback", "CallbackList", "History", "get_lr", "set_lr"]


def get_lr(model) -> float:
    return float(model.optimizer.param_groups[0]["lr"])


def set_lr(model, lr: float) -> None:
    for group in model.optimizer.param_groups:
        group["lr"] = float(lr)


class Callback:
    """Base class: every hook does nothing. ``set_model`` / ``set_params`` are called by the
    loop before ``on_train_begin``.

    ``rank_zero_only = True`` marks a callback whose only effect is output (files, logs,
    TensorBoard): when several processes train one model (DistributedDataParallel), only
    rank 0 runs it. Every other callback runs on every rank, with the same all-reduced logs,
    so decisions such as early stopping agree across ranks."""

    rank_zero_only: bool = False

    def __init__(self):
        self.model = None
        self.params: Dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: Dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass

    # Keras 2 names for the training-batch hooks.
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass

    _state_keys: tuple = ()

    def get_state(self) -> dict:
        return {k: getattr(self, k) for k in self._state_keys}

    def set_state(self, state: dict) -> None:
        for k in self._state_keys:
            if k in state:
                setattr(self, k, state[k])


class CallbackList(Callback):
    """Calls each hook on every callback in order. With ``main_process=False`` (a rank other
    than 0 of a distributed fit) the ``rank_zero_only`` callbacks stay in the list -- their
    indices key the checkpointed states -- but their hooks are not called."""

    def __init__(self, callbacks: Optional[List[Callback]] = None, model=None,
                 main_process: bool = True, **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        self.main_process = main_process
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    def set_model(self, model) -> None:
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params) -> None:
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def _call(self, name, *args):
        for cb in self.callbacks:
            if self.main_process or not getattr(cb, "rank_zero_only", False):
                getattr(cb, name)(*args)

    def on_train_begin(self, logs=None): self._call("on_train_begin", logs)
    def on_train_end(self, logs=None): self._call("on_train_end", logs)
    def on_epoch_begin(self, epoch, logs=None): self._call("on_epoch_begin", epoch, logs)
    def on_epoch_end(self, epoch, logs=None): self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)
        self._call("on_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)
        self._call("on_batch_end", batch, logs)

    def on_test_begin(self, logs=None): self._call("on_test_begin", logs)
    def on_test_end(self, logs=None): self._call("on_test_end", logs)
    def on_test_batch_begin(self, batch, logs=None): self._call("on_test_batch_begin", batch, logs)
    def on_test_batch_end(self, batch, logs=None): self._call("on_test_batch_end", batch, logs)
    def on_predict_begin(self, logs=None): self._call("on_predict_begin", logs)
    def on_predict_end(self, logs=None): self._call("on_predict_end", logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs)

    def get_state(self) -> dict:
        return {str(i): cb.get_state() for i, cb in enumerate(self.callbacks)
                if cb.get_state()}

    def set_state(self, state: dict) -> None:
        for i, cb in enumerate(self.callbacks):
            if str(i) in state:
                cb.set_state(state[str(i)])


class History(Callback):
    """Records the epoch logs: ``history.history['loss']``, ``history.epoch``."""

    def __init__(self):
        super().__init__()
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self
