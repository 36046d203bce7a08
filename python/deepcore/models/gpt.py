"""GPT: a GPT-2-style decoder-only transformer with nanoGPT's module layout and state_dict keys.

    transformer.wte          token embedding (vocab_size, n_embd), tied to lm_head.weight
    transformer.wpe          position embedding (block_size, n_embd)
    transformer.drop         dropout on the summed embeddings
    transformer.h.N          Block: ln_1, attn (c_attn, c_proj), ln_2, mlp (c_fc, c_proj)
    transformer.ln_f         final LayerNorm
    lm_head                  Linear(n_embd, vocab_size, bias=False)

so a nanoGPT checkpoint (converted to safetensors) loads with ``load_state_dict``, and
``forward(idx, targets)``, ``configure_optimizers`` and ``generate`` behave as nanoGPT's.

Note [GPT weight tying]
``lm_head.weight`` and ``transformer.wte.weight`` are one Parameter (GPT-2's tying, as
nanoGPT's ``self.transformer.wte.weight = self.lm_head.weight``): ``parameters()`` yields it
once, so an optimizer updates it once with the sum of both gradients; ``state_dict()`` lists it
under both keys, as PyTorch does, and ``deepcore.save`` stores the shared memory once
(Note [Checkpoint format]). ``load_state_dict`` copies into the Parameter in place, so the tie
survives a round trip through a checkpoint.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

from .. import _C, nn
from .._creation import arange
from .._C import Tensor
from ..nn import functional as F

__all__ = ["GPTConfig", "GPT"]


@dataclass
class GPTConfig:
    """nanoGPT's defaults: GPT-2 small (124M parameters) with a padded vocabulary."""

    block_size: int = 1024
    vocab_size: int = 50304
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm layers, as GPT-2

    def __post_init__(self) -> None:
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"[models.GPTConfig] {name} must be a positive int, got "
                                 f"{value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"[models.GPTConfig] n_embd ({self.n_embd}) must be a multiple of "
                             f"n_head ({self.n_head})")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"[models.GPTConfig] dropout must be in [0, 1), got "
                             f"{self.dropout!r}")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "GPTConfig":
        """The inverse of ``to_dict``; unknown or missing keys are a ValueError."""
        fields = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - fields)
        missing = sorted(fields - set(d))
        if unknown or missing:
            raise ValueError(f"[models.GPTConfig] bad config: unknown keys {unknown}, "
                             f"missing keys {missing}")
        return cls(**d)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions <= t."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape  # (batch, time, n_embd)
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        # (B, T, C) -> (B, nh, T, hs)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=None, dropout_p=self.dropout if self.training else 0.0,
            is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """n_embd -> 4 n_embd -> GELU (erf form, as nanoGPT) -> n_embd."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(ln_1(x)), then + mlp(ln_2(.))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """GPT-2-style language model (see the module docstring for the layout)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"[models.GPT] expected a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # Note [GPT weight tying]
        self.apply(self._init_weights)
        # GPT-2's scaled init of the projections into the residual stream.
        std = 0.02 / math.sqrt(2 * config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def get_num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding (the token embedding
        counts, as it is lm_head's weight too)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def _check_idx(self, idx: Any, check_length: bool = True) -> Tuple[int, int]:
        where = f"models.GPT (block_size {self.config.block_size})"
        if not isinstance(idx, Tensor):
            raise TypeError(f"[{where}] idx must be a Tensor of token ids, got "
                            f"{type(idx).__name__}")
        if idx.dim() != 2 or idx.dtype.is_floating_point:
            raise ValueError(f"[{where}] idx must be a (batch, time) integer Tensor, got shape "
                             f"{tuple(idx.shape)} and dtype {idx.dtype}")
        b, t = idx.shape
        if check_length and t > self.config.block_size:
            raise ValueError(f"[{where}] cannot forward a sequence of length {t}: the block "
                             f"size is only {self.config.block_size}")
        return b, t

    def forward(self, idx: Tensor,
                targets: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """idx (B, T) token ids -> (logits, loss). With ``targets`` (B, T): logits (B, T, V)
        and the mean cross-entropy (targets of -1 ignored). Without: logits of the last
        position only, (B, 1, V), and None (what generation needs)."""
        _, t = self._check_idx(idx)
        if targets is not None and (not isinstance(targets, Tensor)
                                    or tuple(targets.shape) != tuple(idx.shape)):
            got = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
            raise ValueError(f"[models.GPT] targets must be a Tensor of idx's shape "
                             f"{tuple(idx.shape)}, got {got}")
        pos = arange(0, t, dtype=_C.dtype.int64, device=idx.device)  # (T,)
        tok_emb = self.transformer.wte(idx)  # (B, T, C)
        pos_emb = self.transformer.wpe(pos)  # (T, C)
        x = self.transformer.drop(tok_emb + pos_emb)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                   ignore_index=-1)
            return logits, loss
        return self.lm_head(x[:, -1:, :]), None

    def crop_block_size(self, block_size: int) -> None:
        """Shrinks the context to ``block_size`` (e.g. to fine-tune a smaller model)."""
        if not 0 < block_size <= self.config.block_size:
            raise ValueError(f"[models.GPT] crop_block_size({block_size}) must be in "
                             f"[1, {self.config.block_size}]")
        self.config.block_size = block_size
        wpe = self.transformer.wpe
        wpe.weight = nn.Parameter(wpe.weight.detach()[:block_size].clone())
        wpe.num_embeddings = block_size

    def configure_optimizers(self, weight_decay: float, learning_rate: float,
                             betas: Tuple[float, float] = (0.9, 0.95),
                             device_type: Optional[str] = None):
        """AdamW with two groups: 2-D (and higher) parameters -- matmul weights and
        embeddings -- decay; biases and LayerNorm parameters do not. ``device_type`` is
        accepted for nanoGPT's signature."""
        from .. import optim
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return optim.AdamW(groups, lr=learning_rate, betas=betas)

    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: Optional[int] = None) -> Tensor:
        """Appends ``max_new_tokens`` sampled tokens to idx (B, T) and returns (B, T + n).
        Each step feeds the last block_size tokens, divides the logits by ``temperature``,
        keeps the ``top_k`` largest (top_k=1 is greedy decoding) and samples from the
        softmax. Call ``model.eval()`` first to turn dropout off."""
        _, t = self._check_idx(idx, check_length=False)
        if t == 0:
            raise ValueError("[models.GPT.generate] idx must hold at least one token per row")
        if temperature <= 0.0:
            raise ValueError(f"[models.GPT.generate] temperature must be > 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"[models.GPT.generate] top_k must be >= 1 or None, got {top_k}")
        from .. import cat, multinomial, no_grad, topk
        block = self.config.block_size
        with no_grad():
            for _ in range(int(max_new_tokens)):
                idx_cond = idx if idx.size(1) <= block else idx[:, -block:]
                logits, _ = self(idx_cond)
                logits = logits[:, -1, :] / temperature  # (B, V)
                if top_k is not None:
                    v, _ = topk(logits, min(top_k, logits.size(-1)))
                    logits = logits.masked_fill(logits < v[:, -1:], -math.inf)
                probs = F.softmax(logits, dim=-1)
                idx_next = multinomial(probs, num_samples=1)  # (B, 1)
                idx = cat((idx, idx_next), dim=1)
        return idx
