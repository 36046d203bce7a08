"""all_reduce through deepcore.distributed against bare mpi4py on the same buffer.

    OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo \\
      python -m deepcore.distributed.run --nproc 2 tests/dist_scripts/bench_allreduce.py

Prints, on rank 0, the median time and algorithm bandwidth (bytes / time) of a 100 MB float32
all_reduce for bare ``MPI_Allreduce`` (mpi4py), deepcore's ``all_reduce`` with the collective
checks (Note [Collective checks]) on and off, and ``async_op=True`` + ``wait()``; then the latency
of a 1-element all_reduce the same ways, which is where the checks' extra allgather shows. The
variants are interleaved round by round, so a noisy machine slows them alike.
"""
import argparse
import time

import numpy as np

import deepcore as dc
import deepcore.distributed as dist


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--small-rounds", type=int, default=300)
    args = ap.parse_args()
    dist.init_process_group("mpi")
    from mpi4py import MPI
    comm = MPI.COMM_WORLD.Dup()
    rank = dist.get_rank()

    def run(n: int, rounds: int):
        t = dc.ones(n)
        arr = t.numpy()          # the same memory the API reduces

        def bare():
            comm.Allreduce(MPI.IN_PLACE, [arr, MPI.FLOAT], MPI.SUM)

        def checked():
            dist.set_collective_checks(True)
            dist.all_reduce(t)

        def unchecked():
            dist.set_collective_checks(False)
            dist.all_reduce(t)

        def async_wait():
            dist.set_collective_checks(False)
            dist.all_reduce(t, async_op=True).wait()
        variants = {"bare mpi4py Allreduce": bare, "all_reduce (checks on)": checked,
                    "all_reduce (checks off)": unchecked, "all_reduce async + wait": async_wait}
        times = {k: [] for k in variants}
        for _ in range(rounds):
            for name, fn in variants.items():
                comm.Barrier()
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        return {k: float(np.median(v)) for k, v in times.items()}

    n = int(args.mb * 1e6 / 4)
    big = run(n, args.rounds)
    small = run(1, args.small_rounds)
    dist.set_collective_checks(True)
    if rank == 0:
        print(f"{dist.get_world_size()} ranks, {n * 4 / 1e6:.0f} MB float32 all_reduce, "
              f"median of {args.rounds}:")
        for name, s in big.items():
            print(f"  {name:26s} {s * 1e3:8.1f} ms  {n * 4 / s / 1e9:6.2f} GB/s  "
                  f"({big['bare mpi4py Allreduce'] / s:.2f}x bare)")
        print(f"1-element all_reduce latency, median of {args.small_rounds}:")
        for name, s in small.items():
            print(f"  {name:26s} {s * 1e6:8.1f} us")
    comm.Free()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
