"""deepcore vs PyTorch vs NumPy, measured in one run; prints a markdown table.

    python bench/compare.py            # all groups
    python bench/compare.py --only core

Medians over repeated timings; ratios are deepcore time / other time (lower is better for
deepcore). GEMM rows also give GFLOP/s for deepcore / torch / numpy. NumPy's OpenBLAS reads
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE if set; unset both for a fair comparison:
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py``. The machine is shared and noisy: compare ratios from the same run only.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def timeit(fn, min_time=0.2, repeats=7, settle=0.3):
    """Median seconds per call: calls are batched so each sample takes ~min_time/repeats.

    Sleeps `settle` seconds first: after a call, OpenBLAS's and OpenMP's worker threads keep
    spinning for a while, and on a 2-core machine they would take a core from whichever
    library is timed next."""
    time.sleep(settle)
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
    rows.append(("max, 4M float32", timeit(lambda: a.max()), timeit(lambda: ta.max()),
                 timeit(lambda: na.max()), 4 * n))
    return rows


def ops_rows(dc, torch):
    """Reductions, selection, softmax and broadcasting on mid-size float32 tensors."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 1024)).astype(np.float32)
    v = rng.standard_normal((64, 128, 128)).astype(np.float32)
    r = rng.standard_normal(1024).astype(np.float32)
    d, t = dc.from_numpy(x), torch.from_numpy(x)
    dv, tv = dc.from_numpy(v), torch.from_numpy(v)
    dr, tr = dc.from_numpy(r), torch.from_numpy(r)
    return [
        ("topk(10, dim=1), 256x1024", timeit(lambda: d.topk(10, dim=1)),
         timeit(lambda: t.topk(10, dim=1)), None, None),
        ("topk(10, dim=0), 256x1024", timeit(lambda: d.topk(10, dim=0)),
         timeit(lambda: t.topk(10, dim=0)), None, None),
        ("kthvalue(5, dim=1), 256x1024", timeit(lambda: d.kthvalue(5, dim=1)),
         timeit(lambda: t.kthvalue(5, dim=1)), None, None),
        ("mean over (0, 2), 64x128x128", timeit(lambda: dv.mean((0, 2))),
         timeit(lambda: tv.mean((0, 2))), timeit(lambda: v.mean((0, 2))), 4 * v.size),
        ("softmax(dim=-1), 256x1024", timeit(lambda: d.softmax(-1)),
         timeit(lambda: t.softmax(-1)), None, 8 * x.size),
        ("sum(dim=0), 256x1024", timeit(lambda: d.sum(0)), timeit(lambda: t.sum(0)),
         timeit(lambda: x.sum(0)), 4 * x.size),
        ("amax(dim=1), 256x1024", timeit(lambda: d.amax(1)), timeit(lambda: t.amax(1)),
         timeit(lambda: x.max(1)), 4 * x.size),
        ("broadcast add of a row, 256x1024", timeit(lambda: d + dr), timeit(lambda: t + tr),
         timeit(lambda: x + r), 8 * x.size),
        ("sort(dim=1), 256x1024", timeit(lambda: d.sort(dim=1)),
         timeit(lambda: t.sort(dim=1)), timeit(lambda: np.sort(x, axis=1)), None),
    ]


def train_rows(dc, torch):
    """The training stack: one Adam step of a small MLP, and an optimizer step over 11M floats."""
    rows = []
    x = np.random.rand(64, 64).astype(np.float32)
    y = np.random.randint(0, 10, 64)

    def make(lib):
        torch_like = lib
        model = torch_like.nn.Sequential(torch_like.nn.Linear(64, 128), torch_like.nn.ReLU(),
                                         torch_like.nn.Linear(128, 10))
        opt = torch_like.optim.Adam(model.parameters(), lr=1e-3)
        xb, yb = torch_like.from_numpy(x), torch_like.from_numpy(y)
        loss_fn = torch_like.nn.functional.cross_entropy

        def step():
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        return step
    rows.append(("Adam training step, MLP 64-128-10, batch 64", timeit(make(dc)),
                 timeit(make(torch)), None, None))

    # A ResNet-18-sized parameter set: 62 tensors, ~11.7M floats.
    rng = np.random.default_rng(0)
    shapes = [(64, 3, 7, 7)] + [(64, 64, 3, 3)] * 4 + [(128, 64, 3, 3), (128, 128, 3, 3)] * 2 + \
             [(256, 128, 3, 3), (256, 256, 3, 3)] * 2 + [(512, 256, 3, 3), (512, 512, 3, 3)] * 2 + \
             [(512,)] * 40 + [(1000, 512), (1000,)] + [(128, 64, 1, 1), (256, 128, 1, 1),
                                                        (512, 256, 1, 1)]
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]

    def make_opt(lib, **kw):
        params = [lib.tensor(a, requires_grad=True) for a in arrays]
        for p, g in zip(params, grads):
            p.grad = lib.tensor(g)
        return lib.optim.Adam(params, lr=1e-3, **kw).step
    n = sum(a.size for a in arrays)
    rows.append((f"Adam step, {len(shapes)} tensors / {n / 1e6:.1f}M floats (torch foreach)",
                 timeit(make_opt(dc)), timeit(make_opt(torch, foreach=True)), None, None))
    return rows


def gemm_rows(dc, torch):
    """float32 matmul GFLOP/s: deepcore's GEMM vs NumPy (OpenBLAS) vs PyTorch (MKL/oneDNN)."""
    rows = []
    cases = [(n, n, n, False) for n in (128, 256, 512, 1024, 2048)]
    cases += [(64, 128, 784, True), (64, 10, 128, True), (128, 128, 128, True), (64, 64, 128, False)]
    for m, n, k, wt in cases:
        a = np.random.rand(m, k).astype(np.float32)
        b = np.random.rand(n, k).astype(np.float32).T if wt else np.random.rand(k, n).astype(
            np.float32)
        da, db = dc.from_numpy(a), dc.from_numpy(np.ascontiguousarray(b.T)).T if wt else \
            dc.from_numpy(b)
        ta, tb = torch.from_numpy(a), torch.from_numpy(np.ascontiguousarray(b.T)).T if wt else \
            torch.from_numpy(b)
        flops = 2 * m * n * k
        name = f"matmul {m}x{k} @ {k}x{n}" + (" (x @ W.T)" if wt else "")
        rows.append((name, timeit(lambda: da @ db), timeit(lambda: ta @ tb),
                     timeit(lambda: a @ b), -flops))
    return rows


def bf16_rows(dc, torch):
    """bfloat16 matmul (float32 accumulation): deepcore's bf16 GEMM against deepcore's float32
    GEMM and torch's bfloat16 matmul, on the same values. Rows: (name, dc bf16, dc fp32,
    torch bf16, FLOPs)."""
    rows = []
    for n in (512, 1024, 2048):
        a = np.random.rand(n, n).astype(np.float32)
        b = np.random.rand(n, n).astype(np.float32)
        da, db = dc.from_numpy(a), dc.from_numpy(b)
        ha, hb = da.to(dc.bfloat16), db.to(dc.bfloat16)
        ta, tb = torch.from_numpy(a).bfloat16(), torch.from_numpy(b).bfloat16()
        rows.append((f"bf16 matmul {n}x{n} @ {n}x{n}", timeit(lambda: ha @ hb),
                     timeit(lambda: da @ db), timeit(lambda: ta @ tb), 2 * n ** 3))
    # Elementwise ops and batch norm on a ResNet activation (32x64x32x32, 2M values), as a
    # model under autocast runs them: bfloat16 data, batch norm with float32 parameters.
    x = np.random.rand(32, 64, 32, 32).astype(np.float32)
    y = np.random.rand(32, 64, 32, 32).astype(np.float32)
    dx, dy = dc.from_numpy(x), dc.from_numpy(y)
    hx, hy = dx.to(dc.bfloat16), dy.to(dc.bfloat16)
    tx, ty = torch.from_numpy(x).bfloat16(), torch.from_numpy(y).bfloat16()
    rows.append(("bf16 add, 32x64x32x32", timeit(lambda: hx + hy), timeit(lambda: dx + dy),
                 timeit(lambda: tx + ty), None))
    rows.append(("bf16 relu_, 32x64x32x32", timeit(lambda: hx.relu_()),
                 timeit(lambda: dx.relu_()), timeit(lambda: tx.relu_()), None))
    w, b = np.random.rand(64).astype(np.float32), np.random.rand(64).astype(np.float32)
    dw, dbias = dc.from_numpy(w), dc.from_numpy(b)
    tw, tbias = torch.from_numpy(w), torch.from_numpy(b)
    dF, tF = dc.nn.functional, torch.nn.functional
    rows.append(("bf16 batch_norm (training), 32x64x32x32",
                 timeit(lambda: dF.batch_norm(hx, None, None, dw, dbias, training=True)),
                 timeit(lambda: dF.batch_norm(dx, None, None, dw, dbias, training=True)),
                 timeit(lambda: tF.batch_norm(tx, None, None, tw, tbias, training=True)), None))
    return rows


def print_bf16(rows):
    print("\n| benchmark | deepcore bf16 | deepcore fp32 | torch bf16 | bf16 speedup over fp32 "
          "| deepcore/torch | GFLOP/s (dc bf16 / dc fp32 / torch bf16) |")
    print("|---|---|---|---|---|---|---|")
    for name, h, f, t, flops in rows:
        rates = (f"{flops / h / 1e9:.0f} / {flops / f / 1e9:.0f} / {flops / t / 1e9:.0f}"
                 if flops else "-")
        print(f"| {name} | {fmt_time(h)} | {fmt_time(f)} | {fmt_time(t)} | {f / h:.2f}x | "
              f"{h / t:.2f}x | {rates} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["core", "ops", "train", "gemm", "bf16"],
                        default=None)
    args = parser.parse_args()
    import torch

    import deepcore as dc
    torch.set_num_threads(dc.get_num_threads())
    rows = []
    if args.only in (None, "core"):
        rows += core_rows(dc, torch)
    if args.only in (None, "ops"):
        rows += ops_rows(dc, torch)
    if args.only in (None, "train"):
        rows += train_rows(dc, torch)
    if args.only in (None, "gemm"):
        rows += gemm_rows(dc, torch)
    half_rows = bf16_rows(dc, torch) if args.only in (None, "bf16") else []
    print(f"deepcore {dc.__version__} (kernels: {dc._C._active_isa()}, "
          f"{dc.get_num_threads()} threads) vs torch {torch.__version__} vs numpy "
          f"{np.__version__}\n")
    print("| benchmark | deepcore | torch | numpy | deepcore/torch | deepcore/numpy | rate |")
    print("|---|---|---|---|---|---|---|")
    for name, d, t, n, work in rows:
        # work > 0: bytes moved (GB/s); work < 0: -FLOPs (GFLOP/s for all three).
        if work and work > 0:
            rate = f"{work / d / 1e9:.1f} GB/s"
        elif work:
            rate = (f"{-work / d / 1e9:.0f} / {-work / t / 1e9:.0f} / {-work / n / 1e9:.0f} "
                    "GFLOP/s")
        else:
            rate = ""
        ratio_np = f"{d / n:.2f}x" if n is not None else "-"
        print(f"| {name} | {fmt_time(d)} | {fmt_time(t)} | "
              f"{fmt_time(n) if n is not None else '-'} | {d / t:.2f}x | {ratio_np} | {rate} |")
    if half_rows:
        print_bf16(half_rows)


if __name__ == "__main__":
    main()
