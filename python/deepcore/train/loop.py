"""The training loop shared by ``keras.Model.fit`` and ``deepcore.train.Trainer``.

An *engine* (a keras Model, or a Trainer around an ``nn.Module``) supplies the steps:
``train_step(batch) -> n_samples`` (forward, loss, backward, optimizer step, metric updates),
``test_step(batch) -> n_samples``, ``predict_step(batch) -> output``, ``metric_objects()``
(the loss tracker first), ``logs()``, and the attributes ``module``, ``optimizer``,
``scheduler``, ``scheduler_interval`` ("epoch" or "step"), ``scheduler_monitor`` and
``stop_training``. The loop owns epochs, callbacks, progress display, validation,
checkpoints and Ctrl-C handling.
"""
from __future__ import annotations

import signal
import sys
import threading
from typing import Any, Dict, List, Optional

import numpy as np

from .callbacks import CallbackList, History
from ..progress import EpochProgress, resolve_verbose
from ..utils._generator import Generator, rng_for
from .state import capture_rng, load_state, restore_rng, save_state

__all__ = ["ArrayBatches", "LoaderBatches", "run_fit", "run_evaluate", "run_predict"]


# ---- where batches come from ------------------------------------------------------------------

class ArrayBatches:
    """Batches sliced from in-memory arrays: ``inputs`` (a list of arrays, one per model
    input), optional ``y`` and ``sample_weight``. A shuffled epoch draws its permutation from
    a stream seeded by deepcore's global RNG, exactly as a DataLoader's RandomSampler does,
    so ``dc.manual_seed`` fixes the order and the checkpoint's RNG state recreates it."""

    def __init__(self, inputs: List[np.ndarray], y=None, sample_weight=None,
                 batch_size: int = 32, shuffle: bool = False, single_input: bool = True):
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"[fit] batch_size must be a positive integer, got {batch_size!r}")
        self.inputs, self.y, self.sample_weight = inputs, y, sample_weight
        self.batch_size, self.shuffle, self.single_input = batch_size, shuffle, single_input
        self.n = len(inputs[0])
        for a in inputs + [a for a in (y, sample_weight) if a is not None]:
            if len(a) != self.n:
                raise ValueError(f"[fit] all arrays must have the same number of samples: got "
                                 f"{[len(a) for a in inputs]} inputs"
                                 + (f" and {len(y)} targets" if y is not None else ""))
        self.generators: List[Generator] = []

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def _batch(self, idx):
        from .. import from_numpy

        def take(a):
            return from_numpy(np.ascontiguousarray(a[idx]))
        xs = [take(a) for a in self.inputs]
        x = xs[0] if self.single_input else xs
        out = [x]
        if self.y is not None:
            out.append(take(self.y))
            if self.sample_weight is not None:
                out.append(take(self.sample_weight))
        return tuple(out)

    def __iter__(self):
        # The permutation is drawn here, not lazily on the first batch: the checkpoint's
        # "epoch_rng" must be the state just before the draw (Note [Bit-exact resume]).
        order = rng_for(None).permutation(self.n) if self.shuffle else None
        return self._epoch(order)

    def _epoch(self, order):
        for start in range(0, self.n, self.batch_size):
            stop = min(start + self.batch_size, self.n)
            yield self._batch(order[start:stop] if order is not None else slice(start, stop))

    @staticmethod
    def skip(it, k: int) -> None:
        for _ in range(k):
            next(it)


class LoaderBatches:
    """A DataLoader (or any re-iterable of batches). The deepcore Generators it owns are
    part of the checkpoint's random state."""

    def __init__(self, loader):
        self.loader = loader
        gens = []
        for owner in (loader, getattr(loader, "sampler", None),
                      getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
            g = getattr(owner, "generator", None)
            if isinstance(g, Generator) and all(g is not h for h in gens):
                gens.append(g)
        self.generators = gens

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)

    @staticmethod
    def skip(it, k: int) -> None:
        # A single-process DataLoader iterator can skip indices without loading the samples.
        if hasattr(it, "_next_index") and hasattr(it, "_fetcher"):
            for _ in range(k):
                it._next_index()
            it._num_yielded += k
            return
        for _ in range(k):
            next(it)


def _length(batches) -> Optional[int]:
    try:
        return len(batches)
    except TypeError:
        return None


# ---- Ctrl-C -----------------------------------------------------------------------------------

class _InterruptGuard:
    """While training with a checkpoint path, the first Ctrl-C only sets a flag: the loop
    finishes the step in flight, saves, and stops. A second Ctrl-C interrupts at once."""

    def __init__(self, enabled: bool):
        self.requested = False
        self._previous = None
        self.enabled = enabled and threading.current_thread() is threading.main_thread()

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            signal.signal(signal.SIGINT, self._previous)


# ---- fit --------------------------------------------------------------------------------------

def _training_state(engine, history: History, callbacks: CallbackList, epoch: int, batch: int,
                    step: int, epoch_rng, generators) -> Dict[str, Any]:
    sched = engine.scheduler
    return {
        "model": engine.module.state_dict(),
        "optimizer": engine.optimizer.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,
        "epoch": epoch, "batch": batch, "global_step": step,
        "rng": capture_rng(generators),
        "epoch_rng": epoch_rng if batch > 0 else None,
        "metrics": [m.get_state() for m in engine.metric_objects()] if batch > 0 else None,
        "history": {"epoch": list(history.epoch), "history": dict(history.history)},
        "callbacks": callbacks.get_state(),
    }


def _scheduler_step(engine, logs: Dict[str, float]) -> None:
    sched = engine.scheduler
    if sched is None or engine.scheduler_interval != "epoch":
        return
    from ..optim.lr_scheduler import ReduceLROnPlateau
    if isinstance(sched, ReduceLROnPlateau):
        key = engine.scheduler_monitor
        if key not in logs:
            raise KeyError(f"[fit] ReduceLROnPlateau scheduler monitors {key!r}, which is not "
                           f"in the logs {sorted(logs)}")
        sched.step(logs[key])
    else:
        sched.step()


def run_fit(engine, train, *, epochs: int, initial_epoch: int = 0, validation=None,
            callbacks=None, verbose=1, checkpoint: Optional[str] = None, resume=None,
            steps_per_epoch: Optional[int] = None, validation_freq: int = 1) -> History:
    """Trains ``engine`` on ``train`` (ArrayBatches / LoaderBatches) for epochs
    ``initial_epoch .. epochs - 1``; see the module docstring and Note [Bit-exact resume]."""
    verbose = resolve_verbose(verbose)
    if resume is True:
        resume = checkpoint if checkpoint is not None and _exists(checkpoint) else None
    history = History()
    cbs = CallbackList(list(callbacks or []) + [history], model=engine)
    generators = train.generators
    steps = _length(train)
    if steps_per_epoch is not None:
        steps = steps_per_epoch if steps is None else min(steps, steps_per_epoch)

    state = None
    epoch, skip, step = initial_epoch, 0, 0
    if resume:
        state = load_state(resume)
        engine.module.load_state_dict(state["model"])
        engine.optimizer.load_state_dict(state["optimizer"])
        if engine.scheduler is not None and state.get("scheduler") is not None:
            engine.scheduler.load_state_dict(state["scheduler"])
        epoch, skip, step = int(state["epoch"]), int(state["batch"]), int(state["global_step"])
        history.epoch = list(state["history"]["epoch"])
        history.history = {k: list(v) for k, v in state["history"]["history"].items()}

    cbs.set_params({"epochs": epochs, "steps": steps, "verbose": verbose,
                    "initial_epoch": epoch, "initial_step": step})
    engine.stop_training = False
    engine.interrupted = False
    cbs.on_train_begin()
    if state is not None:
        cbs.set_state(state.get("callbacks") or {})
        if skip == 0:
            restore_rng(state["rng"], generators)

    guard = _InterruptGuard(enabled=checkpoint is not None)
    in_step = False
    batch_done = skip
    epoch_rng = None
    logs: Dict[str, float] = {}
    try:
        with guard:
            while epoch < epochs:
                engine.module.train()
                engine.reset_metrics()
                cbs.on_epoch_begin(epoch)
                if skip:
                    # Mid-epoch resume: the same permutation, then the streams as they were.
                    epoch_rng = state["epoch_rng"]
                    restore_rng(epoch_rng, generators)
                    it = iter(train)
                    restore_rng(state["rng"], generators)
                    train.skip(it, skip)
                    for m, s in zip(engine.metric_objects(), state["metrics"] or []):
                        m.set_state(s)
                else:
                    epoch_rng = capture_rng(generators)
                    it = iter(train)
                progress = EpochProgress(epoch, epochs, steps, verbose)
                batch_done, skip = skip, 0
                logs = engine.logs() if batch_done else {}
                for batch_data in it:
                    if steps is not None and batch_done >= steps:
                        break
                    cbs.on_train_batch_begin(batch_done)
                    in_step = True
                    n = engine.train_step(batch_data)
                    if engine.scheduler is not None and engine.scheduler_interval == "step":
                        engine.scheduler.step()
                    in_step = False
                    batch_done += 1
                    step += 1
                    logs = engine.logs()
                    progress.update(n, logs)
                    cbs.on_train_batch_end(batch_done - 1, logs)
                    if engine.stop_training or guard.requested:
                        break
                if guard.requested:
                    progress.close(logs)
                    raise KeyboardInterrupt
                logs = dict(engine.logs())
                if validation is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = run_evaluate(engine, validation, cbs, verbose=0)
                    logs.update({"val_" + k: v for k, v in val_logs.items()})
                _scheduler_step(engine, logs)
                cbs.on_epoch_end(epoch, logs)
                progress.close(logs)
                epoch += 1
                batch_done = 0
                if checkpoint is not None:
                    save_state(checkpoint, _training_state(engine, history, cbs, epoch, 0, step,
                                                           None, generators))
                if engine.stop_training:
                    break
    except KeyboardInterrupt:
        engine.interrupted = True
        saved = False
        if checkpoint is not None and not in_step:
            save_state(checkpoint, _training_state(engine, history, cbs, epoch, batch_done,
                                                   step, epoch_rng, generators))
            saved = True
        cbs.on_train_end(logs)
        if not saved:
            if checkpoint is not None:
                print("[fit] interrupted inside a training step; the last checkpoint in "
                      f"'{checkpoint}' is kept", file=sys.stderr)
            raise
        if verbose:
            print(f"[fit] interrupted in epoch {epoch + 1}, batch {batch_done}; training state "
                  f"saved to '{checkpoint}' (resume with fit(..., resume=...))",
                  file=sys.stderr)
        return history
    cbs.on_train_end(logs)
    return history


def _exists(path) -> bool:
    import os
    return os.path.exists(path)


# ---- evaluate / predict -----------------------------------------------------------------------

def run_evaluate(engine, batches, callbacks: Optional[CallbackList] = None, verbose=0,
                 steps: Optional[int] = None) -> Dict[str, float]:
    from ..autograd.grad_mode import no_grad

    cbs = callbacks if callbacks is not None else CallbackList(model=engine)
    was_training = engine.module.training
    engine.module.eval()
    engine.reset_metrics()
    cbs.on_test_begin()
    progress = EpochProgress(0, 1, _length(batches), resolve_verbose(verbose))
    logs: Dict[str, float] = {}
    try:
        with no_grad():
            for i, batch in enumerate(batches):
                if steps is not None and i >= steps:
                    break
                cbs.on_test_batch_begin(i)
                n = engine.test_step(batch)
                logs = engine.logs()
                progress.update(n, logs)
                cbs.on_test_batch_end(i, logs)
        logs = dict(engine.logs())
    finally:
        engine.module.train(was_training)
    progress.close(logs)
    cbs.on_test_end(logs)
    return logs


def run_predict(engine, batches, callbacks: Optional[CallbackList] = None,
                steps: Optional[int] = None) -> List[Any]:
    from ..autograd.grad_mode import no_grad

    cbs = callbacks if callbacks is not None else CallbackList(model=engine)
    was_training = engine.module.training
    engine.module.eval()
    cbs.on_predict_begin()
    outputs = []
    try:
        with no_grad():
            for i, batch in enumerate(batches):
                if steps is not None and i >= steps:
                    break
                cbs.on_predict_batch_begin(i)
                out = engine.predict_step(batch)
                outputs.append(out)
                cbs.on_predict_batch_end(i, {"outputs": out})
    finally:
        engine.module.train(was_training)
    cbs.on_predict_end()
    return outputs

