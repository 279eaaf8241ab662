"""Transforms that move points in 3-D: mirror, rotation, shear, scale, shift.

They assume x, y and z share one unit, which holds only after the y scale (the features module
multiplies y by the camera's height/width before anything else). A rotation applied to points
still squeezed in y is a rotation followed by a shear once y is restored (X' = S^-1 R S X, not
R X), and it changes bone lengths; applied after the y scale it is rigid. Per-group normalization
divides all three axes by one scalar, so it does not break this.

Missing points are NaN inside the pipeline (see `sample`), and every transform here is
arithmetic on the coordinates, so they come out NaN: missing. Rotation, shear, scale and shift are
`AffineTransform`s: a `Sequential` of them (the seed's per-group chain) is composed into one map
per frame and applied in a single pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signpipe.errors import ConfigError, SignpipeError
from signpipe.landmarks.augment.sample import Sample
from signpipe.landmarks.augment.transform import AffineTransform, Transform, require_in_range

#: MediaPipe pose index -> the same landmark on the other side of the body (eyes, ears, mouth
#: corners, shoulders ... feet); the nose (0) is its own partner.
POSE_MIRROR_PARTNERS: dict[int, int] = {0: 0} | {
    a: b
    for left, right in ((1, 4), (2, 5), (3, 6), *((i, i + 1) for i in range(7, 33, 2)))
    for a, b in ((left, right), (right, left))
}

# The lips' left and right halves in matching order: the outer lower, outer upper, inner lower and
# inner upper contours of the face mesh, each from the mouth corner towards the midline, then the
# outer and inner corners.
_LIPS_LEFT = (146, 91, 181, 84, 185, 40, 39, 37, 95, 88, 178, 87, 191, 80, 81, 82, 61, 78)
_LIPS_RIGHT = (375, 321, 405, 314, 409, 270, 269, 267, 324, 318, 402, 317, 415, 310, 311, 312, 291, 308)
#: MediaPipe face-mesh index -> its mirror image, for the 40 lip points; the midline points
#: (0, 13, 14, 17) are their own partners.
LIP_MIRROR_PARTNERS: dict[int, int] = (
    {i: i for i in (0, 13, 14, 17)} | dict(zip(_LIPS_LEFT, _LIPS_RIGHT)) | dict(zip(_LIPS_RIGHT, _LIPS_LEFT))
)


def feature_mirror() -> tuple[int, ...]:
    """Slot permutation that mirrors the features module's 75-point layout (hand, pose, lips).

    The dominant-hand slot has no partner: one slot holds whichever hand signed, and a mirrored
    right hand is a left hand, which is what this augmentation is for (left-handed signers). Pose
    and lip points trade places with their partners, so a mirrored sample looks like what MediaPipe
    reports for a mirrored video, left shoulder still in the left-shoulder slot.
    """
    # imported here: the features module pulls in jax, which augmentation workers do not need
    from signpipe.landmarks import features

    hand = tuple(range(features.HAND_SIZE))
    pose_slot = {p: i for i, p in enumerate(features.POSE_POINTS)}
    lip_slot = {p: i for i, p in enumerate(features.LIP_FACE_POINTS)}
    pose = tuple(len(hand) + pose_slot[POSE_MIRROR_PARTNERS[p]] for p in features.POSE_POINTS)
    lips = tuple(len(hand) + len(pose) + lip_slot[LIP_MIRROR_PARTNERS[p]] for p in features.LIP_FACE_POINTS)
    return hand + pose + lips


def rotation_matrices(rotation_vectors: np.ndarray) -> np.ndarray:
    """`[..., 3]` axis-angle vectors -> `[..., 3, 3]` rotation matrices (Rodrigues' formula).

    R = cos(a) I + (1 - cos(a)) k k^T + sin(a) [k]x, for the unit axis k and the angle a, written
    entry by entry over all frames at once: numpy is slow on arrays whose last axes are 3 x 3.
    """
    vectors = np.asarray(rotation_vectors, dtype=np.float64)
    vx, vy, vz = np.moveaxis(vectors, -1, 0)
    angle = np.sqrt(vx * vx + vy * vy + vz * vz)
    safe_angle = np.where(angle > 0, angle, 1.0)
    kx, ky, kz = vx / safe_angle, vy / safe_angle, vz / safe_angle
    cos, sin = np.cos(angle), np.sin(angle)
    versine = 1.0 - cos
    entries = np.empty((*angle.shape, 9))
    entries[..., 0] = cos + kx * kx * versine
    entries[..., 1] = kx * ky * versine - kz * sin
    entries[..., 2] = kx * kz * versine + ky * sin
    entries[..., 3] = ky * kx * versine + kz * sin
    entries[..., 4] = cos + ky * ky * versine
    entries[..., 5] = ky * kz * versine - kx * sin
    entries[..., 6] = kz * kx * versine - ky * sin
    entries[..., 7] = kz * ky * versine + kx * sin
    entries[..., 8] = cos + kz * kz * versine
    return entries.reshape(*angle.shape, 3, 3)


@dataclass(frozen=True)
class HorizontalFlip(Transform):
    """Mirror the whole sample left-right: x -> 2c - x about each group's centre c.

    One draw for all groups (a mirrored hand on an unmirrored body is no sample a camera takes).
    `lengths` are the groups whose centres are used (None: one group); `mirror`, a slot permutation
    such as `feature_mirror()`, moves each left/right landmark into its partner's slot. Missing
    points keep their values, and move slots with their partners.
    """

    lengths: tuple[int, ...] | None = None
    mirror: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lengths is not None:
            object.__setattr__(self, "lengths", tuple(int(n) for n in self.lengths))
            if not self.lengths or min(self.lengths) < 1:
                raise ConfigError(f"HorizontalFlip: lengths must be positive point counts, got {self.lengths}")
        if self.mirror is not None:
            object.__setattr__(self, "mirror", tuple(int(i) for i in self.mirror))
            if sorted(self.mirror) != list(range(len(self.mirror))):
                raise ConfigError(f"HorizontalFlip: mirror must be a permutation of 0..n-1, got {self.mirror}")
            if self.lengths is not None and sum(self.lengths) != len(self.mirror):
                raise ConfigError(
                    f"HorizontalFlip: mirror has {len(self.mirror)} slots, groups {self.lengths} have "
                    f"{sum(self.lengths)} points"
                )

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        points = sample.points
        n_points = points.shape[1]
        expected = sum(self.lengths) if self.lengths else len(self.mirror) if self.mirror else n_points
        if n_points != expected:
            raise SignpipeError(f"HorizontalFlip: expected {expected} points (groups {self.lengths}), got {n_points}")
        lengths = self.lengths or (n_points,)
        x = points[..., 0]
        present = ~np.isnan(x)
        group_starts = np.cumsum((0,) + lengths[:-1])
        x_sum = np.add.reduceat(np.where(present, x, 0.0).sum(axis=0), group_starts)
        count = np.add.reduceat(present.sum(axis=0), group_starts)
        centre = np.repeat(x_sum / np.maximum(count, 1), lengths).astype(np.float32)
        if self.mirror is None:
            flipped = points.copy()
        else:
            # slots first (one copy), then x, each point about the centre of the group it came from
            flipped, centre = np.take(points, self.mirror, axis=1), centre[list(self.mirror)]
        flipped[..., 0] = 2.0 * centre - flipped[..., 0]
        return sample.with_points(flipped)


@dataclass(frozen=True)
class RandomInterpolatedRotation(AffineTransform):
    """A 3-D rotation that drifts over the sequence, as a signer turns and the camera wobbles.

    Two rotations (axis-angle vectors with each component uniform in +-`angle_limit`) and two
    centres (each coordinate normal with `center_stdev`) are drawn; frame t of T uses the linear
    blend at t / (T - 1) of the vectors and of the centres, and rotates every point about its
    frame's centre. Each frame's motion is rigid.
    """

    center_stdev: float = 0.5
    angle_limit: float = np.pi / 4

    def __post_init__(self) -> None:
        super().__post_init__()
        require_in_range(self, "center_stdev", self.center_stdev, 0.0, np.inf)
        require_in_range(self, "angle_limit", self.angle_limit, 0.0, np.pi)

    def draw_affine(self, n_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        blend = np.arange(n_frames)[:, None] / max(n_frames - 1, 1)
        start_centre, end_centre = rng.normal(0.0, self.center_stdev, size=(2, 3))
        start_vector, end_vector = rng.uniform(-self.angle_limit, self.angle_limit, size=(2, 3))
        centre = start_centre + blend * (end_centre - start_centre)  # [T, 3]
        # rows rotate as x R^T; about the centre: (x - c) R^T + c
        transposed = np.swapaxes(rotation_matrices(start_vector + blend * (end_vector - start_vector)), -1, -2)
        return transposed, centre - (centre[:, None, :] @ transposed)[:, 0, :]


@dataclass(frozen=True)
class RandomShear(AffineTransform):
    """Shear one random axis by the other two (each coefficient uniform in +-`limit`).

    A deformation no rotation or scaling gives: a slanted camera view, and the errors of
    MediaPipe's depth estimate, which leak into x and y once the points are rotated.
    """

    limit: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        require_in_range(self, "limit", self.limit, 0.0, np.inf)

    def draw_affine(self, n_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        axis = int(rng.integers(3))
        shear = np.eye(3)
        shear[[a for a in range(3) if a != axis], axis] = rng.uniform(-self.limit, self.limit, size=2)
        return shear[None], np.zeros((1, 3))


@dataclass(frozen=True)
class RandomScale(AffineTransform):
    """Scale each axis by its own factor, uniform in [1 - limit, 1 + limit] (hand size, distance)."""

    limit: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        require_in_range(self, "limit", self.limit, 0.0, 0.99)

    def draw_affine(self, n_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return np.diag(1.0 + rng.uniform(-self.limit, self.limit, size=3))[None], np.zeros((1, 3))


@dataclass(frozen=True)
class RandomShift(AffineTransform):
    """Move the whole group by a normal offset of `stdev` per axis (where it sits in the frame)."""

    stdev: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        require_in_range(self, "stdev", self.stdev, 0.0, np.inf)

    def draw_affine(self, n_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return np.eye(3)[None], rng.normal(0.0, self.stdev, size=(1, 3))


@dataclass(frozen=True)
class Normalize(Transform):
    """The features module's per-group normalization, for input that is not normalized yet.

    Centres each axis over frames and points and divides by the largest |x| or |y|: run it inside
    `LandmarkGroups` so each group gets its own centre and scale. Missing points come out 0. Data
    from the features module is normalized already and does not need it.
    """

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        # imported here: the features module pulls in jax, which augmentation workers do not need
        from signpipe.landmarks import features

        normalized = features.normalize_group(sample.points, xp=np)
        # the features module writes 0 for missing points; the pipeline keeps them NaN until Pad
        normalized[np.isnan(sample.points)] = np.nan
        return sample.with_points(normalized.astype(np.float32, copy=False))
