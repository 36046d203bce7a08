"""The PyTorch, Keras and JAX code examples in the overviews deepcore was started from
(../shared/seeds) run on deepcore with only their imports changed."""
import re
from pathlib import Path

import numpy as np
import pytest

import deepcore as dc

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"

# Import lines mapped onto deepcore's modules (the rest of each example is unchanged).
REWRITES = [
    (r"^import torch\.nn as nn$", "import deepcore.nn as nn"),
    (r"^import torch\.optim as optim$", "import deepcore.optim as optim"),
    (r"^import torch$", "import deepcore as torch"),
    (r"^import tensorflow as tf$", "import deepcore as tf"),
    (r"^from tensorflow\.keras import (\w+)$", r"from deepcore.keras import \1"),
    (r"^from tensorflow import keras$", "from deepcore import keras"),
    (r"^import jax$", "import deepcore as jax"),
    (r"^import jax\.numpy as jnp$", "import deepcore.numpy as jnp"),
    (r"^from jax import grad, jit$", "from deepcore.func import grad\nfrom deepcore import jit"),
    (r"^from jax import (grad|vmap)$", r"from deepcore.func import \1"),
    (r"^from jax import jit$", "from deepcore import jit"),
]


def _examples():
    if not SEEDS.is_dir():
        return []
    found = []
    for path in sorted(SEEDS.glob("*.txt")):
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.S)):
            if re.search(r"^(import torch|import tensorflow|from tensorflow|import jax|from jax)",
                         block, re.M):
                found.append(pytest.param(block, id=f"{path.stem[:3]}-{i}"))
    return found


def _port(code: str) -> str:
    for pattern, repl in REWRITES:
        code = re.sub(pattern, repl, code, flags=re.M)
    return code


@pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seeds is not beside the checkout")
@pytest.mark.parametrize("code", _examples())
def test_seed_example_runs(code, capsys):
    dc.manual_seed(0)
    rng = np.random.default_rng(0)
    # Data some examples leave to the reader.
    namespace = {"train_images": rng.random((64, 28, 28, 1) if "Conv2D" in code
                                            else (64, 28, 28)).astype(np.float32),
                 "train_labels": rng.integers(0, 10, 64),
                 # Functions the JAX overview names without defining.
                 "loss_fn": lambda x: dc.sum(x ** 2), "slow_fn": lambda x: dc.tanh(x) * 2,
                 "single_fn": lambda x: dc.dot(x, x)}
    exec(compile(_port(code), "<seed example>", "exec"), namespace)
    if "def train(model, data_loader)" in code:  # defined but not called in the overview
        batch = (dc.randn(8, 784), dc.randint(0, 10, (8,)))
        namespace["train"](namespace["model"], [batch, batch])
    if "jax" in code:
        _check_jax_example(namespace, capsys)
    else:
        assert "model" in namespace


def _check_jax_example(ns, capsys):
    """The JAX examples' results, against torch on the same values."""
    import torch
    if "fast_grad_f" in ns:  # jit(grad(f)), f = sum(sin(x)), printed
        x = ns["x"]
        assert ns["fast_grad_f"](x).tolist() == dc.cos(x).tolist()
        assert "tensor([" in capsys.readouterr().out
    if "grads" in ns:  # grad of the MLP loss with respect to the parameter list
        tp = [torch.tensor(p.numpy(), requires_grad=True) for p in ns["params"]]
        tx, ty = torch.tensor(ns["x"].numpy()), torch.tensor(ns["y"].numpy())
        w1, b1, w2, b2 = tp
        h = torch.clamp(tx @ w1 + b1, min=0)
        loss = ((torch.sigmoid(h @ w2 + b2) - ty) ** 2).mean()
        expected = torch.autograd.grad(loss, tp)
        for g, e in zip(ns["grads"], expected):
            np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-6)
    if "batched_fn" in ns:  # the transforms of the overview's summary, on small inputs
        x = dc.randn(4, 3)
        np.testing.assert_allclose(ns["gradient_fn"](x[0]).numpy(), (2 * x[0]).numpy())
        np.testing.assert_allclose(ns["fast_fn"](x).numpy(), (dc.tanh(x) * 2).numpy())
        np.testing.assert_allclose(ns["batched_fn"](x).numpy(), (x * x).sum(1).numpy(),
                                   rtol=1e-6)
