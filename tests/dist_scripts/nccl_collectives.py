"""Every collective and point-to-point operation of the NCCL backend on CUDA tensors, against
NumPy, on each rank (Note [NCCL process groups] in deepcore/distributed/_nccl.py).

    mpirun -np 2 python nccl_collectives.py [BACKEND]      BACKEND: nccl (default), cuda,
                                                           cpu:gloo,cuda:nccl

With a GPU per rank it runs on NCCL. Without a GPU (a CPU build) the fake device stands in for
the GPUs and FakeComm for NCCL, so this runs the routing, the unique-id broadcast, the dtype and
op tables, the copies of non-contiguous tensors, and Work with its events, on machines without
one. Each rank rebuilds every rank's input (seeded by the rank) and computes the expected
result itself. Failures are printed as ``FAIL <case>: <why>``;
the last line is ``RANK <r> OK <cases>`` or ``RANK <r> FAILED <n>/<cases>`` (exit status 1).
"""
import os
import sys
import traceback

import deepcore as dc
import deepcore.distributed as dist
import numpy as np
from deepcore.distributed import ReduceOp

DTYPES = {"float32": dc.float32, "float64": dc.float64, "float16": dc.float16,
          "bfloat16": dc.bfloat16, "int32": dc.int32, "int64": dc.int64, "bool": dc.bool}
NP = {"float32": np.float32, "float64": np.float64, "float16": np.float32,
      "bfloat16": np.float32, "int32": np.int32, "int64": np.int64, "bool": np.bool_}
# Up to 3 ranks of values in [-2, 2], so results stay below 8 in magnitude. The references
# compute in float64 from the inputs as the device holds them (rounded to 16 bits where the
# dtype is); NCCL rounds each 16-bit partial result (n - 1 roundings of half an ulp at 8:
# 2^-4 for bfloat16, 2^-7 for float16), the fake once.
ATOL = {"float32": 256 * 2.0 ** -24, "float64": 256 * 2.0 ** -53, "float16": 2.0 ** -6,
        "bfloat16": 2.0 ** -3}
SHAPES = [(), (0,), (7,), (3, 5), (2, 3, 4)]

failures = []
cases = 0


def data(rank, shape, dt, salt):
    """Rank ``rank``'s values, as the device will hold them."""
    rng = np.random.default_rng([salt, rank])
    if dt == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if dt.startswith("int"):
        return rng.integers(-40, 40, size=shape).astype(NP[dt])
    values = rng.uniform(-2, 2, size=shape).astype(np.float32)
    if dt in ("float16", "bfloat16"):  # the 16-bit values, widened back
        values = dc.from_numpy(values).to(DTYPES[dt]).float().numpy()
    return values.astype(NP[dt])


def on_device(values, dt):
    return dc.from_numpy(np.array(values, order="C")).to(DTYPES[dt]).to("cuda")


def host(t):
    if t.device.type != "cuda":
        failures.append(f"a result left the device: {t.device}")
    t = t.cpu()
    return (t.float() if t.dtype in (dc.float16, dc.bfloat16) else t).numpy()


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
        except Exception:  # noqa: BLE001  (reported with the group's name)
            failures.append(f"{fn.__name__}{a}: raised\n{traceback.format_exc()}")
    return wrapped


def reference(op, arrays, dt):
    a = np.stack(arrays)
    if dt == "bool":
        return {ReduceOp.SUM: a.any(0), ReduceOp.MAX: a.any(0), ReduceOp.BOR: a.any(0),
                ReduceOp.PRODUCT: a.all(0), ReduceOp.MIN: a.all(0), ReduceOp.BAND: a.all(0)}[op]
    wide = np.float64 if dt in ATOL else a.dtype
    if op is ReduceOp.SUM:
        return a.sum(0, dtype=wide)
    if op is ReduceOp.AVG:
        return a.sum(0, dtype=wide) / len(arrays)
    if op is ReduceOp.PRODUCT:
        return a.prod(0, dtype=wide)
    return a.min(0) if op is ReduceOp.MIN else a.max(0)


def ops_for(dt):
    if dt == "bool":
        return [ReduceOp.SUM, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX, ReduceOp.BAND,
                ReduceOp.BOR]
    ops = [ReduceOp.SUM, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX]
    return ops + ([ReduceOp.AVG] if dt in ATOL else [])


def check_work(name, work, tensors):
    global cases
    cases += 1
    if not isinstance(work, dist.Work):
        failures.append(f"{name}: async_op=True returned {work!r}")
        return
    work.wait()
    if work._event is None:
        failures.append(f"{name}: no event was recorded after the operation")
    if not work.is_completed() or not work.is_success():
        failures.append(f"{name}: Work not completed after wait()")
    if [id(t) for t in work.result()] != [id(t) for t in tensors]:
        failures.append(f"{name}: Work.result() is not the tensors passed")


@case
def all_reduce(dt, me, n):
    for si, shape in enumerate(SHAPES):
        for oi, op in enumerate(ops_for(dt)):
            salt = 100 * si + oi
            t = on_device(data(me, shape, dt, salt), dt)
            if (si + oi) % 2:
                check_work(f"all_reduce {dt} {op}", dist.all_reduce(t, op=op, async_op=True), [t])
            else:
                assert dist.all_reduce(t, op=op) is None
            want = reference(op, [data(r, shape, dt, salt) for r in range(n)], dt)
            check(f"all_reduce {dt} {shape} {op}", host(t), want, dt)


@case
def all_reduce_views(dt, me, n):
    # A transposed and a strided view: the result lands in the base tensor's elements.
    base = on_device(data(me, (4, 6), dt, 7), dt)
    dist.all_reduce(base.T)
    want = reference(ReduceOp.SUM, [data(r, (4, 6), dt, 7) for r in range(n)], dt)
    check(f"all_reduce {dt} transposed view", host(base), want, dt)
    base = on_device(data(me, (5, 6), dt, 8), dt)
    dist.all_reduce(base[1:, ::2], op=ReduceOp.MAX)
    arrays = [data(r, (5, 6), dt, 8) for r in range(n)]
    want = arrays[me].copy()
    want[1:, ::2] = reference(ReduceOp.MAX, [a[1:, ::2] for a in arrays], dt)
    check(f"all_reduce {dt} strided view", host(base), want, dt)


@case
def broadcast_and_reduce(dt, me, n):
    for root in range(n):
        for si, shape in enumerate(SHAPES):
            t = on_device(data(me, shape, dt, 200 + si), dt)
            dist.broadcast(t, src=root)
            check(f"broadcast {dt} {shape} src={root}", host(t), data(root, shape, dt, 200 + si),
                  dt)
        base = on_device(data(me, (4, 3), dt, 250), dt)
        dist.broadcast(base.T, src=root, async_op=True).wait()
        check(f"broadcast {dt} view src={root}", host(base), data(root, (4, 3), dt, 250), dt)
        t = on_device(data(me, (3, 4), dt, 300), dt)
        dist.reduce(t, dst=root, op=ReduceOp.MAX)
        want = (reference(ReduceOp.MAX, [data(r, (3, 4), dt, 300) for r in range(n)], dt)
                if me == root else data(me, (3, 4), dt, 300))
        check(f"reduce {dt} MAX dst={root}", host(t), want, dt)
    if dt == "float32":
        # broadcast into a parameter (requires_grad): PyTorch's DDP does this at start.
        p = on_device(data(me, (3,), dt, 9), dt).requires_grad_()
        dist.broadcast(p, src=0)
        check("broadcast requires_grad", host(p.detach()), data(0, (3,), dt, 9), dt)


@case
def gathers(dt, me, n):
    shape = (2, 3)
    inputs = [data(r, shape, dt, 400) for r in range(n)]
    t = on_device(inputs[me], dt)
    out = [dc.zeros(*shape, dtype=DTYPES[dt], device="cuda") for _ in range(n)]
    dist.all_gather(out, t)
    for r in range(n):
        check(f"all_gather {dt} [{r}]", host(out[r]), inputs[r], dt)
    # Outputs that are views: rows of a transposed matrix.
    cols = dc.zeros(6, n, dtype=DTYPES[dt], device="cuda")
    views = [cols[:, r] for r in range(n)]
    check_work(f"all_gather {dt} views", dist.all_gather(views, t.reshape(-1), async_op=True),
               views)
    check(f"all_gather {dt} into views", host(cols),
          np.stack([a.reshape(-1) for a in inputs], 1), dt)
    flat = dc.zeros(n * 2, 3, dtype=DTYPES[dt], device="cuda")
    dist.all_gather_into_tensor(flat, t)
    check(f"all_gather_into_tensor {dt} concat", host(flat), np.concatenate(inputs), dt)
    stacked = dc.zeros(n, 2, 3, dtype=DTYPES[dt], device="cuda")
    check_work(f"all_gather_into_tensor {dt}", dist.all_gather_into_tensor(
        stacked, t, async_op=True), [stacked])
    check(f"all_gather_into_tensor {dt} stacked", host(stacked), np.stack(inputs), dt)
    # In place: the input is this rank's chunk of the output (as FSDP does), and an input that
    # overlaps the output elsewhere (the first chunk on every rank), which must be copied first.
    chunked = on_device(np.concatenate([np.zeros_like(inputs[0])] * n), dt)
    chunked[me * 2:(me + 1) * 2].copy_(on_device(inputs[me], dt))
    dist.all_gather_into_tensor(chunked, chunked[me * 2:(me + 1) * 2])
    check(f"all_gather_into_tensor {dt} in place", host(chunked), np.concatenate(inputs), dt)
    first = on_device(np.concatenate([inputs[me]] * n), dt)
    dist.all_gather_into_tensor(first, first[0:2])
    check(f"all_gather_into_tensor {dt} overlapping", host(first), np.concatenate(inputs), dt)
    for root in range(n):
        lst = ([dc.zeros(*shape, dtype=DTYPES[dt], device="cuda") for _ in range(n)]
               if me == root else None)
        dist.gather(t, gather_list=lst, dst=root)
        if me == root:
            for r in range(n):
                check(f"gather {dt} dst={root} [{r}]", host(lst[r]), inputs[r], dt)
        parts = [data(root, shape, dt, 500 + r) for r in range(n)]
        lst = [on_device(p, dt) for p in parts] if me == root else None
        got = dc.zeros(3, 2, dtype=DTYPES[dt], device="cuda").T  # a view takes the result
        dist.scatter(got, scatter_list=lst, src=root)
        check(f"scatter {dt} src={root}", host(got), parts[me], dt)


@case
def reduce_scatters(dt, me, n):
    op = ReduceOp.SUM if dt != "bool" else ReduceOp.BOR
    # Uneven (rank i's output has i + 1 rows: one ncclReduce per rank), then even.
    for label, rows in (("uneven", lambda i: i + 1), ("even", lambda i: 2)):
        lists = [[data(src, (rows(i), 3), dt, 600 + i) for i in range(n)] for src in range(n)]
        out = dc.zeros(rows(me), 3, dtype=DTYPES[dt], device="cuda")
        dist.reduce_scatter(out, [on_device(a, dt) for a in lists[me]], op=op)
        want = reference(op, [lists[src][me] for src in range(n)], dt)
        check(f"reduce_scatter {dt} {label}", host(out), want, dt)
    inputs = [data(r, (n * 2, 3), dt, 700) for r in range(n)]
    out = dc.zeros(2, 3, dtype=DTYPES[dt], device="cuda")
    check_work(f"reduce_scatter_tensor {dt}", dist.reduce_scatter_tensor(
        out, on_device(inputs[me], dt), op=op, async_op=True), [out])
    want = reference(op, [a[me * 2:(me + 1) * 2] for a in inputs], dt)
    check(f"reduce_scatter_tensor {dt}", host(out), want, dt)
    # In place: the output is this rank's chunk of the input.
    whole = on_device(inputs[me], dt)
    dist.reduce_scatter_tensor(whole[me * 2:(me + 1) * 2], whole, op=op)
    check(f"reduce_scatter_tensor {dt} in place", host(whole[me * 2:(me + 1) * 2]), want, dt)
    if dt in ATOL:
        out = dc.zeros(3, 2, dtype=DTYPES[dt], device="cuda").T
        dist.reduce_scatter_tensor(out, on_device(inputs[me], dt), op=ReduceOp.AVG)
        want = reference(ReduceOp.AVG, [a[me * 2:(me + 1) * 2] for a in inputs], dt)
        check(f"reduce_scatter_tensor {dt} AVG into a view", host(out), want, dt)


@case
def point_to_point(dt, me, n):
    # A ring: each rank sends to the next and receives from the previous.
    nxt, prev = (me + 1) % n, (me - 1) % n
    t = on_device(data(me, (4, 2), dt, 800), dt)
    got = dc.zeros(2, 4, dtype=DTYPES[dt], device="cuda").T
    send = dist.isend(t, dst=nxt)
    recv = dist.irecv(got, src=prev)
    send.wait()
    recv.wait()
    check(f"isend/irecv {dt}", host(got), data(prev, (4, 2), dt, 800), dt)
    global cases
    cases += 1
    if recv.source_rank() != prev:
        failures.append(f"irecv {dt}: source_rank() {recv.source_rank()} != {prev}")
    # Blocking: even ranks send first; recv returns the sender.
    t = on_device(data(me, (3,), dt, 801), dt)
    got = dc.zeros(3, dtype=DTYPES[dt], device="cuda")
    if me % 2 == 0:
        dist.send(t, dst=nxt)
        source = dist.recv(got, src=prev)
    else:
        source = dist.recv(got, src=prev)
        dist.send(t, dst=nxt)
    check(f"send/recv {dt}", host(got), data(prev, (3,), dt, 801), dt)
    cases += 1
    if source != prev:
        failures.append(f"recv {dt}: returned {source}, expected {prev}")


@case
def groups_and_mixed_devices(me, n):
    global cases
    cases += 1
    if dist.get_backend() != "nccl" or "backend=nccl" not in repr(dist.group.WORLD):
        failures.append(f"get_backend() {dist.get_backend()!r}, {dist.group.WORLD!r}")
    local = int(os.environ.get("LOCAL_RANK", "0")) % dc.cuda.device_count()
    if not dist.is_nccl_available() or dc.cuda.current_device() != local:
        failures.append(f"is_nccl_available() or current_device() != {local}")
    # A CPU tensor in the same group goes through MPI (BXOR exists there, not in NCCL).
    t = dc.from_numpy(np.array([me + 1, 3], np.int32))
    dist.all_reduce(t, op=ReduceOp.BXOR)
    want = np.bitwise_xor.reduce(np.array([[r + 1, 3] for r in range(n)], np.int32), 0)
    check("cpu all_reduce beside nccl", t.numpy(), want, "int32")
    # On the current stream of a `with stream(...)` block.
    t = on_device(np.full(2, me + 1.0, np.float32), "float32")
    with dc.cuda.stream(dc.cuda.Stream()):
        work = dist.all_reduce(t, async_op=True)
    work.wait()
    check("all_reduce on a side stream", host(t), np.full(2, n * (n + 1) / 2), "float32")
    # A Future callback (DDP's comm hooks) sees the result.
    t = on_device(np.full(2, me + 1.0, np.float32), "float32")
    fut = dist.all_reduce(t, async_op=True).get_future().then(lambda f: f.value()[0] / n)
    check("future callback", host(fut.wait()), np.full(2, (n + 1) / 2), "float32")
    # A subgroup inherits NCCL; one made with backend="mpi" refuses CUDA tensors.
    sub = dist.new_group([0, n - 1])
    if me in (0, n - 1):
        t = on_device(np.full(3, me + 1.0, np.float32), "float32")
        dist.all_reduce(t, group=sub)
        check("subgroup all_reduce", host(t), np.full(3, 1.0 + n), "float32")
        cases += 1
        if dist.get_backend(sub) != "nccl":
            failures.append(f"subgroup backend {dist.get_backend(sub)!r}")
    cpu_only = dist.new_group(backend="mpi")
    cases += 1
    try:
        dist.all_reduce(on_device(np.ones(2, np.float32), "float32"), group=cpu_only)
        failures.append("an MPI group took a CUDA tensor")
    except RuntimeError as e:
        if "need an NCCL process group" not in str(e):
            failures.append(f"MPI group and a CUDA tensor: {e}")
    dist.destroy_process_group(cpu_only)
    for async_op in (False, True):
        work = dist.barrier(async_op=async_op)
        if async_op:
            work.wait()
            cases += 1
            if not work.is_completed():
                failures.append("barrier Work not completed")
    # Different devices on the ranks of one collective: the checks raise on every rank.
    t = (dc.ones(4) if me == 0 else dc.ones(4, device="cuda"))
    cases += 1
    try:
        dist.all_reduce(t)
        failures.append("a CPU and a CUDA tensor in one all_reduce went unnoticed")
    except dist.DistMismatchError as e:
        if "rank 0: float32 (4,); rank 1: cuda float32 (4,)" not in str(e):
            failures.append(f"mismatch message: {e}")


@case
def local_errors(me, n):
    """Bad arguments raise a typed error on the calling rank before anything is sent."""
    def cuda(*shape, dtype=dc.float32):
        return dc.ones(*shape, dtype=dtype, device="cuda")
    expect = [
        (TypeError, lambda: dist.all_reduce(cuda(3, dtype=dc.int32), op=ReduceOp.AVG)),
        (TypeError, lambda: dist.all_reduce(cuda(3), op=ReduceOp.BAND)),
        (TypeError, lambda: dist.all_reduce(cuda(3, dtype=dc.int64), op=ReduceOp.BXOR)),
        (TypeError, lambda: dist.all_reduce(cuda(3, dtype=dc.bool), op=ReduceOp.BXOR)),
        (TypeError, lambda: dist.all_reduce(cuda(3, dtype=dc.bool), op=ReduceOp.AVG)),
        (TypeError, lambda: dist.all_reduce(cuda(3), op="sum")),
        (NotImplementedError, lambda: dist.all_reduce(cuda(3), op=ReduceOp.PREMUL_SUM)),
        (ValueError, lambda: dist.all_reduce(cuda(1, 3).expand(4, 3))),
        (ValueError, lambda: dist.all_gather([cuda(3)] * (n + 1), cuda(3))),
        (ValueError, lambda: dist.all_gather([cuda(2)] * n, cuda(3))),
        (ValueError, lambda: dist.all_gather([dc.zeros(3)] * n, cuda(3))),
        (ValueError, lambda: dist.all_gather_into_tensor(cuda(3 * n + 1), cuda(3))),
        (ValueError, lambda: dist.all_gather_into_tensor(dc.zeros(3 * n), cuda(3))),
        (ValueError, lambda: dist.reduce_scatter_tensor(cuda(2), cuda(2 * n + 1))),
        (ValueError, lambda: dist.broadcast(cuda(3), src=n)),
        (ValueError, lambda: dist.irecv(cuda(3))),
        (ValueError, lambda: dist.send(cuda(3), dst=me)),
        (ValueError, lambda: dist.scatter(cuda(3), scatter_list=[cuda(3)] * n, src=(me + 1) % n)
         if n > 1 else dist.scatter(cuda(3), scatter_list=None, src=0)),
    ]
    for i, (cls, fn) in enumerate(expect):
        global cases
        cases += 1
        try:
            fn()
        except cls as e:
            if not str(e).startswith("["):
                failures.append(f"local error {i}: message lacks the [op] prefix: {e}")
        except Exception as e:  # noqa: BLE001  (reported as the wrong type)
            failures.append(f"local error {i}: expected {cls.__name__}, got {type(e).__name__}: "
                            f"{e}")
        else:
            failures.append(f"local error {i}: expected {cls.__name__}, nothing raised")


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "nccl"
    if not dc.cuda.is_available():
        dc._C._fake_cuda(True)
    # A rank left waiting (a bug here) times out and fails the run instead of hanging it.
    dist.init_process_group(backend, timeout=60)
    me, n = dist.get_rank(), dist.get_world_size()
    for dt in DTYPES:
        all_reduce(dt, me, n)
        all_reduce_views(dt, me, n)
        broadcast_and_reduce(dt, me, n)
        gathers(dt, me, n)
        reduce_scatters(dt, me, n)
        point_to_point(dt, me, n)
    groups_and_mixed_devices(me, n)
    local_errors(me, n)
    # After all the above every rank is still in step: a last all_reduce agrees.
    t = dc.ones(1, device="cuda")
    dist.all_reduce(t)
    check("final all_reduce", host(t), np.array([n], np.float32), "float32")
    dist.destroy_process_group()
    for f in failures:
        print(f"FAIL rank {me}: {f}")
    if failures:
        print(f"RANK {me} FAILED {len(failures)}/{cases}", flush=True)
        sys.exit(1)
    print(f"RANK {me} OK {cases}", flush=True)


if __name__ == "__main__":
    main()
