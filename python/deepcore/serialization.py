"""``dc.save`` / ``dc.load``: checkpoints as safetensors files. No pickle, no code on load.

Note [Checkpoint format]
A checkpoint is a plain safetensors file (an 8-byte little-endian header length, a JSON
header, raw little-endian tensor bytes), written and parsed by the ``safetensors`` package.

- Tensors go into the tensor table under their key path joined with ".", e.g.
  ``state.0.exp_avg``; a flat ``{str: Tensor}`` dict (a model's state dict) uses its own keys,
  so ``safetensors.torch.load_file`` reads it as is.
- Everything else -- the nesting, dict key types, tuples vs lists, ints, floats, bools,
  strings, None -- is one JSON document in the header metadata under ``__deepcore__``.
  Leaves refer to tensors as ``{"$tensor": key}``; ``$``-tagged objects mark what JSON can't
  say directly (tuples, non-string keys, OrderedDict, non-finite floats, dtypes, NumPy
  arrays). Loading only ever runs ``json.loads`` and builds these known types, so a file
  can't make ``load`` run code, whatever it holds.
- A tensor reached twice (the same object, or the same view of the same memory, e.g. tied
  weights) is stored once and loads as one tensor referenced from both places.
- Files without ``__deepcore__`` (written by ``safetensors.torch.save_file`` and friends)
  load as a flat ``{name: Tensor}`` dict. float16 and bfloat16 load as themselves; dtypes
  deepcore lacks are widened exactly: int8/uint8/int16/uint16 -> int32, uint32 -> int64.
- Saving to a path is atomic: a temporary file in the same directory is written, flushed,
  fsync'ed and renamed over the target (then the directory is fsync'ed), so a crash leaves
  either the old file or the new one, never a torn one.
"""
from __future__ import annotations

import collections
import json
import math
import numbers
import os
from typing import Any, BinaryIO, Dict, Union

import ml_dtypes
import numpy as np

from . import _C
from ._C import Tensor

__all__ = ["save", "load", "SerializationError"]

META_KEY = "__deepcore__"
FORMAT_VERSION = 1
_CHUNK = 64 << 20  # bytes per write() call

PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]


class SerializationError(ValueError, RuntimeError):
    """A file that is not a readable deepcore/safetensors checkpoint (or an object that can't
    be saved). Subclasses both ValueError and RuntimeError, so code written for either (or
    for PyTorch's RuntimeError on bad files) catches it."""


# ---- saving ------------------------------------------------------------------------------------

_SAVE_TYPES = ("tensors, NumPy arrays, dicts, lists, tuples, ints, floats, bools, strings, "
               "None and dtypes")


class _Encoder:
    def __init__(self):
        self.arrays: Dict[str, np.ndarray] = {}
        self._alias: Dict[Any, str] = {}

    def _unique_key(self, path) -> str:
        key = ".".join(path) if path else "tensor"
        if key not in self.arrays and key != "__metadata__":  # the header's reserved name
            return key
        n = 1
        while f"{key}#{n}" in self.arrays:
            n += 1
        return f"{key}#{n}"

    def _add(self, arr: np.ndarray, alias, path) -> str:
        if alias is not None and alias in self._alias:
            return self._alias[alias]
        key = self._unique_key(path)
        self.arrays[key] = arr
        if alias is not None:
            self._alias[alias] = key
        return key

    def tensor(self, t: Tensor, path) -> str:
        # Same memory, same view, same dtype: the same tensor as far as a checkpoint goes.
        alias = ("t", t.data_ptr(), tuple(t.shape), tuple(t.stride()), str(t.dtype))
        if alias in self._alias:
            return self._alias[alias]
        # A tensor on a GPU is written from a host copy; it loads on the cpu unless
        # map_location says otherwise (safetensors files record no device).
        host = t.detach() if _C._device_index(t) == 0 else _C._to_device(t.detach(), "cpu")
        arr = _c_order(_C._to_numpy(host, True))
        return self._add(arr, alias, path)

    def ndarray(self, a: np.ndarray, path) -> str:
        if a.dtype.kind not in "biuf" or a.dtype.itemsize > 8:
            raise SerializationError(
                f"[save] can't save a NumPy array of dtype {a.dtype} at {_where(path)}")
        alias = ("a", a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str)
        return self._add(_c_order(a), alias, path)

    def key(self, k, path):
        if k is None or isinstance(k, (bool, str)):
            return k
        if isinstance(k, numbers.Integral):
            return int(k)
        if isinstance(k, numbers.Real):
            return self.value(float(k), path)
        if isinstance(k, tuple):
            return {"$tuple": [self.key(x, path) for x in k]}
        raise SerializationError(
            f"[save] dict key {k!r} of type {type(k).__name__} at {_where(path)} can't be "
            "saved: keys must be strings, numbers, bools, None or tuples of these")

    def value(self, v, path):
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, Tensor):
            return {"$tensor": self.tensor(v, path)}
        if isinstance(v, np.ndarray):
            return {"$ndarray": self.ndarray(v, path)}
        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, numbers.Integral):
            return int(v)
        if isinstance(v, numbers.Real):
            f = float(v)
            return f if math.isfinite(f) else {"$float": repr(f)}
        if isinstance(v, _C.dtype):
            return {"$dtype": v.name}
        if isinstance(v, tuple):
            return {"$tuple": [self.value(x, path + [str(i)]) for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [self.value(x, path + [str(i)]) for i, x in enumerate(v)]
        if isinstance(v, dict):
            ordered = isinstance(v, collections.OrderedDict)
            if not ordered and all(isinstance(k, str) and not k.startswith("$") for k in v):
                return {k: self.value(x, path + [k]) for k, x in v.items()}
            items = [[self.key(k, path), self.value(x, path + [str(k)])] for k, x in v.items()]
            return {"$odict" if ordered else "$dict": items}
        hint = ""
        if hasattr(v, "state_dict") and hasattr(v, "load_state_dict"):
            # torch.save(model) pickles the module; a checkpoint here can't hold code.
            hint = ("; save its state_dict() instead and load that into a newly built "
                    f"{type(v).__name__} with load_state_dict()")
        raise SerializationError(
            f"[save] can't save an object of type {type(v).__name__} at {_where(path)}: "
            f"checkpoints hold only {_SAVE_TYPES}{hint}")


def _c_order(a: np.ndarray) -> np.ndarray:
    # Not np.ascontiguousarray: it turns 0-d arrays into 1-d ones.
    return a if a.flags.c_contiguous else a.copy(order="C")


def _where(path) -> str:
    return "the top level" if not path else "'" + ".".join(path) + "'"


def _encode(obj) -> bytes:
    """The complete file contents for ``obj`` (see Note [Checkpoint format])."""
    import safetensors.numpy

    enc = _Encoder()
    root = enc.value(obj, [])
    doc = {"version": FORMAT_VERSION, "root": root}
    metadata = {"format": "pt", META_KEY: json.dumps(doc, allow_nan=False,
                                                     separators=(",", ":"))}
    return safetensors.numpy.save(enc.arrays, metadata=metadata)


def _write_bytes(f, data) -> None:
    """Writes ``data`` to the open binary file ``f`` in chunks."""
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        f.write(view[start:start + _CHUNK])


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # platforms without directory handles (Windows): the rename is what we have
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str, data) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    # O_EXCL: never follow a planted link; mode 0o666 lets the umask decide, as open() does.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_bytes(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def save(obj, f: PathOrFile, **kwargs) -> None:
    """Saves ``obj`` -- a tensor, or (nested) dicts/lists/tuples of tensors and plain values
    such as ``model.state_dict()`` or ``optimizer.state_dict()`` -- to a safetensors file.

    ``f`` is a path (written atomically) or a binary file object. PyTorch's pickle options
    (``pickle_module``, ``pickle_protocol``, ...) are not accepted: nothing is pickled.
    """
    if kwargs:
        raise TypeError(f"[save] unexpected keyword arguments {sorted(kwargs)}: deepcore "
                        "checkpoints are safetensors files and are never pickled")
    data = _encode(obj)
    if isinstance(f, (str, os.PathLike)):
        _atomic_write(os.fspath(f), data)
    elif hasattr(f, "write"):
        _write_bytes(f, data)
        if hasattr(f, "flush"):
            f.flush()
    else:
        raise TypeError(f"[save] expected a path or a writable binary file, got "
                        f"{type(f).__name__}")


# ---- loading -----------------------------------------------------------------------------------

# safetensors dtype -> (NumPy dtype as stored, NumPy dtype deepcore holds it in)
_DTYPES = {
    "BOOL": ("|b1", np.bool_), "I32": ("<i4", np.int32), "I64": ("<i8", np.int64),
    "F32": ("<f4", np.float32), "F64": ("<f8", np.float64),
    "I8": ("|i1", np.int32), "U8": ("|u1", np.int32), "I16": ("<i2", np.int32),
    "U16": ("<u2", np.int32), "U32": ("<u4", np.int64), "F16": ("<f2", np.float16),
    "BF16": ("<u2", ml_dtypes.bfloat16),  # stored as raw 16-bit words, viewed as bfloat16
}
_NDARRAY_DTYPES = {"U64": "<u8"}


def _describe(f) -> str:
    if isinstance(f, (str, os.PathLike)):
        return f"'{os.fspath(f)}'"
    name = getattr(f, "name", None)
    return f"'{name}'" if isinstance(name, str) else f"<{type(f).__name__}>"


def _read(f):
    if isinstance(f, (str, os.PathLike)):
        try:
            with open(os.fspath(f), "rb") as fh:
                return fh.read()
        except IsADirectoryError:
            raise SerializationError(f"[load] {_describe(f)} is a directory, not a checkpoint "
                                     "file") from None
    if hasattr(f, "read"):
        data = f.read()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"[load] expected a binary file object, but read() returned "
                            f"{type(data).__name__}")
        return bytes(data)
    raise TypeError(f"[load] expected a path or a readable binary file, got {type(f).__name__}")


def _foreign_hint(data: bytes) -> str:
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return (" It looks like a pickle (e.g. an old torch.save file); deepcore never unpickles "
                "files, because unpickling can run arbitrary code.")
    if data[:4] == b"PK\x03\x04":
        return (" It looks like a zip archive (torch.save's format), which holds pickled "
                "objects; deepcore never unpickles files. Convert it with "
                "safetensors.torch.save_file in a trusted environment.")
    return ""


def _parse_header(data: bytes, name: str) -> dict:
    if not data:
        raise SerializationError(f"[load] {name} is empty; expected a safetensors checkpoint")
    if len(data) < 8:
        raise SerializationError(f"[load] {name} is too short ({len(data)} bytes) to be a "
                                 f"safetensors checkpoint.{_foreign_hint(data)}")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8 or n < 2 or data[8:9] != b"{":
        what = ("is truncated or not a safetensors checkpoint" if data[8:9] == b"{" else
                "is not a safetensors checkpoint")
        raise SerializationError(f"[load] {name} {what} (header length {n}, file size "
                                 f"{len(data)} bytes).{_foreign_hint(data)}")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SerializationError(f"[load] {name} has a corrupted safetensors header: {e}") \
            from None
    if not isinstance(header, dict):
        raise SerializationError(f"[load] {name} has a corrupted safetensors header: expected "
                                 "a JSON object")
    return header


def _to_array(key: str, info: dict, name: str, as_ndarray: bool) -> np.ndarray:
    dt = info["dtype"]
    if as_ndarray and dt in _NDARRAY_DTYPES:
        stored, held = _NDARRAY_DTYPES[dt], None
    elif dt in _DTYPES:
        stored, held = _DTYPES[dt]
    else:
        raise SerializationError(f"[load] tensor '{key}' in {name} has dtype {dt}, which "
                                 "deepcore can't represent")
    arr = np.frombuffer(info["data"], dtype=stored).reshape(info["shape"])
    if dt == "BF16":
        return arr.astype("=u2", copy=False).view(ml_dtypes.bfloat16)
    if as_ndarray:
        return arr.astype(arr.dtype.newbyteorder("="), copy=False)
    return arr.astype(held, copy=False)


class _Decoder:
    def __init__(self, raw: dict, name: str, map_location):
        self.raw = raw
        self.name = name
        self.map_location = map_location
        self.cache: Dict[Any, Any] = {}

    def fail(self, what: str):
        raise SerializationError(f"[load] {self.name} has corrupted deepcore metadata: {what}")

    def tensor(self, key) -> Tensor:
        if not isinstance(key, str) or ("t", key) not in self.cache:
            if not isinstance(key, str) or key not in self.raw:
                self.fail(f"it refers to a tensor {key!r} that the file does not contain")
            arr = _to_array(key, self.raw[key], self.name, as_ndarray=False)
            self.cache[("t", key)] = _map(_C.from_numpy(arr), self.map_location)
        return self.cache[("t", key)]

    def ndarray(self, key) -> np.ndarray:
        if not isinstance(key, str) or ("a", key) not in self.cache:
            if not isinstance(key, str) or key not in self.raw:
                self.fail(f"it refers to an array {key!r} that the file does not contain")
            self.cache[("a", key)] = _to_array(key, self.raw[key], self.name, as_ndarray=True)
        return self.cache[("a", key)]

    def items(self, payload):
        if not isinstance(payload, list) or not all(
                isinstance(p, list) and len(p) == 2 for p in payload):
            self.fail("a $dict entry is not a list of [key, value] pairs")
        return [(self.key(k), self.value(v)) for k, v in payload]

    def key(self, k):
        if isinstance(k, dict):
            if set(k) == {"$tuple"} and isinstance(k["$tuple"], list):
                return tuple(self.key(x) for x in k["$tuple"])
            if set(k) == {"$float"}:
                return self.value(k)
            self.fail(f"unsupported dict key {k!r}")
        if isinstance(k, list):
            self.fail("a dict key is a list")
        return k

    def value(self, v):
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v  # JSON scalars: None, bool, int, float, str
        tags = [k for k in v if k.startswith("$")]
        if not tags:
            return {k: self.value(x) for k, x in v.items()}
        if len(v) != 1:
            self.fail(f"an object mixes the tag {tags[0]!r} with other keys")
        tag, payload = next(iter(v.items()))
        if tag == "$tensor":
            return self.tensor(payload)
        if tag == "$ndarray":
            return self.ndarray(payload)
        if tag == "$tuple" and isinstance(payload, list):
            return tuple(self.value(x) for x in payload)
        if tag == "$dict":
            return dict(self.items(payload))
        if tag == "$odict":
            return collections.OrderedDict(self.items(payload))
        if tag == "$float" and payload in ("nan", "inf", "-inf"):
            return float(payload)
        if tag == "$dtype" and payload in ("bool", "int32", "int64", "float32", "float64"):
            return getattr(_C.dtype, payload)
        self.fail(f"unknown or malformed tag {tag!r}")


def _map(t: Tensor, map_location) -> Tensor:
    if map_location is None:
        return t
    if isinstance(map_location, dict):
        return t  # {"cuda:0": "cpu"}-style remaps: everything deepcore loads is on the CPU
    if callable(map_location):
        out = map_location(t, "cpu")
        return out if isinstance(out, Tensor) else t
    return t.to(str(map_location))  # raises for devices deepcore doesn't have


def load(f: PathOrFile, map_location=None, weights_only=None, mmap=None, **kwargs):
    """Loads what ``save`` wrote, or any safetensors file (as a flat ``{name: Tensor}``).

    Never executes code from the file. A file that is empty, truncated, corrupted or not a
    safetensors file raises ``SerializationError`` naming it. ``map_location``,
    ``weights_only`` and ``mmap`` are accepted for PyTorch compatibility: ``weights_only`` is
    moot (loading is always safe) and tensors always load on the CPU.
    """
    import safetensors

    name = _describe(f)
    data = _read(f)
    header = _parse_header(data, name)
    meta = header.get("__metadata__")
    try:
        raw = dict(safetensors.deserialize(data))
    except Exception as e:  # the package raises its own SafetensorError and friends
        raise SerializationError(f"[load] {name} is not a valid safetensors file: {e}."
                                 f"{_foreign_hint(data)}") from None
    del data
    doc = meta.get(META_KEY) if isinstance(meta, dict) else None
    if doc is None:
        return {key: _map(_C.from_numpy(_to_array(key, info, name, as_ndarray=False)),
                          map_location)
                for key, info in raw.items()}
    try:
        doc = json.loads(doc)
    except (ValueError, RecursionError, TypeError) as e:
        raise SerializationError(f"[load] {name} has corrupted deepcore metadata: {e}") from None
    if not isinstance(doc, dict) or "root" not in doc:
        raise SerializationError(f"[load] {name} has corrupted deepcore metadata: no root")
    version = doc.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SerializationError(f"[load] {name} was written by a newer deepcore (format "
                                 f"version {version!r}; this one reads up to {FORMAT_VERSION})")
    try:
        return _Decoder(raw, name, map_location).value(doc["root"])
    except RecursionError:
        raise SerializationError(f"[load] {name} has corrupted deepcore metadata: nested too "
                                 "deeply") from None
