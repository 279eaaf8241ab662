"""`--workdir` resolution: a finetuning workdir gives its best checkpoint's EMA weights, a step
directory that step's; the y scale comes from the run's shard manifest. A one-layer run of a few
steps is enough (what the weights decode to is `test_export_e2e.py`'s business)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx
from train_shards import write_spelling_shards

from signpipe.cli import main
from signpipe.errors import SignpipeError
from signpipe.export.bundle import read_bundle
from signpipe.export.evaluate import signature_runner
from signpipe.fingerspelling.export import jax_outputs_function, load_checkpoint, y_scale_of_run
from signpipe.landmarks import features
from signpipe.fingerspelling.shards import read_manifest, write_manifest
from signpipe.fingerspelling.config import resolve_config
from signpipe.fingerspelling.finetune import load_finetuned_model, train_and_evaluate

RUN = [
    "model.layers=1", "model.width=32", "model.heads=2", "batch_size=8", "eval_batch_size=8", "max_length=32",
    "length_bucket=32", "max_label_length=8", "warmup_steps=2", "log_every=2", "total_steps=6", "eval_every=3",
    "checkpoint_every=3", "keep_checkpoints=3",
]  # fmt: skip
Y_SCALE = 1.7


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoint")
    shards = write_spelling_shards(root / "shards", n_train=16, n_validation=8)
    write_manifest(shards, {**read_manifest(shards), "y_scale": Y_SCALE})  # so the y scale is not a default 1
    train_and_evaluate(resolve_config("finetune", "smoke", [*RUN, f"data_dir={shards}"]), root / "run")
    return root / "run"


def weights(model) -> list[np.ndarray]:
    return [np.asarray(w) for w in jax.tree.leaves(nnx.to_pure_dict(nnx.state(model, nnx.Param)))]


def test_a_workdir_gives_its_best_checkpoints_ema_weights(workdir: Path) -> None:
    loaded = load_checkpoint(workdir)
    best, _, best_step = load_finetuned_model(workdir, which="best")
    assert loaded.step == best_step and loaded.workdir == workdir
    for got, expected in zip(weights(loaded.model), weights(best), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert y_scale_of_run(loaded.config, str(workdir)) == pytest.approx(Y_SCALE)


def test_a_step_directory_gives_that_steps_ema_weights(workdir: Path) -> None:
    loaded = load_checkpoint(workdir / "checkpoints" / "6")
    last, _, last_step = load_finetuned_model(workdir, which="last")
    assert loaded.step == last_step == 6
    for got, expected in zip(weights(loaded.model), weights(last), strict=True):
        np.testing.assert_array_equal(got, expected)
    earlier = load_checkpoint(workdir / "checkpoints" / "3")
    assert earlier.step == 3
    assert any(not np.array_equal(a, b) for a, b in zip(weights(earlier.model), weights(last), strict=True))


def test_export_command_builds_the_checkpoint_with_the_runs_y_scale(workdir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bundle.zip"
    status = main(["export", "--workdir", str(workdir / "checkpoints" / "6"), "--out", str(out),
                   "--quantize", "none", "--graph", "dynamic"])  # fmt: skip
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["step"], report["quantize"], report["graph"], report["model"]) == (6, "none", "dynamic", "1x32")
    assert report["y_scale"] == pytest.approx(Y_SCALE)
    assert report["model_bytes"] == read_bundle(out).model_bytes and report["path"] == str(out)

    # the graph is the checkpoint's model with the run's y scale: same outputs as the JAX function
    rows = np.random.default_rng(0).normal(0.5, 0.1, size=(20, 3 * features.N_INPUT_POINTS)).astype(np.float32)
    expected = np.asarray(jax_outputs_function(load_checkpoint(workdir / "checkpoints" / "6").model, Y_SCALE)(rows))
    got = signature_runner(read_bundle(out).model)(inputs=rows)["outputs"]
    np.testing.assert_array_equal(got, expected)


def test_missing_checkpoints_and_unreachable_shards_are_user_errors(workdir: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SignpipeError, match="checkpoint not found"):
        load_checkpoint(workdir / "checkpoints" / "7")
    config = load_checkpoint(workdir).config
    with pytest.raises(SignpipeError, match="--y-scale"):
        y_scale_of_run(dataclasses.replace(config, data_dir=str(tmp_path / "gone")), "run")
    assert main(["export", "--workdir", str(tmp_path / "nothing"), "--out", str(tmp_path / "b.zip")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["export", "--workdir", str(workdir), "--out", str(tmp_path / "b.zip"), "--quantize", "int4"]) == 2
    assert not (tmp_path / "b.zip").exists()
