"""Augmentation pipeline: invariants of each transform (time, labels, 3-D geometry, masking)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signpipe.data.schema import CTC_BLANK
from signpipe.errors import ConfigError, SignpipeError
from signpipe.landmarks import features
from signpipe.landmarks.augment import (
    LIP_MIRROR_PARTNERS,
    POSE_MIRROR_PARTNERS,
    AlignCTCLabel,
    FeatureMask,
    FitLength,
    FrameBlockMask,
    FrameNoise,
    HorizontalFlip,
    LandmarkGroups,
    Normalize,
    Pad,
    RandomInterpolatedRotation,
    RandomResample,
    RandomScale,
    RandomShear,
    RandomShift,
    Sample,
    Sequential,
    TimeFlip,
    Truncate,
    collapse_alignment,
    ctc_min_frames,
    default_pipeline,
    feature_mirror,
    missing_points,
    resample_alignment,
    resample_frames,
    rotation_matrices,
)

GROUPS = (21, 14, 40)
Y_SCALE = 1.9

#: MediaPipe hand skeleton: wrist 0, thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20
HAND_BONES = np.array(
    [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
     (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20)]
)  # fmt: skip


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def feature_points(seed: int, n_frames: int, missing_hand_frames: slice | None = None) -> np.ndarray:
    """`[T, 75, 3]` like the features module's output: groups around 0, missing points 0."""
    points = rng(seed).normal(0.0, 0.4, size=(n_frames, sum(GROUPS), 3)).astype(np.float32)
    if missing_hand_frames is not None:
        points[missing_hand_frames, : GROUPS[0]] = 0.0
    return points


def aligned_label(runs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(label, alignment) from runs of (index, length), blank = CTC_BLANK."""
    alignment = np.concatenate([np.full(n, value) for value, n in runs]).astype(np.int32)
    return collapse_alignment(alignment), alignment


def run_spans(alignment: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, first frame, last frame) of each run."""
    starts = np.flatnonzero(np.concatenate(([True], alignment[1:] != alignment[:-1])))
    stops = np.append(starts[1:], alignment.size) - 1
    return [(int(alignment[a]), int(a), int(b)) for a, b in zip(starts, stops)]


def rigid_hand() -> np.ndarray:
    """`[21, 3]` a 3-D hand: five fingers fanned out from the wrist, curling towards -z.

    Not centred on the origin: (0, 0, 0) is the features module's mark of a missing point.
    """
    points = [np.zeros(3)]
    for finger, spread in enumerate(np.linspace(-0.9, 0.6, 5)):
        base = np.array([np.sin(spread), -np.cos(spread), 0.1 * finger]) * (0.35 if finger else 0.2)
        direction = np.array([np.sin(spread), -np.cos(spread), -0.4])
        for joint in range(4):
            points.append(base + direction * 0.12 * joint * (1.0 - 0.1 * joint))
    return np.array(points) + [0.1, 0.3, -0.05]


def bone_lengths(hand: np.ndarray) -> np.ndarray:
    return np.linalg.norm(hand[..., HAND_BONES[:, 0], :] - hand[..., HAND_BONES[:, 1], :], axis=-1)


# --- the sample and its conventions ---------------------------------------------------------------


def test_sample_marks_nan_and_zero_filled_points_missing_without_touching_the_input():
    points = np.ones((4, 3, 3), dtype=np.float32)
    points[0, 0] = 0.0
    points[1, 1, 2] = np.nan
    original = points.copy()
    sample = Sample(points)
    assert np.array_equal(missing_points(points), [[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]])
    assert np.isnan(sample.points[0, 0]).all() and np.isnan(sample.points[1, 1]).all()
    assert np.count_nonzero(np.isnan(sample.points)) == 6
    np.testing.assert_array_equal(points, original)
    assert sample.label.size == 0 and sample.alignment is None and sample.length == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(points=np.zeros((0, 5, 3))), "T >= 1"),
        (dict(points=np.zeros((3, 5, 2))), "T >= 1, P, 3"),
        (dict(points=np.ones((3, 5, 3)), label=np.array([-1])), "non-negative"),
        (dict(points=np.ones((3, 5, 3)), label=np.array([1]), alignment=np.array([1, 1])), "one integer index per frame"),
        (dict(points=np.ones((3, 5, 3)), label=np.array([1]), alignment=np.array([1, 60, 1])), "blank 59"),
        (dict(points=np.ones((3, 5, 3)), label=np.array([1, 1]), alignment=np.array([1, 1, 1])), "expected the label"),
    ],
)
def test_sample_rejects_inconsistent_input(kwargs, message):
    with pytest.raises(SignpipeError, match=message):
        Sample(**kwargs)


def test_collapse_alignment_and_ctc_min_frames_follow_ctc():
    blank = CTC_BLANK
    assert collapse_alignment(np.array([blank, 3, 3, blank, 3, 4, 4, blank])).tolist() == [3, 3, 4]
    assert collapse_alignment(np.array([3, 3, 3])).tolist() == [3]
    assert collapse_alignment(np.array([], dtype=np.int32)).size == 0
    assert ctc_min_frames(np.array([3, 3, 4, 4, 4, 5])) == 6 + 3
    assert ctc_min_frames(np.array([], dtype=np.int32)) == 0


# --- time -----------------------------------------------------------------------------------------


def test_time_flip_reverses_frames_label_and_alignment_together():
    label, alignment = aligned_label([(CTC_BLANK, 2), (7, 3), (CTC_BLANK, 1), (7, 2), (9, 4)])
    sample = Sample(feature_points(0, alignment.size), label, alignment)
    flipped = TimeFlip()(sample, rng())
    np.testing.assert_array_equal(flipped.points, sample.points[::-1])
    assert flipped.label.tolist() == [9, 7, 7]
    np.testing.assert_array_equal(flipped.alignment, alignment[::-1])
    np.testing.assert_array_equal(collapse_alignment(flipped.alignment), flipped.label)


def test_resample_interpolates_linear_motion_exactly_and_keeps_end_frames():
    t = np.arange(10, dtype=np.float32)[:, None, None]
    points = 0.5 + 0.1 * t * np.array([1.0, -2.0, 0.5], dtype=np.float32) + np.zeros((1, 4, 1), np.float32)
    stretched = resample_frames(Sample(points).points, 23)
    source_time = np.linspace(0, 9, 23)[:, None, None]
    expected = 0.5 + 0.1 * source_time * np.array([1.0, -2.0, 0.5]) + np.zeros((1, 4, 1))
    np.testing.assert_allclose(stretched, expected, atol=1e-5)
    np.testing.assert_array_equal(stretched[[0, -1]], points[[0, -1]])


def test_resample_keeps_a_point_missing_exactly_where_its_nearest_source_frame_misses_it():
    sample = Sample(feature_points(1, 30, missing_hand_frames=slice(10, 20)))
    for n_frames in (15, 30, 44):
        out = resample_frames(sample.points, n_frames)
        nearest = np.floor(np.linspace(0, 29, n_frames) + 0.5).astype(int)
        hand_missing = np.isnan(out[:, : GROUPS[0]]).all(axis=(1, 2))
        np.testing.assert_array_equal(hand_missing, (nearest >= 10) & (nearest < 20))
        assert not np.isnan(out[:, GROUPS[0] :]).any()


def test_random_resample_stretches_within_limit_and_moves_each_character_span_with_its_frames():
    label, alignment = aligned_label([(CTC_BLANK, 6), (4, 5), (CTC_BLANK, 4), (4, 6), (11, 5), (CTC_BLANK, 8), (2, 6)])
    sample = Sample(feature_points(2, alignment.size), label, alignment)
    lengths = set()
    for seed in range(40):
        out = RandomResample(limit=0.5)(sample, rng(seed))
        n = out.n_frames
        lengths.add(n)
        assert round(40 * 0.5) <= n <= round(40 * 1.5)
        assert out.alignment.shape == (n,)
        np.testing.assert_array_equal(collapse_alignment(out.alignment), label)
        # runs of 4+ frames never need repair: the alignment is exactly the nearest source frame's
        nearest = np.floor(np.linspace(0, 39, n) + 0.5).astype(int)
        np.testing.assert_array_equal(out.alignment, alignment[nearest])
        # and each span sits where its frames went
        stretch = (n - 1) / 39
        for (value, first, last), (new_value, new_first, new_last) in zip(run_spans(alignment), run_spans(out.alignment)):
            assert value == new_value
            assert abs(new_first - first * stretch) <= 1 and abs(new_last - last * stretch) <= 1
    assert len(lengths) > 10


def test_resample_alignment_keeps_every_one_frame_character_when_squeezed():
    # a peaky CTC alignment: one frame per character, blanks between, a repeated letter
    label, alignment = aligned_label(
        [(CTC_BLANK, 3), (5, 1), (CTC_BLANK, 1), (5, 1), (6, 1), (CTC_BLANK, 2), (7, 1), (8, 1), (CTC_BLANK, 2)]
    )
    squeezed = resample_alignment(alignment, 9)
    assert squeezed.size == 9
    np.testing.assert_array_equal(collapse_alignment(squeezed), label)
    assert [v for v, _, _ in run_spans(squeezed)] == [v for v, _, _ in run_spans(alignment)]
    with pytest.raises(ValueError, match="runs"):
        resample_alignment(alignment, 8)
    # RandomResample never squeezes below the number of runs
    sample = Sample(feature_points(3, alignment.size), label, alignment)
    for seed in range(20):
        out = RandomResample(limit=0.9)(sample, rng(seed))
        np.testing.assert_array_equal(collapse_alignment(out.alignment), label)


def test_truncate_cuts_frames_and_alignment_and_drops_only_characters_wholly_cut():
    label, alignment = aligned_label([(3, 4), (CTC_BLANK, 2), (4, 4), (5, 3), (6, 3)])
    sample = Sample(feature_points(4, alignment.size), label, alignment)
    out = Truncate(11)(sample, rng())
    np.testing.assert_array_equal(out.points, sample.points[:11])
    np.testing.assert_array_equal(out.alignment, alignment[:11])
    assert out.label.tolist() == [3, 4, 5]  # 5 is cut halfway and stays, 6 is gone
    unaligned = Truncate(11)(Sample(sample.points, label), rng())
    assert unaligned.n_frames == 11 and unaligned.label.tolist() == label.tolist()
    assert Truncate(100)(sample, rng()) is sample


def test_fit_length_squeezes_a_long_sequence_and_keeps_every_character():
    label, alignment = aligned_label([(3, 6), (CTC_BLANK, 2), (4, 6), (5, 5), (6, 5)])
    sample = Sample(feature_points(4, alignment.size), label, alignment)
    out = FitLength(12)(sample, rng())
    assert out.n_frames == 12 and out.alignment.size == 12
    np.testing.assert_array_equal(collapse_alignment(out.alignment), label)  # nothing cut, unlike Truncate
    np.testing.assert_array_equal(out.points[[0, -1]], sample.points[[0, -1]])  # first and last frames kept
    unaligned = FitLength(12)(Sample(sample.points, label), rng())
    assert unaligned.n_frames == 12 and unaligned.label.tolist() == label.tolist()
    assert FitLength(100)(sample, rng()) is sample
    assert FitLength(3)(sample, rng()) is sample  # 4 aligned characters cannot fit in 3 frames: left for Truncate


def test_align_ctc_label_stretches_a_short_sequence_to_the_frames_its_label_needs():
    label = np.array([3, 3, 4, 5])  # needs 5 frames
    short = Sample(feature_points(5, 2), label)
    out = AlignCTCLabel()(short, rng())
    assert out.n_frames == 5 and out.label.tolist() == label.tolist()
    np.testing.assert_array_equal(out.points[[0, -1]], short.points[[0, -1]])
    # only when even that would not fit max_length are trailing characters dropped
    capped = AlignCTCLabel(max_length=3)(short, rng())
    assert capped.label.tolist() == [3, 3] and capped.n_frames == 3
    for sample in (Sample(feature_points(6, 5), label), Sample(feature_points(6, 1))):
        assert AlignCTCLabel(max_length=3)(sample, rng()) is sample


def test_pad_fills_missing_points_and_padding_with_zero_and_marks_real_frames():
    label, alignment = aligned_label([(3, 2), (4, 3)])
    sample = Sample(feature_points(7, 5, missing_hand_frames=slice(1, 3)), label, alignment)
    sample = FeatureMask(ratio=0.2)(sample, rng())
    out = Pad(8)(sample, rng())
    assert out.points.shape == (8, 75, 3) and out.points.dtype == np.float32
    assert not np.isnan(out.points).any()
    np.testing.assert_array_equal(out.mask, [1, 1, 1, 1, 1, 0, 0, 0])
    assert out.length == 5
    np.testing.assert_array_equal(out.points[5:], 0.0)
    np.testing.assert_array_equal(out.points[:5] == 0, np.isnan(sample.points))
    np.testing.assert_array_equal(out.alignment, np.append(alignment, [CTC_BLANK] * 3))
    with pytest.raises(SignpipeError, match="Truncate"):
        Pad(4)(sample, rng())
    with pytest.raises(ConfigError, match="before Pad"):
        TimeFlip()(out, rng())


# --- 3-D geometry ---------------------------------------------------------------------------------


def test_rotation_matrices_are_rotations():
    vectors = rng(8).uniform(-np.pi, np.pi, size=(50, 3))
    matrices = rotation_matrices(vectors)
    np.testing.assert_allclose(matrices @ np.swapaxes(matrices, -1, -2), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(matrices), 1.0)
    np.testing.assert_allclose(rotation_matrices(np.array([0, 0, np.pi / 2])) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_array_equal(rotation_matrices(np.zeros(3)), np.eye(3))
    # the rotation axis is left where it is
    np.testing.assert_allclose(matrices @ vectors[..., None], vectors[..., None], atol=1e-12)


def test_rotation_keeps_bone_lengths_only_after_the_y_scale_is_restored():
    hand = np.repeat(rigid_hand()[None], 6, axis=0)  # [T, 21, 3], true 3-D shape
    camera = hand * [1.0, 1.0 / Y_SCALE, 1.0]  # what MediaPipe reports: y squeezed by the aspect ratio
    rotate = RandomInterpolatedRotation(center_stdev=0.2, angle_limit=np.pi / 4)

    # wrong order: rotate the squeezed points, restore y afterwards -> a sheared hand
    wrong = rotate(Sample(camera), rng(9)).points * [1.0, Y_SCALE, 1.0]
    # right order (what the features module does first): restore y, then rotate
    right = rotate(Sample(camera * [1.0, Y_SCALE, 1.0]), rng(9)).points

    true_lengths = bone_lengths(hand)
    np.testing.assert_allclose(bone_lengths(right), true_lengths, rtol=1e-5)
    assert np.abs(bone_lengths(wrong) / true_lengths - 1).max() > 0.05
    # the rotation drifts over time: first and last frames are turned differently
    assert np.abs(right[0] - right[-1]).max() > 1e-3


def test_rotation_leaves_zero_filled_missing_points_missing():
    points = feature_points(10, 12, missing_hand_frames=slice(3, 7))
    sample = Sample(points)
    rotated = RandomInterpolatedRotation(center_stdev=0.5)(sample, rng(10))
    frame = np.arange(12)
    expected = np.zeros((12, 75), dtype=bool)
    expected[(frame >= 3) & (frame < 7), : GROUPS[0]] = True
    np.testing.assert_array_equal(missing_points(rotated.points), expected)
    assert not np.allclose(rotated.points[:3], sample.points[:3])
    padded = Pad(12)(rotated, rng())
    np.testing.assert_array_equal(padded.points[3:7, :21], 0.0)


def test_shear_scale_and_shift_stay_within_their_limits():
    sample = Sample(feature_points(11, 5))
    for seed in range(20):
        scaled = RandomScale(limit=0.2)(sample, rng(seed)).points / sample.points
        factors = scaled.reshape(-1, 3)
        np.testing.assert_allclose(factors, np.broadcast_to(factors[0], factors.shape), rtol=1e-5)
        assert np.all((0.8 <= factors[0]) & (factors[0] <= 1.2))

        shifted = RandomShift(stdev=0.1)(sample, rng(seed)).points - sample.points
        np.testing.assert_allclose(shifted.reshape(-1, 3), np.broadcast_to(shifted[0, 0], (75 * 5, 3)), atol=1e-6)

        sheared = RandomShear(limit=0.2)(sample, rng(seed)).points
        changed = np.flatnonzero(np.abs(sheared - sample.points).max(axis=(0, 1)) > 1e-7)
        assert changed.size == 1  # one axis moves, by a mix of the other two
        axis = int(changed[0])
        others = [a for a in range(3) if a != axis]
        coefficients, *_ = np.linalg.lstsq(
            sample.points[..., others].reshape(-1, 2), (sheared - sample.points)[..., axis].reshape(-1), rcond=None
        )
        assert np.all(np.abs(coefficients) <= 0.2 + 1e-6)


def test_sequential_affine_chain_is_composed_but_equals_one_by_one():
    chain = (
        RandomInterpolatedRotation(0.2, np.pi / 4, p=0.5),
        RandomShear(limit=0.2),
        RandomScale(limit=0.2),
        RandomShift(stdev=0.1),
    )
    fused = Sequential(*chain)
    assert fused.fused
    sample = Sample(feature_points(12, 9, missing_hand_frames=slice(2, 4)))
    for seed in range(8):
        one_by_one, stream = sample, rng(seed)
        for transform in chain:
            one_by_one = transform(one_by_one, stream)
        together = fused(sample, rng(seed))
        np.testing.assert_allclose(together.points, one_by_one.points, atol=1e-5)
        np.testing.assert_array_equal(np.isnan(together.points), np.isnan(sample.points))


def test_horizontal_flip_mirrors_x_about_each_group_centre():
    points = feature_points(13, 6) + np.float32(0.3)  # groups off-centre
    points[:2, :21] = np.nan
    sample = Sample(points)
    flipped = HorizontalFlip(lengths=GROUPS)(sample, rng()).points
    np.testing.assert_array_equal(flipped[..., 1:], sample.points[..., 1:])
    start = 0
    for n in GROUPS:
        x, fx = sample.points[:, start : start + n, 0], flipped[:, start : start + n, 0]
        centre = np.nanmean(x)
        np.testing.assert_allclose(fx, 2 * centre - x, atol=1e-5)
        np.testing.assert_allclose(np.nanmean(fx), centre, atol=1e-5)
        start += n
    assert np.isnan(flipped[:2, :21]).all()


def test_feature_mirror_swaps_left_and_right_landmarks_but_not_the_dominant_hand_slot():
    mirror = np.array(feature_mirror())
    np.testing.assert_array_equal(mirror[mirror], np.arange(75))  # an involution
    np.testing.assert_array_equal(mirror[:21], np.arange(21))
    pose_slot = {p: 21 + i for i, p in enumerate(features.POSE_POINTS)}
    assert mirror[pose_slot[11]] == pose_slot[12] and mirror[pose_slot[23]] == pose_slot[24]
    lip_slot = {p: 35 + i for i, p in enumerate(features.LIP_FACE_POINTS)}
    assert mirror[lip_slot[61]] == lip_slot[291] and mirror[lip_slot[0]] == lip_slot[0]
    assert set(LIP_MIRROR_PARTNERS) == set(features.LIP_FACE_POINTS)
    assert all(POSE_MIRROR_PARTNERS[POSE_MIRROR_PARTNERS[p]] == p for p in POSE_MIRROR_PARTNERS)

    flip = HorizontalFlip(lengths=GROUPS, mirror=tuple(mirror))
    sample = Sample(feature_points(14, 4))
    once = flip(sample, rng())
    # the left-shoulder slot now holds the mirrored right shoulder
    np.testing.assert_allclose(once.points[:, pose_slot[11], 1:], sample.points[:, pose_slot[12], 1:])
    np.testing.assert_allclose(flip(once, rng()).points, sample.points, atol=1e-5)


def test_lip_mirror_partners_match_real_faces(signs_sample):
    """Real mouths, mirrored, lie on themselves with the partners swapped: better than without the
    swap, and better than with any two partners exchanged (a mistake in the table)."""
    table = pd.read_csv(signs_sample / "train.csv")
    lips = list(features.LIP_FACE_POINTS)
    mouths = []
    for path in table["path"].iloc[::6]:
        xyz = pd.read_parquet(signs_sample / path, columns=["x", "y", "z"]).to_numpy(np.float32)
        mouths.append(xyz.reshape(-1, 543, 3)[:, lips, :2] * [1.0, Y_SCALE])
    mouths = np.concatenate(mouths)
    mouths = mouths[~np.isnan(mouths).any(axis=(1, 2))]
    mouths -= mouths.mean(axis=1, keepdims=True)
    mirrored = mouths * [-1.0, 1.0]

    def misfit(partners: dict[int, int]) -> float:
        slots = [lips.index(partners[p]) for p in lips]
        return float(np.linalg.norm(mirrored[:, slots] - mouths, axis=-1).mean())

    assert len(mouths) > 100
    table_misfit = misfit(LIP_MIRROR_PARTNERS)
    assert table_misfit < 0.5 * misfit({p: p for p in lips})
    left = [p for p in lips if LIP_MIRROR_PARTNERS[p] > p]
    for i, a in enumerate(left):
        for b in left[i + 1 :]:
            exchanged = dict(LIP_MIRROR_PARTNERS)
            exchanged[a], exchanged[b] = LIP_MIRROR_PARTNERS[b], LIP_MIRROR_PARTNERS[a]
            exchanged[exchanged[a]], exchanged[exchanged[b]] = a, b
            assert table_misfit < misfit(exchanged), (a, b)


# --- masking --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.1, 0.8])
def test_frame_block_mask_hides_about_ratio_of_frames_in_blocks(ratio):
    sample = Sample(feature_points(15, 60))
    transform = FrameBlockMask(ratio=ratio, block_size=3)
    stream, shares = rng(15), []
    for _ in range(300):
        hidden = np.isnan(transform(sample, stream).points).all(axis=(1, 2))
        shares.append(hidden.mean())
        # hidden frames come in runs of whole blocks (shorter only at either end of the sequence)
        for value, first, last in run_spans(hidden.astype(np.int32)):
            if value and first > 0 and last < 59:
                assert (last - first + 1) % 3 == 0
    assert abs(np.mean(shares) - ratio) < 0.02
    assert np.std(shares) < 0.05  # a count per draw, not a coin per block


def test_feature_mask_hides_about_ratio_of_points_in_every_frame():
    sample = Sample(feature_points(16, 5))
    stream, shares = rng(16), []
    for _ in range(300):
        points = FeatureMask(ratio=0.1)(sample, stream).points
        hidden = np.isnan(points).all(axis=(0, 2))
        assert np.array_equal(np.isnan(points).any(axis=(0, 2)), hidden)
        shares.append(hidden.mean())
    assert abs(np.mean(shares) - 0.1) < 0.01


@pytest.mark.parametrize("replace", [True, False])
def test_frame_noise_corrupts_about_ratio_of_frames_and_invents_no_points(replace):
    sample = Sample(feature_points(17, 50, missing_hand_frames=slice(0, 25)))
    transform = FrameNoise(ratio=0.1, noise_stdev=0.3, replace=replace)
    stream, shares, noise = rng(17), [], []
    for _ in range(200):
        points = transform(sample, stream).points
        np.testing.assert_array_equal(np.isnan(points), np.isnan(sample.points))
        changed = np.nanmax(np.abs(points - sample.points), axis=(1, 2)) > 0
        shares.append(changed.mean())
        # pose and lips are present in every frame: what they hold now is noise (or original + noise)
        noise.append((points if replace else points - sample.points)[changed, GROUPS[0] :].ravel())
    assert abs(np.mean(shares) - 0.1) < 0.01
    noise = np.concatenate(noise)
    assert abs(noise.std() - 0.3) < 0.02 and abs(noise.mean()) < 0.02


# --- combining ------------------------------------------------------------------------------------


def test_landmark_groups_give_each_group_its_own_draw():
    sample = Sample(feature_points(18, 4))
    shifted = LandmarkGroups(RandomShift(stdev=0.5), lengths=GROUPS)(sample, rng(18)).points - sample.points
    offsets = [shifted[:, a:b].reshape(-1, 3) for a, b in ((0, 21), (21, 35), (35, 75))]
    for offset in offsets:
        np.testing.assert_allclose(offset, np.broadcast_to(offset[0], offset.shape), atol=1e-6)
    assert not np.allclose(offsets[0][0], offsets[1][0]) and not np.allclose(offsets[1][0], offsets[2][0])

    only_pose = LandmarkGroups((Sequential(), RandomShift(stdev=0.5), Sequential()), lengths=GROUPS)
    changed = np.abs(only_pose(sample, rng(18)).points - sample.points).max(axis=(0, 2)) > 0
    np.testing.assert_array_equal(changed, (np.arange(75) >= 21) & (np.arange(75) < 35))


def test_landmark_groups_refuse_time_changes_and_wrong_point_counts():
    sample = Sample(feature_points(19, 10))
    with pytest.raises(ConfigError, match="only coordinate transforms"):
        LandmarkGroups(RandomResample(limit=0.5), lengths=GROUPS)(sample, rng(1))
    with pytest.raises(SignpipeError, match="expected 74 points"):
        LandmarkGroups(RandomShift(), lengths=(20, 14, 40))(sample, rng())
    with pytest.raises(ConfigError, match="one per group"):
        LandmarkGroups((RandomShift(), RandomShift()), lengths=GROUPS)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomShift(p=1.5),
        lambda: FrameBlockMask(ratio=1.2),
        lambda: FrameBlockMask(block_size=0),
        lambda: RandomResample(limit=1.0),
        lambda: Truncate(0),
        lambda: HorizontalFlip(mirror=(0, 0, 1)),
        lambda: HorizontalFlip(lengths=(2, 2), mirror=(0, 1, 2)),
    ],
)
def test_bad_parameters_are_refused_at_construction(make):
    with pytest.raises(ConfigError):
        make()


def test_normalize_is_the_features_module_normalization_with_missing_points_kept_nan():
    raw = rng(20).normal(0.5, 0.2, size=(7, 14, 3)).astype(np.float32)
    raw[2:4] = np.nan
    out = Normalize()(Sample(raw), rng()).points
    expected = features._normalize_group(raw, None, np)
    np.testing.assert_allclose(np.nan_to_num(out), expected, atol=1e-6)
    assert np.isnan(out[2:4]).all() and not np.isnan(out[[0, 1, 4, 5, 6]]).any()
    assert np.nanmax(np.abs(out[..., :2])) == pytest.approx(1.0)


# --- the seed's pipeline --------------------------------------------------------------------------


def test_default_pipeline_is_deterministic_for_a_seed():
    label, alignment = aligned_label([(CTC_BLANK, 10), (3, 10), (4, 10), (CTC_BLANK, 10)])
    sample = Sample(feature_points(21, 40, missing_hand_frames=slice(0, 12)), label, alignment)
    augment = default_pipeline(max_length=64)
    first, again = augment(sample, rng(21)), augment(sample, rng(21))
    np.testing.assert_array_equal(first.points, again.points)
    np.testing.assert_array_equal(first.mask, again.mask)
    np.testing.assert_array_equal(first.alignment, again.alignment)
    outputs = [augment(sample, rng(seed)).points for seed in range(5)]
    assert not all(np.array_equal(outputs[0], other) for other in outputs[1:])


@pytest.mark.parametrize("n_frames", [1, 3, 40, 150])
def test_default_pipeline_output_is_model_ready_and_ctc_feasible(n_frames):
    augment = default_pipeline(max_length=96)
    label = np.array([5, 5, 6, 7, 8, 9])  # needs 7 frames
    sample = Sample(feature_points(22, n_frames, missing_hand_frames=slice(0, n_frames // 2)), label)
    for seed in range(30):
        out = augment(sample, rng(seed))
        assert out.points.shape == (96, 75, 3) and out.points.dtype == np.float32
        assert np.isfinite(out.points).all()
        assert out.mask[: out.length].all() and not out.mask[out.length :].any()
        np.testing.assert_array_equal(out.points[out.length :], 0.0)
        assert ctc_min_frames(out.label) <= out.length
        assert out.label.tolist() == label.tolist() or out.label.tolist() == label[::-1].tolist()


def test_evaluation_pipeline_only_truncates_fits_the_label_and_pads():
    sample = Sample(feature_points(23, 100), np.array([1, 2, 3]))
    out = default_pipeline(max_length=64, train=False)(sample, rng())
    np.testing.assert_array_equal(out.points[:64], np.nan_to_num(sample.points[:64]))
    assert out.length == 64 and out.label.tolist() == [1, 2, 3]
