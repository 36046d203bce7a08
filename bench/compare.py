"""deepcore vs PyTorch vs NumPy, measured in one run; prints a markdown table.

    python bench/compare.py            # all groups
    python bench/compare.py --only core

Medians over repeated timings; ratios are deepcore time / other time (lower is better for
deepcore). The machine is shared and noisy: compare ratios from the same run only.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def timeit(fn, min_time=0.2, repeats=7):
    """Median seconds per call: calls are batched so each sample takes ~min_time/repeats."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > min_time / repeats or n > 1 << 24:
            break
        n *= 4
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples)


def fmt_time(s):
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    return f"{s * 1e3:.2f} ms"


def core_rows(dc, torch):
    rows = []
    # Per-op latency: dominated by dispatch overhead.
    for n in (1, 1000):
        a, b = dc.ones(n), dc.ones(n)
        ta, tb = torch.ones(n), torch.ones(n)
        na, nb = np.ones(n, np.float32), np.ones(n, np.float32)
        rows.append((f"a + b, {n} element{'s' if n > 1 else ''}", timeit(lambda: a + b),
                     timeit(lambda: ta + tb), timeit(lambda: na + nb), None))

    x = dc.ones(4, requires_grad=True)
    tx = torch.ones(4, requires_grad=True)

    def dc_step():
        (x * x).sum().backward()

    def torch_step():
        (tx * tx).sum().backward()
    rows.append(("(x * x).sum().backward(), 4 elements", timeit(dc_step), timeit(torch_step),
                 None, None))

    n = 4 * 1024 * 1024
    a, b = dc.rand(n), dc.rand(n)
    ta, tb = torch.rand(n), torch.rand(n)
    na, nb = np.random.rand(n).astype(np.float32), np.random.rand(n).astype(np.float32)
    rows.append(("add, 4M float32", timeit(lambda: a + b), timeit(lambda: ta + tb),
                 timeit(lambda: na + nb), 3 * 4 * n))
    rows.append(("exp, 4M float32", timeit(lambda: a.exp()), timeit(lambda: ta.exp()),
                 timeit(lambda: np.exp(na)), 2 * 4 * n))
    rows.append(("sum, 4M float32", timeit(lambda: a.sum()), timeit(lambda: ta.sum()),
                 timeit(lambda: na.sum()), 4 * n))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["core"], default=None)
    args = parser.parse_args()
    import torch

    import deepcore as dc
    torch.set_num_threads(dc.get_num_threads())
    rows = core_rows(dc, torch)
    print(f"deepcore {dc.__version__} (kernels: {dc._C._active_isa()}, "
          f"{dc.get_num_threads()} threads) vs torch {torch.__version__} vs numpy "
          f"{np.__version__}\n")
    print("| benchmark | deepcore | torch | numpy | deepcore/torch | deepcore GB/s |")
    print("|---|---|---|---|---|---|")
    for name, d, t, n, nbytes in rows:
        gbs = f"{nbytes / d / 1e9:.1f}" if nbytes else ""
        print(f"| {name} | {fmt_time(d)} | {fmt_time(t)} | "
              f"{fmt_time(n) if n is not None else '-'} | {d / t:.2f}x | {gbs} |")


if __name__ == "__main__":
    main()
