"""Tensor methods written in Python on top of the C++ ops (indexing, repr, conversions)."""
from __future__ import annotations

import numbers

import ml_dtypes
import numpy as np

from . import _C
from ._C import Tensor

_NP_TO_DTYPE = {
    np.dtype("bool"): _C.dtype.bool,
    np.dtype("int32"): _C.dtype.int32,
    np.dtype("int64"): _C.dtype.int64,
    np.dtype("float32"): _C.dtype.float32,
    np.dtype("float64"): _C.dtype.float64,
    np.dtype("float16"): _C.dtype.float16,
    np.dtype(ml_dtypes.bfloat16): _C.dtype.bfloat16,
}
_DTYPE_TO_NP = {v: k for k, v in _NP_TO_DTYPE.items()}


class Size(tuple):
    """A tensor's shape: a tuple of ints, printed like PyTorch's ``Size``."""

    def __repr__(self) -> str:
        return f"deepcore.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


def _shape_args(args, op):
    if len(args) == 1 and not isinstance(args[0], numbers.Integral):
        return tuple(int(s) for s in args[0])
    return tuple(int(s) for s in args)


# ---- printing ---------------------------------------------------------------------------------

def _padded(f, candidates):
    # Like torch, every element is right-aligned to the widest one. The widest string comes
    # from an extreme value (largest/smallest, or smallest nonzero magnitude for exponents).
    width = max((len(f(c)) for c in candidates), default=0)
    return lambda x: f(x).rjust(width)


def _host(t: Tensor) -> Tensor:
    """The values of `t` in host memory (a copy for a tensor on a GPU), detached."""
    t = t.detach()
    return t if _C._device_index(t) == 0 else _C._to_device(t, "cpu")


def _format_tensor(t: Tensor) -> str:
    arr = _C._to_numpy(_C.contiguous(_host(t)), True)
    if t.dtype.itemsize == 2 and t.dtype.is_floating_point:
        arr = arr.astype(np.float32)  # every 16-bit value is exact in float32
    if t.dtype.is_floating_point:
        finite = arr[np.isfinite(arr)]
        int_valued = finite.size > 0 and np.all(finite == np.round(finite))
        big = finite.size > 0 and (np.abs(finite).max() >= 1e8 or
                                   (np.abs(finite[finite != 0]).min() < 1e-4
                                    if np.any(finite != 0) else False))
        if big:
            f = lambda x: f"{x:.4e}"  # noqa: E731
        elif int_valued:
            f = lambda x: f"{x:.0f}." if np.isfinite(x) else f"{x}"  # noqa: E731
        else:
            f = lambda x: f"{x:.4f}"  # noqa: E731
        cands = list(arr[~np.isfinite(arr)][:8])
        if finite.size:
            nz = finite[finite != 0]
            cands += [finite.max(), finite.min()]
            if nz.size:
                cands += [nz[np.argmin(np.abs(nz))], -np.abs(nz).min()] if (nz < 0).any() \
                    else [np.abs(nz).min()]
        fmt = {"float_kind": _padded(f, cands)}
    elif t.dtype == _C.dtype.bool:
        f = lambda x: "True" if x else "False"  # noqa: E731
        fmt = {"bool": _padded(f, [bool(v) for v in np.unique(arr)])}
    else:
        fmt = None  # NumPy already right-aligns integers
    return np.array2string(arr, separator=", ", formatter=fmt, threshold=1000, edgeitems=3,
                           prefix="tensor(")


def _repr(self: Tensor) -> str:
    if self.is_meta:  # no values to print, as torch prints them
        dt = "" if self.dtype == _C.dtype.float32 else f", dtype={self.dtype}"
        return f"tensor(..., device='meta', size={tuple(self.shape)}{dt})"
    body = _format_tensor(self)
    extras = []
    if _C._device_index(self) == 1:
        extras.append(f"device='{_C._device_str(self)}'")
    if self.dtype not in (_C.dtype.float32, _C.dtype.int64, _C.dtype.bool):
        extras.append(f"dtype={self.dtype}")
    if self.numel() == 0 and self.dim() != 1:
        extras.insert(0, f"size={tuple(self.shape)}")
    gf = _C._grad_fn(self)
    if gf is not None:
        extras.append(f"grad_fn={gf!r}")
    elif self.requires_grad:
        extras.append("requires_grad=True")
    suffix = "".join(", " + e for e in extras)
    return f"tensor({body}{suffix})"


# ---- conversions ------------------------------------------------------------------------------

def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Creates a new tensor (always a copy) from data: lists, numbers, NumPy arrays, tensors."""
    name = _check_device(device)
    if name is None:  # inside `with deepcore.device(...)` the data goes there
        current = _C._current_device()
        name = None if current == "cpu" else current
    if isinstance(data, Tensor):
        t = _C.contiguous(data.detach())
        t = _C._to_dtype(t, dtype if dtype is not None else t.dtype, True)
    else:
        if isinstance(data, (np.ndarray, np.generic)):
            arr = np.asarray(data)  # NumPy scalars keep their dtype, like torch.tensor
        elif hasattr(data, "__dlpack__") and not isinstance(data, (list, tuple)):
            arr = np.asarray(data)
        else:
            if isinstance(data, (list, tuple)):
                data = [(_C._to_numpy(_host(x), True) if isinstance(x, Tensor) else x)
                        for x in data]
            arr = np.asarray(data)
            if arr.dtype == np.float64 and dtype is None:
                arr = arr.astype(np.float32)
        if arr.dtype == object:
            raise TypeError(f"[tensor] could not infer dtype of {type(data).__name__}")
        if arr.dtype.kind == "U" or arr.dtype.kind == "S":
            raise TypeError("[tensor] strings cannot be converted to a tensor")
        if dtype is not None:
            arr = arr.astype(_DTYPE_TO_NP[_C.dtype(dtype) if isinstance(dtype, str) else dtype]
                             if not isinstance(dtype, str) else np.dtype(dtype))
        elif arr.dtype not in _NP_TO_DTYPE:
            kind = arr.dtype.kind
            if kind in "iu":
                arr = arr.astype(np.int64)
            elif kind == "f":
                arr = arr.astype(np.float32)
            elif kind == "b":
                arr = arr.astype(np.bool_)
            else:
                raise TypeError(f"[tensor] can't convert data of NumPy dtype {arr.dtype}")
        t = _C.from_numpy(np.array(arr, copy=True, order="C"))
    if name is not None and name != _C._device_str(t):
        t = _C._to_device(t, name)
    if requires_grad:
        t.requires_grad = True
    return t


def _device_name(dev) -> str:
    """The canonical name of a device argument ("cpu", "meta", "cuda:0"); errors name it."""
    if isinstance(dev, device):
        return str(dev)
    if isinstance(dev, int):  # torch reads a bare index as a CUDA device
        return f"cuda:{dev}"
    if not isinstance(dev, str):
        raise TypeError(f"[device] expected a device, a string or an int, got {type(dev).__name__}")
    kind, index = _C._parse_device(dev)
    return kind if index < 0 else f"{kind}:{index}"


def _check_device(dev):
    """Validates a device argument; RuntimeError for a device this build cannot use."""
    if dev is None:
        return None
    name = _device_name(dev)
    if name.startswith("cuda"):
        return _C._resolve_device(name)  # "cuda" -> "cuda:0"; errors without a device
    return name


class _on_device:
    """Makes a device current for the factories called inside (``device=`` of every factory)."""

    __slots__ = ("name", "prev")

    def __init__(self, dev):
        self.name = _check_device(dev)
        self.prev = None

    def __enter__(self):
        if self.name is not None and self.name != "cpu":
            self.prev = _C._set_current_device(self.name)

    def __exit__(self, *exc):
        if self.prev is not None:
            _C._set_current_device(self.prev)


def _to(self: Tensor, *args, **kwargs) -> Tensor:
    dtype = kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    non_blocking = bool(kwargs.pop("non_blocking", False))
    device = kwargs.pop("device", None)
    for a in args:
        if isinstance(a, _C.dtype):
            dtype = a
        elif isinstance(a, Tensor):
            dtype = a.dtype
        else:
            device = a
    if kwargs:
        raise TypeError(f"[to] unexpected arguments {sorted(kwargs)}")
    name = _check_device(device)
    t = self
    if name is not None and name != str(self.device):
        t = _C._to_device(t, name, non_blocking)
        copy = False  # already a new tensor
    if dtype is None:
        return _C.clone(t) if copy else t
    return _C._to_dtype(t, dtype, copy)


def _tolist(self: Tensor):
    return _C._to_numpy(_C.contiguous(_host(self)), True).tolist()


def _iter(self: Tensor):
    if self.dim() == 0:
        raise TypeError("[iter] iteration over a 0-d tensor")
    for i in range(self.shape[0]):
        yield _C.select(self, 0, i)


def _array(self: Tensor, dtype=None, copy=None):
    arr = _C._to_numpy(self.detach(), True)
    return arr if dtype is None else arr.astype(dtype)


def _backward(self: Tensor, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    if retain_graph is None:
        retain_graph = create_graph
    _C._backward([self], None if gradient is None else [gradient], retain_graph, create_graph,
                 None if inputs is None else list(inputs) if not isinstance(inputs, Tensor)
                 else [inputs])


def _requires_grad_(self: Tensor, requires_grad: bool = True) -> Tensor:
    self.requires_grad = requires_grad
    return self


class RemovableHandle:
    """Returned by Tensor.register_hook; ``remove()`` stops the hook from running."""

    def __init__(self):
        self.active = True

    def remove(self) -> None:
        self.active = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _register_hook(self: Tensor, hook):
    handle = RemovableHandle()

    def run(grad):
        # A removed hook stays in the C++ list but passes the gradient through unchanged.
        return hook(grad) if handle.active else None
    _C._register_hook(self, run)
    return handle


class _PostAccumulateHandle:
    """Returned by Tensor.register_post_accumulate_grad_hook; ``remove()`` unregisters it."""

    def __init__(self, tensor: Tensor, hook_id: int):
        self._tensor, self._id = tensor, hook_id

    def remove(self) -> None:
        if self._tensor is not None:
            _C._remove_post_accumulate_grad_hook(self._tensor, self._id)
            self._tensor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _register_post_accumulate_grad_hook(self: Tensor, hook):
    """hook(tensor) runs after backward has accumulated this leaf's .grad (torch's
    register_post_accumulate_grad_hook); its return value is ignored."""
    return _PostAccumulateHandle(self, _C._register_post_accumulate_grad_hook(self, hook))


def _deepcopy(self: Tensor, memo: dict) -> Tensor:
    # copy.deepcopy(model) copies buffers this way; Parameter has its own (keeps its class).
    if not self.is_leaf:
        raise RuntimeError("[deepcopy] only graph leaves (tensors created by the user) can be "
                           "deep-copied; detach() first")
    new = _C.clone(self.detach())
    new.requires_grad = self.requires_grad
    memo[id(self)] = new
    return new


def _dlpack(self: Tensor, stream=None, **kwargs):
    return _C._to_dlpack(self.detach())


def _dlpack_device(self: Tensor):
    return (1, 0)


def _view(self: Tensor, *shape):
    if len(shape) == 1 and isinstance(shape[0], _C.dtype):
        raise TypeError("[view] viewing as another dtype is not supported")
    return _C._view(self, _shape_args(shape, "view"))


def _reshape(self: Tensor, *shape):
    return _C._reshape(self, _shape_args(shape, "reshape"))


def _permute(self: Tensor, *dims):
    return _C._permute(self, _shape_args(dims, "permute"))


def _expand(self: Tensor, *shape):
    return _C._expand(self, _shape_args(shape, "expand"))


def _repeat(self: Tensor, *shape):
    return _C._repeat(self, _shape_args(shape, "repeat"))


def _view_as(self, other):
    return _C._view(self, list(other.shape))


def _expand_as(self, other):
    return _C._expand(self, list(other.shape))


def _reshape_as(self, other):
    return _C._reshape(self, list(other.shape))


def _type_as(self, other):
    return _C._to_dtype(self, other.dtype, False)


class device:
    """A device: ``cpu``, ``meta`` (shapes and dtypes only, no memory) or ``cuda[:index]``."""

    def __init__(self, type="cpu", index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        name, idx = _C._parse_device(str(type))
        self.type = name
        self.index = index if idx < 0 else idx

    def __repr__(self):
        return f"device(type='{self.type}')" if self.index is None else \
            f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __enter__(self):
        """``with deepcore.device("cuda"):`` makes factories without ``device=`` allocate here,
        as ``with torch.device(...)`` does."""
        ctx = _on_device(str(self))
        self.__dict__.setdefault("_ctx", []).append(ctx)
        ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self.__dict__["_ctx"].pop().__exit__(*exc)


_CPU = device("cpu")
# By DeviceType (csrc/core/device.h); cuda devices carry an index and are made on first use.
_DEVICES = (_CPU, None, device("meta"))
_CUDA_DEVICES: dict = {}


def _tensor_device(t) -> device:
    d = _DEVICES[_C._device_index(t)]
    if d is not None:
        return d
    name = _C._device_str(t)
    d = _CUDA_DEVICES.get(name)
    if d is None:
        d = _CUDA_DEVICES[name] = device(name)
    return d


def _as_method(fn):
    # Builtin functions do not bind as methods; a plain Python function does.
    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)
    method.__name__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


# Every op of csrc/ops/ops.schema: which are functions, Tensor methods, in-place variants.
_OPS = _C._op_registry()


def _method_names(op) -> list:
    names = [op["name"]] if "method" in op["variants"] else []
    if "inplace" in op["variants"]:
        names.append(op["name"] + "_")
    return names


def install_methods(namespace: dict) -> None:
    """Makes the schema's Tensor methods that are written in Python (rows marked ``python``, or
    Python over a binding of another name, ``bind=``) methods of Tensor, taking them from a
    module's ``globals()``."""
    for op in _OPS:
        if op["python"] or op["binding"] != op["name"]:
            for name in _method_names(op):
                if name in namespace:
                    setattr(Tensor, name, namespace[name])


def _format(self, spec: str) -> str:
    """As torch: a 0-d tensor formats as its Python number ('{:.2f}'.format(loss)); any other
    tensor takes only the empty spec, which gives its repr."""
    if self.dim() == 0 and not self.is_meta:
        return format(self.item(), spec)
    return object.__format__(self, spec)


def _pin_memory(self, device=None):
    """A copy in page-locked host memory (the tensor itself if already pinned), from which
    ``.to("cuda", non_blocking=True)`` copies asynchronously on the current stream. Needs a CUDA
    device."""
    from . import cuda
    cuda._require("Tensor.pin_memory")
    return _C._pin_memory(self)


def _is_pinned(self, device=None) -> bool:
    return _C._is_pinned(self)


def _record_stream(self, stream) -> None:
    """The tensor's memory is also used by work on ``stream``: when the tensor is freed, the
    caching allocator hands its block out again only after that work has run."""
    from . import cuda
    cuda._require("Tensor.record_stream")
    _C._record_stream(self, stream.cuda_stream)


def _install():
    T = Tensor
    T.pin_memory = _pin_memory
    T.is_pinned = _is_pinned
    T.record_stream = _record_stream
    T.__repr__ = _repr
    T.__str__ = _repr
    T.__format__ = _format
    T.__iter__ = _iter
    T.__array__ = _array
    T.__dlpack__ = _dlpack
    T.__deepcopy__ = _deepcopy
    T.__dlpack_device__ = _dlpack_device
    T.__array_priority__ = 1000
    T.to = _to
    T.tolist = _tolist
    T.backward = _backward
    T.requires_grad_ = _requires_grad_
    T.register_hook = _register_hook
    T.register_post_accumulate_grad_hook = _register_post_accumulate_grad_hook
    T.retain_grad = lambda self: _C._retain_grad(self)
    T.retains_grad = property(lambda self: _C._retains_grad(self))
    T.grad_fn = property(lambda self: _C._grad_fn(self))
    T.device = property(_tensor_device)
    T.is_meta = property(lambda self: _C._device_index(self) == 2)
    T.T = property(lambda self: _C._T(self))
    T.mT = property(lambda self: _C.transpose(self, -2, -1))
    # Setting .data swaps what the tensor looks at (PyTorch's set_data): shape and dtype may
    # change, the object (and its autograd identity) stays.
    T.data = property(lambda self: self.detach(), lambda self, v: self._set_data(v))
    T.view = _view
    T.reshape = _reshape
    T.permute = _permute
    T.expand = _expand
    T.repeat = _repeat
    T.view_as = _view_as
    T.expand_as = _expand_as
    T.reshape_as = _reshape_as
    T.type_as = _type_as
    T.float = lambda self: _C._to_dtype(self, _C.dtype.float32, False)
    T.double = lambda self: _C._to_dtype(self, _C.dtype.float64, False)
    T.long = lambda self: _C._to_dtype(self, _C.dtype.int64, False)
    T.int = lambda self: _C._to_dtype(self, _C.dtype.int32, False)
    T.bool = lambda self: _C._to_dtype(self, _C.dtype.bool, False)
    T.cpu = lambda self: self if _C._device_index(self) == 0 else _to(self, "cpu")
    T.cuda = lambda self, device=None, non_blocking=False: _to(
        self, "cuda" if device is None else device, non_blocking=non_blocking)
    T.is_floating_point = lambda self: self.dtype.is_floating_point
    T.size = T.size
    # The schema's method variants whose binding is hand-written (the generated ones are C++
    # methods of Tensor already); those written in Python attach themselves (install_methods).
    for op in _OPS:
        for name in _method_names(op):
            if not op["python"] and name not in T.__dict__ and hasattr(_C, name):
                setattr(T, name, _as_method(getattr(_C, name)))
    T.where = lambda self, condition, other: _C.where(condition, self, other)
    T.negative = T.neg
    T.absolute = T.abs
    T.clip = T.clamp
    T.arctan2 = T.atan2
    T.true_divide = T.div
    T.multiply = T.mul
    T.subtract = T.sub
    T.greater = T.gt
    T.less = T.lt
    T.equal = lambda self, other: bool(self.shape == other.shape and
                                       bool(_C.eq(self, other).all()))
    T.add_module_methods = None
    del T.add_module_methods


_install()
