"""F.scaled_dot_product_attention: deepcore's fused kernel vs PyTorch, in one process.

    PYTHONPATH=build/<name>/site python bench/bench_attention.py            # timings
    PYTHONPATH=build/<name>/site python bench/bench_attention.py --memory   # + peak RSS
    PYTHONPATH=build/<name>/site python bench/bench_attention.py --dropout 0.1  # training

Forward and forward + backward, float32, with both libraries on the same number of threads:
each library's median of --repeats calls, three times, alternating the libraries, and the best
of the three medians. Ratios are deepcore time / torch time (below 1: deepcore faster).
--dropout P passes dropout_p=P to every call (deepcore: inside the fused kernel; torch on the
CPU: its math path, which forms the L x S probabilities).
--memory runs each library alone in a fresh subprocess per sequence length and reports the
growth of the peak resident set over the process's size after its inputs were made, for one
forward + backward: a kernel that formed the L x S scores would grow by at least
batch * heads * L * S * 4 bytes (printed as "L^2 floats").
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np


def median_time(fn, repeats):
    fn()  # warm up (thread pools, scratch buffers)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_inputs(lib, B, H, L, E, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((B, H, L, E)).astype(np.float32) for _ in range(3)]
    return [lib.tensor(a, requires_grad=True) for a in arrays]


def step_fn(lib, F, q, k, v, causal, backward, dropout_p=0.0):
    def fwd():
        with lib.no_grad():
            F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=dropout_p)

    def fwd_bwd():
        for t in (q, k, v):
            t.grad = None
        F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                       dropout_p=dropout_p).sum().backward()
    return fwd_bwd if backward else fwd


def timings(args):
    import torch
    import torch.nn.functional as TF

    import deepcore as dc
    import deepcore.nn.functional as F
    torch.set_num_threads(args.threads)
    dc.set_num_threads(args.threads)
    print(f"threads {args.threads}; B={args.batch} H={args.heads} E={args.dim} float32; "
          f"dropout_p={args.dropout}; best of 3 interleaved medians of {args.repeats} calls")
    print("| L | causal | pass | deepcore ms | torch ms | ratio |")
    print("|---|---|---|---|---|---|")
    for L in args.lengths:
        for causal in (True,) if args.causal_only else (True, False):
            for backward in (False, True):
                fns = []
                for lib, fmod in ((dc, F), (torch, TF)):
                    q, k, v = make_inputs(lib, args.batch, args.heads, L, args.dim)
                    fns.append(step_fn(lib, fmod, q, k, v, causal, backward, args.dropout))
                # interleave the two libraries so machine noise hits both alike
                t_dc, t_tc = [], []
                for _ in range(3):
                    t_dc.append(median_time(fns[0], args.repeats))
                    t_tc.append(median_time(fns[1], args.repeats))
                a, b = min(t_dc), min(t_tc)
                name = "fwd+bwd" if backward else "fwd"
                print(f"| {L} | {causal} | {name} | {a * 1e3:.2f} | {b * 1e3:.2f} | "
                      f"{a / b:.2f} |")


# Peak RSS from /proc (VmHWM): getrusage's ru_maxrss would carry the pre-exec size of the
# forked parent (torch loaded) over to the child.
_CHILD = """
import sys
import numpy as np
lib_name, B, H, L, E = sys.argv[1], *map(int, sys.argv[2:6])
p = float(sys.argv[6])
if lib_name == "torch":
    import torch as lib
    import torch.nn.functional as F
else:
    import deepcore as lib
    import deepcore.nn.functional as F
lib.set_num_threads(1)
def status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))
def inputs(n):
    rng = np.random.default_rng(0)
    return [lib.tensor(rng.standard_normal((B, H, n, E)).astype(np.float32),
                       requires_grad=True) for _ in range(3)]
q, k, v = inputs(64)  # load everything once
F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p).sum().backward()
q, k, v = inputs(L)
base = status_kb("VmRSS:")
F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p).sum().backward()
print(max(status_kb("VmHWM:") - base, 0))
"""


def peak_growth_kb(lib, B, H, L, E, dropout_p=0.0):
    out = subprocess.run([sys.executable, "-c", _CHILD, lib, str(B), str(H), str(L), str(E),
                          str(dropout_p)], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1])


def memory(args):
    print(f"\npeak RSS growth of one causal forward + backward (MiB), one thread, "
          f"dropout_p={args.dropout}")
    print("| L | deepcore | torch | L^2 floats (B*H*L*L*4) |")
    print("|---|---|---|---|")
    for L in args.mem_lengths:
        d = peak_growth_kb("deepcore", args.batch, args.heads, L, args.dim, args.dropout) / 1024
        t = peak_growth_kb("torch", args.batch, args.heads, L, args.dim, args.dropout) / 1024
        quad = args.batch * args.heads * L * L * 4 / 2**20
        print(f"| {L} | {d:.1f} | {t:.1f} | {quad:.0f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[1024])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dropout", type=float, default=0.0, help="dropout_p of every call")
    p.add_argument("--causal-only", action="store_true")
    p.add_argument("--memory", action="store_true")
    p.add_argument("--mem-lengths", type=int, nargs="+", default=[1024, 4096])
    args = p.parse_args()
    timings(args)
    if args.memory:
        memory(args)


if __name__ == "__main__":
    main()
