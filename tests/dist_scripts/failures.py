"""Failures on 2 ranks: ``python failures.py MODE``.

  exception         rank 1 raises while rank 0 waits in all_reduce: both must end at once,
                    with rank 1's traceback.
  timeout_uncaught  rank 1 never joins; rank 0's Work.wait(timeout=1 s) raises, uncaught.
  timeout_caught    rank 0 times out in all_reduce (group timeout 2 s) while rank 1 waits on a
                    message that never comes (its own timeout: 60 s): both raise DistTimeoutError
                    (rank 1 through rank 0's notice) and print it.
  exit              rank 1 calls sys.exit(3) while rank 0 waits in all_reduce (group timeout
                    60 s): rank 0 raises DistBackendError naming rank 1 within seconds.
  mismatch          shapes, dtypes, collectives, roots and reduce ops that differ between the
                    ranks raise DistMismatchError on both; the group stays usable, also with the
                    checks turned off. Prints ``RANK <r> OK`` at the end.
"""
import sys
import time
from datetime import timedelta

import deepcore as dc
import deepcore.distributed as dist


def mismatch(me):
    cases = [
        ("shape", lambda: dist.all_reduce(dc.ones(4 + me))),
        ("dtype", lambda: dist.all_reduce(dc.ones(2, 3, dtype=dc.float32 if me == 0
                                                   else dc.float64))),
        ("collective", lambda: dist.broadcast(dc.ones(2), src=0) if me == 0 else
         dist.all_reduce(dc.ones(2))),
        ("root", lambda: dist.broadcast(dc.ones(2), src=me)),
        ("op", lambda: dist.all_reduce(dc.ones(2), op=dist.ReduceOp.SUM if me == 0 else
                                       dist.ReduceOp.MAX)),
        ("gather shape", lambda: dist.all_gather_into_tensor(dc.zeros(2 * (2 + me)),
                                                             dc.ones(2 + me))),
        # Each rank's own entry matches its output, but the lists differ.
        ("reduce_scatter lists", lambda: dist.reduce_scatter(
            dc.zeros(1 + 2 * me), [dc.ones(1), dc.ones(2 + me)])),
    ]
    for name, fn in cases:
        try:
            fn()
            print(f"FAIL rank {me}: {name} mismatch did not raise", flush=True)
        except dist.DistMismatchError as e:
            print(f"rank {me} {name}: {e}", flush=True)
    t = dc.ones(3)
    dist.all_reduce(t)
    ok = t.tolist() == [2.0] * 3
    dist.set_collective_checks(False)
    t = dc.ones(3)
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    ok = ok and t.tolist() == [1.0] * 3
    dist.set_collective_checks(True)
    print(f"RANK {me} {'OK' if ok else 'FAILED'}", flush=True)


def main():
    mode = sys.argv[1]
    dist.init_process_group("mpi", timeout=timedelta(seconds=60 if mode == "exit" else 2))
    me = dist.get_rank()
    t = dc.ones(4)
    dist.barrier()
    if mode == "exception":
        if me == 1:
            raise ValueError("boom on rank 1")
        dist.all_reduce(t)
        print("rank 0 passed all_reduce without rank 1", flush=True)
    elif mode == "timeout_uncaught":
        if me == 1:
            time.sleep(60)
        dist.all_reduce(t, async_op=True).wait(timeout=timedelta(seconds=1))
    elif mode == "timeout_caught":
        t0 = time.monotonic()
        try:
            if me == 0:
                dist.all_reduce(t)
            else:
                dist.irecv(dc.zeros(4), src=0).wait(timeout=60)
            print(f"rank {me} was not stopped", flush=True)
        except dist.DistTimeoutError as e:
            print(f"rank {me} caught after {time.monotonic() - t0:.1f} s: {e}", flush=True)
        try:
            dist.barrier()
        except dist.DistTimeoutError as e:
            print(f"rank {me} then: {e}", flush=True)
    elif mode == "exit":
        if me == 1:
            time.sleep(1)  # rank 0 is waiting in all_reduce by now
            sys.exit(3)
        t0 = time.monotonic()
        try:
            dist.all_reduce(t)
            print("rank 0 was not stopped", flush=True)
        except dist.DistBackendError as e:
            print(f"rank 0 caught after {time.monotonic() - t0:.1f} s: {e}", flush=True)
    elif mode == "mismatch":
        mismatch(me)
        dist.destroy_process_group()
    else:
        raise SystemExit(f"failures.py: unknown mode {mode!r}")


if __name__ == "__main__":
    main()
