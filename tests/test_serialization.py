"""dc.save / dc.load: safetensors checkpoints. Round trips, PyTorch interop, atomic writes,
and refusal of corrupted, foreign and malicious files."""
import collections
import io
import json
import math
import os
import pathlib
import pickle
import struct

import deepcore as dc
import numpy as np
import pytest
import safetensors
import safetensors.numpy
import safetensors.torch
import torch
from deepcore import serialization

DTYPES = [(np.bool_, dc.bool), (np.int32, dc.int32), (np.int64, dc.int64),
          (np.float32, dc.float32), (np.float64, dc.float64)]


def sample(np_dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if np_dtype is np.bool_:
        return np.asarray(rng.random(shape) < 0.5)
    if np.issubdtype(np_dtype, np.integer):
        return np.asarray(rng.integers(-(2 ** 31), 2 ** 31 - 1, shape), dtype=np_dtype)
    return np.asarray(rng.standard_normal(shape), dtype=np_dtype)


def roundtrip(obj):
    buf = io.BytesIO()
    dc.save(obj, buf)
    buf.seek(0)
    return dc.load(buf)


def same_tensor(a, b):
    assert isinstance(b, dc.Tensor)
    assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def assert_same(a, b):
    """Deep equality with exact types: tensors by dtype/shape/values, containers by type."""
    if isinstance(a, dc.Tensor):
        same_tensor(a, b)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert type(b) is type(a) and list(a.keys()) == list(b.keys())
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(b) is (tuple if isinstance(a, tuple) else list) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b)
    else:
        assert type(a) is type(b) and a == b


# ---- round trips -----------------------------------------------------------------------------

@pytest.mark.parametrize("np_dtype,dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 0, 2), (2, 3, 4)])
def test_tensor_roundtrip_every_dtype(np_dtype, dtype, shape, tmp_path):
    t = dc.from_numpy(sample(np_dtype, shape))
    assert t.dtype == dtype
    path = tmp_path / "t.safetensors"
    dc.save(t, path)
    back = dc.load(path)
    same_tensor(t, back)
    # the loaded tensor owns writable memory
    if dtype.is_floating_point and t.numel():
        back.add_(1.0)
        np.testing.assert_array_equal(back.numpy(), t.numpy() + 1)


@pytest.mark.parametrize("make", [lambda t: t.T, lambda t: t[1:, ::2], lambda t: t[:, 1],
                                  lambda t: t[:1].expand(4, 6)])
def test_non_contiguous_saved_contiguously(make, tmp_path):
    base = dc.arange(24, dtype=dc.float64).reshape(4, 6)
    view = make(base)
    path = tmp_path / "v.safetensors"
    dc.save({"v": view}, path)
    back = dc.load(path)["v"]
    same_tensor(view, back)
    assert back.is_contiguous()
    # the file holds exactly the view's elements, not the base's
    arr = safetensors.numpy.load_file(str(path))["v"]
    assert arr.shape == tuple(view.shape)


def test_nested_structures_roundtrip():
    w = dc.randn(3, 2)
    obj = {
        "model": collections.OrderedDict([("fc.weight", w), ("fc.bias", dc.zeros(3)),
                                          ("bn.num_batches_tracked", dc.tensor(5))]),
        "optim": {"state": {0: {"step": dc.tensor(4.0), "exp_avg": dc.ones(3, 2)},
                            1: {"momentum_buffer": None}},
                  "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                                    "weight_decay": 0, "amsgrad": False, "params": [0, 1],
                                    "name": None}]},
        "epoch": 12, "best": float("inf"), "worst": float("-inf"), "nan": float("nan"),
        "big": 2 ** 70, "neg": -3, "flag": True, "text": "héllo\n\"quoted\"",
        "empty": {}, "empty_list": [], "empty_tuple": (),
        "list_of_tensors": [dc.tensor([1, 2], dtype=dc.int32), dc.tensor([True])],
        "mixed_keys": {1: "a", "1": "b", 2.5: "c", (1, "x"): "d", None: "e", False: "f"},
        "dollar": {"$tensor": "not a tensor", "$x": 1},
        "array": np.arange(6, dtype=np.uint8).reshape(2, 3),
        "dtype": dc.float64,
        "nested": [[(1, [2, {"deep": dc.tensor(3.5)}])]],
    }
    back = roundtrip(obj)
    assert_same(obj, back)
    assert back["dtype"] is dc.float64


def test_top_level_values():
    for obj in [dc.tensor(1.5), [dc.zeros(2), 3], (dc.ones(1),), 7, "s", None,
                collections.OrderedDict(a=1)]:
        assert_same(obj, roundtrip(obj))


def test_namedtuple_saved_as_tuple():
    P = collections.namedtuple("P", "a b")
    back = roundtrip(P(dc.ones(2), 3))
    assert type(back) is tuple and back[1] == 3


def test_aliased_tensors_stored_once(tmp_path):
    w = dc.randn(4, 3)
    obj = {"enc.weight": w, "dec.weight": w, "same_view": w[:], "transposed": w.T,
           "opt": {"state": {0: {"p": w}}}}
    path = tmp_path / "tied.safetensors"
    dc.save(obj, path)
    with safetensors.safe_open(str(path), "np") as f:
        keys = sorted(f.keys())
    assert keys == ["enc.weight", "transposed"]  # w, w[:] and the nested w share one entry
    back = dc.load(path)
    assert back["enc.weight"] is back["dec.weight"] is back["same_view"]
    assert back["opt"]["state"][0]["p"] is back["enc.weight"]
    same_tensor(w.T, back["transposed"])


def test_key_collisions_get_unique_names():
    a, b, c = dc.zeros(1), dc.ones(1), dc.full((2,), 2.0)
    back = roundtrip({"x.y": a, "x": {"y": b}, "__metadata__": c, "": a + 1})
    same_tensor(a, back["x.y"])
    same_tensor(b, back["x"]["y"])
    same_tensor(c, back["__metadata__"])
    same_tensor(a + 1, back[""])


def test_requires_grad_tensor_saves_data():
    p = dc.randn(3, requires_grad=True)
    back = roundtrip({"p": p})
    same_tensor(p.detach(), back["p"])


@pytest.mark.parametrize("bad,where", [(object(), "'x'"), ({1, 2}, "'x'"), (1 + 2j, "'x'"),
                                       (b"bytes", "'x'"), ({frozenset(): 1}, "key")])
def test_unsupported_values_rejected(bad, where, tmp_path):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(serialization.SerializationError, match=where):
        dc.save({"x": bad}, path)
    assert not path.exists() and os.listdir(tmp_path) == []
    with pytest.raises(TypeError):
        dc.save({}, tmp_path / "p", pickle_module=pickle)


# ---- paths, file objects, PyTorch arguments ------------------------------------------------------

def test_paths_and_file_objects(tmp_path):
    obj = {"a": dc.arange(3)}
    for target in [str(tmp_path / "s.safetensors"), tmp_path / "p.safetensors"]:
        dc.save(obj, target)
        assert_same(obj, dc.load(target))
        assert_same(obj, dc.load(pathlib.Path(target)))
    with open(tmp_path / "f.safetensors", "wb") as f:
        dc.save(obj, f)
    with open(tmp_path / "f.safetensors", "rb") as f:
        assert_same(obj, dc.load(f))


def test_map_location_and_weights_only():
    obj = {"a": dc.arange(3)}
    buf = io.BytesIO()
    dc.save(obj, buf)
    for kwargs in [dict(map_location="cpu"), dict(map_location=lambda s, loc: s),
                   dict(map_location={"cuda:0": "cpu"}), dict(weights_only=True),
                   dict(weights_only=False), dict(map_location=dc.device("cpu"))]:
        buf.seek(0)
        assert_same(obj, dc.load(buf, **kwargs))
    buf.seek(0)
    with pytest.raises((ValueError, RuntimeError)):
        dc.load(buf, map_location="cuda")


# ---- PyTorch interop ---------------------------------------------------------------------------

def test_flat_state_dict_readable_by_safetensors_torch(tmp_path):
    sd = {"fc.weight": dc.randn(4, 3), "fc.bias": dc.randn(4), "steps": dc.tensor([3]),
          "mask": dc.tensor([True, False]), "ids": dc.tensor([1, 2], dtype=dc.int32),
          "f64": dc.tensor([1.0, 2.0], dtype=dc.float64)}
    path = tmp_path / "model.safetensors"
    dc.save(sd, path)
    loaded = safetensors.torch.load_file(str(path))
    assert sorted(loaded) == sorted(sd)
    for k, t in sd.items():
        assert str(loaded[k].dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_array_equal(loaded[k].numpy(), t.numpy())
    # and a torch model loads it
    lin = torch.nn.Linear(3, 4)
    lin.load_state_dict({k[3:]: v for k, v in loaded.items() if k.startswith("fc.")})
    np.testing.assert_array_equal(lin.weight.detach().numpy(), sd["fc.weight"].numpy())


def test_load_file_written_by_safetensors_torch(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    sd["extra.bool"] = torch.tensor([True, False])
    sd["extra.i32"] = torch.tensor([7, -7], dtype=torch.int32)
    sd["extra.f64"] = torch.randn(2, dtype=torch.float64)
    path = tmp_path / "torch.safetensors"
    safetensors.torch.save_file(sd, str(path))
    back = dc.load(path)
    assert type(back) is dict and sorted(back) == sorted(sd)
    for k, v in sd.items():
        assert str(back[k].dtype).split(".")[-1] == str(v.dtype).split(".")[-1]
        np.testing.assert_array_equal(back[k].numpy(), v.numpy())


def test_torch_16bit_floats_load_exactly_and_lacking_dtypes_widen(tmp_path):
    src = {"f16": torch.tensor([1.5, -2.25, 65504.0], dtype=torch.float16),
           "bf16": torch.tensor([1.5, -3.0e38, 1e-3], dtype=torch.bfloat16),
           "u8": torch.tensor([0, 255], dtype=torch.uint8),
           "i8": torch.tensor([-128, 127], dtype=torch.int8),
           "i16": torch.tensor([-32768, 32767], dtype=torch.int16)}
    path = tmp_path / "mixed.safetensors"
    safetensors.torch.save_file(src, str(path))
    back = dc.load(path)
    expect = {"f16": dc.float16, "bf16": dc.bfloat16, "u8": dc.int32, "i8": dc.int32,
              "i16": dc.int32}
    for k, v in src.items():
        assert back[k].dtype == expect[k]
        if v.dtype.is_floating_point:  # the same 16-bit words
            np.testing.assert_array_equal(back[k].numpy().view(np.uint16),
                                          v.view(torch.int16).numpy().view(np.uint16))
        else:
            np.testing.assert_array_equal(back[k].numpy(), v.int().numpy())


# ---- atomic writes -----------------------------------------------------------------------------

def test_crash_mid_save_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    dc.save({"w": dc.zeros(1000)}, path)
    before = path.read_bytes()

    def half_then_crash(f, data):
        f.write(bytes(memoryview(data)[: len(data) // 2]))
        raise OSError("disk full")

    monkeypatch.setattr(serialization, "_write_bytes", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        dc.save({"w": dc.ones(5000)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # no temporary left behind
    monkeypatch.undo()
    dc.save({"w": dc.ones(5000)}, path)
    assert dc.load(path)["w"].sum().item() == 5000
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_save_goes_through_fsync_and_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append("replace") or real_replace(a, b))
    dc.save({"a": dc.ones(2)}, tmp_path / "x.safetensors")
    assert calls[:2] == ["fsync", "replace"] and calls.count("fsync") >= 2  # file, then dir


def test_new_file_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        dc.save({"a": dc.ones(2)}, tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "m.safetensors").st_mode & 0o777) == 0o644


# ---- corrupted, foreign and malicious files ------------------------------------------------

def _good_bytes():
    buf = io.BytesIO()
    dc.save({"w": dc.randn(8, 8), "meta": {"step": 3}}, buf)
    return buf.getvalue()


def _expect_refused(path, match=None):
    with pytest.raises(serialization.SerializationError) as info:
        dc.load(path)
    assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeError)
    assert str(path) in str(info.value)
    if match:
        assert match in str(info.value)
    return info.value


@pytest.mark.parametrize("cut", [0, 3, 8, 20, -1, -100])
def test_truncated_files(cut, tmp_path):
    data = _good_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:cut])
    _expect_refused(path)


@pytest.mark.parametrize("content", [b"hello, this is a text file\n" * 3, bytes(range(256)) * 4,
                                     b"\xff" * 8 + b"{}", struct.pack("<Q", 5) + b"[1,2]",
                                     struct.pack("<Q", 4) + b"{]}x"])
def test_foreign_or_corrupted_files(content, tmp_path):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    _expect_refused(path)


def test_corrupted_tensor_offsets(tmp_path):
    data = bytearray(_good_bytes())
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["w"]["data_offsets"] = [0, 10 ** 6]
    raw = json.dumps(header).encode()
    path = tmp_path / "offsets.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
    _expect_refused(path)


class Payload:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


def test_pickle_files_are_never_unpickled(tmp_path):
    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Payload(str(sentinel))))
    err = _expect_refused(path, "pickle")
    assert not sentinel.exists()
    zpath = tmp_path / "torch_save.pt"
    torch.save({"w": torch.zeros(2), "evil": Payload(str(sentinel))}, zpath)
    assert sentinel.exists() is False
    _expect_refused(zpath, "zip")
    assert not sentinel.exists() and err is not None


def _file_with_metadata(doc, tensors=None):
    tensors = tensors or {"w": np.zeros(2, np.float32)}
    return safetensors.numpy.save(tensors, metadata={"__deepcore__": doc})


@pytest.mark.parametrize("root", [
    {"$pickle": "gASVIQAAAAAAAACMBWJ1aWx0aW5zlIwEb3BlbpSTlIwFcHduZWSUjAF3lIaUUpQu"},
    {"$reduce": ["os", "system", ["touch pwned"]]},
    {"$tensor": "missing"},
    {"$tensor": ["w"]},
    {"$tensor": "w", "extra": 1},
    {"$dict": [[1]]},
    {"$dtype": "object"},
    {"$float": "1e999999"},
])
def test_malicious_or_broken_metadata_refused(root, tmp_path):
    path = tmp_path / "meta.safetensors"
    path.write_bytes(_file_with_metadata(json.dumps({"version": 1, "root": root})))
    _expect_refused(path, "metadata")
    assert not (tmp_path / "pwned").exists()


def test_metadata_not_json_or_from_the_future(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(_file_with_metadata("not json {"))
    _expect_refused(path, "metadata")
    path.write_bytes(_file_with_metadata(json.dumps({"version": 99, "root": None})))
    _expect_refused(path, "newer")
    path.write_bytes(_file_with_metadata("[" * 100000 + "]" * 100000))
    _expect_refused(path)


def test_pickle_bytes_inside_a_tensor_stay_data(tmp_path):
    sentinel = tmp_path / "pwned"
    blob = np.frombuffer(pickle.dumps(Payload(str(sentinel))), dtype=np.uint8)
    path = tmp_path / "blob.safetensors"
    safetensors.numpy.save_file({"blob": blob}, str(path))
    back = dc.load(path)
    assert back["blob"].dtype == dc.int32 and back["blob"].numel() == blob.size
    assert not sentinel.exists()


def test_directory_and_file_object_errors(tmp_path):
    with pytest.raises(serialization.SerializationError, match=str(tmp_path)):
        dc.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        dc.load(tmp_path / "missing.safetensors")
    with pytest.raises(serialization.SerializationError, match="BytesIO"):
        dc.load(io.BytesIO(b"garbage!" * 4))
    with pytest.raises(TypeError):
        dc.load(io.StringIO("text"))
