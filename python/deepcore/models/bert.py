"""BERT encoders with Hugging Face ``transformers``' module layout and parameter names, so a
Hugging Face model directory (config.json + model.safetensors) loads directly:

    model = deepcore.models.BertModel.from_pretrained("path/to/all-MiniLM-L6-v2")
    out = model(input_ids, attention_mask=mask)
    out.last_hidden_state  # (B, L, hidden_size)
    out.pooler_output      # (B, hidden_size): tanh(dense(first token)), or None without pooler

Note [Loading Hugging Face checkpoints]
- Only safetensors weights are read (``model.safetensors`` or a sharded
  ``model.safetensors.index.json``), through ``deepcore.load``, which never runs code from a
  file. A directory that has only ``pytorch_model.bin`` (a pickle) is refused with an error
  that names the file: unpickling can run arbitrary code.
- Checkpoint keys may carry the ``bert.`` prefix of the task models (BertForMaskedLM and
  friends); it is stripped. Task heads (``cls.*``, ``classifier.*``, ...) and the
  ``embeddings.position_ids`` buffer older checkpoints store are reported as unexpected and
  skipped, as ``transformers`` does; TensorFlow-era ``LayerNorm.gamma/beta`` are renamed.
- A checkpoint without pooler weights gives a model without a pooler (``pooler_output`` is
  None) instead of a randomly initialised one; any other missing weight is an error listing
  the keys and the file, never a silently random layer.

Note [BERT attention mask]
The padding mask (B, L) of 1 = token / 0 = padding becomes a boolean key mask for
``scaled_dot_product_attention`` (True = the key takes part), broadcast over heads and query
positions: (B, 1, 1, L) for (B, H, L, D) heads, or (1, B, 1, L) for the (H, B, L, D) heads of
the unpadded path (Note [Unpadded BERT]). When every token is real (no mask, or a mask of all
ones) no mask is passed, so the attention kernel takes its unmasked path. Heads are split with
one view + permute + copy (or gather) of the (..., 3*H*D) projection (Note [Fused QKV
projection]): no Python loop over heads or tokens. The heads are handed over contiguous: the
batched matmuls inside attention ran several times faster on dense (L, D) panels than on the
strided views (180 ms vs 25 ms for q @ k^T at (32, 12, 113, 32)).

Note [Unpadded BERT]
Every op of a BERT layer except attention works token by token, so with padding in the batch
(``unpad_inputs=True``, the default) the encoder carries only the T real tokens, (T, hidden),
through the projections, GELU, LayerNorms and residuals, and gathers them into the padded
layout only around ``scaled_dot_product_attention``: one gather makes query, key and value
(H, B, L, D) from the (T, 3*H*D) projection, one gathers the context back to (T, H*D). Padded
slots read an arbitrary real row there: as keys they are masked out, as queries their output
is dropped. Sorted, padded batches of mixed-length text waste about a third of their tokens
on padding, and the GEMMs shrink by as much (bench_transformer.py's MiniLM encode, 64
sentences of 4..113 tokens in batches of 32: the profiler counts 79.6 GFLOP of Linear work
instead of 118.2). The real tokens' results are those of the padded computation. The padding
positions of ``last_hidden_state`` are zeros (transformers fills them with whatever attention
made of the pad tokens, a meaningless value); ``unpad_inputs=False`` computes them as
transformers does, and so does the pooler then for left-padded input (its first position is
a pad). A batch with a sequence of no real tokens at all takes the padded path.

Note [Fused QKV projection]
The query/key/value Linears keep Hugging Face's parameter names (so checkpoints load as they
are), but forward runs one GEMM against their stacked weights (3*H*D, hidden) and one
head-splitting copy (or gather) instead of three of each: on MiniLM (batch 32 x 113 tokens) the
projections took 2.9 s instead of 3.7 s over one encode of 64 sentences (profiler, on the
shared 2-core machine under heavy load), and two copies per layer went away. Forward hooks on
the three Linears do not run.
- When a gradient is wanted, the stack is rebuilt on every call with ``cat``, so gradients flow
  to the three Linears as usual.
- Otherwise (inference) the stack is cached and rebuilt only when one of the six parameters is
  replaced or changed in place: the key is each parameter's identity, data pointer and version
  counter, which every in-place write (``copy_``, ``load_state_dict``, optimizer steps,
  ``.data`` writes) bumps. The cache is 1.7 MB per MiniLM layer, and is not part of the
  state_dict.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import MISSING, dataclass, field, fields
from functools import partial
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .. import _C, nn
from ..autograd.grad_mode import no_grad
from .._C import Tensor
from ..nn import functional as F

__all__ = ["BertConfig", "BertModel", "BaseModelOutputWithPooling"]

PathLike = Union[str, "os.PathLike[str]"]

CONFIG_NAME = "config.json"
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
OTHER_WEIGHTS_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5",
                       "flax_model.msgpack")

# config.json's hidden_act -> the activation. gelu_new / gelu_fast / gelu_pytorch_tanh are the
# tanh approximation (the same formula written three ways); gelu is the exact erf form.
_gelu_tanh = partial(F.gelu, approximate="tanh")
_ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
}


@dataclass
class BertConfig:
    """The fields of a Hugging Face BERT ``config.json`` (``transformers.BertConfig``'s
    names and defaults). Unknown keys are kept in ``extra``."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"
    initializer_range: float = 0.02
    model_type: str = "bert"
    architectures: Optional[List[str]] = None
    extra: Dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, source: str = "BertConfig") -> None:
        """Raises ValueError (naming ``source``) for values no BERT can be built from."""
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (
                    value == 0 and name not in ("num_hidden_layers", "type_vocab_size")):
                raise ValueError(f"[BertConfig] {source}: {name} must be a positive integer, "
                                 f"got {value!r}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(f"[BertConfig] {source}: hidden_size ({self.hidden_size}) is not a "
                             f"multiple of num_attention_heads ({self.num_attention_heads})")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"[BertConfig] {source}: hidden_act {self.hidden_act!r} is not "
                             f"supported; expected one of {sorted(_ACTIVATIONS)}")
        if self.position_embedding_type != "absolute":
            raise ValueError(f"[BertConfig] {source}: position_embedding_type "
                             f"{self.position_embedding_type!r} is not supported; only "
                             "'absolute' is")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            p = getattr(self, name)
            if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ValueError(f"[BertConfig] {source}: {name} must be in [0, 1], got {p!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: Dict[str, Any], source: str = "BertConfig") -> "BertConfig":
        if not isinstance(d, dict):
            raise ValueError(f"[BertConfig] {source}: expected a JSON object, got "
                             f"{type(d).__name__}")
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in d.items() if k in known}
        extra = {k: v for k, v in d.items() if k not in known}
        config = cls.__new__(cls)
        for f in fields(cls):
            if f.name in kwargs:
                value = kwargs[f.name]
            elif f.default_factory is not MISSING:  # type: ignore[misc]
                value = f.default_factory()  # type: ignore[misc]
            else:
                value = f.default
            setattr(config, f.name, value)
        config.extra = extra
        config.validate(source)
        return config

    @classmethod
    def from_json_file(cls, path: PathLike) -> "BertConfig":
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as fh:
                d = json.load(fh)
        except FileNotFoundError:
            raise FileNotFoundError(f"[BertConfig] no config file at '{path}'") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"[BertConfig] '{path}' is not valid JSON: {e}") from None
        return cls.from_dict(d, source=f"'{path}'")

    @classmethod
    def from_pretrained(cls, directory: PathLike) -> "BertConfig":
        """Reads ``directory/config.json`` and checks that it describes a BERT model."""
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"[BertConfig] '{directory}' is not a directory (expected a "
                                    "Hugging Face model directory with config.json)")
        path = os.path.join(directory, CONFIG_NAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"[BertConfig] '{directory}' has no {CONFIG_NAME} (expected "
                                    "a Hugging Face model directory)")
        config = cls.from_json_file(path)
        archs = config.architectures or []
        if config.model_type != "bert" or any(not str(a).startswith("Bert") for a in archs):
            raise ValueError(f"[BertConfig] '{path}' describes model_type "
                             f"{config.model_type!r} with architectures {archs}; only BERT "
                             "(model_type 'bert', Bert* architectures) is supported")
        return config

    def to_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        d.update(self.extra)
        return d


@dataclass
class BaseModelOutputWithPooling:
    """``transformers``' output: attributes, ``out[0]`` / ``out["last_hidden_state"]``, and
    ``to_tuple()`` (fields that are None are left out, as there)."""

    last_hidden_state: Tensor
    pooler_output: Optional[Tensor] = None

    def to_tuple(self) -> Tuple[Tensor, ...]:
        return tuple(v for v in (self.last_hidden_state, self.pooler_output) if v is not None)

    def __getitem__(self, key: Union[int, slice, str]) -> Any:
        if isinstance(key, str):
            return getattr(self, key)
        return self.to_tuple()[key]

    def __iter__(self):
        return iter(self.to_tuple())

    def __len__(self) -> int:
        return len(self.to_tuple())

    def keys(self) -> List[str]:
        return [k for k in ("last_hidden_state", "pooler_output") if getattr(self, k) is not None]


# ---- modules (Hugging Face's names) ------------------------------------------------------------

class BertEmbeddings(nn.Module):
    """word + absolute position + token type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size,
                                            padding_idx=_pad_idx(config))
        self.position_embeddings = nn.Embedding(config.max_position_embeddings,
                                                config.hidden_size)
        self.token_type_embeddings = nn.Embedding(max(config.type_vocab_size, 1),
                                                  config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Optional[Tensor] = None,
                position_ids: Optional[Tensor] = None) -> Tensor:
        seq_len = input_ids.shape[1]
        x = self.word_embeddings(input_ids)
        # Default positions 0..L-1 and token type 0 are rows of the tables, added by
        # broadcasting: no index tensors, no gathers.
        if position_ids is None:
            x = x + self.position_embeddings.weight[:seq_len]
        else:
            x = x + self.position_embeddings(position_ids)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """query/key/value projections and attention over the heads (Note [BERT attention
    mask])."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.head_dim
        self.all_head_size = config.hidden_size
        self.query = nn.Linear(config.hidden_size, self.all_head_size)
        self.key = nn.Linear(config.hidden_size, self.all_head_size)
        self.value = nn.Linear(config.hidden_size, self.all_head_size)
        self.dropout_prob = config.attention_probs_dropout_prob
        self._qkv_key: Optional[tuple] = None
        self._qkv_cache: Tuple[Tensor, Optional[Tensor]] = ()  # type: ignore[assignment]

    def _fused_qkv(self) -> Tuple[Tensor, Optional[Tensor]]:
        """query/key/value weights (and biases) stacked: (3*H*D, hidden), (3*H*D,)
        (Note [Fused QKV projection])."""
        linears = (self.query, self.key, self.value)
        params = [m.weight for m in linears] + [m.bias for m in linears if m.bias is not None]
        if _C.is_grad_enabled() and any(p.requires_grad for p in params):
            return _stack_qkv(linears)  # rebuilt each call: gradients flow to the three Linears
        if _C._jit_tracing():  # a traced graph stacks them itself (the cache key reads pointers)
            return _stack_qkv(linears)
        key = tuple((id(p), p.data_ptr(), p._version()) for p in params)
        if self._qkv_key != key:
            with no_grad():
                self._qkv_cache = _stack_qkv(linears)
            self._qkv_key = key
        return self._qkv_cache

    def forward(self, hidden_states: Tensor, mask: Optional[Tensor] = None,
                packing: Optional["_Packing"] = None) -> Tensor:
        """(B, L, hidden) -> (B, L, hidden); with ``packing``, (T, hidden) -> (T, hidden) for
        the T real tokens (Note [Unpadded BERT])."""
        h, d = self.num_attention_heads, self.attention_head_size
        weight, bias = self._fused_qkv()
        qkv = F.linear(hidden_states, weight, bias)  # (B, L, 3*H*D) or (T, 3*H*D)
        p = self.dropout_prob if self.training else 0.0
        if packing is not None:
            q, k, v = packing.spread_heads(qkv, h, d)  # each (H, B, L, D)
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=packing.mask, dropout_p=p)
            return packing.gather_heads(ctx)  # (T, H*D)
        b, n = qkv.shape[0], qkv.shape[1]
        # -> (3, B, H, L, D), contiguous (Note [BERT attention mask]).
        qkv = qkv.view(b, n, 3, h, d).permute(2, 0, 3, 1, 4).contiguous()
        ctx = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask,
                                             dropout_p=p)
        # (B, H, L, D) -> (B, L, H*D)
        return ctx.permute(0, 2, 1, 3).reshape(b, n, self.all_head_size)


def _stack_qkv(linears: Tuple[nn.Linear, ...]) -> Tuple[Tensor, Optional[Tensor]]:
    weight = _C.cat([m.weight for m in linears], 0)
    if all(m.bias is None for m in linears):
        return weight, None
    bias = _C.cat([m.bias if m.bias is not None else _C.zeros_like(m.weight[:, 0])
                   for m in linears], 0)
    return weight, bias


class _BertResidualOutput(nn.Module):
    """LayerNorm(dropout(dense(hidden_states)) + input_tensor), dense: in_features -> hidden."""

    def __init__(self, config: BertConfig, in_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: Tensor, input_tensor: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BertSelfOutput(_BertResidualOutput):
    def __init__(self, config: BertConfig) -> None:
        super().__init__(config, config.hidden_size)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, hidden_states: Tensor, mask: Optional[Tensor] = None,
                packing: Optional["_Packing"] = None) -> Tensor:
        return self.output(self.self(hidden_states, mask, packing), hidden_states)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.hidden_act = config.hidden_act
        self.intermediate_act_fn = _ACTIVATIONS[config.hidden_act]

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))

    def extra_repr(self) -> str:
        return f"hidden_act={self.hidden_act!r}"


class BertOutput(_BertResidualOutput):
    def __init__(self, config: BertConfig) -> None:
        super().__init__(config, config.intermediate_size)


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden_states: Tensor, mask: Optional[Tensor] = None,
                packing: Optional["_Packing"] = None) -> Tensor:
        attention_output = self.attention(hidden_states, mask, packing)
        return self.output(self.intermediate(attention_output), attention_output)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden_states: Tensor, mask: Optional[Tensor] = None,
                packing: Optional["_Packing"] = None) -> Tensor:
        for layer in self.layer:
            hidden_states = layer(hidden_states, mask, packing)
        return hidden_states


class BertPooler(nn.Module):
    """tanh(dense(hidden state of the first token))."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))


class _Packing:
    """Where the T real tokens of a padded (B, L) batch are (Note [Unpadded BERT]). Every
    move between the packed (T, ...) rows and the padded layout is one index gather, so all
    of them are differentiable."""

    def __init__(self, keep: np.ndarray) -> None:
        b, n = keep.shape
        rows = np.flatnonzero(keep.reshape(-1))
        # Padded slot -> packed row; padding reads row 0, a value attention masks out (keys)
        # or that is dropped afterwards (queries).
        spread = np.zeros(b * n, dtype=np.int64)
        spread[rows] = np.arange(rows.size, dtype=np.int64)
        unpack = spread.copy()
        unpack[~keep.reshape(-1)] = rows.size  # -> the zero row appended by ``unpack``
        self.shape = (b, n)
        self.rows = _C.from_numpy(rows.astype(np.int64, copy=False))
        self.spread = _C.from_numpy(spread)
        self.unpack_index = _C.from_numpy(unpack)
        self.mask = _C.from_numpy(keep).view(1, b, 1, n)  # keys, for (H, B, L, L) scores

    def pack(self, x: Tensor) -> Tensor:
        """(B, L, C) -> (T, C)."""
        b, n = self.shape
        return x.reshape(b * n, x.shape[-1]).index_select(0, self.rows)

    def unpack(self, x: Tensor) -> Tensor:
        """(T, C) -> (B, L, C), zeros at the padding."""
        b, n = self.shape
        return F.pad(x, (0, 0, 0, 1)).index_select(0, self.unpack_index).view(b, n, x.shape[-1])

    def spread_heads(self, qkv: Tensor, h: int, d: int) -> Tuple[Tensor, Tensor, Tensor]:
        """(T, 3*H*D) -> query, key, value, each (H, B, L, D) and contiguous: heads lead, so
        one gather on the strided (3, H, T, D) view makes all three."""
        b, n = self.shape
        t = qkv.shape[0]
        heads = qkv.view(t, 3, h, d).permute(1, 2, 0, 3).index_select(2, self.spread)
        heads = heads.view(3, h, b, n, d)
        return heads[0], heads[1], heads[2]

    def gather_heads(self, ctx: Tensor) -> Tensor:
        """(H, B, L, D) -> (T, H*D)."""
        h, d = ctx.shape[0], ctx.shape[-1]
        b, n = self.shape
        picked = ctx.reshape(h, b * n, d).index_select(1, self.rows)  # (H, T, D)
        return picked.permute(1, 0, 2).reshape(-1, h * d)


def _pad_idx(config: BertConfig) -> Optional[int]:
    p = config.pad_token_id
    return p if isinstance(p, int) and 0 <= p < config.vocab_size else None


def _as_index_tensor(x: Any, name: str) -> Tensor:
    """Tensors pass through; NumPy arrays and nested lists become tensors."""
    if isinstance(x, Tensor):
        return x
    from .. import as_tensor

    try:
        return as_tensor(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"[BertModel] {name} must be a tensor of integer ids, got "
                        f"{type(x).__name__}: {e}") from None


class BertModel(nn.Module):
    """The BERT encoder (``transformers.BertModel``): embeddings, ``num_hidden_layers``
    post-LayerNorm transformer layers and, with ``add_pooling_layer``, the tanh pooler.
    ``unpad_inputs``: run the token-wise ops on real tokens only (Note [Unpadded BERT]).

    Inference-ready from Hugging Face directories with :meth:`from_pretrained`; freshly built
    models keep each layer's default initialisation (no BERT-specific init is applied)."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True,
                 unpad_inputs: bool = True) -> None:
        super().__init__()
        if not isinstance(config, BertConfig):
            raise TypeError(f"[BertModel] expected a BertConfig, got {type(config).__name__}")
        self.config = config
        self.unpad_inputs = unpad_inputs
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None

    def _check_inputs(self, input_ids: Tensor, attention_mask: Optional[Tensor],
                      token_type_ids: Optional[Tensor], position_ids: Optional[Tensor]) -> None:
        shape = tuple(input_ids.shape)
        if len(shape) != 2:
            raise ValueError(f"[BertModel] input_ids must have shape (batch, seq_len), got "
                             f"{shape}")
        if input_ids.dtype.is_floating_point:
            raise TypeError(f"[BertModel] input_ids must hold integer token ids, got dtype "
                            f"{input_ids.dtype}")
        for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids),
                        ("position_ids", position_ids)):
            if t is not None and tuple(t.shape) != shape and not (
                    name == "position_ids" and tuple(t.shape) == (1, shape[1])):
                raise ValueError(f"[BertModel] {name} has shape {tuple(t.shape)}, but "
                                 f"input_ids has shape {shape}: they must match")
        if position_ids is None and shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"[BertModel] input_ids {shape} has {shape[1]} tokens, more than "
                             f"max_position_embeddings ({self.config.max_position_embeddings}); "
                             "truncate the input")

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None,
                token_type_ids: Optional[Tensor] = None,
                position_ids: Optional[Tensor] = None) -> BaseModelOutputWithPooling:
        """input_ids (B, L) -> last_hidden_state (B, L, hidden_size), pooler_output (B,
        hidden_size). attention_mask (B, L): 1 for tokens, 0 for padding."""
        input_ids = _as_index_tensor(input_ids, "input_ids")
        attention_mask, token_type_ids, position_ids = (
            None if t is None else _as_index_tensor(t, name)
            for t, name in ((attention_mask, "attention_mask"),
                            (token_type_ids, "token_type_ids"), (position_ids, "position_ids")))
        self._check_inputs(input_ids, attention_mask, token_type_ids, position_ids)

        hidden = self.embeddings(input_ids, token_type_ids, position_ids)
        mask, packing = None, None
        if attention_mask is not None and _C._jit_tracing():
            # A traced graph (deepcore.jit, ONNX export) keeps the mask as a tensor: it may
            # not read values on the host, so there is no all-ones shortcut and no unpadding.
            b, n = attention_mask.shape
            mask = (attention_mask != 0).view(b, 1, 1, n)
        elif attention_mask is not None:
            keep = np.asarray(attention_mask.detach().numpy()) != 0  # (B, L), on the host
            if not keep.all():
                b, n = keep.shape
                mask = _C.from_numpy(keep).view(b, 1, 1, n)  # (B, 1, 1, L)
                if self.unpad_inputs and keep.any(1).all():
                    packing = _Packing(keep)
        if packing is not None:
            hidden = packing.unpack(self.encoder(packing.pack(hidden), None, packing))
        else:
            hidden = self.encoder(hidden, mask)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: PathLike,
                        output_loading_info: bool = False, **kwargs: Any):
        """Builds the model from a local Hugging Face directory (config.json +
        model.safetensors; Note [Loading Hugging Face checkpoints]) in eval mode. Nothing is
        downloaded: the argument must be a directory. With ``output_loading_info`` returns
        ``(model, {"missing_keys": [...], "unexpected_keys": [...]})``."""
        if kwargs:
            raise TypeError(f"[BertModel.from_pretrained] unsupported arguments {sorted(kwargs)}"
                            " (only local directories are loaded; nothing is downloaded)")
        directory = os.fspath(pretrained_model_name_or_path)
        config = BertConfig.from_pretrained(directory)
        state, source = _load_safetensors_state(directory)
        state, unexpected = _bert_state_dict(state)
        has_pooler = any(k.startswith("pooler.") for k in state)
        model = cls(config, add_pooling_layer=has_pooler)
        expected = set(model.state_dict())
        missing = sorted(expected - set(state))
        unexpected += sorted(set(state) - expected)
        if missing:
            raise ValueError(f"[BertModel.from_pretrained] {source} lacks {len(missing)} "
                             f"weight(s) the model needs: {_first(missing)}")
        try:
            model.load_state_dict({k: v for k, v in state.items() if k in expected})
        except RuntimeError as e:  # size mismatches: config and weights disagree
            raise ValueError(f"[BertModel.from_pretrained] the weights in {source} do not fit "
                             f"the config in '{os.path.join(directory, CONFIG_NAME)}': "
                             f"{e}") from None
        ignored = [k for k in unexpected if not _known_extra(k)]
        if ignored:
            warnings.warn(f"[BertModel.from_pretrained] {source}: {len(ignored)} weight(s) are "
                          f"not used by BertModel and were skipped: {_first(ignored)}",
                          stacklevel=2)
        model.eval()
        if output_loading_info:
            return model, {"missing_keys": missing, "unexpected_keys": unexpected}
        return model


# ---- checkpoint reading ------------------------------------------------------------------------

def _first(keys: List[str], n: int = 8) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def _known_extra(key: str) -> bool:
    """Keys ``transformers`` itself skips when loading a BertModel."""
    return key == "embeddings.position_ids" or key.startswith(
        ("cls.", "classifier.", "qa_outputs."))


def _load_safetensors_state(directory: str) -> Tuple[Dict[str, Tensor], str]:
    """The checkpoint's tensors by key, and a description of the file(s) for messages."""
    from ..serialization import load

    single = os.path.join(directory, SAFE_WEIGHTS_NAME)
    index = os.path.join(directory, SAFE_WEIGHTS_INDEX_NAME)
    if os.path.isfile(single):
        state = load(single)
        if not isinstance(state, dict):
            raise ValueError(f"[BertModel.from_pretrained] '{single}' does not hold a flat "
                             "table of named tensors")
        return state, f"'{single}'"
    if os.path.isfile(index):
        return _load_sharded(directory, index), f"'{index}'"
    for name in OTHER_WEIGHTS_NAMES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            why = (" (pickled checkpoints can run arbitrary code when read); convert it with "
                   "safetensors.torch.save_file in a trusted environment"
                   if name.startswith("pytorch_model") else "")
            raise ValueError(f"[BertModel.from_pretrained] found '{path}', but only "
                             f"safetensors weights ({SAFE_WEIGHTS_NAME}) are loaded{why}")
    raise FileNotFoundError(f"[BertModel.from_pretrained] no weights in '{directory}': expected "
                            f"'{single}'")


def _load_sharded(directory: str, index: str) -> Dict[str, Tensor]:
    from ..serialization import load

    try:
        with open(index, encoding="utf-8") as fh:
            weight_map = json.load(fh)["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"[BertModel.from_pretrained] '{index}' is not a valid safetensors "
                         f"index: {e!r}") from None
    state: Dict[str, Tensor] = {}
    root = os.path.realpath(directory)
    for shard in shards:
        path = os.path.realpath(os.path.join(directory, str(shard)))
        if os.path.dirname(path) != root:
            raise ValueError(f"[BertModel.from_pretrained] '{index}' names the shard "
                             f"{shard!r} outside '{directory}'")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"[BertModel.from_pretrained] '{index}' names the shard "
                                    f"'{path}', which does not exist")
        state.update(load(path))
    return state


def _bert_state_dict(state: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor], List[str]]:
    """Keys as BertModel names them: ``bert.`` prefix stripped, gamma/beta renamed; keys of
    task heads set aside as unexpected."""
    prefixed = any(k.startswith("bert.") for k in state)
    out: Dict[str, Tensor] = {}
    unexpected: List[str] = []
    for key, value in state.items():
        if prefixed:
            if not key.startswith("bert."):
                unexpected.append(key)
                continue
            key = key[len("bert."):]
        if key.endswith(".gamma"):
            key = key[:-len(".gamma")] + ".weight"
        elif key.endswith(".beta"):
            key = key[:-len(".beta")] + ".bias"
        out[key] = value
    return out, unexpected
