"""Mixed precision training end to end: the digits CNN and the GPT trained under bfloat16
autocast against the same training in float32; Keras 3's dtype policies in deepcore.keras
(against Keras 3 on its torch backend, when installed); ``deepcore train --precision``; and loss
scaling under ``Trainer(precision="16-mixed")``."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import deepcore as dc
from deepcore import keras as dk
from deepcore import nn, optim
from deepcore.amp import GradScaler
from deepcore.train import Trainer
from deepcore.utils.data import DataLoader, TensorDataset

mp = dk.mixed_precision


@pytest.fixture(autouse=True)
def _float32_policy():
    yield
    mp.set_global_policy("float32")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The training runs here are small: one thread keeps them fast and their time steady on a
    shared machine (two OpenMP threads on two busy cores run several times slower)."""
    saved = dc.get_num_threads()
    dc.set_num_threads(1)
    yield
    dc.set_num_threads(saved)


def _one_thread_env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def keras3():
    """Keras 3 on its torch backend (the oracle of the policy tests)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"Keras runs on {keras.backend.backend()!r}, not torch")
    yield keras
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    from deepcore.datasets import load_digits
    (xtr, ytr), (xte, yte) = load_digits(seed=0, flatten=False)
    return xtr[:, None], ytr, xte[:, None], yte  # NCHW


def _name(dtype) -> str:
    return str(dtype).replace("deepcore.", "").replace("torch.", "")


# ---- the digits CNN: bf16 autocast vs float32 ----------------------------------------------------

def _train_cnn(digits, precision: str, epochs: int = 12):
    from deepcore._model_files import build_image_model
    xtr, ytr, xte, yte = digits
    dc.manual_seed(0)
    model = build_image_model("cnn", 1, 8, 10)  # what `deepcore train` trains
    opt = optim.Adam(model.parameters(), lr=2e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched, precision=precision)
    loader = DataLoader(TensorDataset(dc.from_numpy(xtr), dc.from_numpy(ytr)), batch_size=128,
                        shuffle=True)
    history = trainer.fit(loader, epochs=epochs, verbose=0)
    test = DataLoader(TensorDataset(dc.from_numpy(xte), dc.from_numpy(yte)), batch_size=512)
    pred = trainer.predict(test)
    return trainer, history.history["loss"], pred, float((pred.argmax(1) == yte).mean())


def test_digits_cnn_bf16_matches_float32_accuracy(digits):
    _, loss32, pred32, acc32 = _train_cnn(digits, "32")
    trainer, loss16, pred16, acc16 = _train_cnn(digits, "bf16-mixed")
    assert acc32 >= 0.97 and acc16 >= 0.97, (acc32, acc16)
    assert abs(acc16 - acc32) <= 0.005, (acc16, acc32)  # 0.5 percentage points
    # The bf16 run did compute in bfloat16 (the curves differ, its outputs are bf16) while its
    # weights, gradients and optimizer state stayed float32.
    assert loss16 != loss32
    assert pred32.dtype == np.float32 and pred16.dtype.name == "bfloat16"
    params = list(trainer.module.parameters())
    assert all(p.dtype == dc.float32 and p.grad.dtype == dc.float32 for p in params)
    state = trainer.optimizer.state_dict()["state"]
    assert all(t.dtype == dc.float32 for s in state.values() for k, t in s.items()
               if k != "step")
    assert trainer.precision == "bf16-mixed" and trainer.grad_scaler is None


# ---- the GPT: loss curves under bf16 autocast vs float32 -------------------------------------------

def _markov_tokens(vocab: int, n: int, seed: int = 0) -> np.ndarray:
    """A first-order Markov chain with random sparse-ish transitions: learnable structure with an
    entropy rate well above zero, so the loss falls and then plateaus."""
    rng = np.random.default_rng(seed)
    cdf = rng.dirichlet(np.full(vocab, 0.3), size=vocab).cumsum(1)
    u = rng.random(n)
    seq = np.empty(n, np.int64)
    seq[0] = 0
    for i in range(1, n):
        seq[i] = min(int(np.searchsorted(cdf[seq[i - 1]], u[i])), vocab - 1)
    return seq


def _gpt_curve(seq, config, autocast_dtype, steps=200, batch=16):
    from deepcore.models import GPT
    dc.manual_seed(0)
    model = GPT(config)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95))
    rng = np.random.default_rng(1)
    T = config.block_size
    losses = []
    for _ in range(steps):
        ix = rng.integers(0, len(seq) - T - 1, batch)[:, None] + np.arange(T)
        x, y = dc.from_numpy(seq[ix]), dc.from_numpy(seq[ix + 1])
        with dc.autocast("cpu", dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses), logits.dtype, model


def test_gpt_loss_curve_bf16_within_2_percent_of_float32():
    from deepcore.models import GPTConfig
    config = GPTConfig(block_size=32, vocab_size=24, n_layer=2, n_head=2, n_embd=64)
    seq = _markov_tokens(24, 50_000)
    ref, ref_dtype, _ = _gpt_curve(seq, config, None)
    bf16, bf16_dtype, model = _gpt_curve(seq, config, dc.bfloat16)
    assert ref_dtype == dc.float32 and bf16_dtype == dc.bfloat16
    assert ref[-20:].mean() < 0.8 * ref[:5].mean()  # it learned: ln(24) = 3.18 -> ~2.3
    rel = np.abs(bf16 - ref) / ref
    assert rel.max() <= 0.02, (rel.max(), int(rel.argmax()))
    assert rel.max() > 0.0  # computed in bf16, not a copy of the float32 run
    assert all(p.dtype == dc.float32 for p in model.parameters())


# ---- Keras 3 dtype policies ----------------------------------------------------------------------

POLICIES = ["float32", "mixed_bfloat16", "mixed_float16", "bfloat16", "float16", "float64"]


@pytest.mark.parametrize("name", POLICIES)
def test_policy_properties_match_keras(keras3, name):
    ours, theirs = mp.Policy(name), keras3.mixed_precision.Policy(name)
    assert (ours.name, ours.compute_dtype, ours.variable_dtype) == \
        (theirs.name, theirs.compute_dtype, theirs.variable_dtype)
    assert repr(ours) == repr(theirs)
    assert mp.Policy(**ours.get_config()) == ours


def test_policy_errors_and_global_policy():
    assert mp.global_policy() == mp.Policy("float32") and mp.Policy().name == "float32"
    with pytest.raises(ValueError, match=r"Policy\].*'float8'.*mixed_bfloat16"):
        mp.Policy("float8")
    with pytest.raises(TypeError, match=r"Policy\].*3"):
        mp.Policy(3)
    with pytest.raises(ValueError, match=r"set_global_policy\].*None"):
        mp.set_global_policy(None)
    with pytest.raises(TypeError, match=r"keras.layers\].*dtype.*1.5"):
        dk.layers.Dense(2, dtype=1.5)
    mp.set_global_policy("mixed_bfloat16")
    assert mp.global_policy().name == "mixed_bfloat16" and mp.Policy().name == "mixed_bfloat16"
    assert mp.dtype_policy() is mp.global_policy()
    layer = dk.layers.Dense(2, dtype=mp.Policy("float16"))
    assert layer.dtype_policy.name == "float16" and layer.compute_dtype == "float16"
    assert dk.layers.Dense(2, dtype=dc.bfloat16).dtype_policy.name == "bfloat16"
    assert dk.layers.Dense(2).get_config()["dtype"] == "mixed_bfloat16"


def _net(k, last_dtype="float32"):
    L = k.layers
    return k.Sequential([k.Input((8, 8, 1)), L.Conv2D(8, 3, padding="same", activation="relu"),
                         L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(),
                         L.Dense(32, activation="relu"), L.LayerNormalization(), L.Dropout(0.1),
                         L.Dense(10, activation="softmax", dtype=last_dtype)])


def _layer_report(model, keras=None):
    """Per layer: policy name, compute / variable / dtype, and the dtypes of its weights."""
    out = []
    for layer in model.layers:
        weights = [w.dtype for w in layer.weights] if keras is not None else \
            [t.dtype for t in layer.state_dict().values()]
        out.append((type(layer).__name__, layer.dtype_policy.name, layer.compute_dtype,
                    layer.variable_dtype, layer.dtype, sorted(_name(d) for d in weights)))
    return out


def _copy_weights(src_keras, dst):
    rng = np.random.default_rng(0)
    for kl, dl in zip(src_keras.layers, dst.layers):
        ws = [(rng.standard_normal(w.shape) * 0.3).astype(np.float32) for w in kl.get_weights()]
        if type(kl).__name__ == "BatchNormalization":
            ws[3] = np.abs(ws[3]) + 0.5  # a variance
        kl.set_weights(ws)
        dl.set_weights(ws)


@pytest.mark.parametrize("last_dtype", ["float32", None])
def test_mixed_bfloat16_layers_and_predict_match_keras(keras3, digits, last_dtype):
    keras3.mixed_precision.set_global_policy("mixed_bfloat16")
    mp.set_global_policy("mixed_bfloat16")
    try:
        km, dm = _net(keras3, last_dtype), _net(dk, last_dtype)
    finally:
        keras3.mixed_precision.set_global_policy("float32")
    assert _layer_report(dm) == _layer_report(km, keras3)
    _copy_weights(km, dm)
    x = np.ascontiguousarray(digits[2].transpose(0, 2, 3, 1))  # NHWC, as Keras takes images
    ref, got = km.predict(x, verbose=0), dm.predict(x, verbose=0)
    assert got.dtype == ref.dtype and got.dtype.name == (last_dtype or "bfloat16")
    # Both round the activations to bf16 (8 significant bits): probabilities agree to ~3e-3.
    np.testing.assert_allclose(got.astype(np.float32), ref.astype(np.float32), atol=1e-2)
    # Layer by layer (inference mode), each output in the dtype Keras gives it.
    dm.eval()
    hk, hd = x[:4], dc.from_numpy(x[:4])
    for kl, dl in zip(km.layers, dm.layers):
        hk, hd = kl(hk, training=False), dl(hd)
        assert _name(hd.dtype) == keras3.backend.standardize_dtype(hk.dtype), kl.name


def test_mixed_policy_applies_per_layer_like_keras():
    # A float32 layer keeps full precision in a mixed model: it is not fed bf16-rounded inputs
    # (functional and Sequential models do not cast; each layer casts its own inputs).
    mp.set_global_policy("mixed_bfloat16")
    x = np.array([[1.0 + 2.0 ** -10]], np.float32)  # not representable in bfloat16
    for build in ("sequential", "functional"):
        dense = dk.layers.Dense(1, use_bias=False, kernel_initializer="ones", dtype="float32")
        if build == "sequential":
            model = dk.Sequential([dk.Input((1,)), dense])
        else:
            i = dk.Input((1,))
            model = dk.Model(i, dense(i))
        assert model.predict(x, verbose=0)[0, 0] == np.float32(1.0 + 2.0 ** -10)
    bf16 = dk.layers.Dense(1, use_bias=False, kernel_initializer="ones")
    assert bf16(dc.from_numpy(x)).float().item() == 1.0  # its input is cast to bfloat16
    # Embedding takes its ids as they are; the others cast float inputs, never integer ones.
    emb = dk.layers.Embedding(300, 2)
    out = emb(dc.tensor([[257.0]]))
    assert out.dtype == dc.bfloat16
    # id 257 is not a bfloat16 number (it would round to 256): the row read is row 257's
    np.testing.assert_array_equal(out.detach().float().numpy()[0, 0],
                                  emb.embeddings[257].detach().to(dc.bfloat16).float().numpy())


def _keras_fit(digits, policy: str):
    mp.set_global_policy(policy)
    xtr, ytr, xte, yte = digits
    xtr, xte = (np.ascontiguousarray(a.transpose(0, 2, 3, 1)) for a in (xtr, xte))
    dc.manual_seed(0)
    model = _net(dk)
    model.compile(optimizer=dk.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    loss = model.fit(xtr, ytr, epochs=15, batch_size=64, verbose=0).history["loss"]
    acc = model.evaluate(xte, yte, verbose=0, return_dict=True)["accuracy"]
    return model, loss, acc, xte


def test_mixed_bfloat16_fit_converges_with_float32_weights(digits):
    _, _, acc32, _ = _keras_fit(digits, "float32")
    model, loss, acc, xte = _keras_fit(digits, "mixed_bfloat16")
    assert loss[-1] < 0.05 * loss[0], loss
    assert acc >= 0.96 and abs(acc - acc32) <= 0.01, (acc, acc32)
    assert all(p.dtype == dc.float32 for p in model.parameters())
    assert model.grad_scaler is None  # loss scaling is for float16 only
    assert model.layers[0](dc.from_numpy(xte[:2])).dtype == dc.bfloat16
    assert model.predict(xte[:2], verbose=0).dtype == np.float32  # the float32 softmax layer


def test_mixed_float16_wraps_the_optimizer_like_keras(keras3):
    keras3.mixed_precision.set_global_policy("mixed_float16")
    mp.set_global_policy("mixed_float16")
    try:
        km = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(3)])
        km.compile(optimizer="adam", loss="mse")
    finally:
        keras3.mixed_precision.set_global_policy("float32")
    dm = dk.Sequential([dk.Input((4,)), dk.layers.Dense(3)])
    dm.compile(optimizer="adam", loss="mse")
    assert isinstance(km.optimizer, keras3.optimizers.LossScaleOptimizer)
    spec = dm._optimizer_spec
    assert isinstance(spec, dk.optimizers.LossScaleOptimizer)
    assert (spec.initial_scale, spec.dynamic_growth_steps) == \
        (km.optimizer.initial_scale, km.optimizer.dynamic_growth_steps)


def test_mixed_float16_fit_scales_the_loss():
    mp.set_global_policy("mixed_float16")
    dm = dk.Sequential([dk.Input((4,)), dk.layers.Dense(3)])
    dm.compile(optimizer="adam", loss="mse")
    spec = dm._optimizer_spec
    assert isinstance(spec, dk.optimizers.LossScaleOptimizer)
    assert isinstance(dm.grad_scaler, GradScaler) and dm.grad_scaler.get_scale() == 2.0 ** 15
    # Targets of 1e3 make the float16 output gradient overflow once scaled: the step is skipped
    # and the scale halved until the gradients fit; then training goes on.
    w0 = dm.get_weights()[0].copy()
    x, y = np.ones((8, 4), np.float32), np.full((8, 3), 1e3, np.float32)
    dm.train_on_batch(x, y)
    assert dm.grad_scaler.get_scale() == 2.0 ** 14 and spec.dynamic_scale == 2.0 ** 14
    np.testing.assert_array_equal(dm.get_weights()[0], w0)
    history = dm.fit(x, y, epochs=12, batch_size=8, verbose=0)
    assert dm.grad_scaler.get_scale() < 2.0 ** 14
    assert not np.array_equal(dm.get_weights()[0], w0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(p.dtype == dc.float32 for p in dm.parameters())
    assert dm.predict(x, verbose=0).dtype == np.float16


def test_mixed_policies_round_trip_through_keras_files(keras3, tmp_path):
    pytest.importorskip("h5py")
    mp.set_global_policy("mixed_bfloat16")
    dm = dk.Sequential([dk.Input((5,)), dk.layers.Dense(4, activation="relu"),
                        dk.layers.Dense(2, dtype="float32")])
    mp.set_global_policy("float32")
    dm.save(tmp_path / "d.keras")
    km = keras3.models.load_model(tmp_path / "d.keras")
    assert [l.dtype_policy.name for l in km.layers] == ["mixed_bfloat16", "float32"]
    keras3.mixed_precision.set_global_policy("mixed_float16")
    try:
        km2 = keras3.Sequential([keras3.Input((5,)), keras3.layers.Dense(3)])
    finally:
        keras3.mixed_precision.set_global_policy("float32")
    km2.save(tmp_path / "k.keras")
    loaded = dk.models.load_model(tmp_path / "k.keras")
    assert [l.dtype_policy.name for l in loaded.layers] == ["mixed_float16"]


# ---- deepcore train --precision --------------------------------------------------------------------

def _cli(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", "deepcore", *args], check=False,
                          capture_output=True, text=True, timeout=timeout,
                          env=env or _one_thread_env())


def test_cli_trains_the_main_job_in_bf16(tmp_path):
    pytest.importorskip("sklearn")
    out = _cli("train", "--precision", "bf16", "--epochs", "3", "--out", str(tmp_path),
               "--no-tensorboard", "--verbose", "2")
    assert out.returncode == 0, out.stderr
    assert "precision bf16-mixed" in out.stdout
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("test accuracy:"))
    assert float(line.split()[2].rstrip("%")) >= 85.0, line
    state = dc.load(str(tmp_path / "checkpoint.safetensors"))
    assert all(t.dtype == dc.float32 for t in state["model"].values())


def test_cli_precision_values():
    from deepcore import cli
    parser = cli._build_parser()
    assert parser.parse_args(["train"]).precision == "fp32"
    assert {cli.PRECISIONS[v] for v in ("fp32", "32")} == {"32-true"}
    assert {cli.PRECISIONS[v] for v in ("bf16", "bf16-mixed")} == {"bf16-mixed"}
    out = _cli("train", "--precision", "fp8", timeout=60)
    assert out.returncode == 2
    assert "--precision" in out.stderr and "'fp8'" in out.stderr
    assert all(f"'{v}'" in out.stderr for v in cli.PRECISIONS), out.stderr


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun is not installed")
def test_cli_nproc_passes_the_precision_to_every_rank(tmp_path):
    pytest.importorskip("mpi4py")
    pytest.importorskip("sklearn")
    env = _one_thread_env()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    out = _cli("train", "--nproc", "2", "--precision", "bf16-mixed", "--model", "mlp",
               "--epochs", "1", "--out", str(tmp_path), "--no-tensorboard", "--verbose", "2",
               timeout=120, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.count("precision bf16-mixed") == 1  # rank 0 prints
    assert len(dc.load(str(tmp_path / "checkpoint.safetensors"))["ranks"]) == 2


# ---- Trainer(precision=...) ----------------------------------------------------------------------

def _regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x @ rng.standard_normal((4, 1)) * 30).astype(np.float32)  # targets of tens
    return DataLoader(TensorDataset(dc.from_numpy(x), dc.from_numpy(y)), batch_size=8)


def test_trainer_precision_names_and_errors():
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    for value, canonical in [("32", "32-true"), (32, "32-true"), ("bf16", "bf16-mixed"),
                             ("16", "16-mixed"), (16, "16-mixed"), ("16-mixed", "16-mixed")]:
        assert Trainer(model, opt, nn.MSELoss(), precision=value).precision == canonical
    with pytest.raises(ValueError, match=r"\[Trainer\] precision must be one of .*'bf16-mixed'"
                                         r".*'fp8'"):
        Trainer(model, opt, nn.MSELoss(), precision="fp8")


def test_trainer_16_mixed_scales_the_loss_and_skips_overflowing_steps(tmp_path):
    dc.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = optim.Adam(model.parameters(), lr=5e-2)
    trainer = Trainer(model, opt, nn.MSELoss(), precision="16-mixed")
    scaler = trainer.grad_scaler
    assert isinstance(scaler, GradScaler) and scaler.get_scale() == 2.0 ** 16
    w0 = model[0].weight.detach().numpy().copy()
    # Step 1: the output gradients (~10) times 65536 overflow float16's 65504 in backward.
    trainer.fit(_regression(), epochs=1, steps_per_epoch=1, verbose=0)
    assert scaler.get_scale() == 2.0 ** 15
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), w0)
    assert model[0].weight.grad.dtype == dc.float32
    ckpt = str(tmp_path / "ckpt.safetensors")
    history = trainer.fit(_regression(), epochs=20, verbose=0, checkpoint=ckpt)
    settled = scaler.get_scale()
    assert settled < 2.0 ** 15  # halved again until the gradients fit in float16
    assert not np.array_equal(model[0].weight.detach().numpy(), w0)
    assert history.history["loss"][-1] < 0.05 * history.history["loss"][0]
    # The scale is part of the training state: a resumed run continues with it.
    fresh = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    resumed = Trainer(fresh, optim.Adam(fresh.parameters(), lr=5e-2), nn.MSELoss(),
                      precision="16-mixed")
    resumed.fit(_regression(), epochs=20, verbose=0, resume=ckpt)
    assert resumed.grad_scaler.get_scale() == settled
    # Clean steps grow the scale after growth_interval of them.
    trainer.grad_scaler = GradScaler("cpu", init_scale=1.0, growth_interval=2)
    trainer.fit(_regression(), epochs=1, steps_per_epoch=4, verbose=0)
    assert trainer.grad_scaler.get_scale() == 4.0
