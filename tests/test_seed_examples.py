"""The PyTorch and Keras code examples in the overviews deepcore was started from
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
]


def _examples():
    if not SEEDS.is_dir():
        return []
    found = []
    for path in sorted(SEEDS.glob("*.txt")):
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.S)):
            # PyTorch and Keras examples; the JAX ones need deepcore.func, not built yet.
            if re.search(r"^(import torch|import tensorflow|from tensorflow)", block, re.M):
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
                 "train_labels": rng.integers(0, 10, 64)}
    exec(compile(_port(code), "<seed example>", "exec"), namespace)
    if "def train(model, data_loader)" in code:  # defined but not called in the overview
        batch = (dc.randn(8, 784), dc.randint(0, 10, (8,)))
        namespace["train"](namespace["model"], [batch, batch])
    assert "model" in namespace
