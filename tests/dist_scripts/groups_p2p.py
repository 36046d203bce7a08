"""Process groups, point-to-point, barrier, Work/Future and object collectives, on 2+ ranks.

Prints ``FAIL <what>`` per failed check and ends with ``RANK <r> OK <checks>``; exit status 1
on failure.
"""
import sys
import time

import numpy as np

import deepcore as dc
import deepcore.distributed as dist

failures = []
checks = 0


def expect(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)


def groups(me, n):
    expect(dist.group.WORLD is not None and dist.get_rank(dist.group.WORLD) == me, "group.WORLD")
    expect(dist.get_backend() == "mpi", "get_backend")
    expect(dist.get_process_group_ranks(dist.group.WORLD) == list(range(n)), "world ranks")
    odd = [r for r in range(n) if r % 2 == 1]
    # Given unsorted: ranks are sorted, as in PyTorch.
    g = dist.new_group(list(reversed(odd)))
    if me in odd:
        expect(isinstance(g, dist.ProcessGroup), "new_group member gets a ProcessGroup")
        expect(dist.get_rank(g) == odd.index(me), f"get_rank(group) {dist.get_rank(g)}")
        expect(dist.get_world_size(g) == len(odd), "get_world_size(group)")
        expect(g.rank() == odd.index(me) and g.size() == len(odd), "ProcessGroup.rank/size")
        expect(dist.get_global_rank(g, 0) == odd[0], "get_global_rank")
        expect(dist.get_group_rank(g, me) == odd.index(me), "get_group_rank")
        t = dc.full((3,), float(me))
        dist.all_reduce(t, group=g)
        expect(t.tolist() == [float(sum(odd))] * 3, f"all_reduce on a subgroup: {t.tolist()}")
        # src is a global rank; group_src a rank in the group.
        t = dc.full((2,), float(me))
        dist.broadcast(t, src=odd[-1], group=g)
        expect(t.tolist() == [float(odd[-1])] * 2, "broadcast src= global rank")
        t = dc.full((2,), float(me))
        dist.broadcast(t, group_src=0, group=g)
        expect(t.tolist() == [float(odd[0])] * 2, "broadcast group_src=")
    else:
        expect(g is dist.GroupMember.NON_GROUP_MEMBER, "non-member gets NON_GROUP_MEMBER")
        expect(dist.get_rank(g) == -1 and dist.get_world_size(g) == -1, "non-member rank -1")
        t = dc.ones(3)
        expect(dist.all_reduce(t, group=g) is None and t.tolist() == [1.0] * 3,
               "a collective outside the group does nothing")
    # Collectives on the world interleave with the subgroup's.
    t = dc.ones(2)
    dist.all_reduce(t)
    expect(t.tolist() == [float(n)] * 2, "world all_reduce after a subgroup")
    if me in odd:
        dist.destroy_process_group(g)
        try:
            dist.all_reduce(dc.ones(1), group=g)
            expect(False, "a destroyed group raises")
        except RuntimeError as e:
            expect("destroyed" in str(e), f"destroyed group message: {e}")


def point_to_point(me, n):
    right, left = (me + 1) % n, (me - 1) % n
    payload = dc.arange(5, dtype=dc.int64) * (me + 1)
    got = dc.zeros(5, dtype=dc.int64)
    # A ring of isend/irecv: every rank sends and receives at once (no deadlock).
    sw = dist.isend(payload, dst=right, tag=3)
    rw = dist.irecv(got, src=left, tag=3)
    rw.wait()
    sw.wait()
    expect(got.tolist() == [i * (left + 1) for i in range(5)], f"irecv ring {got.tolist()}")
    expect(rw.is_completed() and rw.is_success() and rw.source_rank() == left, "irecv Work")
    # Blocking send/recv, non-contiguous receive buffer, source from ANY_SOURCE.
    if me == 0:
        for _ in range(1, n):
            buf = dc.zeros(3, 2, dtype=dc.float64)
            who = dist.recv(buf.T)
            expect(buf.T.tolist() == [[float(who)] * 3] * 2, f"recv from any: {buf.tolist()}")
    else:
        dist.send(dc.full((2, 3), float(me), dtype=dc.float64), dst=0)
    # A message of the wrong size raises on the receiver, naming both sizes.
    if me == 0:
        try:
            dist.recv(dc.zeros(4), src=1, tag=9)
            expect(False, "recv of a shorter message raises")
        except dist.DistMismatchError as e:
            expect("12 bytes" in str(e) and "16 bytes" in str(e) and "[recv]" in str(e),
                   f"recv size message: {e}")
        try:
            dist.recv(dc.zeros(2), src=1, tag=10)
            expect(False, "recv of a longer message raises")
        except dist.DistMismatchError as e:
            expect("larger than the receive buffer" in str(e), f"truncation message: {e}")
    elif me == 1:
        dist.send(dc.ones(3), dst=0, tag=9)
        dist.send(dc.ones(3), dst=0, tag=10)
    dist.barrier()


def barrier_and_async(me, n):
    # The barrier holds rank 0 until the last rank arrives (rank n-1 sleeps first).
    if me == n - 1:
        time.sleep(0.3)
    t0 = time.monotonic()
    dist.barrier()
    if me == 0:
        expect(time.monotonic() - t0 > 0.2, f"barrier waited {time.monotonic() - t0:.3f} s")
    # An async all_reduce is not complete before every rank joins: rank 1 joins only after
    # rank 0 told it (by a message) that it looked.
    t = dc.full((4,), float(me + 1))
    if me == 0:
        w = dist.all_reduce(t, async_op=True)
        expect(not w.is_completed(), "async all_reduce completed before the peers joined")
        dist.send(dc.ones(1), dst=1)
        expect(w.wait() is True and w.is_completed(), "Work.wait")
    else:
        if me == 1:
            dist.recv(dc.zeros(1), src=0)
        w = dist.all_reduce(t, async_op=True)
        w.wait(timeout=30)
    want = float(n * (n + 1) // 2)
    expect(t.tolist() == [want] * 4, f"async all_reduce {t.tolist()}")
    expect(w.result()[0] is t and w.exception() is None, "Work.result/exception")
    # A Future chain, as DDP communication hooks use them.
    t = dc.ones(3)
    fut = dist.all_reduce(t, async_op=True).get_future()
    avg = fut.then(lambda f: f.value()[0] / n)
    expect(avg.wait().tolist() == [1.0] * 3 and fut.done(), "Future.then")
    # A callback runs on the group's worker thread: a blocking collective there would wait for
    # itself, so it raises (on every rank alike, so nothing is left half-called).
    errors = []

    def blocking_in_callback(f):
        try:
            dist.all_reduce(dc.ones(1))
        except RuntimeError as e:
            errors.append(str(e))
    dist.all_reduce(dc.ones(1), async_op=True).get_future().then(blocking_in_callback).wait()
    expect(len(errors) == 1 and "inside a Future callback" in errors[0], f"callback: {errors}")
    barrier_work = dist.barrier(async_op=True)
    expect(barrier_work.wait() is True, "async barrier")
    # Several async collectives in flight complete in order.
    ts = [dc.full((1000,), float(i)) for i in range(6)]
    works = [dist.all_reduce(x, async_op=True) for x in ts]
    for w in reversed(works):
        w.wait()
    expect(all(x.tolist() == [float(i * n)] * 1000 for i, x in enumerate(ts)),
           "several async all_reduces")


def objects(me, n):
    out = [None] * n
    dist.all_gather_object(out, {"rank": me, "text": "x" * me})
    expect(out == [{"rank": r, "text": "x" * r} for r in range(n)], f"all_gather_object {out}")
    lst = [me, "b", (1, 2)] if me == n - 1 else [None, None, None]
    dist.broadcast_object_list(lst, src=n - 1)
    expect(lst == [n - 1, "b", (1, 2)], f"broadcast_object_list {lst}")
    gathered = [None] * n if me == 0 else None
    dist.gather_object(me * 10, gathered, dst=0)
    if me == 0:
        expect(gathered == [r * 10 for r in range(n)], f"gather_object {gathered}")


def main():
    dist.init_process_group(backend="gloo")  # runs on the MPI backend
    expect(dist.is_initialized(), "is_initialized")
    me, n = dist.get_rank(), dist.get_world_size()
    groups(me, n)
    point_to_point(me, n)
    barrier_and_async(me, n)
    objects(me, n)
    dist.destroy_process_group()
    expect(not dist.is_initialized() and dist.group.WORLD is None, "destroy_process_group")
    # A second run in the same processes.
    dist.init_process_group("mpi")
    t = dc.ones(1)
    dist.all_reduce(t)
    expect(t.tolist() == [float(n)], "all_reduce after init again")
    dist.destroy_process_group()
    for f in failures:
        print(f"FAIL rank {me}: {f}")
    print(f"RANK {me} {'FAILED' if failures else 'OK'} {checks}", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    np.seterr(all="raise")
    main()
