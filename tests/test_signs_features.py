"""Isolated-signs preprocessing and augmentation (signpipe.signs.features / augment), on tiny arrays."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from signpipe.data import schema
from signpipe.errors import ConfigError
from signpipe.signs import augment, features


@jax.jit
def features_of(points: jax.Array, mask: jax.Array, y_scale: float) -> jax.Array:
    """Normalize then featurize, compiled once per shape (eager jnp dispatches op by op, slowly)."""
    return features.frame_features(features.normalize_points(points, mask, y_scale), mask)


graph_inputs = jax.jit(features.graph_inputs, static_argnums=(1, 2))


def raw_sequence(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """[T, 543, 3] landmarks around the image centre, the left hand missing in every third frame."""
    frames = rng.normal(0.5, 0.1, size=(n_frames, schema.N_POINTS, 3)).astype(np.float32)
    frames[::3, list(schema.LEFT_HAND)] = np.nan
    return frames


def test_key_points_are_hands_pose_subset_and_lips_picked_without_gathers() -> None:
    frames = raw_sequence(np.random.default_rng(0), 7)
    picked = np.asarray(jax.jit(features.select_key_points)(jnp.asarray(frames)))
    np.testing.assert_array_equal(picked, frames[:, list(features.KEY_POINTS)])
    np.testing.assert_array_equal(features.select_key_points(frames, xp=np), frames[:, list(features.KEY_POINTS)])
    assert picked.shape == (7, 88, 3)
    assert features.KEY_POINTS[:21] == schema.LEFT_HAND and features.KEY_POINTS[21:42] == schema.RIGHT_HAND
    assert features.N_FEATURES == 88 * 2 + 88 * 2 + 2 * 210
    # out-of-order and overlapping requests come out in the order asked for
    arbitrary = [5, 3, 4, 5, 0, 542]
    np.testing.assert_array_equal(features.take_points(frames, arbitrary, xp=np), frames[:, arbitrary])


def test_normalization_is_nan_aware_and_keeps_the_shape() -> None:
    rng = np.random.default_rng(1)
    points = features.select_key_points(raw_sequence(rng, 9), xp=np)
    mask = np.ones(9, bool)
    out = np.asarray(features.normalize_points(points, mask, 1.0))
    assert out.shape == (9, 88, 2)
    present = ~np.isnan(out)
    np.testing.assert_array_equal(present, ~np.isnan(points[..., :2]))  # missing hands stay missing
    assert abs(out[..., 0][present[..., 0]].mean()) < 1e-5 and abs(out[..., 1][present[..., 1]].mean()) < 1e-5
    assert np.isclose(np.mean(out[present] ** 2), 1.0, atol=1e-4)  # one std pooled over x and y

    # y scale first: a sequence squeezed in y by 2 normalizes like the unsqueezed one with y_scale 2
    squeezed = points.copy()
    squeezed[..., 1] /= 2.0
    np.testing.assert_allclose(features.normalize_points(squeezed, mask, 2.0), out, atol=1e-5)
    # padded frames neither count nor come out as points
    padded = np.concatenate([points, np.zeros((4, 88, 3), np.float32)])
    padded_out = np.asarray(features.normalize_points(padded, np.arange(13) < 9, 1.0))
    np.testing.assert_allclose(padded_out[:9], out, atol=1e-6)
    assert np.isnan(padded_out[9:]).all()
    # a sequence with nothing present comes out all missing, not inf
    empty = np.asarray(features.normalize_points(np.full((3, 88, 3), np.nan, np.float32), np.ones(3, bool), 1.0))
    assert np.isnan(empty).all()


def test_frame_features_positions_motion_hand_distances_and_no_nan() -> None:
    rng = np.random.default_rng(2)
    points = rng.normal(size=(6, 88, 2)).astype(np.float32)
    points[2, :21] = np.nan  # left hand missing in frame 2
    mask = np.arange(6) < 5  # frame 5 is padding
    out = np.asarray(jax.jit(features.frame_features)(jnp.asarray(points), mask))
    assert out.shape == (6, features.N_FEATURES) and not np.isnan(out).any()
    positions, motion, left, right = np.split(out, np.cumsum([176, 176, 210]), axis=1)
    np.testing.assert_allclose(positions[:5], np.nan_to_num(points[:5].reshape(5, -1), nan=0.0))
    np.testing.assert_allclose(motion[0], (points[1] - points[0]).reshape(-1), atol=1e-6)
    assert not motion[4].any()  # the last valid frame has no next frame
    assert not motion[1, :42].any() and not motion[2, :42].any()  # moves into / out of the missing hand are 0
    i, j = np.triu_indices(21, k=1)
    np.testing.assert_allclose(right[3], np.linalg.norm(points[3, 21 + i] - points[3, 21 + j], axis=-1), rtol=1e-5)
    np.testing.assert_allclose(left[0], np.linalg.norm(points[0, i] - points[0, j], axis=-1), rtol=1e-5)
    assert not left[2].any()  # missing hand -> 0
    assert not out[5].any()  # padding -> 0


def test_batched_features_equal_each_sequence_alone() -> None:
    rng = np.random.default_rng(3)
    lengths = (4, 9)
    sequences = [features.select_key_points(raw_sequence(rng, n), xp=np) for n in lengths]
    batch = np.zeros((2, 12, 88, 3), np.float32)
    mask = np.zeros((2, 12), bool)
    for b, seq in enumerate(sequences):
        batch[b, : len(seq)], mask[b, : len(seq)] = seq, True
    batched = np.asarray(features_of(batch, mask, 1.3))
    for b, seq in enumerate(sequences):
        alone = np.asarray(features_of(seq, np.ones(len(seq), bool), 1.3))
        np.testing.assert_allclose(batched[b, : len(seq)], alone, atol=1e-5)
        assert not batched[b, len(seq):].any()


def test_graph_crop_mask_equals_the_host_crop() -> None:
    rng = np.random.default_rng(4)
    frames = raw_sequence(rng, 23)
    max_frames = 10
    x, mask = graph_inputs(jnp.asarray(frames), 1.2, max_frames)
    x, mask = np.asarray(x)[0], np.asarray(mask)[0]
    start = features.crop_start(23, max_frames)
    assert start == 6 and mask.sum() == max_frames and mask[start : start + max_frames].all()
    cropped = features.center_crop(features.select_key_points(frames, xp=np), max_frames)
    host = np.asarray(features_of(cropped, np.ones(max_frames, bool), 1.2))
    np.testing.assert_allclose(x[mask], host, atol=1e-5)
    assert not x[~mask].any()
    short = graph_inputs(jnp.asarray(frames[:7]), 1.2, max_frames)[1]
    assert np.asarray(short).all()  # sequences that fit are not cropped


def test_mirror_permutation_swaps_hands_and_partners() -> None:
    perm = augment.mirror_permutation()
    np.testing.assert_array_equal(perm[perm], np.arange(88))  # an involution
    np.testing.assert_array_equal(perm[:21], np.arange(21, 42))
    pose = {p: features.POSE_SLOTS[i] for i, p in enumerate(features.POSE_POINTS)}
    assert perm[pose[11]] == pose[12] and perm[pose[15]] == pose[16]  # left shoulder <-> right, wrists too
    lips = {p: features.LIP_SLOTS[i] for i, p in enumerate(features.LIP_FACE_POINTS)}
    assert perm[lips[61]] == lips[291] and perm[lips[0]] == lips[0]  # mouth corners swap, the midline stays

    points = np.random.default_rng(5).normal(size=(1, 3, 88, 2)).astype(np.float32)
    points[0, :, 21:42] = np.nan  # only the left hand was seen
    flipped = np.asarray(augment.flip_points(jnp.asarray(points)))
    np.testing.assert_allclose(flipped[0, :, 21:42, 0], -points[0, :, :21, 0])  # now a right hand, mirrored
    np.testing.assert_allclose(flipped[0, :, 21:42, 1], points[0, :, :21, 1])
    assert np.isnan(flipped[0, :, :21]).all()
    np.testing.assert_allclose(augment.flip_points(jnp.asarray(flipped)), points)


def test_augmentation_is_seeded_keeps_nan_and_moves_within_the_seed_ranges() -> None:
    rng = np.random.default_rng(6)
    points = rng.normal(size=(64, 5, 88, 2)).astype(np.float32)
    points[:, :, :21] = np.nan
    key = jax.random.key(3)
    once = np.asarray(augment.augment_batch(jnp.asarray(points), key))
    np.testing.assert_array_equal(once, np.asarray(augment.augment_batch(jnp.asarray(points), key)))
    assert np.isnan(once[:, :, :21]).sum() + np.isnan(once[:, :, 21:42]).sum() == np.isnan(points).sum()
    assert not np.allclose(once, np.asarray(augment.augment_batch(jnp.asarray(points), jax.random.key(4))),
                           equal_nan=True)

    # scale only, always: pairwise distances grow by one factor per sample within [0.8, 1.5]
    scale_only = augment.AugmentConfig(shift=0.0, degrees=0.0, probability=1.0, flip_probability=0.0)
    scaled = np.asarray(augment.augment_batch(jnp.asarray(points), key, scale_only))
    ratio = np.linalg.norm(scaled[:, 0, 50] - scaled[:, 0, 60], axis=-1) / np.linalg.norm(
        points[:, 0, 50] - points[:, 0, 60], axis=-1)
    assert 0.8 <= ratio.min() and ratio.max() <= 1.5 and ratio.std() > 0.05
    # rotation only: distances kept, angles within 15 degrees
    rotate_only = augment.AugmentConfig(shift=0.0, scale_low=1.0, scale_high=1.0, probability=1.0, flip_probability=0.0)
    rotated = np.asarray(augment.augment_batch(jnp.asarray(points), key, rotate_only))
    np.testing.assert_allclose(np.linalg.norm(rotated[:, :, 42:], axis=-1), np.linalg.norm(points[:, :, 42:], axis=-1),
                               rtol=1e-4)
    before = np.arctan2(points[:, 0, 50, 1], points[:, 0, 50, 0])
    after = np.arctan2(rotated[:, 0, 50, 1], rotated[:, 0, 50, 0])
    turned = np.degrees(np.angle(np.exp(1j * (after - before))))
    assert np.abs(turned).max() <= 15.0 + 1e-3 and np.abs(turned).max() > 5.0
    # flip always: exactly the mirror
    flip_only = augment.AugmentConfig(shift=0.0, degrees=0.0, scale_low=1.0, scale_high=1.0, flip_probability=1.0)
    np.testing.assert_allclose(augment.augment_batch(jnp.asarray(points), key, flip_only),
                               augment.flip_points(jnp.asarray(points)))
    with pytest.raises(ConfigError, match="scale range"):
        augment.AugmentConfig(scale_low=2.0, scale_high=1.0)
