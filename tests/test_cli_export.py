"""`deepcore export CHECKPOINT --onnx OUT`: a checkpoint written by `deepcore train` becomes an
ONNX file that onnx.checker accepts and onnxruntime runs with deepcore's results, with a dynamic
batch axis."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import deepcore as dc

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")  # `deepcore train` trains on scikit-learn's digits

from deepcore._model_files import load_model_file  # noqa: E402

ENV = dict(os.environ, OMP_NUM_THREADS="1")
# float32 results of the same weights from two engines: only the summation order differs.
RTOL, ATOL = 1e-5, 1e-5


def _exporter_missing():
    try:
        from deepcore.onnx import export  # noqa: F401
        return None
    except ImportError as e:
        return str(e)


pytestmark = pytest.mark.skipif(_exporter_missing() is not None,
                                reason=f"deepcore.onnx.export is not importable: "
                                       f"{_exporter_missing()}")


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "deepcore", *args], capture_output=True,
                          text=True, timeout=timeout, env=ENV)


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def checkpoint(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    res = _cli("train", "--model", request.param, "--epochs", "1", "--out", str(out),
               "--verbose", "0", "--no-tensorboard")
    assert res.returncode == 0, res.stderr
    return out / "checkpoint.safetensors"


def _deepcore(module, x):
    with dc.no_grad():
        return module(dc.from_numpy(x)).numpy()


def test_export_runs_in_onnxruntime_like_deepcore(checkpoint, tmp_path):
    path = tmp_path / "model.onnx"
    res = _cli("export", str(checkpoint), "--onnx", str(path))
    assert res.returncode == 0, res.stderr
    assert str(path) in res.stdout
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"

    module, (spec,) = load_model_file(checkpoint)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for batch in (1, 5):  # the batch axis is dynamic
        x = rng.random((batch,) + spec.shape, dtype=np.float32)
        got = session.run(None, {"input": x})[0]
        np.testing.assert_allclose(got, _deepcore(module, x), rtol=RTOL, atol=ATOL)


def test_export_opset_and_reimport(checkpoint, tmp_path):
    path = tmp_path / "model17.onnx"
    res = _cli("export", str(checkpoint), "--onnx", str(path), "--opset", "17")
    assert res.returncode == 0, res.stderr
    model = onnx.load(str(path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    # The exported file loads back through the path `deepcore serve model.onnx` takes.
    module, (spec,) = load_model_file(checkpoint)
    reloaded, (rspec,) = load_model_file(path)
    assert (rspec.name, rspec.shape, rspec.dtype) == ("input", spec.shape, spec.dtype)
    x = np.random.default_rng(1).random((3,) + spec.shape, dtype=np.float32)
    np.testing.assert_allclose(_deepcore(reloaded, x), _deepcore(module, x), rtol=RTOL,
                               atol=ATOL)


def test_export_errors_name_the_problem(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 16)
    res = _cli("export", str(junk), "--onnx", str(tmp_path / "out.onnx"))
    assert res.returncode != 0 and "junk.safetensors" in res.stderr
    assert not (tmp_path / "out.onnx").exists()
    weights = tmp_path / "weights.safetensors"
    dc.save({"w": dc.zeros(2)}, str(weights))
    res = _cli("export", str(weights), "--onnx", str(tmp_path / "out.onnx"))
    assert res.returncode != 0 and "not a checkpoint written by `deepcore train`" in res.stderr
    res = _cli("export", str(tmp_path / "model.onnx"), "--onnx", str(tmp_path / "out.onnx"))
    assert res.returncode != 0 and "already an ONNX model" in res.stderr
    res = _cli("export", str(weights))
    assert res.returncode == 2 and "--onnx" in res.stderr
    res = _cli("export", str(weights), "--onnx", str(tmp_path / "no" / "dir" / "out.onnx"))
    assert res.returncode != 0 and "does not exist" in res.stderr
