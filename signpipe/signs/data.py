"""Isolated-signs sequences in memory, and the batches training and validation iterate over.

A sequence is kept as its 88 key points' raw x, y (`[T, 88, 2]` float32, NaN where MediaPipe found
nothing), centre-cropped to `max_frames`: about 700 bytes a frame, so the full 94k-sequence corpus
fits in a few GB. Everything else (y scale, normalization, augmentation, features) happens inside
the jitted step on the device, with the functions the exported graph uses (`signpipe.signs.features`).

A batch is a dict of numpy arrays:

| key     | shape / dtype         | meaning                                        |
|---------|-----------------------|------------------------------------------------|
| points  | [B, T, 88, 2] f32     | raw key points; NaN where missing, 0 at padding |
| mask    | [B, T] bool           | real frames                                    |
| labels  | [B] int32             | class index of the sign                        |
| weights | [B] f32               | 1 for a real sequence, 0 for batch filling     |

T is the longest sequence of the batch rounded up to `length_bucket`, so the step compiles for a
handful of shapes. `SignBatches` is deterministic and restorable like the fingerspelling recipe's `TrainBatches`:
batch k of epoch e holds rows `permutation(seed, e)[k*B:(k+1)*B]`, and its state is (epoch,
position, seed), saved in every checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from signpipe.data.corpus import quote_items
from signpipe.data.sequence import LandmarkSequence
from signpipe.errors import ConfigError, CorpusError, Problem, SignpipeError
from signpipe.signs import features
from signpipe.train.batching import Batch, IteratorState, bucket_length, length_sorted_batches, restorable



@dataclass(frozen=True)
class SignSequences:
    """Sequences of one split: raw key points (x, y), labels and ids, in metadata order."""

    points: list[np.ndarray]
    labels: np.ndarray
    sequence_ids: np.ndarray
    participant_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.points)

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.array([len(p) for p in self.points], dtype=np.int64)


def sign_labels(signs: pd.Series, label_map: Mapping[str, int], where: str) -> np.ndarray:
    """Signs -> class indices; a sign the map lacks is a corpus error naming it."""
    labels = signs.map(label_map)
    unknown = signs[labels.isna()].unique()
    if len(unknown):
        raise CorpusError(Problem(where, f"expected signs of the label map ({len(label_map)} signs), "
                                         f"found {quote_items(map(repr, unknown))}"))
    return labels.to_numpy(dtype=np.int32)


def read_sign_sequences(corpus, rows: pd.DataFrame, max_frames: int = features.MAX_FRAMES) -> SignSequences:
    """The key points of `rows` (metadata rows of an asl-signs corpus), centre-cropped."""
    if len(rows) == 0:
        raise SignpipeError(f"{corpus.root}: no sequences selected (expected at least one)")
    labels = sign_labels(rows["sign"], corpus.label_map, str(corpus.root / "train.csv"))
    cropped = {
        sequence.sequence_id: np.ascontiguousarray(features.center_crop(sequence.frames[..., :2], max_frames))
        for sequence in corpus.iter_sequences(points=features.KEY_POINTS, sequence_ids=rows["sequence_id"].to_numpy())
    }
    by_row = [cropped[int(s)] for s in rows["sequence_id"]]
    return SignSequences(
        by_row, labels, rows["sequence_id"].to_numpy(np.int64), rows["participant_id"].to_numpy(np.int64)
    )


def hand_sequences(corpus, rows: pd.DataFrame, limit: int, seed: int) -> Iterator[LandmarkSequence]:
    """Both hands (x, y, z) of at most `limit` of `rows` (a seeded subset): the y-scale estimate's input."""
    ids = rows["sequence_id"].to_numpy()
    if len(ids) > limit:
        ids = np.random.default_rng(seed).choice(ids, size=limit, replace=False)
    return corpus.iter_sequences(points=features.KEY_POINTS[: 2 * features.HAND_SIZE], sequence_ids=ids)


def collate(points: list[np.ndarray], labels: np.ndarray, length: int, weights: np.ndarray | None = None) -> Batch:
    n = len(points)
    out = np.zeros((n, length, features.N_KEY_POINTS, 2), np.float32)
    n_frames = np.array([len(p) for p in points], dtype=np.int64)
    if np.any(n_frames > length):
        raise ValueError(f"a sequence of {n_frames.max()} frames does not fit a batch of length {length}")
    mask = np.arange(length)[None, :] < n_frames[:, None]
    if n:
        out[mask] = np.concatenate(points)
    return {
        "points": out,
        "mask": mask,
        "labels": np.asarray(labels, np.int32),
        "weights": np.ones(n, np.float32) if weights is None else np.asarray(weights, np.float32),
    }


class SignBatches(Iterator[Batch]):
    """Endless shuffled training batches with an exact, restorable position (see the module
    docstring). Each epoch drops `len % batch_size` random sequences, so every step has a full
    batch; `rows` picks this host's rows of each global batch."""

    def __init__(self, sequences: SignSequences, batch_size: int, length_bucket: int, max_frames: int, seed: int,
                 rows: slice | None = None):
        if len(sequences) < batch_size:
            raise ConfigError(
                f"the training split has {len(sequences)} sequences, fewer than batch_size={batch_size} "
                "(use a smaller batch_size or more data)"
            )
        self.sequences = sequences
        self.batch_size = batch_size
        self.length_bucket = length_bucket
        self.max_frames = max_frames
        self.rows = rows if rows is not None else slice(0, batch_size)
        self.batches_per_epoch = len(sequences) // batch_size
        self._state = IteratorState(0, 0, seed)

    @property
    def state(self) -> IteratorState:
        return self._state

    def restore(self, state: IteratorState) -> None:
        self._state = restorable(state, self._state.seed, self.batches_per_epoch)

    def batch_rows(self, state: IteratorState) -> np.ndarray:
        order = np.random.default_rng([state.seed, state.epoch]).permutation(len(self.sequences))
        return order[state.position * self.batch_size : (state.position + 1) * self.batch_size]

    def __next__(self) -> Batch:
        state = self._state
        rows = self.batch_rows(state)
        self._state = state.advanced(self.batches_per_epoch)
        if self.rows == slice(0, self.batch_size):
            length = bucket_length(int(self.sequences.lengths[rows].max()), self.length_bucket, self.max_frames)
        else:  # all hosts must agree on the shape without seeing each other's rows
            length = bucket_length(self.max_frames, self.length_bucket)
        local = rows[self.rows]
        return collate([self.sequences.points[i] for i in local], self.sequences.labels[local], length)


def evaluation_batches(
    sequences: SignSequences, batch_size: int, length_bucket: int, rows: slice | None = None
) -> Iterator[tuple[Batch, np.ndarray]]:
    """Every sequence once, in batches of exactly `batch_size` sorted by length (the last filled with
    zero-weight copies); yields (batch, indices of its real rows)."""
    for batch in length_sorted_batches(sequences.lengths, batch_size, length_bucket, rows):
        yield collate([sequences.points[i] for i in batch.rows], sequences.labels[batch.rows], batch.length,
                      batch.weights), batch.real
