"""Times one optimizer step over a ResNet-18-sized parameter set (~11.7M floats in 62 tensors):
deepcore's fused step vs torch.optim with foreach=True, in the same process.

    python3 bench/bench_optim.py [--threads N] [--reps R]

Prints median step times and the ratio deepcore / torch (below 1 means deepcore is faster).
"""
import argparse
import statistics
import time

import deepcore as dc
import numpy as np
import torch
from deepcore import optim


def resnet18_shapes():
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            first_in = cin if block == 0 else cout
            shapes += [(cout, first_in, 3, 3), (cout,), (cout,),
                       (cout, cout, 3, 3), (cout,), (cout,)]
            if block == 0 and (stride != 1 or cin != cout):
                shapes += [(cout, cin, 1, 1), (cout,), (cout,)]
        cin = cout
    return shapes + [(1000, 512), (1000,)]


def median_time(fn, reps):
    fn()  # warm-up: allocates the optimizer state
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        dc.set_num_threads(args.threads)
    shapes = resnet18_shapes()
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    n = sum(v.size for v in values)
    print(f"{len(shapes)} tensors, {n / 1e6:.2f}M floats, threads: torch {torch.get_num_threads()}"
          f", deepcore {dc.get_num_threads()}")

    rows = []
    for name, kwargs in [("Adam", dict(lr=1e-3)), ("AdamW", dict(lr=1e-3)),
                         ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=5e-4))]:
        tp = [torch.from_numpy(v.copy()).requires_grad_() for v in values]
        dp = [dc.from_numpy(v.copy()).requires_grad_() for v in values]
        for p, g in zip(tp, grads):
            p.grad = torch.from_numpy(g)
        for p, g in zip(dp, grads):
            p.grad = dc.from_numpy(g)
        topt = getattr(torch.optim, name)(tp, foreach=True, **kwargs)
        dopt = getattr(optim, name)(dp, **kwargs)
        t_torch = median_time(topt.step, args.reps)
        t_dc = median_time(dopt.step, args.reps)
        rows.append((name, t_dc, t_torch))

    print("| optimizer | deepcore ms | torch foreach ms | ratio dc/torch |")
    print("|---|---|---|---|")
    for name, t_dc, t_torch in rows:
        print(f"| {name} | {t_dc * 1e3:.2f} | {t_torch * 1e3:.2f} | {t_dc / t_torch:.2f} |")


if __name__ == "__main__":
    main()
