"""deepcore.keras' sequence layers against Keras 3 (torch backend): the same weights through
get_weights/set_weights give the same outputs."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import deepcore as dc  # noqa: E402
from deepcore import keras as dk  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # from Keras itself

RTOL, ATOL = 1e-5, 2e-6  # float32 matmuls and transcendentals, summed over a few dozen terms


def _np(t):
    return t.detach().numpy() if isinstance(t, dc.Tensor) else np.asarray(t.detach().cpu())


def _close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol)


# ---- MultiHeadAttention -----------------------------------------------------------------------

@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("value_dim,output_shape", [(None, None), (4, 6)])
def test_multi_head_attention_matches_keras(causal, value_dim, output_shape):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 4, 5)).astype("float32")
    v = rng.standard_normal((2, 6, 7)).astype("float32")
    k = rng.standard_normal((2, 6, 3)).astype("float32")
    mask = rng.random((2, 4, 6)) > 0.3
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=value_dim,
                                          output_shape=output_shape)
    out, scores = ref(q, v, key=k, attention_mask=mask, return_attention_scores=True,
                      use_causal_mask=causal)
    layer = dk.layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=value_dim,
                                         output_shape=output_shape)
    layer(dc.tensor(q), dc.tensor(v), key=dc.tensor(k))
    layer.set_weights(ref.get_weights())
    got, got_scores = layer(dc.tensor(q), dc.tensor(v), key=dc.tensor(k),
                            attention_mask=dc.tensor(mask), return_attention_scores=True,
                            use_causal_mask=causal)
    _close(got, out)
    _close(got_scores, scores)
    # Without the scores the layer takes the fused attention path: same result.
    _close(layer(dc.tensor(q), dc.tensor(v), key=dc.tensor(k), attention_mask=dc.tensor(mask),
                 use_causal_mask=causal), out)
    assert [tuple(w.shape) for w in layer.get_weights()] == \
        [tuple(w.shape) for w in ref.get_weights()]


def test_multi_head_attention_functional_model_and_gradients():
    rng = np.random.default_rng(1)
    q = dc.tensor(rng.standard_normal((3, 4, 8)).astype("float32"))
    inp = dk.Input((4, 8))
    out = dk.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(inp, inp)
    model = dk.Model(inp, dk.layers.Dense(1)(out))
    model.compile(optimizer="adam", loss="mse")
    y = model(q)
    assert tuple(y.shape) == (3, 4, 1)
    y.sum().backward()
    assert all(p.grad is not None for p in model.get_layer("mha").parameters())
    history = model.fit(q.numpy(), np.zeros((3, 4, 1), "float32"), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_multi_head_attention_errors():
    with pytest.raises(ValueError, match="num_heads"):
        dk.layers.MultiHeadAttention(num_heads=0, key_dim=2)
    layer = dk.layers.MultiHeadAttention(num_heads=2, key_dim=2, name="att")
    x = dc.randn(2, 3, 4)
    with pytest.raises(ValueError, match="'att'.*does not broadcast"):
        layer(x, x, attention_mask=dc.ones(2, 5, 3, dtype=dc.bool))
    with pytest.raises(ValueError, match="'att'.*3-D"):
        layer(dc.randn(3, 4), dc.randn(3, 4))
    with pytest.raises(ValueError, match="'att' was built"):
        layer(dc.randn(2, 3, 5), dc.randn(2, 3, 5))


# ---- recurrent layers -------------------------------------------------------------------------

def _pair(ref_layer, our_layer, x, initial_state=None):
    """Builds both layers on x, copies Keras' weights into ours, returns both outputs."""
    ref_kw = {} if initial_state is None else {"initial_state": initial_state}
    our_kw = {} if initial_state is None else \
        {"initial_state": [dc.tensor(s) for s in initial_state]}
    ref_out = ref_layer(x, **ref_kw)
    our_layer(dc.tensor(x), **our_kw)
    our_layer.set_weights(ref_layer.get_weights())
    return ref_out, our_layer(dc.tensor(x), **our_kw)


def _outputs(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


RNN_CASES = [
    ("SimpleRNN", {}), ("SimpleRNN", {"activation": "relu"}),
    ("LSTM", {}), ("GRU", {}), ("GRU", {"reset_after": False}),
]


@pytest.mark.parametrize("cls,kw", RNN_CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("opts", [
    {}, {"return_sequences": True}, {"return_state": True},
    {"return_sequences": True, "return_state": True, "go_backwards": True},
    {"go_backwards": True}, {"use_bias": False, "return_sequences": True},
], ids=lambda v: ",".join(v) or "default")
def test_recurrent_layers_match_keras(cls, kw, opts):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5, 4)).astype("float32")
    ref = getattr(keras.layers, cls)(6, **kw, **opts)
    ours = getattr(dk.layers, cls)(6, **kw, **opts)
    ref_out, our_out = _pair(ref, ours, x)
    assert [tuple(w.shape) for w in ours.get_weights()] == \
        [tuple(w.shape) for w in ref.get_weights()]
    ref_out, our_out = _outputs(ref_out), _outputs(our_out)
    assert len(ref_out) == len(our_out)
    for a, b in zip(our_out, ref_out):
        _close(a, b)


@pytest.mark.parametrize("cls", ["SimpleRNN", "LSTM", "GRU"])
def test_recurrent_initial_state_matches_keras(cls):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    n = 2 if cls == "LSTM" else 1
    init = [rng.standard_normal((2, 5)).astype("float32") for _ in range(n)]
    ref = getattr(keras.layers, cls)(5, return_sequences=True)
    ours = getattr(dk.layers, cls)(5, return_sequences=True)
    ref_out, our_out = _pair(ref, ours, x, initial_state=init)
    _close(our_out, ref_out)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_bidirectional_matches_keras(cls, merge_mode):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 3)).astype("float32")
    ref = keras.layers.Bidirectional(getattr(keras.layers, cls)(4, return_sequences=True),
                                     merge_mode=merge_mode)
    ours = dk.layers.Bidirectional(getattr(dk.layers, cls)(4, return_sequences=True),
                                   merge_mode=merge_mode)
    ref_out, our_out = _pair(ref, ours, x)
    for a, b in zip(_outputs(our_out), _outputs(ref_out)):
        _close(a, b)


def test_bidirectional_return_state_matches_keras():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 3)).astype("float32")
    ref = keras.layers.Bidirectional(keras.layers.LSTM(4, return_state=True))
    ours = dk.layers.Bidirectional(dk.layers.LSTM(4, return_state=True))
    ref_out, our_out = _pair(ref, ours, x)
    assert len(our_out) == len(ref_out) == 5
    for a, b in zip(our_out, ref_out):
        _close(a, b)


def test_recurrent_model_trains_and_round_trips(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((16, 7, 3)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None].astype("float32")
    model = dk.Sequential([dk.layers.Bidirectional(dk.layers.GRU(8, return_sequences=True),
                                                   input_shape=(7, 3)),
                           dk.layers.LSTM(8, dropout=0.1),
                           dk.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, batch_size=8, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after < before
    path = str(tmp_path / "rnn.keras")
    model.save(path)
    loaded = dk.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)


def test_recurrent_layers_errors():
    layer = dk.layers.LSTM(4, name="enc")
    with pytest.raises(ValueError, match="'enc'.*3-D"):
        layer(dc.randn(2, 3))
    layer(dc.randn(2, 3, 5))
    with pytest.raises(ValueError, match="'enc'.*initial state of shape"):
        layer(dc.randn(2, 3, 5), initial_state=[dc.zeros(2, 3), dc.zeros(2, 4)])
    with pytest.raises(ValueError, match="'enc' was built for 5"):
        layer(dc.randn(2, 3, 6))
    with pytest.raises(ValueError, match="recurrent_dropout"):
        dk.layers.GRU(4, recurrent_dropout=0.2)
    with pytest.raises(ValueError, match="merge_mode"):
        dk.layers.Bidirectional(dk.layers.LSTM(3), merge_mode="max")
