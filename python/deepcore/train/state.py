"""Random-number state and training checkpoints.

Note [Bit-exact resume]
A resumed run must produce the weights an uninterrupted run would, bit for bit. Everything
that decides the next update is saved in one ``dc.save`` file (safetensors + JSON metadata):
the model's state dict, the optimizer's and scheduler's state dicts, the epoch and the number
of batches done in it, every random stream (deepcore's global Philox generator, Python's
``random``, NumPy's global ``RandomState``, and any ``deepcore.Generator`` a DataLoader or
its sampler owns), and the data order.

The data order of an epoch is fixed when the epoch's iterator is created: shuffling draws
from the random streams at that moment. So the checkpoint stores the streams as they were
just before that moment ("epoch_rng") next to the streams after the last completed step
("rng"). Resuming mid-epoch recreates the iterator under "epoch_rng" (the same permutation),
skips the batches already done, then restores "rng" so dropout and friends continue where
they stopped. At an epoch boundary "epoch_rng" is not needed.
"""
from __future__ import annotations

import os
import random
from typing import Any, Dict, List

import numpy as np

from .. import _C
from ..utils._generator import Generator

FORMAT = "deepcore.training_state"
VERSION = 1


def capture_rng(generators: List[Generator] = ()) -> Dict[str, Any]:
    return {
        "deepcore": [int(v) for v in _C._rng_state()],
        "python": random.getstate(),
        "numpy": np.random.get_state(legacy=False),
        "generators": [g.get_state() for g in generators],
    }


def restore_rng(state: Dict[str, Any], generators: List[Generator] = ()) -> None:
    seed, offset = state["deepcore"]
    _C._set_rng_state(int(seed), int(offset))
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    np_state = dict(state["numpy"])
    np_state["state"] = dict(np_state["state"])
    np_state["state"]["key"] = np.asarray(np_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(np_state)
    saved = state.get("generators", [])
    if len(saved) != len(generators):
        raise ValueError(f"[resume] the checkpoint holds {len(saved)} data generator states "
                         f"but the data pipeline has {len(generators)} deepcore.Generator(s)")
    for g, s in zip(generators, saved):
        g.set_state(s)


def save_state(path: str, state: Dict[str, Any]) -> None:
    """Writes ``state`` atomically (``dc.save``): a crash or Ctrl-C while writing leaves the
    previous checkpoint intact."""
    from ..serialization import save

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    save({"format": FORMAT, "version": VERSION, **state}, path)


def load_state(path: str) -> Dict[str, Any]:
    from ..serialization import load

    if not os.path.exists(path):
        raise FileNotFoundError(f"[resume] no training checkpoint at '{path}'")
    state = load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"[resume] '{path}' is not a training checkpoint (written by fit with "
                         f"checkpoint=...); found {type(state).__name__}"
                         + (f" with format {state.get('format')!r}"
                            if isinstance(state, dict) else ""))
    if state.get("version", 0) > VERSION:
        raise ValueError(f"[resume] '{path}' was written by a newer deepcore (training state "
                         f"version {state.get('version')})")
    return state
