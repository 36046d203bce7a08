"""What the per-rank scripts of tests/test_ddp.py share with the test itself: the models and
data they train on, and how a rank writes its results (one .npz of arrays and one .json of
everything else per rank and case, read back by the test)."""
from __future__ import annotations

import json
import os

import numpy as np

import deepcore as dc
from deepcore import nn

GLOBAL_BATCH = 8
STEPS = 20


def mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(),
                         nn.Linear(16, 3))


def cnn():
    # (N, 2, 8, 8) -> conv (N, 4, 8, 8) -> pool (N, 4, 4, 4) -> conv (N, 6, 2, 2) -> (N, 5)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(24, 5))


class Branchy(nn.Module):
    """A trunk and three heads: ``a`` always used, ``b`` on the steps a rank chooses, ``c``
    never (for find_unused_parameters)."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(4, 8)
        self.a = nn.Linear(8, 2)
        self.b = nn.Linear(8, 2)
        self.c = nn.Linear(8, 2)

    def forward(self, x, use_b: bool):
        h = self.trunk(x).tanh()
        out = self.a(h)
        return out + self.b(h) if use_b else out


def uses_b(rank: int, step: int) -> bool:
    """Rank 0 uses head b on even steps, rank 1 on multiples of 3: some steps use it on one
    rank only, step 1 on none."""
    return step % 2 == 0 if rank == 0 else step % 3 == 0


def batchnorm_net():
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def regression_data(seed: int, n: int, x_shape, n_out: int, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + tuple(x_shape)).astype(dtype)
    y = rng.standard_normal((n, n_out)).astype(dtype)
    return x, y


def classification_data(seed: int, n: int, n_features: int, n_classes: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_features)).astype(np.float32)
    w = rng.standard_normal((n_features, n_classes)).astype(np.float32)
    y = (x @ w).argmax(1).astype(np.int64)
    return x, y


def state_arrays(module) -> dict:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def load_arrays(module, arrays: dict) -> None:
    module.load_state_dict({k: dc.from_numpy(np.array(v)) for k, v in arrays.items()})


class Results:
    """One rank's results: ``put(case, name, array)`` / ``note(case, name, value)``, then
    ``write()`` (case_rank{r}.npz / .json in the output directory)."""

    def __init__(self, out_dir: str, rank: int):
        self.out_dir, self.rank = out_dir, rank
        self.arrays, self.notes = {}, {}

    def put(self, case: str, name: str, value) -> None:
        self.arrays.setdefault(case, {})[name] = np.asarray(value)

    def put_state(self, case: str, prefix: str, module) -> None:
        for k, v in state_arrays(module).items():
            self.put(case, f"{prefix}/{k}", v)

    def note(self, case: str, name: str, value) -> None:
        self.notes.setdefault(case, {})[name] = value

    def write(self) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        for case, arrays in self.arrays.items():
            np.savez(os.path.join(self.out_dir, f"{case}_rank{self.rank}.npz"), **arrays)
        for case, notes in self.notes.items():
            with open(os.path.join(self.out_dir, f"{case}_rank{self.rank}.json"), "w") as f:
                json.dump(notes, f)


def read_results(out_dir: str, case: str, world: int = 2):
    """[(arrays, notes)] per rank, as the scripts wrote them."""
    out = []
    for r in range(world):
        npz = os.path.join(out_dir, f"{case}_rank{r}.npz")
        js = os.path.join(out_dir, f"{case}_rank{r}.json")
        arrays = dict(np.load(npz)) if os.path.exists(npz) else {}
        notes = {}
        if os.path.exists(js):
            with open(js) as f:
                notes = json.load(f)
        out.append((arrays, notes))
    return out


def prefixed(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}
