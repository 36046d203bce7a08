"""conv1d / conv2d / conv_transpose1d / conv_transpose2d / pad against torch, forward and
backward (float32/float64, non-contiguous inputs via check_op), float64 finite-difference
gradcheck and gradgradcheck, and bad-input errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepcore as dc
import deepcore.nn.functional as F
from helpers import assert_close, check_op, gradcheck_op

# (input shape, weight shape, kwargs): odd sizes, stride > 1, padding (incl. 'same'/'valid'),
# dilation, groups (incl. depthwise), batch 1, 1x1 (the direct-GEMM path).
CONV2D_CASES = [
    ((2, 3, 7, 9), (4, 3, 3, 3), {}),
    ((1, 3, 8, 8), (5, 3, 3, 3), {"padding": 1}),
    ((2, 4, 11, 10), (6, 2, 3, 2), {"stride": 2, "padding": (1, 0), "groups": 2}),
    ((2, 3, 9, 9), (4, 3, 3, 3), {"dilation": 2, "padding": 2, "stride": (1, 2)}),
    ((2, 6, 7, 7), (6, 1, 3, 3), {"groups": 6, "padding": 1}),          # depthwise
    ((2, 5, 6, 7), (7, 5, 1, 1), {}),                                    # 1x1 direct GEMM
    ((2, 5, 6, 7), (7, 5, 1, 1), {"stride": 2}),                         # 1x1 strided
    ((1, 2, 5, 6), (3, 2, 4, 2), {"padding": "same"}),                  # even kernel: asymmetric
    ((2, 2, 5, 6), (3, 2, 3, 3), {"padding": "same", "dilation": 2}),
    ((2, 2, 5, 6), (3, 2, 2, 3), {"padding": "valid"}),
    ((3, 2, 4, 4), (3, 2, 4, 4), {}),                                    # output 1x1
    ((2, 3, 6, 5), (4, 3, 3, 3), {"stride": 3, "padding": 2}),           # padding > useful
    ((3, 6, 6), (4, 3, 3, 3), {"padding": 1}),                           # unbatched
]

# 16+ output channels per group: the implicit-GEMM path (and, with 32+ input channels and unit
# stride, its input gradient too), at odd sizes, strides, dilation and groups. Sums of ~300
# products of O(1) values: float32 rounding reaches ~1e-5 absolute.
IMPLICIT_CASES = [
    ((2, 33, 5, 9), (34, 33, 3, 3), {"padding": 1}),
    ((2, 32, 7, 6), (40, 32, 3, 2), {"stride": 2, "padding": (1, 0)}),
    ((1, 64, 6, 5), (64, 32, 3, 3), {"dilation": 2, "padding": 2, "groups": 2}),
    ((3, 36, 4, 4), (48, 36, 3, 3), {"padding": "same"}),
    ((4, 6, 14, 13), (17, 6, 5, 5), {}),
    # Channels-last weight gradient (groups 1, 16+ channels both ways) with stride, dilation
    # and asymmetric padding; strided input gradients by phases (images of 64+ pixels per
    # phase), including a 1x1 stride-2 layer whose odd pixels get no gradient; a pointwise
    # layer on small images through the implicit GEMM.
    ((2, 32, 17, 16), (24, 32, 3, 3), {"stride": 2, "padding": 1}),
    ((2, 17, 11, 12), (16, 17, 3, 3), {"dilation": 2, "padding": (2, 1)}),
    ((2, 32, 16, 17), (20, 32, 1, 1), {"stride": 2}),
    ((3, 40, 6, 5), (48, 40, 1, 1), {}),
]


def _with_bias(fn, kw):
    return lambda x, w, b: fn(x, w, b, **kw)


@pytest.mark.parametrize("xs,ws,kw", CONV2D_CASES)
def test_conv2d_matches_torch(xs, ws, kw):
    check_op(_with_bias(F.conv2d, kw), _with_bias(TF.conv2d, kw), [(xs, ws, (ws[0],))],
             rtol=1e-4, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-4)


@pytest.mark.parametrize("xs,ws,kw", IMPLICIT_CASES)
def test_conv2d_implicit_gemm_path_matches_torch(xs, ws, kw):
    check_op(_with_bias(F.conv2d, kw), _with_bias(TF.conv2d, kw), [(xs, ws, (ws[0],))],
             rtol=1e-4, atol=1e-4, grad_rtol=1e-4, grad_atol=1e-3)


def test_conv2d_without_bias_and_integer_padding_pairs():
    check_op(lambda x, w: F.conv2d(x, w, None, 1, [2, 1]),
             lambda x, w: TF.conv2d(x, w, None, 1, [2, 1]), [((2, 3, 5, 5), (2, 3, 3, 3))],
             rtol=1e-4, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-4)


def test_conv2d_large_tiles_and_threads():
    # Bigger than one im2col tile and with enough images for the threaded weight reduction.
    kw = {"padding": 1, "stride": 1}
    check_op(_with_bias(F.conv2d, kw), _with_bias(TF.conv2d, kw),
             [((9, 16, 23, 29), (8, 16, 3, 3), (8,))], dtypes=[dc.float32], noncontig=False,
             rtol=1e-4, atol=1e-4, grad_rtol=1e-4, grad_atol=1e-3)


@pytest.mark.parametrize("xs,ws", [((16, 8, 20, 20), (8, 8, 3, 3)),
                                   # channels-last path: two batch parts, and column blocks
                                   # that change with the thread count
                                   ((24, 32, 20, 20), (24, 32, 3, 3))])
def test_conv2d_weight_grad_is_independent_of_thread_count(xs, ws):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype("f4")
    w = rng.standard_normal(ws).astype("f4")
    grads = []
    before = dc.get_num_threads()
    try:
        for n in (1, 2, 3):
            dc.set_num_threads(n)
            wt = dc.tensor(w, requires_grad=True)
            F.conv2d(dc.tensor(x), wt, padding=1).sum().backward()
            grads.append(wt.grad.numpy().copy())
    finally:
        dc.set_num_threads(before)
    assert np.array_equal(grads[0], grads[1]) and np.array_equal(grads[0], grads[2])


CONV1D_CASES = [
    ((2, 3, 11), (4, 3, 3), {}),
    ((1, 4, 10), (6, 2, 3), {"stride": 2, "padding": 1, "groups": 2}),
    ((2, 3, 9), (3, 3, 2), {"padding": "same", "dilation": 3}),
    ((3, 7), (2, 3, 1), {}),  # unbatched
]


@pytest.mark.parametrize("xs,ws,kw", CONV1D_CASES)
def test_conv1d_matches_torch(xs, ws, kw):
    check_op(_with_bias(F.conv1d, kw), _with_bias(TF.conv1d, kw), [(xs, ws, (ws[0],))],
             rtol=1e-4, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-4)


CONV_T2D_CASES = [
    ((2, 3, 5, 4), (3, 4, 3, 3), {}),
    ((1, 4, 5, 5), (4, 3, 3, 2), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((2, 4, 4, 3), (4, 2, 3, 3), {"stride": (2, 3), "groups": 2, "dilation": (1, 2)}),
    ((2, 3, 4, 4), (3, 2, 1, 1), {}),
    ((3, 4, 4), (3, 2, 2, 2), {"stride": 2}),  # unbatched
]


@pytest.mark.parametrize("xs,ws,kw", CONV_T2D_CASES)
def test_conv_transpose2d_matches_torch(xs, ws, kw):
    cout = ws[1] * kw.get("groups", 1)
    check_op(_with_bias(F.conv_transpose2d, kw), _with_bias(TF.conv_transpose2d, kw),
             [(xs, ws, (cout,))], rtol=1e-4, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-4)


def test_conv_transpose1d_matches_torch():
    kw = {"stride": 2, "padding": 1, "output_padding": 1}
    check_op(_with_bias(F.conv_transpose1d, kw), _with_bias(TF.conv_transpose1d, kw),
             [((2, 3, 7), (3, 5, 3), (5,))], rtol=1e-4, atol=1e-5, grad_rtol=1e-4,
             grad_atol=1e-4)


@pytest.mark.parametrize("cg,kw", [(4, {}), (2, {"stride": 2, "padding": 1, "groups": 2,
                                                  "dilation": 2})])
def test_conv2d_gradcheck_and_gradgradcheck(cg, kw):
    fn = lambda x, w, b: F.conv2d(x, w, b, **kw)  # noqa: E731
    assert gradcheck_op(fn, [(2, 4, 6, 5), (2, cg, 3, 3), (2,)])
    args = [dc.tensor(np.random.default_rng(1).standard_normal(s), requires_grad=True)
            for s in [(1, 4, 5, 5), (2, cg, 3, 3), (2,)]]
    assert dc.autograd.gradgradcheck(fn, args)


def test_conv2d_channels_last_weight_gradient_gradcheck():
    # 16 channels each way: the weight gradient takes Note [Weight gradient in channels-last];
    # stride 2 and dilation fold into its per-pixel offsets.
    x = dc.tensor(np.random.default_rng(2).standard_normal((2, 16, 7, 6)))
    for kw in ({"stride": 2, "padding": 1}, {"dilation": 2, "padding": 2}):
        assert gradcheck_op(lambda w: F.conv2d(x, w, None, **kw), [(16, 16, 3, 3)])


def test_conv_transpose2d_gradgradcheck():
    fn = lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1)  # noqa: E731
    rng = np.random.default_rng(2)
    args = [dc.tensor(rng.standard_normal(s), requires_grad=True)
            for s in [(1, 2, 3, 3), (2, 3, 3, 3)]]
    assert dc.autograd.gradcheck(fn, args)
    assert dc.autograd.gradgradcheck(fn, args)


def test_conv2d_double_backward_matches_torch():
    rng = np.random.default_rng(3)
    xs, ws = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    res = []
    for lib, Fm in ((dc, F), (torch, TF)):
        x = lib.tensor(xs, requires_grad=True)
        w = lib.tensor(ws, requires_grad=True)
        y = Fm.conv2d(x, w, stride=2, padding=1)
        gx, gw = lib.autograd.grad((y * y).sum(), [x, w], create_graph=True)
        gx2, gw2 = lib.autograd.grad((gx * gx).sum() + (gw ** 3).sum(), [x, w])
        res.append([gx, gw, gx2, gw2])
    for a, e in zip(*res):
        assert_close(a, e, rtol=1e-9, atol=1e-9)


# ---- pad ------------------------------------------------------------------------------------

PAD_CASES = [
    ((2, 3, 5, 6), (1, 2), "constant"),
    ((2, 3, 5, 6), (1, 2, 0, 3), "constant"),
    ((2, 3, 5, 6), (-1, 2, 1, -2), "constant"),
    ((2, 3, 5, 6), (2, 1, 3, 0), "reflect"),
    ((2, 3, 5, 6), (2, 1, 3, 4), "replicate"),
    ((2, 3, 5, 6), (2, 1, 3, 4), "circular"),
    ((2, 3, 7), (3, 2), "reflect"),
    ((2, 3, 7), (3, 7), "replicate"),
    ((2, 3, 7), (7, 2), "circular"),
]


@pytest.mark.parametrize("shape,pads,mode", PAD_CASES)
def test_pad_matches_torch(shape, pads, mode):
    check_op(lambda x: F.pad(x, pads, mode), lambda x: TF.pad(x, pads, mode), [(shape,)])


def test_pad_constant_value_and_gradcheck():
    check_op(lambda x: F.pad(x, (1, 1), value=2.5), lambda x: TF.pad(x, (1, 1), value=2.5),
             [((3, 4),)])
    assert gradcheck_op(lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), [(1, 2, 4, 4)])


# ---- errors ---------------------------------------------------------------------------------

def test_conv2d_errors_name_the_op_and_shapes():
    x, w = dc.zeros(8, 4, 32, 32), dc.zeros(16, 3, 3, 3)
    with pytest.raises(ValueError, match=r"\[conv2d\] expected input with 3 channels "
                                         r"\(weight \(16, 3, 3, 3\), groups=1\), got input "
                                         r"\(8, 4, 32, 32\)"):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match=r"\[conv2d\].*4-D weight"):
        F.conv2d(dc.zeros(1, 3, 5, 5), dc.zeros(2, 3, 3))
    with pytest.raises(ValueError, match=r"\[conv2d\].*divisible by groups"):
        F.conv2d(dc.zeros(1, 4, 5, 5), dc.zeros(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"\[conv2d\].*smaller than the"):
        F.conv2d(dc.zeros(1, 3, 2, 2), dc.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"\[conv2d\].*bias"):
        F.conv2d(dc.zeros(1, 3, 5, 5), dc.zeros(2, 3, 3, 3), dc.zeros(3))
    with pytest.raises(ValueError, match=r"\[conv2d\] padding='same'.*strided"):
        F.conv2d(dc.zeros(1, 3, 5, 5), dc.zeros(2, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match=r"\[conv2d\] padding must be"):
        F.conv2d(dc.zeros(1, 3, 5, 5), dc.zeros(2, 3, 3, 3), padding="full")
    with pytest.raises(TypeError, match=r"\[conv2d\]"):
        F.conv2d(dc.zeros(1, 3, 5, 5), dc.zeros(2, 3, 3, 3, dtype=dc.float64))
    with pytest.raises(ValueError, match=r"\[conv1d\] expected input with 2 channels"):
        F.conv1d(dc.zeros(1, 3, 5), dc.zeros(2, 2, 3))
    with pytest.raises(ValueError, match=r"\[conv_transpose2d\] output_padding"):
        F.conv_transpose2d(dc.zeros(1, 3, 5, 5), dc.zeros(3, 2, 3, 3), output_padding=1)
    with pytest.raises(ValueError, match=r"\[pad\] reflect"):
        F.pad(dc.zeros(1, 2, 3), (3, 0), mode="reflect")
    with pytest.raises(ValueError, match=r"\[pad\] padding length"):
        F.pad(dc.zeros(3), (1, 1, 1))


# ---- interpolate / dropout2d ----------------------------------------------------------------

@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 5, 7), {"size": (9, 4), "mode": "nearest"}),
    ((2, 3, 5, 7), {"scale_factor": 2, "mode": "nearest"}),
    ((2, 3, 5, 7), {"size": (8, 11), "mode": "bilinear", "align_corners": False}),
    ((2, 3, 5, 7), {"size": (8, 3), "mode": "bilinear", "align_corners": True}),
    ((1, 2, 4, 4), {"scale_factor": 1.5, "mode": "bilinear"}),
    ((2, 3, 6), {"size": 13, "mode": "linear", "align_corners": True}),
    ((2, 3, 6), {"scale_factor": 0.5, "mode": "nearest"}),
])
def test_interpolate_matches_torch(shape, kw):
    check_op(lambda x: F.interpolate(x, **kw), lambda x: TF.interpolate(x, **kw), [(shape,)])


def test_upsample_is_interpolate():
    x = dc.rand(1, 2, 3, 4)
    np.testing.assert_array_equal(F.upsample(x, scale_factor=2, mode="bilinear").numpy(),
                                  F.interpolate(x, scale_factor=2, mode="bilinear").numpy())


def test_interpolate_gradcheck_and_errors():
    assert gradcheck_op(lambda x: F.interpolate(x, size=(5, 3), mode="bilinear",
                                                align_corners=False), [(1, 2, 3, 4)])
    with pytest.raises(ValueError, match=r"\[interpolate\] mode"):
        F.interpolate(dc.zeros(1, 1, 2, 2), size=3, mode="bicubic")
    with pytest.raises(ValueError, match=r"\[interpolate\] exactly one"):
        F.interpolate(dc.zeros(1, 1, 2, 2))


def test_dropout2d_drops_whole_channels():
    dc.manual_seed(0)
    x = dc.ones(8, 16, 5, 5, requires_grad=True)
    y = F.dropout2d(x, 0.5)
    per_channel = y.detach().numpy().reshape(8, 16, 25)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    dropped = (per_channel == 0).all(-1).mean()
    assert 0.3 < dropped < 0.7
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())
    assert F.dropout2d(x, 0.5, training=False) is x
    with pytest.raises(ValueError, match=r"\[dropout2d\]"):
        F.dropout2d(x, 1.5)


@pytest.mark.parametrize("n,c,h,k,stride,pad", [(5, 7, 8, 6, 1, 1), (9, 3, 5, 4, 2, 0),
                                                (33, 16, 4, 32, 1, 1), (40, 8, 4, 8, 2, 1),
                                                (9, 6, 12, 16, 1, 0)])
def test_conv2d_small_images_batched_into_one_gemm(n, c, h, k, stride, pad):
    # Images of <= 128 output pixels are laid side by side in one GEMM (conv_im2col.cpp);
    # results must match torch and not depend on the thread count.
    rng = np.random.default_rng(n)
    x, w, b = (rng.standard_normal(s) for s in ((n, c, h, h), (k, c, 3, 3), (k,)))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pad)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    grads = []
    for threads in (1, 2):
        dc.set_num_threads(threads)
        dx, dw, db = (dc.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.conv2d(dx, dw, db, stride=stride, padding=pad)
        y.backward(dc.tensor(g))
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), atol=1e-10)
        np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(dw.grad.numpy(), tw.grad.numpy(), atol=1e-9)
        grads.append(dw.grad.numpy())
    np.testing.assert_array_equal(grads[0], grads[1])


# ---- every algorithm of the kernels, forced (Note [Choosing a convolution algorithm]) --------

ALGOS = ["pointwise", "im2col", "implicit", "phases", "channels_last", "winograd",
         "winograd_4x4"]
PASSES = ["forward", "grad_input", "grad_weight"]

# Shapes none of the algorithms was tuned for: odd and prime sizes, asymmetric stride, dilation,
# groups, depthwise, 1x1, and padding beyond the kernel's reach.
ALGO_CASES = [
    ((2, 3, 7, 9), (4, 3, 3, 3), {"padding": 1}),
    ((2, 33, 11, 10), (20, 33, 3, 3), {"stride": 2, "padding": 1}),
    ((2, 6, 9, 8), (6, 2, 3, 2), {"stride": (2, 3), "padding": (1, 0), "groups": 3}),
    ((2, 5, 6, 7), (7, 5, 1, 1), {}),
    ((3, 17, 5, 4), (19, 17, 1, 1), {}),
    ((2, 4, 10, 9), (5, 4, 3, 3), {"dilation": 2, "padding": 2}),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"padding": 3}),
    ((2, 8, 9, 9), (8, 1, 3, 3), {"groups": 8, "stride": 2, "padding": 1}),
    ((2, 7, 12, 11), (9, 7, 2, 2), {"stride": 2}),
    ((1, 16, 13, 12), (16, 16, 5, 3), {"stride": 3, "padding": (2, 1)}),
    ((3, 5, 9, 6), (4, 5, 3, 3), {"padding": (0, 2)}),
]


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def _algo_applies(pass_, algo, ws, kw):
    """Mirror of conv_algo_applies (csrc/kernels/cpu/conv.cpp) for ALGO_CASES' shapes."""
    _, _, kh, kwid = ws
    (sh, sw), (ph, pw), (dh, dw) = (_pair(kw.get(k, d)) for k, d in
                                    (("stride", 1), ("padding", 0), ("dilation", 1)))
    groups = kw.get("groups", 1)
    if algo == "im2col":
        return True
    if algo == "pointwise":
        return (kh, kwid, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0)
    if algo == "implicit":
        return pass_ == "forward" or (pass_ == "grad_input" and (sh, sw) == (1, 1) and
                                      ph <= dh * (kh - 1) and pw <= dw * (kwid - 1))
    if algo in ("winograd", "winograd_4x4"):
        simple = (kh, kwid, sh, sw, dh, dw, groups) == (3, 3, 1, 1, 1, 1, 1)
        return simple and (pass_ != "grad_input" or (ph <= 2 and pw <= 2))
    if algo == "phases":
        def fits(s, p, k):  # no phase's padding is negative
            for r in range(s):
                t = (r + p) % s
                taps = (k - t + s - 1) // s if t < k else 0
                if taps > 0 and taps - 1 - (r + p - t) // s < 0:
                    return False
            return True
        return (pass_ == "grad_input" and groups == 1 and (dh, dw) == (1, 1) and
                (sh, sw) != (1, 1) and fits(sh, ph, kh) and fits(sw, pw, kwid))
    return pass_ == "grad_weight" and groups == 1  # channels_last


@pytest.fixture
def force_conv_algo():
    forced = []

    def force(pass_, algo):
        dc._C._set_conv_algo(pass_, algo)
        forced.append(pass_)

    yield force
    for pass_ in forced:
        dc._C._set_conv_algo(pass_, "auto")


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("pass_", PASSES)
def test_conv2d_every_algorithm_matches_torch(pass_, algo, force_conv_algo):
    # The pass runs on the forced algorithm, the other two on the ones chosen by shape; every
    # result is compared with torch in float64. Shapes the algorithm cannot compute raise.
    force_conv_algo(pass_, algo)
    assert dc._C._get_conv_algo(pass_) == algo
    ran = 0
    rng = np.random.default_rng(0)
    for xs, ws, kw in ALGO_CASES:
        x, w, b = (rng.standard_normal(s) for s in (xs, ws, (ws[0],)))
        dx, dw, db = (dc.tensor(a, requires_grad=True) for a in (x, w, b))
        if not _algo_applies(pass_, algo, ws, kw):
            with pytest.raises(ValueError, match=f"forced to '{algo}'"):
                y = F.conv2d(dx, dw, db, **kw)
                y.backward(dc.ones_like(y))
            continue
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        ty = TF.conv2d(tx, tw, tb, **kw)
        g = rng.standard_normal(tuple(ty.shape))
        ty.backward(torch.tensor(g))
        y = F.conv2d(dx, dw, db, **kw)
        y.backward(dc.tensor(g))
        msg = f"{pass_} by {algo}: x {xs}, w {ws}, {kw}"
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), atol=1e-10, err_msg=msg)
        np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), atol=1e-10, err_msg=msg)
        np.testing.assert_allclose(dw.grad.numpy(), tw.grad.numpy(), atol=1e-9, err_msg=msg)
        ran += 1
    serves = {"phases": ["grad_input"], "channels_last": ["grad_weight"],
              "implicit": ["forward", "grad_input"],
              }.get(algo, PASSES)
    assert ran >= (2 if pass_ in serves else 0), f"{algo} ran on {ran} shapes for {pass_}"
    if pass_ not in serves:
        assert ran == 0


@pytest.mark.parametrize("shape", [(8, 64, 16, 16, 64), (4, 3, 20, 13, 24), (2, 130, 7, 9, 40)])
def test_conv2d_by_winograd_when_chosen_matches_torch(shape):
    # Shapes whose forward and input gradient are chosen to run by Winograd (3x3, unit stride,
    # 32+ output tiles; Note [Choosing a convolution algorithm]), and the weight gradient too
    # but for the 3-channel one: float32 against torch's float32, held to the error of a
    # float32 sum of that many products relative to the output's scale.
    n, c, h, w, k = shape
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    dx, dw, db = (dc.tensor(a, requires_grad=True) for a in (x, wt, b))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    y = F.conv2d(dx, dw, db, padding=1)
    ty = TF.conv2d(tx, tw, tb, padding=1)
    g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    y.backward(dc.tensor(g))
    ty.backward(torch.tensor(g))
    eps = float(np.finfo(np.float32).eps)
    for a, e, terms in ((y.detach(), ty.detach(), 9 * c), (dx.grad, tx.grad, 9 * k),
                        (dw.grad, tw.grad, n * h * w)):
        ev = e.numpy()
        tol = 8 * eps * np.sqrt(terms) * float(np.abs(ev).max())
        np.testing.assert_allclose(a.numpy(), ev, rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_conv2d_16bit_by_winograd_4x4_matches_float64(dtype):
    # A 16-bit 3x3 layer with 256 4x4 output tiles runs F(4x4, 3x3) in float32 on the widened
    # operands (Note [16-bit convolution]), each pass's result rounded once to 16 bits. Against
    # torch's float64 passes on the same (16-bit) operands, each element is then within half a
    # 16-bit step (2^-8 or 2^-11 of its value) plus F(4x4, 3x3)'s float32 error, about 1e-5 of
    # the output's scale. torch's own bf16 backward rounds partial results to bf16 and lands up
    # to 4x farther from float64 here, so it is not the reference.
    rng = np.random.default_rng(3)
    n, c, hw, k = 16, 32, 16, 24
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    wt = (rng.standard_normal((k, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    g = rng.standard_normal((n, k, hw, hw)).astype(np.float32)
    ddt = getattr(dc, dtype)
    dx, dw, dg = (dc.tensor(a).to(ddt) for a in (x, wt, g))
    tx, tw, tg = (torch.tensor(a.float().numpy().astype(np.float64)) for a in (dx, dw, dg))
    dx.requires_grad_()
    dw.requires_grad_()
    tx.requires_grad_()
    tw.requires_grad_()
    y = F.conv2d(dx, dw, None, padding=1)
    ty = TF.conv2d(tx, tw, None, padding=1)
    y.backward(dg)
    ty.backward(tg)
    half_step = 2.0 ** (-8 if dtype == "bfloat16" else -11)
    for a, e in ((y.detach(), ty.detach()), (dx.grad, tx.grad), (dw.grad, tw.grad)):
        assert a.dtype == ddt
        ev = e.numpy()
        np.testing.assert_allclose(a.float().numpy(), ev, rtol=half_step,
                                   atol=1e-4 * float(np.abs(ev).max()))


def test_conv2d_strided_input_gradient_of_odd_sized_input():
    # A 2x2 stride-2 layer on a 65x65 input: the input gradient by phases has a 33x33 phase
    # whose 1x1 convolution reads one row and column past gy (zero); it once ran as a pointwise
    # GEMM, which assumes the output is the input's size, and was off by up to 25.
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 32, 65, 65)), rng.standard_normal((16, 32, 2, 2))
    tx = torch.tensor(x, requires_grad=True)
    TF.conv2d(tx, torch.tensor(w), stride=2).sum().backward()
    dx = dc.tensor(x, requires_grad=True)
    F.conv2d(dx, dc.tensor(w), stride=2).sum().backward()
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), atol=1e-10)


def test_conv_algo_names_are_checked():
    with pytest.raises(ValueError, match="unknown algorithm 'fft'"):
        dc._C._set_conv_algo("forward", "fft")
    with pytest.raises(ValueError, match="unknown pass 'backward'"):
        dc._C._set_conv_algo("backward", "im2col")
    assert all(dc._C._get_conv_algo(p) == "auto" for p in PASSES)
