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
        self._sampler = None  # this process's share under distributed training
        self.seed: Optional[int] = None

    def distribute(self, rank: int, world_size: int, training: bool, seed: int) -> None:
        """Restricts the batches to rank ``rank``'s share of ``world_size``: for training a
        DistributedSampler split (shuffled by ``seed`` + epoch when ``shuffle``), for
        evaluation every ``world_size``-th sample from ``rank``, unpadded."""
        from ..utils.data.distributed import DistributedSampler
        from .distributed import _ShardSampler
        if training:
            self._sampler = DistributedSampler(range(self.n), num_replicas=world_size,
                                               rank=rank, shuffle=self.shuffle, seed=seed)
            self.seed = seed
        else:
            self._sampler = _ShardSampler(self.n, rank, world_size)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self._sampler, "set_epoch"):
            self._sampler.set_epoch(epoch)

    def _set_seed(self, seed: int) -> None:
        if hasattr(self._sampler, "seed"):
            self._sampler.seed = self.seed = int(seed)

    def __len__(self) -> int:
        n = self.n if self._sampler is None else len(self._sampler)
        return (n + self.batch_size - 1) // self.batch_size

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
        if self._sampler is not None:
            return self._epoch(next(self._sampler._epoch_chunks()))
        order = rng_for(None).permutation(self.n) if self.shuffle else None
        return self._epoch(order)

    def _epoch(self, order):
        n = self.n if order is None else len(order)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
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

    def _distributed_sampler(self):
        from ..utils.data.distributed import DistributedSampler
        sampler = getattr(self.loader, "sampler", None)
        return sampler if isinstance(sampler, DistributedSampler) else None

    @property
    def seed(self) -> Optional[int]:
        sampler = self._distributed_sampler()
        return sampler.seed if sampler is not None else None

    def _set_seed(self, seed: int) -> None:
        sampler = self._distributed_sampler()
        if sampler is not None:
            sampler.seed = int(seed)

    def set_epoch(self, epoch: int) -> None:
        """A DistributedSampler shuffles by its epoch, which the loop sets before each."""
        sampler = self._distributed_sampler()
        if sampler is not None:
            sampler.set_epoch(epoch)

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
                    step: int, train, per_rank: Dict[str, Any]) -> Dict[str, Any]:
    sched = engine.scheduler
    scaler = getattr(engine, "grad_scaler", None)
    return {
        "model": engine.module.state_dict(),
        "optimizer": engine.optimizer.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,
        "grad_scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": epoch, "batch": batch, "global_step": step,
        **per_rank,
        "history": {"epoch": list(history.epoch), "history": dict(history.history)},
        "callbacks": callbacks.get_state(),
        "data_seed": getattr(train, "seed", None),
    }


def _rank_part(engine, batch: int, epoch_rng, generators) -> Dict[str, Any]:
    """What differs between the ranks of a distributed fit: the random streams and the
    metrics of the epoch in progress."""
    return {
        "rng": capture_rng(generators),
        "epoch_rng": epoch_rng if batch > 0 else None,
        "metrics": [m.get_state() for m in engine.metric_objects()] if batch > 0 else None,
    }


def _save(ctx, path: str, engine, history, cbs, epoch, batch, step, train, epoch_rng) -> None:
    part = _rank_part(engine, batch, epoch_rng, train.generators)
    state = _training_state(engine, history, cbs, epoch, batch, step, train, part)
    if ctx is None:
        save_state(path, state)
    else:
        ctx.write_checkpoint(path, state, part)


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


def _logs(engine, ctx) -> Dict[str, float]:
    return engine.logs() if ctx is None else ctx.reduce_logs(engine.metric_objects())


def _context(engine):
    """The DistributedContext of a fit whose engine trains through DistributedDataParallel."""
    ddp = getattr(engine, "_ddp", None)
    if ddp is None:
        return None
    from .distributed import DistributedContext
    return DistributedContext(ddp)


def run_fit(engine, train, *, epochs: int, initial_epoch: int = 0, validation=None,
            callbacks=None, verbose=1, checkpoint: Optional[str] = None, resume=None,
            steps_per_epoch: Optional[int] = None, validation_freq: int = 1) -> History:
    """Trains ``engine`` on ``train`` (ArrayBatches / LoaderBatches) for epochs
    ``initial_epoch .. epochs - 1``; see the module docstring and Note [Bit-exact resume] (the
checkpoint holds the engine's ``grad_scaler`` state too, under mixed precision).
    An engine with a DistributedDataParallel (``engine._ddp``) trains data-parallel; see
    deepcore/train/distributed.py."""
    verbose = resolve_verbose(verbose)
    ctx = _context(engine)
    main = ctx is None or ctx.is_main
    if not main:
        verbose = 0
    if resume is True:
        resume = checkpoint if checkpoint is not None and _exists(checkpoint) else None
    history = History()
    cbs = CallbackList(list(callbacks or []) + [history], model=engine, main_process=main)
    if ctx is not None:
        train = ctx.shard(train, training=True, seed=ctx.data_seed())
        if validation is not None:
            validation = ctx.shard(validation, training=False)
    generators = train.generators
    steps = _length(train)
    if steps_per_epoch is not None:
        steps = steps_per_epoch if steps is None else min(steps, steps_per_epoch)
    if ctx is not None:
        steps = ctx.common_steps(steps)

    state = None
    mine: Dict[str, Any] = {}
    epoch, skip, step = initial_epoch, 0, 0
    if resume:
        state = load_state(resume)
        engine.module.load_state_dict(state["model"])
        engine.optimizer.load_state_dict(state["optimizer"])
        if engine.scheduler is not None and state.get("scheduler") is not None:
            engine.scheduler.load_state_dict(state["scheduler"])
        scaler = getattr(engine, "grad_scaler", None)
        if scaler is not None and state.get("grad_scaler"):
            scaler.load_state_dict(state["grad_scaler"])
        epoch, skip, step = int(state["epoch"]), int(state["batch"]), int(state["global_step"])
        history.epoch = list(state["history"]["epoch"])
        history.history = {k: list(v) for k, v in state["history"]["history"].items()}
        from .distributed import rank_state
        mine = rank_state(state, ctx)
        if state.get("data_seed") is not None and hasattr(train, "_set_seed"):
            train._set_seed(state["data_seed"])

    cbs.set_params({"epochs": epochs, "steps": steps, "verbose": verbose,
                    "initial_epoch": epoch, "initial_step": step})
    engine.stop_training = False
    engine.interrupted = False
    cbs.on_train_begin()
    if state is not None:
        cbs.set_state(state.get("callbacks") or {})
        if skip == 0:
            restore_rng(mine["rng"], generators)

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
                if hasattr(train, "set_epoch"):
                    train.set_epoch(epoch)
                if skip:
                    # Mid-epoch resume: the same permutation, then the streams as they were.
                    epoch_rng = mine["epoch_rng"]
                    restore_rng(epoch_rng, generators)
                    it = iter(train)
                    restore_rng(mine["rng"], generators)
                    train.skip(it, skip)
                    for m, s in zip(engine.metric_objects(), mine["metrics"] or []):
                        m.set_state(s)
                else:
                    epoch_rng = capture_rng(generators)
                    it = iter(train)
                progress = EpochProgress(epoch, epochs, steps, verbose)
                batch_done, skip = skip, 0
                logs = _logs(engine, ctx) if batch_done else {}
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
                    logs = _logs(engine, ctx)
                    # the ranks' shares are equal in size: rank 0 shows the global throughput
                    progress.update(n if ctx is None else n * ctx.world_size, logs)
                    cbs.on_train_batch_end(batch_done - 1, logs)
                    if ctx is not None:
                        # A callback or Ctrl-C on one rank stops every rank after this step.
                        engine.stop_training, guard.requested = ctx.agree(engine.stop_training,
                                                                          guard.requested)
                    if engine.stop_training or guard.requested:
                        break
                if guard.requested:
                    progress.close(logs)
                    raise KeyboardInterrupt
                logs = dict(_logs(engine, ctx))
                if validation is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = run_evaluate(engine, validation, cbs, verbose=0, _ctx=ctx)
                    logs.update({"val_" + k: v for k, v in val_logs.items()})
                _scheduler_step(engine, logs)
                cbs.on_epoch_end(epoch, logs)
                progress.close(logs)
                epoch += 1
                batch_done = 0
                if ctx is not None:
                    engine.stop_training, = ctx.agree(engine.stop_training)
                if checkpoint is not None:
                    _save(ctx, checkpoint, engine, history, cbs, epoch, 0, step, train, None)
                if engine.stop_training:
                    break
    except KeyboardInterrupt:
        engine.interrupted = True
        saved = False
        if checkpoint is not None and not in_step:
            _save(ctx, checkpoint, engine, history, cbs, epoch, batch_done, step, train,
                  epoch_rng)
            saved = True
        cbs.on_train_end(logs)
        if not saved:
            if checkpoint is not None and main:
                print("[fit] interrupted inside a training step; the last checkpoint in "
                      f"'{checkpoint}' is kept", file=sys.stderr)
            raise
        if verbose:
            print(f"[fit] interrupted in epoch {epoch + 1}, batch {batch_done}; training state "
                  f"saved to '{checkpoint}' (resume with fit(..., resume=...))",
                  file=sys.stderr)
        return history
    if ctx is not None:
        ctx.sync_buffers()  # every rank leaves fit with rank 0's model
    cbs.on_train_end(logs)
    return history


def _exists(path) -> bool:
    import os
    return os.path.exists(path)


# ---- evaluate / predict -----------------------------------------------------------------------

def run_evaluate(engine, batches, callbacks: Optional[CallbackList] = None, verbose=0,
                 steps: Optional[int] = None, _ctx=None) -> Dict[str, float]:
    """Evaluates ``engine`` on ``batches``. Inside a distributed fit (``_ctx``) each rank
    evaluates its share with rank 0's buffers and the returned logs cover every rank's."""
    from ..autograd.grad_mode import no_grad

    cbs = callbacks if callbacks is not None else CallbackList(model=engine)
    was_training = engine.module.training
    if _ctx is not None:
        _ctx.sync_buffers()
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
        logs = dict(_logs(engine, _ctx))
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

