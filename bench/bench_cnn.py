"""CNN workloads, deepcore vs PyTorch in one run (median times; ratio = the median over
alternating deepcore/torch pairs of deepcore time / torch time, lower is better for deepcore;
for GFLOP/s higher is better).

    python bench/bench_cnn.py               # all rows, the installed deepcore
    python bench/bench_cnn.py --quick       # fewer repeats
    PYTHONPATH=build/dev/site python bench/bench_cnn.py   # a dev build (scripts/dev-build.sh)
    python bench/bench_cnn.py --autocast-pairs 10   # only deepcore's autocast vs float32 step

Rows: conv2d 3x3 forward and backward at N=32, C=K=64, 56x56, and forward at C=K=128 28x28,
256 14x14 and 512 7x7 (GFLOP/s counted as 2*N*K*C*9*H*W per pass, the direct algorithm's
count whatever the algorithm; backward = input and weight gradients, 2x the forward flops); one LeNet-5 training
step (batch 64, 28x28: forward, cross-entropy, backward, SGD momentum); one ResNet-18 training
step (small-input stem, batch 32, 32x32); and the peak RSS of a process that runs a few
ResNet-18 training steps (resource.getrusage in a fresh subprocess per library). Both
libraries use the same thread count (torch.set_num_threads matches deepcore's). The machine
may be shared: compare ratios from the same run only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def paired_times(dfn, tfn, repeats: int, warmup: int = 2) -> tuple[float, float, float]:
    """Median deepcore time, median torch time, and the median of the per-pair ratios.

    The two libraries alternate, one call each per pair, so a slow spell of a shared machine
    hits both sides of a pair alike and the ratio stays meaningful when the times drift."""
    for _ in range(warmup):
        dfn()
        tfn()
    td, tt, ratios = [], [], []
    for _ in range(repeats):
        td.append(_timed(dfn))
        tt.append(_timed(tfn))
        ratios.append(td[-1] / tt[-1])
    return statistics.median(td), statistics.median(tt), statistics.median(ratios)


# ---- workloads (each builds its inputs once and returns a step closure) -----------------------

def conv_forward(lib, F, c=64, hw=56):
    x = lib.randn(32, c, hw, hw)
    w = lib.randn(c, c, 3, 3) * 0.05
    return lambda: F.conv2d(x, w, None, 1, 1)


def conv_backward(lib, F):
    x = lib.randn(32, 64, 56, 56).requires_grad_()
    w = (lib.randn(64, 64, 3, 3) * 0.05).requires_grad_()
    y = F.conv2d(x, w, None, 1, 1)
    g = lib.randn(*y.shape)

    def step():
        x.grad = None
        w.grad = None
        F.conv2d(x, w, None, 1, 1).backward(g)
    return step


def _train_step(lib, nn, model, x, y, autocast=False):
    """One SGD step; with autocast, the forward and loss under bfloat16 autocast (float32
    parameters and gradients), as torch.autocast("cpu", dtype=torch.bfloat16) runs it."""
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        with lib.autocast("cpu", dtype=lib.bfloat16, enabled=autocast):
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def resnet_batch():
    """The ResNet-18 rows' batch: 32 images of 3x32x32 and their labels, as numpy arrays."""
    x = np.random.default_rng(2).standard_normal((32, 3, 32, 32)).astype(np.float32)
    y = np.random.default_rng(3).integers(0, 10, 32)
    return x, y


def autocast_vs_fp32(pairs):
    """deepcore's ResNet-18 step under bf16 autocast against its float32 step, alternating."""
    import deepcore as dc
    import deepcore.models as dm
    import deepcore.nn as dnn
    model = dm.resnet18(small_input=True, num_classes=10)
    x, y = (dc.tensor(a) for a in resnet_batch())
    ta, tf, ratio = paired_times(_train_step(dc, dnn, model, x, y, autocast=True),
                                 _train_step(dc, dnn, model, x, y), pairs)
    print(f"threads: {dc.get_num_threads()}; deepcore ISA: {dc._C._active_isa()}")
    print(f"ResNet-18 train step, batch 32: bf16 autocast {ta * 1e3:.1f} ms, float32 "
          f"{tf * 1e3:.1f} ms; autocast / float32 time, median of {pairs} pairs: {ratio:.2f}")


def lenet_models(seed=0):
    """deepcore's LeNet-5 and a torch.nn copy with the same weights."""
    import torch

    import deepcore as dc
    import deepcore.models as dm
    torch.manual_seed(seed)
    t = torch.nn.Sequential()
    t.features = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(True), torch.nn.MaxPool2d(2, 2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(True), torch.nn.MaxPool2d(2, 2))
    t.flatten = torch.nn.Flatten()
    t.classifier = torch.nn.Sequential(
        torch.nn.Linear(400, 120), torch.nn.ReLU(True), torch.nn.Linear(120, 84),
        torch.nn.ReLU(True), torch.nn.Linear(84, 10))
    d = dm.lenet5()
    d.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    del dc
    return d, t


def resnet_torch(small_input=True, num_classes=10):
    """torch.nn ResNet-18 with torchvision's layout (the same as tests/test_models.py)."""
    import torch
    import torch.nn as tnn

    class Block(tnn.Module):
        def __init__(self, i, o, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(i, o, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(o)
            self.relu = tnn.ReLU(inplace=True)
            self.conv2 = tnn.Conv2d(o, o, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(o)
            self.downsample = None
            if stride != 1 or i != o:
                self.downsample = tnn.Sequential(tnn.Conv2d(i, o, 1, stride, bias=False),
                                                 tnn.BatchNorm2d(o))

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            idt = x if self.downsample is None else self.downsample(x)
            return self.relu(out + idt)

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = (tnn.Conv2d(3, 64, 3, 1, 1, bias=False) if small_input
                          else tnn.Conv2d(3, 64, 7, 2, 3, bias=False))
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU(inplace=True)
            self.maxpool = tnn.Identity() if small_input else tnn.MaxPool2d(3, 2, 1)
            chans, layers, i = [64, 128, 256, 512], [], 64
            for k, c in enumerate(chans):
                layers.append(tnn.Sequential(Block(i, c, 1 if k == 0 else 2), Block(c, c, 1)))
                i = c
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.fc = tnn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return Net()


def rss_child(lib_name: str, steps: int) -> None:
    """Runs in a subprocess: a few ResNet-18 training steps, prints peak RSS in MiB."""
    import resource
    if lib_name == "torch":
        import torch as lib
        import torch.nn as nn
        model = resnet_torch()
    else:
        import deepcore as lib
        import deepcore.models as dm
        import deepcore.nn as nn
        model = dm.resnet18(small_input=True, num_classes=10)
    x, y = lib.randn(32, 3, 32, 32), lib.randint(0, 10, (32,))
    step = _train_step(lib, nn, model, x, y)
    for _ in range(steps):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


def peak_rss(lib_name: str, steps: int, threads: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-child", lib_name,
                          "--steps", str(steps)], capture_output=True, text=True, env=env,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rss-child", choices=["torch", "deepcore"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--autocast-pairs", type=int, metavar="N",
                    help="only the row of deepcore's ResNet-18 step under bf16 autocast against "
                         "its float32 step, over N alternating pairs")
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.steps)
        return
    if args.autocast_pairs:
        autocast_vs_fp32(args.autocast_pairs)
        return

    # Peak RSS first: a child's ru_maxrss starts from its parent's high-water mark at fork
    # (Linux keeps it across exec), so the parent must still be small (numpy only) here.
    threads = int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count()
    steps = 3
    rd, rt = peak_rss("deepcore", steps, threads), peak_rss("torch", steps, threads)

    import torch

    import deepcore as dc
    import deepcore.models as dm
    import deepcore.nn as dnn
    if hasattr(dc, "get_num_threads"):
        threads = dc.get_num_threads()
    torch.set_num_threads(threads)
    reps = 3 if args.quick else 7

    rows = []

    def row(name, dfn, tfn, repeats, flops=None):
        td, tt, ratio = paired_times(dfn, tfn, repeats)
        extra = ""
        if flops:
            extra = f"{flops / td / 1e9:8.1f} | {flops / tt / 1e9:8.1f}"
        else:
            extra = "       - |        -"
        rows.append(f"| {name:<44} | {td * 1e3:9.2f} | {tt * 1e3:9.2f} | {ratio:5.2f} | {extra} |")
        print(rows[-1], flush=True)

    print(f"threads: {threads}; deepcore ISA: {dc._C._active_isa()}; torch {torch.__version__}")
    print("| workload                                     | deepcore ms |  torch ms | ratio | dc GFLOP/s | torch GFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|")
    fwd_flops = 2.0 * 32 * 64 * 64 * 9 * 56 * 56
    row("conv2d 3x3 fwd N=32 C=K=64 56x56", conv_forward(dc, dnn.functional),
        conv_forward(torch, torch.nn.functional), reps, fwd_flops)
    row("conv2d 3x3 bwd (dx + dw) N=32 C=K=64 56x56", conv_backward(dc, dnn.functional),
        conv_backward(torch, torch.nn.functional), reps, 2 * fwd_flops)
    for c, hw in ((128, 28), (256, 14), (512, 7)):
        row(f"conv2d 3x3 fwd N=32 C=K={c} {hw}x{hw}", conv_forward(dc, dnn.functional, c, hw),
            conv_forward(torch, torch.nn.functional, c, hw), reps, 2.0 * 32 * c * c * 9 * hw * hw)

    d, t = lenet_models()
    x = np.random.default_rng(0).standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, 64)
    row("LeNet-5 train step, batch 64, 28x28",
        _train_step(dc, dnn, d, dc.tensor(x), dc.tensor(y)),
        _train_step(torch, torch.nn, t, torch.from_numpy(x), torch.from_numpy(y)), reps * 5)

    dr = dm.resnet18(small_input=True, num_classes=10)
    tr = resnet_torch()
    dr.load_state_dict({k: v.numpy() for k, v in tr.state_dict().items()})
    x, y = resnet_batch()
    row("ResNet-18 (small stem) train step, batch 32",
        _train_step(dc, dnn, dr, dc.tensor(x), dc.tensor(y)),
        _train_step(torch, torch.nn, tr, torch.from_numpy(x), torch.from_numpy(y)),
        reps)

    dx, tx, dy, ty = dc.tensor(x), torch.from_numpy(x), dc.tensor(y), torch.from_numpy(y)
    fp32_step = _train_step(dc, dnn, dr, dx, dy)
    row("ResNet-18 train step, bf16 autocast",
        _train_step(dc, dnn, dr, dx, dy, autocast=True),
        _train_step(torch, torch.nn, tr, tx, ty, autocast=True), reps)
    row("ResNet-18: deepcore bf16 autocast vs deepcore fp32",
        _train_step(dc, dnn, dr, dx, dy, autocast=True), fp32_step, reps)

    print(f"| peak RSS, {steps} ResNet-18 train steps (MiB)      | {rd:9.0f} | {rt:9.0f} | "
          f"{rd / rt:5.2f} |        - |        - |")


if __name__ == "__main__":
    main()
