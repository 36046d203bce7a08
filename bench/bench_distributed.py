"""Data-parallel training over MPI: all_reduce bandwidth, DDP scaling and overlap.

    python3 bench/bench_distributed.py [--mb 100] [--repeats 7] [--batch 16] [--size 32]
                                       [--steps 8] [--rounds 2] [--bucket-mb 25,5]

Starts itself under ``mpirun`` (loopback TCP only, oversubscribed, 1 compute thread per rank)
and prints three markdown tables:

1. ``all_reduce`` of an ``--mb`` MB float32 tensor through ``deepcore.distributed`` against a
   bare mpi4py ``Allreduce`` (in place) on the same buffer, 2 ranks: seconds (median of
   ``--repeats``, the better of two alternations), algorithm bandwidth (bytes / time) and the
   ratio.
2. A ResNet-18 (CIFAR stem, ``small_input=True``) SGD step at ``--batch`` images of
   ``--size`` pixels per rank: 1 process without DDP against 2 processes with
   DistributedDataParallel. Scaling efficiency = (2 x batch / t2) / (batch / t1) = t1 / t2.
   A third configuration, 2 independent processes training at once without communicating,
   separates what the machine gives two processes (t1 / t_pair) from what DDP costs
   (t_pair / t2). The configurations alternate ``--rounds`` times; the best step of all
   rounds (the machine is shared: the minimum is the time least disturbed by other processes).
3. Overlap, on the 2-rank runs, timing ``loss.backward()`` (which includes DDP's wait for
   the buckets and the write-back of the averages) three ways: with no communication
   (``no_sync``), t_b; with every bucket launched only when backward ends (the same work, no
   overlap), t_s; and as DDP runs it, buckets launched from the gradient hooks, t_o. The
   hidden share of the communication is (t_s - t_o) / (t_s - t_b). Also, in DDP's normal
   step, the share of the gradient bytes whose all-reduce had finished when backward computed
   its last gradient, and the wait after that gradient (remaining all-reduces and the
   write-back). One 2-rank run per ``--bucket-mb`` cap (the first, 25 by default as in
   PyTorch, gives table 2).

Rank 0 of each ``mpirun`` prints one JSON line; the orchestrating process reads them.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

MPI_FLAGS = ["--oversubscribe", "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo",
             "--mca", "oob_tcp_if_include", "lo"]
TAG = "BENCH_DISTRIBUTED "


# ---- the per-rank roles ---------------------------------------------------------------------

def role_allreduce(args) -> dict:
    import numpy as np

    import deepcore as dc
    import deepcore.distributed as dist
    from mpi4py import MPI

    dist.init_process_group("mpi")
    n = int(args.mb * 1e6) // 4
    t = dc.ones(n, dtype=dc.float32)
    buf = t.numpy()  # the same memory, for mpi4py
    comm = MPI.COMM_WORLD

    def timed(fn):
        times = []
        for _ in range(args.repeats + 1):
            comm.Barrier()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times[1:])  # the first run warms the connections up

    results = {}
    for _ in range(2):  # alternate the two, twice, so both see the same machine load
        results.setdefault("deepcore", []).append(timed(lambda: dist.all_reduce(t)))
        results.setdefault("mpi4py", []).append(
            timed(lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)))
    out = {k: min(v) for k, v in results.items()}
    out["bytes"] = n * 4
    assert np.isfinite(buf[:4]).all()
    dist.destroy_process_group()
    return out


def _resnet(args):
    import deepcore as dc
    from deepcore.models import resnet18
    dc.manual_seed(0)
    return resnet18(num_classes=10, small_input=True)


def _timed_ddp():
    """DistributedDataParallel that notes when each bucket's all-reduce was launched and
    finished, and when backward's gradients were all computed (the end-of-backward callback)."""
    from deepcore.nn.parallel import DistributedDataParallel

    class TimedDDP(DistributedDataParallel):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.events = []

        def _launch_ready_buckets(self):
            first = self._next_bucket
            super()._launch_ready_buckets()
            for b in self._buckets[first:self._next_bucket]:
                b.work.get_future().add_done_callback(
                    lambda f, b=b: self.events.append(("done", b.nbytes, time.perf_counter())))

        def _finalize(self):
            self.events.append(("grads", 0, time.perf_counter()))
            super()._finalize()

    return TimedDDP


def role_resnet(args) -> dict:
    import deepcore as dc
    import deepcore.nn.functional as F
    from deepcore import optim

    dc.set_num_threads(1)
    distributed = args.ddp
    if distributed:
        import deepcore.distributed as dist
        dist.init_process_group("mpi")
        rank = dist.get_rank()
    else:
        rank = 0
    model = _resnet(args)
    net = _timed_ddp()(model, bucket_cap_mb=float(args.bucket_mb)) if distributed else model
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    dc.manual_seed(1 + rank)
    x = dc.randn(args.batch, 3, args.size, args.size)
    y = dc.randint(0, 10, (args.batch,))

    def step():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    steps = []
    for _ in range(args.steps):
        if distributed:
            dist.barrier()
        t0 = time.perf_counter()
        step()
        steps.append(time.perf_counter() - t0)
    out = {"step": min(steps)}
    if not distributed:
        return out

    # Overlap: backward + wait as DDP runs it, against the same work with every bucket
    # launched at the end of backward (net._overlap = False), and backward alone (no_sync).
    timings = {"overlapped": [], "serial": [], "backward": [], "wait": [], "early": []}
    for _ in range(args.steps):
        for name in ("overlapped", "serial", "backward"):
            opt.zero_grad()
            net._overlap = name != "serial"
            with (net.no_sync() if name == "backward" else contextlib.nullcontext()):
                loss = F.cross_entropy(net(x), y)
            dist.barrier()
            net.events = []
            t0 = time.perf_counter()
            loss.backward()
            t1 = time.perf_counter()
            timings[name].append(t1 - t0)
            if name == "overlapped":
                # the wait after the last gradient, and the share of the bytes reduced by then
                grads = next(t for kind, _, t in net.events if kind == "grads")
                early = sum(n for kind, n, t in net.events if kind == "done" and t <= grads)
                timings["wait"].append(t1 - grads)
                timings["early"].append(early / sum(b.nbytes for b in net._buckets))
            # Free the graph before the next forward, as step() does by returning: a graph
            # still alive keeps the parameters' AccumulateGrad nodes, and with them their old
            # sequence numbers (see bench/README.md, "Data-parallel training").
            del loss
    net._overlap = True
    out.update({k: min(v) for k, v in timings.items() if k != "early"})
    out["early"] = statistics.median(timings["early"])
    out.update(buckets=len(net._buckets),
               grad_mb=sum(b.nbytes for b in net._buckets) / 1e6)
    dist.destroy_process_group()
    return out


# ---- the orchestrator -----------------------------------------------------------------------

def mpirun(nproc: int, role: str, args, extra=()) -> dict:
    exe = shutil.which("mpirun")
    if exe is None:
        raise SystemExit("bench_distributed: mpirun not found (apt-get install openmpi-bin)")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = [exe, "-np", str(nproc)] + MPI_FLAGS + [
        sys.executable, os.path.abspath(__file__), "--role", role, "--mb", str(args.mb),
        "--repeats", str(args.repeats), "--batch", str(args.batch), "--size", str(args.size),
        "--steps", str(args.steps)] + list(extra)
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    load = max(load, os.getloadavg()[0])
    if proc.returncode != 0:
        raise SystemExit(f"bench_distributed: {' '.join(cmd)} failed:\n{proc.stdout}\n"
                         f"{proc.stderr}")
    for line in proc.stdout.splitlines():
        if line.startswith(TAG):
            return {**json.loads(line[len(TAG):]), "load": load}
    raise SystemExit(f"bench_distributed: no result from {role}:\n{proc.stdout}\n{proc.stderr}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100.0, help="all_reduce size in MB")
    ap.add_argument("--repeats", type=int, default=7, help="all_reduce repeats per library")
    ap.add_argument("--batch", type=int, default=16, help="ResNet-18 images per rank")
    ap.add_argument("--size", type=int, default=32, help="image side in pixels")
    ap.add_argument("--steps", type=int, default=8, help="timed ResNet-18 steps per run")
    ap.add_argument("--rounds", type=int, default=2, help="1-rank/2-rank alternations")
    ap.add_argument("--bucket-mb", default="25,5",
                    help="DDP bucket caps to measure, comma-separated (the first for scaling); "
                         "a rank gets one")
    ap.add_argument("--role", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ddp", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.role is not None:
        result = role_allreduce(args) if args.role == "allreduce" else role_resnet(args)
        if int(os.environ.get("OMPI_COMM_WORLD_RANK", "0")) == 0:
            print(TAG + json.dumps(result), flush=True)
        return

    ar = mpirun(2, "allreduce", args)
    gb = ar["bytes"] / 1e9
    print(f"## all_reduce of {args.mb:g} MB float32, 2 ranks (median of {args.repeats}, "
          "the better of 2 alternations)\n")
    print("| | seconds | GB/s (bytes / time) |")
    print("|---|---|---|")
    for name in ("mpi4py", "deepcore"):
        print(f"| {'bare mpi4py Allreduce' if name == 'mpi4py' else 'deepcore.distributed'}"
              f" | {ar[name]:.3f} | {gb / ar[name]:.2f} |")
    print(f"\ndeepcore / mpi4py bandwidth: {ar['mpi4py'] / ar['deepcore']:.2f}x\n")

    caps = [float(c) for c in str(args.bucket_mb).split(",")]
    one, pair, runs = [], [], {c: [] for c in caps}
    loads = [ar["load"]]
    for _ in range(args.rounds):
        one.append(mpirun(1, "resnet", args, ["--ddp", "0", "--bucket-mb", str(caps[0])]))
        pair.append(mpirun(2, "resnet", args, ["--ddp", "0", "--bucket-mb", str(caps[0])]))
        for c in caps:
            runs[c].append(mpirun(2, "resnet", args, ["--bucket-mb", str(c)]))
        loads += [one[-1]["load"], pair[-1]["load"]] + [runs[c][-1]["load"] for c in caps]
    two = runs[caps[0]]
    t1 = min(r["step"] for r in one)
    tp = min(r["step"] for r in pair)
    t2 = min(r["step"] for r in two)
    print(f"## ResNet-18 SGD step, {args.batch} x 3 x {args.size} x {args.size} per rank, "
          f"1 thread per rank (the best of {args.rounds} rounds x {args.steps} steps)\n")
    print("| configuration | step s | images/s |")
    print("|---|---|---|")
    print(f"| 1 process, no DDP | {t1:.3f} | {args.batch / t1:.1f} |")
    print(f"| 2 independent processes at once, no DDP | {tp:.3f} | {2 * args.batch / tp:.1f} |")
    print(f"| 2 processes, DDP (bucket_cap_mb={caps[0]:g}) | {t2:.3f} | "
          f"{2 * args.batch / t2:.1f} |")
    for c in caps[1:]:
        tc = min(r["step"] for r in runs[c])
        print(f"| 2 processes, DDP (bucket_cap_mb={c:g}) | {tc:.3f} | {2 * args.batch / tc:.1f} |")
    print(f"\nscaling efficiency (bucket_cap_mb={caps[0]:g}): {t1 / t2 * 100:.0f}%; of which the "
          f"machine running two processes at once: {t1 / tp * 100:.0f}%, DDP's communication "
          f"and bookkeeping: {tp / t2 * 100:.0f}%\n")

    print(f"## Overlap ({runs[caps[0]][0]['grad_mb']:.1f} MB of gradients; backward times "
          "of the 2-rank runs, the best of each)\n")
    print("| bucket_cap_mb | buckets | backward alone (no_sync) s | DDP, buckets launched at "
          "the end s | DDP, buckets launched from the hooks s | communication hidden | "
          "bytes reduced before the last gradient | wait after it s |")
    print("|---|---|---|---|---|---|---|---|")
    for c in caps:
        rs = runs[c]
        bwd = min(r["backward"] for r in rs)
        serial = min(r["serial"] for r in rs)
        ov = min(r["overlapped"] for r in rs)
        hidden = (serial - ov) / (serial - bwd) if serial > bwd else float("nan")
        early = statistics.median(r["early"] for r in rs)
        wait = min(r["wait"] for r in rs)
        print(f"| {c:g} | {rs[0]['buckets']} | {bwd:.3f} | {serial:.3f} | {ov:.3f} | "
              f"{hidden * 100:.0f}% | {early * 100:.0f}% | {wait:.3f} |")
    print(f"\n1-minute load average during the runs: {min(loads):.1f} to {max(loads):.1f} "
          f"({os.cpu_count()} CPUs); other processes' load inflates every time above")


if __name__ == "__main__":
    main()
