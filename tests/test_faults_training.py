"""Faults and bad input in training (issue 17): a run that diverges, a corpus with infinite values,
config values out of range, a damaged last checkpoint, and extending a finished run.

Each test checks what is left on disk afterwards: which checkpoints exist and restore (with finite
weights), that the metrics files parse as strict JSON (no NaN/Infinity tokens), what was set aside.
Models are one layer of width 32 on a few short sequences, so a run is a compile and seconds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from train_shards import write_spelling_shards

from signpipe.cli import main
from signpipe.errors import ConfigError, CorpusError
from signpipe.landmarks import features
from signpipe.fingerspelling.shards import load_split, write_shard
from signpipe.train.checkpoint import DAMAGED_DIR, RunCheckpoints, abstract_like, all_finite
from signpipe.fingerspelling.config import preset, resolve_config, trajectory_differences
from signpipe.train.loop import TrainingDiverged, run_training_loop
from signpipe.train.mesh import make_mesh, replicate, replicated_sharding
from signpipe.train.optim import learning_rate_schedule
from signpipe.train.reporting import METRICS_FILE, ScalarWriter, strict_json

TINY = [
    "model.layers=1", "model.width=32", "model.heads=2", "batch_size=8", "eval_batch_size=8", "max_length=32",
    "length_bucket=32", "max_label_length=8", "warmup_steps=1", "eval_every=1000", "log_every=1",
    "checkpoint_every=2", "keep_checkpoints=2",
]  # fmt: skip
PRETRAIN_TINY = [
    "model.layers=1", "model.width=32", "model.heads=2", "batch_size=8", "max_length=32", "length_bucket=32",
    "target_layers=1", "decoder_layers=1", "warmup_steps=1", "log_every=1", "checkpoint_every=2",
    "keep_checkpoints=2",
]  # fmt: skip


# --- helpers --------------------------------------------------------------------------------------


def strict_loads(text: str):
    """`json.loads` that refuses NaN, Infinity and -Infinity, as strict parsers do."""

    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def strict_metrics(workdir: Path) -> list[dict]:
    """Every record of metrics.jsonl, parsed strictly (fails on a NaN token)."""
    path = workdir / METRICS_FILE
    return [strict_loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def one_line(text: str) -> str:
    return " ".join(text.split())


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, one_line(captured.err)


def finetune(capsys, shards: Path, workdir: Path, *overrides: str) -> tuple[int, str, str]:
    return run_cli(capsys, "train", "finetune", "--shards", str(shards), "--workdir", str(workdir), "--preset", "smoke",
                   *TINY, *overrides)  # fmt: skip


def checkpoint_steps(workdir: Path) -> list[int]:
    with RunCheckpoints(workdir, read_only=True) as checkpoints:
        return checkpoints.all_steps()


def assert_checkpoints_finite(workdir: Path) -> None:
    """Every kept checkpoint of `workdir` restores, with finite weights."""
    with RunCheckpoints(workdir, read_only=True) as checkpoints:
        for step in checkpoints.all_steps():
            _, state = checkpoints.restore_unstructured(step)
            assert all_finite(state), f"checkpoint {step} holds non-finite weights"


def rewrite_with_inf(shard_dir: Path, split: str, index: int = 0) -> int:
    """Put +inf into one coordinate of sequence `index` of `split`; returns its sequence id."""
    sequences = load_split(shard_dir, split)
    frames = sequences[index].frames.copy()
    frames[1, 25, 0] = np.inf  # the right hand's 5th point, frame 1
    sequences[index] = dataclasses.replace(sequences[index], frames=frames)
    write_shard(shard_dir / f"{split}-00000.parquet", sequences, features.INPUT_POINTS)
    return sequences[index].sequence_id


def damage(step_dir: Path, how: str) -> None:
    """Damage one saved checkpoint the ways a disk, a copy or a killed upload does."""
    if how == "truncated_array":  # the largest array file cut short
        data = max((f for f in (step_dir / "state").rglob("*") if f.is_file()), key=lambda f: f.stat().st_size)
        with data.open("r+b") as handle:
            handle.truncate(64)
    elif how == "garbled_progress":
        (step_dir / "progress" / "metadata").write_text("{not json", encoding="utf-8")
    elif how == "missing_state":
        for f in sorted((step_dir / "state").rglob("*"), reverse=True):
            f.rmdir() if f.is_dir() else f.unlink()
        (step_dir / "state").rmdir()
    else:
        raise ValueError(how)


def files_of(directory: Path) -> dict[str, int]:
    return {str(f.relative_to(directory)): f.stat().st_size for f in directory.rglob("*") if f.is_file()}


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_spelling_shards(tmp_path_factory.mktemp("shards"), n_train=16, n_validation=4)


# --- 1. a run that diverges ---------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["finetune", "pretrain"])
def test_a_learning_rate_that_diverges_stops_at_the_first_bad_step_and_keeps_the_last_good_checkpoint(
        stage, shards, tmp_path, capsys):
    workdir = tmp_path / "run"
    tiny = TINY if stage == "finetune" else PRETRAIN_TINY
    args = ["train", stage, "--shards", str(shards), "--workdir", str(workdir), "--preset", "smoke", *tiny,
            "total_steps=40", "learning_rate=1e4"]  # fmt: skip
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == "" and "Traceback" not in err
    match = re.search(r"training diverged at step (\d+): train/(loss|grad_norm) is (nan|inf|-inf)", err)
    assert match, err
    bad_step = int(match.group(1))
    assert "learning_rate=10000.0" in err and "lower learning_rate" in err

    # on disk: no final metrics; strict-JSON metrics up to the bad step, which is recorded as null
    assert not (workdir / "final_metrics.json").exists()
    records = strict_metrics(workdir)
    assert records[-1]["step"] == bad_step and records[-1][f"train/{match.group(2)}"] is None
    assert all(math.isfinite(r["train/loss"]) for r in records[:-1])
    # every checkpoint is from before the bad step, restores, and holds finite weights
    kept = checkpoint_steps(workdir)
    assert all(step < bad_step for step in kept)
    assert_checkpoints_finite(workdir)
    last_good = max(kept, default=None)
    if last_good is not None:
        assert f"the checkpoint of step {last_good} is kept" in err

    # the kept checkpoint is resumable: the rerun starts from it and stops at the same step
    code, _, again = run_cli(capsys, *args)
    assert code == 2 and f"training diverged at step {bad_step}:" in again
    if last_good is not None:
        assert f"resumed from the checkpoint of step {last_good}" in again
    assert checkpoint_steps(workdir) == kept


def write_signs_corpus(root: Path) -> Path:
    """4 participants x 2 signs x 2 sequences of random frames, no missing hands (an asl-signs layout)."""
    from signpipe.data.schema import N_POINTS
    from test_signs_train import write_tiny_signs_corpus

    return write_tiny_signs_corpus(
        root, lambda rng: rng.normal(0.5, 0.1, size=(int(rng.integers(3, 16)), N_POINTS, 3)).astype(np.float32))


def test_the_isolated_signs_trainer_stops_a_diverging_fold_keeping_its_last_good_checkpoint(tmp_path, capsys):
    corpus = write_signs_corpus(tmp_path / "corpus")
    tiny = ["width=16", "heads=4", "embed_mult=1", "ffn_mult=1", "epochs=20", "batch_size=4", "eval_batch_size=4",
            "length_bucket=16", "max_frames=16", "n_folds=2", "y_scale=1.0", "log_every=1", "checkpoint_every=2"]
    code, out, err = run_cli(capsys, "signs", "train", "--data", str(corpus), "--workdir", str(tmp_path / "run"),
                             "--folds", "0", *tiny, "learning_rate=1e30")  # fmt: skip
    assert code == 2 and out == "" and "Traceback" not in err
    match = re.search(r"fold_0: training diverged at step (\d+): train/loss is nan", err)
    assert match, err
    fold = tmp_path / "run" / "fold_0"
    assert not (fold / "final_metrics.json").exists()
    assert strict_metrics(fold)[-1]["train/loss"] is None
    kept = checkpoint_steps(fold)
    assert kept and all(step < int(match.group(1)) for step in kept)
    assert_checkpoints_finite(fold)
    assert f"the checkpoint of step {max(kept)} is kept" in err


def test_infinite_inputs_that_reach_training_stop_it_at_the_first_batch(shards, tmp_path, capsys, monkeypatch):
    """Inputs the loaders' check misses (here: put into the loaded split behind its back) make the
    loss of the first batch holding them non-finite; the error blames the inputs, not the rate."""
    import signpipe.fingerspelling.finetune as finetune_module

    load = finetune_module.load_labelled_split

    def poisoned(shard_dir, split, max_label_length):
        loaded = load(shard_dir, split, max_label_length)
        if split == "train":
            for sequence in loaded.features:  # every sequence: batch 1 holds one whatever the order
                sequence[0, 0, 0] = np.inf
        return loaded

    monkeypatch.setattr(finetune_module, "load_labelled_split", poisoned)
    code, _, err = finetune(capsys, shards, tmp_path / "run", "total_steps=10")
    assert code == 2
    assert "training diverged at step 1: train/loss is nan" in err
    assert "non-finite input features in the batch of step 1 (the weights were finite before it)" in err
    assert "no checkpoint was saved before it" in err
    assert checkpoint_steps(tmp_path / "run") == []
    assert [r["train/loss"] for r in strict_metrics(tmp_path / "run")] == [None]


from test_train_loop import CountingBatches  # noqa: E402 (the loop tests' batch source: batch k holds k)


LOOP_CONFIG = dataclasses.replace(preset("finetune", "smoke"), total_steps=12, warmup_steps=1, log_every=3,
                                  checkpoint_every=2, keep_checkpoints=2)  # fmt: skip


def run_toy(workdir: Path, train_step, evaluate=None, eval_every=None):
    mesh = make_mesh()
    state = replicate({"step": jnp.int32(0), "w": jnp.zeros(3)}, mesh)
    return run_training_loop(config=LOOP_CONFIG, workdir=workdir, mesh=mesh, state=state, train_step=train_step,
                             batches=CountingBatches(), evaluate=evaluate, eval_every=eval_every,
                             score_key="validation/score")  # fmt: skip


def test_weights_that_overflow_are_never_checkpointed(tmp_path):
    """The loss stays finite while the weights overflow at step 5: the checkpoint due at step 6 is
    refused, the ones of steps 2 and 4 stay and resume."""

    def overflowing(state, batch):
        w = jnp.where(state["step"] >= 4, jnp.float32(jnp.inf), state["w"] + 1.0)
        return {"step": state["step"] + 1, "w": w}, {"loss": batch["value"][0]}

    with pytest.raises(TrainingDiverged, match=r"training diverged in steps 5-6: the weights are not finite") as error:
        run_toy(tmp_path, overflowing)
    assert "weights overflowed while the loss and gradient norm were still finite" in str(error.value)
    assert "the checkpoint of step 4 is kept" in str(error.value)
    assert error.value.step == 6
    assert checkpoint_steps(tmp_path) == [2, 4]
    assert_checkpoints_finite(tmp_path)
    strict_metrics(tmp_path)

    def finite(state, batch):
        return {"step": state["step"] + 1, "w": state["w"] + 1.0}, {"loss": batch["value"][0]}

    outcome = run_toy(tmp_path, finite)  # the kept checkpoint resumes
    assert outcome.resumed_from == 4 and outcome.steps_run == 8
    np.testing.assert_array_equal(np.asarray(outcome.state["w"]), np.full(3, 12.0))


def test_a_non_finite_validation_scalar_stops_the_run_and_blames_the_validation_data(tmp_path):
    def step(state, batch):
        return {"step": state["step"] + 1, "w": state["w"] + 1.0}, {"loss": batch["value"][0]}

    losses = iter([0.5, math.nan])
    with pytest.raises(TrainingDiverged, match=r"diverged at step 8: validation/loss is nan") as error:
        run_toy(tmp_path, step, evaluate=lambda s: {"validation/score": 0.5, "validation/loss": next(losses)},
                eval_every=4)  # fmt: skip
    assert "non-finite input features in the validation split (the weights are finite)" in str(error.value)
    assert checkpoint_steps(tmp_path) == [4, 6]  # not 8: the evaluation failed before its checkpoint
    records = strict_metrics(tmp_path)
    assert {"step": 8, "validation/score": 0.5, "validation/loss": None} in records


def test_metrics_files_hold_null_for_values_that_are_not_finite(tmp_path):
    with ScalarWriter(tmp_path) as writer:
        writer.write(1, {"train/loss": math.nan, "train/grad_norm": math.inf, "train/learning_rate": 0.5})
    assert strict_metrics(tmp_path) == [{"step": 1, "train/loss": None, "train/grad_norm": None,
                                         "train/learning_rate": 0.5}]  # fmt: skip
    assert strict_json({"a": [np.float32("nan"), -math.inf, 1.5], "b": {"c": np.float64(2.0)}}) == (
        '{"a": [null, null, 1.5], "b": {"c": 2.0}}'
    )


# --- 2. bad input: infinite values in a corpus ------------------------------------------------------


@pytest.mark.parametrize(("stage", "split"), [("finetune", "train"), ("finetune", "validation"), ("pretrain", "validation")])
def test_a_corpus_with_infinite_values_is_refused_before_training_naming_the_sequence(
        stage, split, tmp_path, capsys):
    shard_dir = write_spelling_shards(tmp_path / "shards", n_train=8, n_validation=4)
    sequence_id = rewrite_with_inf(shard_dir, split)
    tiny = TINY if stage == "finetune" else PRETRAIN_TINY
    code, _, err = run_cli(capsys, "train", stage, "--shards", str(shard_dir), "--workdir", str(tmp_path / "run"),
                           "--preset", "smoke", *tiny, "total_steps=4")  # fmt: skip
    assert code == 2 and "Traceback" not in err
    assert f"sequence {sequence_id}" in err and "infinite" in err
    assert checkpoint_steps(tmp_path / "run") == [] and not (tmp_path / "run" / METRICS_FILE).exists()


def test_the_isolated_signs_trainer_refuses_infinite_key_points(tmp_path):
    from signpipe.signs.data import SignSequences
    from signpipe.signs.train import infinite_points

    points = [np.zeros((4, 88, 2), np.float32), np.full((3, 88, 2), np.nan, np.float32)]
    points[1][2, 7, 1] = -np.inf
    found = infinite_points(SignSequences(points, np.zeros(2, np.int32), np.array([11, 12]), np.array([1, 1])), "corpus")
    assert [p.where for p in found] == ["corpus sequence 12"]
    assert "the first at frame 2, key point 7" in found[0].message
    with pytest.raises(CorpusError, match="corpus sequence 12"):
        raise CorpusError(found)


# --- 3. config values out of range ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "override", "message"),
    [
        ("finetune", "learning_rate=nan", "learning_rate must be a finite number > 0, got nan"),
        ("finetune", "learning_rate=inf", "learning_rate must be a finite number > 0, got inf"),
        ("finetune", "learning_rate=-0.1", "learning_rate must be positive (> 0), got -0.1"),
        ("finetune", "learning_rate=0", "learning_rate must be positive (> 0), got 0.0"),
        ("finetune", "total_steps=0", "total_steps must be at least 1, got 0"),
        ("finetune", "batch_size=0", "batch_size must be at least 1, got 0"),
        ("finetune", "eval_batch_size=-8", "eval_batch_size must be at least 1, got -8"),
        ("finetune", "warmup_steps=5000", "warmup_steps must be in [0, total_steps=2000), got 5000"),
        ("finetune", "model.dropout=1.0", "dropout must be in [0, 1), got 1.0"),
        ("finetune", "model.dropout=nan", "dropout must be in [0, 1), got nan"),
        ("finetune", "model.rope_base=inf", "model.rope_base must be a finite number, got inf"),
        ("finetune", "weight_decay=nan", "weight_decay must be a finite number >= 0, got nan"),
        ("finetune", "adam_b2=nan", "adam_b2 must be a finite number in [0, 1), got nan"),
        ("finetune", "clip_norm=inf", "clip_norm must be a finite number > 0, got inf"),
        ("finetune", "ema_decay=1.0", "ema_decay must be in [0, 1), got 1.0"),
        ("pretrain", "mask_ratio=nan", "mask_ratio must be a finite number in (0, 1), got nan"),
        ("pretrain", "teacher_decay_end=inf", "teacher_decay_end must be a finite number in [0, 1), got inf"),
        ("distill", "kd_weight=nan", "kd_weight must be a finite number >= 0, got nan"),
        ("noisy_student", "cutmix_probability=inf", "cutmix_probability must be a finite number in [0, 1], got inf"),
    ],
)
def test_config_values_out_of_range_are_refused_naming_the_field_and_range(stage, override, message):
    with pytest.raises(ConfigError) as error:
        resolve_config(stage, "smoke", [override])
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("learning_rate=nan", "learning_rate must be a finite number, got nan"),
        ("learning_rate=0", "learning_rate must be positive (> 0), got 0.0"),
        ("dropout=inf", "dropout must be a finite number, got inf"),
        ("dropout=1.5", "dropout must be in [0, 1), got 1.5"),
        ("batch_size=0", "batch_size must be at least 1, got 0"),
        ("arcface_scale=nan", "arcface_scale must be a finite number, got nan"),
        ("epochs=0", "epochs must be at least 1, got 0"),
    ],
)
def test_signs_config_values_out_of_range_are_refused(override, message):
    from signpipe.signs.config import resolve_config as signs_config

    with pytest.raises(ConfigError) as error:
        signs_config("smoke", [override])
    assert message in str(error.value)


def test_a_nan_learning_rate_on_the_command_line_exits_2_before_touching_the_workdir(shards, tmp_path, capsys):
    code, out, err = finetune(capsys, shards, tmp_path / "run", "learning_rate=nan")
    assert code == 2 and out == ""
    assert "learning_rate must be a finite number > 0, got nan" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


# --- 4. a damaged last checkpoint ----------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(shards, tmp_path_factory) -> tuple[Path, dict]:
    """A finished 8-step run with checkpoints 4 and 8 (and its final metrics), to copy and damage."""
    workdir = tmp_path_factory.mktemp("finished") / "run"
    code = main(["train", "finetune", "--shards", str(shards), "--workdir", str(workdir), "--preset", "smoke", *TINY,
                 "total_steps=8", "checkpoint_every=4", "log_every=2"])  # fmt: skip
    assert code == 0
    return workdir, json.loads((workdir / "final_metrics.json").read_text())


def copy_run(finished: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(finished, target)
    return target


@pytest.mark.parametrize("how", ["truncated_array", "garbled_progress", "missing_state"])
def test_a_damaged_last_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(
        how, finished_run, shards, tmp_path, capsys, caplog):
    finished, expected = finished_run
    workdir = copy_run(finished, tmp_path / "run")
    assert checkpoint_steps(workdir) == [4, 8]
    damage(workdir / "checkpoints" / "8", how)
    damaged_files = files_of(workdir / "checkpoints" / "8")

    with caplog.at_level(logging.WARNING, logger="signpipe.train.checkpoint"):
        code, out, err = finetune(capsys, shards, workdir, "total_steps=8", "checkpoint_every=4", "log_every=2")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["resumed_from_step"] == 4 and metrics["steps_run"] == 4
    assert metrics["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-5)  # the same run, redone
    assert metrics["checkpoints_set_aside"][0].startswith(f"step 8 -> {workdir / DAMAGED_DIR / '8'} (")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"damaged checkpoint set aside: step 8 -> {workdir / DAMAGED_DIR / '8'}" in w for w in warnings)
    assert "resumed from the checkpoint of step 4" in err and "Traceback" not in err

    # on disk: the damaged checkpoint kept byte for byte outside Orbax's directory, step 8 saved anew
    assert files_of(workdir / DAMAGED_DIR / "8") == damaged_files
    assert checkpoint_steps(workdir) == [4, 8]
    assert_checkpoints_finite(workdir)
    assert strict_loads((workdir / "final_metrics.json").read_text()) == metrics
    strict_metrics(workdir)


def save_toy_checkpoints(workdir: Path, steps: tuple[int, ...]) -> dict:
    """Checkpoints of a small state at `steps`; returns the state (the restore target's shape)."""
    config = preset("finetune", "smoke")
    state = {"step": jnp.int32(0), "w": jnp.arange(4.0)}
    with RunCheckpoints(workdir, keep=len(steps)) as checkpoints:
        for step in steps:
            checkpoints.save(step, {**state, "step": jnp.int32(step)}, {"iterator": {}}, config)
        checkpoints.wait()
    return state


def test_a_checkpoint_set_aside_before_is_kept_when_the_same_step_is_set_aside_again(tmp_path):
    state = save_toy_checkpoints(tmp_path, (2, 4))
    target = abstract_like(state, replicated_sharding(make_mesh()))
    for _ in range(2):
        damage(tmp_path / "checkpoints" / "4", "garbled_progress")
        with RunCheckpoints(tmp_path, keep=2) as checkpoints:
            restored = checkpoints.restore_latest(target)
            assert restored.step == 2
            checkpoints.save(4, {**state, "step": jnp.int32(4)}, {"iterator": {}}, preset("finetune", "smoke"))
    assert sorted(p.name for p in (tmp_path / DAMAGED_DIR).iterdir()) == ["4", "4.1"]
    assert checkpoint_steps(tmp_path) == [2, 4]


def test_no_usable_checkpoint_is_one_clear_error_and_moves_nothing(finished_run, shards, tmp_path, capsys):
    finished, _ = finished_run
    workdir = copy_run(finished, tmp_path / "run")
    damage(workdir / "checkpoints" / "8", "truncated_array")
    damage(workdir / "checkpoints" / "4", "garbled_progress")
    before = files_of(workdir / "checkpoints")

    code, out, err = finetune(capsys, shards, workdir, "total_steps=8", "checkpoint_every=4", "log_every=2")
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"{workdir / 'checkpoints'}: no checkpoint can be resumed from: step 8: " in err
    assert "; step 4: " in err and "Nothing was moved" in err
    assert len(err) < 1500  # one message, not TensorStore's pages
    assert files_of(workdir / "checkpoints") == before and not (workdir / DAMAGED_DIR).exists()


def test_on_cloud_storage_a_damaged_checkpoint_leaves_the_directory_orbax_cleans_up(tmp_path, monkeypatch):
    """Under the gs:// completion rule (commit files; simulated on a local folder) Orbax deletes any
    step folder without its commit file when a manager opens: a damaged checkpoint must leave the
    checkpoint directory to be kept, and it is, whole."""
    import orbax.checkpoint as ocp

    import signpipe.train.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "completion_marker", lambda directory: ocp.path.atomicity.CommitFileTemporaryPath)
    state = save_toy_checkpoints(tmp_path, (2, 4))
    damage(tmp_path / "checkpoints" / "4", "truncated_array")
    damaged_files = files_of(tmp_path / "checkpoints" / "4")
    assert "commit_success.txt" in damaged_files

    with RunCheckpoints(tmp_path, keep=2) as checkpoints:
        restored = checkpoints.restore_latest(abstract_like(state, replicated_sharding(make_mesh())))
        assert restored.step == 2 and checkpoints.all_steps() == [2]
    with RunCheckpoints(tmp_path, keep=2) as checkpoints:  # a manager that cleans up opens again
        assert checkpoints.all_steps() == [2]
    assert files_of(tmp_path / DAMAGED_DIR / "4") == damaged_files


# --- 5. extending a finished run ------------------------------------------------------------------


def test_a_finished_run_is_extended_by_a_larger_total_steps_and_never_shortened(finished_run, shards, tmp_path, capsys):
    finished, _ = finished_run
    workdir = copy_run(finished, tmp_path / "run")
    common = ("checkpoint_every=4", "log_every=2")

    code, out, err = finetune(capsys, shards, workdir, "total_steps=12", *common)
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["step"] == 12 and metrics["resumed_from_step"] == 8 and metrics["steps_run"] == 4
    assert metrics["extensions"] == [{"step": 8, "from_total_steps": 8, "to_total_steps": 12}]
    assert "extending the run from total_steps=8 to 12" in err
    # the schedule: steps 9-12 follow the 12-step schedule (logged rates are means over 2 steps)
    schedule = learning_rate_schedule(resolve_config("finetune", "smoke", [*TINY, "total_steps=12", *common]))
    logged = {r["step"]: r["train/learning_rate"] for r in strict_metrics(workdir) if "train/learning_rate" in r}
    assert logged[10] == pytest.approx((float(schedule(8)) + float(schedule(9))) / 2, rel=1e-6)
    assert sorted(logged) == [2, 4, 6, 8, 10, 12]
    assert checkpoint_steps(workdir) == [8, 12]
    with RunCheckpoints(workdir, read_only=True) as checkpoints:
        assert checkpoints.saved_config(12)["total_steps"] == 12
        assert checkpoints.saved_progress(12)["extensions"] == metrics["extensions"]

    # run again as it is now: nothing to do, no new extension
    code, out, _ = finetune(capsys, shards, workdir, "total_steps=12", *common)
    assert code == 0 and json.loads(out)["steps_run"] == 0 and json.loads(out)["extensions"] == metrics["extensions"]

    # shorter, or another value with it: refused, saying how to extend
    code, _, err = finetune(capsys, shards, workdir, "total_steps=10", *common)
    assert code == 2 and "total_steps: 12 -> 10" in err and "never shortened" in err
    code, _, err = finetune(capsys, shards, workdir, "total_steps=16", "learning_rate=1e-3", *common)
    assert code == 2 and "learning_rate: 0.002 -> 0.001" in err
    assert "to train it longer, only raise total_steps above 12" in err
    assert checkpoint_steps(workdir) == [8, 12]


def test_the_isolated_signs_recipe_extends_through_epochs_too():
    from signpipe.signs.config import resolve_config as signs_config

    saved = dataclasses.replace(signs_config("smoke", ["epochs=2"]), total_steps=10).to_dict()
    longer = dataclasses.replace(signs_config("smoke", ["epochs=4"]), total_steps=20)
    assert trajectory_differences(saved, longer) == []
    shorter = dataclasses.replace(signs_config("smoke", ["epochs=1"]), total_steps=5)
    assert trajectory_differences(saved, shorter) == ["epochs: 2 -> 1", "total_steps: 10 -> 5"]
