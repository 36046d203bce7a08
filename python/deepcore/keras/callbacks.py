"""Keras callbacks: hooks called by the training loop shared by ``keras.Model.fit`` and
``deepcore.train.Trainer``.

``self.model`` is the object being trained: a keras Model, or a Trainer wrapping an
``nn.Module``. Callbacks use only what both provide: ``stop_training``, ``optimizer`` (a
``deepcore.optim`` optimizer), ``state_dict`` / ``load_state_dict``, ``save`` and
``save_weights``. Callbacks whose decisions depend on the past (EarlyStopping,
ReduceLROnPlateau, ModelCheckpoint) expose ``get_state`` / ``set_state`` so a resumed run
continues them where the checkpoint left off.
"""
from __future__ import annotations

import csv
import math
import os
import sys
import warnings
from typing import Callable, Optional

import numpy as np

# The protocol the training loop calls lives with the loop; these names stay importable here.
from ..train.callbacks import Callback, CallbackList, History, get_lr, set_lr  # noqa: F401

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "ReduceLROnPlateau", "LearningRateScheduler", "TensorBoard", "CSVLogger",
           "TerminateOnNaN", "LambdaCallback", "get_lr", "set_lr"]


def _monitor_op(mode: str, monitor: str, owner: str):
    if mode not in ("auto", "min", "max"):
        warnings.warn(f"[{owner}] mode {mode!r} is unknown, falling back to 'auto'")
        mode = "auto"
    if mode == "auto":
        # Keras: accuracy-like and AUC-like quantities go up, everything else down.
        name = monitor.split("val_", 1)[-1] if monitor.startswith("val_") else monitor
        mode = "max" if ("acc" in name or name.startswith("fmeasure") or name == "auc") \
            else "min"
    return mode


def _better(mode: str, current: float, reference: float, min_delta: float) -> bool:
    if mode == "min":
        return current < reference - min_delta
    return current > reference + min_delta


class EarlyStopping(Callback):
    """Stops training when ``monitor`` stops improving by more than ``min_delta`` for
    ``patience`` epochs. With ``restore_best_weights`` the weights of the best epoch are put
    back when it stops. ``baseline``: epochs that don't beat it count as no improvement."""

    _state_keys = ("wait", "best", "best_epoch", "stopped_epoch")

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__()
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.mode = _monitor_op(mode, monitor, "EarlyStopping")
        self.best_weights = None
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self._reset()

    def _snapshot(self):
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"[EarlyStopping] monitor {self.monitor!r} is not in the logs; "
                          f"available: {sorted(logs or {})}")
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self._snapshot()
        self.wait += 1
        if _better(self.mode, current, self.best, self.min_delta):
            self.best = float(current)
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self._snapshot()
            if self.baseline is None or _better(self.mode, current, self.baseline,
                                                self.min_delta):
                self.wait = 0
                return
        # Keras 2's rule: an improvement that still misses ``baseline`` keeps counting.
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                if self.verbose:
                    print(f"Restoring model weights from the end of the best epoch: "
                          f"{self.best_epoch + 1}.")
                self.model.load_state_dict(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


class ModelCheckpoint(Callback):
    """Saves the model (or only its weights) to ``filepath`` formatted with ``epoch``
    (1-based, like Keras) and the epoch's logs, e.g. ``"ckpt-{epoch:02d}-{val_loss:.2f}"``.
    ``save_best_only`` keeps only files that improve ``monitor``."""

    rank_zero_only = True  # under data-parallel training only rank 0 writes files

    _state_keys = ("best",)

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"[ModelCheckpoint] save_freq must be 'epoch' or a positive "
                             f"number of batches, got {save_freq!r}")
        self.mode = _monitor_op(mode, monitor, "ModelCheckpoint")
        if initial_value_threshold is not None:
            self.best = float(initial_value_threshold)
        else:
            self.best = math.inf if self.mode == "min" else -math.inf
        self._batches = 0
        self._epoch = 0

    def _save(self, epoch: int, logs: dict, batch: Optional[int] = None) -> None:
        try:
            path = self.filepath.format(epoch=epoch + 1, batch=(batch or 0) + 1, **(logs or {}))
        except KeyError as e:
            raise KeyError(f"[ModelCheckpoint] filepath {self.filepath!r} names {e}, which is "
                           f"not in the logs {sorted(logs or {})}") from None
        if self.save_best_only:
            current = (logs or {}).get(self.monitor)
            if current is None:
                warnings.warn(f"[ModelCheckpoint] can save best model only with "
                              f"{self.monitor!r} available, skipping")
                return
            if not _better(self.mode, current, self.best, 0.0):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = float(current)
        elif self.verbose:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch":
            self._batches += 1
            if self._batches % self.save_freq == 0:
                self._save(self._epoch, logs, batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs, then waits ``cooldown`` epochs; never below ``min_lr``."""

    _state_keys = ("wait", "best", "cooldown_counter")

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"[ReduceLROnPlateau] factor must be < 1, got {factor}")
        self.monitor, self.factor, self.patience = monitor, float(factor), patience
        self.verbose, self.min_delta, self.cooldown = verbose, min_delta, cooldown
        self.min_lr = float(min_lr)
        self.mode = _monitor_op(mode, monitor, "ReduceLROnPlateau")
        self._reset()

    def _reset(self):
        self.wait = 0
        self.cooldown_counter = 0
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = get_lr(self.model)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"[ReduceLROnPlateau] monitor {self.monitor!r} is not in the logs; "
                          f"available: {sorted(logs)}")
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if _better(self.mode, current, self.best, self.min_delta):
            self.best = float(current)
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = get_lr(self.model)
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    set_lr(self.model, new)
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class LearningRateScheduler(Callback):
    """Sets the learning rate at each epoch's start to ``schedule(epoch, lr)`` (or
    ``schedule(epoch)`` for one-argument functions)."""

    def __init__(self, schedule: Callable, verbose: int = 0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = get_lr(self.model)
        try:
            new = self.schedule(epoch, lr)
        except TypeError:
            new = self.schedule(epoch)
        if not isinstance(new, (float, int, np.floating, np.integer)):
            raise ValueError(f"[LearningRateScheduler] the schedule must return a float, got "
                             f"{type(new).__name__}")
        set_lr(self.model, float(new))
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = get_lr(self.model)


class TensorBoard(Callback):
    """Writes the epoch logs to ``log_dir/train`` and ``log_dir/validation`` as
    ``epoch_<name>`` scalars (Keras' layout), the learning rate as ``epoch_learning_rate``,
    and every ``histogram_freq`` epochs a histogram of each weight. ``update_freq`` = an int
    also writes ``batch_<name>`` scalars every that many batches."""

    rank_zero_only = True  # under data-parallel training only rank 0 writes files

    def __init__(self, log_dir: str = "logs", histogram_freq: int = 0, write_graph: bool = True,
                 update_freq="epoch", **kwargs):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.update_freq = update_freq
        self._writers = {}
        self._step = 0

    def _writer(self, name: str):
        if name not in self._writers:
            from ..utils.tensorboard import SummaryWriter
            self._writers[name] = SummaryWriter(os.path.join(self.log_dir, name))
        return self._writers[name]

    def on_train_begin(self, logs=None):
        self._step = self.params.get("initial_step", 0)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if isinstance(self.update_freq, int) and self._step % self.update_freq == 0:
            w = self._writer("train")
            for k, v in (logs or {}).items():
                if isinstance(v, (int, float)):
                    w.add_scalar(f"batch_{k}", v, self._step)

    def on_epoch_end(self, epoch, logs=None):
        train, val = self._writer("train"), None
        for k, v in (logs or {}).items():
            if not isinstance(v, (int, float)) or k == "learning_rate":
                continue
            if k.startswith("val_"):
                val = val or self._writer("validation")
                val.add_scalar(f"epoch_{k[4:]}", v, epoch)
            else:
                train.add_scalar(f"epoch_{k}", v, epoch)
        if self.model is not None and getattr(self.model, "optimizer", None) is not None:
            train.add_scalar("epoch_learning_rate", get_lr(self.model), epoch)
        if self.histogram_freq and (epoch + 1) % self.histogram_freq == 0:
            for name, p in self.model.named_parameters():
                train.add_histogram(name, p.detach().numpy(), epoch)
        for w in self._writers.values():
            w.flush()

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers = {}


class CSVLogger(Callback):
    """Appends one row per epoch (``epoch`` and the logs) to ``filename``, flushed at once."""

    rank_zero_only = True  # under data-parallel training only rank 0 writes files

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self._file = None
        self._writer = None
        self._keys = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and \
            os.path.getsize(self.filename) > 0
        if exists:
            with open(self.filename, newline="") as f:
                header = f.readline().strip()
            self._keys = header.split(self.sep)[1:] if header else None
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._has_header = exists

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self._keys,
                                          delimiter=self.sep, extrasaction="ignore")
            if not self._has_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update({k: logs.get(k, "NA") for k in self._keys})
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training", file=sys.stderr)
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from functions: ``on_epoch_begin(epoch, logs)``, ``on_epoch_end``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end``, ``on_train_begin(logs)``,
    ``on_train_end`` (and ``on_batch_begin`` / ``on_batch_end``, Keras 2's names)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not hasattr(Callback, name):
                raise TypeError(f"[LambdaCallback] unknown hook {name!r}")
            setattr(self, name, fn)
