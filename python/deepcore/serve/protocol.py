"""The KServe v2 / Open Inference Protocol JSON messages: datatypes, request decoding and
validation, response encoding.

A request body::

    {"id": "42", "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                             "data": [1, 2, 3, 4, 5, 6, 7, 8]}],
     "outputs": [{"name": "output"}]}                # optional: which outputs to return

``data`` is row-major, flat or nested to match ``shape``; dimension 0 is the batch. Each input
must match the model's declared datatype exactly and its shape wherever the model's shape is
not -1. Everything wrong with a request is a ``RequestError`` carrying the HTTP status.
"""
from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._model_files import TensorSpec

__all__ = ["RequestError", "DATATYPES", "datatype_of", "decode_request", "encode_response",
           "tensor_metadata"]

# Protocol datatype <-> NumPy dtype name, for the dtypes deepcore tensors hold.
DATATYPES = {"BOOL": "bool", "INT32": "int32", "INT64": "int64", "FP32": "float32",
             "FP64": "float64"}
_BY_DTYPE = {v: k for k, v in DATATYPES.items()}
# Protocol datatypes that exist but that no deepcore model takes.
_OTHER_DATATYPES = ("UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "FP16", "BF16",
                    "BYTES")
_INT_RANGE = {"int32": (-2 ** 31, 2 ** 31 - 1), "int64": (-2 ** 63, 2 ** 63 - 1)}


class RequestError(ValueError):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def datatype_of(dtype) -> str:
    """The protocol datatype of a NumPy dtype (name or object) deepcore tensors can hold."""
    name = np.dtype(dtype).name
    if name not in _BY_DTYPE:
        raise ValueError(f"[serve] no protocol datatype for NumPy dtype {name}")
    return _BY_DTYPE[name]


def tensor_metadata(spec: TensorSpec) -> Dict[str, Any]:
    """``{"name", "datatype", "shape"}`` with the batch dimension first (-1 when any)."""
    return {"name": spec.name, "datatype": datatype_of(spec.dtype),
            "shape": [spec.batch] + list(spec.shape)}


def _shape_str(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _array(entry: Dict[str, Any], spec: TensorSpec, shape: Tuple[int, ...]) -> np.ndarray:
    where = f"input '{spec.name}'"
    data = entry.get("data")
    if not isinstance(data, list):
        raise RequestError(f"{where}: 'data' must be a (flat or nested) JSON array, got "
                           f"{type(data).__name__}")
    try:
        arr = np.array(data)
    except (ValueError, TypeError, OverflowError) as e:
        raise RequestError(f"{where}: 'data' is not a rectangular array of numbers ({e})")
    size = math.prod(shape)
    if arr.size != size:
        raise RequestError(f"{where}: 'data' holds {arr.size} values but shape "
                           f"{_shape_str(shape)} needs {size}")
    if arr.ndim > 1 and arr.shape != shape:
        raise RequestError(f"{where}: nested 'data' has shape {_shape_str(arr.shape)}, but "
                           f"'shape' says {_shape_str(shape)}")
    kind = arr.dtype.kind
    want = spec.dtype
    if size:
        if kind not in "biuf":
            raise RequestError(f"{where}: 'data' must hold only numbers"
                               + (" or booleans" if want == "bool" else "")
                               + f" (found {arr.dtype.name} values)")
        if want == "bool" and kind != "b":
            raise RequestError(f"{where}: datatype BOOL needs true/false values")
        if want in _INT_RANGE:
            if kind not in "iu":
                raise RequestError(f"{where}: datatype {datatype_of(want)} needs integer "
                                   "values")
            lo, hi = _INT_RANGE[want]
            if int(arr.min()) < lo or int(arr.max()) > hi:
                raise RequestError(f"{where}: values out of the {datatype_of(want)} range "
                                   f"[{lo}, {hi}]")
        if want.startswith("float") and kind == "b":
            raise RequestError(f"{where}: datatype {datatype_of(want)} needs numbers, not "
                               "booleans")
    return np.ascontiguousarray(arr.astype(want, copy=False).reshape(shape))


def _shape(entry: Dict[str, Any], spec: TensorSpec) -> Tuple[int, ...]:
    where = f"input '{spec.name}'"
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise RequestError(f"{where}: 'shape' must be a list of non-negative integers, got "
                           f"{shape!r}")
    expected = [spec.batch] + list(spec.shape)
    if len(shape) != len(expected) or shape[0] < 1 or any(
            e != -1 and d != e for d, e in zip(shape, expected)):
        raise RequestError(f"{where}: shape {_shape_str(shape)} does not match the model's "
                           f"{_shape_str(expected)} (-1: any size >= 1; dimension 0 is the "
                           "batch)")
    if any(d == 0 for d, e in zip(shape[1:], expected[1:]) if e == -1):
        raise RequestError(f"{where}: shape {_shape_str(shape)} has an empty dimension")
    return tuple(shape)


def decode_request(body: bytes, inputs: Sequence[TensorSpec],
                   outputs: Sequence[TensorSpec]) -> Tuple[List[np.ndarray], Optional[Any],
                                                           List[int]]:
    """(one array per model input, in the model's order; the request id or None; indices of
    the outputs to return)."""
    try:
        req = json.loads(body)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, deep nesting
        raise RequestError(f"malformed JSON body: {e}") from None
    if not isinstance(req, dict):
        raise RequestError(f"the body must be a JSON object, got {type(req).__name__}")
    entries = req.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise RequestError("the body needs 'inputs': a non-empty list of "
                           "{name, shape, datatype, data}")
    by_name: Dict[str, Dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise RequestError("each entry of 'inputs' must be an object with a string 'name'")
        if entry["name"] in by_name:
            raise RequestError(f"input '{entry['name']}' is given twice")
        by_name[entry["name"]] = entry
    names = [s.name for s in inputs]
    unknown = sorted(set(by_name) - set(names))
    missing = [n for n in names if n not in by_name]
    if unknown or missing:
        raise RequestError(f"the model takes inputs {names}; "
                           + (f"unknown: {unknown}" if unknown else "")
                           + ("; " if unknown and missing else "")
                           + (f"missing: {missing}" if missing else ""))
    arrays, rows = [], None
    for spec in inputs:
        entry = by_name[spec.name]
        datatype = entry.get("datatype")
        want = datatype_of(spec.dtype)
        if datatype != want:
            known = datatype in DATATYPES or datatype in _OTHER_DATATYPES
            raise RequestError(f"input '{spec.name}': datatype {datatype!r} "
                               + ("" if known else "is not a protocol datatype; ")
                               + f"expected {want}")
        shape = _shape(entry, spec)
        if rows is not None and shape[0] != rows:
            raise RequestError(f"input '{spec.name}' has batch size {shape[0]} but input "
                               f"'{inputs[0].name}' has {rows}: they must agree")
        rows = shape[0]
        arrays.append(_array(entry, spec, shape))
    wanted = list(range(len(outputs)))
    if req.get("outputs") is not None:
        req_out = req["outputs"]
        out_names = [s.name for s in outputs]
        if not isinstance(req_out, list) or not all(
                isinstance(o, dict) and isinstance(o.get("name"), str) for o in req_out):
            raise RequestError("'outputs' must be a list of objects with a string 'name'")
        bad = [o["name"] for o in req_out if o["name"] not in out_names]
        if bad:
            raise RequestError(f"unknown output(s) {bad}; the model has {out_names}")
        wanted = [out_names.index(o["name"]) for o in req_out]
    request_id = req.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError(f"'id' must be a string, got {type(request_id).__name__}")
    return arrays, request_id, wanted


def encode_response(model_name: str, request_id, outputs: Sequence[TensorSpec],
                    arrays: Sequence[np.ndarray], wanted: Sequence[int]) -> bytes:
    """The JSON response body. Non-finite floats are written as NaN / Infinity / -Infinity
    (what Python's json reads; strict JSON has no spelling for them)."""
    out = []
    for i in wanted:
        a = arrays[i]
        out.append({"name": outputs[i].name, "datatype": datatype_of(a.dtype),
                    "shape": list(a.shape), "data": a.ravel().tolist()})
    doc: Dict[str, Any] = {"model_name": model_name, "outputs": out}
    if request_id is not None:
        doc["id"] = request_id
    return json.dumps(doc, separators=(",", ":")).encode()
