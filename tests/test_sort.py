"""sort / argsort / topk / kthvalue / msort against PyTorch: values, indices and gradients."""
import numpy as np
import pytest
import torch

import deepcore as dc


@pytest.mark.parametrize("shape,dim", [((7,), 0), ((4, 9), -1), ((4, 9), 0), ((3, 5, 6), 1)])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_and_argsort_match_torch(shape, dim, descending):
    rng = np.random.default_rng(0)
    a = rng.integers(-5, 5, shape).astype(np.float64)  # ties: stable order matters
    d = dc.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    dv, di = dc.sort(d, dim=dim, descending=descending)
    tv, ti = torch.sort(t, dim=dim, descending=descending, stable=True)
    np.testing.assert_array_equal(dv.detach().numpy(), tv.detach().numpy())
    np.testing.assert_array_equal(di.numpy(), ti.numpy())
    np.testing.assert_array_equal(dc.argsort(d, dim, descending).numpy(), ti.numpy())
    g = rng.standard_normal(shape)
    dv.backward(dc.tensor(g))
    tv.backward(torch.tensor(g))
    np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy())


def test_nan_sorts_as_largest():
    a = np.array([3.0, np.nan, -1.0, 2.0])
    np.testing.assert_array_equal(dc.sort(dc.tensor(a)).indices.numpy(),
                                  torch.sort(torch.tensor(a)).indices.numpy())
    np.testing.assert_array_equal(dc.sort(dc.tensor(a), descending=True).indices.numpy(),
                                  torch.sort(torch.tensor(a), descending=True).indices.numpy())


@pytest.mark.parametrize("largest", [True, False])
def test_topk_matches_torch(largest):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 10))
    d, t = dc.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    dv, di = d.topk(3, dim=1, largest=largest)
    tv, ti = t.topk(3, dim=1, largest=largest)
    np.testing.assert_allclose(dv.detach().numpy(), tv.detach().numpy())
    np.testing.assert_array_equal(di.numpy(), ti.numpy())
    dv.sum().backward()
    tv.sum().backward()
    np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy())
    with pytest.raises(IndexError, match="topk"):
        d.topk(11, dim=1)


def test_kthvalue_and_msort():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 7))
    for keepdim in (False, True):
        dv, di = dc.kthvalue(dc.tensor(a), 3, dim=1, keepdim=keepdim)
        tv, ti = torch.kthvalue(torch.tensor(a), 3, dim=1, keepdim=keepdim)
        np.testing.assert_allclose(dv.numpy(), tv.numpy())
        np.testing.assert_array_equal(di.numpy(), ti.numpy())
    np.testing.assert_allclose(dc.msort(dc.tensor(a)).numpy(), torch.msort(torch.tensor(a)).numpy())
    with pytest.raises(IndexError, match="kthvalue"):
        dc.kthvalue(dc.tensor(a), 0)


def test_int_and_thread_count_independence():
    a = np.random.default_rng(3).integers(0, 50, (300, 257))
    ref = torch.sort(torch.tensor(a), dim=1, stable=True).indices.numpy()
    for threads in (1, 2):
        dc.set_num_threads(threads)
        np.testing.assert_array_equal(dc.argsort(dc.tensor(a), 1).numpy(), ref)
