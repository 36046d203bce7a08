"""The dispatcher's seams: devices (cpu, meta, the empty cuda slot), dispatch keys, the profiler
key and the meta-device planner."""
import json

import numpy as np
import pytest

import deepcore as dc
from deepcore import nn
from deepcore.profiler import profile, record_function


# ---- devices ---------------------------------------------------------------------------------

def test_tensor_device_reports_like_torch():
    x = dc.ones(2, 3)
    assert x.device == dc.device("cpu") and x.device.type == "cpu" and str(x.device) == "cpu"
    m = x.to("meta")
    assert m.device.type == "meta" and m.is_meta and not x.is_meta
    assert m.shape == x.shape and m.dtype == x.dtype
    assert repr(m) == "tensor(..., device='meta', size=(2, 3))"
    assert x.to("cpu") is x


@pytest.mark.parametrize("factory", [
    lambda d: dc.empty(2, 3, device=d), lambda d: dc.zeros(2, 3, device=d),
    lambda d: dc.ones((2, 3), device=d), lambda d: dc.full((2, 3), 7.0, device=d),
    lambda d: dc.rand(2, 3, device=d), lambda d: dc.randn(2, 3, device=d),
    lambda d: dc.randint(0, 5, (2, 3), device=d), lambda d: dc.arange(6, device=d),
    lambda d: dc.linspace(0, 1, 6, device=d), lambda d: dc.eye(3, device=d),
    lambda d: dc.zeros_like(dc.ones(2, 3), device=d), lambda d: dc.tensor([1.0, 2.0], device=d),
    lambda d: dc.as_tensor(np.ones(3), device=d),
])
def test_every_factory_takes_device(factory):
    cpu, meta = factory("cpu"), factory("meta")
    assert cpu.device.type == "cpu" and meta.device.type == "meta"
    assert meta.shape == cpu.shape and meta.dtype == cpu.dtype


def test_like_factories_follow_their_input():
    m = dc.ones(4, device="meta")
    for f in (dc.zeros_like, dc.ones_like, dc.empty_like, dc.rand_like, dc.randn_like):
        assert f(m).device.type == "meta"


def test_mixing_devices_names_both():
    with pytest.raises(RuntimeError, match=r"\[add\].*meta and cpu"):
        dc.ones(3, device="meta") + dc.ones(3)
    with pytest.raises(RuntimeError, match=r"\[cat\].*cpu and meta"):
        dc.cat([dc.ones(3), dc.ones(3, device="meta")])
    # Python numbers go with any device, as in torch.
    assert (dc.ones(3, device="meta") * 2.5).device.type == "meta"


def test_meta_has_no_values_and_says_so():
    m = dc.ones(3, device="meta")
    for f in (lambda: m.numpy(), lambda: m.tolist(), lambda: m[:1].item(), lambda: m.cpu(),
              lambda: dc.nonzero(m)):
        with pytest.raises((RuntimeError, NotImplementedError), match="meta"):
            f()


def test_cuda_slot_is_empty_in_a_cpu_build():
    for f in (lambda: dc.ones(2, device="cuda"), lambda: dc.ones(2).to("cuda"),
              lambda: dc.ones(2).cuda(), lambda: nn.Linear(2, 2).cuda()):
        with pytest.raises(RuntimeError, match="CUDA"):
            f()
    with pytest.raises(ValueError, match="device"):
        dc.ones(2, device="tpu")


def test_meta_forward_and_backward_match_cpu_shapes():
    dc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    x = dc.randn(2, 3, 8, 8)
    y = model(x)
    y.sum().backward()
    cpu_grads = {n: tuple(p.grad.shape) for n, p in model.named_parameters()}
    model.zero_grad()
    model.to("meta")
    assert all(p.device.type == "meta" for p in model.parameters())
    ym = model(x.to("meta"))
    assert ym.shape == y.shape and ym.is_meta
    ym.sum().backward()
    assert {n: tuple(p.grad.shape) for n, p in model.named_parameters()} == cpu_grads
    assert all(p.grad.is_meta for p in model.parameters())


def test_meta_memory_is_counted_not_allocated():
    live0, _ = dc._C._meta_memory()
    big = dc.empty(1 << 30, 1 << 10, device="meta")  # 4 TiB: only counted
    assert dc._C._meta_memory()[0] - live0 == 4 << 40
    del big
    assert dc._C._meta_memory()[0] == live0


# ---- dispatch keys -----------------------------------------------------------------------------

def test_grad_mode_is_the_autograd_key():
    assert "Autograd" in dc._C._dispatch_keys()
    with dc.no_grad():
        assert "Autograd" not in dc._C._dispatch_keys()
    assert "Profiler" not in dc._C._dispatch_keys()
    with profile():
        assert "Profiler" in dc._C._dispatch_keys()
    assert "Profiler" not in dc._C._dispatch_keys()


# ---- profiler ----------------------------------------------------------------------------------

def test_profiler_records_names_shapes_flops_and_nesting(tmp_path):
    a, b = dc.randn(8, 16), dc.randn(16, 4)
    w = dc.randn(5, 3, 3, 3)
    x = dc.randn(2, 3, 10, 10)
    with profile(record_shapes=True) as prof:
        with record_function("block"):
            c = dc.matmul(a, b)
            y = nn.functional.conv2d(x, w)
        dc.relu(c)
    events = prof.events()
    by_name = {}
    for e in events:
        by_name.setdefault(e.name, []).append(e)
    assert by_name["matmul"][0].input_shapes == [(8, 16), (16, 4)]
    assert by_name["matmul"][0].flops + sum(e.flops for e in by_name.get("mm", [])) \
        == 2 * 8 * 16 * 4
    assert sum(e.flops for e in by_name["conv2d"]) == 2 * 2 * 5 * 8 * 8 * 3 * 3 * 3
    block = by_name["block"][0]
    assert block.is_user_annotation and block.depth == 0
    assert by_name["relu"][0].depth == 0 and by_name["matmul"][0].depth == 1
    # Self time never exceeds total time, and the block's total covers its children.
    for e in events:
        assert 0 <= e.self_cpu_time_total <= e.cpu_time_total + 1e-3
    inner = sum(e.cpu_time_total for e in events if e.depth == 1)
    assert block.cpu_time_total + 1e-3 >= inner
    assert y.shape == (2, 5, 8, 8)

    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=5)
    assert "Self CPU %" in table and "# of Calls" in table and "Total MFLOPs" in table
    assert len([ln for ln in table.splitlines() if ln and not ln.startswith("-")]) <= 5 + 2
    grouped = prof.key_averages(group_by_input_shape=True).table()
    assert "[[8, 16], [16, 4]]" in grouped
    with pytest.raises(ValueError, match="sort_by"):
        prof.key_averages().table(sort_by="nonsense")

    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())["traceEvents"]
    assert {ev["ph"] for ev in trace} == {"X"}
    assert any(ev["name"] == "block" and ev["cat"] == "user_annotation" for ev in trace)
    mm = next(ev for ev in trace if ev["name"] == "matmul")
    assert mm["args"]["Input Shapes"] == [[8, 16], [16, 4]] and mm["dur"] >= 0


def test_profiler_records_backward_and_stops_cleanly():
    x = dc.randn(4, 4, requires_grad=True)
    with profile() as prof:
        (x.exp() * 2).sum().backward()
    names = [e.name for e in prof.events()]
    assert "exp" in names and "sum" in names and "mul" in names
    assert not dc._C._profiler_enabled()
    with profile() as again:  # a second profile starts empty
        dc.ones(2)
    assert all(e.name != "exp" for e in again.events())


def test_record_function_is_a_decorator_and_checks_order():
    @record_function("helper")
    def helper():
        return dc.ones(2) + 1

    with profile() as prof:
        helper()
    ev = {e.name: e for e in prof.events()}
    assert ev["helper"].is_user_annotation and ev["add"].depth == 1
    a = dc._C._record_function_enter("a")
    b = dc._C._record_function_enter("b")
    with pytest.raises(RuntimeError, match="reverse order"):
        dc._C._record_function_exit(a)
    dc._C._record_function_exit(b)
    dc._C._record_function_exit(a)


# ---- plan ----------------------------------------------------------------------------------------

def test_plan_matches_a_real_step_and_restores_the_model():
    dc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(6 * 12 * 12, 10))
    params = {n: p for n, p in model.named_parameters()}
    before = {n: p.detach().numpy().copy() for n, p in params.items()}
    model.eval()
    p = dc.utils.plan(model, (4, 1, 28, 28), train=True)
    assert p.output_shapes == (4, 10)
    assert p.num_parameters == sum(t.numel() for t in params.values()) == 6 * 25 + 6 + 864 * 10 + 10
    conv = 2 * 4 * 6 * 24 * 24 * 25
    fc = 2 * 4 * 864 * 10
    assert p.forward_flops == conv + fc
    # The input needs no gradient: conv's backward computes only the weight gradient.
    assert p.backward_flops == conv + 2 * fc
    assert [lp.name for lp in p.layers] == ["0", "1", "2", "3", "4"]
    assert p.layers[0].output_shapes == [(4, 6, 24, 24)] and p.layers[0].flops == conv
    assert p.peak_activation_bytes > 4 * 6 * 24 * 24 * 4  # at least conv's output
    text = str(p)
    assert f"{p.num_parameters:,}" in text and "Peak activation memory" in text
    # The model is untouched: same Parameter objects, values, mode, no gradients.
    assert {n: q for n, q in model.named_parameters()} == params
    for n, q in params.items():
        assert q.device.type == "cpu" and q.grad is None
        np.testing.assert_array_equal(q.detach().numpy(), before[n])
    assert not model.training


def test_plan_accepts_several_inputs_and_inference():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, a, b):
            return self.fc(a) + b, a.sum()

    p = dc.utils.plan(Two(), [(5, 3), (5, 2)], train=False)
    assert p.output_shapes == ((5, 2), ())
    assert p.backward_flops == 0 and p.forward_flops == 2 * 5 * 3 * 2
    with pytest.raises(TypeError, match="example_input_shapes"):
        dc.utils.plan(Two(), "not a shape")


# ---- the seam holds: every public op enters through the dispatcher ---------------------------

_CSRC = __import__("pathlib").Path(__file__).resolve().parent.parent / "csrc"
_NOT_OPS = {"wrap_scalar", "result_type", "check_inplace", "inplace_into_view_needs_history",
            "reduction_from_name"}  # helpers of the op layer, not ops


def _public_definitions(text):
    """(name, first statement) of each function defined at namespace scope outside anonymous
    namespaces."""
    import re
    out, anon = [], 0
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("namespace {"):
            anon += 1
        elif line.startswith("}  // namespace") and anon and not line.startswith(
                "}  // namespace dc"):
            anon -= 1
        m = re.match(r"^(?:[A-Za-z_][\w:<>, ]*[\s&*])(\w+)\((.*)$", line)
        if anon or not m or line.startswith((" ", "#", "//", "return")):
            continue
        sig = line
        j = i
        while "{" not in sig and not sig.rstrip().endswith(";") and j + 1 < len(lines):
            j += 1
            sig += lines[j]
        if "{" not in sig:
            continue
        first = lines[j + 1].strip() if sig.rstrip().endswith("{") else sig.split("{", 1)[1]
        out.append((m.group(1), first))
    return out


def test_every_public_op_enters_through_the_dispatcher():
    import re
    missing = []
    for f in sorted((_CSRC / "ops").glob("*.cpp")):
        for name, first in _public_definitions(f.read_text()):
            if name in _NOT_OPS or name.startswith("DC_"):
                continue
            if not first.startswith("DC_OP_GUARD"):
                missing.append(f"{f.name}: {name}")
    assert not missing, "public ops without DC_OP_GUARD as their first statement:\n" + \
        "\n".join(missing)
    # ... and never call a cpu kernel directly: kernels go through the per-device table.
    direct = [f"{f.name}:{n + 1}: {ln.strip()}" for f in sorted((_CSRC / "ops").glob("*.cpp"))
              for n, ln in enumerate(f.read_text().splitlines())
              if re.search(r"\bcpu::[a-z_0-9]+\(", ln)]
    assert not direct, "\n".join(direct)
