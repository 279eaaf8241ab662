"""CTC forced alignment: exact against brute force, batch-independent, flags what it cannot align;
the artifact round trip; `align_shards` and `signpipe align` on a saved checkpoint."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from signpipe.fingerspelling.align import (
    ALIGNMENTS_FILE,
    SUMMARY_FILE,
    AlignedSequence,
    character_segments,
    ctc_forced_align,
    read_alignments,
    write_alignments,
)
from signpipe.data.schema import CTC_BLANK
from signpipe.errors import SignpipeError
from signpipe.landmarks.augment import collapse_alignment

N_CLASSES = 60


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def brute_force_best_path(log_probs: np.ndarray, label: np.ndarray, blank: int) -> tuple[float, tuple | None]:
    """The best path over every class sequence that collapses to `label` (tiny inputs only)."""
    n_frames, n_classes = log_probs.shape
    best, best_path = -np.inf, None
    for path in itertools.product(range(n_classes), repeat=n_frames):
        if np.array_equal(collapse_alignment(np.array(path), blank), label):
            score = log_probs[np.arange(n_frames), path].sum()
            if score > best:
                best, best_path = score, path
    return best, best_path


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_finds_the_brute_force_best_path(seed):
    rng = np.random.default_rng(seed)
    n_classes, blank = 4, 3
    for _ in range(8):
        n_frames, n_characters = int(rng.integers(1, 7)), int(rng.integers(0, 4))
        label = rng.integers(0, 3, size=n_characters)
        log_probs = log_softmax(rng.normal(size=(n_frames, n_classes)) * 2)
        best, best_path = brute_force_best_path(log_probs, label, blank)
        out = ctc_forced_align(log_probs[None], [n_frames], label.reshape(1, -1), [n_characters], blank=blank)
        if best_path is None:
            assert out.impossible[0]
            continue
        assert not out.impossible[0]
        assert out.path_log_prob[0] == pytest.approx(best, abs=1e-4)
        frame_classes = out.frame_classes[0, :n_frames]
        assert np.array_equal(collapse_alignment(frame_classes, blank), label)
        assert log_probs[np.arange(n_frames), frame_classes].sum() == pytest.approx(best, abs=1e-4)


def test_a_batch_aligns_each_sequence_as_if_it_were_alone():
    rng = np.random.default_rng(1)
    batch, max_frames, max_characters = 6, 40, 9
    log_probs = log_softmax(rng.normal(size=(batch, max_frames, N_CLASSES)).astype(np.float32) * 3)
    frame_lengths = rng.integers(20, max_frames + 1, size=batch)
    label_lengths = rng.integers(1, max_characters + 1, size=batch)
    labels = rng.integers(0, 59, size=(batch, max_characters))
    labels[:, 1] = labels[:, 0]  # a doubled letter somewhere
    together = ctc_forced_align(log_probs, frame_lengths, labels, label_lengths)
    for b in range(batch):
        alone = ctc_forced_align(
            log_probs[b : b + 1, : frame_lengths[b]], frame_lengths[b : b + 1], labels[b : b + 1, : label_lengths[b]],
            label_lengths[b : b + 1],
        ).sequence(0)
        mine = together.sequence(b)
        np.testing.assert_array_equal(mine.frame_classes, alone.frame_classes)
        np.testing.assert_array_equal(mine.spans, alone.spans)
        assert mine.path_log_prob == pytest.approx(alone.path_log_prob, abs=1e-3)
        assert np.array_equal(collapse_alignment(mine.frame_classes), labels[b, : label_lengths[b]])
    assert (together.frame_classes[np.arange(max_frames)[None, :] >= frame_lengths[:, None]] == CTC_BLANK).all()


def peaky_log_probs(frame_classes: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Log-probabilities that put `peak` on the given class of each frame."""
    probs = np.full((len(frame_classes), N_CLASSES), (1 - peak) / (N_CLASSES - 1))
    probs[np.arange(len(frame_classes)), frame_classes] = peak
    return np.log(probs).astype(np.float32)


def test_a_confident_model_gives_back_the_alignment_it_encodes():
    b, blank = 7, CTC_BLANK
    truth = np.array([blank, 3, 3, blank, 3, b, b, b, blank, blank, 11, blank])  # "d d h l" with a doubled d
    out = ctc_forced_align(peaky_log_probs(truth)[None], [len(truth)], np.array([[3, 3, 7, 11]]), [4]).sequence(0)
    np.testing.assert_array_equal(out.frame_classes, truth)
    np.testing.assert_array_equal(out.spans, [[1, 3], [4, 5], [5, 8], [10, 11]])
    assert out.confidence == pytest.approx(0.9, abs=1e-5)
    np.testing.assert_allclose(out.character_confidence, 0.9, atol=1e-5)
    assert not out.impossible and not out.low_confidence
    # raw logits (not normalized) give the same path and the same confidence
    raw = ctc_forced_align(peaky_log_probs(truth)[None] + 5.0, [len(truth)], np.array([[3, 3, 7, 11]]), [4]).sequence(0)
    np.testing.assert_array_equal(raw.frame_classes, truth)
    assert raw.confidence == pytest.approx(out.confidence, abs=1e-5)


def test_impossible_and_low_confidence_sequences_are_flagged_not_dropped():
    rng = np.random.default_rng(2)
    labels = np.array([[5, 5, 6], [5, 6, 7], [5, 6, 7]])
    log_probs = np.zeros((3, 8, N_CLASSES), np.float32)
    log_probs[0] = log_softmax(rng.normal(size=(8, N_CLASSES)))
    log_probs[1] = np.log(1.0 / N_CLASSES)  # a model that knows nothing
    log_probs[2, :6] = peaky_log_probs(np.array([CTC_BLANK, 5, 6, 6, 7, CTC_BLANK]))
    out = ctc_forced_align(log_probs, [3, 8, 6], labels, [3, 3, 3])
    # "55x" needs 4 frames (a blank between the fives): 3 is impossible
    first = out.sequence(0)
    assert first.impossible and not first.low_confidence
    assert (first.frame_classes == CTC_BLANK).all() and (first.spans == -1).all() and first.confidence == 0.0
    assert np.isneginf(first.path_log_prob)
    assert out.sequence(1).low_confidence and not out.sequence(1).impossible
    assert not out.sequence(2).low_confidence
    # one unsupported character is enough to flag a sequence whose mean confidence is high
    weak = peaky_log_probs(np.array([CTC_BLANK, 5, 6, 6, 6, 6, 6, 6, CTC_BLANK]), peak=0.99)
    one_missing = ctc_forced_align(weak[None], [9], np.array([[5, 6, 7]]), [3]).sequence(0)
    assert one_missing.confidence > 0.8 and one_missing.character_confidence.min() < 0.05
    assert one_missing.low_confidence
    lenient = ctc_forced_align(weak[None], [9], np.array([[5, 6, 7]]), [3], min_character_confidence=0.0).sequence(0)
    assert not lenient.low_confidence


def test_bad_shapes_are_user_errors():
    with pytest.raises(SignpipeError, match=r"expected log-probabilities \[B, T, C\]"):
        ctc_forced_align(np.zeros((4, 60)), [4], np.zeros((1, 1), int), [1])
    with pytest.raises(SignpipeError, match="frame lengths must be in"):
        ctc_forced_align(np.zeros((1, 4, 60)), [5], np.zeros((1, 1), int), [1])
    with pytest.raises(SignpipeError, match="label indices must be in"):
        ctc_forced_align(np.zeros((1, 4, 60)), [4], np.full((1, 1), 60), [1])


def test_character_segments_tile_the_spelled_stretch():
    spans = np.array([[2, 3], [6, 7], [7, 9], [12, 13]])
    segments = character_segments(spans, 15)
    np.testing.assert_array_equal(segments, [[2, 5], [5, 7], [7, 11], [11, 13]])
    assert (segments[1:, 0] == segments[:-1, 1]).all()
    assert character_segments(np.full((2, 2), -1), 5).tolist() == [[-1, -1], [-1, -1]]


def _rows() -> list[AlignedSequence]:
    truth = np.array([CTC_BLANK, 3, 3, CTC_BLANK, 3, 7, CTC_BLANK])
    log_probs = np.stack([peaky_log_probs(truth), peaky_log_probs(np.full(7, CTC_BLANK))])
    out = ctc_forced_align(log_probs, [7, 2], np.array([[3, 3, 7], [4, 4, 0]]), [3, 2])
    return [AlignedSequence(11, "train", "ddh", out.sequence(0)), AlignedSequence(12, "validation", "ee", out.sequence(1))]


def test_the_artifact_round_trips_and_keeps_flagged_sequences(tmp_path):
    rows = _rows()
    summary = write_alignments(tmp_path / "ali", rows, {"model": "m", "blank": CTC_BLANK})
    assert sorted(p.name for p in (tmp_path / "ali").iterdir()) == sorted([ALIGNMENTS_FILE, SUMMARY_FILE])
    assert summary["splits"]["train"] == {"sequences": 1, "impossible": 0, "low_confidence": 0, "usable": 1,
                                          "mean_confidence": pytest.approx(0.9, abs=1e-5)}
    assert summary["splits"]["validation"]["impossible"] == 1
    assert json.loads((tmp_path / "ali" / SUMMARY_FILE).read_text())["metadata"]["model"] == "m"
    records = read_alignments(tmp_path / "ali")
    assert records.metadata["blank"] == CTC_BLANK and records.metadata["version"] == 1
    for written, read in zip(rows, records.rows, strict=True):
        assert (read.sequence_id, read.split, read.phrase) == (written.sequence_id, written.split, written.phrase)
        np.testing.assert_array_equal(read.alignment.frame_classes, written.alignment.frame_classes)
        np.testing.assert_array_equal(read.alignment.spans, written.alignment.spans)
        np.testing.assert_allclose(read.alignment.character_confidence, written.alignment.character_confidence)
        assert read.alignment.impossible == written.alignment.impossible
        assert read.alignment.confidence == pytest.approx(written.alignment.confidence)
    assert list(records.usable_frame_classes()) == [11]


def test_artifact_errors(tmp_path):
    rows = _rows()
    with pytest.raises(SignpipeError, match=r"sequence ids \[11\] appear more than once"):
        write_alignments(tmp_path / "dup", rows + rows[:1], {})
    assert not (tmp_path / "dup").exists() or not any((tmp_path / "dup").iterdir())
    with pytest.raises(SignpipeError, match="no alignments"):
        read_alignments(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(SignpipeError, match="not a readable alignments parquet"):
        read_alignments(tmp_path / "junk.parquet")


def test_align_sequences_batches_by_length_and_keeps_input_order():
    from signpipe.fingerspelling.align.run import align_sequences

    rng = np.random.default_rng(3)
    truths, labels, featurized = [], [], []
    for n_frames in (5, 33, 9, 64, 12):
        label = rng.integers(0, 59, size=max(1, n_frames // 5))
        frame_classes = np.repeat(label, np.diff(np.linspace(0, n_frames, len(label) + 1).astype(int)))
        truths.append(frame_classes)
        labels.append(label)
        points = np.zeros((n_frames, 75, 3), np.float32)
        points[:, 0, 0] = frame_classes  # the fake model reads the class off the first coordinate
        featurized.append(points)
    shapes = []

    def fake_model(inputs, mask):
        shapes.append(inputs.shape)
        classes = inputs[:, :, 0].astype(int)
        probs = np.full(inputs.shape[:2] + (N_CLASSES,), 0.01 / (N_CLASSES - 1))
        np.put_along_axis(probs, classes[..., None], 0.99, axis=-1)
        return np.log(probs)

    aligned = align_sequences(fake_model, featurized, labels, batch_size=2, length_bucket=16, blank=CTC_BLANK)
    for alignment, truth, label in zip(aligned, truths, labels, strict=True):
        assert np.array_equal(collapse_alignment(alignment.frame_classes), label)
        assert alignment.frame_classes.size == truth.size and not alignment.low_confidence
    assert shapes == [(2, 16, 225), (2, 48, 225), (2, 64, 225)]  # lengths 5, 9 | 12, 33 | 64, buckets of 16


def save_fresh_finetune_checkpoint(workdir, model_size: str = "1x32", overrides: tuple[str, ...] = ("model.heads=2",)):
    """A finetuning workdir holding an untrained model: what loaders read, without training."""
    import jax.numpy as jnp
    from flax import nnx

    from signpipe.train.checkpoint import RunCheckpoints
    from signpipe.fingerspelling.config import resolve_config
    from signpipe.fingerspelling.finetune import build_model

    config = resolve_config("finetune", "smoke", [f"model={model_size}", *overrides])
    params = nnx.state(build_model(config), nnx.Param)
    with RunCheckpoints(workdir) as checkpoints:
        checkpoints.save(1, {"step": jnp.int32(1), "params": params, "ema_params": params}, {"best_step": 1}, config, 0.0)
        checkpoints.wait()
    return config


def test_align_shards_and_the_command_write_the_artifact(tmp_path):
    from signpipe.fingerspelling.align.run import align_shards
    from signpipe.cli import main
    from train_shards import write_spelling_shards

    shards = write_spelling_shards(tmp_path / "shards", n_train=6, n_validation=2, too_short=1)
    save_fresh_finetune_checkpoint(tmp_path / "model")
    summary = align_shards(tmp_path / "model", shards, tmp_path / "ali", splits=("train", "validation"), batch_size=4)
    assert summary["splits"]["train"]["sequences"] == 7 and summary["splits"]["validation"]["sequences"] == 2
    assert summary["splits"]["train"]["impossible"] == 1  # the too-short one, flagged, not dropped
    # an untrained model supports no phrase: everything that has a path is low-confidence
    assert summary["splits"]["train"]["low_confidence"] == 6 and summary["splits"]["train"]["usable"] == 0
    records = read_alignments(tmp_path / "ali")
    assert len(records) == 9 and records.metadata["model_step"] == 1 and records.metadata["model_size"] == "1x32"
    for row in records.rows:
        if not row.alignment.impossible:
            assert len(collapse_alignment(row.alignment.frame_classes)) == len(row.phrase)

    status = main(["align", "--workdir", str(tmp_path / "model"), "--shards", str(shards), "--out", str(tmp_path / "cli"),
                   "--min-confidence", "0", "--min-character-confidence", "0"])  # fmt: skip
    assert status == 0
    cli_summary = json.loads((tmp_path / "cli" / SUMMARY_FILE).read_text())
    assert cli_summary["splits"]["train"]["usable"] == 6 and list(cli_summary["splits"]) == ["train"]
    assert main(["align", "--workdir", str(tmp_path / "nowhere"), "--shards", str(shards), "--out", str(tmp_path / "x")]) == 2
