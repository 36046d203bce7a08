"""``SummaryWriter``: TensorBoard event files with ``torch.utils.tensorboard``'s method names.

Note [Event files without the tensorboard package]
An event file is a sequence of TFRecords (length, CRC, payload, CRC) whose payloads are
``Event`` protocol buffers. deepcore writes the few messages it needs (Event, Summary,
HistogramProto, a string TensorProto, SessionLog) with the protobuf wire format by hand,
so logging needs neither ``tensorboard`` (~50 MB with grpcio, pillow, werkzeug) nor
``protobuf``; tests read the files back with TensorBoard's own ``EventAccumulator``. The
field numbers are those of tensorboard/compat/proto/{event,summary,tensor,tensor_shape}.proto,
which cannot change without breaking every event file already written.
"""
from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from datetime import datetime
from typing import Any, Dict, Optional

import numpy as np

__all__ = ["SummaryWriter"]


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return np.asarray(value.detach().numpy())
    return np.asarray(value)


def _to_float(value: Any) -> float:
    arr = _to_numpy(value)
    if arr.size != 1:
        raise ValueError(f"[SummaryWriter.add_scalar] expected a single value, got an array of "
                         f"shape {arr.shape}")
    return float(arr.reshape(()))


def _default_log_dir(comment: str) -> str:
    stamp = datetime.now().strftime("%b%d_%H-%M-%S")
    return os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")


# ---- protobuf wire format: the fields a summary needs ---------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 values are ten-byte two's complement
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _int(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n)


def _double(field: int, x: float) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<d", x)


def _float(field: int, x: float) -> bytes:
    return _varint(field << 3 | 5) + struct.pack("<f", x)


def _bytes(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _doubles(field: int, xs) -> bytes:  # packed repeated double
    return _bytes(field, np.asarray(xs, dtype="<f8").tobytes())


def _event(wall_time: float, step: Optional[int] = None, *, file_version: str = "",
           summary: bytes = b"", session_start: bool = False) -> bytes:
    # Event: wall_time = 1, step = 2, file_version = 3, summary = 5, session_log = 7
    out = _double(1, wall_time)
    if step is not None:
        out += _int(2, step)
    if file_version:
        out += _bytes(3, file_version.encode())
    if summary:
        out += _bytes(5, summary)
    if session_start:
        out += _bytes(7, _int(1, 1))  # SessionLog.status = START
    return out


def _summary_value(tag: str, **value: bytes) -> bytes:
    # Summary { repeated Value value = 1 }; Value: tag = 1, simple_value = 2, histo = 5,
    # tensor = 8, metadata = 9
    return _bytes(1, _bytes(1, tag.encode()) + b"".join(value.values()))


# CRC-32C (Castagnoli), masked as TFRecord frames want it.
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def _masked_crc32c(data: bytes) -> int:
    crc, table = 0xFFFFFFFF, _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return (header + struct.pack("<I", _masked_crc32c(header)) + data +
            struct.pack("<I", _masked_crc32c(data)))


_file_ids = itertools.count()


class _EventFile:
    """Appends framed events to ``log_dir/events.out.tfevents.<time>.<host>.<pid>.<n>``;
    writes reach the disk every ``max_queue`` events, after ``flush_secs``, and on flush."""

    def __init__(self, log_dir: str, max_queue: int, flush_secs: float, filename_suffix: str):
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_file_ids)}{filename_suffix}")
        self._file = open(os.path.join(log_dir, name), "wb")
        self._max_queue, self._flush_secs = max(1, max_queue), flush_secs
        self._pending, self._last_flush = 0, time.monotonic()
        self.add_event(_event(time.time(), file_version="brain.Event:2"))

    def add_event(self, event: bytes) -> None:
        self._file.write(_record(event))
        self._pending += 1
        if (self._pending >= self._max_queue or
                time.monotonic() - self._last_flush >= self._flush_secs):
            self.flush()

    def flush(self) -> None:
        self._file.flush()
        self._pending, self._last_flush = 0, time.monotonic()

    def close(self) -> None:
        self._file.close()


def _histogram_proto(values: np.ndarray, bins) -> bytes:
    values = values.astype(np.float64).ravel()
    if values.size == 0:
        raise ValueError("[SummaryWriter.add_histogram] the histogram of an empty array is "
                         "undefined")
    if not np.all(np.isfinite(values)):
        raise ValueError("[SummaryWriter.add_histogram] values contain NaN or infinity")
    counts, edges = np.histogram(values, bins=bins)
    # HistogramProto: min = 1, max = 2, num = 3, sum = 4, sum_squares = 5, bucket_limit = 6,
    # bucket = 7. TensorBoard's bucket i covers (limit[i-1], limit[i]]: the right edges are the
    # limits.
    return (_double(1, float(values.min())) + _double(2, float(values.max())) +
            _double(3, float(values.size)) + _double(4, float(values.sum())) +
            _double(5, float(np.dot(values, values))) + _doubles(6, edges[1:]) +
            _doubles(7, counts.astype(np.float64)))


class SummaryWriter:
    """Writes scalars, histograms and text for TensorBoard into ``log_dir``
    (default ``runs/<date>_<host><comment>``), like ``torch.utils.tensorboard.SummaryWriter``.
    """

    def __init__(self, log_dir: Optional[str] = None, comment: str = "", purge_step=None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = ""):
        self.log_dir = os.fspath(log_dir) if log_dir is not None else _default_log_dir(comment)
        os.makedirs(self.log_dir, exist_ok=True)
        self._max_queue = max_queue
        self._flush_secs = flush_secs
        self._filename_suffix = filename_suffix
        self._writer = _EventFile(self.log_dir, max_queue, flush_secs, filename_suffix)
        self._sub_writers: Dict[str, "SummaryWriter"] = {}
        self._closed = False
        if purge_step is not None:
            self._writer.add_event(_event(time.time(), int(purge_step), session_start=True))

    def get_logdir(self) -> str:
        return self.log_dir

    def _add_summary(self, summary: bytes, global_step, walltime) -> None:
        if self._closed:
            raise RuntimeError(f"[SummaryWriter] the writer for '{self.log_dir}' is closed")
        wall_time = time.time() if walltime is None else walltime
        step = None if global_step is None else int(global_step)
        self._writer.add_event(_event(wall_time, step, summary=summary))

    def add_scalar(self, tag: str, scalar_value, global_step: Optional[int] = None,
                   walltime: Optional[float] = None, new_style: bool = False,
                   double_precision: bool = False) -> None:
        value = _summary_value(tag, simple_value=_float(2, _to_float(scalar_value)))
        self._add_summary(value, global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: Dict[str, Any],
                    global_step: Optional[int] = None, walltime: Optional[float] = None) -> None:
        """One run per key, in ``log_dir/<main_tag>_<key>``, each holding the scalar
        ``main_tag`` -- PyTorch's layout, so TensorBoard draws them on one chart."""
        walltime = time.time() if walltime is None else walltime
        for key, value in tag_scalar_dict.items():
            sub_dir = os.path.join(self.log_dir, f"{main_tag}_{key}".replace("/", "_"))
            writer = self._sub_writers.get(sub_dir)
            if writer is None:
                writer = SummaryWriter(sub_dir, max_queue=self._max_queue,
                                       flush_secs=self._flush_secs,
                                       filename_suffix=self._filename_suffix)
                self._sub_writers[sub_dir] = writer
            writer.add_scalar(main_tag, value, global_step, walltime)

    def add_histogram(self, tag: str, values, global_step: Optional[int] = None,
                      bins="tensorflow", walltime: Optional[float] = None,
                      max_bins: Optional[int] = None) -> None:
        if isinstance(bins, str):
            # "tensorflow" (PyTorch's default) asks for TensorFlow's exponential buckets;
            # 30 equal-width buckets over the data's range show the same shape.
            bins = 30 if bins == "tensorflow" else bins
        if max_bins is not None and isinstance(bins, int):
            bins = min(bins, max_bins)
        histo = _histogram_proto(_to_numpy(values), bins)
        self._add_summary(_summary_value(tag, histo=_bytes(5, histo)), global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step: Optional[int] = None,
                 walltime: Optional[float] = None) -> None:
        # SummaryMetadata.plugin_data = 1 { plugin_name = 1 }; TensorProto: dtype = 1
        # (DT_STRING = 7), tensor_shape = 2 { dim = 2 { size = 1 } }, string_val = 8
        meta = _bytes(1, _bytes(1, b"text"))
        tensor = (_int(1, 7) + _bytes(2, _bytes(2, _int(1, 1))) +
                  _bytes(8, str(text_string).encode("utf-8")))
        value = _summary_value(tag + "/text_summary", tensor=_bytes(8, tensor),
                               metadata=_bytes(9, meta))
        self._add_summary(value, global_step, walltime)

    def flush(self) -> None:
        if self._closed:
            return
        self._writer.flush()
        for writer in self._sub_writers.values():
            writer.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._writer.close()
        for writer in self._sub_writers.values():
            writer.close()
        self._closed = True

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
