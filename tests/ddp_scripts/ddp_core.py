"""One rank of tests/test_ddp.py's DistributedDataParallel checks (started by mpirun with two
processes): training steps of an MLP and a CNN, no_sync accumulation, find_unused_parameters
and its error, buffer broadcasts, and DistributedSampler epochs with an uneven dataset.

    mpirun -np 2 python ddp_core.py OUT_DIR

Each rank initializes its model from its own seed: the runs only agree with the single-process
reference if DistributedDataParallel broadcast rank 0's weights. The test recomputes every
reference in its own process and compares.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import deepcore as dc
import deepcore.distributed as dist
from deepcore import nn, optim
from deepcore.nn.parallel import DistributedDataParallel as DDP
from deepcore.utils.data import DataLoader, TensorDataset
from deepcore.utils.data.distributed import DistributedSampler

import _common as C


def shard(a: np.ndarray, rank: int, world: int) -> np.ndarray:
    per = len(a) // world
    return a[rank * per:(rank + 1) * per]


def train_steps(res, case, make, dtype, make_opt, loss_fn, x, y, rank, world, bucket_cap_mb):
    dc.manual_seed(100 + rank)  # different weights on each rank before the broadcast
    model = make().to(dtype)
    ddp = DDP(model, bucket_cap_mb=bucket_cap_mb)
    res.put_state(case, "init", model)
    res.note(case, "buckets", len(ddp._buckets))
    opt = make_opt(model.parameters())
    for s in range(C.STEPS):
        xs = shard(x[s * C.GLOBAL_BATCH:(s + 1) * C.GLOBAL_BATCH], rank, world)
        ys = shard(y[s * C.GLOBAL_BATCH:(s + 1) * C.GLOBAL_BATCH], rank, world)
        opt.zero_grad()
        loss_fn(ddp(dc.from_numpy(xs)), dc.from_numpy(ys)).backward()
        opt.step()
    res.put_state(case, "final", model)


def no_sync_case(res, rank, world):
    dc.manual_seed(200 + rank)
    model = C.mlp().double()
    ddp = DDP(model)
    res.put_state("nosync", "init", model)
    opt = optim.SGD(model.parameters(), lr=0.05)
    x, y = C.regression_data(3, 5 * 3 * C.GLOBAL_BATCH, (6,), 3, np.float64)
    for s in range(5):
        opt.zero_grad()
        for k in range(3):
            lo = (3 * s + k) * C.GLOBAL_BATCH
            xs = shard(x[lo:lo + C.GLOBAL_BATCH], rank, world)
            ys = shard(y[lo:lo + C.GLOBAL_BATCH], rank, world)
            if k < 2:
                with ddp.no_sync():
                    nn.functional.mse_loss(ddp(dc.from_numpy(xs)), dc.from_numpy(ys)).backward()
            else:
                nn.functional.mse_loss(ddp(dc.from_numpy(xs)), dc.from_numpy(ys)).backward()
        if s == 0:
            # the accumulated local gradient before the synchronised backward differs per rank;
            # after it every rank holds the same average
            res.put("nosync", "grad_after_sync", model[0].weight.grad.numpy())
        opt.step()
    res.put_state("nosync", "final", model)


def unused_case(res, rank, world):
    dc.manual_seed(300 + rank)
    model = C.Branchy().double()
    ddp = DDP(model, find_unused_parameters=True, bucket_cap_mb=0.0005)
    res.put_state("unused", "init", model)
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = C.regression_data(4, 6 * C.GLOBAL_BATCH, (4,), 2, np.float64)
    grads_none = []
    for s in range(6):
        xs = shard(x[s * C.GLOBAL_BATCH:(s + 1) * C.GLOBAL_BATCH], rank, world)
        ys = shard(y[s * C.GLOBAL_BATCH:(s + 1) * C.GLOBAL_BATCH], rank, world)
        opt.zero_grad()
        out = ddp(dc.from_numpy(xs), C.uses_b(rank, s))
        nn.functional.mse_loss(out, dc.from_numpy(ys)).backward()
        grads_none.append([model.b.weight.grad is None, model.c.weight.grad is None])
        opt.step()
    res.put_state("unused", "final", model)
    res.note("unused", "grads_none", grads_none)

    # Without find_unused_parameters: a clear error naming the parameters without gradient.
    dc.manual_seed(0)
    strict = DDP(C.Branchy().double())
    out = strict(dc.from_numpy(x[:4]), False)
    try:
        nn.functional.mse_loss(out, dc.from_numpy(y[:4])).backward()
        res.note("unused", "error", None)
    except RuntimeError as e:
        res.note("unused", "error", str(e))
    # the wrapper is usable again after the error
    out = strict(dc.from_numpy(x[:4]), True)
    loss = nn.functional.mse_loss(out, dc.from_numpy(y[:4])) + 0 * strict.module.c(
        strict.module.trunk(dc.from_numpy(x[:4]))).sum()
    loss.backward()
    res.note("unused", "after_error_ok", True)


def buffers_case(res, rank, world):
    x, _ = C.regression_data(5 + rank, 3 * 4, (4,), 2, np.float32)  # different data per rank
    for flag in (True, False):
        dc.manual_seed(400)
        model = C.batchnorm_net()
        ddp = DDP(model, broadcast_buffers=flag)
        opt = optim.SGD(model.parameters(), lr=0.1)
        for s in range(3):
            opt.zero_grad()
            ddp(dc.from_numpy(x[4 * s:4 * s + 4])).pow(2).mean().backward()
            opt.step()
        tag = "on" if flag else "off"
        res.put("buffers", f"{tag}/before", model[1].running_mean.numpy().copy())
        model.eval()
        with dc.no_grad():
            ddp(dc.from_numpy(x[:4]))  # the first forward after training syncs the buffers
        res.put("buffers", f"{tag}/after", model[1].running_mean.numpy().copy())
        res.put("buffers", f"{tag}/tracked", model[1].num_batches_tracked.numpy().copy())


def sampler_case(res, rank, world):
    ds = TensorDataset(dc.arange(11))
    for drop_last in (False, True):
        s = DistributedSampler(ds, seed=5, drop_last=drop_last)  # rank and size from the group
        res.note("sampler", f"meta/{drop_last}", [s.rank, s.num_replicas, len(s)])
        for epoch in (0, 1):
            s.set_epoch(epoch)
            res.note("sampler", f"order/{drop_last}/{epoch}", list(s))

    # Training on an uneven dataset (11 samples, drop_last): both ranks run the same batches.
    n = 11
    x, y = C.regression_data(6, n, (6,), 3, np.float64)
    data = TensorDataset(dc.from_numpy(x), dc.from_numpy(y))
    sampler = DistributedSampler(data, seed=7, drop_last=True)
    loader = DataLoader(data, batch_size=2, sampler=sampler)
    dc.manual_seed(500 + rank)
    model = C.mlp().double()
    ddp = DDP(model)
    res.put_state("uneven", "init", model)
    opt = optim.SGD(model.parameters(), lr=0.1)
    steps = 0
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.mse_loss(ddp(xb), yb).backward()
            opt.step()
            steps += 1
    res.note("uneven", "steps", steps)
    res.put_state("uneven", "final", model)


def main() -> None:
    out = sys.argv[1]
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    dc.set_num_threads(1)
    res = C.Results(out, rank)
    x, y = C.regression_data(1, C.STEPS * C.GLOBAL_BATCH, (6,), 3, np.float64)
    train_steps(res, "mlp64", C.mlp, dc.float64,
                lambda p: optim.SGD(p, lr=0.05, momentum=0.9), nn.functional.mse_loss,
                x, y, rank, world, bucket_cap_mb=0.001)
    train_steps(res, "mlp32", C.mlp, dc.float32, lambda p: optim.Adam(p, lr=1e-2),
                nn.functional.mse_loss, x.astype(np.float32), y.astype(np.float32), rank, world,
                bucket_cap_mb=25)
    xc, yc = C.regression_data(2, C.STEPS * C.GLOBAL_BATCH, (2, 8, 8), 5, np.float32)
    train_steps(res, "cnn32", C.cnn, dc.float32, lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
                nn.functional.mse_loss, xc, yc, rank, world, bucket_cap_mb=0.0005)
    no_sync_case(res, rank, world)
    unused_case(res, rank, world)
    buffers_case(res, rank, world)
    sampler_case(res, rank, world)
    res.write()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
