"""`signpipe train`: a tiny finetuning run through the command line, config display, user errors."""

from __future__ import annotations

import json

import pytest
from train_shards import write_spelling_shards

from signpipe.cli import main

TINY = [
    "model.layers=1", "model.width=32", "model.heads=2", "batch_size=8", "eval_batch_size=8", "max_length=32",
    "length_bucket=32", "max_label_length=8", "warmup_steps=1", "total_steps=2", "eval_every=2", "log_every=1",
]  # fmt: skip


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_spelling_shards(tmp_path_factory.mktemp("shards"), n_train=16, n_validation=4)


def test_finetune_runs_and_prints_final_metrics(shards, tmp_path, capsys):
    code = main(["train", "finetune", "--shards", str(shards), "--workdir", str(tmp_path / "run"), "--preset", "smoke", *TINY])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    metrics = json.loads(captured.out)
    assert metrics["step"] == 2 and "validation_score" in metrics
    assert json.loads((tmp_path / "run" / "final_metrics.json").read_text()) == metrics
    assert "step 2/2" in captured.err  # progress, on stderr


def test_show_config_applies_preset_and_overrides(shards, tmp_path, capsys):
    args = ["--shards", str(shards), "--workdir", str(tmp_path), "--preset", "kaggle5th", "--show-config"]
    assert main(["train", "finetune", *args, "learning_rate=1e-3", "model.dropout=0.2"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["stage"] == "finetune" and config["model"] == "large" and config["batch_size"] == 256
    assert config["learning_rate"] == 1e-3 and config["model_overrides"] == {"dropout": 0.2}
    assert config["data_dir"] == str(shards)
    assert main(["train", "pretrain", *args]) == 0
    assert json.loads(capsys.readouterr().out)["mask_ratio"] == 0.5
    assert not (tmp_path / "config.json").exists()


def test_presets_are_listed(capsys):
    assert main(["train", "presets", "pretrain"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("smoke", "small", "large", "kaggle5th", "masks_per_sample", "teacher_decay_steps"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--preset", "medium"], "unknown finetune preset 'medium'"),
        (["learnig_rate=1"], "did you mean learning_rate"),
        (["batch_size=many"], "batch_size='many': expected an integer"),
    ],
)
def test_user_errors_are_one_line_messages(shards, tmp_path, capsys, extra, message):
    assert main(["train", "finetune", "--shards", str(shards), "--workdir", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in " ".join(err.split()) and "Traceback" not in err


def test_missing_shards_are_reported(tmp_path, capsys):
    code = main(["train", "finetune", "--shards", str(tmp_path / "nowhere"), "--workdir", str(tmp_path / "w")])
    assert code == 2
    assert "feature-shard directory not found" in " ".join(capsys.readouterr().err.split())
