"""The isolated-signs preprocessing of the top-50 seed, written once in jax.numpy.

The same functions build the training batches' model inputs (inside the jitted train and eval
steps) and run inside the exported TFLite graph (jax2tf with a symbolic time axis), so a submitted
model takes the scorer's raw `[n_frames, 543, 3]` frames and cannot drift from training.

Key points (`KEY_POINTS`, 88 points, positions in the 543-point order of `signpipe.data.schema`):

    0-20   left hand 0-20     the signing hands carry almost all of a sign
    21-41  right hand 0-20
    42-47  pose 11-16         shoulders, elbows, wrists: where the arms are when MediaPipe lost a
                              hand (about 41% of real frames have no hand; pose is never missing)
                              and where the hands are relative to the body
    48-87  lips (the 40 face points of `signpipe.landmarks.features.LIP_FACE_POINTS`): mouthing
                              and facial grammar distinguish otherwise similar signs

The rest of the face (eyes, contour: 400-odd points) moves little during a sign and would dominate
the input; the pose model's hand points (17-22) repeat the hand model's wrist region at lower
precision; hips and legs are mostly outside a phone's frame.

Steps (the seed's order, REFERENCE.md section 3 and seeds/isolated-signs-top50.md):

1. Drop z (`select_key_points` keeps it for the y-scale estimate on the host; `normalize_points`
   drops it).
2. Centre-crop sequences longer than `MAX_FRAMES` (384) frames. In the graph this is a mask
   (`crop_mask`), never a slice: a slice with a data-dependent start on the symbolic time axis does
   not convert. Frames outside the window are padding from there on, which every later step and
   the model honour, so the graph computes what training computed on the host-cropped sequence
   (`center_crop`, same window).
3. y *= y_scale (the corpus' height/width ratio, `signpipe.landmarks.aspect`), so x and y share a
   unit before anything measures shapes, distances or rotations.
4. Mean/std normalization over the sequence, NaN-aware and mask-aware: subtract the mean of x and
   of y over every present key point of every valid frame, divide by one standard deviation pooled
   over both axes. One scale for both axes keeps the shapes; the seed's single mean over x and y
   together would shift the figure diagonally for no reason.
5. (training only: `signpipe.signs.augment` moves the normalized points here)
6. Per frame: the 88 points' x, y (176), their motion to the next valid frame (176; 0 at the last
   one), and the distances between every pair of points of each hand (2 x 210).
7. NaN -> 0, and 0 at padded or cropped-away frames: `N_FEATURES` = 772 per frame.

Conversion constraints (REFERENCE.md section 4, checked by tests/test_signs_export.py): no integer
or slice indexing on an array that carries the symbolic time axis (`x[:, 3:7]` and `jnp.take` lower
to a dynamic gather the converter rejects), no cumulative sums (a dynamic reduce-window). Points
are therefore picked with `jnp.split` + `concatenate`, pairs with `lax.slice_in_dim`, the next frame
with `roll`, and every statistic is a masked sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from signpipe.data import schema
from signpipe.landmarks.features import LIP_FACE_POINTS

HAND_SIZE = 21
POSE_POINTS: tuple[int, ...] = (11, 12, 13, 14, 15, 16)
KEY_POINTS: tuple[int, ...] = (
    schema.LEFT_HAND
    + schema.RIGHT_HAND
    + tuple(schema.point_index("pose", i) for i in POSE_POINTS)
    + tuple(schema.point_index("face", i) for i in LIP_FACE_POINTS)
)
N_KEY_POINTS = len(KEY_POINTS)  # 88
#: slots of each group in KEY_POINTS order: left hand, right hand, pose, lips
LEFT_HAND_SLOTS = range(0, HAND_SIZE)
RIGHT_HAND_SLOTS = range(HAND_SIZE, 2 * HAND_SIZE)
POSE_SLOTS = range(2 * HAND_SIZE, 2 * HAND_SIZE + len(POSE_POINTS))
LIP_SLOTS = range(POSE_SLOTS.stop, N_KEY_POINTS)

MAX_FRAMES = 384
N_HAND_PAIRS = HAND_SIZE * (HAND_SIZE - 1) // 2  # 210
N_POSITION_FEATURES = 2 * N_KEY_POINTS
N_MOTION_FEATURES = 2 * N_KEY_POINTS
N_DISTANCE_FEATURES = 2 * N_HAND_PAIRS
N_FEATURES = N_POSITION_FEATURES + N_MOTION_FEATURES + N_DISTANCE_FEATURES  # 772


# --- point selection and cropping -------------------------------------------------------------


def take_points(frames: Any, points: Sequence[int], xp: ModuleType = jnp) -> Any:
    """`frames[..., points, :]` for a constant point list, built from `split` + `concatenate`.

    Runs of consecutive points come out as one piece, so the hands cost one slice each.
    """
    points = [int(p) for p in points]
    n_points = frames.shape[-2]
    if not points or min(points) < 0 or max(points) >= n_points:
        raise ValueError(f"points must index the {n_points} points of frames {frames.shape}, got {points[:5]}...")
    runs: list[tuple[int, int]] = []  # [start, stop) in the order asked for
    for p in points:
        if runs and runs[-1][1] == p:
            runs[-1] = (runs[-1][0], p + 1)
        else:
            runs.append((p, p + 1))
    cuts = sorted({edge for run in runs for edge in run} - {0, n_points})
    pieces = xp.split(frames, cuts, axis=-2)
    piece_at = {start: k for k, start in enumerate([0, *cuts])} | {n_points: len(pieces)}
    # every run edge is a cut, so a run is the whole pieces from its start up to its stop
    taken = [piece for start, stop in runs for piece in pieces[piece_at[start] : piece_at[stop]]]
    return taken[0] if len(taken) == 1 else xp.concatenate(taken, axis=-2)


def select_key_points(frames: Any, xp: ModuleType = jnp) -> Any:
    """Raw frames `[..., T, 543, 3]` -> key points `[..., T, 88, 3]` (x, y, z; NaN kept)."""
    if frames.shape[-2:] != (schema.N_POINTS, 3):
        raise ValueError(f"expected frames [..., T, {schema.N_POINTS}, 3], got {frames.shape}")
    return take_points(frames, KEY_POINTS, xp)


def crop_start(n_frames: int, max_frames: int = MAX_FRAMES) -> int:
    """First frame of the centre-crop window of a sequence of `n_frames` (0 when it fits); the
    rule `crop_mask` applies in the graph."""
    return max(int(n_frames) - max_frames, 0) // 2


def center_crop(frames: np.ndarray, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """The host side of step 2: frames `[T, ...]` -> at most `max_frames` central frames."""
    start = crop_start(len(frames), max_frames)
    return frames[start : start + max_frames]


def crop_mask(mask: jax.Array, max_frames: int = MAX_FRAMES) -> jax.Array:
    """`mask [..., T]` (valid frames first) restricted to the centre-crop window of each row."""
    mask = jnp.asarray(mask).astype(bool)
    index = jnp.arange(mask.shape[-1])
    n_frames = jnp.sum(mask.astype(jnp.int32), axis=-1, keepdims=True)
    start = jnp.maximum(n_frames - max_frames, 0) // 2
    return mask & (index >= start) & (index < start + max_frames)


# --- normalization and per-frame features -----------------------------------------------------


def normalize_points(points: jax.Array, mask: jax.Array, y_scale: float | jax.Array) -> jax.Array:
    """Key points `[..., T, 88, 2 or 3]` -> normalized x, y `[..., T, 88, 2]` (steps 1, 3, 4).

    NaN stays NaN (a missing hand), and frames outside `mask [..., T]` become NaN, so nothing
    downstream can mistake them for a point at the centre.
    """
    points = jnp.asarray(points, jnp.float32)
    xy, _ = jnp.split(points, [2], axis=-1)
    x, y = jnp.split(xy, 2, axis=-1)
    xy = jnp.concatenate([x, y * jnp.asarray(y_scale, jnp.float32)], axis=-1)
    valid = jnp.asarray(mask).astype(bool)[..., None, None]
    present = ~jnp.isnan(xy) & valid
    values = jnp.where(present, xy, jnp.float32(0))
    count = jnp.sum(present.astype(jnp.float32), axis=(-3, -2), keepdims=True)  # per axis
    mean = jnp.sum(values, axis=(-3, -2), keepdims=True) / jnp.maximum(count, 1.0)
    deviation = jnp.where(present, values - mean, jnp.float32(0))
    variance = jnp.sum(deviation * deviation, axis=(-3, -2, -1), keepdims=True) / jnp.maximum(
        jnp.sum(count, axis=-1, keepdims=True), 1.0
    )
    std = jnp.sqrt(variance)
    # a sequence with one point or none has no spread: leave it centred, unscaled
    scaled = deviation / jnp.where(std > 0, std, jnp.float32(1))
    return jnp.where(present, scaled, jnp.float32(jnp.nan))


def hand_distances(hand: jax.Array) -> jax.Array:
    """`[..., T, 21, 2]` -> distances between every pair (i < j) of the hand's points `[..., T, 210]`,
    pairs in row order (0-1, 0-2, ..., 0-20, 1-2, ...)."""
    n = hand.shape[-2]
    differences = [
        jax.lax.slice_in_dim(hand, i, i + 1, axis=hand.ndim - 2) - jax.lax.slice_in_dim(hand, i + 1, n, axis=hand.ndim - 2)
        for i in range(n - 1)
    ]
    pairs = jnp.concatenate(differences, axis=-2)
    return jnp.sqrt(jnp.sum(pairs * pairs, axis=-1))


def next_frame_motion(points: jax.Array, mask: jax.Array) -> jax.Array:
    """`[..., T, P, 2]` -> the move of each point to the next frame; 0 where the next frame is not
    valid (the last frame, padding, the end of a crop)."""
    time_axis = points.ndim - 3
    following = jnp.roll(points, -1, axis=time_axis)
    mask = jnp.asarray(mask).astype(bool)
    is_last = jnp.arange(mask.shape[-1]) == mask.shape[-1] - 1  # roll wraps the first frame round
    has_next = mask & jnp.roll(mask, -1, axis=-1) & ~is_last
    return jnp.where(has_next[..., None, None], following - points, jnp.float32(0))


def frame_features(points: jax.Array, mask: jax.Array) -> jax.Array:
    """Normalized (and, in training, augmented) points `[..., T, 88, 2]` -> features
    `[..., T, N_FEATURES]` (steps 6-7)."""
    if points.shape[-2:] != (N_KEY_POINTS, 2):
        raise ValueError(f"expected normalized key points [..., T, {N_KEY_POINTS}, 2], got {points.shape}")
    lead = points.shape[:-2]
    left, right, _ = jnp.split(points, [HAND_SIZE, 2 * HAND_SIZE], axis=-2)
    parts = [
        jnp.reshape(points, (*lead, N_POSITION_FEATURES)),
        jnp.reshape(next_frame_motion(points, mask), (*lead, N_MOTION_FEATURES)),
        hand_distances(left),
        hand_distances(right),
    ]
    features = jnp.concatenate(parts, axis=-1)
    valid = jnp.asarray(mask).astype(bool)[..., None]
    return jnp.where(valid & ~jnp.isnan(features), features, jnp.float32(0))


def graph_inputs(frames: jax.Array, y_scale: float, max_frames: int = MAX_FRAMES) -> tuple[jax.Array, jax.Array]:
    """One raw sequence `[T, 543, 3]` (the scorer's input) -> (features `[1, T, N_FEATURES]`, mask
    `[1, T]`): what the exported graph feeds the model. Frames outside the crop window are padding."""
    points = select_key_points(jnp.asarray(frames, jnp.float32))[None]
    mask = crop_mask(jnp.ones(points.shape[:2], bool), max_frames)
    return frame_features(normalize_points(points, mask, y_scale), mask), mask
