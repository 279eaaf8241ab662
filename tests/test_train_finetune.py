"""`finetune.train_and_evaluate` end to end on a tiny model: outputs in the workdir, idempotent
resume of a finished run, loading the trained model back, initializing from another run, errors."""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest
from flax import nnx
from train_shards import write_spelling_shards

from signpipe.errors import ConfigError, SignpipeError
from signpipe.fingerspelling.config import preset, resolve_config
from signpipe.fingerspelling.finetune import (
    build_model,
    evaluate_split,
    load_finetuned_model,
    make_eval_step,
    train_and_evaluate,
)
from signpipe.fingerspelling.data import character_map_of, load_labelled_split
from signpipe.fingerspelling.shards import read_manifest
from signpipe.train.mesh import make_mesh
from signpipe.train.reporting import read_metrics

TINY = [
    "model.layers=1", "model.width=32", "model.heads=2", "batch_size=8", "eval_batch_size=8", "max_length=32",
    "length_bucket=32", "max_label_length=8", "warmup_steps=2", "log_every=2", "total_steps=6", "eval_every=3",
    "checkpoint_every=3",
]  # fmt: skip


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_spelling_shards(tmp_path_factory.mktemp("shards"), n_train=32, n_validation=8, too_short=2)


def tiny_config(shards, *overrides):
    return resolve_config("finetune", "smoke", [*TINY, f"data_dir={shards}", *overrides])


@pytest.fixture(scope="module")
def finished_run(shards, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    config = tiny_config(shards)
    return config, workdir, train_and_evaluate(config, workdir)


def test_run_reports_and_writes_its_outputs(finished_run):
    config, workdir, metrics = finished_run
    assert metrics["step"] == 6 and metrics["steps_run"] == 6 and metrics["resumed_from_step"] is None
    assert (metrics["n_train"], metrics["n_validation"], metrics["dropped_too_short_train"]) == (32, 8, 2)
    assert -10 < metrics["validation_score"] <= 1 and np.isfinite(metrics["validation_loss"])
    assert metrics["best_step"] in (3, 6) and metrics["best_validation_score"] >= metrics["validation_score"]
    assert np.isfinite(metrics["train_loss"])

    assert json.loads((workdir / "final_metrics.json").read_text()) == metrics
    assert json.loads((workdir / "config.json").read_text()) == config.to_dict()
    records = read_metrics(workdir)
    train_steps = [r["step"] for r in records if "train/loss" in r]
    validation_steps = [r["step"] for r in records if "validation/score" in r]
    assert train_steps == [2, 4, 6] and validation_steps == [3, 6]
    assert all({"train/learning_rate", "train/grad_norm", "train/steps_per_second"} <= set(r) for r in records if "train/loss" in r)
    assert any(p.name.startswith("events.out.tfevents") for p in (workdir / "tb").iterdir())
    assert 6 in [int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()]


def test_finished_run_resumes_to_the_same_result(finished_run):
    config, workdir, metrics = finished_run
    again = train_and_evaluate(dataclasses.replace(config, log_every=3), workdir)  # run-control change is fine
    assert again["resumed_from_step"] == 6 and again["steps_run"] == 0
    for key in ("validation_score", "validation_loss", "best_validation_score", "best_step", "train_loss"):
        assert again[key] == pytest.approx(metrics[key], rel=1e-6), key
    with pytest.raises(ConfigError, match="another run config.*learning_rate"):
        train_and_evaluate(dataclasses.replace(config, learning_rate=0.1), workdir)


def test_loaded_model_scores_what_the_run_reported(finished_run, shards):
    config, workdir, metrics = finished_run
    model, loaded_config, step = load_finetuned_model(workdir, which="last")
    assert loaded_config == config and step == 6
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    mesh = make_mesh()
    split = load_labelled_split(shards, "validation", config.max_label_length)
    eval_step = make_eval_step(graphdef, rest, config.model_config().blank_index, mesh)
    scalars, pairs = evaluate_split(eval_step, params, split, config, mesh, character_map_of(shards, read_manifest(shards)))
    assert scalars["validation/score"] == pytest.approx(metrics["validation_score"])
    assert [truth for truth, _ in pairs] == split.phrases


def test_init_from_a_finetuned_run_starts_from_its_ema_model(finished_run, shards):
    """From a CTC run, init_from takes the model that run was validated with: the EMA weights of
    its latest checkpoint, encoder and CTC head (a noisy student continues its teacher)."""
    _, workdir, _ = finished_run
    model, _, _ = load_finetuned_model(workdir, which="last", use_ema=True)
    raw, _, _ = load_finetuned_model(workdir, which="last", use_ema=False)
    started = build_model(tiny_config(shards, f"init_from={workdir}", "seed=5"))
    for want, got in zip(jax.tree.leaves(nnx.state(model, nnx.Param)), jax.tree.leaves(nnx.state(started, nnx.Param)), strict=True):
        np.testing.assert_array_equal(want, got)
    assert not np.array_equal(nnx.state(raw.ctc_head)["projection"]["kernel"], nnx.state(started.ctc_head)["projection"]["kernel"])

    with pytest.raises(ConfigError, match="shape"):
        build_model(tiny_config(shards, f"init_from={workdir}", "model.width=64"))
    with pytest.raises(ConfigError, match="directory not found"):
        build_model(tiny_config(shards, f"init_from={workdir / 'nope'}"))


def test_bad_inputs(tmp_path, shards):
    with pytest.raises(SignpipeError, match="feature-shard directory not found"):
        train_and_evaluate(tiny_config(tmp_path / "missing"), tmp_path / "w")
    with pytest.raises(ConfigError, match="no data_dir"):
        train_and_evaluate(tiny_config(""), tmp_path / "w")
    with pytest.raises(ConfigError, match="needs a FinetuneConfig"):
        train_and_evaluate(preset("pretrain", "smoke"), tmp_path / "w")
    with pytest.raises(ConfigError, match="fewer than batch_size=64"):
        train_and_evaluate(tiny_config(shards, "batch_size=64"), tmp_path / "w2")
