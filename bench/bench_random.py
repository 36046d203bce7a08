"""Times the random fills on 1M elements (float32 and float64): deepcore vs torch in the same
process, with the same thread count.

    PYTHONPATH=build/<name>/site python3 bench/bench_random.py [--threads 2] [--n 1000000]

Prints median times and the ratio deepcore / torch (below 1 means deepcore is faster). The two
libraries are timed in alternation, so that a change in the machine's load hits both.
"""
import argparse
import statistics
import time

import deepcore as dc
import torch


def cases(n, dt, tt):
    """(name, deepcore call, torch call) for one dtype; outputs are preallocated for the
    in-place fills."""
    d_out, t_out = dc.empty(n, dtype=dt), torch.empty(n, dtype=tt)
    d_p, t_p = dc.full((n,), 0.3, dtype=dt), torch.full((n,), 0.3, dtype=tt)
    rows = [
        ("randn", lambda: dc.randn(n, dtype=dt), lambda: torch.randn(n, dtype=tt)),
        ("rand", lambda: dc.rand(n, dtype=dt), lambda: torch.rand(n, dtype=tt)),
        ("normal_", lambda: d_out.normal_(0.0, 2.0), lambda: t_out.normal_(0.0, 2.0)),
        ("uniform_", lambda: d_out.uniform_(-1.0, 3.0), lambda: t_out.uniform_(-1.0, 3.0)),
        ("bernoulli(p tensor)", lambda: dc.bernoulli(d_p), lambda: torch.bernoulli(t_p)),
    ]
    if hasattr(d_out, "bernoulli_"):
        rows.append(("bernoulli_(p=0.3)", lambda: d_out.bernoulli_(0.3),
                     lambda: t_out.bernoulli_(0.3)))
    return rows


def median_times(fns, reps):
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for _ in range(reps):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dc.set_num_threads(args.threads)
    print(f"n = {args.n}, threads: torch {torch.get_num_threads()}, deepcore "
          f"{dc.get_num_threads()}, torch {torch.__version__}")
    print("| op | dtype | deepcore ms | torch ms | ratio dc/torch |")
    print("|---|---|---|---|---|")
    for dt, tt in [(dc.float32, torch.float32), (dc.float64, torch.float64)]:
        for name, d_fn, t_fn in cases(args.n, dt, tt):
            t_dc, t_torch = median_times([d_fn, t_fn], args.reps)
            print(f"| {name} | {str(tt).split('.')[1]} | {t_dc * 1e3:.3f} | "
                  f"{t_torch * 1e3:.3f} | {t_dc / t_torch:.2f} |")


if __name__ == "__main__":
    main()
