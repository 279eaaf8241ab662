"""Temporal CutMix keeps frames, alignment and label consistent: checked on samples whose every
frame carries the class its known span gives it, and through the augmented training batches."""

from __future__ import annotations

import numpy as np
import pytest

from signpipe.fingerspelling.align.artifact import AlignedSequence, AlignmentRecords
from signpipe.fingerspelling.align.cutmix import CutMixBatches, attach_alignments, temporal_cutmix, unpadded
from signpipe.fingerspelling.align.viterbi import SequenceAlignment
from signpipe.data.schema import CTC_BLANK
from signpipe.errors import ConfigError, SignpipeError
from signpipe.landmarks.augment import Pad, Sample, collapse_alignment
from signpipe.fingerspelling.data import LabelledSplit, TrainBatches

N_POINTS = 75


def spelled(label: list[int], rng: np.random.Generator, tag: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Frames and per-frame alignment of a phrase with known spans: each character holds 1-4 frames,
    blanks (0-2 frames) around them. Every point of a frame stores its class + 1 in x, `tag` in y
    and its frame number + 1 in z, so where a frame came from can be read back after any cut."""
    pieces = []
    for index, character in enumerate(label):
        needs_blank = index > 0 and label[index - 1] == character
        pieces += [CTC_BLANK] * int(rng.integers(1 if needs_blank else 0, 3)) + [character] * int(rng.integers(1, 5))
    pieces += [CTC_BLANK] * int(rng.integers(0, 3))
    alignment = np.array(pieces, dtype=np.int32)
    points = np.empty((alignment.size, N_POINTS, 3), dtype=np.float32)
    points[:, :, 0] = alignment[:, None] + 1
    points[:, :, 1] = tag
    points[:, :, 2] = np.arange(1, alignment.size + 1)[:, None]
    return points, alignment


def classes_of(points: np.ndarray) -> np.ndarray:
    return np.rint(points[:, 0, 0]).astype(np.int32) - 1


def random_sample(rng: np.random.Generator, n_characters: tuple[int, int] = (1, 12), tag: float = 0.5) -> Sample:
    label = rng.integers(0, 8, size=int(rng.integers(*n_characters))).tolist()
    points, alignment = spelled(label, rng, tag)
    return Sample(points, np.array(label), alignment)


def test_cut_frames_carry_the_classes_of_the_cut_alignment():
    rng = np.random.default_rng(0)
    for _ in range(300):
        first, second = random_sample(rng, tag=0.25), random_sample(rng, tag=0.75)
        mixed = temporal_cutmix(first, second, rng)
        assert mixed is not None
        # every frame shows the class the mixed alignment says, and the label is what it spells
        np.testing.assert_array_equal(classes_of(mixed.points), mixed.alignment)
        np.testing.assert_array_equal(mixed.label, collapse_alignment(mixed.alignment))
        assert mixed.label.size >= 1
        lengths = sorted((first.n_frames, second.n_frames))
        assert lengths[0] - 1 <= mixed.n_frames <= lengths[1] + 1
        # a head of the first sample, one run of the second, the first's tail: frames in order
        from_second = mixed.points[:, 0, 1] == np.float32(0.75)
        frame = np.rint(mixed.points[:, 0, 2]).astype(int) - 1
        inserted = np.flatnonzero(from_second)
        assert inserted.size >= 1 and np.all(np.diff(inserted) == 1)
        assert np.all(np.diff(frame[inserted]) == 1)
        head, tail = frame[: inserted[0]], frame[inserted[-1] + 1 :]
        np.testing.assert_array_equal(head, np.arange(head.size))
        np.testing.assert_array_equal(tail, np.arange(first.n_frames - tail.size, first.n_frames))
        Sample(mixed.points, mixed.label, mixed.alignment)  # passes the Sample's own consistency check


def test_an_empty_or_too_long_label_is_drawn_again_and_then_given_up():
    rng = np.random.default_rng(1)
    # the first sample spells one character in its first frame only; the partner is all blank
    points = np.full((12, N_POINTS, 3), 0.5, np.float32)
    alignment = np.array([4] + [CTC_BLANK] * 11, dtype=np.int32)
    first = Sample(points, np.array([4]), alignment)
    blank_only = Sample(points, np.zeros(0, np.int32), np.full(12, CTC_BLANK, np.int32))
    outcomes = [temporal_cutmix(first, blank_only, rng, retries=20) for _ in range(50)]
    assert all(m is not None and m.label.tolist() == [4] for m in outcomes)
    assert temporal_cutmix(blank_only, blank_only, rng, retries=3) is None
    long_first, long_second = random_sample(rng, (20, 21)), random_sample(rng, (20, 21))
    for _ in range(30):
        mixed = temporal_cutmix(long_first, long_second, rng, max_label_length=8)
        assert mixed is None or mixed.label.size <= 8
    with pytest.raises(SignpipeError, match="need a per-frame alignment"):
        temporal_cutmix(Sample(points, np.array([4])), first, rng)


def test_padded_samples_are_cut_on_their_real_frames_and_max_length_holds():
    rng = np.random.default_rng(2)
    first, second = random_sample(rng, (8, 10)), random_sample(rng, (8, 10))
    padded = Pad(64)(first, rng)
    assert unpadded(padded).n_frames == first.n_frames
    np.testing.assert_array_equal(unpadded(padded).alignment, first.alignment)
    for _ in range(50):
        mixed = temporal_cutmix(padded, Pad(64)(second, rng), rng, max_length=10)
        assert mixed is not None and mixed.mask is None and mixed.n_frames <= 10
        np.testing.assert_array_equal(classes_of(mixed.points), mixed.alignment)
        np.testing.assert_array_equal(mixed.label, collapse_alignment(mixed.alignment))


def spelled_split(n: int, seed: int, max_characters: int = 10) -> tuple[LabelledSplit, list[np.ndarray]]:
    """A training split of `n` spelled sequences with their true alignments."""
    rng = np.random.default_rng(seed)
    features, labels, alignments = [], [], []
    for _ in range(n):
        label = rng.integers(0, 8, size=int(rng.integers(2, max_characters + 1)))
        points, alignment = spelled(label.tolist(), rng)
        points[:, :, 1:] = rng.normal(0.0, 0.3, size=(len(points), N_POINTS, 2))  # shapes for the augmentations
        features.append(points)
        labels.append(label.astype(np.int32))
        alignments.append(alignment)
    split = LabelledSplit("train", features, labels, ["x" * len(label) for label in labels],
                          np.arange(100, 100 + n, dtype=np.int64), 0)  # fmt: skip
    return split, alignments


BATCH_OPTIONS = dict(batch_size=8, max_length=48, length_bucket=16, max_label_length=12, seed=5)


def test_batches_mix_rows_consistently_through_the_augmentations():
    split, alignments = spelled_split(24, seed=3)
    alignments[0] = None  # a flagged sequence: trained as it is, never a partner
    batches = CutMixBatches(split, alignments, probability=1.0, augment=True, **BATCH_OPTIONS)
    assert 0 not in batches.partners.tolist()
    n_mixed = 0
    for index in range(len(split)):
        rng = np.random.default_rng([7, index])
        sample = batches.mixed_sample(index, rng)
        assert sample.n_frames <= 48 and sample.label.size <= 12
        if index == 0:
            assert sample.alignment is None
            continue
        np.testing.assert_array_equal(sample.label, collapse_alignment(sample.alignment))
        n_mixed += not np.array_equal(np.sort(sample.label), np.sort(split.labels[index]))
    assert n_mixed > len(split) // 2
    batch = next(batches)
    assert batch["inputs"].shape[0] == 8 and batch["labels"].shape == (8, 12)
    assert np.isfinite(batch["inputs"]).all()


def test_without_augmentation_batch_frames_match_their_labels():
    split, alignments = spelled_split(16, seed=4)
    batches = CutMixBatches(split, alignments, probability=1.0, augment=False, **BATCH_OPTIONS)
    for _ in range(4):
        batch = next(batches)
        for row in range(8):
            n_frames = int(batch["mask"][row].sum())
            frame_classes = classes_of(batch["inputs"][row, :n_frames].reshape(n_frames, N_POINTS, 3))
            label = batch["labels"][row, batch["label_mask"][row]]
            np.testing.assert_array_equal(collapse_alignment(frame_classes), label)


def test_batches_are_restorable_and_probability_zero_is_the_plain_source():
    split, alignments = spelled_split(24, seed=5)
    mixing = CutMixBatches(split, alignments, probability=0.7, augment=True, **BATCH_OPTIONS)
    next(mixing)
    state = mixing.state
    expected = next(mixing)
    again = CutMixBatches(split, alignments, probability=0.7, augment=True, **BATCH_OPTIONS)
    again.restore(state)
    for key, value in next(again).items():
        np.testing.assert_array_equal(value, expected[key])
    plain = TrainBatches(split, augment=True, **BATCH_OPTIONS)
    never = CutMixBatches(split, alignments, 0.0, augment=True, **BATCH_OPTIONS)
    for _ in range(2):
        a, b = next(plain), next(never)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    with pytest.raises(ConfigError, match="probability must be in"):
        CutMixBatches(split, alignments, 1.5, **BATCH_OPTIONS)


def records_for(split: LabelledSplit, alignments: list[np.ndarray], flagged: set[int] = frozenset()) -> AlignmentRecords:
    rows = []
    for index, (sequence_id, frame_classes) in enumerate(zip(split.sequence_ids, alignments, strict=True)):
        n = int(collapse_alignment(frame_classes).size)
        alignment = SequenceAlignment(frame_classes, np.zeros((n, 2), np.int32), np.ones(n, np.float32), 0.9, -1.0,
                                      impossible=False, low_confidence=index in flagged)  # fmt: skip
        rows.append(AlignedSequence(int(sequence_id), "train", split.phrases[index], alignment))
    return AlignmentRecords(rows)


def test_attaching_an_artifact_checks_frames_and_phrases():
    split, alignments = spelled_split(6, seed=6)
    records = records_for(split, alignments, flagged={1})
    records.rows.pop(2)  # not aligned at all
    attached = attach_alignments(split, records, "ali")
    assert (attached.n_usable, attached.n_flagged, attached.n_missing) == (4, 1, 1)
    assert attached.frame_classes[1] is None and attached.frame_classes[2] is None
    np.testing.assert_array_equal(attached.frame_classes[0], alignments[0])
    shorter = [a[:-1] if k == 3 else a for k, a in enumerate(alignments)]
    with pytest.raises(SignpipeError, match=r"sequence 103 is aligned over \d+ frames but has \d+"):
        attach_alignments(split, records_for(split, shorter), "ali")
    wrong = [np.where(a == CTC_BLANK, a, (a + 1) % 8) if k == 4 else a for k, a in enumerate(alignments)]
    with pytest.raises(SignpipeError, match="the alignment of sequence 104 spells"):
        attach_alignments(split, records_for(split, wrong), "ali")
    with pytest.raises(SignpipeError, match="no usable alignment"):
        attach_alignments(split, records_for(split, alignments, flagged=set(range(6))), "ali")
