"""Python interop: NumPy (shared memory both ways), DLPack with NumPy and PyTorch, Python
scalars and lists, item/tolist/len/iter, and repr."""
import numpy as np
import pytest
import torch

import deepcore as dc
from helpers import ALL_DTYPES, np_dtype, torch_dtype

NP_SUPPORTED = [np.bool_, np.int32, np.int64, np.float32, np.float64]


def test_numpy_shares_memory_both_ways():
    t = dc.zeros(2, 3)
    a = t.numpy()
    b = np.asarray(t)
    a[0, 1] = 5.0
    assert t[0, 1].item() == 5.0 and b[0, 1] == 5.0
    t[1, 2] = 7.0
    assert a[1, 2] == 7.0 and b[1, 2] == 7.0
    assert np.shares_memory(a, b)
    del t  # the array keeps the storage alive
    a[0, 0] = 1.0
    assert a.sum() == 13.0


def test_from_numpy_shares_and_tensor_copies():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    s = dc.from_numpy(arr)
    c = dc.tensor(arr)
    arr[0, 0] = 100.0
    assert s[0, 0].item() == 100.0
    assert c[0, 0].item() == 0.0
    s[1, 1] = -1.0
    assert arr[1, 1] == -1.0
    assert s.data_ptr() == arr.ctypes.data
    del arr  # the tensor keeps the array alive
    assert s.sum().item() == 100.0 + 1 + 2 + 3 - 1 + 5


@pytest.mark.parametrize("np_dt", NP_SUPPORTED)
def test_supported_numpy_dtypes(np_dt):
    arr = (np.arange(6) % 3).astype(np_dt).reshape(2, 3)
    for t in (dc.from_numpy(arr), dc.tensor(arr)):
        assert t.dtype == dc.tensor(arr).dtype == {np.bool_: dc.bool, np.int32: dc.int32,
                                                    np.int64: dc.int64, np.float32: dc.float32,
                                                    np.float64: dc.float64}[np_dt]
        back = t.numpy()
        assert back.dtype == np.dtype(np_dt)
        np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize("np_dt", [np.complex64, np.complex128, np.uint16, np.int8,
                                   np.uint8, np.int16, np.uint64])
def test_unsupported_numpy_dtypes_rejected(np_dt):
    arr = np.ones(3, dtype=np_dt)
    with pytest.raises(TypeError, match="from_numpy"):
        dc.from_numpy(arr)
    if np.dtype(np_dt).kind == "c":
        with pytest.raises(TypeError, match="tensor"):
            dc.tensor(arr)


def test_non_contiguous_numpy_in_and_out():
    base = np.arange(24.0).reshape(4, 6)
    for view in [base.T, base[:, ::2], base[1:3, 1::3], base[None, :, 2]]:
        t = dc.from_numpy(view)
        np.testing.assert_array_equal(t.numpy(), view)
        assert t.stride() == tuple(s // 8 for s in view.strides)
    v = dc.from_numpy(base[:, ::2])
    v.mul_(-1.0)
    assert base[0, 2] == -2.0 and base[0, 1] == 1.0
    with pytest.raises(ValueError, match="negative"):
        dc.from_numpy(base[::-1])
    # Non-contiguous tensors out: strides carried over, memory shared.
    t = dc.tensor(np.arange(12.0).reshape(3, 4))
    for view in [t.t(), t[:, 1::2], t[1].unsqueeze(0).expand(3, 4)]:
        a = view.numpy()
        np.testing.assert_array_equal(a, np.asarray(view.tolist()))
    tt = t.t().numpy()
    tt[0, 1] = 99.0
    assert t[1, 0].item() == 99.0


def test_numpy_requires_grad_and_detach():
    x = dc.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0, 1.0]
    assert x.numpy(force=True).tolist() == [1.0, 1.0, 1.0]


def test_python_values_and_nested_lists():
    cases = [(3, dc.int64), (2.5, dc.float32), (True, dc.bool), ([1, 2], dc.int64),
             ([[1.0, 2.0], [3.0, 4.0]], dc.float32), ([True, False], dc.bool),
             ([1, 2.5], dc.float32), ([[[1]], [[2]]], dc.int64), ((1, 2), dc.int64),
             ([], dc.float32), (np.float64(1.5), dc.float64), (np.int32(4), dc.int32)]
    for value, dt in cases:
        t = dc.tensor(value)
        tt = torch.tensor(value)
        assert t.dtype == dt and dc.tensor(value).dtype == {torch.bool: dc.bool,
                                                            torch.int32: dc.int32,
                                                            torch.int64: dc.int64,
                                                            torch.float32: dc.float32,
                                                            torch.float64: dc.float64}[tt.dtype]
        assert tuple(t.shape) == tuple(tt.shape)
        assert t.tolist() == tt.tolist()
    with pytest.raises((ValueError, TypeError)):
        dc.tensor([[1, 2], [3]])
    with pytest.raises(TypeError):
        dc.tensor({"a": 1})
    # Lists of tensors, and tensors of other dtypes.
    assert dc.tensor([dc.tensor(1.0), dc.tensor(2.0)]).tolist() == [1.0, 2.0]
    assert dc.tensor([1, 2], dtype=dc.float64).dtype == dc.float64
    # Ops accept NumPy arrays, lists and numbers wherever a tensor goes.
    x = dc.ones(3)
    assert (x + np.ones(3, dtype=np.float32)).tolist() == [2.0] * 3
    assert (np.ones(3, dtype=np.float32) + x).tolist() == [2.0] * 3
    assert isinstance(np.ones(3) * x, dc.Tensor)
    assert ([1.0, 2.0, 3.0] + x).tolist() == [2.0, 3.0, 4.0]
    assert dc.add(x, [1.0, 2.0, 3.0]).tolist() == [2.0, 3.0, 4.0]
    assert dc.maximum(x, np.float32(2.0)).tolist() == [2.0] * 3


def test_item_tolist_len_iter():
    for d in ALL_DTYPES:
        t = dc.tensor(np.array([[1, 0, 1]], dtype=np_dtype(d)))
        tt = torch.tensor(np.array([[1, 0, 1]], dtype=np_dtype(d)))
        assert t.tolist() == tt.tolist()
        assert type(t[0, 0].item()) is type(tt[0, 0].item())
        assert t[0, 2].item() == tt[0, 2].item()
    x = dc.arange(6).reshape(3, 2)
    assert len(x) == 3
    assert [r.tolist() for r in x] == [[0, 1], [2, 3], [4, 5]]
    assert dc.tensor(2.5).tolist() == 2.5
    with pytest.raises(TypeError):
        len(dc.tensor(1.0))
    with pytest.raises(TypeError):
        iter(dc.tensor(1.0)).__next__()
    with pytest.raises(ValueError, match="item"):
        x.item()
    assert float(dc.tensor([2.5])) == 2.5 and int(dc.tensor(7)) == 7
    assert bool(dc.tensor([1])) and not bool(dc.tensor(0.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(dc.ones(2))
    assert [10, 20, 30][dc.tensor(1)] == 20  # __index__


@pytest.mark.parametrize("make", [
    lambda lib: lib.tensor([1.0, 2.0, 3.0]),
    lambda lib: lib.tensor([[1, 2], [3, 4]]),
    lambda lib: lib.tensor([True, False]),
    lambda lib: lib.tensor(3.5),
    lambda lib: lib.tensor([1.5, -2.25]),
    lambda lib: lib.tensor([[0.1234567, -20.0], [3.0, 4.5]]),
    lambda lib: lib.tensor([1e-5, 1.0]),
    lambda lib: lib.tensor([1.0, 2.0], dtype=lib.float64),
    lambda lib: lib.tensor([1, -20], dtype=lib.int32),
    lambda lib: lib.zeros(2, 0),
    lambda lib: lib.tensor([1.0, 2.0], requires_grad=True),
    lambda lib: lib.tensor([1.0, 2.0], requires_grad=True) * 2,
    lambda lib: lib.tensor([float("nan"), float("inf"), 1.5]),
])
def test_repr_like_torch(make):
    expected = repr(make(torch)).replace("torch.", "deepcore.")
    assert repr(make(dc)) == expected


@pytest.mark.parametrize("spec", ["", ".2f", ">8.3e", "d", "+"])
@pytest.mark.parametrize("value,dtype", [(3.14159, "float32"), (-2.5, "float64"), (7, "int64"),
                                         (True, "bool")])
def test_format_like_torch(value, dtype, spec):
    # A 0-d tensor formats as its Python number ('{:.2f}'.format(loss)), as in torch.
    def fmt(lib):
        try:
            return format(lib.tensor(value, dtype=getattr(lib, dtype)), spec)
        except (TypeError, ValueError) as e:
            return type(e).__name__
    assert fmt(dc) == fmt(torch)


def test_format_of_a_tensor_with_dimensions():
    t = dc.tensor([1.0, 2.0])
    assert f"{t}" == repr(t)
    with pytest.raises(TypeError, match="unsupported format string"):
        "{:.2f}".format(t)


def test_dlpack_with_numpy():
    t = dc.tensor(np.arange(6.0).reshape(2, 3))
    a = np.from_dlpack(t)  # NumPy marks DLPack imports read-only; the memory is shared
    t[0, 0] = -1.0
    assert a[0, 0] == -1.0
    tv = t.t()
    av = np.from_dlpack(tv)
    np.testing.assert_array_equal(av, np.asarray(tv.tolist()))
    arr = np.arange(4, dtype=np.int32)
    back = dc.from_dlpack(arr)
    arr[1] = 42
    assert back.dtype == dc.int32 and back[1].item() == 42


@pytest.mark.parametrize("d", ALL_DTYPES)
def test_dlpack_with_torch_zero_copy(d):
    t = dc.tensor(np.array([[1, 0, 1], [0, 1, 1]], dtype=np_dtype(d)))
    tt = torch.from_dlpack(t)
    assert tt.dtype == torch_dtype(d)
    assert tt.data_ptr() == t.data_ptr()
    assert tt.tolist() == t.tolist()
    src = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch_dtype(d))
    x = dc.from_dlpack(src)
    assert x.dtype == d and x.data_ptr() == src.data_ptr()
    assert x.tolist() == src.tolist()


def test_dlpack_torch_strided_and_writes():
    src = torch.arange(12.0).reshape(3, 4).t()[1:]
    x = dc.from_dlpack(src)
    assert x.tolist() == src.tolist() and x.stride() == src.stride()
    x.mul_(2.0)
    assert src[0, 0].item() == 2.0  # shared memory
    t = dc.tensor(np.arange(12.0, dtype=np.float32).reshape(3, 4))
    tt = torch.from_dlpack(t[:, ::2])
    assert tt.tolist() == t[:, ::2].tolist() and tt.stride() == (4, 2)
    tt.add_(1.0)
    assert t[0, 0].item() == 1.0 and t[0, 1].item() == 1.0
    # The capsule keeps deepcore's storage alive after the tensor is gone.
    u = dc.ones(1000)
    tu = torch.from_dlpack(u)
    del u
    assert tu.sum().item() == 1000.0


def test_cannot_use_consumed_capsule():
    cap = dc.ones(3).__dlpack__()
    dc.from_dlpack(cap)
    with pytest.raises(ValueError, match="dlpack"):
        dc.from_dlpack(cap)
