"""The transform protocol, and the two ways transforms are combined (in order, per point group).

Every transform is called as `transform(sample, rng)` with an explicit `numpy.random.Generator`:
no global random state, so a seed fixes the output, and data-loader workers that each own a
generator never share a stream.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from signpipe.errors import ConfigError, SignpipeError
from signpipe.landmarks.augment.sample import Sample


@dataclass(frozen=True, eq=False)
class Transform(ABC):
    """A random transform applied with probability `p` (one draw per call when `p` < 1)."""

    p: float = field(default=1.0, kw_only=True)

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"{type(self).__name__}: p must be a probability in [0, 1], got {self.p}")

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if self.p < 1.0 and not rng.random() < self.p:
            return sample
        return self.apply(sample, rng)

    @abstractmethod
    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """The transform itself, once the coin said yes."""


def require_in_range(owner: object, name: str, value: float, low: float, high: float) -> None:
    """Reject a parameter outside [low, high] at construction, before any sample is touched."""
    if not low <= value <= high:
        raise ConfigError(f"{type(owner).__name__}: {name} must be in [{low}, {high}], got {value}")


class AffineTransform(Transform):
    """A transform x -> x @ matrix + offset on row vectors (x, y, z), one map per frame or for all.

    Separating the draw from the application lets `Sequential` compose a chain of them (rotation,
    shear, scale, shift) into one map and touch the points once instead of once per transform.
    """

    @abstractmethod
    def draw_affine(self, n_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """`matrix [1 or T, 3, 3]` and `offset [1 or T, 3]` (1: the same for every frame)."""

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        return sample.with_points(apply_affine(sample.points, *self.draw_affine(sample.n_frames, rng)))


def apply_affine(points: np.ndarray, matrix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """`points [T, P, 3] @ matrix + offset`; NaN (missing) points stay NaN."""
    n_frames, n_points = points.shape[:2]
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.shape[0] == 1:
        moved = (points.reshape(-1, 3) @ matrix[0]).reshape(points.shape)
    else:
        moved = np.matmul(points, matrix)
    # the offset is added to [T, 3 P] rows: numpy broadcasts over a length-3 axis one point at a time
    rows = np.tile(np.asarray(offset, dtype=np.float32), (1, n_points))
    return (moved.reshape(n_frames, 3 * n_points) + rows).reshape(points.shape)


def compose_affine(steps: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One (matrix, offset) doing `steps` in order: x A1 ... An + sum_k b_k A(k+1) ... An.

    Folded from the last step back, so steps shared by all frames multiply as single 3x3
    matrices and only the per-frame ones pay for T products.
    """
    matrix, offset = steps[-1]
    for step_matrix, step_offset in reversed(steps[:-1]):
        offset = _times(step_offset, matrix) + offset
        matrix = _times(step_matrix, matrix)
    return matrix, offset


def _times(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """`left [n, 3] or [n, 3, 3]` times `right [1 or n, 3, 3]`, row by row.

    A shared right matrix multiplies all rows in one 2-D product rather than n batched ones.
    """
    if right.shape[0] == 1:
        return (left.reshape(-1, 3) @ right[0]).reshape(left.shape)
    if left.ndim == 2:
        return (left[:, None, :] @ right)[:, 0, :]
    return left @ right


class Sequential(Transform):
    """Transforms applied in order (the whole chain skipped together when `p` says so).

    A chain made only of `AffineTransform`s is applied as one composed map: the same random draws
    in the same order as one by one, so the same result up to float rounding, in one pass.
    """

    def __init__(self, *transforms: Transform, p: float = 1.0):
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "transforms", tuple(transforms))
        object.__setattr__(self, "fused", bool(transforms) and all(isinstance(t, AffineTransform) for t in transforms))
        super().__post_init__()

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if self.fused:
            steps = [
                t.draw_affine(sample.n_frames, rng) for t in self.transforms if t.p >= 1.0 or rng.random() < t.p
            ]
            if not steps:
                return sample
            return sample.with_points(apply_affine(sample.points, *compose_affine(steps)))
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Sequential({inner}, p={self.p})"


class LandmarkGroups(Transform):
    """Apply transforms to each point group (hand, pose, lips) separately.

    The groups are consecutive slices of the point axis, `lengths` points each. `transforms` is
    either one transform, run on every group with its own random draws (so the hand and the lips
    get different rotations), or one transform per group. Group transforms may change coordinates
    only: the number of frames and points, and so the label, stay as they are.
    """

    def __init__(
        self,
        transforms: Transform | Sequence[Transform],
        lengths: Sequence[int] = (21, 14, 40),
        p: float = 1.0,
    ):
        lengths = tuple(int(n) for n in lengths)
        if not lengths or min(lengths) < 1:
            raise ConfigError(f"LandmarkGroups: lengths must be positive point counts, got {lengths}")
        if isinstance(transforms, Transform):
            transforms = (transforms,) * len(lengths)
        transforms = tuple(transforms)
        if len(transforms) != len(lengths):
            raise ConfigError(
                f"LandmarkGroups: expected one transform, or one per group ({len(lengths)}), got {len(transforms)}"
            )
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "transforms", transforms)
        object.__setattr__(self, "lengths", lengths)
        object.__setattr__(self, "bounds", np.cumsum((0,) + lengths))
        super().__post_init__()

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        points = sample.points
        if points.shape[1] != self.bounds[-1]:
            raise SignpipeError(
                f"LandmarkGroups: expected {self.bounds[-1]} points in groups of {self.lengths}, "
                f"got {points.shape[1]}"
            )
        outputs = []
        for transform, start, stop in zip(self.transforms, self.bounds[:-1], self.bounds[1:]):
            group = sample.with_points(points[:, start:stop])
            result = transform(group, rng).points
            if result.shape != group.points.shape:
                raise ConfigError(
                    f"LandmarkGroups: {transform!r} changed a group's shape {group.points.shape} -> "
                    f"{result.shape}; only coordinate transforms can run per group"
                )
            outputs.append(result)
        return sample.with_points(np.concatenate(outputs, axis=1))

    def __repr__(self) -> str:
        return f"LandmarkGroups({self.transforms!r}, lengths={self.lengths}, p={self.p})"
