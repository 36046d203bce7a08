"""Idioms of real PyTorch training scripts, run with ``import deepcore as torch``.

Each test is a small snippet in the style of code found in widely used example programs
(word-level language models, char-level GPTs, their trainers and samplers): the set-up
boilerplate they run before training, the deprecated spellings they still use, and the
data-loading patterns they rely on. Numeric results are compared with PyTorch.
"""
import itertools
import warnings

import numpy as np
import pytest
import torch

import deepcore as dc
import deepcore.nn as nn
from deepcore.utils.data import DataLoader, Dataset, RandomSampler


# ---- set-up boilerplate: device queries and backend flags --------------------------------------

def test_cuda_queries_on_a_build_without_cuda():
    device = "cuda" if dc.cuda.is_available() else "cpu"
    assert device == "cpu"
    assert dc.cuda.device_count() == 0
    dtype = "bfloat16" if dc.cuda.is_available() and dc.cuda.is_bf16_supported() else "float32"
    assert dtype == "float32"
    dc.manual_seed(1337)
    dc.cuda.manual_seed(1337)  # scripts seed the GPU unconditionally
    dc.cuda.manual_seed_all(1337)
    dc.cuda.empty_cache()
    with pytest.raises(RuntimeError, match="built without CUDA|no CUDA device"):
        dc.cuda.synchronize()


def test_accelerator_choice_falls_back_to_cpu():
    # The tutorials' device line.
    device = (dc.accelerator.current_accelerator().type if dc.accelerator.is_available()
              else "cpu")
    assert device == "cpu"
    assert dc.accelerator.current_accelerator() is None
    assert dc.accelerator.device_count() == 0
    assert nn.Linear(2, 2).to(device)(dc.ones(1, 2)).device == dc.device("cpu")


def test_backend_flags_have_torchs_defaults():
    # Scripts write `torch.backends.cudnn.benchmark = True` and friends before training.
    import deepcore.backends.cudnn as cudnn
    for ours, theirs in ((dc.backends.cuda.matmul, torch.backends.cuda.matmul),
                         (cudnn, torch.backends.cudnn)):
        assert ours.allow_tf32 == theirs.allow_tf32
    assert cudnn.benchmark == torch.backends.cudnn.benchmark
    assert cudnn.deterministic == torch.backends.cudnn.deterministic
    assert not dc.backends.mps.is_available()
    assert dc.backends.cudnn.is_available() is False


def test_tf32_flag_is_the_float32_matmul_precision():
    # torch ties cuda.matmul.allow_tf32 to set_float32_matmul_precision both ways.
    m = dc.backends.cuda.matmul
    try:
        for precision in ("high", "medium", "highest"):
            dc.set_float32_matmul_precision(precision)
            torch.set_float32_matmul_precision(precision)
            assert m.allow_tf32 == torch.backends.cuda.matmul.allow_tf32
        m.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
        assert dc.get_float32_matmul_precision() == torch.get_float32_matmul_precision()
    finally:
        dc.set_float32_matmul_precision("highest")
        torch.set_float32_matmul_precision("highest")
    assert m.allow_tf32 is False


def test_preferred_blas_library():
    assert dc.backends.cuda.preferred_blas_library() == "cublas"
    try:
        assert dc.backends.cuda.preferred_blas_library("deepcore") == "deepcore"
        assert dc.backends.cuda.preferred_blas_library() == "deepcore"
        with pytest.raises(ValueError, match="unknown library 'mkl'"):
            dc.backends.cuda.preferred_blas_library("mkl")
    finally:
        assert dc.backends.cuda.preferred_blas_library("default") == "cublas"


def test_data_parallel_wraps_and_calls_the_model():
    model = nn.Linear(3, 2)
    wrapped = nn.DataParallel(model)
    x = dc.randn(4, 3)
    assert wrapped.module is model
    np.testing.assert_array_equal(wrapped(x).detach().numpy(), model(x).detach().numpy())
    assert set(wrapped.state_dict()) == {"module.weight", "module.bias"}


def test_adamw_signature_is_inspectable():
    # nanoGPT: fused_available = 'fused' in inspect.signature(torch.optim.AdamW).parameters
    import inspect
    ours = inspect.signature(dc.optim.AdamW).parameters
    theirs = inspect.signature(torch.optim.AdamW).parameters
    assert list(ours)[:5] == list(theirs)[:5]  # params, lr, betas, eps, weight_decay
    assert ours["betas"].default == theirs["betas"].default


def test_float32_matmul_precision_reads_back():
    assert dc.get_float32_matmul_precision() == "highest"
    dc.set_float32_matmul_precision("high")
    try:
        assert dc.get_float32_matmul_precision() == "high"
    finally:
        dc.set_float32_matmul_precision("highest")
    with pytest.raises(RuntimeError):
        dc.set_float32_matmul_precision("fast")


@pytest.mark.parametrize("name", ["float32", "float64"])
def test_finfo_matches_torch(name):
    f, tf = dc.finfo(getattr(dc, name)), torch.finfo(getattr(torch, name))
    for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(f, attr) == getattr(tf, attr), attr
    scores = dc.zeros(2, 2)
    masked = scores.masked_fill(dc.eye(2) == 0, dc.finfo(scores.dtype).min)
    assert masked[0, 1].item() == torch.finfo(torch.float32).min
    assert dc.finfo().dtype == "float32"
    with pytest.raises(TypeError):
        dc.finfo(dc.int64)


@pytest.mark.parametrize("name", ["int32", "int64"])
def test_iinfo_matches_torch(name):
    i, ti = dc.iinfo(getattr(dc, name)), torch.iinfo(getattr(torch, name))
    assert (i.bits, i.max, i.min, i.dtype) == (ti.bits, ti.max, ti.min, ti.dtype)
    with pytest.raises(TypeError):
        dc.iinfo(dc.float32)


# ---- GradScaler -------------------------------------------------------------------------------

def _scaler_loop(lib, scaler, steps, inf_at):
    lib.manual_seed(0)
    w = lib.nn.Parameter(lib.tensor([[0.5, -1.0], [2.0, 0.25]]))
    opt = lib.optim.SGD([w], lr=0.1)
    x = lib.tensor([[1.0, 2.0], [3.0, -1.0]])
    for step in range(steps):
        loss = (x @ w).pow(2).mean()
        if step == inf_at:
            loss = loss * float("inf")
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        lib.nn.utils.clip_grad_norm_([w], 1.0)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
    return w.detach().numpy(), scaler.get_scale()


def test_disabled_grad_scaler_is_a_plain_training_loop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaler = dc.cuda.amp.GradScaler(enabled=True)  # no CUDA: disables itself
    assert not scaler.is_enabled()
    w, scale = _scaler_loop(dc, scaler, 3, inf_at=None)
    tw, _ = _scaler_loop(torch, torch.amp.GradScaler("cpu", enabled=False), 3, inf_at=None)
    np.testing.assert_allclose(w, tw, rtol=1e-6)
    assert scale == 1.0


def test_enabled_grad_scaler_matches_torch_and_skips_inf_steps():
    kw = dict(init_scale=2.0**8, growth_interval=2)
    w, scale = _scaler_loop(dc, dc.amp.GradScaler("cpu", **kw), 6, inf_at=2)
    tw, tscale = _scaler_loop(torch, torch.amp.GradScaler("cpu", **kw), 6, inf_at=2)
    np.testing.assert_allclose(w, tw, rtol=1e-6)
    assert scale == tscale


# ---- deprecated spellings that torch still accepts ---------------------------------------------

def test_clip_grad_norm_old_name():
    w = dc.tensor([3.0, 4.0], requires_grad=True)
    (w * w).sum().backward()
    with pytest.warns(FutureWarning, match="clip_grad_norm_"):
        total = nn.utils.clip_grad_norm([w], 0.25)
    tw = torch.tensor([3.0, 4.0], requires_grad=True)
    (tw * tw).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ttotal = torch.nn.utils.clip_grad_norm([tw], 0.25)
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-6)


def test_legacy_typed_constructors():
    # ids = torch.LongTensor(tokens); ids[token] = ...  (older data loaders)
    ids = dc.LongTensor(5).zero_()
    ids[2] = 7
    assert ids.dtype == dc.int64 and ids.tolist() == [0, 0, 7, 0, 0]
    assert dc.LongTensor(2 * 3).zero_().view(-1, 3).shape == (2, 3)
    assert dc.FloatTensor(2, 3).shape == (2, 3) and dc.FloatTensor(2, 3).dtype == dc.float32
    for name in ("FloatTensor", "DoubleTensor", "IntTensor", "LongTensor", "BoolTensor"):
        ours, theirs = getattr(dc, name)([1, 0, 2]), getattr(torch, name)([1, 0, 2])
        assert ours.tolist() == theirs.tolist()
        assert isinstance(ours, getattr(dc, name))
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert not isinstance(dc.zeros(2), dc.LongTensor)
    assert dc.FloatTensor().shape == (0,)
    # x.type(torch.LongTensor), x.type('torch.LongTensor')
    x, tx = dc.tensor([1.5, -2.5]), torch.tensor([1.5, -2.5])
    for ours, theirs in ((dc.LongTensor, torch.LongTensor), ("torch.LongTensor",) * 2):
        assert x.type(ours).tolist() == tx.type(theirs).tolist()
        assert x.type(ours).dtype == dc.int64


def test_variable_is_a_tensor():
    # from torch.autograd import Variable; hidden = Variable(weight.new(...).zero_())
    from deepcore.autograd import Variable
    from torch.autograd import Variable as TorchVariable
    a, ta = dc.ones(2), torch.ones(2)
    for ours, theirs in ((Variable(a), TorchVariable(ta)),
                         (Variable(a, requires_grad=True), TorchVariable(ta, requires_grad=True)),
                         (Variable(Variable(a, requires_grad=True) * 2),
                          TorchVariable(TorchVariable(ta, requires_grad=True) * 2))):
        assert (ours.requires_grad, ours.is_leaf, ours.grad_fn is None) == \
            (theirs.requires_grad, theirs.is_leaf, theirs.grad_fn is None)
    assert Variable(a).data_ptr() == a.data_ptr()
    assert isinstance(a, Variable)
    with pytest.warns(UserWarning, match="volatile"):
        Variable(a, volatile=True)


def test_legacy_new():
    # hidden = Variable(weight.new(nlayers, bsz, nhid).zero_())
    weight = dc.ones(3, dtype=dc.float64)
    h = weight.new(2, 4, 5).zero_()
    assert h.shape == (2, 4, 5) and h.dtype == dc.float64 and h.sum().item() == 0
    assert weight.new([1, 2]).tolist() == torch.ones(3, dtype=torch.float64).new([1, 2]).tolist()
    assert weight.new([1, 2]).dtype == dc.float64
    assert weight.new().shape == torch.ones(3).new().shape


# ---- checkpoints ------------------------------------------------------------------------------

def test_saving_a_whole_module_points_to_state_dict(tmp_path):
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"state_dict\(\)"):
        dc.save(model, tmp_path / "model.pt")
    dc.save(model.state_dict(), tmp_path / "model.pt")
    fresh = nn.Linear(2, 2)
    fresh.load_state_dict(dc.load(tmp_path / "model.pt"))
    np.testing.assert_array_equal(fresh.weight.detach().numpy(), model.weight.detach().numpy())


# ---- data loading -----------------------------------------------------------------------------

class _Chars(Dataset):
    def __init__(self, n, block_size):
        self.n, self.block_size = n, block_size

    def __len__(self):
        return self.n - self.block_size

    def __getitem__(self, idx):
        x = dc.arange(idx, idx + self.block_size)
        return x, x + 1


def test_endless_random_sampler_stream():
    # A trainer that runs until max_iters asks for 1e10 samples and never finishes an epoch.
    ds = _Chars(100, 8)
    loader = DataLoader(ds, sampler=RandomSampler(ds, replacement=True, num_samples=int(1e10)),
                        shuffle=False, pin_memory=True, batch_size=4, num_workers=0)
    assert len(loader) == int(1e10) // 4
    batches = list(itertools.islice(iter(loader), 3))
    assert [tuple(b[0].shape) for b in batches] == [(4, 8)] * 3
    for x, y in batches:
        assert ((y - x) == 1).all().item()
        assert (x[:, 0] < len(ds)).all().item()
    # without replacement: one fresh permutation after another
    s = RandomSampler(ds, num_samples=int(1e10))
    first = list(itertools.islice(iter(s), 2 * len(ds)))
    assert sorted(first[:len(ds)]) == list(range(len(ds)))
    assert sorted(first[len(ds):]) == list(range(len(ds)))


def test_long_epochs_are_drawn_in_chunks(monkeypatch):
    from deepcore.utils.data import sampler as sampler_module
    from deepcore.utils.data import BatchSampler
    monkeypatch.setattr(sampler_module, "_CHUNK", 7)
    ds = _Chars(13, 8)  # 5 items
    s = RandomSampler(ds, num_samples=23)
    dc.manual_seed(1)
    flat = list(s)
    assert len(flat) == 23
    assert sorted(flat[:5]) == list(range(5))
    for drop_last, n_batches in ((False, 6), (True, 5)):
        dc.manual_seed(1)
        batches = [b.tolist() for b in BatchSampler(s, 4, drop_last)._iter_arrays()]
        assert len(batches) == n_batches
        assert sum(batches, []) == flat[:4 * n_batches]


@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_splits_like_torch(drop_last):
    from torch.utils.data.distributed import DistributedSampler as TorchDistributedSampler
    from deepcore.utils.data.distributed import DistributedSampler
    data = list(range(10))
    for rank in range(3):
        ours = DistributedSampler(data, num_replicas=3, rank=rank, shuffle=False,
                                  drop_last=drop_last)
        theirs = TorchDistributedSampler(data, num_replicas=3, rank=rank, shuffle=False,
                                         drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    # shuffled: the replicas partition one permutation, fixed by seed + epoch
    shards = [DistributedSampler(data, num_replicas=2, rank=r, seed=3) for r in range(2)]
    for s in shards:
        s.set_epoch(1)
    first = [list(s) for s in shards]
    assert sorted(first[0] + first[1]) == data and first == [list(s) for s in shards]
    with pytest.raises(ValueError, match="num_replicas and rank"):
        DistributedSampler(data)  # no process group to ask for the world size
    with pytest.raises(ValueError, match="Invalid rank"):
        DistributedSampler(data, num_replicas=2, rank=2)


def test_random_ops_follow_their_generator():
    # torch.randperm(len(words), generator=g): a seeded generator repeats itself, and leaves
    # the global stream alone.
    def draw():
        g = dc.Generator().manual_seed(42)
        return (dc.randperm(8, generator=g).tolist(), dc.rand(3, generator=g).tolist(),
                dc.randn(2, 2, generator=g).tolist(), dc.randint(0, 10, (4,), generator=g).tolist())

    dc.manual_seed(0)
    first = draw()
    after_first = dc.rand(2).tolist()
    dc.manual_seed(0)
    assert draw() == first
    assert dc.rand(2).tolist() == after_first
    assert sorted(first[0]) == list(range(8))
    g = dc.Generator().manual_seed(1)
    assert dc.randint(5, (3,), generator=g).dtype == dc.int64
    assert dc.randn(2, generator=g, dtype=dc.float64, requires_grad=True).requires_grad
