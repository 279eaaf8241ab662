"""The model's input layout: which landmarks it reads, and how they become features.

This module is the one place the feature layout is defined (REFERENCE.md section 2, the
fingerspelling seed's "Data Processing").

Input points (what the exported model reads from a raw Kaggle frame, `INPUT_POINTS`, 96 points,
positions in the 543-point order of `signpipe.data.schema`), in this order:

    0-20   left hand 0-20
    21-41  right hand 0-20
    42-55  pose 11-24 (shoulders, elbows, wrists, hand points of the pose model, hips)
    56-95  lips: the 40 face points `LIP_FACE_POINTS`

`selected_columns()` lists their wide-layout columns axis-major (all x, then all y, then all z),
which is what `inference_args.json` names and what the scorer feeds the model row by row as
`[T, 288]`; `frames_from_columns` turns such rows back into `[T, 96, 3]`.

Features (`featurize`, `[T, 96, 3]` -> `[T, 75, 3]`, float32):

1. y *= y_scale, first: x and y are normalized by the camera's width and height, so only after
   this do x, y and z share one unit and rotations/scalings of later stages mean what they say.
2. Keep the dominant hand: the one with fewer frames in which it is missing (any NaN);
   ties go to the right hand. Then pose 11-24 and the lips: groups of `GROUPS = (21, 14, 40)`
   points in that order (hand, pose, lips).
3. Per group: subtract the mean over frames and points of each axis (ignoring NaN), then divide
   by one scalar, the largest |value| of the centred x and y (z is divided by the same scalar
   and may exceed 1). One scalar, not one per axis, so the group's shape is kept.
4. NaN -> 0. A group with no finite value at all (no hand in the whole sequence) comes out 0.

The same code runs on the host with numpy (preprocessing, augmentation) and inside the exported
TFLite graph with jax.numpy (jax2tf with a symbolic time axis), so the exported model takes raw
frames and cannot drift from training. To stay convertible it never indexes the time axis with
integers or masks, and has no data-dependent shape: the hand is chosen with `where`, groups are
cut with `split` on the point axis, and every reduction is a masked sum.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import jax.numpy as jnp

from signpipe.data import schema

LIP_FACE_POINTS: tuple[int, ...] = (
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181,
    185, 191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
)  # fmt: skip
POSE_POINTS: tuple[int, ...] = tuple(range(11, 25))
HAND_SIZE = 21

INPUT_POINTS: tuple[int, ...] = (
    schema.LEFT_HAND
    + schema.RIGHT_HAND
    + tuple(schema.point_index("pose", i) for i in POSE_POINTS)
    + tuple(schema.point_index("face", i) for i in LIP_FACE_POINTS)
)
N_INPUT_POINTS = len(INPUT_POINTS)  # 96

#: points per feature group, in feature order: dominant hand, pose, lips
GROUPS: tuple[int, int, int] = (HAND_SIZE, len(POSE_POINTS), len(LIP_FACE_POINTS))
N_FEATURE_POINTS = sum(GROUPS)  # 75
N_FEATURES = 3 * N_FEATURE_POINTS  # 225

# where each part starts in INPUT_POINTS: left hand | right hand | pose | lips
_INPUT_SPLITS = (HAND_SIZE, 2 * HAND_SIZE, 2 * HAND_SIZE + len(POSE_POINTS))


def selected_columns() -> list[str]:
    """Wide columns of `INPUT_POINTS`, axis-major: the `selected_columns` of `inference_args.json`."""
    return schema.wide_columns(INPUT_POINTS)


def frames_from_columns(columns: Any, xp: ModuleType = jnp) -> Any:
    """Rows `[T, 3 * P]` read in `selected_columns()` order -> frames `[T, P, 3]`.

    Uses a reshape with an inferred time axis, so it also works on a symbolic T.
    """
    columns = xp.asarray(columns)
    n_points = columns.shape[-1] // 3
    if columns.ndim != 2 or columns.shape[-1] != 3 * n_points:
        raise ValueError(f"expected rows [T, 3 * P] (all x, then y, then z), got {columns.shape}")
    return xp.swapaxes(xp.reshape(columns, (-1, 3, n_points)), -1, -2)


def featurize(frames: Any, y_scale: float | Any, xp: ModuleType = jnp) -> Any:
    """Raw input points `[T, 96, 3]` (NaN where missing) -> features `[T, 75, 3]` float32."""
    return _featurize(frames, y_scale, None, xp)


def featurize_batch(frames: Any, mask: Any, y_scale: float | Any, xp: ModuleType = jnp) -> Any:
    """Padded batch `[B, T, 96, 3]` with `mask [B, T]` (true = real frame) -> `[B, T, 75, 3]`.

    Padded frames count neither in the hand choice nor in the group statistics, and come out 0,
    so a padded sequence gets exactly the features it gets alone.
    """
    return _featurize(frames, y_scale, mask, xp)


def normalize_group(group: Any, mask: Any | None = None, xp: ModuleType = jnp) -> Any:
    """Step 3-4 of `featurize` on one group `[..., T, P, 3]` (already y-scaled), `mask [..., T]`
    optional: for augmentations that rebuild a group and must normalize it the same way."""
    frame_valid = None if mask is None else xp.asarray(mask).astype(bool)[..., None, None]
    return _normalize_group(xp.asarray(group, dtype=xp.float32), frame_valid, xp)


def _featurize(frames: Any, y_scale: float | Any, mask: Any | None, xp: ModuleType) -> Any:
    frames = xp.asarray(frames, dtype=xp.float32)
    if frames.shape[-2:] != (N_INPUT_POINTS, 3):
        raise ValueError(f"expected frames [..., T, {N_INPUT_POINTS}, 3] in INPUT_POINTS order, got {frames.shape}")
    x, y, z = xp.split(frames, 3, axis=-1)
    frames = xp.concatenate([x, y * xp.asarray(y_scale, dtype=xp.float32), z], axis=-1)

    if mask is None:
        frame_valid = None
    else:
        frame_valid = xp.asarray(mask).astype(bool)
        if frame_valid.shape != frames.shape[:-2]:
            raise ValueError(f"mask {frame_valid.shape} does not match frames {frames.shape[:-2]}")
        frame_valid = frame_valid[..., None, None]  # [..., T, 1, 1]

    left, right, pose, lips = xp.split(frames, _INPUT_SPLITS, axis=-2)
    hand = xp.where(
        _missing_frame_count(left, frame_valid, xp) < _missing_frame_count(right, frame_valid, xp),
        left,
        right,
    )
    return xp.concatenate([_normalize_group(g, frame_valid, xp) for g in (hand, pose, lips)], axis=-2)


def _missing_frame_count(hand: Any, frame_valid: Any | None, xp: ModuleType) -> Any:
    """Frames (among the valid ones) where the hand has any NaN; shape `[..., 1, 1, 1]`."""
    missing = xp.any(xp.isnan(hand), axis=(-2, -1), keepdims=True)  # [..., T, 1, 1]
    if frame_valid is not None:
        missing = missing & frame_valid
    return xp.sum(missing.astype(xp.int32), axis=-3, keepdims=True)


def _normalize_group(group: Any, frame_valid: Any | None, xp: ModuleType) -> Any:
    """Centre per axis over frames and points, divide by max |x|, |y|; NaN and padding -> 0."""
    present = ~xp.isnan(group)
    if frame_valid is not None:
        present = present & frame_valid
    values = xp.where(present, group, xp.float32(0))
    count = xp.sum(present.astype(xp.float32), axis=(-3, -2), keepdims=True)
    mean = xp.sum(values, axis=(-3, -2), keepdims=True) / xp.maximum(count, xp.float32(1))
    centred = xp.where(present, values - mean, xp.float32(0))
    xy, _ = xp.split(xp.abs(centred), [2], axis=-1)
    extent = xp.max(xy, axis=(-3, -2, -1), keepdims=True)
    # an empty or single-point group has extent 0 and is all zeros already
    return centred / xp.where(extent > 0, extent, xp.float32(1))

