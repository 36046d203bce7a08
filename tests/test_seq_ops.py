"""Sequence-model ops beyond what the op database expresses: multinomial's distribution and
reproducibility, cumprod's gradient at zeros, einsum's errors and its mapping onto bmm,
F.pad in every mode, non-persistent buffers and tied weights."""
import numpy as np
import pytest
import torch

import deepcore as dc
import deepcore.nn as nn
import deepcore.nn.functional as F

# ---- multinomial ------------------------------------------------------------------------------

# Pearson's chi-square statistic of observed counts against expected ones. For k categories it
# follows chi2(k - 1) as the sample count grows; chi2(3) exceeds 30 with probability 1.4e-6 and
# chi2(4) exceeds 32 with probability 1.3e-6, so the bounds below fail a correct sampler about
# once in a million seeds, while a sampler off by 2% on one category of 0.2 over 200k draws
# (about 18 standard deviations) exceeds them.
_CHI2_BOUND = {3: 30.0, 4: 32.0}


def _chi2(counts, probs):
    n = counts.sum()
    expected = n * probs
    keep = expected > 0
    assert (counts[~keep] == 0).all(), "a zero-probability category was drawn"
    return float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())


@pytest.mark.parametrize("dtype", [dc.float32, dc.float64])
def test_multinomial_with_replacement_matches_the_distribution(dtype):
    dc.manual_seed(0)
    w = np.array([1.0, 2.0, 3.0, 4.0, 0.0])  # unnormalised, with a zero category
    s = dc.multinomial(dc.tensor(w, dtype=dtype), 200_000, replacement=True)
    assert s.dtype == dc.int64 and tuple(s.shape) == (200_000,)
    counts = np.bincount(s.numpy(), minlength=5)
    assert _chi2(counts, w / w.sum()) < _CHI2_BOUND[3]


def test_multinomial_without_replacement_first_and_second_draws():
    dc.manual_seed(1)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    rows = 50_000
    s = dc.tensor(np.tile(p, (rows, 1))).multinomial(2).numpy()
    assert s.shape == (rows, 2)
    assert (s[:, 0] != s[:, 1]).all()
    # The first draw follows p; the second follows sum_i p_i p_j / (1 - p_i), j != i.
    second = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(4) if i != j)
                       for j in range(4)])
    assert _chi2(np.bincount(s[:, 0], minlength=4), p) < _CHI2_BOUND[3]
    assert _chi2(np.bincount(s[:, 1], minlength=4), second) < _CHI2_BOUND[3]


def test_multinomial_without_replacement_is_a_permutation_when_all_are_drawn():
    dc.manual_seed(2)
    w = dc.rand(64, 100) + 0.01
    s = dc.multinomial(w, 100).numpy()
    assert (np.sort(s, axis=1) == np.arange(100)).all()


def test_multinomial_never_draws_zero_weights_without_replacement():
    dc.manual_seed(3)
    w = dc.tensor([[0.0, 1.0, 0.0, 2.0, 3.0]] * 200)
    s = dc.multinomial(w, 3).numpy()
    assert set(np.unique(s).tolist()) == {1, 3, 4}


def test_multinomial_is_reproducible_under_manual_seed():
    w = dc.tensor([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])
    dc.manual_seed(42)
    a, b = dc.multinomial(w, 5, True), dc.multinomial(w, 2)
    dc.manual_seed(42)
    c, d = w.multinomial(5, replacement=True), w.multinomial(2)
    assert a.tolist() == c.tolist() and b.tolist() == d.tolist()
    # Another seed gives other draws (50 draws agreeing by chance: probability < 1e-9).
    dc.manual_seed(42)
    same = dc.multinomial(w, 50, True)
    dc.manual_seed(43)
    assert dc.multinomial(w, 50, True).tolist() != same.tolist()


def test_multinomial_follows_its_generator():
    w = dc.tensor([[0.0, 1.0, 0.0, 2.0, 3.0]] * 300)
    g = dc.Generator().manual_seed(7)
    a = dc.multinomial(w, 3, generator=g)
    g.manual_seed(7)
    dc.manual_seed(1)
    dc.rand(10)  # the global stream moves; the generator's draws do not
    b = w.multinomial(3, generator=g)
    assert a.tolist() == b.tolist() and a.dtype == dc.int64 and tuple(a.shape) == (300, 3)
    rows = a.numpy()
    assert set(np.unique(rows).tolist()) == {1, 3, 4}
    assert all(len(set(r)) == 3 for r in rows.tolist())  # without replacement: distinct
    # category 4 (weight 3/6) comes first about half the time: 300 draws, 6 sigma is 0.17
    assert abs((rows[:, 0] == 4).mean() - 0.5) < 0.18
    with pytest.raises(ValueError, match="multinomial.*3 samples without replacement"):
        dc.multinomial(dc.tensor([1.0, 0.0, 1.0]), 3, generator=g)
    with pytest.raises(ValueError, match="multinomial.*sums to 0"):
        dc.multinomial(dc.zeros(2, 3), 1, True, generator=g)


def test_multinomial_sampling_loop_of_a_language_model():
    # The usual decoding step: softmax of logits / temperature, one token per sequence.
    dc.manual_seed(0)
    logits = dc.randn(4, 50)
    tok = dc.multinomial(F.softmax(logits / 0.7, dim=-1), num_samples=1)
    assert tuple(tok.shape) == (4, 1) and tok.dtype == dc.int64
    assert ((tok >= 0) & (tok < 50)).all()


@pytest.mark.parametrize("w, n, repl, err, words", [
    ([0.5, -0.1, 0.6], 1, True, ValueError, "non-negative"),
    ([0.5, float("inf")], 1, True, ValueError, "finite"),
    ([0.5, float("nan")], 1, True, ValueError, "finite"),
    ([[0.5, 0.5], [0.0, 0.0]], 1, True, ValueError, "sums to 0"),
    ([0.5, 0.5, 0.2], 4, False, ValueError, "without replacement"),
    ([0.5, 0.0, 0.2], 3, False, ValueError, "non-zero probability"),
    ([[[0.5]]], 1, True, ValueError, "1-D or 2-D"),
    ([0.5, 0.5], 0, True, ValueError, "num_samples"),
])
def test_multinomial_errors_name_the_op_and_shape(w, n, repl, err, words):
    with pytest.raises(err, match=r"\[multinomial\]") as info:
        dc.multinomial(dc.tensor(w), n, repl)
    assert words in str(info.value)
    with pytest.raises(TypeError, match=r"\[multinomial\].*int64"):
        dc.multinomial(dc.tensor([1, 2]), 1)
    # torch refuses the same inputs (except the last row of zeros: torch documents that
    # num_samples must not exceed the non-zero weights, but its CPU kernel draws them anyway).
    if words == "non-zero probability":
        return
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor(w), n, repl)


def test_multinomial_on_meta_gives_the_shape():
    s = dc.multinomial(dc.empty(3, 7, device="meta"), 4)
    assert s.is_meta and tuple(s.shape) == (3, 4) and s.dtype == dc.int64


# ---- cumprod / cummax / logcumsumexp ----------------------------------------------------------

@pytest.mark.parametrize("values", [
    [2.0, 0.0, 3.0, 0.0, 4.0], [0.0, 0.0, 1.5], [1.5, -2.0, 0.5, 0.0], [0.0], [3.0, 2.0, 0.0]])
def test_cumprod_gradient_at_zeros_matches_torch(values):
    g = np.linspace(-1, 2, len(values))
    x = dc.tensor(values, dtype=dc.float64, requires_grad=True)
    tx = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    dc.cumprod(x, 0).backward(dc.tensor(g))
    torch.cumprod(tx, 0).backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_cumprod_second_derivative_at_zeros_matches_torch():
    values = [[1.5, 0.0, 2.0, -1.0], [0.0, 2.0, 0.0, 3.0]]
    x = dc.tensor(values, dtype=dc.float64, requires_grad=True)
    tx = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    (gx,) = dc.autograd.grad(x.cumprod(1).sum(), x, create_graph=True)
    (tgx,) = torch.autograd.grad(tx.cumprod(1).sum(), tx, create_graph=True)
    (gx * gx).sum().backward()
    (tgx * tgx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_cumprod_of_integers_is_int64_and_dtype_casts_first():
    x = dc.tensor([[1, 2, 3], [4, 5, 6]], dtype=dc.int32)
    assert x.cumprod(1).dtype == dc.int64
    assert x.cumprod(1).tolist() == [[1, 2, 6], [4, 20, 120]]
    assert dc.cumprod(x, 0, dtype=dc.float64).dtype == dc.float64


def test_logcumsumexp_is_stable_far_from_zero():
    v = [-1000.0, 0.0, 1000.0, -float("inf")]
    a = dc.logcumsumexp(dc.tensor(v, dtype=dc.float64), 0).numpy()
    b = torch.logcumsumexp(torch.tensor(v, dtype=torch.float64), 0).numpy()
    np.testing.assert_allclose(a, b)
    with pytest.raises(TypeError, match=r"\[logcumsumexp\].*int64"):
        dc.logcumsumexp(dc.tensor([1, 2]), 0)


def test_cummax_returns_named_values_and_indices():
    r = dc.cummax(dc.tensor([1.0, 3.0, 2.0, 3.0, float("nan"), 5.0]), 0)
    t = torch.cummax(torch.tensor([1.0, 3.0, 2.0, 3.0, float("nan"), 5.0]), 0)
    np.testing.assert_array_equal(r.values.numpy(), t.values.numpy())
    assert r.indices.tolist() == t.indices.tolist()
    assert dc.tensor([3, 1, 2]).cummin(0).indices.tolist() == [0, 1, 1]


# ---- einsum -----------------------------------------------------------------------------------

def test_einsum_attention_matches_torch_and_runs_as_bmm():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 4, 8, 16)).astype(np.float32) for _ in range(3))
    dq, dk, dv = (dc.tensor(a, requires_grad=True) for a in (q, k, v))
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    with dc.profiler.profile() as prof:
        att = dc.einsum("bhqd,bhkd->bhqk", dq, dk).softmax(-1)
        out = dc.einsum("bhqk,bhkd->bhqd", att, dv)
    names = [e.name for e in prof.events()]
    assert names.count("bmm") == 2, names
    tout = torch.einsum("bhqk,bhkd->bhqd", torch.einsum("bhqd,bhkd->bhqk", tq, tk).softmax(-1),
                        tv)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-5,
                               atol=1e-5)
    out.sum().backward()
    tout.sum().backward()
    for a, b in ((dq, tq), (dk, tk), (dv, tv)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)


_EINSUM_SIZES = dict(zip("ijklabcdehqABC", [2, 3, 4, 5, 2, 3, 4, 2, 3, 2, 3, 2, 3, 4]))


@pytest.mark.parametrize("eq", [
    "i...->i", "...j,...j", "ba,ab->", "Ab,bC", "i,i", "i,i->i", "ij,kj->ik", "ijk,ikl->ijl",
    "bhqd,bkd->bhqk", "ij,jk,kl->il", "ij,jk,kl", "iij->j", "iji->j", "ii->", "...ii->...i",
    "i,j,k->ijk", "bi,bj->", "abc,cd,de->abe", "a...b,b...->a...", "ij,ij,ij->ij", "->"])
def test_einsum_matches_torch_forward_and_backward(eq):
    rng = np.random.default_rng(0)
    ops = []
    for term in eq.split("->")[0].split(","):
        head, ell, tail = term.partition("...")
        shape = [_EINSUM_SIZES[c] for c in head] + ([2, 3] if ell else []) + \
            [_EINSUM_SIZES[c] for c in tail]
        ops.append(rng.standard_normal(shape))
    tt = [torch.tensor(a, requires_grad=True) for a in ops]
    dd = [dc.tensor(a, requires_grad=True) for a in ops]
    ty, dy = torch.einsum(eq, *tt), dc.einsum(eq, *dd)
    assert tuple(dy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    dy.backward(dc.tensor(g))
    for a, b in zip(dd, tt):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("eq, shapes, words", [
    ("ij,jk->ik", [(2, 3), (4, 5)], "size"),
    ("ij,jk", [(2, 3)], "operand"),
    ("ij->ik", [(2, 3)], "does not appear"),
    ("ij->ii", [(2, 3)], "repeat"),
    ("ijk", [(2, 3)], "subscripts"),
    ("i1", [(2, 3)], "invalid subscript"),
    ("ii->i", [(2, 3)], "has size 3"),
    ("...i...", [(2, 3)], "more than one ellipsis"),
])
def test_einsum_errors_name_the_op(eq, shapes, words):
    ops = [dc.ones(*s) for s in shapes]
    with pytest.raises(ValueError, match=r"\[einsum\]") as info:
        dc.einsum(eq, *ops)
    assert words in str(info.value)
    with pytest.raises(RuntimeError):
        torch.einsum(eq, *[torch.ones(*s) for s in shapes])


# ---- F.pad ------------------------------------------------------------------------------------

_PADS = {1: [[1, 2], [2, 0], [-1, 2], [1, -2], [0, 0]],
         2: [[1, 2, 2, 1], [0, 1, 2, 0], [-1, 2, 1, -1]],
         3: [[1, 2, 2, 1, 1, 1], [0, 1, -1, 2, 1, 0]]}


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("spatial", [1, 2, 3])
def test_pad_matches_torch_forward_and_backward(mode, spatial):
    rng = np.random.default_rng(spatial)
    shape = (2, 3, 5, 6, 7)[:spatial + 2]
    for pad in _PADS[spatial]:
        x = rng.standard_normal(shape)
        tx = torch.tensor(x, requires_grad=True)
        dx = dc.tensor(x, requires_grad=True)
        kw = {"value": 1.5} if mode == "constant" else {}
        ty = torch.nn.functional.pad(tx, pad, mode=mode, **kw)
        dy = F.pad(dx, pad, mode=mode, **kw)
        assert tuple(dy.shape) == tuple(ty.shape), (mode, pad)
        np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy())
        g = rng.standard_normal(tuple(ty.shape))
        ty.backward(torch.tensor(g))
        dy.backward(dc.tensor(g))
        np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_pad_rejects_reflection_wider_than_the_input():
    with pytest.raises(ValueError, match=r"\[pad\]"):
        F.pad(dc.ones(1, 2, 3), [3, 0], mode="reflect")


@pytest.mark.parametrize("shape, pad", [((0,), [1, -1]), ((2, 5), [-6, 8])])
def test_pad_cannot_crop_more_than_the_input(shape, pad):
    with pytest.raises(ValueError, match=r"\[pad\].*crops more"):
        F.pad(dc.ones(*shape), pad)
    with pytest.raises(RuntimeError):
        torch.nn.functional.pad(torch.ones(*shape), pad)


# ---- buffers and tied weights -----------------------------------------------------------------

class _Tied(nn.Module):
    def __init__(self, lib):
        super().__init__()
        self.embedding = lib.nn.Embedding(11, 4)
        self.lm_head = lib.nn.Linear(4, 11, bias=False)
        self.lm_head.weight = self.embedding.weight
        self.register_buffer("mask", lib.tril(lib.ones(3, 3)), persistent=False)
        self.register_buffer("scale", lib.ones(1))

    def forward(self, idx):
        return self.lm_head(self.embedding(idx))


class _TiedTorch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(11, 4)
        self.lm_head = torch.nn.Linear(4, 11, bias=False)
        self.lm_head.weight = self.embedding.weight
        self.register_buffer("mask", torch.tril(torch.ones(3, 3)), persistent=False)
        self.register_buffer("scale", torch.ones(1))

    def forward(self, idx):
        return self.lm_head(self.embedding(idx))


def test_non_persistent_buffer_is_left_out_of_state_dict_but_moves():
    m = _Tied(dc)
    assert list(m.state_dict()) == list(_TiedTorch().state_dict())
    assert "mask" not in m.state_dict() and "mask" in dict(m.named_buffers())
    m.double()
    assert m.mask.dtype == dc.float64 and m.scale.dtype == dc.float64
    m.to(dtype=dc.float32)
    assert m.mask.dtype == dc.float32


def test_tied_weight_is_one_parameter_whose_gradient_sums_both_uses():
    m, tm = _Tied(dc), _TiedTorch()
    assert m.lm_head.weight is m.embedding.weight
    assert len(list(m.parameters())) == len(list(tm.parameters())) == 1
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    tm.embedding.weight.data = torch.tensor(m.embedding.weight.detach().numpy())
    idx = [[1, 5, 7], [2, 2, 10]]
    m(dc.tensor(idx)).pow(2).sum().backward()
    tm(torch.tensor(idx)).pow(2).sum().backward()
    np.testing.assert_allclose(m.embedding.weight.grad.numpy(), tm.embedding.weight.grad.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_tied_state_dict_round_trip_keeps_the_tie(tmp_path):
    m = _Tied(dc)
    sd = m.state_dict()
    assert list(sd) == list(_TiedTorch().state_dict()) == [
        "scale", "embedding.weight", "lm_head.weight"]
    dc.save(sd, tmp_path / "tied.safetensors")
    m2 = _Tied(dc)
    m2.load_state_dict(dc.load(tmp_path / "tied.safetensors"))
    assert m2.lm_head.weight is m2.embedding.weight
    np.testing.assert_array_equal(m2.lm_head.weight.detach().numpy(),
                                  m.embedding.weight.detach().numpy())
    with dc.no_grad():
        m2.embedding.weight.add_(1.0)
    assert m2.lm_head.weight is m2.embedding.weight


def test_loading_a_torch_state_dict_of_a_tied_model():
    tm = _TiedTorch()
    sd = {k: dc.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()}
    m = _Tied(dc)
    m.load_state_dict(sd)
    assert m.lm_head.weight is m.embedding.weight
    idx = [[0, 3, 9]]
    np.testing.assert_allclose(m(dc.tensor(idx)).detach().numpy(),
                               tm(torch.tensor(idx)).detach().numpy(), rtol=1e-5, atol=1e-6)
