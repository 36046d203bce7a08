"""SummaryWriter and the TensorBoard callback, read back with TensorBoard's EventAccumulator."""
import os
import subprocess
import sys

import numpy as np
import pytest

import deepcore as dc
from deepcore import keras
from deepcore.utils.tensorboard import SummaryWriter

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")


def _read(path):
    acc = event_accumulator.EventAccumulator(str(path), size_guidance={"tensors": 0,
                                                                      "scalars": 0})
    acc.Reload()
    return acc


def test_summary_writer_scalars_histograms_text(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(3):
            w.add_scalar("loss", 1.0 / (step + 1), step)
        w.add_scalar("tensor_value", dc.tensor(2.5), 7)
        values = np.random.default_rng(0).normal(size=1000)
        w.add_histogram("weights", dc.from_numpy(values.astype(np.float32)), 1)
        w.add_text("note", "hello", 0)
        w.add_scalars("run", {"a": 1.0, "b": 2.0}, 4)
    acc = _read(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == \
        [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert acc.Scalars("tensor_value")[0].value == 2.5
    h = acc.Histograms("weights")[0].histogram_value
    assert h.num == 1000 and h.min == pytest.approx(values.min(), rel=1e-6)
    assert sum(h.bucket) == 1000
    text = acc.Tensors("note/text_summary")[0].tensor_proto.string_val[0]
    assert text == b"hello"
    sub = _read(tmp_path / "run_b")
    assert sub.Scalars("run")[0].value == 2.0 and sub.Scalars("run")[0].step == 4
    with pytest.raises(RuntimeError, match="closed"):
        w.add_scalar("x", 1.0, 0)


def test_tensorboard_callback_writes_epoch_scalars_lr_and_histograms(tmp_path):
    dc.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    m = keras.Sequential([keras.layers.Dense(4, activation="relu", input_shape=(3,)),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(keras.optimizers.SGD(0.05), "binary_crossentropy", metrics=["accuracy"])
    h = m.fit(x, y, epochs=3, validation_data=(x, y), verbose=0,
              callbacks=[keras.callbacks.TensorBoard(tmp_path, histogram_freq=1)])
    train = _read(tmp_path / "train")
    assert [e.value for e in train.Scalars("epoch_loss")] == \
        pytest.approx(h.history["loss"], rel=1e-6)
    assert [e.step for e in train.Scalars("epoch_accuracy")] == [0, 1, 2]
    assert [e.value for e in train.Scalars("epoch_learning_rate")] == pytest.approx([0.05] * 3)
    assert "0.kernel" in train.Tags()["histograms"]
    val = _read(tmp_path / "validation")
    assert [e.value for e in val.Scalars("epoch_loss")] == \
        pytest.approx(h.history["val_loss"], rel=1e-6)
    assert os.listdir(tmp_path / "train")


def test_missing_tensorboard_says_what_to_install(tmp_path):
    # tensorboard is an extra: without it, writing logs is an ImportError naming the extra,
    # and `deepcore train` goes on without logs after saying so.
    block = "import sys; sys.modules['tensorboard'] = None\n"
    code = block + ("from deepcore.utils.tensorboard import SummaryWriter, available\n"
                    "assert not available()\n"
                    f"SummaryWriter({str(tmp_path)!r})\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "pip install 'deepcore[tensorboard]'" in r.stderr
