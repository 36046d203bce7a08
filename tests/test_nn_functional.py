"""deepcore.nn.functional vs torch.nn.functional: forward, backward, gradcheck, bad input."""
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepcore as dc
import deepcore.nn.functional as F
from deepcore.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(1234)
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.fixture(autouse=True)
def _fresh_rng(request):
    """Each test draws the same data whatever ran before it (failures reproduce alone)."""
    global RNG
    RNG = np.random.default_rng(zlib.crc32(request.node.name.encode()))


def _np(t):
    return np.asarray(t.detach()) if isinstance(t, dc.Tensor) else t.detach().numpy()


def compare(dc_fn, t_fn, arrays, grad=(0,), views=None, dtype=np.float64, tol=None):
    """Runs both frameworks on the same data; `views[i]` maps leaf i to the op's argument
    (transposes etc. give non-contiguous inputs). Compares outputs and the leaves' gradients
    for a random upstream gradient."""
    tol = tol or TOL[dtype]
    views = views or {}
    dcs, ts = [], []
    for i, a in enumerate(arrays):
        if a is None:
            dcs.append(None), ts.append(None)
            continue
        a = np.asarray(a)
        if a.dtype.kind == "f":
            a = a.astype(dtype)
        rg = i in grad
        dcs.append(dc.tensor(a, requires_grad=rg))
        ts.append(torch.tensor(a, requires_grad=rg))
    dargs = [views[i](d) if i in views and d is not None else d for i, d in enumerate(dcs)]
    targs = [views[i](t) if i in views and t is not None else t for i, t in enumerate(ts)]
    out_d, out_t = dc_fn(*dargs), t_fn(*targs)
    assert tuple(out_d.shape) == tuple(out_t.shape)
    assert out_d.dtype == getattr(dc, str(out_t.dtype).replace("torch.", ""))
    np.testing.assert_allclose(_np(out_d), _np(out_t), **tol)
    if not grad:
        return out_d
    g = RNG.standard_normal(tuple(out_t.shape)).astype(dtype)
    out_t.backward(torch.tensor(g))
    out_d.backward(dc.tensor(g))
    for i in grad:
        assert dcs[i].grad is not None, f"no gradient for input {i}"
        np.testing.assert_allclose(_np(dcs[i].grad), _np(ts[i].grad), **tol)
    return out_d


def randn(*shape):
    return RNG.standard_normal(shape)


def leaf(a, rg=True):
    return dc.tensor(np.asarray(a, dtype=np.float64), requires_grad=rg)


# ---- softmax / log_softmax -----------------------------------------------------------------

SOFTMAX_CASES = [((7,), 0), ((3, 5), 1), ((3, 5), 0), ((2, 3, 4), 1), ((2, 3, 4), -1),
                 ((4, 1, 33), 0), ((2, 67, 3), 1), ((3, 130), -1), ((5, 2, 70), 1), ((1,), 0)]


@pytest.mark.parametrize("shape,dim", SOFTMAX_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family(shape, dim, dtype, name):
    x = randn(*shape) * 3
    compare(lambda a: getattr(F, name)(a, dim), lambda a: getattr(TF, name)(a, dim), [x],
            dtype=dtype)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_non_contiguous_and_entry_points(name):
    x = randn(6, 4, 5)
    perm = lambda t: t.permute(2, 0, 1)  # noqa: E731
    for dim in range(3):
        compare(lambda a: getattr(F, name)(a, dim), lambda a: getattr(TF, name)(a, dim), [x],
                views={0: perm})
    xt = dc.tensor(x)
    ref = getattr(TF, name)(torch.tensor(x), 1).numpy()
    np.testing.assert_allclose(_np(getattr(dc, name)(xt, 1)), ref, rtol=1e-12)
    np.testing.assert_allclose(_np(getattr(xt, name)(1)), ref, rtol=1e-12)
    np.testing.assert_allclose(_np(getattr(xt, name)(dim=1)), ref, rtol=1e-12)
    # dtype= casts first; integer input is accepted that way.
    xi = dc.tensor([[1, 2, 3]])
    out = getattr(F, name)(xi, -1, dtype=dc.float64)
    assert out.dtype == dc.float64
    ref_i = getattr(TF, name)(torch.tensor([[1, 2, 3]]), -1, dtype=torch.float64).numpy()
    np.testing.assert_allclose(_np(out), ref_i, rtol=1e-12)
    with pytest.raises(TypeError, match=name):
        getattr(F, name)(xi, -1)
    with pytest.raises(IndexError, match=name):
        getattr(F, name)(dc.tensor(x), 3)
    # Legacy implicit dim (with a deprecation warning).
    with pytest.warns(UserWarning):
        out = getattr(F, name)(dc.tensor(x[0]))
    np.testing.assert_allclose(_np(out), getattr(TF, name)(torch.tensor(x[0]), 1).numpy(),
                               rtol=1e-12)


def test_softmax_large_values_and_scalar():
    x = np.array([[1000.0, 1001.0, -1000.0], [-5e4, -5e4, -5e4]])
    compare(lambda a: F.softmax(a, 1), lambda a: TF.softmax(a, 1), [x])
    compare(lambda a: F.log_softmax(a, 1), lambda a: TF.log_softmax(a, 1), [x])
    s = dc.tensor(2.5, requires_grad=True)
    assert F.softmax(s, 0).item() == 1.0 and F.log_softmax(s, 0).item() == 0.0


def test_softmin_and_softmax_gradcheck():
    compare(lambda a: F.softmin(a, 1), lambda a: TF.softmin(a, 1), [randn(3, 4)])
    for dim in (0, 1, 2):
        x = leaf(randn(3, 4, 5))
        assert gradcheck(lambda a: F.softmax(a, dim), [x])
        assert gradcheck(lambda a: F.log_softmax(a, dim), [x])
        assert gradgradcheck(lambda a: F.softmax(a, dim), [x])
        assert gradgradcheck(lambda a: F.log_softmax(a, dim), [x])


# ---- cross_entropy / nll_loss -----------------------------------------------------------

def class_targets(shape, C, ignore=None, frac=0.3):
    t = RNG.integers(0, C, size=shape)
    if ignore is not None:
        t = np.where(RNG.random(shape) < frac, ignore, t)
    return t.astype(np.int64)


CE_SHAPES = [(6, 5), (4, 3, 2, 3), (5,), (2, 4, 7)]


@pytest.mark.parametrize("shape", CE_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("ignore", [None, -100, 1])
def test_cross_entropy_class_indices(shape, reduction, weighted, smoothing, ignore):
    C = shape[0] if len(shape) == 1 else shape[1]
    batch = () if len(shape) == 1 else (shape[0],) + shape[2:]
    x = randn(*shape) * 2
    t = class_targets(batch, C, ignore)
    if ignore is not None and len(shape) > 1:
        t.reshape(-1)[0] = RNG.integers(0, C) if ignore < 0 else (ignore + 1) % C  # one kept
    w = RNG.random(C) + 0.5 if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    if ignore is not None:
        kw["ignore_index"] = ignore
    compare(lambda a, b, c: F.cross_entropy(a, b, c, **kw),
            lambda a, b, c: TF.cross_entropy(a, b, c, **kw), [x, t, w])


@pytest.mark.parametrize("shape", CE_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_probabilities(shape, reduction, weighted, smoothing):
    C = shape[0] if len(shape) == 1 else shape[1]
    x = randn(*shape)
    p = np.exp(randn(*shape))
    p /= p.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    w = RNG.random(C) + 0.5 if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    compare(lambda a, b, c: F.cross_entropy(a, b, c, **kw),
            lambda a, b, c: TF.cross_entropy(a, b, c, **kw), [x, p, w], grad=(0, 1))


def test_cross_entropy_non_contiguous_and_float32():
    x = randn(5, 8)  # leaf is (C, N); the op sees its transpose
    t = class_targets((8,), 5)
    tr = lambda a: a.transpose(0, 1)  # noqa: E731
    for dtype in (np.float32, np.float64):
        compare(lambda a, b: F.cross_entropy(a, b), lambda a, b: TF.cross_entropy(a, b), [x, t],
                views={0: tr}, dtype=dtype)
    x4 = randn(2, 3, 4, 5)
    t4 = class_targets((2, 5, 3), 4)
    compare(lambda a, b: F.cross_entropy(a, b, reduction="none"),
            lambda a, b: TF.cross_entropy(a, b, reduction="none"), [x4, t4],
            views={0: lambda a: a.permute(0, 2, 3, 1)})


def test_cross_entropy_all_ignored_is_nan_like_torch():
    x = randn(3, 4)
    t = np.full(3, -100)
    out = F.cross_entropy(dc.tensor(x), dc.tensor(t))
    assert np.isnan(out.item()) and np.isnan(TF.cross_entropy(torch.tensor(x), torch.tensor(t)).item())


@pytest.mark.parametrize("shape", CE_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(shape, reduction, weighted):
    C = shape[0] if len(shape) == 1 else shape[1]
    batch = () if len(shape) == 1 else (shape[0],) + shape[2:]
    x = randn(*shape)
    t = class_targets(batch, C, ignore=-100 if len(shape) > 1 else None)
    if len(shape) > 1:
        t.reshape(-1)[0] = 0
    w = RNG.random(C) + 0.5 if weighted else None
    compare(lambda a, b, c: F.nll_loss(a, b, c, reduction=reduction),
            lambda a, b, c: TF.nll_loss(a, b, c, reduction=reduction), [x, t, w])
    compare(lambda a, b, c: F.nll_loss(a, b, c, reduction=reduction, ignore_index=1),
            lambda a, b, c: TF.nll_loss(a, b, c, reduction=reduction, ignore_index=1),
            [x, np.where(t < 0, 0, t), w])


def test_cross_entropy_gradcheck():
    x = leaf(randn(4, 5))
    t = dc.tensor([1, 0, -100, 4])
    w = dc.tensor(RNG.random(5) + 0.5)
    for kw in (dict(), dict(weight=w), dict(label_smoothing=0.25, weight=w),
               dict(reduction="none", label_smoothing=0.1), dict(reduction="sum")):
        assert gradcheck(lambda a: F.cross_entropy(a, t, **kw), [x])
        assert gradgradcheck(lambda a: F.cross_entropy(a, t, **kw), [x])
        assert gradcheck(lambda a: F.nll_loss(a, t, **{k: v for k, v in kw.items()
                                                      if k != "label_smoothing"}), [x])
    p = leaf(np.abs(randn(4, 5)))
    assert gradcheck(lambda a, b: F.cross_entropy(a, b, weight=w, label_smoothing=0.2), [x, p])
    assert gradgradcheck(lambda a, b: F.cross_entropy(a, b, reduction="none"), [x, p])
    x3 = leaf(randn(2, 3, 4))
    t3 = dc.tensor(class_targets((2, 4), 3))
    assert gradcheck(lambda a: F.cross_entropy(a, t3, reduction="none"), [x3])


def test_cross_entropy_bad_inputs():
    x = dc.tensor(randn(3, 5))
    with pytest.raises(IndexError, match=r"cross_entropy.*\b7\b.*C = 5"):
        F.cross_entropy(x, dc.tensor([0, 7, 1]))
    with pytest.raises(IndexError, match=r"cross_entropy.*-3"):
        F.cross_entropy(x, dc.tensor([0, -3, 1]))
    with pytest.raises(IndexError, match=r"nll_loss.*\b5\b"):
        F.nll_loss(x, dc.tensor([0, 5, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy.*\(3,\).*\(4,\)"):
        F.cross_entropy(x, dc.tensor([0, 1, 1, 2]))
    with pytest.raises(ValueError, match="cross_entropy.*reduction"):
        F.cross_entropy(x, dc.tensor([0, 1, 1]), reduction="avg")
    with pytest.raises(ValueError, match="nll_loss.*reduction"):
        F.nll_loss(x, dc.tensor([0, 1, 1]), reduction="bogus")
    with pytest.raises(ValueError, match="cross_entropy.*weight"):
        F.cross_entropy(x, dc.tensor([0, 1, 1]), weight=dc.ones(4))
    with pytest.raises(ValueError, match="cross_entropy.*label_smoothing"):
        F.cross_entropy(x, dc.tensor([0, 1, 1]), label_smoothing=1.5)
    with pytest.raises(TypeError, match="cross_entropy"):
        F.cross_entropy(x, dc.tensor([0.0, 1.0, 1.0]))


# ---- pointwise losses -------------------------------------------------------------------

POINTWISE = [
    ("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}),
    ("smooth_l1_loss", {"beta": 0.0}), ("huber_loss", {}), ("huber_loss", {"delta": 0.4}),
    ("huber_loss", {"delta": 2.5}),
]


@pytest.mark.parametrize("name,kw", POINTWISE)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_pointwise_losses(name, kw, reduction):
    x, y = randn(4, 6), randn(4, 6)
    compare(lambda a, b: getattr(F, name)(a, b, reduction=reduction, **kw),
            lambda a, b: getattr(TF, name)(a, b, reduction=reduction, **kw), [x, y], grad=(0, 1))
    # non-contiguous input and target
    compare(lambda a, b: getattr(F, name)(a, b, reduction=reduction, **kw),
            lambda a, b: getattr(TF, name)(a, b, reduction=reduction, **kw),
            [randn(6, 4), randn(6, 4)], grad=(0, 1), views={0: lambda t: t.T, 1: lambda t: t.T},
            dtype=np.float32)
    xl, yl = leaf(randn(3, 4)), leaf(randn(3, 4))
    assert gradcheck(lambda a, b: getattr(F, name)(a, b, reduction=reduction, **kw), [xl, yl])


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weighted_pointwise_losses(name, reduction):
    x, y, w = randn(3, 5), randn(3, 5), RNG.random((3, 5))
    compare(lambda a, b, c: getattr(F, name)(a, b, reduction=reduction, weight=c),
            lambda a, b, c: getattr(TF, name)(a, b, reduction=reduction, weight=c), [x, y, w],
            grad=(0,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy(reduction, weighted):
    p = RNG.uniform(0.02, 0.98, (5, 4))
    p[0, 0], p[1, 1] = 0.0, 1.0  # log clamped at -100 like torch
    y = RNG.random((5, 4))
    w = RNG.random((5, 4)) + 0.5 if weighted else None
    # At p = 0 / 1 the gradient is (p - y) / 1e-12 ~ 1e12: rounding order shows at ~1e-9.
    compare(lambda a, b, c: F.binary_cross_entropy(a, b, c, reduction=reduction),
            lambda a, b, c: TF.binary_cross_entropy(a, b, c, reduction=reduction), [p, y, w],
            grad=(0, 1), tol=dict(rtol=1e-8, atol=1e-12))
    pl = leaf(RNG.uniform(0.1, 0.9, (3, 4)))
    yl = leaf(RNG.random((3, 4)))
    assert gradcheck(lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction), [pl, yl])
    assert gradgradcheck(lambda a: F.binary_cross_entropy(a, yl.detach(), reduction=reduction),
                         [pl])


@pytest.mark.parametrize("lib", [dc, torch], ids=["deepcore", "torch"])
@pytest.mark.parametrize("arg", ["weight", "pos_weight"])
@pytest.mark.parametrize("logits", [False, True])
def test_binary_cross_entropy_refuses_a_weight_that_requires_grad(lib, arg, logits):
    """No derivative exists for weight / pos_weight: torch refuses them requiring grad (under
    grad mode only), rather than leaving them without a gradient."""
    if arg == "pos_weight" and not logits:
        pytest.skip("binary_cross_entropy has no pos_weight")
    fn = (lib.nn.functional.binary_cross_entropy_with_logits if logits
          else lib.nn.functional.binary_cross_entropy)
    p = lib.tensor([[0.3, 0.6], [0.2, 0.9]], requires_grad=True)
    y = lib.tensor([[0.0, 1.0], [1.0, 0.0]])
    w = lib.tensor([0.5, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=f"not differentiable with respect to argument '{arg}'"):
        fn(p, y, **{arg: w})
    with lib.no_grad():
        fn(p, y, **{arg: w})


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos", [False, True])
def test_binary_cross_entropy_with_logits(reduction, weighted, pos):
    x = randn(5, 4) * 10
    x[0, :2] = [80.0, -80.0]  # large logits stay finite
    y = RNG.random((5, 4))
    w = RNG.random((5, 4)) + 0.5 if weighted else None
    pw = RNG.random(4) * 3 if pos else None
    compare(lambda a, b, c, d: F.binary_cross_entropy_with_logits(a, b, c, reduction=reduction,
                                                                  pos_weight=d),
            lambda a, b, c, d: TF.binary_cross_entropy_with_logits(a, b, c, reduction=reduction,
                                                                   pos_weight=d),
            [x, y, w, pw], grad=(0, 1), tol=dict(rtol=1e-7, atol=1e-10))
    xl, yl = leaf(randn(3, 4)), leaf(RNG.random((3, 4)))
    assert gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(
        a, b, reduction=reduction, pos_weight=dc.tensor(pw) if pos else None), [xl, yl])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    x = np.log(RNG.dirichlet(np.ones(5), size=4))
    t = RNG.dirichlet(np.ones(5), size=4)
    t[0, 1] = 0.0  # zero target probability contributes 0
    if log_target:
        t = np.log(t + 0.1)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fns = (lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
                   lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target))
            # A zero target's own gradient is NaN in PyTorch (log 0) and 0 here; the input's
            # gradient matches either way.
            compare(*fns, [x, t], grad=(0,) if not log_target else (0, 1))
            compare(*fns, [x, np.abs(t) + 0.05], grad=(0, 1))
            xl = leaf(x)
            tl = leaf(np.abs(t) + 0.1)
            assert gradcheck(lambda a, b: F.kl_div(a, b, reduction=reduction,
                                                  log_target=log_target), [xl, tl])


def test_pointwise_bad_inputs():
    x = dc.randn(3, 4)
    for name in ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                 "binary_cross_entropy_with_logits", "kl_div"]:
        with pytest.raises(ValueError, match=rf"{name}.*\(3, 4\).*\(4,\)"):
            getattr(F, name)(x, dc.randn(4))
        with pytest.raises(ValueError, match=name):
            getattr(F, name)(x, dc.randn(3, 4), reduction="bogus")
    with pytest.raises(ValueError, match=r"binary_cross_entropy.*\(3, 4\).*\(3,\)"):
        F.binary_cross_entropy(dc.rand(3, 4), dc.rand(3))
    with pytest.raises((RuntimeError, ValueError), match="binary_cross_entropy.*between 0 and 1"):
        F.binary_cross_entropy(dc.tensor([0.5, 1.5]), dc.tensor([0.0, 1.0]))
    with pytest.raises((RuntimeError, ValueError), match="binary_cross_entropy"):
        F.binary_cross_entropy(dc.tensor([0.5, float("nan")]), dc.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="huber_loss.*delta"):
        F.huber_loss(x, x, delta=0.0)
    with pytest.raises(ValueError, match="smooth_l1_loss.*beta"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="mse_loss.*weight"):
        F.mse_loss(x, x, weight=dc.ones(4))


# ---- layer_norm / rms_norm ------------------------------------------------------------------

NORM_CASES = [((4, 7), (7,)), ((2, 3, 5), (3, 5)), ((3, 130), (130,)), ((5, 1), (1,)),
              ((2, 2, 33), (33,))]


@pytest.mark.parametrize("shape,ns", NORM_CASES)
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm(shape, ns, affine, dtype):
    x = randn(*shape) * 3 + 1
    w = randn(*ns) if affine != "none" else None
    b = randn(*ns) if affine == "both" else None
    grad = (0,) + ((1,) if w is not None else ()) + ((2,) if b is not None else ())
    # float32 atol: with N = 1 the true dx is 0 but rstd = 1/sqrt(eps) ~ 316 amplifies rounding.
    tol = dict(rtol=1e-4, atol=5e-4) if dtype == np.float32 else None
    compare(lambda a, c, d: F.layer_norm(a, ns, c, d), lambda a, c, d: TF.layer_norm(a, ns, c, d),
            [x, w, b], grad=grad, dtype=dtype, tol=tol)
    compare(lambda a, c: F.rms_norm(a, ns, c), lambda a, c: TF.rms_norm(a, ns, c),
            [x, w], grad=grad[:2], dtype=dtype, tol=tol)
    compare(lambda a, c: F.rms_norm(a, ns, c, eps=1e-3), lambda a, c: TF.rms_norm(a, ns, c, 1e-3),
            [x, w], grad=grad[:2], dtype=dtype, tol=tol)


def test_layer_norm_non_contiguous_and_gradcheck():
    x = randn(6, 4)
    compare(lambda a, c, d: F.layer_norm(a, 6, c, d, eps=1e-3),
            lambda a, c, d: TF.layer_norm(a, (6,), c, d, eps=1e-3),
            [x, randn(6), randn(6)], grad=(0, 1, 2), views={0: lambda t: t.T})
    xl, wl, bl = leaf(randn(3, 2, 4)), leaf(randn(2, 4)), leaf(randn(2, 4))
    assert gradcheck(lambda a, c, d: F.layer_norm(a, (2, 4), c, d), [xl, wl, bl])
    assert gradgradcheck(lambda a, c, d: F.layer_norm(a, (2, 4), c, d), [xl, wl, bl])
    assert gradcheck(lambda a: F.layer_norm(a, (4,)), [xl])
    assert gradcheck(lambda a, c: F.rms_norm(a, (4,), c[0], eps=1e-6), [xl, wl])
    assert gradgradcheck(lambda a, c: F.rms_norm(a, (2, 4), c), [xl, wl])


def test_norm_bad_inputs():
    x = dc.randn(2, 3)
    with pytest.raises(ValueError, match=r"layer_norm.*\(4,\).*\(2, 3\)"):
        F.layer_norm(x, (4,))
    with pytest.raises(ValueError, match=r"layer_norm.*weight.*\(2,\)"):
        F.layer_norm(x, (3,), dc.ones(2))
    with pytest.raises(ValueError, match=r"rms_norm.*\(2, 2, 3\)"):
        F.rms_norm(x, (2, 2, 3))
    with pytest.raises(TypeError, match="layer_norm"):
        F.layer_norm(dc.tensor([[1, 2]]), (2,))


# ---- dropout --------------------------------------------------------------------------------

def test_dropout_statistics_and_backward():
    x = dc.ones(200, 500, requires_grad=True)
    dc.manual_seed(0)
    y = F.dropout(x, p=0.3)
    a = np.asarray(y.detach())
    kept = a != 0
    assert abs(kept.mean() - 0.7) < 0.01  # 100k draws: sd ~ 0.0015
    np.testing.assert_allclose(a[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), a)  # same mask, same scale

    def reseeded(t):  # the same mask on every evaluation, so finite differences see one function
        dc.manual_seed(3)
        return F.dropout(t, 0.4)

    assert gradcheck(reseeded, [leaf(randn(3, 4))])


def test_dropout_reproducible_and_thread_independent():
    x = dc.randn(300, 301)  # large enough to run in parallel
    old = dc.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, 1):
            dc.set_num_threads(threads)
            dc.manual_seed(42)
            outs.append(np.asarray(F.dropout(x, 0.5)))
        np.testing.assert_array_equal(outs[0], outs[1])
        np.testing.assert_array_equal(outs[0], outs[2])
        dc.manual_seed(42)
        F.dropout(x, 0.5)
        second = np.asarray(F.dropout(x, 0.5))
        assert not np.array_equal(second, outs[0])  # the generator advances
    finally:
        dc.set_num_threads(old)


def test_dropout_special_cases():
    x = dc.randn(4, 5, requires_grad=True)
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.9, training=False) is x
    z = F.dropout(x, 1.0)
    assert np.all(np.asarray(z.detach()) == 0)
    z.sum().backward()
    assert np.all(np.asarray(x.grad) == 0)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="dropout"):
            F.dropout(x, p)
    y = dc.ones(50, 50)
    dc.manual_seed(7)
    ref = np.asarray(F.dropout(y, 0.5))
    dc.manual_seed(7)
    out = F.dropout(y, 0.5, inplace=True)
    assert out is y
    np.testing.assert_array_equal(np.asarray(y), ref)
    # gradient through a dropout of a float64 leaf is exactly the scaled mask
    xl = leaf(randn(6, 7))
    dc.manual_seed(1)
    d = F.dropout(xl, 0.25)
    mask = (np.asarray(d.detach()) != 0) / 0.75
    d.backward(dc.ones(6, 7, dtype=dc.float64))
    np.testing.assert_allclose(np.asarray(xl.grad), mask, rtol=1e-15)


# ---- activations and linear -------------------------------------------------------------------

ACTIVATIONS = [
    ("relu", {}), ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("sigmoid", {}),
    ("tanh", {}), ("softplus", {}), ("softplus", {"beta": 2.0, "threshold": 5.0}),
    ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {}),
    ("elu", {"alpha": 0.5}), ("selu", {}), ("celu", {"alpha": 1.5}), ("hardtanh", {}),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("relu6", {}), ("hardsigmoid", {}),
    ("hardswish", {}), ("logsigmoid", {}), ("mish", {}), ("softsign", {}), ("tanhshrink", {}),
]


@pytest.mark.parametrize("name,kw", ACTIVATIONS)
def test_activations(name, kw):
    x = randn(5, 7) * 4
    compare(lambda a: getattr(F, name)(a, **kw), lambda a: getattr(TF, name)(a, **kw), [x],
            tol=dict(rtol=1e-7, atol=1e-9))


@pytest.mark.parametrize("name", ["relu", "silu", "leaky_relu", "elu", "selu", "celu", "hardtanh",
                                  "relu6", "hardsigmoid", "hardswish", "mish"])
def test_activation_inplace(name):
    x = randn(4, 5) * 3
    a = dc.tensor(x)
    out = getattr(F, name)(a, inplace=True)
    assert out is a
    np.testing.assert_allclose(np.asarray(a), getattr(TF, name)(torch.tensor(x)).numpy(),
                               rtol=1e-7, atol=1e-9)


def test_linear():
    compare(lambda a, w, b: F.linear(a, w, b), lambda a, w, b: TF.linear(a, w, b),
            [randn(3, 4), randn(5, 4), randn(5)], grad=(0, 1, 2))
    compare(lambda a, w: F.linear(a, w), lambda a, w: TF.linear(a, w),
            [randn(2, 3, 4), randn(5, 4)], grad=(0, 1))


def test_legacy_reduction_flags():
    x, y = randn(3, 4), randn(3, 4)
    with pytest.warns(UserWarning):
        out = F.mse_loss(dc.tensor(x), dc.tensor(y), size_average=False)
    np.testing.assert_allclose(out.item(), ((x - y) ** 2).sum(), rtol=1e-12)


def test_registry_lists_nn_ops():
    family = {op["name"]: op["family"] for op in dc._C._op_registry()}
    assert {n: family.get(n) for n in ["softmax", "log_softmax"]} == dict.fromkeys(
        ["softmax", "log_softmax"], "softmax")
    for n in ["cross_entropy", "nll_loss", "binary_cross_entropy", "kl_div"]:
        assert family.get(n) == "loss", n
    for n in ["layer_norm", "rms_norm", "batch_norm"]:
        assert family.get(n) == "norm", n
    assert family.get("dropout") == "dropout"
