"""Callbacks' effects, and bit-exact resumable checkpoints (incl. Ctrl-C)."""
import csv
import math
import os
import random
import signal

import numpy as np
import pytest

import deepcore as dc
from deepcore import keras
from deepcore.keras import callbacks as cb

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.float32)


def model(dropout=0.0, lr=0.01):
    layers = [keras.layers.Dense(16, activation="relu", input_shape=(4,))]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    m = keras.Sequential(layers)
    m.compile(keras.optimizers.Adam(lr), "binary_crossentropy", metrics=["accuracy"])
    return m


def test_hook_order_and_history():
    events = []
    rec = cb.LambdaCallback(
        on_train_begin=lambda logs: events.append("train_begin"),
        on_epoch_begin=lambda e, logs: events.append(f"epoch_begin{e}"),
        on_train_batch_end=lambda b, logs: events.append(f"batch{b}"),
        on_epoch_end=lambda e, logs: events.append(f"epoch_end{e}:{sorted(logs)}"),
        on_train_end=lambda logs: events.append("train_end"))
    dc.manual_seed(0)
    m = model()
    h = m.fit(X, Y, epochs=2, batch_size=48, validation_data=(X, Y), callbacks=[rec], verbose=0)
    keys = "['accuracy', 'loss', 'val_accuracy', 'val_loss']"
    assert events == ["train_begin", "epoch_begin0", "batch0", "batch1", f"epoch_end0:{keys}",
                      "epoch_begin1", "batch0", "batch1", f"epoch_end1:{keys}", "train_end"]
    assert h.epoch == [0, 1] and len(h.history["val_loss"]) == 2 and m.history is h


def test_early_stopping_patience_and_restore_best_weights():
    dc.manual_seed(0)
    m = model()
    losses = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9])
    fake = cb.LambdaCallback(on_epoch_end=lambda e, logs: logs.update(val_loss=next(losses)))
    snapshots = []
    snap = cb.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append(m.get_weights()))
    es = cb.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    h = m.fit(X, Y, epochs=6, callbacks=[fake, snap, es], verbose=0)
    assert len(h.epoch) == 4 and es.stopped_epoch == 3 and es.best_epoch == 1
    for a, b in zip(m.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(a, b)
    # baseline: never reached -> stops after patience epochs
    es2 = cb.EarlyStopping(monitor="loss", patience=1, baseline=-1.0)
    h2 = model().fit(X, Y, epochs=10, callbacks=[es2], verbose=0)
    assert len(h2.epoch) == 2
    # min_delta: improvements smaller than it don't count
    vals = iter([1.0, 0.99, 0.98, 0.97])
    fake2 = cb.LambdaCallback(on_epoch_end=lambda e, logs: logs.update(val_loss=next(vals)))
    h3 = model().fit(X, Y, epochs=4, callbacks=[fake2, cb.EarlyStopping(min_delta=0.05)],
                     verbose=0)
    assert len(h3.epoch) == 2


def test_model_checkpoint_formats_and_best_only(tmp_path):
    dc.manual_seed(0)
    m = model()
    vals = iter([0.5, 0.4, 0.45, 0.3])
    fake = cb.LambdaCallback(on_epoch_end=lambda e, logs: logs.update(val_loss=next(vals)))
    pattern = str(tmp_path / "w-{epoch:02d}-{val_loss:.2f}.st")
    ck = cb.ModelCheckpoint(pattern, save_best_only=True, save_weights_only=True)
    m.fit(X, Y, epochs=4, callbacks=[fake, ck], verbose=0)
    assert sorted(os.listdir(tmp_path)) == ["w-01-0.50.st", "w-02-0.40.st", "w-04-0.30.st"]
    sd = dc.load(tmp_path / "w-04-0.30.st")
    np.testing.assert_array_equal(sd["0.kernel"].numpy() if "0.kernel" in sd else
                                  list(sd.values())[0].numpy(), m.get_weights()[0])
    full = cb.ModelCheckpoint(str(tmp_path / "full-{epoch}.keras"), monitor="loss")
    m.fit(X, Y, epochs=1, callbacks=[full], verbose=0)
    loaded = keras.models.load_model(tmp_path / "full-1.keras")
    np.testing.assert_array_equal(loaded.predict(X), m.predict(X))


def test_reduce_lr_on_plateau_and_scheduler():
    dc.manual_seed(0)
    m = model(lr=0.1)
    flat = cb.LambdaCallback(on_epoch_end=lambda e, logs: logs.update(val_loss=1.0))
    r = cb.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.02)
    h = m.fit(X, Y, epochs=7, callbacks=[flat, r], verbose=0)
    # best at epoch 0, waits 1, 2 -> reduce at epoch 2, then at 4, then clamped at 6
    assert h.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025,
                                                        0.025])
    assert m.optimizer.param_groups[0]["lr"] == pytest.approx(0.02)
    s = cb.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    h = m.fit(X, Y, epochs=3, callbacks=[s], verbose=0)
    assert h.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])
    s1 = cb.LearningRateScheduler(lambda epoch: 0.001 * (epoch + 1))
    m.fit(X, Y, epochs=2, callbacks=[s1], verbose=0)
    assert m.optimizer.param_groups[0]["lr"] == pytest.approx(0.002)


def test_csv_logger_and_terminate_on_nan(tmp_path):
    dc.manual_seed(0)
    m = model()
    path = tmp_path / "log.csv"
    m.fit(X, Y, epochs=3, validation_data=(X, Y), callbacks=[cb.CSVLogger(path)], verbose=0)
    m.fit(X, Y, epochs=1, callbacks=[cb.CSVLogger(path, append=True)], verbose=0)
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "0"]
    assert set(rows[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    assert rows[3]["val_loss"] == "NA" and float(rows[2]["loss"]) > 0
    bad = X.copy()
    bad[5, 0] = np.nan
    batches = []
    rec = cb.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    h = model().fit(bad, Y, epochs=3, batch_size=16, shuffle=False,
                    callbacks=[cb.TerminateOnNaN(), rec], verbose=0)
    assert batches == [0] and len(h.epoch) == 1 and math.isnan(h.history["loss"][0])


def _weights(m):
    return [w.copy() for w in m.get_weights()]


def _scramble():
    dc.manual_seed(12345)
    random.seed(999)
    np.random.seed(7)


def _run_fit(epochs, **kwargs):
    return dict(x=X, y=Y, epochs=epochs, batch_size=16, shuffle=True, verbose=0, **kwargs)


def test_resume_is_bit_exact_at_epoch_boundary(tmp_path):
    dc.manual_seed(3)
    straight = model(dropout=0.3)
    straight.fit(**_run_fit(4, validation_data=(X, Y)))
    want = _weights(straight)

    ck = str(tmp_path / "state.ckpt")
    dc.manual_seed(3)
    first = model(dropout=0.3)
    first.fit(**_run_fit(2, validation_data=(X, Y), checkpoint=ck))
    _scramble()
    resumed = model(dropout=0.3)  # different initial weights; all replaced on resume
    h = resumed.fit(**_run_fit(4, validation_data=(X, Y), checkpoint=ck, resume=ck))
    got = _weights(resumed)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)
    assert h.epoch == [0, 1, 2, 3]  # history carried over from the checkpoint
    assert h.history["loss"] == straight.history.history["loss"]
    state = dc.load(ck)
    assert state["epoch"] == 4 and state["batch"] == 0 and state["global_step"] == 24


def test_ctrl_c_saves_and_resumes_mid_epoch_bit_exact(tmp_path):
    dc.manual_seed(5)
    straight = model(dropout=0.3)
    straight.fit(**_run_fit(3))
    want = _weights(straight)

    ck = str(tmp_path / "interrupt.ckpt")
    dc.manual_seed(5)
    victim = model(dropout=0.3)
    calls = {"n": 0}

    def press_ctrl_c(batch, logs):
        calls["n"] += 1
        if calls["n"] == 9:  # epoch 1 (of 6 batches each), batch 2
            os.kill(os.getpid(), signal.SIGINT)
    h = victim.fit(**_run_fit(3, checkpoint=ck,
                              callbacks=[cb.LambdaCallback(on_train_batch_end=press_ctrl_c)]))
    assert victim.interrupted and h.epoch == [0]
    state = dc.load(ck)
    assert (state["epoch"], state["batch"], state["global_step"]) == (1, 3, 9)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    _scramble()
    resumed = model(dropout=0.3)
    resumed.fit(**_run_fit(3, resume=ck))
    for a, b in zip(want, _weights(resumed)):
        np.testing.assert_array_equal(a, b)
    assert resumed.history.history["loss"] == pytest.approx(straight.history.history["loss"],
                                                            rel=1e-12)


def test_keyboard_interrupt_raised_in_callback_keeps_previous_checkpoint(tmp_path):
    ck = str(tmp_path / "k.ckpt")
    dc.manual_seed(0)
    m = model()
    m.fit(**_run_fit(1, checkpoint=ck))
    before = open(ck, "rb").read()

    def boom(batch, logs):
        raise KeyboardInterrupt
    m.fit(**_run_fit(2, checkpoint=ck, callbacks=[cb.LambdaCallback(on_train_batch_end=boom)]))
    assert m.interrupted and open(ck, "rb").read() != before
    assert dc.load(ck)["batch"] == 1
    with pytest.raises(KeyboardInterrupt):  # without a checkpoint path it propagates
        m.fit(**_run_fit(1, callbacks=[cb.LambdaCallback(on_train_batch_end=boom)]))
    with pytest.raises(FileNotFoundError, match="no training checkpoint"):
        m.fit(**_run_fit(1, resume=str(tmp_path / "missing.ckpt")))
    with pytest.raises(ValueError, match="not a training checkpoint"):
        m.save(tmp_path / "model.safetensors")
        m.fit(**_run_fit(1, resume=str(tmp_path / "model.safetensors")))
