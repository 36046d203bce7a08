"""Embedding: a lookup table of ``num_embeddings`` vectors of size ``embedding_dim``."""
from __future__ import annotations

from typing import Any, Optional

from ... import _C
from ..._C import Tensor
from ..._indexing import embedding_functional
from ...autograd.grad_mode import no_grad
from .. import init
from ..parameter import Parameter
from ._factory import empty_param_data
from .module import Module, _layer_error

__all__ = ["Embedding", "EmbeddingBag"]


def _padding_index(cls: str, num_embeddings: int, embedding_dim: int,
                   padding_idx: Optional[int]) -> Optional[int]:
    """``padding_idx`` in [0, num_embeddings) (negative counts from the end), or None."""
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{cls}({num_embeddings}, {embedding_dim}): padding_idx {padding_idx} "
                         "must be within num_embeddings")
    return padding_idx % num_embeddings


class _Table(Module):
    """What Embedding and EmbeddingBag share: the (num_embeddings, embedding_dim) weight, its
    PyTorch initialisation N(0, 1) with the ``padding_idx`` row zeroed, and the options."""

    def _setup(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int],
               max_norm: Optional[float], norm_type: float, scale_grad_by_freq: bool,
               sparse: bool, _weight: Optional[Tensor], requires_grad: bool, device: Any,
               dtype: Any) -> None:
        cls = type(self).__name__
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = _padding_index(cls, num_embeddings, embedding_dim, padding_idx)
        if max_norm is not None or scale_grad_by_freq:
            raise NotImplementedError(f"[{cls}] max_norm and scale_grad_by_freq are not "
                                      "supported")
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            self.weight = Parameter(empty_param_data((num_embeddings, embedding_dim), device,
                                                     dtype), requires_grad=requires_grad)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError("Shape of weight does not match num_embeddings and "
                                 f"embedding_dim: {tuple(_weight.shape)} vs "
                                 f"{(num_embeddings, embedding_dim)}")
            self.weight = Parameter(_weight, requires_grad=requires_grad)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            with no_grad():
                _C.fill_(_C.select(self.weight, 0, self.padding_idx), 0.0)


class Embedding(_Table):
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by integer indices.

    Initialisation (PyTorch's): N(0, 1), with the ``padding_idx`` row zeroed; that row gets no
    gradient. ``sparse=True`` is accepted but gradients are dense (any optimizer works).
    """

    __constants__ = ["num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type",
                     "scale_grad_by_freq", "sparse"]

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 padding_idx: Optional[int] = None, max_norm: Optional[float] = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Optional[Tensor] = None, _freeze: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        self._setup(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                    scale_grad_by_freq, sparse, _weight, not _freeze, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        try:
            return embedding_functional(input, self.weight, self.padding_idx)
        except IndexError as err:
            raise _layer_error(IndexError, f"{self!r}: index out of range (valid indices are "
                                           f"0..{self.num_embeddings - 1}): {err}") from err
        except (TypeError, ValueError) as err:
            raise _layer_error(type(err), f"{self!r}: expected integer indices: {err}") from err

    def _short_description(self) -> str:
        return f"Embedding {self.num_embeddings}x{self.embedding_dim}"

    def extra_repr(self) -> str:
        s = "{num_embeddings}, {embedding_dim}"
        if self.padding_idx is not None:
            s += ", padding_idx={padding_idx}"
        if self.max_norm is not None:
            s += ", max_norm={max_norm}"
        if self.norm_type != 2:
            s += ", norm_type={norm_type}"
        if self.scale_grad_by_freq is not False:
            s += ", scale_grad_by_freq={scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s.format(**self.__dict__)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: Optional[int] = None, max_norm: Optional[float] = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> "Embedding":
        """An Embedding whose weight is ``embeddings`` (2-D; frozen unless ``freeze=False``)."""
        if embeddings.dim() != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional, got shape "
                             f"{tuple(embeddings.shape)}")
        rows, cols = embeddings.shape
        return cls(num_embeddings=rows, embedding_dim=cols, _weight=embeddings, _freeze=freeze,
                   padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


class EmbeddingBag(_Table):
    """Sums, means or maxima of bags of embedding rows (F.embedding_bag), without the
    (bags, bag length, dim) intermediate of Embedding followed by a reduction.

    Initialisation (PyTorch's): N(0, 1), with the ``padding_idx`` row zeroed; entries equal to
    ``padding_idx`` are left out of their bag.
    """

    __constants__ = ["num_embeddings", "embedding_dim", "max_norm", "norm_type",
                     "scale_grad_by_freq", "mode", "sparse", "include_last_offset",
                     "padding_idx"]

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 max_norm: Optional[float] = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                 _weight: Optional[Tensor] = None, include_last_offset: bool = False,
                 padding_idx: Optional[int] = None, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag({num_embeddings}, {embedding_dim}): mode must be "
                             f"'sum', 'mean' or 'max', got {mode!r}")
        self.mode = mode
        self.include_last_offset = include_last_offset
        self._setup(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                    scale_grad_by_freq, sparse, _weight, True, device, dtype)

    def forward(self, input: Tensor, offsets: Optional[Tensor] = None,
                per_sample_weights: Optional[Tensor] = None) -> Tensor:
        from ..functional import embedding_bag
        try:
            return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                                 self.scale_grad_by_freq, self.mode, self.sparse,
                                 per_sample_weights, self.include_last_offset, self.padding_idx)
        except IndexError as err:
            raise _layer_error(IndexError, f"{self!r}: index out of range (valid indices are "
                                           f"0..{self.num_embeddings - 1}): {err}") from err

    def _short_description(self) -> str:
        return f"EmbeddingBag {self.num_embeddings}x{self.embedding_dim} ({self.mode})"

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        max_norm: Optional[float] = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, mode: str = "mean",
                        sparse: bool = False, include_last_offset: bool = False,
                        padding_idx: Optional[int] = None) -> "EmbeddingBag":
        """An EmbeddingBag whose weight is ``embeddings`` (2-D; frozen unless freeze=False)."""
        if embeddings.dim() != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional, got shape "
                             f"{tuple(embeddings.shape)}")
        rows, cols = embeddings.shape
        bag = cls(rows, cols, max_norm=max_norm, norm_type=norm_type,
                  scale_grad_by_freq=scale_grad_by_freq, mode=mode, sparse=sparse,
                  _weight=embeddings, include_last_offset=include_last_offset,
                  padding_idx=padding_idx)
        bag.weight.requires_grad = not freeze
        return bag
