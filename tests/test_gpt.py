"""deepcore.models.GPT against a nanoGPT-style reference written here with torch.nn: the same
state_dict keys, logits and gradients from the same weights, and golden losses over 50 AdamW
steps (float64 to 1e-9, float32 to 1e-4 then 2%); weight tying through a checkpoint; greedy
decoding token for token; and the character-level `deepcore train --model gpt` /
`deepcore generate` command line end to end."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import deepcore as dc
from deepcore.models import GPT, GPTConfig

needs_multinomial = pytest.mark.skipif(not hasattr(dc, "multinomial"),
                                       reason="deepcore.multinomial is not in this build")

SMALL = dict(block_size=16, vocab_size=20, n_layer=2, n_head=2, n_embd=32)


# ---- the reference: nanoGPT's model.py, from torch.nn ------------------------------------------

class RefAttention(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_attn = tnn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = tnn.Linear(c.n_embd, c.n_embd, bias=c.bias)
        self.resid_dropout = tnn.Dropout(c.dropout)
        self.n_head, self.n_embd, self.dropout = c.n_head, c.n_embd, c.dropout

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = TF.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training
                                            else 0.0, is_causal=True)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


class RefMLP(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = tnn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.gelu = tnn.GELU()
        self.c_proj = tnn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)
        self.dropout = tnn.Dropout(c.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class RefBlock(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = tnn.LayerNorm(c.n_embd, bias=c.bias)
        self.attn = RefAttention(c)
        self.ln_2 = tnn.LayerNorm(c.n_embd, bias=c.bias)
        self.mlp = RefMLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class RefGPT(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.transformer = tnn.ModuleDict(dict(
            wte=tnn.Embedding(c.vocab_size, c.n_embd), wpe=tnn.Embedding(c.block_size, c.n_embd),
            drop=tnn.Dropout(c.dropout), h=tnn.ModuleList([RefBlock(c) for _ in range(c.n_layer)]),
            ln_f=tnn.LayerNorm(c.n_embd, bias=c.bias)))
        self.lm_head = tnn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                tnn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(m):
        if isinstance(m, tnn.Linear):
            tnn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                tnn.init.zeros_(m.bias)
        elif isinstance(m, tnn.Embedding):
            tnn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        _, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is not None:
            logits = self.lm_head(x)
            return logits, TF.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                            ignore_index=-1)
        return self.lm_head(x[:, [-1], :]), None

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)


# ---- helpers ----------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny matmuls on a shared machine: one thread each keeps both libraries fast and steady
    # (conftest restores deepcore's thread count afterwards).
    torch_threads = torch.get_num_threads()
    dc.set_num_threads(1)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(torch_threads)


def make_pair(dtype=torch.float64, seed=0, **overrides):
    """A torch reference and a deepcore GPT holding the same (torch-initialised) weights."""
    cfg = GPTConfig(**{**SMALL, "dropout": 0.0, "bias": True, **overrides})
    torch.manual_seed(seed)
    ref = RefGPT(cfg).to(dtype)
    model = GPT(cfg).to(dc.float64 if dtype == torch.float64 else dc.float32)
    model.load_state_dict({k: v.detach().numpy().copy() for k, v in ref.state_dict().items()})
    return ref, model


def tokens(rng, shape, vocab=SMALL["vocab_size"]):
    a = rng.integers(0, vocab, shape)
    return torch.from_numpy(a), dc.from_numpy(a)


def max_rel(a, b) -> float:
    a = np.asarray(a.detach().numpy() if hasattr(a, "detach") else a, dtype=np.float64)
    b = np.asarray(b.detach().numpy() if hasattr(b, "detach") else b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


# ---- structure ----------------------------------------------------------------------------------

def test_state_dict_keys_and_shapes_match_nanogpt():
    ref, model = make_pair()
    tsd, dsd = ref.state_dict(), model.state_dict()
    assert list(dsd) == list(tsd)
    for k in tsd:
        assert tuple(dsd[k].shape) == tuple(tsd[k].shape), k
    assert len(list(model.parameters())) == len(list(ref.parameters()))
    assert model.get_num_params() == sum(p.numel() for p in ref.parameters()) - 16 * 32


def test_weight_tying_is_one_parameter_and_gets_both_gradients():
    ref, model = make_pair()
    assert model.lm_head.weight is model.transformer.wte.weight
    ids = [id(p) for p in model.parameters()]
    assert len(ids) == len(set(ids)) and id(model.lm_head.weight) in ids
    rng = np.random.default_rng(1)
    (tx, dx), (ty, dy) = tokens(rng, (4, 16)), tokens(rng, (4, 16))
    ref(tx, ty)[1].backward()
    model(dx, dy)[1].backward()
    # The embedding lookup and the output projection both contribute to the one gradient.
    assert max_rel(model.lm_head.weight.grad, ref.lm_head.weight.grad) < 1e-12


def test_checkpoint_round_trip_keeps_the_tie(tmp_path):
    _, model = make_pair(dtype=torch.float32)
    path = str(tmp_path / "gpt.safetensors")
    dc.save(model.state_dict(), path)
    loaded = dc.load(path)
    assert set(loaded) == set(model.state_dict())
    import safetensors.numpy
    assert len(safetensors.numpy.load_file(path)) == len(loaded) - 1  # the tied tensor once
    fresh = GPT(model.config)
    fresh.load_state_dict(loaded)
    assert fresh.lm_head.weight is fresh.transformer.wte.weight
    idx = dc.from_numpy(np.random.default_rng(2).integers(0, 20, (2, 16)))
    assert max_rel(fresh(idx)[0], model(idx)[0]) == 0.0
    # Still tied after an optimizer step: the one Parameter moved.
    opt = fresh.configure_optimizers(0.1, 1e-2, (0.9, 0.95))
    fresh(idx, idx)[1].backward()
    opt.step()
    assert fresh.lm_head.weight is fresh.transformer.wte.weight
    assert max_rel(fresh.lm_head.weight, model.lm_head.weight) > 0


def test_crop_block_size():
    ref, model = make_pair()
    model.crop_block_size(8)
    assert tuple(model.transformer.wpe.weight.shape) == (8, 32)
    idx = np.random.default_rng(8).integers(0, 20, (2, 8))
    assert max_rel(model(dc.from_numpy(idx))[0], ref(torch.from_numpy(idx))[0]) < 1e-12
    with pytest.raises(ValueError, match=r"models\.GPT.*length 9.*block size is only 8"):
        model(dc.zeros(1, 9, dtype=dc.int64))


def test_gpt2_initialisation():
    cfg = GPTConfig(block_size=64, vocab_size=512, n_layer=4, n_head=4, n_embd=128)
    dc.manual_seed(0)
    model = GPT(cfg)
    for name, p in model.named_parameters():
        a = p.detach().numpy()
        if name.endswith("bias"):
            assert not a.any(), name
        elif ".ln_" in name or name.startswith("transformer.ln_f"):
            assert (a == 1).all(), name
        else:
            std = 0.02 / math.sqrt(8) if name.endswith("c_proj.weight") else 0.02
            assert abs(a.std() / std - 1) < 0.05 and abs(a.mean()) < 0.1 * std, name


def test_configure_optimizers_groups():
    _, model = make_pair()
    opt = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert decay["lr"] == 6e-4 and tuple(decay["betas"]) == (0.9, 0.95)


def test_bad_input_raises_typed_errors():
    _, model = make_pair()
    with pytest.raises(ValueError, match=r"models\.GPT.*length 17.*block size is only 16"):
        model(dc.zeros(1, 17, dtype=dc.int64))
    with pytest.raises(ValueError, match=r"models\.GPT.*\(batch, time\) integer"):
        model(dc.zeros(16, dtype=dc.int64))
    with pytest.raises(TypeError, match=r"models\.GPT"):
        model([[1, 2]])
    with pytest.raises(ValueError, match=r"models\.GPT.*targets.*\(1, 2\)"):
        model(dc.zeros(1, 2, dtype=dc.int64), dc.zeros(1, 3, dtype=dc.int64))
    with pytest.raises(IndexError, match=r"GPT\.transformer\.wte.*index 25"):
        model(dc.tensor([[1, 25]]))
    with pytest.raises(ValueError, match=r"GPTConfig.*multiple of n_head"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match=r"GPTConfig.*n_layer"):
        GPTConfig(n_layer=0)


# ---- numerics against torch -------------------------------------------------------------------

@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_forward_logits_and_gradients_match_torch(dtype, tol):
    ref, model = make_pair(dtype=dtype, bias=dtype == torch.float64)
    rng = np.random.default_rng(3)
    (tx, dx), (ty, dy) = tokens(rng, (3, 16)), tokens(rng, (3, 16))
    ty[0, :4] = -1  # ignored targets
    dy = dc.from_numpy(ty.numpy())
    tlogits, tloss = ref(tx, ty)
    dlogits, dloss = model(dx, dy)
    assert max_rel(dlogits, tlogits) < tol
    assert abs(dloss.item() - tloss.item()) < tol * abs(tloss.item())
    tloss.backward()
    dloss.backward()
    dparams = dict(model.named_parameters())
    for name, p in ref.named_parameters():
        assert max_rel(dparams[name].grad, p.grad) < 100 * tol, name
    # Without targets: the last position only, as nanoGPT's inference path.
    tlast, dlast = ref(tx[:, :9])[0], model(dx[:, :9])[0]
    assert tuple(dlast.shape) == (3, 1, 20)
    assert max_rel(dlast, tlast) < tol


def golden_losses(dtype, steps=50):
    ref, model = make_pair(dtype=dtype)
    topt = ref.configure_optimizers(0.1, 1e-3, (0.9, 0.95))
    dopt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95))
    rng = np.random.default_rng(4)
    # Learnable data: each target is a fixed function of its token, so the loss falls.
    perm = rng.permutation(20)
    out = []
    for _ in range(steps):
        x = rng.integers(0, 20, (4, 16))
        y = perm[x]
        _, tl = ref(torch.from_numpy(x), torch.from_numpy(y))
        topt.zero_grad()
        tl.backward()
        topt.step()
        _, dl = model(dc.from_numpy(x), dc.from_numpy(y))
        dopt.zero_grad()
        dl.backward()
        dopt.step()
        out.append((dl.item(), tl.item()))
    return np.array(out)


def test_golden_losses_float64():
    losses = golden_losses(torch.float64)
    rel = np.abs(losses[:, 0] - losses[:, 1]) / np.abs(losses[:, 1])
    assert rel.max() < 1e-9, rel
    assert losses[-1, 1] < 0.9 * losses[0, 1]  # it learned something: a real trajectory


def test_golden_losses_float32():
    losses = golden_losses(torch.float32)
    rel = np.abs(losses[:, 0] - losses[:, 1]) / np.abs(losses[:, 1])
    assert rel[:10].max() < 1e-4, rel[:10]
    assert rel.max() < 0.02, rel


def test_dropout_only_in_training():
    _, model = make_pair(dropout=0.5)
    idx = dc.from_numpy(np.random.default_rng(5).integers(0, 20, (2, 16)))
    model.eval()
    a, b = model(idx, idx)[0], model(idx, idx)[0]
    assert max_rel(a, b) == 0.0
    model.train()
    dc.manual_seed(0)
    c = model(idx, idx)[0]
    assert max_rel(c, a) > 1e-3


# ---- generation -------------------------------------------------------------------------------

def torch_greedy(ref, idx, n):
    with torch.no_grad():
        for _ in range(n):
            logits, _ = ref(idx[:, -ref.config.block_size:])
            idx = torch.cat([idx, logits[:, -1, :].argmax(-1, keepdim=True)], dim=1)
    return idx


@needs_multinomial
def test_greedy_generation_matches_torch():
    ref, model = make_pair(dtype=torch.float64)
    ref.eval()
    model.eval()
    prompt = np.random.default_rng(6).integers(0, 20, (2, 12))
    # 30 new tokens from a 12-token prompt: the context is cropped to the last 16 tokens.
    want = torch_greedy(ref, torch.from_numpy(prompt), 30)
    got = model.generate(dc.from_numpy(prompt), 30, temperature=0.7, top_k=1)
    assert got.tolist() == want.tolist()
    assert not got.requires_grad  # generated under no_grad


@needs_multinomial
def test_sampling_is_seeded_and_stays_in_the_top_k():
    _, model = make_pair(dtype=torch.float32)
    model.eval()
    prompt = dc.from_numpy(np.random.default_rng(7).integers(0, 20, (3, 4)))
    dc.manual_seed(1)
    a = model.generate(prompt, 20, temperature=1.5, top_k=3)
    dc.manual_seed(1)
    b = model.generate(prompt, 20, temperature=1.5, top_k=3)
    assert a.tolist() == b.tolist() and tuple(a.shape) == (3, 24)
    assert a[:, :4].tolist() == prompt.tolist()
    # Each sampled token is among the 3 most likely given what came before it.
    for t in range(4, 24):
        logits = model(a[:, max(0, t - 16):t])[0][:, -1, :].detach().numpy()
        top3 = np.argsort(-logits, axis=-1)[:, :3]
        for row in range(3):
            assert a[row, t].item() in top3[row]


def test_generate_rejects_bad_arguments():
    _, model = make_pair()
    with pytest.raises(ValueError, match="temperature"):
        model.generate(dc.zeros(1, 2, dtype=dc.int64), 3, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(dc.zeros(1, 2, dtype=dc.int64), 3, top_k=0)


# ---- the command line ---------------------------------------------------------------------------

TEXT = "to be or not to be that is the question\n" * 60


def run_cli(*args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "deepcore", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt_cli")
    text = root / "poem.txt"
    text.write_text(TEXT + "déjà vu\n", encoding="utf-8")
    out = run_cli("train", "--model", "gpt", "--text", str(text), "--out", str(root / "run"),
                  "--block-size", "16", "--n-layer", "2", "--n-head", "2", "--n-embd", "32",
                  "--batch-size", "8", "--max-iters", "40", "--eval-interval", "20",
                  "--eval-iters", "4", "--lr", "3e-3", "--seed", "3")
    return root, text, out


def test_cli_trains_and_writes_a_checkpoint(trained):
    root, text, out = trained
    assert out.returncode == 0, out.stderr
    steps = [ln for ln in out.stdout.splitlines() if ln.startswith("step ")]
    assert [ln.split(":")[0] for ln in steps] == ["step 0", "step 20", "step 40"]
    val = [float(ln.split("val loss ")[1].split()[0]) for ln in steps]
    assert val[-1] < val[0] - 0.5
    ckpt = dc.load(str(root / "run" / "checkpoint.safetensors"))
    assert ckpt["format"] == "deepcore.gpt-char" and ckpt["iters"] == 40
    assert ckpt["vocab"] == sorted(set(text.read_text(encoding="utf-8")))
    cfg = GPTConfig.from_dict(ckpt["config"])
    assert (cfg.block_size, cfg.n_layer, cfg.n_embd, cfg.vocab_size) == (16, 2, 32,
                                                                         len(ckpt["vocab"]))
    model = GPT(cfg)
    model.load_state_dict(ckpt["model"])
    assert model.lm_head.weight is model.transformer.wte.weight


@needs_multinomial
def test_cli_generates_from_the_checkpoint(trained):
    root, _, out = trained
    assert out.returncode == 0, out.stderr
    ckpt = str(root / "run" / "checkpoint.safetensors")
    gen = run_cli("generate", ckpt, "--prompt", "to be", "--max-new-tokens", "40",
                  "--seed", "1")
    assert gen.returncode == 0, gen.stderr
    sample = gen.stdout.rstrip("\n")
    assert sample.startswith("to be") and len(sample) == len("to be") + 40
    assert set(sample) <= set(TEXT + "déjà vu\n")
    again = run_cli("generate", ckpt, "--prompt", "to be", "--max-new-tokens", "40",
                    "--seed", "1")
    assert again.stdout == gen.stdout


def test_cli_errors_name_the_problem(trained, tmp_path):
    root, _, _ = trained
    ckpt = str(root / "run" / "checkpoint.safetensors")
    missing = str(tmp_path / "nope.txt")
    out = run_cli("train", "--model", "gpt", "--text", missing)
    assert out.returncode != 0 and "not found" in out.stderr and missing in out.stderr
    out = run_cli("generate", str(tmp_path / "nope.safetensors"))
    assert out.returncode != 0 and "nope.safetensors" in out.stderr
    out = run_cli("generate", ckpt, "--prompt", "to BE?")
    assert out.returncode != 0
    assert "'?', 'B', 'E'" in out.stderr and "vocabulary" in out.stderr
    other = tmp_path / "other.safetensors"
    dc.save({"w": dc.zeros(2)}, str(other))
    out = run_cli("generate", str(other))
    assert out.returncode != 0 and "not a checkpoint written by" in out.stderr
    short = tmp_path / "short.txt"
    short.write_text("abc" * 20, encoding="utf-8")
    out = run_cli("train", "--model", "gpt", "--text", str(short), "--block-size", "16")
    assert out.returncode != 0 and "--block-size" in out.stderr
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00abc")
    out = run_cli("train", "--model", "gpt", "--text", str(binary))
    assert out.returncode != 0 and "not UTF-8" in out.stderr
