"""``Trainer`` / ``fit``: Keras-style training for any ``nn.Module`` with a PyTorch loss.

    trainer = Trainer(model, optimizer=optim.Adam(model.parameters()),
                      loss_fn=nn.CrossEntropyLoss(), metrics=["accuracy"])
    history = trainer.fit(train_loader, epochs=10, val_loader=val_loader,
                          callbacks=[keras.callbacks.EarlyStopping(patience=2)])

The loop, callbacks, metrics, progress display and resumable checkpoints are the ones
``keras.Model.fit`` uses (deepcore/train/loop.py). Batches are ``(x, y)`` or
``(x, y, sample_weight)``; ``loss_fn(prediction, target)`` follows PyTorch's argument order.

Under a ``deepcore.distributed`` process group of several processes (or given a
``DistributedDataParallel``), ``fit`` trains data-parallel: see deepcore/train/distributed.py.
``distributed=False`` keeps every process training on its own.

``precision`` is Lightning's: ``"32"`` (``"32-true"``, the default) trains in float32;
``"bf16-mixed"`` (``"bf16"``) runs each step's forward and loss under
``deepcore.autocast(dtype=bfloat16)``; ``"16-mixed"`` (``"16"``) under float16 autocast, with
a ``deepcore.amp.GradScaler`` (``trainer.grad_scaler``) scaling the loss. Parameters,
gradients and optimizer state stay float32 in every mode; evaluation and prediction run under
the same autocast as training.
"""
from __future__ import annotations

from typing import Optional

from .. import serialization
from . import loop
from .distributed import wrap_model
from .engine import StepEngine

__all__ = ["Trainer", "fit", "PRECISIONS"]

# Lightning's spellings -> the canonical name (what ``trainer.precision`` reports).
PRECISIONS = {"32": "32-true", "32-true": "32-true", "bf16": "bf16-mixed",
              "bf16-mixed": "bf16-mixed", "16": "16-mixed", "16-mixed": "16-mixed"}


def _precision(value) -> str:
    key = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(key, str) or key not in PRECISIONS:
        raise ValueError(f"[Trainer] precision must be one of {sorted(PRECISIONS)} (or 32, 16), "
                         f"got {value!r}")
    return PRECISIONS[key]


class Trainer(StepEngine):
    def __init__(self, model, optimizer, loss_fn, metrics=None, scheduler=None,
                 scheduler_interval: str = "epoch", scheduler_monitor: str = "val_loss",
                 distributed: Optional[bool] = None, precision="32"):
        self.precision = _precision(precision)
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"[Trainer] scheduler_interval must be 'epoch' or 'step', got "
                             f"{scheduler_interval!r}")
        self.model = model
        # The plain module (checkpoints and state dicts hold its keys, without "module.").
        self._module, self._ddp = wrap_model(model, distributed, "Trainer")
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.scheduler_monitor = scheduler_monitor
        self.stop_training = False
        self.history = None
        self._init_metrics(metrics, None)
        self._autocast_dtype = None
        if self.precision != "32-true":
            from .. import _C
            from ..amp import GradScaler
            half = self.precision == "16-mixed"
            self._autocast_dtype = _C.dtype.float16 if half else _C.dtype.bfloat16
            if half:
                self.grad_scaler = GradScaler(self._device_type())

    @property
    def module(self):
        return self._module

    def _device_type(self) -> str:
        p = next(iter(self._module.parameters()), None)
        return "cpu" if p is None else p.device.type

    def _precision_context(self):
        if self._autocast_dtype is None:
            return super()._precision_context()
        from ..amp import autocast
        return autocast(self._device_type(), dtype=self._autocast_dtype)

    def _forward(self, x):
        return self._network()(x)

    def _loss_value(self, y_pred, y, sw):
        if y is None:
            raise ValueError("[Trainer] batches must be (x, y) or (x, y, sample_weight)")
        if sw is None:
            return self.loss_fn(y_pred, y)
        # Weighted: ask for per-sample losses when the loss supports reduction="none".
        reduction = getattr(self.loss_fn, "reduction", None)
        if reduction is None:
            raise ValueError("[Trainer] sample weights need a loss with a 'reduction' "
                             "attribute (an nn loss module)")
        self.loss_fn.reduction = "none"
        try:
            per = self.loss_fn(y_pred, y)
        finally:
            self.loss_fn.reduction = reduction
        per = per.reshape(per.shape[0], -1).mean(1) if per.dim() > 1 else per
        return (per * sw.to(per.dtype)).sum() / per.shape[0]

    # What callbacks use (see deepcore.keras.callbacks).
    def state_dict(self):
        return self._module.state_dict()

    def load_state_dict(self, state):
        return self._module.load_state_dict(state)

    def named_parameters(self):
        return self._module.named_parameters()

    def save_weights(self, path) -> None:
        serialization.save(self._module.state_dict(), path)

    def save(self, path) -> None:
        """An nn.Module's architecture is Python code, so only its weights are saved."""
        self.save_weights(path)

    def fit(self, train_loader, epochs: int = 1, val_loader=None, callbacks=None,
            verbose="auto", initial_epoch: int = 0, steps_per_epoch: Optional[int] = None,
            checkpoint=None, resume=None, validation_freq: int = 1):
        batches = train_loader if isinstance(train_loader, (loop.ArrayBatches,
                                                            loop.LoaderBatches)) \
            else loop.LoaderBatches(train_loader)
        val = loop.LoaderBatches(val_loader) if val_loader is not None else None
        self.history = loop.run_fit(self, batches, epochs=epochs, initial_epoch=initial_epoch,
                                    validation=val, callbacks=callbacks, verbose=verbose,
                                    checkpoint=checkpoint, resume=resume,
                                    steps_per_epoch=steps_per_epoch,
                                    validation_freq=validation_freq)
        return self.history

    def evaluate(self, loader, callbacks=None, verbose=0) -> dict:
        cbs = loop.CallbackList(callbacks, model=self)
        return loop.run_evaluate(self, loop.LoaderBatches(loader), cbs, verbose=verbose)

    def predict(self, loader, callbacks=None):
        import numpy as np
        cbs = loop.CallbackList(callbacks, model=self)
        outs = loop.run_predict(self, loop.LoaderBatches(loader), cbs)
        return np.concatenate(outs) if outs else np.empty((0,))


def fit(model, train_loader, *, optimizer, loss_fn, epochs: int = 1, val_loader=None,
        callbacks=None, metrics=None, scheduler=None, scheduler_interval: str = "epoch",
        verbose="auto", checkpoint=None, resume=None, initial_epoch: int = 0,
        distributed: Optional[bool] = None, precision="32"):
    """Trains ``model`` (an nn.Module) and returns the ``History``; see ``Trainer``."""
    trainer = Trainer(model, optimizer, loss_fn, metrics=metrics, scheduler=scheduler,
                      scheduler_interval=scheduler_interval, distributed=distributed,
                      precision=precision)
    return trainer.fit(train_loader, epochs=epochs, val_loader=val_loader, callbacks=callbacks,
                       verbose=verbose, checkpoint=checkpoint, resume=resume,
                       initial_epoch=initial_epoch)

