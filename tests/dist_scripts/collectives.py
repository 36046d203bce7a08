"""Every collective, dtype and reduce op of deepcore.distributed against NumPy, on each rank.

Each rank can rebuild every rank's input (seeded by the rank), so it computes the expected
result itself. Failures are collected and printed as ``FAIL <case>: <why>``; the last line is
``RANK <r> OK <cases>`` or ``RANK <r> FAILED <n>/<cases>``, and the exit status is 1 on failure.
"""
import sys
import traceback

import numpy as np

import deepcore as dc
import deepcore.distributed as dist
from deepcore.distributed import ReduceOp

DTYPES = {"float32": dc.float32, "float64": dc.float64, "int32": dc.int32, "int64": dc.int64,
          "bool": dc.bool}
NP = {"float32": np.float32, "float64": np.float64, "int32": np.int32, "int64": np.int64,
      "bool": np.bool_}
# Up to 4 ranks of values in [-2, 2] (u: the unit roundoff): a sum rounds by at most
# (n - 1) u sum|x| <= 24 u, a product by n u prod|x| <= 64 u, AVG's division adds u.
ATOL = {"float32": 256 * 2.0 ** -24, "float64": 256 * 2.0 ** -53}
SHAPES = [(), (0,), (7,), (3, 5), (2, 3, 4)]

failures = []
cases = 0


def data(rank, shape, dt, salt):
    rng = np.random.default_rng([salt, rank])
    if dt == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if dt.startswith("int"):
        return rng.integers(-40, 40, size=shape).astype(NP[dt])
    return rng.uniform(-2, 2, size=shape).astype(NP[dt])


def check(name, got, want, dt):
    global cases
    cases += 1
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        failures.append(f"{name}: shape {got.shape} != {want.shape}")
    elif dt in ATOL:
        if not np.allclose(got, want, rtol=0, atol=ATOL[dt]):
            failures.append(f"{name}: max error {np.max(np.abs(got - want))} > {ATOL[dt]}")
    elif not np.array_equal(got, want):
        failures.append(f"{name}: {got.tolist()} != {want.tolist()}")


def case(fn):
    """Runs one group of checks; an exception is a failure of that group, not of the run."""
    def wrapped(*a):
        try:
            fn(*a)
        except Exception:
            failures.append(f"{fn.__name__}{a}: raised\n{traceback.format_exc()}")
    return wrapped


def reference(op, arrays, dt):
    a = np.stack(arrays)
    if dt == "bool":
        return {ReduceOp.SUM: a.any(0), ReduceOp.MAX: a.any(0), ReduceOp.BOR: a.any(0),
                ReduceOp.PRODUCT: a.all(0), ReduceOp.MIN: a.all(0), ReduceOp.BAND: a.all(0),
                ReduceOp.BXOR: np.logical_xor.reduce(a, 0)}[op]
    if op is ReduceOp.SUM:
        return a.sum(0, dtype=a.dtype)
    if op is ReduceOp.AVG:
        return a.sum(0, dtype=a.dtype) / len(arrays)
    if op is ReduceOp.PRODUCT:
        return a.prod(0, dtype=a.dtype)
    if op is ReduceOp.MIN:
        return a.min(0)
    if op is ReduceOp.MAX:
        return a.max(0)
    return {ReduceOp.BAND: np.bitwise_and, ReduceOp.BOR: np.bitwise_or,
            ReduceOp.BXOR: np.bitwise_xor}[op].reduce(a, 0)


def ops_for(dt):
    if dt == "bool":
        return [ReduceOp.SUM, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX, ReduceOp.BAND,
                ReduceOp.BOR, ReduceOp.BXOR]
    ops = [ReduceOp.SUM, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX]
    return ops + ([ReduceOp.AVG] if dt.startswith("float") else
                  [ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR])


@case
def all_reduce(dt, me, n):
    for si, shape in enumerate(SHAPES):
        for oi, op in enumerate(ops_for(dt)):
            salt = 100 * si + oi
            t = dc.from_numpy(data(me, shape, dt, salt).copy())
            async_op = (si + oi) % 2 == 1
            work = dist.all_reduce(t, op=op, async_op=async_op)
            if async_op:
                work.wait()
                if work.result()[0] is not t or not work.is_completed():
                    failures.append(f"all_reduce {dt} {op}: Work.result()/is_completed()")
            want = reference(op, [data(r, shape, dt, salt) for r in range(n)], dt)
            check(f"all_reduce {dt} {shape} {op}", t.numpy(), want, dt)


@case
def all_reduce_views(dt, me, n):
    # A transposed and a strided view: the result lands in the base tensor's elements.
    base = dc.from_numpy(data(me, (4, 6), dt, 7).copy())
    dist.all_reduce(base.T)
    want = reference(ReduceOp.SUM, [data(r, (4, 6), dt, 7) for r in range(n)], dt)
    check(f"all_reduce {dt} transposed view", base.numpy(), want, dt)
    base = dc.from_numpy(data(me, (5, 6), dt, 8).copy())
    view = base[1:, ::2]
    dist.all_reduce(view, op=ReduceOp.MAX)
    arrays = [data(r, (5, 6), dt, 8) for r in range(n)]
    want = arrays[me].copy()
    want[1:, ::2] = reference(ReduceOp.MAX, [a[1:, ::2] for a in arrays], dt)
    check(f"all_reduce {dt} strided view", base.numpy(), want, dt)


@case
def broadcast_and_reduce(dt, me, n):
    for root in range(n):
        for si, shape in enumerate(SHAPES):
            t = dc.from_numpy(data(me, shape, dt, 200 + si).copy())
            dist.broadcast(t, src=root)
            check(f"broadcast {dt} {shape} src={root}", t.numpy(), data(root, shape, dt, 200 + si),
                  dt)
        t = dc.from_numpy(data(me, (3, 4), dt, 300).copy())
        dist.reduce(t, dst=root, op=ReduceOp.MAX)
        want = (reference(ReduceOp.MAX, [data(r, (3, 4), dt, 300) for r in range(n)], dt)
                if me == root else data(me, (3, 4), dt, 300))
        check(f"reduce {dt} MAX dst={root}", t.numpy(), want, dt)
    if dt == "float32":
        # broadcast into a parameter (requires_grad): PyTorch's DDP does this at start.
        p = dc.from_numpy(data(me, (3,), dt, 9).copy()).requires_grad_()
        dist.broadcast(p, src=0)
        check("broadcast requires_grad", p.detach().numpy(), data(0, (3,), dt, 9), dt)


@case
def gathers(dt, me, n):
    shape = (2, 3)
    inputs = [data(r, shape, dt, 400) for r in range(n)]
    t = dc.from_numpy(inputs[me].copy())
    out = [dc.zeros(*shape, dtype=DTYPES[dt]) for _ in range(n)]
    dist.all_gather(out, t)
    for r in range(n):
        check(f"all_gather {dt} [{r}]", out[r].numpy(), inputs[r], dt)
    flat = dc.zeros(n * 2, 3, dtype=DTYPES[dt])
    dist.all_gather_into_tensor(flat, t)
    check(f"all_gather_into_tensor {dt} concat", flat.numpy(), np.concatenate(inputs), dt)
    stacked = dc.zeros(n, 2, 3, dtype=DTYPES[dt])
    dist.all_gather_into_tensor(stacked, t, async_op=True).wait()
    check(f"all_gather_into_tensor {dt} stacked", stacked.numpy(), np.stack(inputs), dt)
    # The input is this rank's chunk of the output (in place, as FSDP does).
    chunked = dc.from_numpy(np.concatenate([np.zeros_like(inputs[0])] * n))
    mine = chunked[me * 2:(me + 1) * 2]
    mine.numpy()[...] = inputs[me]
    dist.all_gather_into_tensor(chunked, mine)
    check(f"all_gather_into_tensor {dt} in place", chunked.numpy(), np.concatenate(inputs), dt)
    for root in range(n):
        lst = [dc.zeros(*shape, dtype=DTYPES[dt]) for _ in range(n)] if me == root else None
        dist.gather(t, gather_list=lst, dst=root)
        if me == root:
            for r in range(n):
                check(f"gather {dt} dst={root} [{r}]", lst[r].numpy(), inputs[r], dt)
        parts = [data(root, shape, dt, 500 + r) for r in range(n)]
        lst = [dc.from_numpy(p.copy()) for p in parts] if me == root else None
        got = dc.zeros(*shape, dtype=DTYPES[dt])
        dist.scatter(got, scatter_list=lst, src=root)
        check(f"scatter {dt} src={root}", got.numpy(), parts[me], dt)


@case
def reduce_scatters(dt, me, n):
    op = ReduceOp.SUM
    # Uneven: rank i's output has i + 1 rows.
    lists = [[data(src, (i + 1, 3), dt, 600 + i) for i in range(n)] for src in range(n)]
    out = dc.zeros(me + 1, 3, dtype=DTYPES[dt])
    dist.reduce_scatter(out, [dc.from_numpy(a.copy()) for a in lists[me]], op=op)
    want = reference(op, [lists[src][me] for src in range(n)], dt)
    check(f"reduce_scatter {dt}", out.numpy(), want, dt)
    inputs = [data(r, (n * 2, 3), dt, 700) for r in range(n)]
    out = dc.zeros(2, 3, dtype=DTYPES[dt])
    dist.reduce_scatter_tensor(out, dc.from_numpy(inputs[me].copy()), op=op,
                               async_op=True).wait()
    want = reference(op, [a[me * 2:(me + 1) * 2] for a in inputs], dt)
    check(f"reduce_scatter_tensor {dt}", out.numpy(), want, dt)
    if dt.startswith("float"):
        out = dc.zeros(2, 3, dtype=DTYPES[dt])
        dist.reduce_scatter_tensor(out, dc.from_numpy(inputs[me].copy()), op=ReduceOp.AVG)
        want = reference(ReduceOp.AVG, [a[me * 2:(me + 1) * 2] for a in inputs], dt)
        check(f"reduce_scatter_tensor {dt} AVG", out.numpy(), want, dt)


@case
def local_errors(me, n):
    """Bad arguments raise a typed error on the calling rank before anything is sent (every
    rank passes the same bad arguments here, so none waits for another)."""
    expect = [
        (TypeError, lambda: dist.all_reduce(np.ones(3))),
        (TypeError, lambda: dist.all_reduce(dc.ones(3, dtype=dc.int32), op=ReduceOp.AVG)),
        (TypeError, lambda: dist.all_reduce(dc.ones(3), op=ReduceOp.BAND)),
        (TypeError, lambda: dist.all_reduce(dc.ones(3), op="sum")),
        (NotImplementedError, lambda: dist.all_reduce(dc.ones(3), op=ReduceOp.PREMUL_SUM)),
        (ValueError, lambda: dist.all_reduce(dc.ones(1, 3).expand(4, 3))),
        (ValueError, lambda: dist.all_gather([dc.zeros(3)], dc.ones(3)) if n > 1 else
         dist.all_gather([dc.zeros(3), dc.zeros(3)], dc.ones(3))),
        (ValueError, lambda: dist.all_gather([dc.zeros(2)] * n, dc.ones(3))),
        (ValueError, lambda: dist.all_gather_into_tensor(dc.zeros(3 * n + 1), dc.ones(3))),
        (ValueError, lambda: dist.reduce_scatter_tensor(dc.zeros(2), dc.ones(2 * n + 1))),
        (ValueError, lambda: dist.broadcast(dc.ones(3), src=n)),
        (ValueError, lambda: dist.broadcast(dc.ones(3))),
        (ValueError, lambda: dist.send(dc.ones(3), dst=me)),
        (ValueError, lambda: dist.gather(dc.ones(3), gather_list=[dc.zeros(3)] * n,
                                         dst=(me + 1) % n) if n > 1 else
         dist.gather(dc.ones(3), gather_list=None, dst=0)),
    ]
    for i, (cls, fn) in enumerate(expect):
        global cases
        cases += 1
        try:
            fn()
        except cls as e:
            if not str(e).startswith("["):
                failures.append(f"local error {i}: message lacks the [op] prefix: {e}")
        except Exception as e:
            failures.append(f"local error {i}: expected {cls.__name__}, got {type(e).__name__}: "
                            f"{e}")
        else:
            failures.append(f"local error {i}: expected {cls.__name__}, nothing raised")


def main():
    dist.init_process_group("mpi")
    me, n = dist.get_rank(), dist.get_world_size()
    for dt in DTYPES:
        all_reduce(dt, me, n)
        all_reduce_views(dt, me, n)
        broadcast_and_reduce(dt, me, n)
        gathers(dt, me, n)
        reduce_scatters(dt, me, n)
    local_errors(me, n)
    # After all the above every rank is still in step: a last all_reduce agrees.
    t = dc.ones(1)
    dist.all_reduce(t)
    check("final all_reduce", t.numpy(), np.array([n], np.float32), "float32")
    dist.destroy_process_group()
    for f in failures:
        print(f"FAIL rank {me}: {f}")
    if failures:
        print(f"RANK {me} FAILED {len(failures)}/{cases}", flush=True)
        sys.exit(1)
    print(f"RANK {me} OK {cases}", flush=True)


if __name__ == "__main__":
    main()
