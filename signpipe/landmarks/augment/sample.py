"""What flows through the augmentation pipeline, and the conventions every transform keeps.

Missing points. A point is missing when any of its coordinates is NaN (MediaPipe found no hand)
or when all three are exactly 0 (the features module writes 0 for missing points after
normalization, and a real point never lands exactly on the group's centre). Building a `Sample`
turns every missing point into (NaN, NaN, NaN), and inside the pipeline NaN is the only mark of
a missing point: arithmetic carries it along, so no transform can move a fill value somewhere
plausible and make a missing point look present (rotating a 0-filled point about any centre but
the origin would). Masking transforms hide points by writing NaN. `Pad`, the last step, writes 0
for every missing point, so the model sees the features module's fill value again.

Labels. `label` holds character indices (0-58 for fingerspelling, empty for unlabeled
pretraining). `alignment`, when present, gives one index per frame: the character being spelled,
or the CTC blank; collapsing repeats and dropping blanks gives back `label` exactly (checked when a
`Sample` is built). Transforms that move frames move the alignment with them and keep that
identity, so CutMix can cut labels where it cuts frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from signpipe.data.schema import CTC_BLANK
from signpipe.errors import SignpipeError


def _empty_label() -> np.ndarray:
    return np.zeros(0, dtype=np.int32)


@dataclass(frozen=True, eq=False)
class Sample:
    """One sequence: points `[T, P, 3]` float32, its label and, optionally, a per-frame alignment.

    `mask` is `None` until `Pad` has run; then it marks the real frames (`[max_length]` bool).
    Building a `Sample` copies the points, marks missing ones NaN and checks consistency;
    transforms build their outputs with `unchecked` (they keep the invariants by construction, and
    the tests check that they do).
    """

    points: np.ndarray
    label: np.ndarray = field(default_factory=_empty_label)
    alignment: np.ndarray | None = None
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        points = np.array(self.points, dtype=np.float32)  # a copy: the caller's array is never changed
        if points.ndim != 3 or points.shape[-1] != 3 or points.shape[0] < 1:
            raise SignpipeError(f"sample points: expected [T >= 1, P, 3] (x, y, z), got shape {points.shape}")
        points[missing_points(points)] = np.nan
        label = np.asarray(self.label)
        if label.ndim != 1 or (label.size and (not np.issubdtype(label.dtype, np.integer) or label.min() < 0)):
            raise SignpipeError(f"sample label: expected a 1-D array of non-negative integer indices, got {label!r}")
        label = label.astype(np.int32)
        alignment = self.alignment
        if alignment is not None:
            alignment = np.asarray(alignment)
            if alignment.shape != (points.shape[0],) or not np.issubdtype(alignment.dtype, np.integer):
                raise SignpipeError(
                    f"sample alignment: expected one integer index per frame, shape ({points.shape[0]},), "
                    f"got {alignment.dtype} {alignment.shape}"
                )
            if alignment.min() < 0 or alignment.max() > CTC_BLANK:
                raise SignpipeError(
                    f"sample alignment: expected character indices 0-{CTC_BLANK - 1} or the blank {CTC_BLANK}, "
                    f"got values {alignment.min()}..{alignment.max()}"
                )
            alignment = alignment.astype(np.int32)
            collapsed = collapse_alignment(alignment)
            if not np.array_equal(collapsed, label):
                raise SignpipeError(
                    f"sample alignment: collapsing it (repeats merged, blanks dropped) gives {collapsed.tolist()}, "
                    f"expected the label {label.tolist()}"
                )
        mask = self.mask
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (points.shape[0],):
                raise SignpipeError(f"sample mask: expected shape ({points.shape[0]},), got {mask.shape}")
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "alignment", alignment)
        object.__setattr__(self, "mask", mask)

    @classmethod
    def unchecked(
        cls,
        points: np.ndarray,
        label: np.ndarray,
        alignment: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> Sample:
        """Build without the checks: for transforms, which run per sample and keep the invariants."""
        sample = object.__new__(cls)
        object.__setattr__(sample, "points", points)
        object.__setattr__(sample, "label", label)
        object.__setattr__(sample, "alignment", alignment)
        object.__setattr__(sample, "mask", mask)
        return sample

    def with_points(self, points: np.ndarray) -> Sample:
        """The same sequence with new coordinates (same frames, so label and alignment still hold)."""
        return Sample.unchecked(points, self.label, self.alignment, self.mask)

    @property
    def n_frames(self) -> int:
        return int(self.points.shape[0])

    @property
    def length(self) -> int:
        """Real frames: all of them before `Pad`, the unpadded ones after."""
        return self.n_frames if self.mask is None else int(self.mask.sum())


def missing_points(points: np.ndarray) -> np.ndarray:
    """`[T, P]` true where a point is missing (any NaN coordinate, or exactly (0, 0, 0))."""
    # a matrix product, not .any(axis=-1): numpy reduces a length-3 axis one point at a time
    magnitude = np.abs(points).reshape(-1, 3) @ np.ones(3, dtype=points.dtype)
    return (np.isnan(magnitude) | (magnitude == 0)).reshape(points.shape[:-1])


def collapse_alignment(alignment: np.ndarray, blank: int = CTC_BLANK) -> np.ndarray:
    """The label a per-frame alignment spells: repeats merged, then blanks dropped (CTC's rule)."""
    alignment = np.asarray(alignment)
    if alignment.size == 0:
        return np.zeros(0, dtype=np.int32)
    run_starts = np.concatenate(([True], alignment[1:] != alignment[:-1]))
    runs = alignment[run_starts]
    return runs[runs != blank].astype(np.int32)


def ctc_min_frames(label: np.ndarray) -> int:
    """Frames CTC needs for `label`: one per character, plus a blank between equal neighbours."""
    label = np.asarray(label)
    return int(label.size + np.count_nonzero(label[1:] == label[:-1]))
