"""The seed's augmentations of isolated signs: scale, shift, rotate, horizontal flip.

They act on normalized key points (`features.normalize_points`: centred on the sequence's mean,
unit spread), where the seed applied them too: a scale or shift of the raw coordinates would be
undone by the normalization that follows. Distances and motion are computed afterwards from the
moved points, so they stay consistent with the positions.

Each sample of a batch draws its own transform, vectorized over the batch in jax.numpy inside the
jitted train step. Randomness comes from the key the step passes in (`fold_in(seed, step)`), so a
run is reproducible and a resumed run repeats the uninterrupted one.

- scale: x, y times U(0.8, 1.5), with probability 0.5 (the seed's range);
- shift: x, y plus U(-0.1, 0.1) each, with probability 0.5;
- rotate: by U(-15, 15) degrees about the sequence's centre, with probability 0.5;
- horizontal flip, with probability 0.5: x -> -x, and every point moves to its mirror partner's
  slot: the left hand's points to the right hand's, left shoulder to right shoulder, lip corners
  across the midline. A mirrored sample then looks like a left-handed signer as MediaPipe reports
  one, which is what the seed used it for instead of keeping only the dominant hand.

Missing points (NaN) stay missing: every transform is elementwise or a permutation of slots.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from signpipe.errors import ConfigError
from signpipe.landmarks.augment.geometry import LIP_MIRROR_PARTNERS, POSE_MIRROR_PARTNERS
from signpipe.landmarks.features import LIP_FACE_POINTS
from signpipe.signs import features


def mirror_permutation() -> np.ndarray:
    """Slot permutation of the 88 key points under a horizontal flip: `flipped[:, k]` is the mirror
    image of `points[:, perm[k]]` (an involution: applying it twice is the identity)."""
    hands = [*features.RIGHT_HAND_SLOTS, *features.LEFT_HAND_SLOTS]
    pose_slot = {p: features.POSE_SLOTS[i] for i, p in enumerate(features.POSE_POINTS)}
    lip_slot = {p: features.LIP_SLOTS[i] for i, p in enumerate(LIP_FACE_POINTS)}
    pose = [pose_slot[POSE_MIRROR_PARTNERS[p]] for p in features.POSE_POINTS]
    lips = [lip_slot[LIP_MIRROR_PARTNERS[p]] for p in LIP_FACE_POINTS]
    return np.array(hands + pose + lips, dtype=np.int32)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Ranges and probabilities of the seed's augmentations (see the module docstring)."""

    scale_low: float = 0.8
    scale_high: float = 1.5
    shift: float = 0.1
    degrees: float = 15.0
    probability: float = 0.5
    flip_probability: float = 0.5

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.scale_low <= self.scale_high:
            problems.append(f"scale range must satisfy 0 < low <= high, got [{self.scale_low}, {self.scale_high}]")
        if self.shift < 0 or self.degrees < 0:
            problems.append(f"shift and degrees must be non-negative, got {self.shift}, {self.degrees}")
        for name in ("probability", "flip_probability"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if problems:
            raise ConfigError("augmentation: " + "; ".join(problems))


def flip_points(points: jax.Array) -> jax.Array:
    """Mirror every sample of `[..., T, 88, 2]`: x -> -x and left/right partners swap slots."""
    x, y = jnp.split(points, 2, axis=-1)
    mirrored = jnp.concatenate([-x, y], axis=-1)
    return jnp.take(mirrored, jnp.asarray(mirror_permutation()), axis=-2)


def augment_batch(points: jax.Array, key: jax.Array, config: AugmentConfig = AugmentConfig()) -> jax.Array:
    """Normalized key points `[B, T, 88, 2]` -> the same with one random transform per sample."""
    batch = points.shape[0]
    keys = jax.random.split(key, 7)
    uniform = lambda k, low, high, shape=(batch,): jax.random.uniform(k, shape, jnp.float32, low, high)  # noqa: E731
    applies = lambda k, p: jax.random.bernoulli(k, p, (batch,))  # noqa: E731

    scale = jnp.where(applies(keys[0], config.probability), uniform(keys[1], config.scale_low, config.scale_high), 1.0)
    shift = jnp.where(
        applies(keys[2], config.probability)[:, None], uniform(keys[3], -config.shift, config.shift, (batch, 2)), 0.0
    )
    limit = math.radians(config.degrees)
    angle = jnp.where(applies(keys[4], config.probability), uniform(keys[5], -limit, limit), 0.0)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    rotation = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)  # [B, 2, 2]

    # scale and rotate about the origin, which normalization put at the sequence's centre, then shift
    moved = jnp.einsum("bij,btpj->btpi", rotation, points * scale[:, None, None, None]) + shift[:, None, None, :]
    flip = applies(keys[6], config.flip_probability)
    return jnp.where(flip[:, None, None, None], flip_points(moved), moved)
