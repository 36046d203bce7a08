"""End to end: the main job trains on bundled data (scikit-learn's digits) to high accuracy."""
import subprocess
import sys

import numpy as np
import pytest

import deepcore as dc

pytest.importorskip("sklearn")


def test_digits_mlp_reaches_97_percent():
    from deepcore._train_digits import train
    acc = train(epochs=30, seed=0, verbose=False)
    assert acc >= 0.97


def test_training_is_reproducible_under_manual_seed():
    from deepcore._train_digits import train
    assert train(epochs=2, seed=3, verbose=False) == train(epochs=2, seed=3, verbose=False)


def test_cli_train_runs_in_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "deepcore", "train", "--epochs", "3"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "test accuracy" in out.stdout


def test_cli_info():
    out = subprocess.run([sys.executable, "-m", "deepcore", "info"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "CPU kernels" in out.stdout


@pytest.mark.parametrize("alpha", [1, 0.5, -2.0])
def test_inplace_add_sub_with_alpha_no_grad(alpha):
    # The optimizer-style update path (no autograd, kernel writes in place).
    a = np.arange(6, dtype=np.float32)
    b = np.full(6, 3.0, np.float32)
    t = dc.tensor(a)
    t.add_(dc.tensor(b), alpha=alpha)
    np.testing.assert_allclose(t.numpy(), a + alpha * b)
    t.sub_(dc.tensor(b), alpha=alpha)
    np.testing.assert_allclose(t.numpy(), a, atol=1e-6)
