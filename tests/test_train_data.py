"""Training batches from feature shards: loading and checks, padding and buckets, the drop rule,
a deterministic iterator whose state restores exactly, per-host rows, validation batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
from train_shards import ALPHABET, write_spelling_shards

from signpipe.errors import ConfigError, SignpipeError
from signpipe.landmarks import features
from signpipe.fingerspelling.shards import MANIFEST, ShardSequence, write_shard
from signpipe.fingerspelling.data import (
    FEATURES_PER_FRAME,
    IteratorState,
    TrainBatches,
    bucket_length,
    load_labelled_split,
    validation_batches,
)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    return write_spelling_shards(tmp_path_factory.mktemp("shards"), n_train=40, n_validation=11, too_short=3)


@pytest.fixture(scope="module")
def train_split(shard_dir):
    return load_labelled_split(shard_dir, "train", max_label_length=8)


def batches(split, augment=True, seed=0, rows=None, batch_size=8, grouping=1):
    return TrainBatches(split, batch_size, max_length=64, length_bucket=16, max_label_length=8, seed=seed,
                        augment=augment, rows=rows, length_grouping=grouping)


def test_split_is_featurized_and_too_short_sequences_are_dropped(train_split):
    assert len(train_split) == 40 and train_split.n_dropped_too_short == 3
    for feats, label, phrase in zip(train_split.features, train_split.labels, train_split.phrases):
        assert feats.shape[1:] == (features.N_FEATURE_POINTS, 3) and feats.dtype == np.float32
        assert np.isfinite(feats).all()
        assert len(feats) >= len(label) == len(phrase)
        assert set(phrase) <= set(ALPHABET)


def test_bucket_lengths():
    assert [bucket_length(n, 32) for n in (1, 32, 33, 100)] == [32, 32, 64, 128]
    assert bucket_length(300, 32, cap=256) == 256


def test_batch_layout(train_split):
    batch = next(batches(train_split))
    inputs, mask = batch["inputs"], batch["mask"]
    assert inputs.shape[0] == 8 and inputs.shape[1] % 16 == 0 and inputs.shape[1] <= 64
    assert inputs.shape[2] == FEATURES_PER_FRAME and inputs.dtype == np.float32
    assert not inputs[~mask].any()  # padding is 0
    assert mask.any(axis=1).all() and (mask[:, :-1] >= mask[:, 1:]).all()  # real frames first
    lengths = batch["label_mask"].sum(axis=1)
    assert (lengths >= 1).all() and not batch["labels"][~batch["label_mask"]].any()
    assert (batch["weights"] == 1).all()


def test_unaugmented_batches_hold_the_split_exactly(train_split):
    it = batches(train_split, augment=False)
    rows = it.batch_rows(it.state)
    batch = next(it)
    for k, i in enumerate(rows):
        n = len(train_split.features[i])
        np.testing.assert_array_equal(batch["inputs"][k, :n], train_split.features[i].reshape(n, -1))
        np.testing.assert_array_equal(batch["labels"][k, : len(train_split.labels[i])], train_split.labels[i])


def test_iterator_is_deterministic_and_restores_exactly(train_split):
    first = batches(train_split)
    for _ in range(3):
        next(first)
    saved = IteratorState.from_dict(json.loads(json.dumps(first.state.to_dict())))
    expected = [next(first) for _ in range(4)]  # crosses into epoch 1 (5 batches per epoch)
    assert first.state.epoch == 1

    resumed = batches(train_split)
    resumed.restore(saved)
    for want, got in zip(expected, (next(resumed) for _ in range(4))):
        for key in want:
            np.testing.assert_array_equal(want[key], got[key])

    other_seed = batches(train_split, seed=1)
    assert not np.array_equal(next(other_seed)["labels"], next(batches(train_split))["labels"])
    with pytest.raises(SignpipeError, match="seed 0, this run uses 1"):
        other_seed.restore(saved)
    with pytest.raises(SignpipeError, match="outside this split"):
        resumed.restore(IteratorState(0, 99, 0))


def test_an_epoch_visits_each_sequence_at_most_once(train_split):
    for grouping in (1, 3):
        it = batches(train_split, grouping=grouping)
        seen = np.concatenate([it.batch_rows(IteratorState(0, k, 0)) for k in range(it.batches_per_epoch)])
        assert len(seen) == 40 and len(np.unique(seen)) == 40


def test_length_grouping_makes_batches_pad_less(train_split):
    def padding(grouping):
        it = batches(train_split, grouping=grouping, batch_size=4)
        lengths = train_split.lengths
        spread = [np.ptp(lengths[it.batch_rows(IteratorState(e, k, 0))]) for e in range(5) for k in range(10)]
        return float(np.mean(spread))

    assert padding(10) < 0.5 * padding(1)


def test_hosts_build_their_rows_of_the_same_global_batch(train_split):
    whole = next(batches(train_split))
    halves = [next(batches(train_split, rows=rows)) for rows in (slice(0, 4), slice(4, 8))]
    assert all(h["inputs"].shape[1] == 64 for h in halves)  # hosts agree on the shape: max_length
    length = whole["inputs"].shape[1]
    for key in ("inputs", "mask"):
        joined = np.concatenate([h[key][:, :length] for h in halves])
        np.testing.assert_array_equal(joined, whole[key])
        assert not np.concatenate([h[key][:, length:] for h in halves]).any()
    np.testing.assert_array_equal(np.concatenate([h["labels"] for h in halves]), whole["labels"])


def test_validation_batches_cover_the_split_once(shard_dir):
    split = load_labelled_split(shard_dir, "validation", max_label_length=8)
    seen, weights = [], 0.0
    for batch, real in validation_batches(split, batch_size=4, length_bucket=16, max_label_length=8):
        assert batch["inputs"].shape[0] == 4 and batch["inputs"].shape[1] >= split.lengths[real].max()
        assert batch["weights"][: len(real)].all() and not batch["weights"][len(real):].any()
        seen.extend(real.tolist())
        weights += batch["weights"].sum()
    assert sorted(seen) == list(range(11)) and weights == 11


def test_bad_inputs(tmp_path, shard_dir, train_split):
    with pytest.raises(SignpipeError, match="feature-shard directory not found"):
        load_labelled_split(tmp_path / "missing", "train", 8)
    with pytest.raises(SignpipeError, match="longer than max_label_length=2"):
        load_labelled_split(shard_dir, "train", max_label_length=2)
    with pytest.raises(ConfigError, match="fewer than batch_size=64"):
        TrainBatches(train_split, 64, 64, 16, 8, 0)

    bad = write_spelling_shards(tmp_path / "bad", n_train=2, n_validation=1)
    frames = np.zeros((5, features.N_INPUT_POINTS, 3), np.float32)
    write_shard(bad / "train-00000.parquet", [ShardSequence(1, 1, "abQ", frames)], features.INPUT_POINTS)
    with pytest.raises(SignpipeError, match="sequence 1: phrase 'abQ' has character 'Q'"):
        load_labelled_split(bad, "train", 8)

    manifest = json.loads((bad / MANIFEST).read_text())
    (bad / MANIFEST).write_text(json.dumps({**manifest, "points": [0, 1, 2]}))
    with pytest.raises(SignpipeError, match="expected the model's 96 input points"):
        load_labelled_split(bad, "validation", 8)
    (bad / MANIFEST).write_text(json.dumps({**manifest, "kind": "isolated_signs"}))
    with pytest.raises(SignpipeError, match="needs a fingerspelling corpus"):
        load_labelled_split(bad, "validation", 8)
