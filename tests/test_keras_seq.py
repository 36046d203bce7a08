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
