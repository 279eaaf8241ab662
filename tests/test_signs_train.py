"""Isolated-signs training end to end on a tiny written corpus: fold runs, their files, the
out-of-fold pool, resuming, refusing another config, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signpipe.data import signs
from signpipe.data.schema import N_POINTS, PART_OFFSET, SIGN_MAP_FILE, packaged_map
from signpipe.errors import ConfigError
from signpipe.signs.config import load_config, resolve_config
from signpipe.signs.folds import OOF_METRICS_FILE, fold_workdir
from signpipe.signs.train import FINAL_METRICS_FILE, VALIDATION_PREDICTIONS_FILE, train_and_evaluate, train_folds

TINY = ["width=16", "heads=4", "embed_mult=1", "ffn_mult=1", "epochs=2", "batch_size=4", "eval_batch_size=4",
        "length_bucket=16", "max_frames=16", "n_folds=2", "y_scale=1.0", "log_every=1", "checkpoint_every=2"]
"""One batch shape for training and validation (length_bucket = max_frames): one compile each."""


def random_frames(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    frames = rng.normal(0.5, 0.1, size=(n_frames, N_POINTS, 3)).astype(np.float32)
    frames[rng.random(n_frames) < 0.4, PART_OFFSET["left_hand"] : PART_OFFSET["left_hand"] + 21] = np.nan
    return frames


def write_tiny_signs_corpus(root: Path, make_frames) -> Path:
    """4 participants x 2 signs x 2 sequences, each `make_frames(rng)`, as an asl-signs corpus."""
    rng = np.random.default_rng(0)
    rows = []
    for p, participant in enumerate((101, 202, 303, 404)):
        for s, sign in enumerate(("hello", "thankyou")):
            for k in range(2):
                sequence_id = 1000 * p + 10 * s + k
                relative = f"{signs.LANDMARK_DIR}/{participant}/{sequence_id}.parquet"
                signs.write_landmark_file(root / relative, make_frames(rng))
                rows.append((relative, participant, sequence_id, sign))
    pd.DataFrame(rows, columns=list(signs.METADATA_COLUMNS)).to_csv(root / "train.csv", index=False)
    (root / SIGN_MAP_FILE).write_text(json.dumps(packaged_map(SIGN_MAP_FILE)), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    """4 participants x 2 signs x 2 sequences of random frames (some longer than max_frames)."""
    return write_tiny_signs_corpus(tmp_path_factory.mktemp("signs") / "corpus",
                                   lambda rng: random_frames(rng, int(rng.integers(3, 24))))


def test_a_fold_run_writes_its_files_pools_out_of_fold_and_resumes(tiny_corpus: Path, tmp_path: Path) -> None:
    config = resolve_config("smoke", TINY, data_dir=str(tiny_corpus))
    metrics = train_folds(config, tmp_path, folds=[0])
    first = metrics["folds"]["0"]
    assert set(metrics["folds"]) == {"0"} and metrics["n_sequences"] == first["n_validation"]
    assert metrics["oof_accuracy"] == first["validation_accuracy"]
    assert json.loads((tmp_path / OOF_METRICS_FILE).read_text())["oof_accuracy"] == metrics["oof_accuracy"]
    assert first["n_train_participants"] == 2 and first["n_validation_participants"] == 2
    assert first["total_steps"] == 2 * (first["n_train"] // 4) and first["steps_run"] == first["total_steps"]
    assert first["compute_dtype"] == "float32" and first["majority_baseline"] == 0.5

    workdir = fold_workdir(tmp_path, 0)
    saved = load_config(workdir)
    assert saved.y_scale == 1.0 and saved.total_steps == first["total_steps"]  # resolved values are kept
    with np.load(workdir / VALIDATION_PREDICTIONS_FILE) as predictions:
        assert predictions["probabilities"].shape == (first["n_validation"], 250)
        np.testing.assert_allclose(predictions["probabilities"].sum(axis=1), 1.0, rtol=1e-4)
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert any("train/loss" in line for line in lines) and any("validation/accuracy" in line for line in lines)

    again = train_and_evaluate(config, workdir)  # finished already: resumes at the end, evaluates again
    assert again["resumed_from_step"] == first["total_steps"] and again["steps_run"] == 0
    assert again["validation_accuracy"] == first["validation_accuracy"]
    assert json.loads((workdir / FINAL_METRICS_FILE).read_text())["steps_run"] == 0
    with pytest.raises(ConfigError, match="another run config"):
        train_and_evaluate(resolve_config("smoke", [*TINY, "width=32"], data_dir=str(tiny_corpus)), workdir)


def test_cli_resolves_presets_and_overrides_and_refuses_bad_ones(tiny_corpus: Path, tmp_path: Path, capsys) -> None:
    from signpipe.cli import main

    assert main(["signs", "train", "--data", str(tiny_corpus), "--workdir", str(tmp_path), "--preset", "seed",
                 "--folds", "0,2", "--show-config", "blocks=2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["blocks"] == 2 and shown["width"] == 384 and shown["heads"] == 16 and shown["folds"] == [0, 2]
    assert shown["epochs"] == 100 and shown["batch_size"] == 64 and shown["learning_rate"] == 1e-4

    assert main(["signs", "train", "--data", str(tiny_corpus), "--workdir", str(tmp_path), "--folds", "7", *TINY]) == 2
    assert "expected fold numbers in 0..1" in " ".join(capsys.readouterr().err.split())
    assert main(["signs", "train", "--data", str(tiny_corpus), "--workdir", str(tmp_path), "blokcs=2"]) == 2
    assert "did you mean blocks" in " ".join(capsys.readouterr().err.split())
    assert main(["signs", "export", "--workdir", str(tmp_path), "--out", str(tmp_path / "b.zip")]) == 2
    assert "neither a fold run" in " ".join(capsys.readouterr().err.split())  # rich wraps long lines
