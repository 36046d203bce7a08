"""Variable-length sequences for the recurrent layers: PackedSequence and its helpers.

The packed layout is torch's: the time steps one after the other, step t holding the first
``batch_sizes[t]`` sequences of a batch sorted by decreasing length. ``sorted_indices`` maps a
sorted position to the original batch index, ``unsorted_indices`` is its inverse.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..._C import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "pack_sequence", "unpad_sequence", "unpack_sequence", "invert_permutation"]


def _dc():
    import deepcore
    return deepcore


def _index(values: Sequence[int]) -> Tensor:
    return _dc().tensor(np.asarray(values, dtype=np.int64))


def invert_permutation(permutation: Optional[Tensor]) -> Optional[Tensor]:
    """The inverse of a permutation given as an index tensor (None stays None)."""
    if permutation is None:
        return None
    p = np.asarray(permutation.tolist(), dtype=np.int64)
    inv = np.empty_like(p)
    inv[p] = np.arange(p.size, dtype=np.int64)
    return _index(inv)


_PackedSequenceBase = namedtuple("PackedSequence",
                                 ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])


class PackedSequence(_PackedSequenceBase):
    """The packed steps of a batch of sequences (see the module docstring); build it with
    pack_padded_sequence or pack_sequence, never by hand."""

    def __new__(cls, data: Tensor, batch_sizes: Optional[Tensor] = None,
                sorted_indices: Optional[Tensor] = None,
                unsorted_indices: Optional[Tensor] = None) -> "PackedSequence":
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:  # PackedSequence((data, batch_sizes, ...)) as torch allows
            data, batch_sizes, *rest = data
            if rest:
                sorted_indices = rest[0]
                unsorted_indices = rest[1] if len(rest) > 1 else invert_permutation(rest[0])
        if not isinstance(batch_sizes, Tensor):
            batch_sizes = _index(list(batch_sizes))
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args: Any, **kwargs: Any) -> "PackedSequence":
        """``data.to(...)``; the index tensors move with it when the device changes (torch keeps
        batch_sizes on the CPU)."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        device = data.device

        def move(t):
            return None if t is None else t.to(device)
        return type(self)(data, self.batch_sizes, move(self.sorted_indices),
                          move(self.unsorted_indices))

    def cpu(self) -> "PackedSequence":
        return self.to("cpu")

    def double(self) -> "PackedSequence":
        return self.to(dtype=_dc().float64)

    def float(self) -> "PackedSequence":
        return self.to(dtype=_dc().float32)

    @property
    def is_cuda(self) -> bool:
        return self.data.device.type == "cuda"

    def is_pinned(self) -> bool:
        return False


def _lengths_list(lengths: Union[Tensor, Sequence[int]]) -> List[int]:
    if isinstance(lengths, Tensor):
        if lengths.dim() != 1:
            raise ValueError(f"[pack_padded_sequence] lengths must be 1-D, got shape "
                             f"{tuple(lengths.shape)}")
        return [int(v) for v in lengths.tolist()]
    try:
        import torch
        if isinstance(lengths, torch.Tensor):
            return [int(v) for v in lengths.tolist()]
    except ImportError:
        pass
    return [int(v) for v in lengths]


def _batch_sizes(sorted_lengths: Sequence[int]) -> List[int]:
    """batch_sizes[t] = how many of the (decreasing) lengths exceed t."""
    steps = sorted_lengths[0] if sorted_lengths else 0
    ls = np.asarray(sorted_lengths, dtype=np.int64)
    return [int((ls > t).sum()) for t in range(steps)]


def pack_padded_sequence(input: Tensor, lengths: Union[Tensor, Sequence[int]],
                         batch_first: bool = False, enforce_sorted: bool = True
                         ) -> PackedSequence:
    """Packs a padded batch (T, B, *) (or (B, T, *) with batch_first) of sequences of the given
    lengths. With enforce_sorted the lengths must be in decreasing order; otherwise the batch
    is sorted here and the permutation kept in the result."""
    lens = _lengths_list(lengths)
    batch_dim = 0 if batch_first else 1
    if input.dim() < 2:
        raise ValueError(f"[pack_padded_sequence] input must have at least 2 dims (time and "
                         f"batch), got shape {tuple(input.shape)}")
    B, T = input.shape[batch_dim], input.shape[1 - batch_dim]
    if len(lens) != B:
        raise ValueError(f"[pack_padded_sequence] expected {B} lengths for input of shape "
                         f"{tuple(input.shape)} (batch_first={batch_first}), got {len(lens)}")
    if any(n <= 0 for n in lens):
        raise ValueError(f"[pack_padded_sequence] every length must be greater than 0, got "
                         f"{lens}")
    if max(lens) > T:
        raise ValueError(f"[pack_padded_sequence] a length of {max(lens)} exceeds the "
                         f"{T} time steps of input of shape {tuple(input.shape)}")
    if enforce_sorted:
        if any(lens[i] < lens[i + 1] for i in range(B - 1)):
            raise ValueError(f"[pack_padded_sequence] lengths must be sorted in decreasing "
                             f"order when enforce_sorted=True, got {lens}; pass "
                             "enforce_sorted=False to pack unsorted sequences")
        order = list(range(B))
        sorted_indices = None
    else:
        order = sorted(range(B), key=lambda i: -lens[i])  # stable, like torch's sort
        sorted_indices = _index(order)
    sorted_lens = [lens[i] for i in order]
    bs = _batch_sizes(sorted_lens)
    # Row (t, j) of the packed data is input[t, order[j]] for j < bs[t]: one gather.
    rows = [t * B + order[j] if not batch_first else order[j] * T + t
            for t in range(len(bs)) for j in range(bs[t])]
    flat = input.reshape([B * T] + list(input.shape[2:]))
    data = flat.index_select(0, _index(rows).to(input.device))
    return PackedSequence(data, _index(bs), sorted_indices, invert_permutation(sorted_indices))


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: Optional[int] = None
                        ) -> Tuple[Tensor, Tensor]:
    """The inverse of pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths), in the
    original batch order, padded to total_length steps if given."""
    data, batch_sizes = sequence.data, [int(v) for v in sequence.batch_sizes.tolist()]
    steps = len(batch_sizes)
    B = batch_sizes[0] if steps else 0
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"[pad_packed_sequence] expected total_length to be at least the "
                             f"length of the longest sequence ({steps}), got {total_length}")
        steps_out = total_length
    else:
        steps_out = steps
    bs = np.asarray(batch_sizes, dtype=np.int64)
    slots = np.arange(B, dtype=np.int64)
    lengths = (bs[None, :] > slots[:, None]).sum(1)  # of sorted slot j
    unsorted = (slots if sequence.unsorted_indices is None
                else np.asarray(sequence.unsorted_indices.tolist(), dtype=np.int64))
    offsets = np.concatenate([[0], np.cumsum(bs)]).astype(np.int64)
    N = int(offsets[-1])
    # Output position (t, b) reads packed row offsets[t] + j of sorted slot j = unsorted[b],
    # or the padding row N past the data.
    idx = np.full((steps_out, B), N, dtype=np.int64)
    idx[:steps] = np.where(slots[None, :] < bs[:, None], offsets[:-1, None] + slots[None, :],
                           N)[:, unsorted]
    if batch_first:
        idx = idx.T
    dc = _dc()
    pad = dc.full([1] + list(data.shape[1:]), padding_value, dtype=data.dtype,
                  device=data.device)
    padded = dc.cat([data, pad]).index_select(0, _index(idx.reshape(-1)).to(data.device))
    padded = padded.reshape(list(idx.shape) + list(data.shape[1:]))
    out_lengths = _index(lengths[unsorted])
    return padded, out_lengths


def pad_sequence(sequences: Iterable[Tensor], batch_first: bool = False,
                 padding_value: float = 0.0, padding_side: str = "right") -> Tensor:
    """Stacks tensors of shape (L_i, *) into (max L, B, *) (or (B, max L, *)), padding each at
    the end (padding_side='right') or the start ('left') with padding_value."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"[pad_sequence] padding_side must be 'left' or 'right', got "
                         f"{padding_side!r}")
    seqs = list(sequences)
    if not seqs:
        raise ValueError("[pad_sequence] received an empty list of sequences")
    dc = _dc()
    trailing = list(seqs[0].shape[1:])
    for s in seqs:
        if list(s.shape[1:]) != trailing:
            raise ValueError(f"[pad_sequence] every sequence must have trailing shape "
                             f"{tuple(trailing)}, got {tuple(s.shape)}")
    longest = max(s.shape[0] for s in seqs)
    padded = []
    for s in seqs:
        extra = longest - s.shape[0]
        if extra:
            fill = dc.full([extra] + trailing, padding_value, dtype=s.dtype, device=s.device)
            s = dc.cat([s, fill] if padding_side == "right" else [fill, s])
        padded.append(s)
    return dc.stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences: Tensor, lengths: Union[Tensor, Sequence[int]],
                   batch_first: bool = False) -> List[Tensor]:
    """The inverse of pad_sequence: the list of (L_i, *) sequences."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[i, :n] for i, n in enumerate(_lengths_list(lengths))]


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Packs a list of (L_i, *) tensors (by decreasing length when enforce_sorted)."""
    lengths = [int(s.shape[0]) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> List[Tensor]:
    """The inverse of pack_sequence: the list of (L_i, *) tensors in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
