"""Data-parallel training in the loop of ``deepcore.train`` (``Trainer.fit`` and
``keras.Model.fit``) over a ``deepcore.distributed`` process group.

When a default process group with more than one process is initialized (or the model is a
``DistributedDataParallel``), fit trains one replica per process:

- the model is wrapped in ``nn.parallel.DistributedDataParallel`` (rank 0's weights
  everywhere; gradients averaged across ranks each step);
- each rank reads its share of the training data: a DataLoader is rebuilt around a
  ``DistributedSampler`` (same batch size per rank, so the global batch is ``world_size``
  times larger, as with PyTorch), array inputs are split the same way; the sampler's seed is
  rank 0's ``deepcore.initial_seed()`` and is kept in the checkpoint; the loop calls
  ``set_epoch`` before each epoch;
- validation data is split without padding (each sample is evaluated exactly once);
- metrics are all-reduced (their totals and counts summed over ranks) before any callback
  or progress bar sees them, so every rank takes the same decisions (early stopping, LR
  schedules); the stop and Ctrl-C flags are agreed across ranks after every step;
- progress bars, printed messages and ``rank_zero_only`` callbacks (TensorBoard,
  ModelCheckpoint, CSVLogger) run on rank 0 only, and rank 0 alone writes the training
  checkpoint, which holds every rank's random streams (Note [Bit-exact resume] in state.py):
  a resumed run continues bit-exactly on every rank.

``evaluate`` and ``predict`` outside fit stay local to each process: they start no collective,
so one rank may call them alone.

``train_distributed(args)`` runs ``deepcore train`` as several processes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from typing import Any, Dict, List, Optional

import numpy as np

__all__ = ["DistributedContext", "wrap_model", "train_distributed"]


def _dist():
    from .. import distributed
    return distributed


def default_group_size() -> int:
    """The size of the default process group; 1 when there is none."""
    try:
        dist = _dist()
    except ImportError:
        return 1
    return dist.get_world_size() if dist.is_initialized() else 1


def wrap_model(model, distributed: Optional[bool], owner: str):
    """``(module, ddp)``: the plain module, and the DistributedDataParallel that trains it
    (None for single-process training). ``distributed=None`` wraps when a default process
    group of several processes exists; True requires one; False never wraps."""
    from ..nn.parallel import DistributedDataParallel
    if isinstance(model, DistributedDataParallel):
        if distributed is False:
            raise ValueError(f"[{owner}] distributed=False, but the model is a "
                             "DistributedDataParallel")
        return model.module, model
    if distributed is False:
        return model, None
    if distributed is None and default_group_size() <= 1:
        return model, None
    if distributed is True:
        try:
            initialized = _dist().is_initialized()
        except ImportError:
            initialized = False
        if not initialized:
            raise RuntimeError(f"[{owner}] distributed=True needs a process group: call "
                               "deepcore.distributed.init_process_group('mpi') first (or start "
                               "the script with python -m deepcore.distributed.run)")
    return model, DistributedDataParallel(model)


class _ShardSampler:
    """Indices ``rank, rank + world, ...`` of ``range(n)``: an evaluation split in which every
    sample appears exactly once (ranks may get one sample more than others)."""

    def __init__(self, n: int, rank: int, world: int):
        self.n, self.rank, self.world = n, rank, world

    def _epoch_chunks(self):
        return iter([np.arange(self.rank, self.n, self.world, dtype=np.int64)])

    def __iter__(self):
        return iter(range(self.rank, self.n, self.world))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))


def _rebuilt(loader, sampler):
    """A DataLoader like ``loader`` that draws its indices from ``sampler``."""
    from ..utils.data import DataLoader
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      drop_last=loader.drop_last, timeout=loader.timeout,
                      worker_init_fn=loader.worker_init_fn,
                      multiprocessing_context=loader.multiprocessing_context,
                      generator=loader.generator, prefetch_factor=loader.prefetch_factor,
                      persistent_workers=loader.persistent_workers,
                      in_order=getattr(loader, "in_order", True))


def _split_sampler(loader) -> Optional[str]:
    """How a DataLoader's order can be split across ranks: "shuffle" (a RandomSampler over the
    dataset, without replacement), "sequential", or None when its sampler or batching is the
    caller's own (then each rank reads what the loader gives it)."""
    from ..utils.data import (BatchSampler, DataLoader, IterableDataset, RandomSampler,
                              SequentialSampler)
    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset) \
            or type(loader.batch_sampler) is not BatchSampler:
        return None
    sampler = loader.sampler
    if type(sampler) is RandomSampler and not sampler.replacement and \
            getattr(sampler, "_num_samples", None) is None:
        return "shuffle"
    if type(sampler) is SequentialSampler:
        return "sequential"
    return None


class DistributedContext:
    """The process group one fit runs over, and the few collectives the loop needs."""

    def __init__(self, ddp):
        self.ddp = ddp
        self.group = ddp.process_group
        self.rank = ddp.rank
        self.world_size = ddp.world_size
        self.is_main = self.rank == 0

    # ---- collectives ---------------------------------------------------------------------
    def _all_reduce(self, values: List[float], op: str) -> List[float]:
        from .. import tensor, float64
        dist = _dist()
        t = tensor(values, dtype=float64)
        dist.all_reduce(t, op=getattr(dist.ReduceOp, op), group=self.group)
        return t.tolist()

    def reduce_logs(self, metrics) -> Dict[str, float]:
        """The logs of ``metrics`` over every rank's samples: totals and counts summed."""
        values: List[float] = []
        for m in metrics:
            state = m.get_state()
            if "total" not in state or "count" not in state:
                raise NotImplementedError(
                    f"[fit] metric {m.name!r} ({type(m).__name__}) cannot be combined across "
                    f"processes: its get_state() {sorted(state)} has no 'total' and 'count'")
            values += [float(state["total"]), float(state["count"])]
        summed = self._all_reduce(values, "SUM") if values else []
        return {m.name: (summed[2 * i] / summed[2 * i + 1] if summed[2 * i + 1] else 0.0)
                for i, m in enumerate(metrics)}

    def agree(self, *flags: bool) -> List[bool]:
        """Each flag, true on every rank if it is true on any."""
        return [v > 0 for v in self._all_reduce([float(bool(f)) for f in flags], "MAX")]

    def gather(self, obj) -> List[Any]:
        every: List[Any] = [None] * self.world_size
        _dist().all_gather_object(every, obj, group=self.group)
        return every

    def broadcast(self, obj):
        box = [obj]
        _dist().broadcast_object_list(box, src=self.ddp._src, group=self.group)
        return box[0]

    def sync_buffers(self) -> None:
        if self.ddp.broadcast_buffers:
            self.ddp._sync_buffers()

    def common_steps(self, steps: Optional[int]) -> int:
        """The number of training batches every rank runs in an epoch: the smallest rank's
        (a loader this module could not split may give ranks different lengths)."""
        lengths = self.gather(steps)
        if any(n is None for n in lengths):
            raise ValueError("[fit] distributed training needs training data of known length "
                             "on every rank (a DataLoader over a map-style dataset, or arrays); "
                             f"got lengths {lengths}")
        if len(set(lengths)) > 1 and self.is_main:
            warnings.warn(f"[fit] the ranks have different numbers of training batches "
                          f"{lengths}; each epoch runs {min(lengths)} steps on every rank. Use "
                          "DistributedSampler to split the data evenly", stacklevel=2)
        return min(lengths)

    # ---- data ----------------------------------------------------------------------------
    def data_seed(self) -> int:
        from .. import initial_seed
        return int(self.broadcast(int(initial_seed()) if self.is_main else None))

    def shard(self, batches, training: bool, seed: int = 0):
        """``batches`` (loop.ArrayBatches or loop.LoaderBatches) restricted to this rank's
        share: the training split pads like DistributedSampler, the evaluation split does
        not."""
        from .loop import ArrayBatches, LoaderBatches
        from ..utils.data.distributed import DistributedSampler
        if isinstance(batches, ArrayBatches):
            batches.distribute(self.rank, self.world_size, training, seed)
            return batches
        loader = batches.loader
        if isinstance(getattr(loader, "sampler", None), (DistributedSampler, _ShardSampler)):
            return batches  # split by the caller already
        kind = _split_sampler(loader)
        if kind is None:
            if self.is_main:
                sampler = getattr(loader, "sampler", None)
                warnings.warn(f"[fit] the {'training' if training else 'validation'} data "
                              f"({type(loader).__name__} with "
                              f"{type(sampler).__name__ if sampler is not None else 'no sampler'}"
                              ") cannot be split across ranks: each rank reads all that it "
                              "yields. Pass a DataLoader with sampler=DistributedSampler(...) "
                              "to choose the split", stacklevel=2)
            return batches
        if training:
            sampler = DistributedSampler(loader.dataset, num_replicas=self.world_size,
                                         rank=self.rank, shuffle=kind == "shuffle", seed=seed)
        else:
            sampler = _ShardSampler(len(loader.dataset), self.rank, self.world_size)
        return LoaderBatches(_rebuilt(loader, sampler))

    # ---- checkpoints ---------------------------------------------------------------------
    def write_checkpoint(self, path: str, state: Dict[str, Any],
                         per_rank: Dict[str, Any]) -> None:
        """Rank 0 writes ``state`` with every rank's ``per_rank`` part under "ranks"; the
        other ranks wait for it, and an error writing it is raised on every rank."""
        from .state import save_state
        every = self.gather(per_rank)
        error = None
        if self.is_main:
            try:
                save_state(path, {**state, "ranks": every})
            except Exception as e:  # re-raised below, on every rank
                error = f"{type(e).__name__}: {e}"
        error = self.broadcast(error)
        if error is not None:
            raise RuntimeError(f"[fit] rank 0 could not write the checkpoint '{path}': {error}")


def rank_state(state: Dict[str, Any], ctx: Optional[DistributedContext]) -> Dict[str, Any]:
    """This rank's random streams and metric states from a training checkpoint."""
    rank = ctx.rank if ctx is not None else 0
    world = ctx.world_size if ctx is not None else 1
    ranks = state.get("ranks")
    saved_world = len(ranks) if ranks is not None else 1
    if saved_world == world:
        return ranks[rank] if ranks is not None else state
    if int(state["batch"]) > 0:
        raise ValueError(f"[resume] the checkpoint was written mid-epoch by {saved_world} "
                         f"process(es); it can only continue with {saved_world}, not {world} "
                         "(an end-of-epoch checkpoint resumes with any number)")
    return state  # epoch boundary: rank 0's streams for every rank


# ---- deepcore train --nproc N -------------------------------------------------------------------

ARGS_ENV = "DEEPCORE_TRAIN_ARGS"  # the DEEPCORE_ prefix: deepcore run forwards it to every host


def train_distributed(args) -> int:
    """``deepcore train --nproc N``: runs the training job of ``deepcore.cli.train`` on N
    processes through ``python -m deepcore.distributed.run`` and returns its exit status.
    Every rank builds the same model and data; ``Trainer`` trains them data-parallel (this
    module's docstring), so ``--batch-size`` is per process and rank 0 prints, logs and writes
    the checkpoint. The parsed arguments reach the ranks as JSON in DEEPCORE_TRAIN_ARGS
    (deepcore/train/_cli_worker.py)."""
    nproc = getattr(args, "nproc", 1)
    if not isinstance(nproc, int) or nproc < 1:
        raise SystemExit(f"deepcore train: --nproc must be a positive integer, got {nproc!r}")
    if getattr(args, "model", None) == "gpt":
        raise SystemExit("deepcore train: --nproc is not supported with --model gpt (it trains "
                         "with its own loop, not Trainer)")
    fields = {k: v for k, v in vars(args).items() if k != "nproc"}
    try:
        payload = json.dumps(fields)
    except TypeError as e:
        raise SystemExit(f"deepcore train: cannot pass the arguments to the ranks: {e}") from None
    env = dict(os.environ, **{ARGS_ENV: payload})
    cmd = [sys.executable, "-m", "deepcore.distributed.run", "--nproc", str(nproc),
           "-m", "deepcore.train._cli_worker"]
    return subprocess.call(cmd, env=env)
