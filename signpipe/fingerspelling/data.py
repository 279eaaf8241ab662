"""Batches for CTC training and validation, from feature shards.

Each sequence goes: raw input points `[T, 96, 3]` (the shard) -> `features.featurize` (y scale,
dominant hand, per-group normalization; `[T, 75, 3]`) -> for training, the seed's augmentation
pipeline (`signpipe.landmarks.augment.default_pipeline`) -> model input `[T, 225]`, the 75 points'
x, y, z point after point (`FEATURES_PER_FRAME`), which is the layout the exported graph feeds the
model too.

Batches are padded in time to a multiple of `length_bucket` (at most `max_length` in training),
so the train step is compiled for a handful of shapes, not one per batch. A batch is a dict of
numpy arrays:

| key          | shape / dtype    | meaning                                             |
|--------------|------------------|-----------------------------------------------------|
| inputs       | [B, T, 225] f32  | features, 0 at padded frames                        |
| mask         | [B, T] bool      | real frames                                         |
| labels       | [B, L] int32     | character indices, 0 past the label's end           |
| label_mask   | [B, L] bool      | real label positions (L = `max_label_length`)       |
| weights      | [B] f32          | 1 for a real sequence, 0 for batch padding          |

Sequences too short for their label are dropped and counted when a split is loaded: CTC needs a
frame per character plus a blank between repeated characters (`ctc_min_frames`), and cannot
emit the phrase at all in fewer frames (the seed dropped sequences with fewer frames than
characters; this is the same rule made exact).

`TrainBatches` is deterministic and checkpointable: batch k of epoch e holds the rows
`permutation(seed, e)[k*B:(k+1)*B]`, and each row is augmented with a generator seeded by
`(seed, e, k, row)`. Its whole state is `{"epoch", "position", "seed"}`, so a run restored from a
checkpoint sees exactly the batches it would have seen, and each host of a multi-host job can
build just its own rows of the same global batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from signpipe.data.schema import CHARACTER_MAP_FILE, packaged_map
from signpipe.errors import ConfigError, CorpusError, Problem, SignpipeError
from signpipe.landmarks import features
from signpipe.landmarks.augment import (
    AlignCTCLabel,
    FitLength,
    HorizontalFlip,
    LandmarkGroups,
    Pad,
    RandomInterpolatedRotation,
    RandomResample,
    RandomScale,
    RandomShift,
    Sample,
    Sequential,
    Transform,
    Truncate,
    ctc_min_frames,
    default_pipeline,
    feature_mirror,
)
from signpipe.fingerspelling.shards import load_split, read_checked_manifest
from signpipe.train.batching import Batch, IteratorState, bucket_length, length_sorted_batches, restorable
from signpipe.fingerspelling.config import AUGMENTATIONS

FEATURES_PER_FRAME = features.N_FEATURES


def augmentation_pipeline(name: str, max_length: int, augment: bool = True) -> Transform:
    """The per-sample transform of training batches, ending in `Pad(max_length)`.

    - "seed": the seed's full pipeline (`default_pipeline`): time flips, resampling, frame and
      feature masking, noise, large 3-D rotations. Built for hundreds of epochs; in a run of a
      few thousand steps it slows learning more than it helps.
    - "light": the seed's geometric transforms at about half their ranges, milder resampling, no
      masking, noise or time flip: enough variety to keep a small model from memorizing a small
      corpus in a short run (the smoke and local presets). A sequence longer than `max_length`
      is squeezed in time to fit (`FitLength`) rather than cut, so its label stays true.
    `augment=False` keeps only what every batch needs: truncate, fit the label, pad.
    """
    if not augment:
        return default_pipeline(max_length, train=False)
    if name == "seed":
        return default_pipeline(max_length, train=True)
    if name == "light":
        groups = features.GROUPS
        return Sequential(
            RandomResample(limit=0.2, p=0.5),
            FitLength(max_length),
            Truncate(max_length),
            AlignCTCLabel(max_length),
            HorizontalFlip(lengths=groups, mirror=feature_mirror(), p=0.5),
            LandmarkGroups(
                Sequential(
                    RandomInterpolatedRotation(0.1, np.pi / 8, p=0.5),
                    RandomScale(limit=0.1),
                    RandomShift(stdev=0.05),
                ),
                lengths=groups,
            ),
            Pad(max_length),
        )
    raise ConfigError(f"augmentation {name!r}: expected one of {list(AUGMENTATIONS)}")


@dataclass(frozen=True)
class LabelledSplit:
    """One split of a shard directory, featurized: what training and validation iterate over."""

    name: str
    features: list[np.ndarray]
    """`[T, 75, 3]` float32 per sequence (`features.featurize` of its raw points)."""
    labels: list[np.ndarray]
    """Character indices (int32) per sequence."""
    phrases: list[str]
    sequence_ids: np.ndarray
    n_dropped_too_short: int
    """Sequences left out because they have fewer frames than CTC needs for their phrase."""

    def __len__(self) -> int:
        return len(self.features)

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.array([len(f) for f in self.features], dtype=np.int64)


def character_map_of(shard_dir: str | Path, manifest: Mapping[str, Any]) -> dict[str, int]:
    """The label map the shards were written with (the manifest's), else the competition's own."""
    label_map = manifest.get("label_map")
    if label_map:
        return {str(k): int(v) for k, v in label_map.items()}
    return packaged_map(CHARACTER_MAP_FILE)


def encode_phrase(phrase: str, character_map: Mapping[str, int], where: str) -> np.ndarray:
    """Phrase -> int32 character indices; an unknown character is a user error naming its place."""
    try:
        return np.array([character_map[c] for c in phrase], dtype=np.int32)
    except KeyError as exc:
        raise SignpipeError(
            f"{where}: phrase {phrase!r} has character {exc.args[0]!r}, which the character map does not hold"
        ) from None


def non_finite_problem(raw: np.ndarray, featurized: np.ndarray, where: str) -> Problem | None:
    """A problem when a sequence's features are not all finite: raw landmarks with +-inf (NaN is a
    missing landmark, which `featurize` handles) or too large to normalize. Such a sequence makes
    the loss NaN at the first batch that holds it, so the loaders refuse it up front."""
    if np.isfinite(featurized).all():
        return None
    infinite = np.argwhere(np.isinf(raw))
    if len(infinite):
        frame, point = int(infinite[0][0]), int(infinite[0][1])
        detail = f"{len(infinite)} infinite coordinate(s), the first at frame {frame}, input point {point}"
    else:
        detail = f"coordinates too large to normalize (largest |value| {float(np.nanmax(np.abs(raw))):.3g})"
    return Problem(where, f"non-finite features: {detail}; expected finite coordinates (NaN where a landmark is "
                          "missing). Fix or drop the sequence")  # fmt: skip


def load_labelled_split(shard_dir: str | Path, split: str, max_label_length: int) -> LabelledSplit:
    """Read, check and featurize one split of a fingerspelling shard directory."""
    shard_dir = Path(shard_dir)
    manifest = read_checked_manifest(shard_dir, "CTC finetuning")
    where = shard_dir / "manifest.json"
    y_scale = manifest["y_scale"]
    character_map = character_map_of(shard_dir, manifest)
    sequences = load_split(shard_dir, split)
    if not sequences:
        raise SignpipeError(f"{where}: split {split!r} holds no sequences")
    kept_features, labels, phrases, ids = [], [], [], []
    dropped = 0
    non_finite: list[Problem] = []
    for seq in sequences:
        label = encode_phrase(seq.label, character_map, f"{shard_dir} ({split}) sequence {seq.sequence_id}")
        if label.size > max_label_length:
            raise SignpipeError(
                f"{shard_dir} ({split}) sequence {seq.sequence_id}: phrase of {label.size} characters, "
                f"longer than max_label_length={max_label_length} (raise it with max_label_length=N)"
            )
        if label.size == 0:
            raise SignpipeError(f"{shard_dir} ({split}) sequence {seq.sequence_id}: empty phrase (expected 1+ characters)")
        if len(seq.frames) < ctc_min_frames(label):
            dropped += 1
            continue
        with np.errstate(invalid="ignore", over="ignore"):  # inf: reported below, by sequence
            featurized = features.featurize(seq.frames, y_scale, xp=np)
        problem = non_finite_problem(seq.frames, featurized, f"{shard_dir} ({split}) sequence {seq.sequence_id}")
        if problem is not None:
            non_finite.append(problem)
        kept_features.append(featurized)
        labels.append(label)
        phrases.append(seq.label)
        ids.append(seq.sequence_id)
    if non_finite:
        raise CorpusError(non_finite)
    if not kept_features:
        raise SignpipeError(f"{where}: every sequence of split {split!r} is shorter than its phrase")
    return LabelledSplit(split, kept_features, labels, phrases, np.asarray(ids, np.int64), dropped)


def _label_arrays(labels: Sequence[np.ndarray], max_label_length: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(label) for label in labels], dtype=np.int64)
    label_mask = np.arange(max_label_length)[None, :] < lengths[:, None]
    padded = np.zeros((len(labels), max_label_length), dtype=np.int32)
    if len(labels):
        padded[label_mask] = np.concatenate(labels)
    return padded, label_mask


def collate(
    samples: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    length: int,
    max_label_length: int,
    weights: np.ndarray | None = None,
) -> Batch:
    """Stack `[T_i, 75, 3]` samples (each at most `length` frames, 0 for missing points) into a batch."""
    n = len(samples)
    inputs = np.zeros((n, length, FEATURES_PER_FRAME), dtype=np.float32)
    n_frames = np.array([len(s) for s in samples], dtype=np.int64)
    mask = np.arange(length)[None, :] < n_frames[:, None]
    if n:
        inputs[mask] = np.concatenate([s.reshape(len(s), FEATURES_PER_FRAME) for s in samples])
    padded_labels, label_mask = _label_arrays(labels, max_label_length)
    return {
        "inputs": inputs,
        "mask": mask,
        "labels": padded_labels,
        "label_mask": label_mask,
        "weights": np.ones(n, np.float32) if weights is None else weights.astype(np.float32),
    }


class TrainBatches(Iterator[Batch]):
    """Endless shuffled, augmented training batches with an exact, restorable position.

    `rows` selects this host's rows of each global batch (`mesh.process_rows`); every host must
    use the same seed. Each epoch drops `len(split) % batch_size` random sequences, so every step
    sees `batch_size` sequences and splits evenly over devices. `length_grouping` > 1 batches
    sequences of similar length together (see `_grouped_by_length`).
    """

    def __init__(
        self,
        split: LabelledSplit,
        batch_size: int,
        max_length: int,
        length_bucket: int,
        max_label_length: int,
        seed: int,
        augment: bool = True,
        rows: slice | None = None,
        length_grouping: int = 1,
        augmentation: str = "seed",
    ):
        if len(split) < batch_size:
            raise ConfigError(
                f"training split has {len(split)} sequences, fewer than batch_size={batch_size} "
                "(use a smaller batch_size or more data)"
            )
        self.split = split
        self.batch_size = batch_size
        self.max_length = max_length
        self.length_bucket = length_bucket
        self.max_label_length = max_label_length
        self.rows = rows if rows is not None else slice(0, batch_size)
        self.length_grouping = length_grouping
        self.pipeline = augmentation_pipeline(augmentation, max_length, augment)
        self.batches_per_epoch = len(split) // batch_size
        self._state = IteratorState(0, 0, seed)
        self._order_epoch = -1
        self._order = np.zeros(0, np.int64)

    @property
    def state(self) -> IteratorState:
        return self._state

    def restore(self, state: IteratorState) -> None:
        self._state = restorable(state, self._state.seed, self.batches_per_epoch)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The rows of every batch of `epoch`, batch after batch (a function of seed and epoch only)."""
        if epoch != self._order_epoch:
            rng = np.random.default_rng([self._state.seed, epoch])
            order = rng.permutation(len(self.split))[: self.batches_per_epoch * self.batch_size]
            self._order = self._grouped_by_length(order, rng) if self.length_grouping > 1 else order
            self._order_epoch = epoch
        return self._order

    def _grouped_by_length(self, order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sort each window of `length_grouping` batches by length, cut it into batches, and shuffle
        those batches: a batch then holds sequences of similar length and pads little, while which
        sequences meet in a window, and the order of batches, stay random."""
        window = self.length_grouping * self.batch_size
        lengths = self.split.lengths
        grouped = []
        for start in range(0, len(order), window):
            rows = order[start : start + window]
            rows = rows[np.argsort(lengths[rows], kind="stable")].reshape(-1, self.batch_size)
            grouped.append(rows[rng.permutation(len(rows))].reshape(-1))
        return np.concatenate(grouped)

    def batch_rows(self, state: IteratorState) -> np.ndarray:
        """Indices into the split of the global batch at `state` (all hosts)."""
        start = state.position * self.batch_size
        return self.epoch_order(state.epoch)[start : start + self.batch_size]

    def _augmented(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        sample = self.pipeline(Sample(self.split.features[index], self.split.labels[index]), rng)
        return sample.points[: sample.length], sample.label

    def __next__(self) -> Batch:
        state = self._state
        global_rows = self.batch_rows(state)
        samples, labels = [], []
        for row in range(self.batch_size)[self.rows]:
            rng = np.random.default_rng([state.seed, state.epoch, state.position, row])
            points, label = self._augmented(int(global_rows[row]), rng)
            samples.append(points)
            labels.append(label)
        self._state = state.advanced(self.batches_per_epoch)
        if self.rows == slice(0, self.batch_size):  # this host builds the whole batch
            longest = max(len(points) for points in samples)
        else:  # other hosts' augmented lengths are unknown here; all hosts must agree on the shape
            longest = self.max_length
        return collate(samples, labels, bucket_length(longest, self.length_bucket, self.max_length), self.max_label_length)


def validation_batches(
    split: LabelledSplit,
    batch_size: int,
    length_bucket: int,
    max_label_length: int,
    rows: slice | None = None,
) -> Iterator[tuple[Batch, np.ndarray]]:
    """Every validation sequence once, un-augmented and never truncated, in batches of exactly
    `batch_size` (the last filled with zero-weight copies) sorted by length so each batch pads
    little; yields (batch, split indices of its real rows). Hosts get their `rows` of each batch."""
    for batch in length_sorted_batches(split.lengths, batch_size, length_bucket, rows):
        yield collate([split.features[i] for i in batch.rows], [split.labels[i] for i in batch.rows], batch.length,
                      max_label_length, batch.weights), batch.real
