"""deepcore.profiler: where the time goes, op by op, modelled on ``torch.profiler``.

The profiler is a key of the C++ dispatcher (Note [The dispatcher], csrc/dispatch/): while a
``profile()`` block runs, every op call on this thread records its name, input shapes, total and
self time and, for matmul and convolution, its FLOPs. Outside a block no handler runs at all.

    from deepcore.profiler import profile, record_function

    with profile() as prof:
        with record_function("step"):
            loss = model(x).sum()
            loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")   # open in https://ui.perfetto.dev
"""
from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _C

__all__ = ["profile", "record_function", "ProfilerActivity", "FunctionEvent", "EventList"]


class ProfilerActivity:
    """Accepted for torch compatibility; deepcore profiles the CPU (the op calls' wall time)."""

    CPU = "CPU"
    CUDA = "CUDA"


@dataclass
class FunctionEvent:
    """One op call or ``record_function`` range. Times are in microseconds."""

    name: str
    input_shapes: List[Tuple[int, ...]]
    device: str
    start_us: float
    cpu_time_total: float
    self_cpu_time_total: float
    flops: float
    depth: int
    is_user_annotation: bool
    count: int = 1

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / max(self.count, 1)

    @property
    def key(self) -> str:
        return self.name


@dataclass
class FunctionEventAvg:
    """The events of one name (and, when grouped so, one list of input shapes) added up."""

    key: str
    input_shapes: Optional[List[Tuple[int, ...]]] = None
    count: int = 0
    cpu_time_total: float = 0.0
    self_cpu_time_total: float = 0.0
    flops: float = 0.0
    is_user_annotation: bool = False

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / max(self.count, 1)

    @property
    def self_cpu_time(self) -> float:
        return self.self_cpu_time_total / max(self.count, 1)

    def add(self, e: FunctionEvent) -> None:
        self.count += e.count
        self.cpu_time_total += e.cpu_time_total
        self.self_cpu_time_total += e.self_cpu_time_total
        self.flops += e.flops
        self.is_user_annotation = e.is_user_annotation


_SORT_KEYS = {
    "self_cpu_time_total": lambda e: e.self_cpu_time_total,
    "cpu_time_total": lambda e: e.cpu_time_total,
    "cpu_time": lambda e: e.cpu_time,
    "self_cpu_time": lambda e: e.self_cpu_time_total / max(e.count, 1),
    "count": lambda e: e.count,
    "flops": lambda e: e.flops,
}


def _fmt_time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _fmt_flops(flops: float, scale: float) -> str:
    return f"{flops / scale:.3f}" if flops else "--"


class EventList(list):
    """A list of events (or of averages) that prints as torch.profiler's table."""

    def table(self, sort_by: Optional[str] = None, row_limit: int = 100,
              max_name_column_width: int = 55, header: Optional[str] = None,
              top_level_events_only: bool = False) -> str:
        rows = [e for e in self if not (top_level_events_only and getattr(e, "depth", 0))]
        if sort_by is not None:
            if sort_by not in _SORT_KEYS:
                raise ValueError(f"[profiler] sort_by must be one of {sorted(_SORT_KEYS)}, "
                                 f"got {sort_by!r}")
            rows.sort(key=_SORT_KEYS[sort_by], reverse=True)
        total_self = sum(e.self_cpu_time_total for e in self) or 1.0
        shapes = any(getattr(e, "input_shapes", None) for e in rows)
        max_flops = max((e.flops for e in rows), default=0.0)
        scale, unit = ((1e9, "GFLOPs") if max_flops >= 1e9 else (1e6, "MFLOPs"))
        cols = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg",
                "# of Calls"]
        if shapes:
            cols.append("Input Shapes")
        if max_flops:
            cols.append(f"Total {unit}")
        body = []
        for e in rows[:row_limit]:
            name = e.key
            if len(name) > max_name_column_width:
                name = name[:max_name_column_width - 3] + "..."
            row = [name, f"{100 * e.self_cpu_time_total / total_self:.2f}%",
                   _fmt_time(e.self_cpu_time_total),
                   f"{100 * e.cpu_time_total / total_self:.2f}%", _fmt_time(e.cpu_time_total),
                   _fmt_time(e.cpu_time), str(e.count)]
            if shapes:
                row.append(str([list(s) for s in (e.input_shapes or [])]))
            if max_flops:
                row.append(_fmt_flops(e.flops, scale))
            body.append(row)
        widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(cols)]
        rule = "  ".join("-" * w for w in widths)

        def line(cells):
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths)))
        out = ([header] if header else []) + [rule, line(cols), rule]
        out += [line(r) for r in body]
        out += [rule, f"Self CPU time total: {_fmt_time(total_self)}"]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    @property
    def self_cpu_time_total(self) -> float:
        return sum(e.self_cpu_time_total for e in self)

    def total_average(self) -> FunctionEventAvg:
        avg = FunctionEventAvg(key="Total")
        for e in self:
            avg.add(e)
        return avg


class profile:
    """Records the op calls of this thread while the block runs.

    Arguments follow ``torch.profiler.profile``; shapes and FLOPs are always recorded (the cost
    is a few tuples per call while profiling, nothing otherwise): ``record_shapes``,
    ``with_flops`` and the rest are accepted for compatibility. ``key_averages``'s
    ``group_by_input_shape`` chooses the grouping; the table shows FLOPs when any were counted.
    """

    def __init__(self, activities: Optional[List[str]] = None, *, record_shapes: bool = False,
                 with_flops: bool = False, profile_memory: bool = False, with_stack: bool = False,
                 schedule: Optional[Callable[[int], Any]] = None,
                 on_trace_ready: Optional[Callable[["profile"], Any]] = None,
                 use_cuda: bool = False) -> None:
        del record_shapes, with_flops, profile_memory, with_stack, schedule, use_cuda
        for a in activities or []:
            if a not in (ProfilerActivity.CPU, ProfilerActivity.CUDA):
                raise ValueError(f"[profiler] unknown activity {a!r}")
        self.on_trace_ready = on_trace_ready
        self._events: Optional[EventList] = None
        self._running = False
        self._tid = threading.get_ident()

    def __enter__(self) -> "profile":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        _C._profiler_start(True)
        self._running = True
        self._tid = threading.get_ident()

    def stop(self) -> None:
        if not self._running:
            return
        raw = _C._profiler_stop()
        self._running = False
        self._events = EventList(
            FunctionEvent(name=r[0], input_shapes=[tuple(s) for s in r[1]], device=r[2],
                          start_us=r[3] / 1e3, cpu_time_total=r[4] / 1e3,
                          self_cpu_time_total=r[5] / 1e3, flops=r[6], depth=r[7],
                          is_user_annotation=r[8])
            for r in raw)
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def step(self) -> None:
        """Marks a step boundary (kept for torch compatibility; every step is recorded)."""

    def events(self) -> EventList:
        if self._events is None:
            raise RuntimeError("[profiler] no events yet: the profile block has not finished")
        return self._events

    def key_averages(self, group_by_input_shape: bool = False) -> EventList:
        """One row per op name (and per list of input shapes when grouped so)."""
        groups: Dict[Any, FunctionEventAvg] = {}
        for e in self.events():
            shapes = tuple(e.input_shapes) if group_by_input_shape else None
            k = (e.name, shapes)
            if k not in groups:
                groups[k] = FunctionEventAvg(key=e.name,
                                             input_shapes=list(shapes) if shapes else None)
            groups[k].add(e)
        return EventList(groups.values())

    def export_chrome_trace(self, path: str) -> None:
        """Writes the events as Chrome trace JSON ("X" complete events), which Perfetto and
        chrome://tracing open."""
        pid = os.getpid()
        trace = []
        for e in self.events():
            args: Dict[str, Any] = {}
            if e.input_shapes:
                args["Input Shapes"] = [list(s) for s in e.input_shapes]
            if e.flops:
                args["FLOPs"] = e.flops
            args["Device"] = e.device
            trace.append({"name": e.name, "ph": "X", "cat":
                          "user_annotation" if e.is_user_annotation else "cpu_op",
                          "ts": e.start_us, "dur": e.cpu_time_total, "pid": pid,
                          "tid": self._tid, "args": args})
        trace.sort(key=lambda ev: ev["ts"])
        tmp = f"{path}.tmp{pid}"
        with open(tmp, "w") as f:
            json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, f)
        os.replace(tmp, path)


class record_function:
    """A named range in the profile: the ops inside nest under it. A context manager and a
    decorator, as in torch."""

    def __init__(self, name: str) -> None:
        self.name = str(name)
        self._handle: Optional[int] = None

    def __enter__(self) -> "record_function":
        self._handle = _C._record_function_enter(self.name)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            _C._record_function_exit(handle)

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with record_function(self.name):
                return fn(*args, **kwargs)
        return wrapper
