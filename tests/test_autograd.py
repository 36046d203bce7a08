"""The autograd engine: accumulation, retain_graph, autograd.grad, higher-order gradients, grad
mode, hooks, version-counter checks, custom Functions, gradcheck, graph structure, deep graphs."""
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import deepcore as dc
from helpers import assert_close


def pair(values, dtype=np.float64):
    """The same leaf in deepcore and torch."""
    arr = np.asarray(values, dtype=dtype)
    return dc.tensor(arr, requires_grad=True), torch.tensor(arr, requires_grad=True)


def test_backward_accumulates_into_leaf_grad():
    x, tx = pair([1.0, -2.0, 3.0])
    for a, lib in [(x, dc), (tx, torch)]:
        (a * a).sum().backward()
        (a * 3).sum().backward()
    assert_close(x.grad, tx.grad)
    assert x.grad.tolist() == [5.0, -1.0, 9.0]
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_grad_is_not_shared_between_leaves():
    a = dc.ones(3, requires_grad=True)
    b = dc.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.add_(1.0)
    assert b.grad.tolist() == [1.0, 1.0, 1.0]


def test_retain_graph_and_freed_graph_error():
    x = dc.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()  # mul saves its inputs
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    # Nodes that saved nothing can be run again, like PyTorch.
    z = (x + 1.0).sum()
    z.backward()
    z.backward()
    assert x.grad.tolist() == [6.0, 10.0]


def test_non_scalar_backward_needs_gradient():
    x = dc.ones(2, 3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y.backward(dc.full((2, 3), 0.5))
    assert x.grad.tolist() == [[1.0] * 3] * 2
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(dc.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        dc.ones(2).sum().backward()


def test_backward_inputs_argument():
    x, tx = pair([1.0, 2.0])
    w, tw = pair([3.0, -1.0])
    for a, b in [(x, w), (tx, tw)]:
        (a * b * b).sum().backward(inputs=[b])
    assert x.grad is None and tx.grad is None
    assert_close(w.grad, tw.grad)
    (x * w).sum().backward(inputs=x)
    assert x.grad.tolist() == [3.0, -1.0]


def test_autograd_grad_basic_allow_unused_grad_outputs():
    x, tx = pair([[1.0, 2.0], [3.0, 4.0]])
    u, tu = pair([1.0, 1.0])
    go = np.array([[1.0, -1.0], [0.5, 2.0]])
    (g,) = dc.autograd.grad(dc.sin(x) * x, x, grad_outputs=dc.tensor(go))
    (tg,) = torch.autograd.grad(torch.sin(tx) * tx, tx, grad_outputs=torch.tensor(go))
    assert_close(g, tg)
    assert x.grad is None, "autograd.grad must not touch .grad"
    assert not g.requires_grad
    with pytest.raises(RuntimeError, match="allow_unused"):
        dc.autograd.grad((x * 2).sum(), [x, u])
    gx, gu = dc.autograd.grad((x * 2).sum(), [x, u], allow_unused=True)
    assert gu is None and gx.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    gx, gu = dc.autograd.grad((x * 2).sum(), [x, u], materialize_grads=True)
    assert gu.tolist() == [0.0, 0.0]
    # Gradient w.r.t. an intermediate tensor.
    h = x * 3
    (gh,) = dc.autograd.grad((h * h).sum(), h)
    assert_close(gh, 2 * torch.tensor([[3.0, 6.0], [9.0, 12.0]], dtype=torch.float64))
    # Several outputs, several grad_outputs.
    a, b = x.sum(), (x * x).sum()
    (gx,) = dc.autograd.grad([a, b], [x], grad_outputs=[dc.tensor(1.0, dtype=dc.float64),
                                                          dc.tensor(2.0, dtype=dc.float64)])
    assert_close(gx, 1 + 4 * tx.detach())


@pytest.mark.parametrize("name", ["cube", "sin", "tanh", "exp_log", "matmul_chain", "sigmoid",
                                  "div", "pow_tensor"])
def test_second_derivatives(name):
    fns = {
        "cube": lambda lib, x, w: (x ** 3).sum(),
        "sin": lambda lib, x, w: lib.sin(x).sum(),
        "tanh": lambda lib, x, w: lib.tanh(x * 2).sum(),
        "exp_log": lambda lib, x, w: (lib.exp(x) * lib.log(x * x + 1)).sum(),
        "matmul_chain": lambda lib, x, w: lib.matmul(lib.matmul(x, w).tanh(), w.t()).pow(2).sum(),
        "sigmoid": lambda lib, x, w: lib.sigmoid(x * w[0, 0]).sum(),
        "div": lambda lib, x, w: (x / (w[0] + 3)).sum(),
        "pow_tensor": lambda lib, x, w: (lib.abs(x) + 1).pow(w[0, :3].reshape(1, 3)).sum(),
    }
    f = fns[name]
    rng = np.random.default_rng(0)
    xv, wv = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (3, 3))
    out = []
    for lib in (dc, torch):
        x = lib.tensor(xv, requires_grad=True)
        w = lib.tensor(wv, requires_grad=True)
        y = f(lib, x, w)
        gx, gw = lib.autograd.grad(y, [x, w], create_graph=True, allow_unused=True)
        assert gx.requires_grad
        s = (gx * gx).sum() + (gw.sum() if gw is not None else 0)
        hx, hw = lib.autograd.grad(s, [x, w], allow_unused=True)
        out.append((gx, hx, hw))
    for a, b in zip(out[0], out[1]):
        if b is None:
            assert a is None or not np.any(a.numpy())
        else:
            assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_third_derivative_of_cube():
    x = dc.tensor([2.0], requires_grad=True)
    (g1,) = dc.autograd.grad((x ** 3).sum(), x, create_graph=True)
    (g2,) = dc.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = dc.autograd.grad(g2.sum(), x)
    assert (g1.item(), g2.item(), g3.item()) == (12.0, 12.0, 6.0)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_create_graph_then_grad_of_grad():
    x, tx = pair([0.5, -1.5])
    for a in (x, tx):
        (a.sin() * a).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (gx,) = dc.autograd.grad(x.grad.sum(), x)
    (tgx,) = torch.autograd.grad(tx.grad.sum(), tx)
    assert_close(gx, tgx)


# ---- grad mode --------------------------------------------------------------------------------

def test_no_grad_enable_grad_set_grad_enabled():
    x = dc.ones(2, requires_grad=True)
    with dc.no_grad():
        y = x * 2
        assert not dc.is_grad_enabled()
        with dc.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad
    with dc.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert dc.is_grad_enabled()
    dc.set_grad_enabled(False)
    assert not dc.is_grad_enabled()
    dc.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_grad_mode_decorators():
    x = dc.ones(2, requires_grad=True)

    @dc.no_grad()
    def f():
        return x * 2

    @dc.enable_grad()
    def g():
        return x * 2

    @dc.set_grad_enabled(False)
    def h():
        return x * 2

    @dc.no_grad
    def bare():
        return x * 2

    assert dc.is_grad_enabled()  # decorating changes nothing by itself
    assert not f().requires_grad and not h().requires_grad and not bare().requires_grad
    with dc.no_grad():
        assert g().requires_grad
    assert dc.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = {}

    def worker():
        seen["enabled"] = dc.is_grad_enabled()
        x = dc.ones(2, requires_grad=True)
        seen["records"] = (x * 2).requires_grad

    with dc.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert not dc.is_grad_enabled()
    assert seen == {"enabled": True, "records": True}


# ---- leaves, detach, hooks ----------------------------------------------------------------------

def test_requires_grad_detach_and_leaf_rules():
    x = dc.ones(3)
    assert not x.requires_grad and x.is_leaf
    assert x.requires_grad_() is x and x.requires_grad
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    d[0] = 10.0  # detach shares storage
    assert y[0].item() == 10.0
    y2 = x * 3
    assert y2.detach_() is y2 and not y2.requires_grad and y2.is_leaf
    with pytest.raises(RuntimeError, match="floating point"):
        dc.ones(2, dtype=dc.int64).requires_grad_()
    x.requires_grad_(False)
    assert not (x * 2).requires_grad


def test_retain_grad_on_non_leaf():
    x, tx = pair([1.0, 2.0, 3.0])
    h, th = x * 2, tx * 2
    h.retain_grad()
    th.retain_grad()
    assert h.retains_grad
    (h * h).sum().backward()
    (th * th).sum().backward()
    assert_close(h.grad, th.grad)
    assert_close(x.grad, tx.grad)
    y = x * 5
    (y * 2).sum().backward()
    assert y.grad is None  # not retained


def test_hooks_on_leaf_and_non_leaf():
    x, tx = pair([1.0, -2.0])
    seen = []
    for a in (x, tx):
        a.register_hook(lambda g: g * 10)           # leaf hook modifies the grad
        h = a * 3
        h.register_hook(lambda g, s=seen: s.append(g.tolist()))  # observer: returns None
        h.register_hook(lambda g: g + 1)            # non-leaf hook modifies the grad
        (h * a).sum().backward()
    assert_close(x.grad, tx.grad)
    assert seen[0] == seen[1]
    with pytest.raises(RuntimeError, match="hook"):
        dc.ones(2).register_hook(lambda g: g)


# ---- version counter / in-place checks ------------------------------------------------------

def test_modified_saved_tensor_raises_at_backward():
    x = dc.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = (h * h).sum()  # saves h
    h.add_(1.0)
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation.*mul"):
        y.backward()
    # An op that saves its output (exp) also notices.
    h2 = x * 1.0
    e = h2.exp()
    e.mul_(2.0)
    with pytest.raises(RuntimeError, match="exp"):
        e.sum().backward()
    # A modification through a view is seen too (one counter per storage).
    h3 = x * 1.0
    s = (h3.sin()).sum()
    with dc.no_grad():
        h3[0] = 5.0
    with pytest.raises(RuntimeError, match="sin"):
        s.backward()


def test_inplace_on_leaf_requiring_grad_raises():
    x = dc.ones(3, requires_grad=True)
    for f in [lambda: x.add_(1), lambda: x.mul_(2), lambda: x.zero_(), lambda: x.exp_(),
              lambda: x.__setitem__(0, 2.0), lambda: x.fill_(3)]:
        with pytest.raises(RuntimeError, match="leaf"):
            f()
    with dc.no_grad():
        x.add_(1)
    assert x.tolist() == [2.0, 2.0, 2.0]


def test_inplace_on_non_leaf_keeps_gradients_right():
    x, tx = pair([0.5, -1.0, 2.0])
    for a in (x, tx):
        h = a * 2
        h.mul_(a)
        h.add_(a, alpha=0.5)
        h.sigmoid_()
        h.sum().backward()
    assert_close(x.grad, tx.grad)


def test_inplace_activation_and_add_run_in_place_with_history():
    # relu_, sigmoid_ and add_ on a non-leaf write into its memory and make their node its
    # history; a chain of them (a residual block's `out += identity; out.relu_()`) gives
    # torch's gradients.
    x, tx = pair([[0.5, -1.0, 2.0], [-0.25, 1.5, -3.0]])
    b, tb = pair([0.3, -0.2, 0.1])
    for a, bias in ((x, b), (tx, tb)):
        h = a * 2
        ptr = h.data_ptr()
        h += bias
        h.sub_(a, alpha=0.5)
        h.relu_()
        assert h.data_ptr() == ptr
        h = h * 1.0
        assert h.data_ptr() != ptr
        ptr = h.data_ptr()
        h.sigmoid_()
        assert h.data_ptr() == ptr
        (h * h).sum().backward()
    assert_close(x.grad, tx.grad)
    assert_close(b.grad, tb.grad)


def test_inplace_activation_output_modified_later_is_detected():
    # relu_ saves its output, which is the tensor itself: writing to it again before
    # backward must be caught, as in torch.
    x = dc.tensor([0.5, -1.0, 2.0], requires_grad=True)
    h = x * 2
    h.relu_()
    h.mul_(3.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        h.sum().backward()


# ---- custom Functions ---------------------------------------------------------------------------

class Cube(dc.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x ** 3 * scale

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x ** 2 * ctx.scale, None


class SplitSign(dc.autograd.Function):
    """Two outputs; records needs_input_grad."""
    seen = None

    @staticmethod
    def forward(ctx, a, b):
        SplitSign.seen = ctx.needs_input_grad
        ctx.save_for_backward(a, b)
        return a * b, a + b

    @staticmethod
    def backward(ctx, g_prod, g_sum):
        a, b = ctx.saved_tensors
        ga = g_prod * b + g_sum if ctx.needs_input_grad[0] else None
        gb = g_prod * a + g_sum if ctx.needs_input_grad[1] else None
        return ga, gb


class WrongGrad(dc.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x  # should be 2 * g * x


def test_custom_function():
    x = dc.tensor([1.0, -2.0], dtype=dc.float64, requires_grad=True)
    y = Cube.apply(x, 2.0)
    assert y.tolist() == [2.0, -16.0]
    assert repr(y.grad_fn) == "<CubeBackward0>"
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 24.0]
    a = dc.tensor([1.0, 2.0], requires_grad=True)
    b = dc.tensor([3.0, 4.0])
    p, s = SplitSign.apply(a, b)
    assert SplitSign.seen == (True, False)
    (p * 2 + s).sum().backward()
    assert a.grad.tolist() == [7.0, 9.0] and b.grad is None
    # Only one output used: the other's gradient arrives as zeros.
    a.grad = None
    p, s = SplitSign.apply(a, b)
    s.sum().backward()
    assert a.grad.tolist() == [1.0, 1.0]
    with dc.no_grad():
        assert not Cube.apply(x, 1.0).requires_grad


def test_gradcheck_passes_and_fails():
    x = dc.tensor(np.random.default_rng(0).uniform(-1, 1, (2, 3)), requires_grad=True)
    assert dc.autograd.gradcheck(lambda t: Cube.apply(t, 1.5), (x,))
    assert dc.autograd.gradcheck(lambda t: (t.tanh() @ t.t()).sum(1), (x,))
    assert dc.autograd.gradgradcheck(lambda t: (t.sin() * t).sum(), (x,))
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        dc.autograd.gradcheck(WrongGrad.apply, (x,))
    assert dc.autograd.gradcheck(WrongGrad.apply, (x,), raise_exception=False) is False


# ---- graph structure ----------------------------------------------------------------------------

def test_grad_fn_names_and_next_functions():
    x = dc.ones(2, 2, requires_grad=True)
    w = dc.ones(2, 2, requires_grad=True)
    y = (x @ w).relu().sum()
    assert repr(y.grad_fn) == "<SumBackward0>"
    (relu, _), = y.grad_fn.next_functions
    assert repr(relu) == "<ReluBackward0>"
    (mm, _), = relu.next_functions
    assert repr(mm) == "<MmBackward0>"
    accs = [repr(fn) for fn, _ in mm.next_functions]
    assert accs == ["<AccumulateGrad>", "<AccumulateGrad>"]
    z = x * 2.0
    assert [repr(fn) if fn is not None else None for fn, _ in z.grad_fn.next_functions] == \
        ["<AccumulateGrad>", None]
    assert x.grad_fn is None


def test_diamond_graph():
    x, tx = pair([0.3, -0.7, 1.1])
    for a, lib in [(x, dc), (tx, torch)]:
        b = a * 2
        c = lib.sin(b)
        d = lib.exp(b)
        e = c * d + b * a + a
        e.sum().backward()
    assert_close(x.grad, tx.grad)


def test_deep_chain_does_not_overflow():
    x = dc.tensor([1.0], dtype=dc.float64, requires_grad=True)
    y = x
    for _ in range(10000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10000, rel=1e-4)
    del y


def test_freeing_a_very_long_graph_does_not_overflow():
    # 300k nodes overflowed the stack through recursive destructors (Note [Iterative graph
    # release]); run in a subprocess so a crash fails this test only.
    code = ("import deepcore as dc\n"
            "x = dc.tensor([1.0], requires_grad=True)\n"
            "y = x\n"
            "for _ in range(300000):\n"
            "    y = y * 1.0\n"
            "del y\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_gradient_dtype_matches_input_dtype():
    a = dc.ones(3, dtype=dc.float32, requires_grad=True)
    b = dc.ones(3, dtype=dc.float64, requires_grad=True)
    (a * b).sum().backward()
    assert (a * b).dtype == dc.float64
    assert a.grad.dtype == dc.float32 and b.grad.dtype == dc.float64
    c = dc.ones(3, dtype=dc.float32, requires_grad=True)
    c.double().sum().backward()
    assert c.grad.dtype == dc.float32


def test_unused_branch_and_multiple_roots():
    x, tx = pair([1.0, 2.0])
    for a, lib in [(x, dc), (tx, torch)]:
        u = a * 3
        v = a.exp()
        lib.autograd.backward([u.sum(), v.sum()])
    assert_close(x.grad, tx.grad)


def test_custom_function_refuses_a_second_backward_through_a_freed_graph():
    class Square(dc.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    x = dc.tensor([1.0, 2.0], requires_grad=True)
    y = Square.apply(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match=r"Square.*second time"):
        y.backward()


def test_tensor_hook_handle_remove_stops_the_hook():
    calls = []
    x = dc.tensor([1.0, 2.0], requires_grad=True)
    handle = x.register_hook(lambda g: calls.append(1) or g * 10)
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    assert calls == [1]


def test_post_accumulate_grad_hook_and_queue_callback():
    """The two engine entry points DistributedDataParallel uses, against torch's behaviour."""
    import torch
    events = {"dc": [], "torch": []}
    for lib, name in ((dc, "dc"), (torch, "torch")):
        w = lib.ones(3, requires_grad=True)
        log = events[name]
        h = w.register_post_accumulate_grad_hook(lambda p, log=log: log.append(p.grad.tolist()))

        def pre(g, lib=lib, log=log):
            lib.autograd.Variable._execution_engine.queue_callback(lambda: log.append("end"))
        w.register_hook(pre)
        (w * 2).sum().backward()
        (w * 3).sum().backward()  # accumulated: the hook sees the sum
        h.remove()
        (w * 1).sum().backward()
    assert events["dc"] == events["torch"] == [[2.0] * 3, "end", [5.0] * 3, "end", "end"]
    with pytest.raises(RuntimeError, match="queue_callback.*no backward pass"):
        dc.autograd.queue_callback(lambda: None)
    with pytest.raises(RuntimeError, match="leaf tensors that require grad"):
        (dc.ones(2, requires_grad=True) * 2).register_post_accumulate_grad_hook(print)
