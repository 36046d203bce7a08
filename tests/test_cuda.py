"""The CUDA device suite (`pytest -m cuda`): the OpInfo database on the device against the cpu,
autograd, the optimizers, a ResNet-18 and a GPT training step, checkpoints and the allocator.

On a machine with a GPU and a CUDA build it runs on the GPU. Elsewhere it runs on the fake device
(Note [The fake device] in csrc/dispatch/fake_device.cpp): host memory behind pointers the host
cannot dereference, served by the cpu kernels. That checks everything around the kernels --
where results are placed, copies between devices, autograd across them, modules, optimizers and
checkpoints -- and the suite itself; on the fake device results must equal the cpu's bit for
bit, on a GPU they must agree within the op's tolerances.
"""
from __future__ import annotations

import gc

import numpy as np
import pytest

import deepcore as dc
from deepcore import nn
from helpers import put_tensors, tensor_paths, to_numpy
from opinfo import OPS
from test_ops import REGISTRY, Built, _samples

pytestmark = pytest.mark.cuda

GPU = dc.cuda.is_available() and not dc.cuda._fake()


@pytest.fixture(scope="module", autouse=True)
def device():
    """cuda: the GPU when there is one, else the fake device for the module's duration."""
    fake = not GPU
    if fake:
        dc._C._fake_cuda(True)
    yield "cuda"
    if fake:
        dc._C._fake_cuda(False)


def _same(a, b, tols=None, msg=""):
    """Device result `a` (moved back) against cpu result `b`: exact on the fake device."""
    assert a.device.type == "cuda", f"{msg}: result on {a.device}, expected the cuda device"
    x, y = to_numpy(a.cpu()), to_numpy(b)
    assert x.shape == y.shape and x.dtype == y.dtype, f"{msg}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
    if GPU and x.dtype.kind == "f":
        r, t = (tols or {}).get(a.dtype, (1e-5, 1e-6))
        np.testing.assert_allclose(x, y, rtol=max(r, 1e-5), atol=max(t, 1e-6), equal_nan=True,
                                   err_msg=msg)
    else:
        np.testing.assert_array_equal(x, y, err_msg=msg)


def _outputs(out):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, dc.Tensor)]


# ---- the OpInfo database ---------------------------------------------------------------------

def _run_sample(info, sample, rng):
    """Runs one sample on the cpu and on the device; compares values and gradients."""
    b = Built(dc, info, sample)
    entries = tensor_paths(b, lambda path, x: True)
    paths = [p for p, _ in entries]
    floats = [i for i, (p, x) in enumerate(entries) if x.dtype.is_floating_point and
              (info.grad_args is None or p[0] in info.grad_args)]
    want_grad = (REGISTRY[info.name]["differentiable"] and info.grad is not False and
                 sample.grad and sample.check is None and not info.inplace and bool(floats))

    def call(on_device):
        xs = []
        for i, (_, x) in enumerate(entries):
            x = x.detach().clone()
            if on_device:
                x = x.cuda()
            if want_grad and i in floats:
                x.requires_grad_(True)
            xs.append(x)
        a, k = put_tensors(b, paths, xs)
        dc.manual_seed(7)  # random ops draw the same numbers on both devices
        with dc.device("cuda" if on_device else "cpu"):  # where factories put their results
            return info.op(*a, **k), [xs[i] for i in floats]

    out_c, leaves_c = call(False)
    out_d, leaves_d = call(True)
    oc, od = _outputs(out_c), _outputs(out_d)
    assert len(oc) == len(od)
    for o_d, o_c in zip(od, oc):
        if sample.check is None:
            _same(o_d, o_c, info.tols, f"{info.name} {sample!r}")
        else:
            assert o_d.device.type == "cuda" and o_d.shape == o_c.shape
    if not want_grad:
        return "forward"
    diff = [(d, c) for d, c in zip(od, oc) if d.dtype.is_floating_point and d.requires_grad]
    if not diff:
        return "forward"
    ws = [rng.standard_normal(tuple(c.shape)).astype(to_numpy(c).dtype) for _, c in diff]
    sum(((c * dc.tensor(w)).sum() for (_, c), w in zip(diff, ws)), dc.tensor(0.0)).backward()
    sum(((d * dc.tensor(w).cuda()).sum() for (d, _), w in zip(diff, ws)),
        dc.tensor(0.0).cuda()).backward()
    for lc, ld in zip(leaves_c, leaves_d):
        if lc.grad is None:
            assert ld.grad is None, f"{info.name}: a gradient on the device only"
            continue
        assert ld.grad is not None, f"{info.name}: no gradient on the device"
        _same(ld.grad, lc.grad, info.grad_tols, f"{info.name} {sample!r} gradient")
    return "gradient"


def test_opinfo_on_device(capsys):
    """Every OpInfo entry, two float32 samples each (or the first dtype it has), on the device
    against the cpu. Kernels the device lacks are listed, not failed: on a GPU that list is what
    the CUDA backend has still to write."""
    rng = np.random.default_rng(0)
    counts: dict = {}
    missing, failures = {}, []
    for info in OPS:
        dtype = dc.float32 if dc.float32 in info.dtypes else info.dtypes[0]
        for sample in [s for s in _samples(info, dtype) if not s.xfail][:2]:
            try:
                res = _run_sample(info, sample, rng)
            except NotImplementedError as e:
                missing.setdefault(info.name, str(e)[:120])
                break
            except Exception as e:  # noqa: BLE001  (reported with the op's name below)
                failures.append(f"{info.name} {sample!r}: {type(e).__name__}: {str(e)[:300]}")
                break
            counts[res] = counts.get(res, 0) + 1
    with capsys.disabled():
        print(f"\n[cuda opinfo] {'GPU' if GPU else 'fake device'}: {counts}; "
              f"{len(missing)} ops without a device kernel")
        for name, why in sorted(missing.items()):
            print(f"[cuda opinfo] missing {name}: {why}")
        for f in failures:
            print("[cuda opinfo] FAIL", f)
    assert not failures, f"{len(failures)} device mismatches:\n" + "\n".join(failures)
    assert counts.get("gradient", 0) > 200
    if not GPU:  # the fake device serves every cpu kernel
        assert not missing, sorted(missing)


# ---- placement, copies and errors ------------------------------------------------------------

def test_placement_and_copies():
    x = dc.arange(12.0).reshape(3, 4)
    xc = x.cuda()
    assert xc.is_cuda and str(xc.device) == "cuda:0" and xc.device == dc.device("cuda:0")
    assert not x.is_cuda
    assert dc.zeros(2, device="cuda").device.type == "cuda"
    assert dc.randn(2, 3, device="cuda:0").is_cuda
    with dc.device("cuda"):
        assert dc.ones(3).is_cuda
    # strided sources are copied densely, both ways
    t = xc.t()
    assert not t.is_contiguous()
    np.testing.assert_array_equal(t.cpu().numpy(), x.numpy().T)
    np.testing.assert_array_equal(x.t().cuda().cpu().numpy(), x.numpy().T)
    assert xc.to("cuda") is xc and x.cpu() is x
    assert xc.to("cpu", dtype=dc.float64).dtype == dc.float64
    assert x.to("cuda", non_blocking=True).is_cuda
    assert "device='cuda:0'" in repr(xc) and xc.tolist() == x.tolist()
    assert float(xc.sum()) == 66.0 and xc[1, 2].item() == 6.0 and bool(xc.any())
    # copy_ across devices, and a gradient back to where the source was
    y = dc.zeros(3, 4, device="cuda")
    src = dc.ones(3, 4, requires_grad=True)
    y.copy_(src * 2)
    (y * y).sum().backward()
    assert src.grad.device.type == "cpu"
    np.testing.assert_array_equal(src.grad.numpy(), np.full((3, 4), 8.0, np.float32))


def test_device_errors():
    xc = dc.ones(2, 3).cuda()
    with pytest.raises(RuntimeError, match=r"\[add\].*cpu and cuda:0|cuda:0 and cpu"):
        xc + dc.ones(2, 3)
    with pytest.raises(TypeError, match=r"cuda:0 tensor of shape \(2, 3\).*\.cpu\(\)"):
        xc.numpy()
    with pytest.raises(IndexError, match="cuda:5"):
        dc.ones(2, device="cuda:5")
    # a 0-d cpu tensor goes with any device, as a Python number does
    assert (xc * dc.tensor(2.0)).is_cuda


# ---- training --------------------------------------------------------------------------------

def _train(model, data, target, make_opt, loss_fn, steps=3):
    opt = make_opt(model.parameters())
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(data), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return losses


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_optimizers_on_device(opt):
    make = {"sgd": lambda p: dc.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
            "adam": lambda p: dc.optim.Adam(p, lr=1e-2),
            "adamw": lambda p: dc.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
            "rmsprop": lambda p: dc.optim.RMSprop(p, lr=1e-2, momentum=0.5),
            "adagrad": lambda p: dc.optim.Adagrad(p, lr=1e-1)}[opt]
    dc.manual_seed(0)
    cpu = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    dev = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    dev.load_state_dict(cpu.state_dict())
    dev.cuda()
    x, y = dc.randn(8, 5), dc.randint(0, 3, (8,))
    lc = _train(cpu, x, y, make, nn.CrossEntropyLoss())
    ld = _train(dev, x.cuda(), y.cuda(), make, nn.CrossEntropyLoss())
    for a, b in zip(ld, lc):
        _same(a, b)
    for (name, p), q in zip(dev.named_parameters(), cpu.parameters()):
        _same(p, q, msg=name)


def test_resnet18_step_and_checkpoint(tmp_path):
    from deepcore.models import resnet18
    dc.manual_seed(0)
    cpu = resnet18(num_classes=10, small_input=True)
    dev = resnet18(num_classes=10, small_input=True)
    dev.load_state_dict(cpu.state_dict())
    dev.to("cuda")
    x, y = dc.randn(4, 3, 16, 16), dc.randint(0, 10, (4,))
    make = lambda p: dc.optim.SGD(p, lr=0.05, momentum=0.9)  # noqa: E731
    lc = _train(cpu, x, y, make, nn.CrossEntropyLoss(), steps=2)
    ld = _train(dev, x.cuda(), y.cuda(), make, nn.CrossEntropyLoss(), steps=2)
    for a, b in zip(ld, lc):
        _same(a, b, {dc.float32: (1e-4, 1e-5)})
    # BatchNorm's running statistics moved with the module and were updated on the device
    _same(dev.bn1.running_mean, cpu.bn1.running_mean, {dc.float32: (1e-4, 1e-5)})
    # saved from the device, loaded on the cpu and back
    path = tmp_path / "resnet.safetensors"
    dc.save(dev.state_dict(), path)
    back = resnet18(num_classes=10, small_input=True)
    back.load_state_dict(dc.load(path))
    assert back.conv1.weight.device.type == "cpu"
    np.testing.assert_array_equal(to_numpy(back.conv1.weight), to_numpy(dev.conv1.weight.cpu()))
    on_dev = dc.load(path, map_location="cuda")
    assert on_dev["conv1.weight"].is_cuda
    dev.eval(), back.eval()
    with dc.no_grad():
        _same(dev(x.cuda()), back(x), {dc.float32: (1e-4, 1e-5)})
    dev.cpu()
    assert dev.conv1.weight.device.type == "cpu" and dev.bn1.running_var.device.type == "cpu"


def test_gpt_step():
    from deepcore.models import GPT, GPTConfig
    cfg = GPTConfig(vocab_size=31, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0)
    dc.manual_seed(0)
    cpu, dev = GPT(cfg), GPT(cfg)
    dev.load_state_dict(cpu.state_dict())
    dev.cuda()
    idx = dc.randint(0, 31, (2, 16))
    tgt = dc.randint(0, 31, (2, 16))
    make = lambda p: dc.optim.AdamW(p, lr=1e-3)  # noqa: E731

    class WithTargets(nn.Module):  # GPT's forward takes the targets and returns the loss
        def __init__(self, gpt, targets):
            super().__init__()
            self.gpt, self.targets = gpt, targets

        def forward(self, idx):
            return self.gpt(idx, self.targets)[1]
    lc = _train(WithTargets(cpu, tgt), idx, None, make, lambda loss, _: loss, steps=2)
    ld = _train(WithTargets(dev, tgt.cuda()), idx.cuda(), None, make, lambda loss, _: loss,
                steps=2)
    for a, b in zip(ld, lc):
        _same(a, b, {dc.float32: (1e-4, 1e-5)})


def test_keras_fit_on_device():
    from deepcore import keras
    dc.manual_seed(0)
    model = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.build((None, 4))
    model.to("cuda")
    x = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
    hist = model.fit(x, x[:, :2], epochs=2, batch_size=8, verbose=0)
    assert len(hist.history["loss"]) == 2
    assert next(model.parameters()).is_cuda


# ---- the allocator ---------------------------------------------------------------------------

def test_memory_statistics():
    dc.cuda.empty_cache()
    gc.collect()
    base = dc.cuda.memory_allocated()
    dc.cuda.reset_peak_memory_stats()
    keep = [dc.empty(1000, device="cuda") for _ in range(10)]
    assert dc.cuda.memory_allocated() - base >= 40_000
    peak = dc.cuda.max_memory_allocated()
    del keep
    assert dc.cuda.memory_allocated() == base
    assert dc.cuda.max_memory_allocated() == peak >= base + 40_000
    assert dc.cuda.memory_reserved() >= dc.cuda.memory_allocated()


def test_allocator_stress():
    """Many sizes allocated and freed in a shuffled order: the books balance at the end."""
    rng = np.random.default_rng(1)
    gc.collect()  # device tensors of earlier tests held in reference cycles
    base = dc.cuda.memory_allocated()
    live = []
    for i in range(2000):
        if live and rng.random() < 0.45:
            live.pop(int(rng.integers(len(live))))
        else:
            n = int(rng.choice([1, 7, 128, 1000, 70_000, 600_000]))
            t = dc.full((n,), float(i), device="cuda")
            live.append((t, float(i)))
    for t, v in live[:20]:
        assert float(t[0]) == v and float(t[-1]) == v
    del t
    live.clear()
    gc.collect()
    assert dc.cuda.memory_allocated() == base


def test_cuda_queries():
    assert dc.cuda.is_available() and dc.cuda.device_count() >= 1
    props = dc.cuda.get_device_properties(0)
    assert props.multi_processor_count >= 1 and props.memory_bus_width >= 0
    assert isinstance(dc.cuda.get_device_name(), str)
    dc.cuda.synchronize()
    assert dc.cuda.current_device() == 0


# ---- streams, events and pinned memory (Note [Streams and events]) --------------------------

def test_streams_are_current_inside_their_block():
    default = dc.cuda.current_stream()
    assert default == dc.cuda.default_stream() and default.cuda_stream == 0
    s, hi = dc.cuda.Stream(), dc.cuda.Stream(priority=-1)
    assert s != default and hi != s and s.device == dc.device("cuda:0")
    x = dc.arange(1000.0).cuda()
    s.wait_stream(default)  # x was written on the default stream
    with dc.cuda.stream(s) as entered:
        assert entered is s and dc.cuda.current_stream() == s
        with dc.cuda.stream(hi):
            assert dc.cuda.current_stream() == hi
        assert dc.cuda.current_stream() == s
        y = (x * 2).sum()
        x.record_stream(s)
    assert dc.cuda.current_stream() == default
    default.wait_stream(s)
    assert float(y) == 999_000.0
    s.synchronize()
    assert s.query() and default.query()
    with dc.cuda.stream(None):
        assert dc.cuda.current_stream() == default
    dc.cuda.set_stream(s)
    try:
        assert dc.cuda.current_stream() == s
    finally:
        dc.cuda.set_stream(default)


def test_events_order_streams_and_time_work():
    start, end = dc.cuda.Event(enable_timing=True), dc.cuda.Event(enable_timing=True)
    assert start.query()  # never recorded: nothing to wait for
    start.record()
    a = dc.randn(256, 256, device="cuda")
    for _ in range(3):
        a = a @ a / 16
    end.record()
    end.synchronize()
    assert end.query() and start.elapsed_time(end) >= 0.0
    s = dc.cuda.Stream()
    done = s.record_event()
    dc.cuda.current_stream().wait_event(done)
    with pytest.raises(RuntimeError, match="enable_timing=True"):
        done.elapsed_time(end)
    with pytest.raises(RuntimeError, match="recorded first"):
        start.elapsed_time(dc.cuda.Event(enable_timing=True))


def test_pinned_memory_and_non_blocking_copies():
    x = dc.arange(12.0).reshape(3, 4)
    assert not x.is_pinned()
    p = x.t().pin_memory()
    assert p.is_pinned() and p.is_contiguous() and p.pin_memory() is p
    np.testing.assert_array_equal(p.numpy(), x.numpy().T)
    d = p.to("cuda", non_blocking=True)
    dc.cuda.current_stream().synchronize()
    np.testing.assert_array_equal(d.cpu().numpy(), x.numpy().T)
    with pytest.raises(ValueError, match="only cpu tensors"):
        d.pin_memory()
    loader = dc.utils.data.DataLoader(
        dc.utils.data.TensorDataset(dc.arange(6.0), dc.arange(6)), batch_size=4, pin_memory=True,
        collate_fn=lambda rows: {"x": dc.stack([r[0] for r in rows]),
                                 "y": [dc.stack([r[1] for r in rows])]})
    batches = list(loader)
    assert [b["x"].tolist() for b in batches] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]]
    assert all(b["x"].is_pinned() and b["y"][0].is_pinned() for b in batches)
