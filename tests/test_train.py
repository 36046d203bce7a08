"""End to end: the main job (`deepcore train`) trains on bundled data to high accuracy, writes
a resumable checkpoint and TensorBoard logs, and `deepcore info` reports the build."""
import os
import subprocess
import sys

import numpy as np
import pytest

import deepcore as dc

pytest.importorskip("sklearn")


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "deepcore", *args], capture_output=True,
                          text=True, timeout=timeout)


def _accuracy(stdout: str) -> float:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("test accuracy:"))
    return float(line.split()[2].rstrip("%")) / 100


def test_default_main_job_reaches_97_percent(tmp_path):
    out = _run("train", "--out", str(tmp_path), "--verbose", "2")
    assert out.returncode == 0, out.stderr
    assert _accuracy(out.stdout) >= 0.97
    assert (tmp_path / "checkpoint.safetensors").exists()
    events = [f for _, _, fs in os.walk(tmp_path / "tensorboard") for f in fs]
    assert any(f.startswith("events.out.tfevents") for f in events)


def test_resume_continues_from_the_checkpoint(tmp_path):
    first = _run("train", "--model", "mlp", "--epochs", "2", "--out", str(tmp_path),
                 "--verbose", "2")
    assert first.returncode == 0, first.stderr
    ckpt = str(tmp_path / "checkpoint.safetensors")
    resumed = _run("train", "--model", "mlp", "--epochs", "3", "--out", str(tmp_path),
                   "--resume", ckpt, "--verbose", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "Epoch 3/3" in resumed.stdout and "Epoch 1/3" not in resumed.stdout


def test_unknown_dataset_without_data_dir_is_a_clear_error(tmp_path):
    out = _run("train", "--dataset", "mnist", "--out", str(tmp_path))
    assert out.returncode != 0 and "--data-dir" in out.stderr


def test_cli_info():
    out = _run("info", timeout=60)
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
