"""``SummaryWriter``: TensorBoard event files with ``torch.utils.tensorboard``'s method names.

Events are written by the ``tensorboard`` package's own ``EventFileWriter`` (a background
thread appending CRC-framed records), so TensorBoard and ``EventAccumulator`` read them back
as they read PyTorch's. ``tensorboard`` is an optional dependency (``pip install
'deepcore[tensorboard]'``, part of the ``examples`` extra): it is imported when the first writer
is created, never by ``import deepcore``, and a missing package is an ImportError saying what
to install.
"""
from __future__ import annotations

import os
import socket
import time
from datetime import datetime
from typing import Any, Dict, Optional

import numpy as np

__all__ = ["SummaryWriter", "available"]

INSTALL_HINT = ("[SummaryWriter] TensorBoard logging needs the tensorboard package: "
                "pip install 'deepcore[tensorboard]'")


def available() -> bool:
    """Whether the tensorboard package can be imported (without importing it)."""
    import importlib.util
    return importlib.util.find_spec("tensorboard") is not None


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


def _histogram_proto(values: np.ndarray, bins):
    from tensorboard.compat.proto.summary_pb2 import HistogramProto

    values = values.astype(np.float64).ravel()
    if values.size == 0:
        raise ValueError("[SummaryWriter.add_histogram] the histogram of an empty array is "
                         "undefined")
    if not np.all(np.isfinite(values)):
        raise ValueError("[SummaryWriter.add_histogram] values contain NaN or infinity")
    counts, edges = np.histogram(values, bins=bins)
    # TensorBoard's bucket i covers (limit[i-1], limit[i]]: the right edges are the limits.
    return HistogramProto(min=float(values.min()), max=float(values.max()), num=int(values.size),
                          sum=float(values.sum()), sum_squares=float(np.dot(values, values)),
                          bucket_limit=edges[1:].tolist(), bucket=counts.astype(float).tolist())


class SummaryWriter:
    """Writes scalars, histograms and text for TensorBoard into ``log_dir``
    (default ``runs/<date>_<host><comment>``), like ``torch.utils.tensorboard.SummaryWriter``.
    """

    def __init__(self, log_dir: Optional[str] = None, comment: str = "", purge_step=None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = ""):
        try:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError as err:
            raise ImportError(INSTALL_HINT) from err

        self.log_dir = os.fspath(log_dir) if log_dir is not None else _default_log_dir(comment)
        os.makedirs(self.log_dir, exist_ok=True)
        self._max_queue = max_queue
        self._flush_secs = flush_secs
        self._filename_suffix = filename_suffix
        self._writer = EventFileWriter(self.log_dir, max_queue, flush_secs, filename_suffix)
        self._sub_writers: Dict[str, "SummaryWriter"] = {}
        self._closed = False
        if purge_step is not None:
            from tensorboard.compat.proto.event_pb2 import Event, SessionLog
            self._writer.add_event(Event(step=int(purge_step), wall_time=time.time(),
                                         session_log=SessionLog(status=SessionLog.START)))

    def get_logdir(self) -> str:
        return self.log_dir

    def _add_summary(self, summary, global_step, walltime) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        if self._closed:
            raise RuntimeError(f"[SummaryWriter] the writer for '{self.log_dir}' is closed")
        event = Event(summary=summary, wall_time=time.time() if walltime is None else walltime)
        if global_step is not None:
            event.step = int(global_step)
        self._writer.add_event(event)

    def add_scalar(self, tag: str, scalar_value, global_step: Optional[int] = None,
                   walltime: Optional[float] = None, new_style: bool = False,
                   double_precision: bool = False) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        value = Summary.Value(tag=tag, simple_value=_to_float(scalar_value))
        self._add_summary(Summary(value=[value]), global_step, walltime)

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
        from tensorboard.compat.proto.summary_pb2 import Summary

        if isinstance(bins, str):
            # "tensorflow" (PyTorch's default) asks for TensorFlow's exponential buckets;
            # 30 equal-width buckets over the data's range show the same shape.
            bins = 30 if bins == "tensorflow" else bins
        if max_bins is not None and isinstance(bins, int):
            bins = min(bins, max_bins)
        histo = _histogram_proto(_to_numpy(values), bins)
        self._add_summary(Summary(value=[Summary.Value(tag=tag, histo=histo)]), global_step,
                          walltime)

    def add_text(self, tag: str, text_string: str, global_step: Optional[int] = None,
                 walltime: Optional[float] = None) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

        plugin = SummaryMetadata.PluginData(plugin_name="text")
        meta = SummaryMetadata(plugin_data=plugin)
        tensor = TensorProto(dtype="DT_STRING", string_val=[str(text_string).encode("utf-8")],
                             tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
        value = Summary.Value(tag=tag + "/text_summary", metadata=meta, tensor=tensor)
        self._add_summary(Summary(value=[value]), global_step, walltime)

    def flush(self) -> None:
        if self._closed:
            return
        self._writer.flush()
        for writer in self._sub_writers.values():
            writer.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._writer.flush()
        self._writer.close()
        for writer in self._sub_writers.values():
            writer.close()
        self._closed = True

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
