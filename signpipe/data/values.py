"""What landmark values may be: the check shared by `validate` and `preprocess`.

MediaPipe Holistic reports each part of the body (face, left hand, pose, right hand) whole or
not at all: a part it did not find in a frame is NaN in every coordinate of that frame (`scene.py`
of the synthetic generator and `signpipe.video.holistic` write the same). So a frame is *bad* when

- any coordinate is infinite, or
- a part is NaN in some of its coordinates but not all (a damaged or hand-edited file).

Infinite values are the dangerous ones: the features centre each group on its mean, and one
`inf` turns a whole sequence into NaN or inf during training without any error. A part wholly NaN
is the ordinary "not detected" and stays allowed.

`frame_faults` works on any `[T, P, 3]` view (the readers' frames, or a wide parquet block viewed
as `[rows, 3, 543]` transposed), with `points` naming which of the 543 landmarks axis 1 holds;
for a subset of points (the model's input points) the rule applies to the part's points present.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from signpipe.data.schema import AXES, PART_OFFSET, PARTS, POINT_NAMES

PART_NAMES = tuple(part for part, _ in PARTS)
_PART_OF_POINT = np.array([PART_NAMES.index(part) for part, _ in POINT_NAMES], dtype=np.int64)


@dataclass(frozen=True)
class FrameFaults:
    """Per frame: `infinite` (any coordinate is +-inf), `partly_nan` (a part neither whole nor
    wholly missing); `bad` is either."""

    infinite: np.ndarray
    partly_nan: np.ndarray

    @property
    def bad(self) -> np.ndarray:
        return self.infinite | self.partly_nan


def _part_groups(points: Sequence[int] | None) -> list[tuple[str, np.ndarray | slice]]:
    if points is None:
        return [(part, slice(PART_OFFSET[part], PART_OFFSET[part] + n)) for part, n in PARTS]
    part_of = _PART_OF_POINT[np.asarray(points, dtype=np.int64)]
    groups = []
    for code in np.unique(part_of):
        members = np.flatnonzero(part_of == code)
        if len(members) == members[-1] - members[0] + 1:
            groups.append((PART_NAMES[code], slice(int(members[0]), int(members[-1]) + 1)))
        else:
            groups.append((PART_NAMES[code], members))
    return groups


def frame_faults(frames: np.ndarray, points: Sequence[int] | None = None) -> FrameFaults:
    """Bad frames of `frames [T, P, 3]` (see the module docstring)."""
    n_frames = frames.shape[0]
    infinite = np.isinf(frames).any(axis=(1, 2)) if n_frames else np.zeros(0, bool)
    nan = np.isnan(frames)
    partly = np.zeros(n_frames, dtype=bool)
    for _, members in _part_groups(points):
        count = nan[:, members].sum(axis=(1, 2))
        size = nan[:, members].shape[1] * 3
        partly |= (count > 0) & (count < size)
    return FrameFaults(infinite, partly)


def describe_frame(frames: np.ndarray, t: int, points: Sequence[int] | None = None, kind: str | None = None) -> str:
    """What is wrong with frame `t` of `frames [T, P, 3]`, e.g. `inf in x of right_hand 3`;
    `kind` ("infinite" or "partly_nan") picks which fault to describe when a frame has both."""
    frame = frames[t]
    names = POINT_NAMES if points is None else [POINT_NAMES[p] for p in points]
    inf = np.argwhere(np.isinf(frame))
    if len(inf) and kind != "partly_nan":
        p, a = inf[0]
        part, index = names[p]
        more = f" and {len(inf) - 1:,} more coordinate{'s' if len(inf) > 2 else ''}" if len(inf) > 1 else ""
        return f"{frame[p, a]} in {AXES[a]} of {part} {index}{more}"
    for part, members in _part_groups(points):
        nan = np.isnan(frame[members])
        if 0 < nan.sum() < nan.size:
            return f"{part}: {int(nan.sum()):,} of its {nan.size:,} coordinates NaN"
    return "no fault"


def all_zero_xy(frames: np.ndarray) -> bool:
    """Whether every finite x and y of a sequence is 0 (and there is at least one): an empty
    export rather than landmarks."""
    xy = frames[..., :2]
    finite = np.isfinite(xy)
    return bool(finite.any() and not np.any(xy[finite]))


__all__ = ["FrameFaults", "PART_NAMES", "all_zero_xy", "describe_frame", "frame_faults"]
