"""Keras 3 model files (.keras archives, .weights.h5) between deepcore.keras and Keras 3 (torch
backend, the oracle): each architecture is built with the same code in both libraries, saved by
one and loaded by the other, and must predict the same."""
import io
import json
import marshal
import os
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

import deepcore as dc
from deepcore import keras as dk
from deepcore.serialization import SerializationError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # from Keras itself

# float32 through a few layers: matmuls of a few dozen terms, transcendentals, normalizations.
RTOL = 1e-5


def _close(got, ref):
    got = got if isinstance(got, list) else [got]
    ref = ref if isinstance(ref, list) else [ref]
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        r = np.asarray(r)
        np.testing.assert_allclose(g, r, rtol=RTOL, atol=RTOL * max(1.0, np.abs(r).max()))


# ---- architectures: one builder per case, called with keras or deepcore.keras -------------------

def _mlp(k):
    L = k.layers
    return k.Sequential([k.Input((2, 3)), L.Flatten(), L.Dense(8, activation="relu"),
                         L.Dense(8, activation="tanh", use_bias=False),
                         L.Dense(3, activation="softmax")])


def _cnn(k):
    L = k.layers
    return k.Sequential([k.Input((9, 9, 3)), L.Conv2D(4, 3, padding="same", activation="relu"),
                         L.BatchNormalization(), L.MaxPooling2D(),
                         L.Conv2D(5, 2, dilation_rate=2), L.BatchNormalization(center=False),
                         L.AveragePooling2D(2, padding="same"), L.GlobalAveragePooling2D(),
                         L.Dense(2)])


def _functional(k):
    L = k.layers
    a, b = k.Input((5,), name="a"), k.Input((3,), name="b")
    shared = L.Dense(4, activation="tanh", name="shared")
    x, y = shared(a), shared(L.Dense(5, name="proj_b")(b))
    s = L.Add(name="add")([x, y])
    c = L.Concatenate(name="cat")([s, x, b])
    h = L.Dense(6, activation="relu", name="hidden")(c)
    return k.Model([a, b], [L.Dense(2, name="out1")(h), L.Dense(1, name="out2")(s)],
                   name="two_in_two_out")


def _layer_norm(k):
    L = k.layers
    return k.Sequential([k.Input((5, 6)), L.Dense(8), L.LayerNormalization(), L.Dropout(0.3),
                         L.LayerNormalization(center=False, epsilon=1e-5), L.Flatten(),
                         L.Dense(2)])


def _lstm(k):
    L = k.layers
    return k.Sequential([k.Input((7,), dtype="int32"), L.Embedding(12, 5),
                         L.LSTM(6, return_sequences=True), L.Bidirectional(L.LSTM(3)),
                         L.Dense(1)])


def _gru(k):
    L = k.layers
    return k.Sequential([k.Input((6, 4)), L.GRU(5, return_sequences=True),
                         L.GRU(3, reset_after=False), L.Dense(2)])


def _conv1d(k):
    L = k.layers
    return k.Sequential([k.Input((10, 4)), L.Conv1D(6, 3, padding="same", activation="relu"),
                         L.Conv1D(4, 2, strides=2), L.SimpleRNN(3), L.Dense(1)])


def _nested(k):
    """A Sequential used as a layer of a functional model (weights one level down)."""
    L = k.layers
    inner = k.Sequential([k.Input((4,)), L.Dense(3, activation="tanh"), L.Dense(3)],
                         name="inner")
    a = k.Input((4,), name="x")
    return k.Model(a, L.Add(name="sum")([inner(a), L.Dense(3, name="skip")(a)]))


CASES = {"mlp": _mlp, "cnn": _cnn, "functional": _functional, "layer_norm": _layer_norm,
         "lstm": _lstm, "gru": _gru, "conv1d": _conv1d, "nested": _nested}


def _inputs(case, seed=1):
    rng = np.random.default_rng(seed)
    if case == "functional":
        return [rng.standard_normal((4, 5)).astype("float32"),
                rng.standard_normal((4, 3)).astype("float32")]
    if case == "lstm":
        return rng.integers(0, 12, (4, 7)).astype("int32")
    shapes = {"mlp": (4, 2, 3), "cnn": (4, 9, 9, 3), "layer_norm": (4, 5, 6), "gru": (4, 6, 4),
              "conv1d": (4, 10, 4), "nested": (4, 4)}
    return rng.standard_normal(shapes[case]).astype("float32")


def _random_arrays(shapes_and_names, seed=0):
    """Normal weights, scaled so activations stay in range; moving variances positive."""
    rng = np.random.default_rng(seed)
    out = []
    for name, shape in shapes_and_names:
        if "variance" in name:
            out.append(rng.uniform(0.5, 1.5, shape).astype("float32"))
        else:
            out.append((rng.standard_normal(shape) * 0.4).astype("float32"))
    return out


def _randomize_keras(model, seed=0):
    arrays = _random_arrays([(w.path, tuple(w.shape)) for w in model.weights], seed)
    for w, a in zip(model.weights, arrays):
        w.assign(a)


def _randomize_deepcore(model, seed=0):
    sd = model.state_dict()
    arrays = _random_arrays([(k, tuple(t.shape)) for k, t in sd.items()], seed)
    with dc.no_grad():
        for t, a in zip(sd.values(), arrays):
            t.copy_(dc.from_numpy(a))


def _keras_predict(model, x):
    out = model.predict(x, verbose=0)
    return [np.asarray(o) for o in out] if isinstance(out, list) else np.asarray(out)


# ---- .keras both ways ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_keras_archive_loads_in_deepcore(case, tmp_path):
    km = CASES[case](keras)
    _randomize_keras(km)
    path = tmp_path / "m.keras"
    km.save(path)
    dm = dk.models.load_model(path)
    x = _inputs(case)
    _close(dm.predict(x), _keras_predict(km, x))
    assert sorted(l.name for l in dm.layers) == sorted(l.name for l in km.layers)


@pytest.mark.parametrize("case", CASES)
def test_deepcore_archive_loads_in_keras(case, tmp_path):
    dm = CASES[case](dk)
    _randomize_deepcore(dm)
    path = tmp_path / "m.keras"
    dm.save(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
    km = keras.models.load_model(path)
    x = _inputs(case)
    _close(dm.predict(x), _keras_predict(km, x))
    # And back: deepcore reads its own Keras file.
    _close(dk.models.load_model(path).predict(x), dm.predict(x))


# ---- .weights.h5 both ways (models built independently: only the layout matches them) ---------

@pytest.mark.parametrize("case", CASES)
def test_keras_weights_h5_load_in_deepcore(case, tmp_path):
    km, dm = CASES[case](keras), CASES[case](dk)
    _randomize_keras(km, seed=3)
    path = tmp_path / "w.weights.h5"
    km.save_weights(path)
    dm.load_weights(path)
    x = _inputs(case)
    _close(dm.predict(x), _keras_predict(km, x))


@pytest.mark.parametrize("case", CASES)
def test_deepcore_weights_h5_load_in_keras(case, tmp_path):
    km, dm = CASES[case](keras), CASES[case](dk)
    _randomize_deepcore(dm, seed=4)
    path = tmp_path / "w.weights.h5"
    dm.save_weights(path)
    km.load_weights(path)
    x = _inputs(case)
    _close(dm.predict(x), _keras_predict(km, x))


def test_trained_keras_model_and_weights_from_an_archive(tmp_path):
    """A Keras fit step moves BatchNormalization's moving statistics; load_weights also reads
    the weights inside a .keras archive."""
    km = _cnn(keras)
    km.compile(optimizer="adam", loss="mse")
    x = _inputs("cnn")
    km.fit(x, np.ones((4, 2), "float32"), epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    km.save(path)
    dm = _cnn(dk)
    dm.load_weights(path)
    _close(dm.predict(x), _keras_predict(km, x))


def test_keras_unzipped_directory_loads(tmp_path):
    km = _gru(keras)
    _randomize_keras(km)
    km.save(tmp_path / "m_dir", zipped=False)
    assert (tmp_path / "m_dir").is_dir()
    x = _inputs("gru")
    _close(dk.models.load_model(tmp_path / "m_dir").predict(x), _keras_predict(km, x))


def _rewrite_archive(src, dst, drop=(), weights_edit=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name in drop:
                continue
            data = zin.read(name)
            if name == "model.weights.h5" and weights_edit is not None:
                buf = io.BytesIO(data)
                with h5py.File(buf, "a") as f:
                    weights_edit(f)
                data = buf.getvalue()
            zout.writestr(name, data)


def test_load_model_finds_layers_by_recorded_name(tmp_path):
    """Groups in another order (as another Keras release might write them) are matched by the
    layer names each group records."""
    km = _mlp(keras)
    _randomize_keras(km)
    km.save(tmp_path / "m.keras")

    def swap(f):
        f.move("layers/dense", "layers/tmp")
        f.move("layers/dense_2", "layers/dense")
        f.move("layers/tmp", "layers/dense_2")
    _rewrite_archive(tmp_path / "m.keras", tmp_path / "swapped.keras", weights_edit=swap)
    x = _inputs("mlp")
    _close(dk.models.load_model(tmp_path / "swapped.keras").predict(x), _keras_predict(km, x))


# ---- compile configs ----------------------------------------------------------------------------

def test_compile_config_keras_to_deepcore(tmp_path):
    km = _mlp(keras)
    km.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01, beta_2=0.99),
               loss="categorical_crossentropy", metrics=["accuracy", "mae"])
    km.save(tmp_path / "m.keras")
    dm = dk.models.load_model(tmp_path / "m.keras")
    assert dm.compiled
    opt = dm._optimizer_spec
    assert type(opt) is dk.optimizers.Adam
    assert opt.learning_rate == pytest.approx(0.01) and opt.beta_2 == pytest.approx(0.99)
    assert isinstance(dm.loss, dk.losses.CategoricalCrossentropy)
    assert [m.name for m in dm._metrics] == ["accuracy", "mae"]
    history = dm.fit(_inputs("mlp"), np.eye(3, dtype="float32")[[0, 1, 2, 0]], epochs=1,
                     verbose=0)
    assert set(history.history) == {"loss", "accuracy", "mae"}
    assert not dk.models.load_model(tmp_path / "m.keras", compile=False).compiled


def test_compile_config_deepcore_to_keras(tmp_path):
    dm = _mlp(dk)
    dm.compile(optimizer=dk.optimizers.SGD(0.05, momentum=0.9),
               loss=dk.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    dm.save(tmp_path / "m.keras")
    km = keras.models.load_model(tmp_path / "m.keras")
    assert km.compiled
    assert isinstance(km.optimizer, keras.optimizers.SGD)
    assert float(km.optimizer.learning_rate) == pytest.approx(0.05)
    assert km.optimizer.momentum == pytest.approx(0.9)
    assert isinstance(km.loss, keras.losses.CategoricalCrossentropy)
    assert km.loss.get_config()["from_logits"] is True


# Keras' slot lists per optimizer (its own attributes), with deepcore.optim's state key and the
# factor turning deepcore's value into Keras' (Note [Keras optimizer variables]).
OPTIMIZERS = {
    "adam": ({"learning_rate": 0.01, "amsgrad": True},
             [("_momentums", "exp_avg", 1), ("_velocities", "exp_avg_sq", 1),
              ("_velocity_hats", "max_exp_avg_sq", 1)]),
    "adamw": ({"learning_rate": 0.01, "weight_decay": 0.01},
              [("_momentums", "exp_avg", 1), ("_velocities", "exp_avg_sq", 1)]),
    "sgd": ({"learning_rate": 0.05, "momentum": 0.9}, [("momentums", "momentum_buffer", -0.05)]),
    "rmsprop": ({"learning_rate": 0.01, "momentum": 0.5, "centered": True},
                [("_velocities", "square_avg", 1), ("_momentums", "momentum_buffer", 0.01),
                 ("_average_gradients", "grad_avg", 1)]),
    "adagrad": ({"learning_rate": 0.05}, [("_accumulators", "sum", 1)]),
}
_OPT_CLASSES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop",
                "adagrad": "Adagrad"}


def _check_optimizer_state(km, dm, slots):
    """Keras' slot for each trainable variable against deepcore's state of the parameter
    holding the same values (matched by value, so the check does not rely on any order)."""
    params = [p for g in dm.optimizer.param_groups for p in g["params"]]
    assert len(params) == len(km.trainable_variables)
    for i, var in enumerate(km.trainable_variables):
        value = np.asarray(var.numpy())
        matches = [p for p in params if tuple(p.shape) == value.shape and
                   np.array_equal(p.detach().numpy(), value)]
        assert len(matches) == 1, var.path
        state = dm.optimizer.state[matches[0]]
        for keras_attr, key, scale in slots:
            ref = np.asarray(getattr(km.optimizer, keras_attr)[i].numpy())
            np.testing.assert_allclose(state[key].numpy() * scale, ref, rtol=1e-6, atol=1e-7,
                                       err_msg=f"{var.path} {key}")
        if "step" in state:
            assert float(state["step"]) == int(km.optimizer.iterations.numpy())


def _lstm_data():
    x = _inputs("lstm")
    return x, np.linspace(-1, 1, len(x), dtype="float32")[:, None]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_state_keras_to_deepcore(name, tmp_path):
    kwargs, slots = OPTIMIZERS[name]
    km = _lstm(keras)
    _randomize_keras(km)
    km.compile(optimizer=getattr(keras.optimizers, _OPT_CLASSES[name])(**kwargs), loss="mse")
    km.fit(*_lstm_data(), batch_size=2, epochs=1, shuffle=False, verbose=0)
    km.save(tmp_path / "m.keras")
    dm = dk.models.load_model(tmp_path / "m.keras")
    assert type(dm._optimizer_spec).__name__ == _OPT_CLASSES[name]
    _check_optimizer_state(km, dm, slots)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_state_deepcore_to_keras(name, tmp_path):
    kwargs, slots = OPTIMIZERS[name]
    dm = _lstm(dk)
    _randomize_deepcore(dm)
    dm.compile(optimizer=getattr(dk.optimizers, _OPT_CLASSES[name])(**kwargs), loss="mse")
    dm.fit(*_lstm_data(), batch_size=2, epochs=1, shuffle=False, verbose=0)
    dm.save(tmp_path / "m.keras")
    km = keras.models.load_model(tmp_path / "m.keras")
    _check_optimizer_state(km, dm, slots)
    # The same through .weights.h5 into compiled models, as Keras' load_weights does.
    dm.save_weights(tmp_path / "w.weights.h5")
    km2 = _lstm(keras)
    km2.compile(optimizer=getattr(keras.optimizers, _OPT_CLASSES[name])(**kwargs), loss="mse")
    km2.optimizer.build(km2.trainable_variables)
    km2.load_weights(tmp_path / "w.weights.h5")
    _check_optimizer_state(km2, dm, slots)


def test_optimizer_state_skips_frozen_layers_and_moving_statistics(tmp_path):
    km = _cnn(keras)
    km.layers[0].trainable = False
    _randomize_keras(km)
    km.compile(optimizer="adam", loss="mse")
    km.fit(_inputs("cnn"), np.ones((4, 2), "float32"), batch_size=2, verbose=0)
    km.save(tmp_path / "m.keras")
    dm = dk.models.load_model(tmp_path / "m.keras")
    assert not dm.layers[0].trainable
    _check_optimizer_state(km, dm, OPTIMIZERS["adam"][1][:2])


def test_unsupported_compile_config_loads_uncompiled_with_a_warning(tmp_path):
    km = _mlp(keras)
    km.compile(optimizer=keras.optimizers.SGD(0.1, clipnorm=1.0), loss="mse",
               metrics=[keras.metrics.AUC()])
    km.save(tmp_path / "m.keras")
    with pytest.warns(UserWarning, match=r"uncompiled.*clipnorm=1\.0.*AUC"):
        dm = dk.models.load_model(tmp_path / "m.keras")
    assert not dm.compiled


def test_compiled_with_a_custom_loss_saves_without_compile_config(tmp_path):
    dm = _mlp(dk)
    dm.compile(optimizer="adam", loss=lambda y, p: ((y - p) ** 2).mean(1))
    with pytest.warns(UserWarning, match="compile config is left out.*loss"):
        dm.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        assert json.loads(zf.read("config.json"))["compile_config"] == {}
    assert not keras.models.load_model(tmp_path / "m.keras").compiled


# ---- what is refused, and how -------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="filetests")
class Doubler(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


def _saved(tmp_path, layers):
    km = keras.Sequential([keras.Input((4,))] + layers)
    path = tmp_path / "m.keras"
    km.save(path)
    return path


def test_lambda_layer_is_refused_without_running_its_code(tmp_path, monkeypatch):
    path = _saved(tmp_path, [keras.layers.Lambda(lambda x: x + 1, name="plus_one")])

    def no_unmarshal(*args):
        raise AssertionError("bytecode from the file was unmarshalled")
    monkeypatch.setattr(marshal, "loads", no_unmarshal)
    with pytest.raises(NotImplementedError, match=r"'plus_one' \(Lambda\).*bytecode"):
        dk.models.load_model(path)


def test_unknown_layer_class_is_named(tmp_path):
    path = _saved(tmp_path, [keras.layers.Reshape((2, 2)),
                             keras.layers.GlobalMaxPooling1D(name="gmp")])
    with pytest.raises(NotImplementedError, match=r"'gmp' \(GlobalMaxPooling1D\)"):
        dk.models.load_model(path)


def test_custom_object_is_named(tmp_path):
    path = _saved(tmp_path, [Doubler(name="twice")])
    with pytest.raises(NotImplementedError, match=r"'twice' \(Doubler\).*filetests>Doubler"):
        dk.models.load_model(path)


def test_option_deepcore_lacks_is_named(tmp_path):
    path = _saved(tmp_path, [keras.layers.Reshape((2, 2, 1)),
                             keras.layers.Conv2D(2, 1, groups=1, data_format="channels_first",
                                                 name="cf")])
    with pytest.raises(NotImplementedError, match=r"'cf' \(Conv2D\).*data_format"):
        dk.models.load_model(path)


def test_corrupt_and_incomplete_archives(tmp_path):
    km = _mlp(keras)
    good = tmp_path / "good.keras"
    km.save(good)
    data = good.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[:len(data) // 2])
    with pytest.raises(SerializationError, match=r"cut\.keras.*not a readable Keras 3"):
        dk.models.load_model(tmp_path / "cut.keras")
    for member in ("model.weights.h5", "config.json"):
        _rewrite_archive(good, tmp_path / "part.keras", drop=(member,))
        with pytest.raises(SerializationError, match=rf"part\.keras.*lacks.*'{member}'"):
            dk.models.load_model(tmp_path / "part.keras")

    def truncate(f):
        del f["layers/dense/vars/1"]
    _rewrite_archive(good, tmp_path / "short.keras", weights_edit=truncate)
    with pytest.raises(SerializationError, match=r"'dense\w*' expects 2 array\(s\) \(kernel, "
                                                 r"bias\) in 'layers/dense/vars'"):
        dk.models.load_model(tmp_path / "short.keras")


def test_weights_that_do_not_fit_leave_the_model_unchanged(tmp_path):
    km = keras.Sequential([keras.Input((2, 3)), keras.layers.Flatten(), keras.layers.Dense(8),
                           keras.layers.Dense(7, use_bias=False), keras.layers.Dense(3)])
    km.save_weights(tmp_path / "w.weights.h5")
    dm = _mlp(dk)
    before = [w.copy() for w in dm.get_weights()]
    with pytest.raises(SerializationError, match=r"'layers/dense_1/vars/0'.*\(8, 7\).*"
                                                 r"\(8, 8\)"):
        dm.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(before, dm.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras2_weights_layout_is_named(tmp_path):
    with h5py.File(tmp_path / "old.h5", "w") as f:
        f.attrs["layer_names"] = [b"dense"]
    with pytest.raises(NotImplementedError, match="Keras 2"):
        _mlp(dk).load_weights(tmp_path / "old.h5")


def test_deepcore_models_without_a_keras_form_are_refused(tmp_path):
    class Sub(dk.Model):
        def __init__(self):
            super().__init__()
            self.d = dk.layers.Dense(2)

        def call(self, x):
            return self.d(x)
    sub = Sub()
    sub(dc.randn(3, 4))
    with pytest.raises(NotImplementedError, match="subclassed"):
        sub.save(tmp_path / "s.keras")
    inp = dk.Input((3, 4))
    mha = dk.Model(inp, dk.layers.MultiHeadAttention(2, 2, name="att")(inp, inp))
    with pytest.raises(NotImplementedError, match=r"'att' \(MultiHeadAttention\)"):
        mha.save(tmp_path / "a.keras")
    assert not (tmp_path / "a.keras").exists()


def test_deepcore_own_formats_are_unchanged(tmp_path):
    dm = _mlp(dk)
    _randomize_deepcore(dm)
    dm.save_weights(tmp_path / "w.safetensors")
    assert (tmp_path / "w.safetensors").read_bytes()[:8] != b"\x89HDF\r\n\x1a\n"
    other = _mlp(dk)
    other.load_weights(tmp_path / "w.safetensors")
    dm.save(tmp_path / "m.safetensors")
    x = _inputs("mlp")
    _close(other.predict(x), dm.predict(x))
    _close(dk.models.load_model(tmp_path / "m.safetensors").predict(x), dm.predict(x))
