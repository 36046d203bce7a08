"""DataLoader throughput, deepcore vs PyTorch in the same process.

    python3 bench/bench_dataloader.py [--n 60000] [--dim 784] [--batch 64]
                                      [--epochs 3] [--workers 0]

One epoch = every sample of a TensorDataset(x float32 (n, dim), y int64 (n,)) once, shuffled,
in batches. Reports the best epoch of each library in samples/s and the ratio.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def epoch_time(loader) -> float:
    t0 = time.perf_counter()
    n = 0
    for x, y in loader:
        n += x.shape[0]
    return time.perf_counter() - t0, n


def best(loader, epochs: int):
    times = []
    for _ in range(epochs):
        t, n = epoch_time(loader)
        times.append(t)
    return min(times), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--dim", type=int, default=784)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: default)")
    args = ap.parse_args()

    import deepcore as dc
    import deepcore.utils.data as dcd
    import torch
    import torch.utils.data as tud

    if args.threads:
        torch.set_num_threads(args.threads)
        dc.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    y = rng.integers(0, 10, args.n).astype(np.int64)

    kw = dict(batch_size=args.batch, shuffle=True, num_workers=args.workers)
    dc.manual_seed(0)
    torch.manual_seed(0)
    ours = dcd.DataLoader(dcd.TensorDataset(dc.from_numpy(x), dc.from_numpy(y)), **kw)
    theirs = tud.DataLoader(tud.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), **kw)

    t_dc, n_dc = best(ours, args.epochs)
    t_th, n_th = best(theirs, args.epochs)
    assert n_dc == n_th == args.n
    print(f"TensorDataset {args.n}x{args.dim} float32 + int64 labels, batch {args.batch}, "
          f"shuffle=True, num_workers={args.workers}, best of {args.epochs} epochs")
    print(f"  deepcore : {n_dc / t_dc:12,.0f} samples/s  ({t_dc * 1e3:8.1f} ms/epoch)")
    print(f"  torch    : {n_th / t_th:12,.0f} samples/s  ({t_th * 1e3:8.1f} ms/epoch)")
    print(f"  ratio    : {t_th / t_dc:.2f}x (deepcore / torch throughput)")


if __name__ == "__main__":
    main()
