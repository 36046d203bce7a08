"""Training progress display: a tqdm bar per epoch, or one line per epoch.

``verbose=0`` prints nothing; ``verbose=2`` prints one line per epoch; ``verbose=1`` draws a
bar (loss, metrics, samples/s) when the stream is a terminal and falls back to the one-line
form otherwise, so logs written to files are not flooded with carriage returns. ``"auto"``
means 1. ``tqdm`` is imported only when a bar is drawn.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Dict, Optional, TextIO

__all__ = ["EpochProgress", "format_logs", "resolve_verbose"]


def resolve_verbose(verbose) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise ValueError(f"[fit] verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _fmt(value: float) -> str:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}"


def format_logs(logs: Dict[str, float]) -> str:
    return " - ".join(f"{k}: {_fmt(v)}" for k, v in logs.items()
                      if isinstance(v, (int, float)))


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class EpochProgress:
    """One epoch's display. ``update(n_batches, n_samples, logs)`` after each batch,
    ``close(logs)`` at the end with the epoch's logs (validation included)."""

    def __init__(self, epoch: int, epochs: int, total_steps: Optional[int], verbose: int,
                 file: Optional[TextIO] = None):
        self.file = file if file is not None else sys.stdout
        self.verbose = verbose
        self.epoch, self.epochs = epoch, epochs
        self.samples = 0
        self.start = time.perf_counter()
        self.bar = None
        if verbose == 1 and _is_tty(self.file):
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total_steps, desc=f"Epoch {epoch + 1}/{epochs}",
                            file=self.file, unit="batch", leave=True, dynamic_ncols=True)

    def update(self, n_samples: int, logs: Dict[str, float]) -> None:
        self.samples += n_samples
        if self.bar is not None:
            self.bar.update(1)
            post = {k: _fmt(v) for k, v in logs.items() if isinstance(v, (int, float))}
            post["samples/s"] = f"{self.samples / max(time.perf_counter() - self.start, 1e-9):.0f}"
            self.bar.set_postfix(post, refresh=False)

    def close(self, logs: Dict[str, float]) -> None:
        elapsed = time.perf_counter() - self.start
        if self.bar is not None:
            self.bar.set_postfix({k: _fmt(v) for k, v in logs.items()
                                  if isinstance(v, (int, float))}, refresh=True)
            self.bar.close()
        elif self.verbose in (1, 2):
            rate = self.samples / max(elapsed, 1e-9)
            line = f"Epoch {self.epoch + 1}/{self.epochs} - {elapsed:.1f}s - {rate:.0f} samples/s"
            text = format_logs(logs)
            print(line + (" - " + text if text else ""), file=self.file, flush=True)
