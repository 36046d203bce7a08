"""Per-call overhead of small ops, the dispatcher's own cost: best of 9 timeit repeats.

Runs against the deepcore that Python imports (the installed package, or a developer build
with PYTHONPATH=build/<name>/site). To compare two builds, run this script once against each
and alternate the runs a few times; the machine is shared and noisy.

    python bench/bench_overhead.py
"""
import timeit

import deepcore as dc
from deepcore import nn, optim


def main() -> None:
    a, b = dc.ones(1), dc.ones(1)
    x = dc.ones(4, requires_grad=True)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    xb, yb = dc.randn(64, 64), dc.randint(0, 10, (64,))

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()

    def tiny():
        (x * x).sum().backward()

    cases = [("a + b, 1 element", lambda: a + b, 20000),
             ("a.exp(), 1 element", lambda: a.exp(), 20000),
             ("(x * x).sum().backward(), 4 elements", tiny, 3000),
             ("MLP 64-128-10 Adam step, batch 64", step, 300)]
    print(f"deepcore {dc.__version__}")
    for name, f, n in cases:
        t = min(timeit.repeat(f, number=n, repeat=9)) / n * 1e6
        print(f"{name}: {t:.3f} us")


if __name__ == "__main__":
    main()
