"""Transforms that change time: what happens to the frames happens to the label and alignment too."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signpipe.data.schema import CTC_BLANK
from signpipe.errors import ConfigError, SignpipeError
from signpipe.landmarks.augment.sample import Sample, collapse_alignment, ctc_min_frames
from signpipe.landmarks.augment.transform import Transform, require_in_range


def _require_unpadded(sample: Sample, owner: object) -> None:
    if sample.mask is not None:
        raise ConfigError(f"{type(owner).__name__} moves frames, so it must run before Pad")


def _alignment_runs(alignment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start frame and value of each run of equal consecutive entries."""
    starts = np.flatnonzero(np.concatenate(([True], alignment[1:] != alignment[:-1])))
    return starts, alignment[starts]


def _source_frames(n_source: int, n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source position of each of `n_frames` output frames, its nearer and its farther neighbour.

    Output frame j sits at j (T-1) / (n_frames-1): first and last frames stay where they are.
    """
    position = np.linspace(0.0, n_source - 1, n_frames) if n_frames > 1 else np.zeros(1)
    before = np.floor(position).astype(np.intp)
    after = np.minimum(before + 1, n_source - 1)
    after_is_nearer = position - before >= 0.5
    return position, np.where(after_is_nearer, after, before), np.where(after_is_nearer, before, after)


def resample_frames(points: np.ndarray, n_frames: int) -> np.ndarray:
    """Stretch `[T, P, 3]` to `n_frames` by linear interpolation; first and last frames are kept.

    A point is interpolated between its two neighbouring source frames when both have it, copied
    from the nearer one when only that one has it, and missing when the nearer one misses it: a
    hand does not fade in from the fill value, and missing stretches keep their length in time.
    Missing points must be NaN.
    """
    position, nearer, farther = _source_frames(points.shape[0], n_frames)
    step = np.abs(position - nearer).astype(np.float32)  # at most 0.5
    start = points[nearer]
    toward = points[farther] - start
    # NaN (either neighbour missing) -> 0: keep the nearer value, which is NaN if that one is missing
    np.nan_to_num(toward, copy=False, nan=0.0)
    return start + step[:, None, None] * toward


def resample_alignment(alignment: np.ndarray, n_frames: int) -> np.ndarray:
    """The per-frame alignment of `resample_frames(points, n_frames)`.

    Each output frame takes the alignment of its nearest source frame, as its coordinates mostly
    do, so every run (a character, or the blank between two characters) keeps its place and order.
    A run shorter than one output frame (a one-frame character squeezed by half) would vanish
    that way and change the spelled label; instead it keeps one frame, taken from its neighbours.
    Needs `n_frames` >= the number of runs.
    """
    starts, values = _alignment_runs(alignment)
    n_runs = starts.size
    if n_frames < n_runs:
        raise ValueError(f"cannot fit an alignment of {n_runs} runs into {n_frames} frames")
    nearest = _source_frames(alignment.size, n_frames)[1]  # non-decreasing
    # a run starts at the first output frame whose nearest source frame is at or past its start
    new_starts = np.searchsorted(nearest, starts)
    rank = np.arange(n_runs)
    # every run at least one frame, and room left for the runs after it
    new_starts = np.maximum.accumulate(new_starts - rank) + rank
    new_starts = np.minimum(new_starts, n_frames - n_runs + rank)
    lengths = np.diff(np.append(new_starts, n_frames))
    return np.repeat(values, lengths).astype(np.int32)


def _resampled(sample: Sample, n_frames: int) -> Sample:
    alignment = sample.alignment
    if alignment is not None:
        alignment = resample_alignment(alignment, n_frames)
    return Sample.unchecked(resample_frames(sample.points, n_frames), sample.label, alignment)


@dataclass(frozen=True)
class TimeFlip(Transform):
    """Play the sequence backwards: frames, the phrase and the alignment all reversed.

    A reversed video spells the reversed phrase, so the pair stays a true example (of a different
    phrase); it doubles the motions seen without inventing any.
    """

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        _require_unpadded(sample, self)
        alignment = None if sample.alignment is None else sample.alignment[::-1].copy()
        return Sample.unchecked(np.ascontiguousarray(sample.points[::-1]), sample.label[::-1].copy(), alignment)


@dataclass(frozen=True)
class RandomResample(Transform):
    """Sign faster or slower: stretch time by a factor drawn from [1 - limit, 1 + limit].

    The new length is round(T * factor), but never below the number of alignment runs, so no
    aligned character loses its last frame (`AlignCTCLabel` handles labels without alignment).
    """

    limit: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        require_in_range(self, "limit", self.limit, 0.0, 0.99)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        _require_unpadded(sample, self)
        factor = 1.0 + rng.uniform(-self.limit, self.limit)
        n_frames = max(int(round(sample.n_frames * factor)), 1)
        if sample.alignment is not None:
            n_frames = max(n_frames, _alignment_runs(sample.alignment)[0].size)
        if n_frames == sample.n_frames:
            return sample
        return _resampled(sample, n_frames)


@dataclass(frozen=True)
class FitLength(Transform):
    """Squeeze a sequence longer than `max_length` frames into `max_length` by resampling time.

    Where `Truncate` would cut the end of a long sequence off while its label keeps every
    character (the model would then be asked to spell letters it never saw), this keeps all of
    them, signed faster; an alignment is resampled with the frames. A sequence whose alignment
    needs more runs than `max_length` is left for `Truncate`.
    """

    max_length: int = 512

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_length < 1:
            raise ConfigError(f"FitLength: max_length must be >= 1, got {self.max_length}")

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        _require_unpadded(sample, self)
        if sample.n_frames <= self.max_length:
            return sample
        if sample.alignment is not None and _alignment_runs(sample.alignment)[0].size > self.max_length:
            return sample
        return _resampled(sample, self.max_length)


@dataclass(frozen=True)
class Truncate(Transform):
    """Keep the first `max_length` frames.

    With an alignment the label becomes what the kept frames spell (characters whose every frame
    was cut are dropped; a character cut halfway stays). Without one there is no way to know which
    characters were lost, so the label is kept whole, as the seed did.
    """

    max_length: int = 512

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_length < 1:
            raise ConfigError(f"Truncate: max_length must be >= 1, got {self.max_length}")

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        _require_unpadded(sample, self)
        if sample.n_frames <= self.max_length:
            return sample
        alignment, label = sample.alignment, sample.label
        if alignment is not None:
            alignment = alignment[: self.max_length].copy()
            label = collapse_alignment(alignment)
        return Sample.unchecked(sample.points[: self.max_length].copy(), label, alignment)


@dataclass(frozen=True)
class AlignCTCLabel(Transform):
    """Make sure CTC can emit the label in the frames there are.

    CTC needs `ctc_min_frames(label)` frames (one per character plus a blank between repeated
    characters). A shorter sequence is stretched in time (`resample_frames`) to exactly that many
    frames: the characters are all in the video, just signed fast (or squeezed by
    `RandomResample`), and dropping characters would teach the model to leave letters out. Only
    when even the stretched sequence would exceed `max_length` are trailing characters dropped, the
    fewest that make the label fit. A sample with an alignment always fits already (the alignment
    spells the label in its frames), and an empty label needs nothing.
    """

    max_length: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_length is not None and self.max_length < 1:
            raise ConfigError(f"AlignCTCLabel: max_length must be >= 1 or None, got {self.max_length}")

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        _require_unpadded(sample, self)
        label = sample.label
        needed = ctc_min_frames(label)
        if needed <= sample.n_frames or sample.alignment is not None:
            return sample
        if self.max_length is not None and needed > self.max_length:
            repeats_so_far = np.concatenate(([0], np.cumsum(label[1:] == label[:-1])))
            prefix_needs = np.arange(1, label.size + 1) + repeats_so_far
            label = label[: np.count_nonzero(prefix_needs <= self.max_length)].copy()
            needed = ctc_min_frames(label)
            if needed <= sample.n_frames:
                return Sample.unchecked(sample.points, label)
        return Sample.unchecked(resample_frames(sample.points, needed), label)


@dataclass(frozen=True)
class Pad(Transform):
    """Pad to `max_length` frames and mark the real ones, so samples stack into a batch.

    Missing points and padded frames become `fill_value` (0: the model's one "nothing here"
    value), the alignment is padded with the CTC blank, and `mask` marks the real frames.
    """

    max_length: int = 512
    fill_value: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_length < 1:
            raise ConfigError(f"Pad: max_length must be >= 1, got {self.max_length}")

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        _require_unpadded(sample, self)
        n_frames, n_points = sample.points.shape[:2]
        if n_frames > self.max_length:
            raise SignpipeError(
                f"Pad: sample has {n_frames} frames, more than max_length {self.max_length} "
                "(put Truncate before Pad)"
            )
        points = np.full((self.max_length, n_points, 3), self.fill_value, dtype=np.float32)
        frames = points[:n_frames]
        frames[...] = sample.points
        frames[np.isnan(frames)] = self.fill_value
        mask = np.arange(self.max_length) < n_frames
        alignment = sample.alignment
        if alignment is not None:
            alignment = np.concatenate((alignment, np.full(self.max_length - n_frames, CTC_BLANK, np.int32)))
        return Sample.unchecked(points, sample.label, alignment, mask)
