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


def test_event_file_decodes_with_tensorboards_protos(tmp_path):
    # The writer encodes the protobuf messages itself (Note [Event files without the
    # tensorboard package]): every record must parse as TensorBoard's Event, field by field.
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog

    with SummaryWriter(tmp_path, purge_step=5) as w:
        w.add_scalar("neg_step", -1.25, -3, walltime=12.5)
        w.add_histogram("h", np.array([0.0, 1.0, 1.0, 2.0]), 2, bins=2)
        w.add_text("t", "h\u00e9llo", 1)
    (path,) = tmp_path.iterdir()
    assert path.name.startswith("events.out.tfevents.")
    events = [Event.FromString(r) for r in RawEventFileLoader(str(path)).Load()]
    assert events[0].file_version == "brain.Event:2"
    assert events[1].step == 5 and events[1].session_log.status == SessionLog.START
    assert events[2].wall_time == 12.5 and events[2].step == -3
    assert events[2].summary.value[0].tag == "neg_step"
    assert events[2].summary.value[0].simple_value == -1.25
    h = events[3].summary.value[0].histo
    assert (h.min, h.max, h.num, h.sum, h.sum_squares) == (0.0, 2.0, 4.0, 4.0, 6.0)
    assert list(h.bucket_limit) == [1.0, 2.0] and list(h.bucket) == [1.0, 3.0]
    text = events[4].summary.value[0]
    assert text.metadata.plugin_data.plugin_name == "text"
    assert text.tensor.string_val == ["h\u00e9llo".encode()]
    assert [d.size for d in text.tensor.tensor_shape.dim] == [1]


def test_writer_does_not_need_tensorboard_or_protobuf(tmp_path):
    # Logging is part of the base install: nothing beyond NumPy is imported to write events.
    code = ("import sys; sys.modules['tensorboard'] = None; sys.modules['google'] = None\n"
            "from deepcore.utils.tensorboard import SummaryWriter\n"
            f"with SummaryWriter({str(tmp_path)!r}) as w: w.add_scalar('x', 1.0, 0)\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert _read(tmp_path).Scalars("x")[0].value == 1.0
