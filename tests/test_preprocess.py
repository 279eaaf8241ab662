"""The preprocess step: corpus -> feature shards + manifest (issue 3, item 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from signpipe.errors import SignpipeError
from signpipe.landmarks import features
from signpipe.fingerspelling.preprocess import gather, plan_shards, preprocess, split_assignment, write_planned_shard
from signpipe.fingerspelling.shards import load_split, read_manifest


def test_shards_hold_exactly_the_input_points_of_every_sequence(fingerspelling_corpus, tmp_path):
    out = tmp_path / "shards"
    manifest = preprocess(fingerspelling_corpus.root, out, y_scale=1.9, sequences_per_shard=4,
                          validation_fraction=0.2)
    seen = {}
    for split in ("train", "validation"):
        for s in load_split(out, split):
            seen[s.sequence_id] = (split, s)
    assert sorted(seen) == sorted(fingerspelling_corpus.frames)
    points = list(features.INPUT_POINTS)
    for sid, (_, s) in seen.items():
        np.testing.assert_array_equal(s.frames, fingerspelling_corpus.frames[sid][:, points])
        assert s.label == fingerspelling_corpus.labels[sid]
        assert s.participant_id == fingerspelling_corpus.participants[sid]
    assert manifest["y_scale"] == 1.9
    assert manifest["points"] == points
    assert manifest["kind"] == "fingerspelling"
    assert len(manifest["label_map"]) == 59
    counts = {k: v["sequences"] for k, v in manifest["splits"].items()}
    assert counts["train"] + counts["validation"] == len(seen)
    assert all(sh["sequences"] <= 4 for sh in manifest["splits"]["train"]["shards"])
    assert read_manifest(out) == json.loads((out / "manifest.json").read_text())


def test_default_split_is_the_seeds_five_percent_with_seed_42():
    from sklearn.model_selection import train_test_split

    ids = np.arange(1000, 1400)
    is_val = split_assignment(ids, ids % 7)
    _, expected = train_test_split(np.arange(len(ids)), test_size=0.05, random_state=42)
    assert is_val.sum() == 20
    assert set(np.flatnonzero(is_val)) == set(expected)


def test_grouped_split_keeps_each_participant_on_one_side():
    ids = np.arange(300)
    participants = ids % 10
    is_val = split_assignment(ids, participants, validation_fraction=0.2, group_by_participant=True)
    assert is_val.any() and (~is_val).any()
    assert not set(participants[is_val]) & set(participants[~is_val])


def test_fan_out_shards_then_gather_equals_one_machine_run(fingerspelling_corpus, tmp_path):
    plan = plan_shards(fingerspelling_corpus.root, n_shards=3, validation_fraction=0.1)
    out = tmp_path / "fan"
    out.mkdir()
    stats = [write_planned_shard(json.loads(json.dumps(plan)), i, out) for i in range(len(plan["shards"]))]
    manifest = gather(plan, stats, out, y_scale=1.5)
    whole = preprocess(fingerspelling_corpus.root, tmp_path / "whole", y_scale=1.5, n_shards=3,
                       validation_fraction=0.1)
    assert manifest["splits"] == whole["splits"]
    assert len([s for s in plan["shards"] if s["split"] == "train"]) == 3


def test_gather_refuses_a_missing_shard(fingerspelling_corpus, tmp_path):
    plan = plan_shards(fingerspelling_corpus.root, n_shards=2)
    stats = [write_planned_shard(plan, 0, tmp_path)]
    with pytest.raises(SignpipeError, match="shards missing"):
        gather(plan, stats, tmp_path, y_scale=1.0)
    assert not (tmp_path / "manifest.json").exists()


def test_a_failed_run_leaves_nothing_behind(fingerspelling_corpus, tmp_path):
    victim = next(iter(fingerspelling_corpus.files.values()))
    victim.write_bytes(victim.read_bytes()[:200])  # truncated parquet
    out = tmp_path / "shards"
    with pytest.raises(SignpipeError):
        preprocess(fingerspelling_corpus.root, out, y_scale=1.0)
    assert not out.exists()
    assert not any(p.name.startswith(".shards") for p in tmp_path.iterdir())


def test_refuses_to_overwrite_unless_asked(fingerspelling_corpus, tmp_path):
    out = tmp_path / "shards"
    preprocess(fingerspelling_corpus.root, out, y_scale=1.0)
    with pytest.raises(SignpipeError, match="not empty"):
        preprocess(fingerspelling_corpus.root, out, y_scale=1.0)
    preprocess(fingerspelling_corpus.root, out, y_scale=1.2, overwrite=True)
    assert read_manifest(out)["y_scale"] == 1.2


def test_real_sample_preprocesses_with_participant_split(signs_sample, tmp_path):
    manifest = preprocess(signs_sample, tmp_path / "s", y_scale=1.0, validation_fraction=0.2,
                          group_by_participant=True)
    assert manifest["kind"] == "isolated-signs"
    total = sum(v["sequences"] for v in manifest["splits"].values())
    assert total == 84
    train = {s.participant_id for s in load_split(tmp_path / "s", "train")}
    val = {s.participant_id for s in load_split(tmp_path / "s", "validation")}
    assert train and val and not train & val
    # REFERENCE.md section 4: about 41% of the real frames have no hand at all... per hand;
    # frames with neither hand are fewer but present.
    frac = manifest["splits"]["train"]["fraction_frames_without_hand"]
    assert 0.05 < frac < 0.6


def test_parallel_workers_give_the_same_shards(fingerspelling_corpus, tmp_path):
    a = preprocess(fingerspelling_corpus.root, tmp_path / "a", y_scale=1.0, n_shards=2, workers=1)
    b = preprocess(fingerspelling_corpus.root, tmp_path / "b", y_scale=1.0, n_shards=2, workers=2)
    assert a["splits"] == b["splits"]
    for split in a["splits"]:
        for x, y in zip(load_split(tmp_path / "a", split), load_split(tmp_path / "b", split)):
            np.testing.assert_array_equal(x.frames, y.frames)


def test_cli_preprocess_prints_the_splits_and_rejects_a_bad_corpus(fingerspelling_corpus, tmp_path, capsys):
    from signpipe.cli import main

    out = tmp_path / "cli-shards"
    assert main(["landmarks", "preprocess", str(fingerspelling_corpus.root), "--out", str(out),
                 "--y-scale", "1.9", "--shard-count", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["y_scale"] == 1.9 and printed["splits"]["train"]["shards"] == 2
    assert main(["landmarks", "preprocess", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"),
                 "--y-scale", "1"]) == 2
    assert "expected a corpus directory" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
