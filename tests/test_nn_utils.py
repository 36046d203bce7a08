"""deepcore.nn.utils against torch.nn.utils 2.13.0: gradient clipping and parameter/vector
conversion on the same model and gradients."""
import deepcore as dc
import numpy as np
import pytest
import torch
from deepcore import nn

RNG = np.random.default_rng(1)


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach())


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def copy_torch_weights(tmod, dmod):
    dmod.load_state_dict({k: dc.tensor(v.detach().numpy()) for k, v in tmod.state_dict().items()})


# ---- nn.utils --------------------------------------------------------------------------------

def _models_with_grads():
    tm = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    dm = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    copy_torch_weights(tm, dm)
    x = randn(6, 5) * 4
    tm(torch.tensor(x)).pow(2).sum().backward()
    (dm(dc.tensor(x)) ** 2).sum().backward()
    return tm, dm


@pytest.mark.parametrize("norm_type", [2.0, 1, float("inf"), 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    tm, dm = _models_with_grads()
    t_total = torch.nn.utils.clip_grad_norm_(tm.parameters(), max_norm, norm_type)
    d_total = nn.utils.clip_grad_norm_(dm.parameters(), max_norm, norm_type)
    assert isinstance(d_total, dc.Tensor) and d_total.dim() == 0
    np.testing.assert_allclose(float(d_total), float(t_total), rtol=1e-5)
    for tp, dp in zip(tm.parameters(), dm.parameters()):
        np.testing.assert_allclose(_np(dp.grad), _np(tp.grad), rtol=1e-4, atol=1e-6)


def test_clip_grad_norm_edge_cases():
    p = nn.Parameter(dc.ones(3))
    assert float(nn.utils.clip_grad_norm_([p], 1.0)) == 0.0  # no grads: zero norm
    p.grad = dc.tensor([3.0, 4.0, 0.0])
    total = nn.utils.clip_grad_norm_(p, 1.0)  # a single tensor is accepted
    assert abs(float(total) - 5.0) < 1e-6
    np.testing.assert_allclose(_np(p.grad), [0.6, 0.8, 0.0], rtol=1e-5)
    p.grad = dc.tensor([float("nan"), 1.0, 0.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_clip_grad_value_and_vector_conversion():
    tm, dm = _models_with_grads()
    torch.nn.utils.clip_grad_value_(tm.parameters(), 0.3)
    nn.utils.clip_grad_value_(dm.parameters(), 0.3)
    for tp, dp in zip(tm.parameters(), dm.parameters()):
        np.testing.assert_allclose(_np(dp.grad), _np(tp.grad), rtol=1e-5, atol=1e-7)
    tv = torch.nn.utils.parameters_to_vector(tm.parameters())
    dv = nn.utils.parameters_to_vector(dm.parameters())
    np.testing.assert_allclose(_np(dv), _np(tv), rtol=1e-6)
    new = dc.tensor(np.arange(dv.shape[0], dtype=np.float32))
    params = list(dm.parameters())
    nn.utils.vector_to_parameters(new, dm.parameters())
    assert [id(p) for p in dm.parameters()] == [id(p) for p in params]
    np.testing.assert_array_equal(_np(dm[0].weight).ravel(), np.arange(35))
    np.testing.assert_array_equal(_np(dm[2].bias), np.arange(dv.shape[0] - 3, dv.shape[0]))
    with pytest.raises(TypeError):
        nn.utils.vector_to_parameters([1.0], dm.parameters())
