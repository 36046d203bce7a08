"""Recurrent layers, deepcore vs PyTorch in one run: forward + backward of an nn.LSTM / GRU /
RNN built from the same weights (median times; ratio = median over alternating pairs of
deepcore time / torch time, lower is better for deepcore), by wall-clock and by process CPU
time.

    python bench/bench_rnn.py                   # the installed deepcore
    PYTHONPATH=build/dev/site python bench/bench_rnn.py
    python bench/bench_rnn.py --threads 1 --repeats 5 --only lstm

The default row is the target workload: 2-layer LSTM, input 256, hidden 256, seq 64, batch 32.
Both libraries use the same thread count. The machine may be shared: compare ratios from the
same run only.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import deepcore as dc

ROWS = {
    "lstm": ("LSTM", dict(input_size=256, hidden_size=256, num_layers=2), (64, 32)),
    "gru": ("GRU", dict(input_size=256, hidden_size=256, num_layers=2), (64, 32)),
    "rnn": ("RNN", dict(input_size=256, hidden_size=256, num_layers=2), (64, 32)),
}


def build(kind: str, kwargs: dict, seq: int, batch: int):
    tm = getattr(torch.nn, kind)(**kwargs)
    dm = getattr(dc.nn, kind)(**kwargs)
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((seq, batch, kwargs["input_size"]),
                                                  dtype=np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    dx = dc.tensor(x).requires_grad_()

    def tstep():
        out = tm(tx)[0]
        out.sum().backward()

    def dstep():
        out = dm(dx)[0]
        out.sum().backward()
    return dstep, tstep


def paired(dfn, tfn, repeats: int, warmup: int = 2):
    """Median wall times of each library and the median of the per-pair wall-time ratios; the
    same three for the process CPU time, which a busy machine disturbs less at one thread."""
    for _ in range(warmup):
        dfn()
        tfn()
    wall = {"d": [], "t": [], "r": []}
    cpu = {"d": [], "t": [], "r": []}
    for _ in range(repeats):
        for key, fn in (("d", dfn), ("t", tfn)):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[key].append(time.perf_counter() - w0)
            cpu[key].append(time.process_time() - c0)
        wall["r"].append(wall["d"][-1] / wall["t"][-1])
        cpu["r"].append(cpu["d"][-1] / cpu["t"][-1])
    med = statistics.median
    return ([med(wall[k]) for k in "dtr"], [med(cpu[k]) for k in "dtr"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for both libraries (default: deepcore's current count)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", choices=sorted(ROWS), action="append")
    args = ap.parse_args()
    threads = args.threads or dc.get_num_threads()
    dc.set_num_threads(threads)
    torch.set_num_threads(threads)
    print(f"threads={threads}  (forward + backward, median of {args.repeats})")
    for name in args.only or ["lstm"]:
        kind, kwargs, (seq, batch) = ROWS[name]
        dfn, tfn = build(kind, kwargs, seq, batch)
        (d, t, r), (cd, ct, cr) = paired(dfn, tfn, args.repeats)
        print(f"{kind:5s} L={kwargs['num_layers']} I={kwargs['input_size']} "
              f"H={kwargs['hidden_size']} T={seq} B={batch}:  wall deepcore {d * 1e3:7.1f} ms  "
              f"torch {t * 1e3:7.1f} ms  ratio {r:.2f} | cpu deepcore {cd * 1e3:7.1f} ms  "
              f"torch {ct * 1e3:7.1f} ms  ratio {cr:.2f}")


if __name__ == "__main__":
    main()
