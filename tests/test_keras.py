"""Keras front end: models, layers, compile/fit/evaluate/predict, summary, save/load."""
import os

import numpy as np
import pytest

import deepcore as dc
import deepcore.nn.functional as F
from deepcore import keras
from deepcore.datasets import load_digits

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_Y = np.array([0, 1, 1, 0], np.float32)


def xor_model():
    return keras.Sequential([keras.layers.Dense(8, activation="tanh", input_shape=(2,)),
                             keras.layers.Dense(1, activation="sigmoid")])


def test_xor_compile_fit_predict():
    dc.manual_seed(0)
    model = xor_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(XOR_X, XOR_Y, epochs=150, batch_size=4, verbose=0)
    assert history.history["accuracy"][-1] == 1.0
    assert history.history["loss"][-1] < history.history["loss"][0] / 10
    pred = model.predict(XOR_X, verbose=0)
    assert pred.shape == (4, 1) and isinstance(pred, np.ndarray)
    assert np.array_equal((pred[:, 0] > 0.5).astype(np.float32), XOR_Y)
    loss, acc = model.evaluate(XOR_X, XOR_Y, verbose=0)
    assert acc == 1.0 and loss == pytest.approx(history.history["loss"][-1], rel=0.5)


def test_digits_dense_reaches_95_percent():
    dc.manual_seed(0)
    (xtr, ytr), (xte, yte) = load_digits()
    model = keras.Sequential([keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dropout(0.1),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(xtr, ytr, epochs=30, batch_size=32, verbose=0, validation_split=0.1)
    loss, acc = model.evaluate(xte, yte, verbose=0)
    assert acc >= 0.95, acc
    # predict agrees with evaluate's accuracy
    assert np.mean(model.predict(xte).argmax(-1) == yte) == pytest.approx(acc)


def test_dense_kernel_layout_and_glorot_default():
    dc.manual_seed(1)
    layer = keras.layers.Dense(300, input_shape=(200,))
    w = layer.kernel.detach().numpy()
    assert w.shape == (200, 300)
    limit = np.sqrt(6 / 500)
    assert w.max() <= limit and w.min() >= -limit and w.std() > 0.8 * limit / np.sqrt(3)
    assert np.all(layer.bias.detach().numpy() == 0)
    x = np.random.default_rng(0).normal(size=(5, 200)).astype(np.float32)
    out = layer(dc.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(out, x @ w, rtol=1e-4, atol=1e-4)
    he = keras.layers.Dense(400, kernel_initializer="he_normal", input_shape=(400,))
    assert he.kernel.detach().numpy().std() == pytest.approx(np.sqrt(2 / 400), rel=0.1)


def test_lazy_build_on_first_call():
    model = keras.Sequential([keras.layers.Dense(3), keras.layers.Dense(2)])
    assert not model.built
    with pytest.raises(ValueError, match="not yet been built"):
        model.summary()
    out = model(dc.ones(4, 5))
    assert tuple(out.shape) == (4, 2) and model.built
    assert model.layers[0].kernel.shape == (5, 3)


def test_functional_branches_concatenate_add_summary():
    dc.manual_seed(0)
    inp = keras.Input(shape=(6,))
    a = keras.layers.Dense(4, activation="relu", name="branch_a")(inp)
    b = keras.layers.Dense(4, name="branch_b")(inp)
    added = keras.layers.Add(name="add")([a, b])
    cat = keras.layers.Concatenate(name="cat")([added, a])
    out = keras.layers.Dense(1, name="head")(cat)
    model = keras.Model(inp, out, name="branchy")
    x = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    xt = dc.from_numpy(x)
    ref_a = model.get_layer("branch_a")(xt)
    ref = model.get_layer("head")(dc.cat([ref_a + model.get_layer("branch_b")(xt), ref_a], -1))
    np.testing.assert_allclose(model(xt).detach().numpy(), ref.detach().numpy(), rtol=1e-6)
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert 'Model: "branchy"' in text
    assert "cat (Concatenate)" in text and "(None, 8)" in text
    assert "add[0]" in text  # Connected to
    assert "Total params: 65" in text  # two Dense(6->4) = 2 * 28, head Dense(8->1) = 9
    assert "Non-trainable params: 0" in text


def test_summary_sequential_counts():
    model = xor_model()
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "Layer (type)" in text and "Output Shape" in text and "Param #" in text
    assert "(None, 8)" in text and "24" in text and "(None, 1)" in text
    assert "Total params: 33" in text and "Trainable params: 33" in text


def test_metrics_resolution_and_regression_metrics():
    dc.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(3,))])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=["mae", "mse"])
    h = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert set(h.history) == {"loss", "mae", "mse"}
    assert h.history["mse"][-1] == pytest.approx(h.history["loss"][-1], rel=1e-5)
    assert h.history["loss"][-1] < 1e-2
    # one-hot targets + categorical loss -> categorical accuracy
    m = keras.Sequential([keras.layers.Dense(3, activation="softmax", input_shape=(3,))])
    m.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    onehot = np.eye(3, dtype=np.float32)[np.arange(64) % 3]
    m.fit(x, onehot, epochs=1, verbose=0)
    assert type(m._metrics[0].inner).__name__ == "CategoricalAccuracy"


def test_losses_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=5)
    got = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        dc.from_numpy(labels), dc.from_numpy(logits)).item()
    want = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels)).item()
    assert got == pytest.approx(want, rel=1e-5)
    probs = 1 / (1 + np.exp(-logits[:, :1]))
    t = (labels[:, None] % 2).astype(np.float32)
    got = keras.losses.BinaryCrossentropy()(dc.from_numpy(t), dc.from_numpy(probs)).item()
    want = torch.nn.functional.binary_cross_entropy(torch.tensor(probs), torch.tensor(t)).item()
    assert got == pytest.approx(want, rel=1e-4)
    got = keras.losses.get("huber")(dc.from_numpy(t), dc.from_numpy(logits[:, :1])).item()
    want = torch.nn.functional.huber_loss(torch.tensor(logits[:, :1]), torch.tensor(t)).item()
    assert got == pytest.approx(want, rel=1e-5)


def test_class_weight_and_sample_weight_change_training():
    x = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    results = []
    for kwargs in ({}, {"class_weight": {0: 1.0, 1: 5.0}}):
        dc.manual_seed(0)
        m = keras.Sequential([keras.layers.Dense(1, activation="sigmoid", input_shape=(2,))])
        m.compile("sgd", "binary_crossentropy")
        m.fit(x, y, epochs=2, verbose=0, shuffle=False, **kwargs)
        results.append(m.get_weights()[0])
    assert not np.allclose(results[0], results[1])


def test_train_and_test_on_batch():
    dc.manual_seed(0)
    m = xor_model()
    m.compile(keras.optimizers.Adam(0.1), "binary_crossentropy", metrics=["accuracy"])
    first = m.test_on_batch(XOR_X, XOR_Y)
    for _ in range(100):
        loss, acc = m.train_on_batch(XOR_X, XOR_Y)
    assert loss < first[0] and acc == 1.0
    assert m.test_on_batch(XOR_X, XOR_Y, return_dict=True)["accuracy"] == 1.0


def test_fit_accepts_dataset_and_dataloader():
    from deepcore.utils.data import DataLoader, TensorDataset
    dc.manual_seed(0)
    ds = TensorDataset(dc.from_numpy(np.tile(XOR_X, (8, 1))), dc.from_numpy(np.tile(XOR_Y, 8)))
    m = keras.Sequential([keras.layers.Dense(8, activation="tanh"),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(keras.optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy"])
    h = m.fit(DataLoader(ds, batch_size=8, shuffle=True), epochs=40, verbose=0,
              validation_data=DataLoader(ds, batch_size=16))
    assert h.history["val_accuracy"][-1] == 1.0
    h2 = m.fit(ds, epochs=1, batch_size=4, verbose=0)
    assert len(h2.history["loss"]) == 1


def test_compile_string_optimizers_use_keras_defaults():
    m = xor_model()
    for name, lr in (("sgd", 0.01), ("adam", 0.001), ("rmsprop", 0.001), ("adamw", 0.001)):
        m.compile(name, "mse")
        assert m.optimizer.param_groups[0]["lr"] == lr
    assert type(m.optimizer).__name__ == "AdamW"
    with pytest.raises(ValueError, match="unknown optimizer"):
        m.compile("adamax", "mse")
    with pytest.raises(ValueError, match="unknown loss"):
        m.compile("adam", "hinge2")
    with pytest.raises(RuntimeError, match="compile"):
        xor_model().fit(XOR_X, XOR_Y)


def test_save_load_round_trip_file_and_directory(tmp_path):
    dc.manual_seed(0)
    inp = keras.Input(shape=(5,))
    h = keras.layers.Dense(6, activation="relu")(inp)
    h = keras.layers.LayerNormalization()(h)
    h2 = keras.layers.Dense(6, activation="gelu")(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([h, h2]))
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(16, 5)).astype(np.float32)
    y = np.arange(16) % 3
    model.fit(x, y, epochs=2, verbose=0)
    for path in (tmp_path / "model.keras", str(tmp_path / "dir") + os.sep):
        model.save(path)
        loaded = keras.models.load_model(path)
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
        assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
        assert loaded.compiled and loaded.metrics_names == ["loss", "accuracy"]
        sd_a, sd_b = model.optimizer.state_dict(), loaded.optimizer.state_dict()
        assert sd_a["state"][0]["exp_avg"].numpy().tolist() == \
            sd_b["state"][0]["exp_avg"].numpy().tolist()
    assert os.path.exists(tmp_path / "dir" / "config.json")
    seq = xor_model()
    seq.save(tmp_path / "seq.keras")
    again = keras.models.load_model(tmp_path / "seq.keras")
    np.testing.assert_array_equal(again.predict(XOR_X), seq.predict(XOR_X))
    assert not again.compiled


def test_load_refuses_unknown_layer_type(tmp_path):
    model = xor_model()
    path = tmp_path / "m.safetensors"
    model.save(path)
    doc = dc.load(path)
    doc["model_config"]["config"]["layers"][0]["class_name"] = "EvilLambda"
    dc.save(doc, path)
    with pytest.raises(ValueError, match="unknown layer type 'EvilLambda'"):
        keras.models.load_model(path)
    with pytest.raises(ValueError, match="not a keras model file"):
        dc.save({"weights": model.state_dict()}, tmp_path / "w.st")
        keras.models.load_model(tmp_path / "w.st")


def test_subclassed_model_trains_and_refuses_config_save(tmp_path):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.d1 = keras.layers.Dense(8, activation="tanh")
            self.d2 = keras.layers.Dense(1, activation="sigmoid")

        def call(self, x):
            return self.d2(self.d1(x))

    dc.manual_seed(0)
    net = Net()
    net.compile(keras.optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy"])
    h = net.fit(XOR_X, XOR_Y, epochs=150, batch_size=4, verbose=0)
    assert h.history["accuracy"][-1] == 1.0
    with pytest.raises(NotImplementedError, match="save_weights"):
        net.save(tmp_path / "n.keras")
    net.save_weights(tmp_path / "n.weights")
    other = Net()
    other(dc.zeros(1, 2))
    other.load_weights(tmp_path / "n.weights")
    np.testing.assert_array_equal(other.predict(XOR_X), net.predict(XOR_X))


def test_misc_layers_shapes():
    inp = keras.Input(shape=(4,), dtype="int64")
    e = keras.layers.Embedding(10, 3)(inp)
    r = keras.layers.Reshape((2, 6))(e)
    f = keras.layers.Flatten()(r)
    a = keras.layers.Activation("relu")(f)
    m = keras.Model(inp, a)
    with dc.no_grad():
        out = m(dc.tensor([[1, 2, 3, 9]]))
    assert tuple(out.shape) == (1, 12)
    emb = m.layers[1].embeddings.detach().numpy()
    np.testing.assert_allclose(out.numpy()[0], np.maximum(emb[[1, 2, 3, 9]].ravel(), 0))
    with pytest.raises(ValueError, match="unknown activation"):
        keras.layers.Dense(2, activation="nope")


needs_conv = pytest.mark.skipif(not hasattr(F, "conv2d"), reason="F.conv2d not in this build")


def test_conv2d_net_on_digits_reaches_95_percent():
    # The seed example: a small channels-last Conv2D net on 8x8 digits with compile/fit.
    dc.manual_seed(0)
    (xtr, ytr), (xte, yte) = load_digits(flatten=False)
    model = keras.Sequential([
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(xtr[..., None], ytr, epochs=10, batch_size=32, verbose=0)
    loss, acc = model.evaluate(xte[..., None], yte, verbose=0)
    assert acc >= 0.95
needs_pool = pytest.mark.skipif(not (hasattr(F, "max_pool2d") and hasattr(F, "avg_pool2d") and
                                     hasattr(F, "adaptive_avg_pool2d")),
                                reason="pooling ops not in this build")
needs_bn = pytest.mark.skipif(not hasattr(F, "batch_norm"), reason="F.batch_norm not in build")


@needs_conv
def test_conv2d_channels_last_matches_torch():
    torch = pytest.importorskip("torch")
    layer = keras.layers.Conv2D(4, 3, strides=2, input_shape=(9, 9, 2))
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 2)).astype(np.float32)
    out = layer(dc.from_numpy(x)).detach().numpy()
    w = torch.tensor(layer.kernel.detach().numpy()).permute(3, 2, 0, 1)
    ref = torch.nn.functional.conv2d(torch.tensor(x).permute(0, 3, 1, 2), w, stride=2)
    np.testing.assert_allclose(out, ref.permute(0, 2, 3, 1).numpy(), rtol=1e-4, atol=1e-5)


@needs_conv
@needs_pool
def test_small_convnet_fits():
    dc.manual_seed(0)
    (xtr, ytr), _ = load_digits(flatten=False)
    model = keras.Sequential([keras.layers.Conv2D(8, 3, activation="relu",
                                                  input_shape=(8, 8, 1)),
                              keras.layers.MaxPooling2D(2),
                              keras.layers.AveragePooling2D(1),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(xtr[:256, :, :, None], ytr[:256], epochs=3, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


@needs_bn
def test_batch_normalization_train_and_inference():
    layer = keras.layers.BatchNormalization(input_shape=(3,))
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(64, 3)).astype(np.float32)
    out = layer(dc.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.01 * x.mean(0), rtol=1e-4)
    layer.eval()
    np.testing.assert_allclose(layer(dc.from_numpy(x)).detach().numpy(),
                               (x - layer.moving_mean.numpy()) /
                               np.sqrt(layer.moving_variance.numpy() + 1e-3), rtol=1e-4)
