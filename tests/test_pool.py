"""max_pool1d / max_pool2d / avg_pool1d / avg_pool2d / adaptive_avg_pool2d / adaptive_max_pool2d
against torch (forward, indices, backward, non-contiguous inputs), gradcheck, errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepcore as dc
import deepcore.nn.functional as F
from helpers import assert_close, check_op, gradcheck_op


def _distinct(rng, shape, dtype, k):
    # Distinct values: the argmax of every window is unique, so gradients are comparable.
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) / n * 4 - 2).astype("f8")


MAX2D_CASES = [
    ((2, 3, 7, 9), {"kernel_size": 2}),
    ((1, 2, 8, 8), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((2, 2, 9, 10), {"kernel_size": (3, 2), "stride": (2, 1), "dilation": (2, 1)}),
    ((2, 3, 7, 7), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
    ((2, 3, 6, 6), {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}),
    ((3, 5, 5), {"kernel_size": 2, "stride": 1}),  # unbatched
]


@pytest.mark.parametrize("shape,kw", MAX2D_CASES)
def test_max_pool2d_matches_torch(shape, kw):
    check_op(lambda x: F.max_pool2d(x, **kw), lambda x: TF.max_pool2d(x, **kw), [(shape,)],
             init=_distinct)
    x = np.random.default_rng(0).standard_normal(shape)
    out, idx = F.max_pool2d(dc.tensor(x), return_indices=True, **kw)
    tout, tidx = TF.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    assert_close(out, tout)
    assert_close(idx, tidx)


def test_max_pool2d_propagates_nan_and_handles_inf():
    x = np.full((1, 1, 4, 4), -np.inf)
    x[0, 0, 1, 1] = np.nan
    out = F.max_pool2d(dc.tensor(x), 2)
    ref = TF.max_pool2d(torch.tensor(x), 2)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


@pytest.mark.parametrize("kw", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2},
                                {"kernel_size": (2, 3), "stride": (1, 2)}])
def test_max_pool2d_ties_and_nans_match_torch_indices(kw):
    # Few distinct values (ties: the first maximum wins) and scattered NaNs (the first NaN of
    # a window wins), through the unpadded-window path and the general one.
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, (2, 3, 9, 11)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    for pad in (0, 1):
        if pad and 2 * pad > min(np.atleast_1d(kw["kernel_size"])):
            continue
        out, idx = F.max_pool2d(dc.tensor(x), padding=pad, return_indices=True, **kw)
        tout, tidx = TF.max_pool2d(torch.tensor(x), padding=pad, return_indices=True, **kw)
        np.testing.assert_array_equal(out.numpy(), tout.numpy())
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@pytest.mark.parametrize("kw", [{"kernel_size": 3}, {"kernel_size": 2, "stride": 1, "padding": 1},
                                {"kernel_size": 3, "stride": 2, "dilation": 2, "ceil_mode": True}])
def test_max_pool1d_matches_torch(kw):
    check_op(lambda x: F.max_pool1d(x, **kw), lambda x: TF.max_pool1d(x, **kw),
             [((2, 3, 13),), ((3, 11),)], init=_distinct)


AVG2D_CASES = [
    ((2, 3, 7, 9), {"kernel_size": 2}),
    ((1, 2, 8, 8), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 2, 8, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ((2, 3, 7, 7), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ((2, 3, 7, 7), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                    "count_include_pad": False}),
    ((2, 2, 6, 5), {"kernel_size": (2, 3), "stride": (1, 2), "divisor_override": 5}),
    ((3, 5, 5), {"kernel_size": 2}),
]


@pytest.mark.parametrize("shape,kw", AVG2D_CASES)
def test_avg_pool2d_matches_torch(shape, kw):
    check_op(lambda x: F.avg_pool2d(x, **kw), lambda x: TF.avg_pool2d(x, **kw), [(shape,)])


def test_avg_pool1d_matches_torch():
    kw = {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}
    check_op(lambda x: F.avg_pool1d(x, **kw), lambda x: TF.avg_pool1d(x, **kw), [((2, 3, 10),)])


@pytest.mark.parametrize("shape,size", [((2, 3, 7, 9), (3, 4)), ((2, 3, 8, 8), 1),
                                        ((1, 2, 5, 7), (7, 3)), ((3, 10, 6), (4, None))])
def test_adaptive_pools_match_torch(shape, size):
    check_op(lambda x: F.adaptive_avg_pool2d(x, size), lambda x: TF.adaptive_avg_pool2d(x, size),
             [(shape,)])
    check_op(lambda x: F.adaptive_max_pool2d(x, size), lambda x: TF.adaptive_max_pool2d(x, size),
             [(shape,)], init=_distinct)
    x = np.random.default_rng(1).standard_normal(shape)
    _, idx = F.adaptive_max_pool2d(dc.tensor(x), size, return_indices=True)
    _, tidx = TF.adaptive_max_pool2d(torch.tensor(x), size, return_indices=True)
    assert_close(idx, tidx)


def test_pool_gradcheck_and_double_backward():
    assert gradcheck_op(lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                        [(1, 2, 6, 5)])
    assert gradcheck_op(lambda x: F.adaptive_avg_pool2d(x, (2, 3)), [(1, 2, 5, 7)])
    assert gradcheck_op(lambda x: F.max_pool2d(x, 2), [(1, 2, 4, 6)], init=_distinct)
    rng = np.random.default_rng(3)
    x = dc.tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
    assert dc.autograd.gradgradcheck(lambda t: F.avg_pool2d(t, 2, 1) ** 2, [x])
    assert dc.autograd.gradgradcheck(lambda t: F.max_pool2d(t, 2, 1) ** 2,
                                     [dc.tensor(_distinct(rng, (1, 1, 4, 4), None, 0),
                                                requires_grad=True)])


def test_pool_errors_name_the_op():
    x = dc.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"\[max_pool2d\] pad should be at most half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"\[max_pool2d\] output size"):
        F.max_pool2d(x, 5)
    with pytest.raises(ValueError, match=r"\[avg_pool2d\].*3-D .* or 4-D"):
        F.avg_pool2d(dc.zeros(4, 4), 2)
    with pytest.raises(ValueError, match=r"\[adaptive_avg_pool2d\] output_size"):
        F.adaptive_avg_pool2d(x, 0)
    with pytest.raises(TypeError, match=r"\[max_pool2d\]"):
        F.max_pool2d(dc.zeros(1, 2, 4, 4, dtype=dc.int64), 2)
    with pytest.raises(ValueError, match=r"\[avg_pool2d\] divisor"):
        F.avg_pool2d(x, 2, divisor_override=0)
