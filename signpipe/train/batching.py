"""Batching pieces both recipes' data iterators share.

- `IteratorState`: where a restorable training iterator is (epoch, position, seed); saved in
  every checkpoint, so a resumed run sees exactly the batches it would have seen.
- `bucket_length`: the padded length of a batch, rounded up to a bucket so a jitted step compiles
  for a handful of shapes.
- `length_sorted_batches`: every sequence of an evaluation set once, sorted by length, in batches
  of exactly `batch_size` (the last one filled with zero-weight copies).

The recipes' own iterators (`signpipe.fingerspelling.data`, `signpipe.signs.data`) build their
batches from these.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from signpipe.errors import SignpipeError

Batch = dict[str, np.ndarray]
"""A batch: named numpy arrays (each recipe's data module lists its keys)."""


def bucket_length(n_frames: int, bucket: int, cap: int | None = None) -> int:
    """The padded length of a batch whose longest sequence has `n_frames` frames."""
    padded = max(bucket, -(-n_frames // bucket) * bucket)
    return min(padded, cap) if cap is not None else padded


@dataclass(frozen=True)
class IteratorState:
    """Where a training iterator is: the next batch is `position` of `epoch`."""

    epoch: int
    position: int
    seed: int

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def advanced(self, batches_per_epoch: int) -> IteratorState:
        """The state after one more batch: the next position, or the next epoch's first."""
        position = self.position + 1
        if position == batches_per_epoch:
            return IteratorState(self.epoch + 1, 0, self.seed)
        return IteratorState(self.epoch, position, self.seed)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> IteratorState:
        try:
            return cls(int(values["epoch"]), int(values["position"]), int(values["seed"]))
        except (KeyError, TypeError, ValueError):
            raise SignpipeError(f"data-iterator state {dict(values)!r}: expected integers epoch, position, seed") from None


def restorable(state: IteratorState, seed: int, batches_per_epoch: int) -> IteratorState:
    """`state` when a training iterator with `seed` and `batches_per_epoch` can resume from it
    (what a restored checkpoint hands back); refused with why otherwise."""
    if state.seed != seed:
        raise SignpipeError(
            f"data-iterator state has seed {state.seed}, this run uses {seed}; "
            "a checkpoint only resumes the run that wrote it"
        )
    if state.epoch < 0 or not 0 <= state.position < batches_per_epoch:
        raise SignpipeError(
            f"data-iterator state {state.to_dict()} is outside this split "
            f"({batches_per_epoch} batches per epoch); was the checkpoint written for other data?"
        )
    return state


@dataclass(frozen=True)
class SortedBatch:
    """One batch of `length_sorted_batches`: `rows` the set's indices this host collates (real
    rows, then fill), `weights` theirs (1 real, 0 fill), `real` every real index of the global
    batch, `length` the batch's padded length."""

    rows: np.ndarray
    weights: np.ndarray
    real: np.ndarray
    length: int


def length_sorted_batches(lengths: np.ndarray, batch_size: int, length_bucket: int,
                          rows: slice | None = None) -> Iterator[SortedBatch]:
    """Every index of a set whose sequences have `lengths` frames once, sorted by length (stable),
    in batches of exactly `batch_size`; the last batch is filled with zero-weight copies of its
    first row so every batch has one shape per length bucket. `rows` picks this host's rows of
    each global batch."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    rows = rows if rows is not None else slice(0, batch_size)
    for start in range(0, len(order), batch_size):
        real = order[start : start + batch_size]
        filled = np.concatenate([real, np.full(batch_size - len(real), real[0])])
        weights = (np.arange(batch_size) < len(real)).astype(np.float32)
        length = bucket_length(int(np.asarray(lengths)[real].max()), length_bucket)
        yield SortedBatch(filled[rows], weights[rows], real, length)
