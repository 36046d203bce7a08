"""The main job: train a small MLP on scikit-learn's handwritten digits (bundled, no network).

Written with the core API only (tensors, autograd, functional losses), so it doubles as an
end-to-end check of the engine: `deepcore train` / `python -m deepcore train`.
"""
from __future__ import annotations

import math
import time

import numpy as np

import deepcore as dc


def load_digits_split(seed: int = 0, test_fraction: float = 0.2):
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SystemExit("deepcore train needs scikit-learn for the digits dataset: "
                         "pip install scikit-learn") from e
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def init_linear(fan_in: int, fan_out: int):
    """PyTorch's nn.Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming a=sqrt 5)."""
    bound = 1.0 / math.sqrt(fan_in)
    w = dc.empty(fan_out, fan_in).uniform_(-bound, bound).requires_grad_()
    b = dc.empty(fan_out).uniform_(-bound, bound).requires_grad_()
    return w, b


def train(epochs: int = 30, batch_size: int = 64, lr: float = 0.1, momentum: float = 0.9,
          hidden: int = 128, seed: int = 0, verbose: bool = True) -> float:
    import deepcore.nn.functional as F

    dc.manual_seed(seed)
    xtr, ytr, xte, yte = load_digits_split(seed)
    xtr_t, ytr_t = dc.from_numpy(xtr), dc.from_numpy(ytr)
    params = [*init_linear(64, hidden), *init_linear(hidden, 10)]
    velocity = [dc.zeros_like(p) for p in params]

    def forward(x):
        w1, b1, w2, b2 = params
        return F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)

    start = time.perf_counter()
    n = len(xtr)
    for epoch in range(epochs):
        order = dc.randperm(n)
        total, batches = 0.0, 0
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(forward(xtr_t[idx]), ytr_t[idx])
            for p in params:
                p.grad = None
            loss.backward()
            with dc.no_grad():
                for p, v in zip(params, velocity):
                    v.mul_(momentum).add_(p.grad)
                    p.sub_(v, alpha=lr)
            total += loss.item()
            batches += 1
        if verbose:
            print(f"epoch {epoch + 1:3d}/{epochs}  loss {total / batches:.4f}")
    with dc.no_grad():
        pred = forward(dc.from_numpy(xte)).argmax(1).numpy()
    acc = float((pred == yte).mean())
    if verbose:
        print(f"test accuracy {acc * 100:.2f}% on {len(yte)} held-out digits "
              f"({time.perf_counter() - start:.1f} s)")
    return acc
