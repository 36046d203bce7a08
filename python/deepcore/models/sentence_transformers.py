"""Sentence embeddings from a local ``sentence-transformers`` model directory, with the
``sentence_transformers.SentenceTransformer`` API:

    model = deepcore.models.SentenceTransformer("path/to/all-MiniLM-L6-v2")
    emb = model.encode(["A sentence.", "Another one."])   # NumPy (2, 384)

Note [SentenceTransformer directories]
``modules.json`` lists the pipeline; each entry names a ``sentence_transformers`` class and a
sub-directory holding its config:
- ``Transformer`` (path "" = the directory itself): a BERT from config.json +
  model.safetensors (``BertModel.from_pretrained``), ``sentence_bert_config.json``
  (max_seq_length, do_lower_case) and ``tokenizer.json``, run by the Hugging Face ``tokenizers``
  package (the same Rust tokenizer ``transformers`` uses; none is written here). Padding is to
  the longest text of a batch and truncation to max_seq_length, whatever tokenizer.json itself
  says (all-MiniLM-L6-v2's pads every text to 128), as ``sentence-transformers`` does.
  max_seq_length defaults to tokenizer_config.json's model_max_length, capped at the model's
  max_position_embeddings.
- ``Pooling`` (``<path>/config.json``): cls / max / mean / mean_sqrt_len_tokens /
  weightedmean / lasttoken, from either the legacy ``pooling_mode_*`` booleans or a
  ``pooling_mode`` string/list; several modes are concatenated in that order.
- ``Normalize``: L2-normalises each embedding.
A directory without modules.json is a plain Hugging Face model: Transformer + mean pooling,
which is what ``sentence-transformers`` builds for it too.

``encode`` sorts texts by length (longest first, by characters as ``sentence-transformers``
does), so each batch pads little, and returns the embeddings in the caller's order.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _C, nn
from .._C import Tensor
from ..autograd.grad_mode import no_grad
from .bert import BertConfig, BertModel

__all__ = ["SentenceTransformer", "Transformer", "Pooling", "Normalize"]

PathLike = Union[str, "os.PathLike[str]"]

_POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
_LEGACY_POOLING_KEYS = {  # in sentence-transformers' concatenation order
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def _require_tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ImportError("[SentenceTransformer] the Hugging Face 'tokenizers' package is "
                          "needed to tokenize text: pip install 'deepcore[text]'") from None
    return tokenizers


def _read_json(path: str, what: str, required: bool = True) -> Optional[Any]:
    if not os.path.isfile(path):
        if required:
            raise FileNotFoundError(f"[SentenceTransformer] {what}: '{path}' does not exist")
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"[SentenceTransformer] {what}: '{path}' is not valid JSON: "
                         f"{e}") from None


def _l2_normalize(x: Tensor) -> Tensor:
    """x / max(||x||_2, 1e-12) over the last dim (torch.nn.functional.normalize)."""
    return x / (x * x).sum(-1, keepdim=True).sqrt().clamp(min=1e-12)


# ---- modules -----------------------------------------------------------------------------------

class Transformer(nn.Module):
    """Tokenizer + BERT: ``tokenize(texts)`` gives padded int64 NumPy arrays, ``forward``
    adds ``token_embeddings`` (B, L, hidden) to the features."""

    def __init__(self, directory: PathLike) -> None:
        super().__init__()
        tokenizers = _require_tokenizers()
        directory = os.fspath(directory)
        self.auto_model = BertModel.from_pretrained(directory)
        config: BertConfig = self.auto_model.config
        st_config = _read_json(os.path.join(directory, "sentence_bert_config.json"),
                               "Transformer config", required=False) or {}
        tok_config = _read_json(os.path.join(directory, "tokenizer_config.json"),
                                "tokenizer config", required=False) or {}
        if not isinstance(st_config, dict) or not isinstance(tok_config, dict):
            raise ValueError(f"[SentenceTransformer] '{directory}': sentence_bert_config.json "
                             "and tokenizer_config.json must hold JSON objects")
        max_len = st_config.get("max_seq_length")
        if max_len is None:
            max_len = tok_config.get("model_max_length", config.max_position_embeddings)
        if isinstance(max_len, bool) or not isinstance(max_len, (int, float)) or max_len < 2:
            raise ValueError(f"[SentenceTransformer] '{directory}': max_seq_length must be an "
                             f"integer >= 2, got {max_len!r}")
        self.max_seq_length = int(min(max_len, config.max_position_embeddings))
        self.do_lower_case = bool(st_config.get("do_lower_case", False))

        path = os.path.join(directory, "tokenizer.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"[SentenceTransformer] no tokenizer: '{path}' does not "
                                    "exist (only fast tokenizers saved as tokenizer.json are "
                                    "read)")
        try:
            tok = tokenizers.Tokenizer.from_file(path)
        except Exception as e:  # the Rust side raises its own exception type
            raise ValueError(f"[SentenceTransformer] '{path}' is not a readable tokenizer: "
                             f"{e}") from None
        if self.do_lower_case:
            current = tok.normalizer
            steps = [tokenizers.normalizers.Lowercase()]
            if current is not None:
                steps.append(current)
            tok.normalizer = tokenizers.normalizers.Sequence(steps)
        tok.enable_truncation(max_length=self.max_seq_length)
        pad_id, pad_token = self._pad_token(tok, tok_config, path)
        tok.enable_padding(direction=str(tok_config.get("padding_side", "right")),
                           pad_id=pad_id, pad_token=pad_token)  # pad to the longest text
        self.tokenizer = tok

    @staticmethod
    def _pad_token(tok: Any, tok_config: Dict[str, Any], path: str) -> Tuple[int, str]:
        padding = tok.padding
        if padding is not None:
            return padding["pad_id"], padding["pad_token"]
        token = tok_config.get("pad_token", "[PAD]")
        if isinstance(token, dict):  # AddedToken serialised as an object
            token = token.get("content", "[PAD]")
        pad_id = tok.token_to_id(str(token))
        if pad_id is None:
            raise ValueError(f"[SentenceTransformer] '{path}' has no padding token "
                             f"({token!r} is not in its vocabulary)")
        return pad_id, str(token)

    def tokenize(self, texts: Sequence[str]) -> Dict[str, np.ndarray]:
        """input_ids, token_type_ids, attention_mask: int64 arrays (len(texts), longest)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }

    def get_word_embedding_dimension(self) -> int:
        return self.auto_model.config.hidden_size

    def forward(self, features: Dict[str, Any]) -> Dict[str, Any]:
        out = self.auto_model(features["input_ids"], attention_mask=features["attention_mask"],
                              token_type_ids=features.get("token_type_ids"))
        features["token_embeddings"] = out.last_hidden_state
        return features

    def extra_repr(self) -> str:
        return f"max_seq_length={self.max_seq_length}, do_lower_case={self.do_lower_case}"


def _pooling_modes(cfg: Dict[str, Any], path: str) -> Tuple[str, ...]:
    if "pooling_mode" in cfg:
        mode = cfg["pooling_mode"]
        modes = (mode,) if isinstance(mode, str) else tuple(mode or ())
    else:
        modes = tuple(m for k, m in _LEGACY_POOLING_KEYS.items() if cfg.get(k, False))
        modes = modes or ("mean",)
    return _check_pooling_modes(modes, f"[SentenceTransformer] '{path}':")


def _check_pooling_modes(modes: Tuple[str, ...], where: str) -> Tuple[str, ...]:
    bad = [m for m in modes if m not in _POOLING_MODES]
    if bad or not modes:
        raise ValueError(f"{where} unknown pooling mode(s) {bad or modes}; expected some of "
                         f"{list(_POOLING_MODES)}")
    return modes


class Pooling(nn.Module):
    """Token embeddings (B, L, D) + attention_mask (B, L) -> sentence_embedding
    (B, D * number of modes), as ``sentence_transformers.models.Pooling``."""

    def __init__(self, embedding_dimension: int, pooling_mode: Union[str, Sequence[str]] = "mean",
                 include_prompt: bool = True) -> None:
        super().__init__()
        modes = (pooling_mode,) if isinstance(pooling_mode, str) else tuple(pooling_mode)
        _check_pooling_modes(modes, "[Pooling]")
        self.embedding_dimension = int(embedding_dimension)
        self.pooling_modes = modes
        self.include_prompt = include_prompt

    @classmethod
    def from_config_file(cls, path: str, hidden_size: int) -> "Pooling":
        cfg = _read_json(path, "Pooling config")
        if not isinstance(cfg, dict):
            raise ValueError(f"[SentenceTransformer] '{path}': expected a JSON object")
        dim = cfg.get("embedding_dimension", cfg.get("word_embedding_dimension", hidden_size))
        if dim != hidden_size:
            raise ValueError(f"[SentenceTransformer] '{path}': pooling dimension {dim} does not "
                             f"match the transformer's hidden_size {hidden_size}")
        return cls(dim, _pooling_modes(cfg, path), bool(cfg.get("include_prompt", True)))

    def get_sentence_embedding_dimension(self) -> int:
        return self.embedding_dimension * len(self.pooling_modes)

    def forward(self, features: Dict[str, Any]) -> Dict[str, Any]:
        emb: Tensor = features["token_embeddings"]  # (B, L, D)
        b, n, d = emb.shape
        mask_np = np.asarray(features["attention_mask"]).astype(bool)  # (B, L)
        if mask_np.shape != (b, n):
            raise ValueError(f"[Pooling] attention_mask {mask_np.shape} does not match the token "
                             f"embeddings {(b, n, d)}")
        maskf = _C.from_numpy(mask_np.astype(np.float32)).view(b, n, 1)
        lengths = maskf.sum(1)  # (B, 1)
        # Index arithmetic on the (small) mask is done in NumPy; the embeddings stay tensors.
        first = mask_np.argmax(1)  # first real token (left padding puts it past 0)
        rows = _C.from_numpy(np.arange(b))
        vectors: List[Tensor] = []
        for mode in self.pooling_modes:
            if mode == "cls":
                vectors.append(emb[rows, _C.from_numpy(first)])
            elif mode == "max":
                pad = _C.from_numpy(~mask_np).view(b, n, 1)
                vectors.append(emb.masked_fill(pad, float("-inf")).amax(1))
            elif mode in ("mean", "mean_sqrt_len_tokens"):
                total = (emb * maskf).sum(1)
                denom = lengths.clamp(min=1e-9)
                vectors.append(total / (denom if mode == "mean" else denom.sqrt()))
            elif mode == "weightedmean":
                w = (np.arange(1, n + 1, dtype=np.float32)[None, :] - first[:, None]) * mask_np
                wt = _C.from_numpy(w.astype(np.float32)).view(b, n, 1)
                vectors.append((emb * wt).sum(1) / wt.sum(1).clamp(min=1e-9))
            else:  # lasttoken: the last real token, or the last position when there is none
                flipped = mask_np[:, ::-1]
                last = np.where(flipped.any(1), n - 1 - flipped.argmax(1), n - 1)
                last_t = _C.from_numpy(last)
                vectors.append(emb[rows, last_t] * maskf[rows, last_t])  # zeros if no token
        features["sentence_embedding"] = vectors[0] if len(vectors) == 1 else _C.cat(vectors, -1)
        return features

    def extra_repr(self) -> str:
        return f"embedding_dimension={self.embedding_dimension}, pooling_modes={self.pooling_modes}"


class Normalize(nn.Module):
    """L2-normalises ``sentence_embedding``."""

    def forward(self, features: Dict[str, Any]) -> Dict[str, Any]:
        features["sentence_embedding"] = _l2_normalize(features["sentence_embedding"])
        return features


# ---- the pipeline ------------------------------------------------------------------------------

def _module_kind(entry: Any, path: str) -> str:
    kind = entry.get("type") if isinstance(entry, dict) else None
    if not isinstance(kind, str) or not kind.startswith("sentence_transformers."):
        raise ValueError(f"[SentenceTransformer] '{path}': module entry {entry!r} does not name "
                         "a sentence_transformers module type")
    name = kind.rsplit(".", 1)[-1]
    if name not in ("Transformer", "Pooling", "Normalize"):
        raise ValueError(f"[SentenceTransformer] '{path}': module type {kind!r} is not "
                         "supported; supported are Transformer, Pooling and Normalize")
    return name


class SentenceTransformer(nn.Sequential):
    """``sentence_transformers.SentenceTransformer`` for local directories (Note
    [SentenceTransformer directories]). The modules are ``self[0]`` (Transformer),
    ``self[1]`` (Pooling), ... as there; nothing is ever downloaded."""

    def __init__(self, model_name_or_path: PathLike, device: Optional[str] = None) -> None:
        if device is not None and str(device) != "cpu":
            raise ValueError(f"[SentenceTransformer] device {device!r} is not available; "
                             "use 'cpu'")
        directory = os.fspath(model_name_or_path)
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"[SentenceTransformer] '{directory}' is not a local model "
                                    "directory (nothing is downloaded)")
        modules_path = os.path.join(directory, "modules.json")
        entries = _read_json(modules_path, "module list", required=False)
        modules: "OrderedDict[str, nn.Module]" = OrderedDict()
        if entries is None:  # a plain Hugging Face model: Transformer + mean pooling
            transformer = Transformer(directory)
            modules["0"] = transformer
            modules["1"] = Pooling(transformer.get_word_embedding_dimension(), "mean")
        else:
            if not isinstance(entries, list) or not entries:
                raise ValueError(f"[SentenceTransformer] '{modules_path}': expected a non-empty "
                                 "JSON list of modules")
            modules = self._build(directory, modules_path, entries)
        super().__init__(modules)
        self.model_path = directory
        self.eval()

    @staticmethod
    def _build(directory: str, modules_path: str,
               entries: List[Any]) -> "OrderedDict[str, nn.Module]":
        modules: "OrderedDict[str, nn.Module]" = OrderedDict()
        hidden: Optional[int] = None
        root = os.path.realpath(directory)
        for i, entry in enumerate(entries):
            kind = _module_kind(entry, modules_path)
            sub = str(entry.get("path", "") or "")
            where = os.path.realpath(os.path.join(directory, sub))
            if where != root and not where.startswith(root + os.sep):
                raise ValueError(f"[SentenceTransformer] '{modules_path}': module path {sub!r} "
                                 f"lies outside '{directory}'")
            if kind == "Transformer":
                if i != 0:
                    raise ValueError(f"[SentenceTransformer] '{modules_path}': the Transformer "
                                     "must be the first module")
                module: nn.Module = Transformer(where)
                hidden = module.get_word_embedding_dimension()
            elif hidden is None:
                raise ValueError(f"[SentenceTransformer] '{modules_path}': the first module "
                                 f"must be a Transformer, got {entry.get('type')!r}")
            elif kind == "Pooling":
                module = Pooling.from_config_file(os.path.join(where, "config.json"), hidden)
            else:
                module = Normalize()
            modules[str(entry.get("name", i))] = module
        if not any(isinstance(m, Pooling) for m in modules.values()):
            raise ValueError(f"[SentenceTransformer] '{modules_path}': no Pooling module, so "
                             "there is no sentence embedding")
        return modules

    @property
    def tokenizer(self) -> Any:
        return self[0].tokenizer

    @property
    def max_seq_length(self) -> int:
        return self[0].max_seq_length

    def get_sentence_embedding_dimension(self) -> int:
        dims = [m.get_sentence_embedding_dimension() for m in self
                if isinstance(m, Pooling)]
        return dims[-1]

    def tokenize(self, texts: Sequence[str]) -> Dict[str, np.ndarray]:
        return self[0].tokenize(texts)

    def encode(self, sentences: Union[str, Sequence[str]], batch_size: int = 32,
               show_progress_bar: Optional[bool] = False,
               output_value: str = "sentence_embedding", convert_to_numpy: bool = True,
               convert_to_tensor: bool = False, device: Optional[str] = None,
               normalize_embeddings: bool = False) -> Union[np.ndarray, Tensor, List[Any]]:
        """Embeddings of ``sentences``: a NumPy array (n, dim), or (dim,) for one string;
        a deepcore tensor with ``convert_to_tensor`` (or with ``convert_to_numpy=False``).
        ``output_value="token_embeddings"`` gives a list of (tokens_i, hidden) arrays."""
        single = isinstance(sentences, str)
        texts = [sentences] if single else sentences
        if not isinstance(texts, (list, tuple)):
            raise TypeError(f"[SentenceTransformer.encode] expected a string or a list of "
                            f"strings, got {type(sentences).__name__}")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"[SentenceTransformer.encode] sentences[{i}] is a "
                                f"{type(t).__name__}, expected a string")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"[SentenceTransformer.encode] batch_size must be a positive "
                             f"integer, got {batch_size!r}")
        if output_value not in ("sentence_embedding", "token_embeddings"):
            raise ValueError(f"[SentenceTransformer.encode] output_value must be "
                             f"'sentence_embedding' or 'token_embeddings', got {output_value!r}")
        if device is not None and str(device) != "cpu":
            raise ValueError(f"[SentenceTransformer.encode] device {device!r} is not available")

        order = np.argsort([-len(t) for t in texts])
        results: List[Any] = [None] * len(texts)
        starts = range(0, len(texts), batch_size)
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for start in _progress(starts, show_progress_bar):
                    idx = order[start:start + batch_size]
                    self._encode_batch([texts[i] for i in idx], idx, results, output_value,
                                       normalize_embeddings)
        finally:
            self.train(was_training)

        if output_value == "token_embeddings":
            return results
        dim = self.get_sentence_embedding_dimension()
        out = np.stack(results) if results else np.zeros((0, dim), dtype=np.float32)
        if single:
            out = out[0]
        if convert_to_tensor or not convert_to_numpy:
            return _C.from_numpy(out)
        return out

    def _encode_batch(self, batch: List[str], idx: np.ndarray, results: List[Any],
                      output_value: str, normalize: bool) -> None:
        features: Dict[str, Any] = dict(self.tokenize(batch))
        mask = features["attention_mask"]
        features = self.forward(features)
        if output_value == "token_embeddings":
            tokens = features["token_embeddings"].numpy()
            for row, i in enumerate(idx):
                results[i] = tokens[row][mask[row].astype(bool)]
            return
        emb = features["sentence_embedding"]
        if normalize:
            emb = _l2_normalize(emb)
        arr = emb.numpy()
        for row, i in enumerate(idx):
            results[i] = arr[row]


def _progress(items: range, show: Optional[bool]):
    if not show:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, desc="Batches")
