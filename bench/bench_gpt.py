"""A GPT training step, deepcore vs PyTorch in one run (median times; ratio = the median over
alternating deepcore/torch pairs of deepcore time / torch time, lower is better for deepcore).

    python bench/bench_gpt.py                     # 6 layers, 384 wide, 6 heads, block 256, batch 8
    python bench/bench_gpt.py --quick             # fewer repeats
    python bench/bench_gpt.py --profile           # also deepcore.profiler's table of one step
    PYTHONPATH=build/dev/site python bench/bench_gpt.py   # a dev build (scripts/dev-build.sh)

One step = forward of deepcore.models.GPT (nanoGPT's layout) with the cross-entropy loss,
backward, and AdamW over nanoGPT's decay/no-decay groups; the torch side runs the same network
written with torch.nn (torch.nn.functional.scaled_dot_product_attention) from the same weights.
Both libraries use the same thread count (--threads, default deepcore's). bench_transformer.py
imports ``steps`` and times them with its own paired measurement. The machine may be shared:
compare ratios from the same run only.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from types import SimpleNamespace
from typing import Any, Dict

import numpy as np

DEFAULTS = dict(n_layer=6, n_embd=384, n_head=6, block_size=256, batch_size=8, vocab_size=65,
                repeats=5, warmup=2, threads=None, seed=0, profile=False)


def torch_gpt(cfg):
    """nanoGPT's model.py from torch.nn (the reference of tests/test_gpt.py), dropout off."""
    import torch
    import torch.nn as tnn
    import torch.nn.functional as TF

    class Attention(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = tnn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
            self.c_proj = tnn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(cfg.n_embd, dim=2)
            q, k, v = (t.view(B, T, cfg.n_head, C // cfg.n_head).transpose(1, 2)
                       for t in (q, k, v))
            y = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = tnn.LayerNorm(cfg.n_embd, bias=cfg.bias)
            self.attn = Attention()
            self.ln_2 = tnn.LayerNorm(cfg.n_embd, bias=cfg.bias)
            self.mlp = tnn.Module()
            self.mlp.c_fc = tnn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
            self.mlp.c_proj = tnn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp.c_proj(TF.gelu(self.mlp.c_fc(self.ln_2(x))))

    class GPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = tnn.ModuleDict(dict(
                wte=tnn.Embedding(cfg.vocab_size, cfg.n_embd),
                wpe=tnn.Embedding(cfg.block_size, cfg.n_embd),
                h=tnn.ModuleList([Block() for _ in range(cfg.n_layer)]),
                ln_f=tnn.LayerNorm(cfg.n_embd, bias=cfg.bias)))
            self.lm_head = tnn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight

        def forward(self, idx, targets):
            pos = torch.arange(0, idx.size(1), dtype=torch.long)
            x = self.transformer.wte(idx) + self.transformer.wpe(pos)
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            return logits, TF.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                            ignore_index=-1)

    return GPT()


def steps(a):
    """deepcore and torch step closures over the same weights and the same batch, and the
    deepcore model; ``a`` holds DEFAULTS' keys (``SimpleNamespace(**DEFAULTS)`` for the target)."""
    import torch

    import deepcore as dc
    from deepcore.models import GPT, GPTConfig

    cfg = GPTConfig(block_size=a.block_size, vocab_size=a.vocab_size, n_layer=a.n_layer,
                    n_head=a.n_head, n_embd=a.n_embd, dropout=0.0, bias=True)
    dc.manual_seed(a.seed)
    dmodel = GPT(cfg)
    tmodel = torch_gpt(cfg)
    tmodel.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy())
                            for k, v in dmodel.state_dict().items()})
    rng = np.random.default_rng(a.seed)
    x = rng.integers(0, a.vocab_size, (a.batch_size, a.block_size))
    y = rng.integers(0, a.vocab_size, (a.batch_size, a.block_size))
    dopt = dmodel.configure_optimizers(0.1, 6e-4, (0.9, 0.95))
    params = [p for p in tmodel.parameters()]
    topt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2],
                               "weight_decay": 0.1},
                              {"params": [p for p in params if p.dim() < 2],
                               "weight_decay": 0.0}], lr=6e-4, betas=(0.9, 0.95))

    def step(model, opt, xb, yb):
        def run_once():
            _, loss = model(xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss
        return run_once

    dstep = step(dmodel, dopt, dc.from_numpy(x), dc.from_numpy(y))
    tstep = step(tmodel, topt, torch.from_numpy(x), torch.from_numpy(y))
    return dstep, tstep, dmodel


def _timed(fn) -> tuple:
    """(wall seconds, CPU seconds of the whole process). On a shared machine the CPU time of a
    one-thread run is the steadier figure: it leaves out the time the OS ran other work."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def run(args: Any = None) -> Dict[str, Any]:
    """Times the step; ``args`` is an argparse Namespace, a dict or None (DEFAULTS fill the
    gaps). Returns the medians (seconds), the median pair ratio, the thread count, the first
    losses of both sides (a check that both ran the same step) and, with ``profile``, the
    profiler table of one deepcore step."""
    import torch

    import deepcore as dc

    given = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    a = SimpleNamespace(**{k: given.get(k, v) if given.get(k) is not None else v
                           for k, v in DEFAULTS.items()})
    threads = a.threads or dc.get_num_threads()
    dc.set_num_threads(threads)
    torch.set_num_threads(threads)
    dstep, tstep, dmodel = steps(a)
    losses = (dstep().item(), tstep().item())
    for _ in range(max(a.warmup - 1, 0)):
        dstep()
        tstep()
    td, tt, ratios, cd, ct = [], [], [], [], []
    for _ in range(a.repeats):
        (w, c), (tw, tc) = _timed(dstep), _timed(tstep)
        td.append(w)
        tt.append(tw)
        ratios.append(w / tw)
        cd.append(c)
        ct.append(tc)
    n_params = dmodel.get_num_params(non_embedding=False)
    tokens = a.batch_size * a.block_size
    # 6 N flops per token for the weights, plus attention's QK^T and AV (causal: half used,
    # both computed) forward and backward.
    flops = 6 * n_params * tokens + 12 * a.n_layer * a.block_size * a.n_embd * tokens
    result = dict(deepcore_s=statistics.median(td), torch_s=statistics.median(tt),
                  ratio=statistics.median(ratios), deepcore_cpu_s=statistics.median(cd),
                  torch_cpu_s=statistics.median(ct), threads=threads, n_params=n_params,
                  gflop_per_step=flops / 1e9, first_loss=losses,
                  config={k: getattr(a, k) for k in ("n_layer", "n_embd", "n_head",
                                                      "block_size", "batch_size", "vocab_size")})
    if a.profile:
        from deepcore.profiler import profile
        with profile() as prof:
            dstep()
        result["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total",
                                                      row_limit=15)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--profile", action="store_true")
    for k in ("n_layer", "n_embd", "n_head", "block_size", "batch_size", "vocab_size"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=None)
    args = ap.parse_args()
    if args.quick:
        args.repeats = args.repeats or 3
        args.warmup = 1
    r = run(args)
    c = r["config"]
    print(f"GPT training step: {c['n_layer']} layers, {c['n_embd']} wide, {c['n_head']} heads, "
          f"block {c['block_size']}, batch {c['batch_size']}, vocab {c['vocab_size']} "
          f"({r['n_params']:,} parameters, {r['gflop_per_step']:.1f} GFLOP), AdamW, "
          f"{r['threads']} threads")
    print(f"first loss: deepcore {r['first_loss'][0]:.6f}  torch {r['first_loss'][1]:.6f}")
    for name in ("deepcore", "torch"):
        s, c = r[name + "_s"], r[name + "_cpu_s"]
        print(f"{name:9s} {s * 1e3:9.1f} ms/step  {r['gflop_per_step'] / s:6.1f} GFLOP/s  "
              f"(CPU time {c * 1e3:.1f} ms)")
    print(f"ratio deepcore/torch (median of pairs): {r['ratio']:.2f}x; CPU time ratio "
          f"{r['deepcore_cpu_s'] / r['torch_cpu_s']:.2f}x")
    if math.isfinite(r["ratio"]) and "profile" in r:
        print(r["profile"])


if __name__ == "__main__":
    main()
