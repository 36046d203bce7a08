"""deepcore.jit / deepcore.compile against eager deepcore and eager PyTorch, measured in one run
(median times; each ratio is the median over alternating pairs, so a slow spell of a shared
machine hits both sides of a pair alike).

    python bench/bench_jit.py            # the four rows of the JIT's speed table
    python bench/bench_jit.py --quick    # fewer repeats
    PYTHONPATH=build/dev/site python bench/bench_jit.py   # a dev build (scripts/dev-build.sh)

Rows:
  mlp     MLP 64-128-10 (batch 32) Adam training step: compiled vs deepcore eager vs torch eager
  fusion  gelu(x * w + b) on 4M floats (4096 x 1024, w and b rows): one fused pass vs eager;
          relu(x * w + b), the same chain with a cheap activation
  grad    the seed example's jit(grad(f)), f = sum(sin(x)) on 10 floats, per call vs eager
  vmap    per-example gradients (vmap(grad)) of a 128-256-10 MLP, 64 examples, vs a loop
  lenet   LeNet-5 (batch 32, 28x28) SGD training step: compiled vs eager
Both libraries use the same thread count.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cnn import _timed, paired_times  # noqa: E402


def _train_step(lib, compiled: bool, make, x, y, opt_name: str, lr: float):
    """One training step of `make`'s model on (x, y); deepcore.compile + deepcore.jit when
    `compiled` (lib is deepcore then)."""
    lib.manual_seed(0)
    model = make(lib.nn)
    opt = getattr(lib.optim, opt_name)(model.parameters(), lr=lr)
    F = lib.nn.functional
    fwd = lib.compile(model) if compiled else model

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(fwd(x), y)
        loss.backward()
        opt.step()
        return loss
    return lib.jit(step) if compiled else step


def _mlp(nn):
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def _lenet(nn):
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def _inputs(dc, torch, shape, classes=10):
    import numpy as np
    rng = np.random.default_rng(0)
    xn = rng.standard_normal(shape).astype(np.float32)
    yn = rng.integers(0, classes, shape[0])
    return (dc.tensor(xn), dc.tensor(yn)), (torch.tensor(xn), torch.tensor(yn))


def _loop(fn, n):
    def run():
        for _ in range(n):
            fn()
    return run


def row(name, a, b, ratio, note=""):
    print(f"{name:<44} {a * 1e6:>12.1f} {b * 1e6:>12.1f} {ratio:>8.3f}  {note}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    import deepcore as dc
    import torch
    torch.set_num_threads(dc.get_num_threads())
    reps = 7 if args.quick else 21
    print(f"deepcore {dc.__version__}, torch {torch.__version__}, {dc.get_num_threads()} threads")
    print(f"{'workload':<44} {'a (us)':>12} {'b (us)':>12} {'a / b':>8}")

    # MLP Adam step (per step; 50 steps per timing)
    (dx, dy), (tx, ty) = _inputs(dc, torch, (32, 64))
    comp = _train_step(dc, True, _mlp, dx, dy, "Adam", 1e-3)
    eager = _train_step(dc, False, _mlp, dx, dy, "Adam", 1e-3)
    torch.manual_seed(0)
    tmodel = _mlp(torch.nn)
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)

    def tstep():
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
        loss.backward()
        topt.step()
    teager = tstep
    for _ in range(3):
        comp()
    n = 50
    a, b, r = paired_times(_loop(comp, n), _loop(eager, n), reps)
    row("mlp step: compiled / deepcore eager", a / n, b / n, r, "target <= 0.5")
    a, b, r = paired_times(_loop(comp, n), _loop(teager, n), reps)
    row("mlp step: compiled / torch eager", a / n, b / n, r, "target <= 0.1")

    # Fusion
    x, w, bb = dc.randn(4096, 1024), dc.randn(1024), dc.randn(1024)
    F = dc.nn.functional
    f_eager = lambda: F.gelu(x * w + bb)  # noqa: E731
    f_jit = dc.jit(lambda x, w, b: F.gelu(x * w + b))
    f_jit(x, w, bb)
    a, b, r = paired_times(lambda: f_jit(x, w, bb), f_eager, reps)
    row("gelu(x*w+b) 4M: fused / deepcore eager", a, b, r, "target <= 0.5 (>= 2x faster)")
    gelu_alone = statistics.median(_timed(lambda: F.gelu(x)) for _ in range(reps))
    print(f"{'  (gelu alone on the same 4M floats)':<44} {gelu_alone * 1e6:>12.1f}")
    # The same chain with a cheap activation: memory-bound, so the saved passes show.
    r_eager = lambda: dc.relu(x * w + bb)  # noqa: E731
    r_jit = dc.jit(lambda x, w, b: dc.relu(x * w + b))
    r_jit(x, w, bb)
    a, b, r = paired_times(lambda: r_jit(x, w, bb), r_eager, reps)
    row("relu(x*w+b) 4M: fused / deepcore eager", a, b, r)

    # jit(grad(f)) on 10 floats
    from deepcore.func import grad
    g = grad(lambda v: dc.sum(dc.sin(v)))
    jg = dc.jit(g)
    v = dc.arange(10.0)
    jg(v)
    n = 200
    a, b, r = paired_times(_loop(lambda: jg(v), n), _loop(lambda: g(v), n), reps)
    row("jit(grad(f)) 10 floats, per call / eager", a / n, b / n, r, "target <= 0.5")

    # vmap: per-example gradients of an MLP against a Python loop over the examples
    from deepcore.func import vmap
    dc.manual_seed(0)
    params = [dc.randn(128, 256) * 0.1, dc.zeros(256), dc.randn(256, 10) * 0.1, dc.zeros(10)]
    xb, yb = dc.randn(64, 128), dc.randint(0, 10, (64,))

    def loss(p, x, y):
        h = dc.relu(x @ p[0] + p[1])
        return F.cross_entropy((h @ p[2] + p[3]).unsqueeze(0), y.unsqueeze(0))
    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    per_example(params, xb, yb)
    g1 = grad(loss)
    a, b, r = paired_times(lambda: per_example(params, xb, yb),
                           lambda: [g1(params, xb[i], yb[i]) for i in range(64)], reps)
    row("vmap(grad) MLP, 64 examples / Python loop", a, b, r)

    # LeNet-5 SGD step
    (dx, dy), (tx, ty) = _inputs(dc, torch, (32, 1, 28, 28))
    comp = _train_step(dc, True, _lenet, dx, dy, "SGD", 0.01)
    eager = _train_step(dc, False, _lenet, dx, dy, "SGD", 0.01)
    for _ in range(3):
        comp()
    n = 5
    a, b, r = paired_times(_loop(comp, n), _loop(eager, n), reps)
    row("lenet step: compiled / deepcore eager", a / n, b / n, r, "target <= 0.8")
    print("(a and b are median microseconds per call; a / b is the median pair ratio)")


if __name__ == "__main__":
    main()
