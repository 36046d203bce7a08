"""deepcore.utils.data: datasets, samplers, default_collate and DataLoader (with workers),
compared with torch.utils.data wherever the behaviour is deterministic."""
import collections
import gc
import os
import random
import signal
import time
import warnings

import deepcore as dc
import numpy as np
import pytest
import torch
import torch.utils.data as tud
from deepcore.utils import data as dcd


@pytest.fixture
def deadline():
    """Fails a test (instead of hanging the run) if it takes longer than 60 s."""
    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded its 60 s deadline (a DataLoader hang?)")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def norm(x):
    """A comparable description of a (deepcore or torch) batch: tensors by dtype, shape and
    values; containers by kind and contents."""
    if isinstance(x, (dc.Tensor, torch.Tensor)):
        return ("T", str(x.dtype).split(".")[-1], tuple(x.shape), x.tolist())
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return (type(x).__name__,) + tuple(norm(v) for v in x)
    if isinstance(x, dict):
        return (type(x).__name__, [(k, norm(v)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [norm(v) for v in x])
    return x


def dc_t(a):
    return dc.from_numpy(np.ascontiguousarray(a))


def th_t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


# ---- datasets --------------------------------------------------------------------------------

def test_tensor_dataset_items_and_len():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.arange(6, dtype=np.int64)
    ds = dcd.TensorDataset(dc_t(x), dc_t(y))
    assert len(ds) == 6
    a, b = ds[4]
    assert a.tolist() == [8.0, 9.0] and b.item() == 4 and b.dtype == dc.int64


def test_tensor_dataset_size_mismatch_names_sizes():
    with pytest.raises(ValueError, match=r"\[5, 4\]"):
        dcd.TensorDataset(dc.zeros(5, 2), dc.zeros(4))


def test_subset_concat_chain():
    a = dcd.TensorDataset(dc.arange(5))
    b = dcd.TensorDataset(dc.arange(10, 13))
    cat = a + b
    assert isinstance(cat, dcd.ConcatDataset) and len(cat) == 8
    assert cat.cumulative_sizes == [5, 8]
    assert [cat[i][0].item() for i in range(8)] == [0, 1, 2, 3, 4, 10, 11, 12]
    assert cat[-1][0].item() == 12 and cat[-8][0].item() == 0
    with pytest.raises(ValueError):
        cat[-9]
    with pytest.raises(IndexError):
        cat[8]
    sub = dcd.Subset(cat, [7, 0, 5])
    assert len(sub) == 3 and [sub[i][0].item() for i in range(3)] == [12, 0, 10]

    class Stream(dcd.IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

    chain = Stream(2) + Stream(3)
    assert isinstance(chain, dcd.ChainDataset) and list(chain) == [0, 1, 0, 1, 2]
    with pytest.raises(TypeError):
        dcd.ConcatDataset([a, Stream(2)])


def test_stack_dataset():
    a, b = dcd.TensorDataset(dc.arange(3)), [10, 11, 12]
    assert dcd.StackDataset(a, b)[1][1] == 11
    assert dcd.StackDataset(x=a, y=b)[2]["y"] == 12
    with pytest.raises(ValueError):
        dcd.StackDataset(a, [1])


@pytest.mark.parametrize("n,lengths", [(10, [3, 7]), (10, [0.3, 0.3, 0.4]), (7, [0.33, 0.33, 0.34]),
                                       (5, [0.5, 0.5]), (11, [0.1] * 10)])
def test_random_split_lengths_match_torch(n, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn about empty splits
        ours = dcd.random_split(list(range(n)), lengths)
        theirs = tud.random_split(list(range(n)), lengths)
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    got = sorted(i for s in ours for i in s.indices)
    assert got == list(range(n))


def test_random_split_reproducible_and_errors():
    g1 = dcd.Generator().manual_seed(3)
    g2 = dc.Generator().manual_seed(3)
    s1 = dcd.random_split(range(20), [5, 15], generator=g1)
    s2 = dcd.random_split(range(20), [5, 15], generator=g2)
    assert s1[0].indices == s2[0].indices and s1[1].indices == s2[1].indices
    dc.manual_seed(11)
    a = dcd.random_split(range(20), [10, 10])[0].indices
    dc.manual_seed(11)
    b = dcd.random_split(range(20), [10, 10])[0].indices
    dc.manual_seed(12)
    c = dcd.random_split(range(20), [10, 10])[0].indices
    assert a == b and a != c
    with pytest.raises(ValueError, match="sum of input lengths"):
        dcd.random_split(range(5), [2, 2])


def test_generator_state():
    g = dcd.Generator()
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    state = g.get_state()
    a = list(dcd.RandomSampler(range(10), generator=g))
    g.set_state(state)
    assert list(dcd.RandomSampler(range(10), generator=g)) == a


# ---- samplers --------------------------------------------------------------------------------

def test_sequential_and_random_sampler():
    assert list(dcd.SequentialSampler(range(5))) == [0, 1, 2, 3, 4]
    g = dcd.Generator().manual_seed(0)
    s = dcd.RandomSampler(range(50), generator=g)
    e1, e2 = list(s), list(s)
    assert sorted(e1) == list(range(50)) and e1 != e2 and len(s) == 50
    assert list(dcd.RandomSampler(range(50), generator=dcd.Generator().manual_seed(0))) == e1

    over = list(dcd.RandomSampler(range(4), num_samples=10, generator=g))
    counts = collections.Counter(over)
    assert len(over) == 10 and sorted(counts.values()) == [2, 2, 3, 3]
    rep = list(dcd.RandomSampler(range(3), replacement=True, num_samples=40, generator=g))
    assert len(rep) == 40 and set(rep) <= {0, 1, 2} and len(set(rep)) == 3


def test_random_sampler_follows_manual_seed():
    dc.manual_seed(7)
    a = list(dcd.RandomSampler(range(30)))
    dc.manual_seed(7)
    b = list(dcd.RandomSampler(range(30)))
    assert a == b and sorted(a) == list(range(30))


@pytest.mark.parametrize("kwargs,exc", [({"replacement": 1}, TypeError),
                                        ({"num_samples": 0}, ValueError),
                                        ({"num_samples": 2.5}, ValueError)])
def test_random_sampler_bad_args_like_torch(kwargs, exc):
    with pytest.raises(exc):
        tud.RandomSampler(range(4), **kwargs)
    with pytest.raises(exc):
        dcd.RandomSampler(range(4), **kwargs)


def test_subset_random_and_weighted_samplers():
    g = dcd.Generator().manual_seed(1)
    idx = [3, 9, 27, 81]
    out = list(dcd.SubsetRandomSampler(idx, generator=g))
    assert sorted(out) == idx and all(type(i) is int for i in out)
    assert sorted(dcd.SubsetRandomSampler(["a", "b"], generator=g)) == ["a", "b"]

    w = dcd.WeightedRandomSampler([0.0, 1.0, 3.0, 0.0], 4000, generator=g)
    counts = collections.Counter(w)
    assert set(counts) == {1, 2} and len(w) == 4000
    assert 0.70 < counts[2] / 4000 < 0.80
    no_rep = list(dcd.WeightedRandomSampler([1, 1, 1, 5], 4, replacement=False, generator=g))
    assert sorted(no_rep) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        dcd.WeightedRandomSampler([[1.0, 2.0]], 2)
    with pytest.raises(ValueError):
        dcd.WeightedRandomSampler([1.0, 0.0], 2, replacement=False)
    with pytest.raises(ValueError):
        dcd.WeightedRandomSampler([1.0, -1.0], 2)
    # deepcore tensors as weights
    assert set(dcd.WeightedRandomSampler(dc.tensor([0.0, 2.0]), 5, generator=g)) == {1}


@pytest.mark.parametrize("n,bs,drop", [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False),
                                       (2, 5, True)])
def test_batch_sampler_matches_torch(n, bs, drop):
    ours = dcd.BatchSampler(dcd.SequentialSampler(range(n)), bs, drop)
    theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), bs, drop)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)
    arrays = ours._iter_arrays()
    assert [a.tolist() for a in arrays] == list(theirs)


def test_batch_sampler_bad_args():
    with pytest.raises(ValueError):
        dcd.BatchSampler(range(3), 0, False)
    with pytest.raises(TypeError):
        dcd.BatchSampler(range(3), 2, "no")


# ---- collate ---------------------------------------------------------------------------------

Point = collections.namedtuple("Point", ["x", "y"])


def _samples(kind):
    """(deepcore samples, torch samples) built from the same NumPy data."""
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(4)]
    ints = [rng.integers(0, 9, (3,)) for _ in range(4)]
    if kind == "tensors":
        return [dc_t(a) for a in arrs], [th_t(a) for a in arrs]
    if kind == "numpy":
        return list(arrs), list(arrs)
    if kind == "numpy_int":
        return list(ints), list(ints)
    if kind == "numpy_scalars":
        s = [np.float32(1.5), np.float32(2.5)]
        return s, s
    if kind == "floats":
        return [1.5, 2.0, -3.25], [1.5, 2.0, -3.25]
    if kind == "ints":
        return [1, 2, 3], [1, 2, 3]
    if kind == "bools":
        return [True, False], [True, False]
    if kind == "strings":
        return ["a", "bc"], ["a", "bc"]
    if kind == "dicts":
        return ([{"x": dc_t(a), "label": i, "name": str(i)} for i, a in enumerate(arrs)],
                [{"x": th_t(a), "label": i, "name": str(i)} for i, a in enumerate(arrs)])
    if kind == "tuples":
        return ([(dc_t(a), i, 0.5 * i) for i, a in enumerate(arrs)],
                [(th_t(a), i, 0.5 * i) for i, a in enumerate(arrs)])
    if kind == "lists":
        return [[i, float(i)] for i in range(3)], [[i, float(i)] for i in range(3)]
    if kind == "namedtuples":
        return ([Point(dc_t(a), i) for i, a in enumerate(arrs)],
                [Point(th_t(a), i) for i, a in enumerate(arrs)])
    if kind == "nested":
        return ([{"p": (i, [dc_t(a), {"z": True}])} for i, a in enumerate(arrs)],
                [{"p": (i, [th_t(a), {"z": True}])} for i, a in enumerate(arrs)])
    if kind == "ordered":
        return ([collections.OrderedDict(b=i, a=1.0) for i in range(3)],
                [collections.OrderedDict(b=i, a=1.0) for i in range(3)])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["tensors", "numpy", "numpy_int", "numpy_scalars", "floats",
                                  "ints", "bools", "strings", "dicts", "tuples", "lists",
                                  "namedtuples", "nested", "ordered"])
def test_default_collate_matches_torch(kind):
    ours, theirs = _samples(kind)
    assert norm(dcd.default_collate(ours)) == norm(tud.default_collate(theirs))


@pytest.mark.parametrize("kind", ["tensors", "numpy", "dicts", "tuples", "namedtuples", "strings"])
def test_default_convert_matches_torch(kind):
    ours, theirs = _samples(kind)
    assert norm(dcd.default_convert(ours[0])) == norm(tud.default_convert(theirs[0]))


def test_default_collate_errors():
    with pytest.raises(TypeError, match="default_collate"):
        dcd.default_collate([object(), object()])
    with pytest.raises(TypeError):
        dcd.default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(RuntimeError, match="equal size"):
        dcd.default_collate([[1, 2], [3]])
    with pytest.raises(ValueError):  # stacking tensors of different shapes
        dcd.default_collate([dc.zeros(2), dc.zeros(3)])


# ---- DataLoader, single process ---------------------------------------------------------------

def _xy(n=23, d=3):
    x = np.arange(n * d, dtype=np.float32).reshape(n, d)
    y = (np.arange(n) % 4).astype(np.int64)
    return x, y


@pytest.mark.parametrize("bs,drop", [(1, False), (5, False), (5, True), (23, True), (30, False),
                                     (30, True)])
def test_loader_batches_match_torch(bs, drop):
    x, y = _xy()
    ours = dcd.DataLoader(dcd.TensorDataset(dc_t(x), dc_t(y)), batch_size=bs, drop_last=drop)
    theirs = tud.DataLoader(tud.TensorDataset(th_t(x), th_t(y)), batch_size=bs, drop_last=drop)
    assert len(ours) == len(theirs)
    assert [norm(b) for b in ours] == [norm(b) for b in theirs]


def test_loader_generic_dataset_matches_torch():
    class Items(dcd.Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return {"v": np.full((2,), i, np.float64), "i": i, "f": i / 2, "s": f"n{i}"}

    class TItems(tud.Dataset):
        __len__ = Items.__len__
        __getitem__ = Items.__getitem__

    ours = [norm(b) for b in dcd.DataLoader(Items(), batch_size=3)]
    theirs = [norm(b) for b in tud.DataLoader(TItems(), batch_size=3)]
    assert ours == theirs
    # batch_size=None: no batching, default_convert per sample
    ours = [norm(b) for b in dcd.DataLoader(Items(), batch_size=None)]
    theirs = [norm(b) for b in tud.DataLoader(TItems(), batch_size=None)]
    assert ours == theirs and len(ours) == 7


class SlowTensorDataset(dcd.TensorDataset):
    """TensorDataset with its own __getitem__: DataLoader must take the per-sample path."""

    def __getitem__(self, index):
        return super().__getitem__(index)


def test_fast_path_equals_per_sample_path(monkeypatch):
    x, y = _xy(50)
    calls = []
    orig = dcd.TensorDataset._fetch_batch
    monkeypatch.setattr(dcd.TensorDataset, "_fetch_batch",
                        lambda self, idx: calls.append(len(idx)) or orig(self, idx))
    for ds_fast, ds_slow in [
            (dcd.TensorDataset(dc_t(x), dc_t(y)), SlowTensorDataset(dc_t(x), dc_t(y))),
            (dcd.Subset(dcd.TensorDataset(dc_t(x), dc_t(y)), list(range(49, 0, -3))),
             dcd.Subset(SlowTensorDataset(dc_t(x), dc_t(y)), list(range(49, 0, -3))))]:
        calls.clear()
        dc.manual_seed(5)
        fast = [norm(b) for b in dcd.DataLoader(ds_fast, batch_size=8, shuffle=True)]
        assert calls and sum(calls) == len(ds_fast)
        calls.clear()
        dc.manual_seed(5)
        slow = [norm(b) for b in dcd.DataLoader(ds_slow, batch_size=8, shuffle=True)]
        assert not calls
        assert fast == slow
        assert fast[0][0] == "list"  # a list of tensors, like torch


def test_shuffle_reproducible_and_complete():
    x, y = _xy(40)
    ds = dcd.TensorDataset(dc_t(x), dc_t(y))
    dc.manual_seed(0)
    loader = dcd.DataLoader(ds, batch_size=6, shuffle=True)
    e1 = [b[0][:, 0].tolist() for b in loader]
    e2 = [b[0][:, 0].tolist() for b in loader]
    dc.manual_seed(0)
    again = [b[0][:, 0].tolist() for b in loader]
    assert e1 == again and e1 != e2
    assert sorted(v for b in e1 for v in b) == sorted(x[:, 0].tolist())
    g = dcd.Generator().manual_seed(4)
    a = [b[1].tolist() for b in dcd.DataLoader(ds, batch_size=6, shuffle=True, generator=g)]
    g.manual_seed(4)
    b = [b[1].tolist() for b in dcd.DataLoader(ds, batch_size=6, shuffle=True, generator=g)]
    assert a == b


def test_sampler_and_batch_sampler_args():
    ds = list(range(10))
    out = list(dcd.DataLoader(ds, sampler=[9, 8, 7], batch_size=2))
    assert [b.tolist() for b in out] == [[9, 8], [7]]
    out = list(dcd.DataLoader(ds, batch_sampler=[[1, 2, 3], [0]]))
    assert [b.tolist() for b in out] == [[1, 2, 3], [0]]
    for kwargs in [dict(sampler=[1], shuffle=True), dict(batch_sampler=[[1]], batch_size=2),
                   dict(batch_sampler=[[1]], drop_last=True), dict(batch_size=None, drop_last=True),
                   dict(num_workers=-1), dict(timeout=-1), dict(prefetch_factor=2),
                   dict(persistent_workers=True)]:
        with pytest.raises(ValueError):
            tud.DataLoader(ds, **kwargs)
        with pytest.raises(ValueError):
            dcd.DataLoader(ds, **kwargs)
    loader = dcd.DataLoader(ds)
    with pytest.raises(ValueError, match="should not be set"):
        loader.batch_size = 3


class Stream(dcd.IterableDataset):
    def __init__(self, n, shard=False, with_len=True):
        self.n, self.shard, self.with_len = n, shard, with_len

    def __iter__(self):
        info = dcd.get_worker_info()
        if self.shard and info is not None:
            return iter(range(info.id, self.n, info.num_workers))
        return iter(range(self.n))

    def __len__(self):
        if not self.with_len:
            raise TypeError("no len")
        return self.n


class TStream(tud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("bs,drop", [(3, False), (3, True), (None, False)])
def test_iterable_dataset_matches_torch(bs, drop):
    ours = dcd.DataLoader(Stream(10), batch_size=bs, drop_last=drop)
    theirs = tud.DataLoader(TStream(10), batch_size=bs, drop_last=drop)
    assert [norm(b) for b in ours] == [norm(b) for b in theirs]
    assert len(ours) == len(theirs)
    with pytest.raises(ValueError):
        dcd.DataLoader(Stream(3), shuffle=True)


def test_get_worker_info_is_none_in_main_process():
    assert dcd.get_worker_info() is None


# ---- DataLoader with workers -----------------------------------------------------------------

class Slow(dcd.Dataset):
    """Index-dependent delays, so workers finish out of order."""

    def __len__(self):
        return 24

    def __getitem__(self, i):
        time.sleep(0.02 if i % 5 == 0 else 0.0)
        return dc.tensor([float(i), 2.0 * i]), i


def test_workers_match_single_process_in_order(deadline):
    dc.manual_seed(123)
    single = [norm(b) for b in dcd.DataLoader(Slow(), batch_size=3, shuffle=True)]
    dc.manual_seed(123)
    multi = [norm(b) for b in dcd.DataLoader(Slow(), batch_size=3, shuffle=True, num_workers=2)]
    assert multi == single and len(multi) == 8


def test_workers_tensor_dataset_dtypes(deadline):
    x = np.arange(40, dtype=np.float64).reshape(10, 4)
    flags = (np.arange(10) % 3 == 0)
    ids = np.arange(10, dtype=np.int32)
    ds = dcd.TensorDataset(dc_t(x), dc_t(flags), dc_t(ids))
    single = [norm(b) for b in dcd.DataLoader(ds, batch_size=4)]
    multi = [norm(b) for b in dcd.DataLoader(ds, batch_size=4, num_workers=2, prefetch_factor=1)]
    assert multi == single
    assert [m[1][1][1] for m in multi] == ["bool"] * 3  # dtype of the flags batch


class SeedProbe(dcd.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = dcd.get_worker_info()
        return {"id": info.id, "seed": info.seed, "n": info.num_workers,
                "dc": dc.rand(1).item(), "np": float(np.random.rand()), "py": random.random(),
                "init": os.environ.get("DC_TEST_WORKER_INIT", ""), "threads": dc.get_num_threads()}


def _init_fn(worker_id):
    os.environ["DC_TEST_WORKER_INIT"] = f"w{worker_id}"


def _probe(seed):
    dc.manual_seed(seed)
    loader = dcd.DataLoader(SeedProbe(), batch_size=None, num_workers=2, worker_init_fn=_init_fn)
    return list(loader)


def test_worker_seeding_distinct_and_deterministic(deadline):
    a, b, c = _probe(1), _probe(1), _probe(2)
    assert a == b and a != c
    by_worker = {}
    for r in a:
        by_worker.setdefault(r["id"], r)
        assert r["n"] == 2 and r["init"] == f"w{r['id']}" and r["threads"] == 1
    assert sorted(by_worker) == [0, 1]
    s0, s1 = by_worker[0], by_worker[1]
    assert s1["seed"] == s0["seed"] + 1
    assert s0["dc"] != s1["dc"] and s0["np"] != s1["np"] and s0["py"] != s1["py"]
    # round robin: sample i is fetched by worker i % 2
    assert [r["id"] for r in a] == [i % 2 for i in range(8)]


class Failing(dcd.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        if i == 7:
            raise ValueError(f"bad sample {i}")
        if i == 8:
            raise KeyError("missing")
        return i


def test_worker_exception_reraised_with_traceback(deadline):
    loader = dcd.DataLoader(Failing(), batch_size=2, num_workers=2)
    got = []
    with pytest.raises(ValueError) as info:
        for b in loader:
            got.append(b.tolist())
    assert got == [[0, 1], [2, 3], [4, 5]]  # everything before the failing batch, in order
    msg = str(info.value)
    assert "bad sample 7" in msg and "Traceback" in msg and "__getitem__" in msg
    assert "DataLoader worker process" in msg
    with pytest.raises(KeyError, match="missing"):
        list(dcd.DataLoader(Failing(), sampler=[8], batch_size=1, num_workers=2))
    # the same in-process error for comparison: same type
    with pytest.raises(ValueError, match="bad sample 7"):
        list(dcd.DataLoader(Failing(), batch_size=2))


def test_worker_init_fn_error_is_reported(deadline):
    def bad_init(worker_id):
        raise RuntimeError(f"init failed in {worker_id}")

    with pytest.raises(RuntimeError, match="init failed in"):
        list(dcd.DataLoader(list(range(4)), num_workers=2, worker_init_fn=bad_init))


def test_early_break_shuts_workers_down(deadline):
    loader = dcd.DataLoader(Slow(), batch_size=2, num_workers=2)
    it = iter(loader)
    next(it)
    workers = list(it._workers)
    assert all(w.is_alive() for w in workers)
    del it
    gc.collect()
    for w in workers:
        w.join(timeout=10)
        assert not w.is_alive()
    for _ in dcd.DataLoader(Slow(), batch_size=2, num_workers=2):
        break  # a for-loop break must not hang either


def test_iterable_dataset_workers(deadline):
    sharded = [b.tolist() for b in dcd.DataLoader(Stream(10, shard=True), batch_size=2,
                                                  num_workers=2)]
    flat = [v for b in sharded for v in b]
    assert sorted(flat) == list(range(10))
    # workers alternate: worker 0 has the evens, worker 1 the odds
    assert sharded[:2] == [[0, 2], [1, 3]]
    # without sharding every worker yields the whole stream (torch's documented behaviour)
    dup = [v for b in dcd.DataLoader(Stream(5), batch_size=2, num_workers=2) for v in b.tolist()]
    assert sorted(dup) == sorted(list(range(5)) * 2)
    dropped = list(dcd.DataLoader(Stream(5, shard=True), batch_size=2, drop_last=True,
                                  num_workers=2))
    assert [b.tolist() for b in dropped] == [[0, 2], [1, 3]]


def test_persistent_workers_reuse_processes(deadline):
    ds = dcd.TensorDataset(dc.arange(12))
    loader = dcd.DataLoader(ds, batch_size=5, num_workers=2, persistent_workers=True)
    it = iter(loader)
    first = [b[0].tolist() for b in it]
    pids = [w.pid for w in it._workers]
    it2 = iter(loader)
    assert it2 is it and [w.pid for w in it2._workers] == pids
    # an abandoned epoch leaves no stale batches behind
    next(it2)
    third = [b[0].tolist() for b in iter(loader)]
    assert first == third == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    # dropping the loader stops its workers promptly, with or without the cycle collector
    workers = list(it._workers)
    del it, it2, loader
    t0 = time.monotonic()
    for w in workers:
        w.join(timeout=10)
        assert not w.is_alive()
    assert time.monotonic() - t0 < 3


def test_timeout_raises(deadline):
    class Sleepy(dcd.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            time.sleep(3)
            return i

    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="timed out"):
        list(dcd.DataLoader(Sleepy(), num_workers=1, timeout=0.3))
    assert time.monotonic() - t0 < 2.5


def test_dead_worker_detected(deadline, monkeypatch):
    from deepcore.utils.data import _worker
    monkeypatch.setattr(_worker, "STATUS_CHECK_INTERVAL", 0.2)

    class Killer(dcd.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            os._exit(3)

    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        list(dcd.DataLoader(Killer(), num_workers=1))


def test_spawn_context(deadline):
    x, y = _xy(9)
    ds = dcd.TensorDataset(dc_t(x), dc_t(y))
    single = [norm(b) for b in dcd.DataLoader(ds, batch_size=4)]
    spawned = [norm(b) for b in dcd.DataLoader(ds, batch_size=4, num_workers=1,
                                               multiprocessing_context="spawn")]
    assert spawned == single


class MatmulData(dcd.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        x = dc.full((192, 192), float(i)) / 192
        return (x @ x).sum() + dc.ones(70000).exp().sum()


def test_forked_workers_after_multithreaded_work_in_parent(deadline):
    # The parent's OpenMP pool does not survive fork; workers must still run matmuls and
    # large elementwise ops (they run single-threaded).
    a = dc.ones(384, 384)
    (a @ a).sum()
    (a.exp() * a).sum()
    single = [b.tolist() for b in dcd.DataLoader(MatmulData(), batch_size=2)]
    multi = [b.tolist() for b in dcd.DataLoader(MatmulData(), batch_size=2, num_workers=2)]
    assert multi == single
