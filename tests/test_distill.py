"""Distillation and the noisy-student stage: configs and presets, the KD loss, the train step
(teacher frozen, loss = CTC + weight x KD), every-k-th-layer initialization, and short runs."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from signpipe.errors import ConfigError
from signpipe.fingerspelling.model import build_ctc_model, model_config
from signpipe.train.checkpoint import RunCheckpoints
from signpipe.fingerspelling.config import load_config, resolve_config
from signpipe.fingerspelling.distill import (
    DistillConfig,
    hard_target_cross_entropy,
    init_from_deeper_model,
    make_distill_step,
)
from signpipe.train.mesh import make_mesh, replicate, shard_batch
from signpipe.fingerspelling.noisy_student import NoisyStudentConfig
from signpipe.train.optim import build_optimizer


def test_presets_and_checks_of_the_new_stages(tmp_path):
    config = resolve_config("distill", "smoke", ["teacher=runs/t", "model=1x64"])
    assert isinstance(config, DistillConfig) and config.kd_weight == 10.0 and config.model == "1x64"
    assert resolve_config("distill", "kaggle5th").model == "small"
    assert resolve_config("distill", "large").model == "small"
    student = resolve_config("noisy_student", "smoke", ["alignments=a", "cutmix_probability=0.3"])
    assert isinstance(student, NoisyStudentConfig) and student.cutmix_probability == 0.3
    assert student.total_steps == resolve_config("finetune", "smoke").total_steps
    with pytest.raises(ConfigError, match=r"cutmix_probability must be in \[0, 1\]"):
        resolve_config("noisy_student", "smoke", ["cutmix_probability=2"])
    with pytest.raises(ConfigError, match="kd_weight must be non-negative"):
        resolve_config("distill", "smoke", ["kd_weight=-1"])
    with pytest.raises(ConfigError, match="init_from and init_layers_from both set"):
        resolve_config("distill", "smoke", ["init_from=a", "init_layers_from=b"])
    with pytest.raises(ConfigError, match="supplemental_alignments is set but supplemental_data_dir is not"):
        resolve_config("noisy_student", "smoke", ["supplemental_alignments=x"])
    # a stage's config survives the workdir's JSON
    from signpipe.fingerspelling.config import dump_config

    dump_config(config, tmp_path)
    assert load_config(tmp_path) == config


def test_hard_target_cross_entropy_counts_real_frames_only():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 7)).astype(np.float32)
    targets = rng.integers(0, 7, size=(2, 5))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    weights = np.array([1.0, 0.0], np.float32)  # the second row is batch padding
    loss, agreement = hard_target_cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask), jnp.asarray(weights))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -log_probs[0, np.arange(3), targets[0, :3]].mean()
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(agreement) == pytest.approx((logits[0, :3].argmax(-1) == targets[0, :3]).mean())


def tiny_batch(rng: np.random.Generator, batch: int = 4, n_frames: int = 16) -> dict[str, np.ndarray]:
    lengths = np.array([16, 12, 9, 16])[:batch]
    label_lengths = np.array([3, 2, 4, 1])[:batch]
    return {
        "inputs": rng.normal(size=(batch, n_frames, 225)).astype(np.float32),
        "mask": np.arange(n_frames)[None, :] < lengths[:, None],
        "labels": rng.integers(0, 59, size=(batch, 6)).astype(np.int32),
        "label_mask": np.arange(6)[None, :] < label_lengths[:, None],
        "weights": np.ones(batch, np.float32),
    }


def test_the_distill_step_trains_the_student_against_a_frozen_teacher():
    config = resolve_config("distill", "smoke", ["model=1x16", "model.heads=2", "teacher=t", "total_steps=10", "warmup_steps=1"])
    teacher = build_ctc_model(model_config("1x32", {"heads": 2}), rngs=nnx.Rngs(params=7, dropout=8))
    teacher_before = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(teacher, nnx.Param)))
    student = build_ctc_model(config.model_config(), rngs=nnx.Rngs(params=0, dropout=1), with_kd_head=True)
    graphdef, params, rng_state = nnx.split(student, nnx.Param, ...)
    optimizer = build_optimizer(config, params)
    mesh = make_mesh()
    state = replicate({"step": jnp.int32(0), "params": params, "opt_state": optimizer.init(params),
                       "ema_params": jax.tree.map(jnp.copy, params)}, mesh)  # fmt: skip
    step = make_distill_step(graphdef, rng_state, optimizer, config, mesh, teacher)
    batch = shard_batch(tiny_batch(np.random.default_rng(1)), mesh)
    kd_losses = []
    for _ in range(3):
        state, scalars = step(state, batch)
        scalars = jax.device_get(scalars)
        assert float(scalars["loss"]) == pytest.approx(float(scalars["ctc_loss"]) + 10.0 * float(scalars["kd_loss"]), rel=1e-5)
        kd_losses.append(float(scalars["kd_loss"]))
    assert int(state["step"]) == 3 and kd_losses[-1] < kd_losses[0]
    jax.tree.map(np.testing.assert_array_equal, teacher_before, nnx.to_pure_dict(nnx.state(teacher, nnx.Param)))
    # the KD head learned; the CTC head is what inference uses and it moved too
    initial = nnx.state(build_ctc_model(config.model_config(), rngs=nnx.Rngs(params=0, dropout=1), with_kd_head=True), nnx.Param)
    for head in ("kd_head", "ctc_head"):
        assert not np.allclose(np.asarray(state["params"][head]["projection"]["kernel"][...]),
                               np.asarray(initial[head]["projection"]["kernel"][...]))  # fmt: skip


def save_model(workdir, size: str, stage: str = "finetune") -> dict:
    """A workdir whose checkpoint holds fresh weights of a `size` model (saved as training saves them)."""
    config = resolve_config(stage, "smoke", [f"model={size}", "model.heads=2"])
    params = nnx.state(build_ctc_model(config.model_config(), rngs=nnx.Rngs(params=3, dropout=4)), nnx.Param)
    with RunCheckpoints(workdir) as checkpoints:
        checkpoints.save(2, {"step": jnp.int32(2), "params": params, "ema_params": params}, {"best_step": 2}, config, 0.1)
        checkpoints.wait()
    return jax.tree.map(np.asarray, nnx.to_pure_dict(params))


def test_a_student_starts_from_every_kth_layer_of_a_deeper_model(tmp_path):
    source = save_model(tmp_path / "deep", "4x32")
    student = build_ctc_model(model_config("2x32", {"heads": 2}), rngs=nnx.Rngs(params=0, dropout=1), with_kd_head=True)
    assert init_from_deeper_model(student, tmp_path / "deep") == [1, 3]
    loaded = nnx.to_pure_dict(nnx.state(student, nnx.Param))
    for mine, theirs in ((0, 1), (1, 3)):
        jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, loaded["encoder"]["layers"][mine]),
                     source["encoder"]["layers"][theirs])  # fmt: skip
    np.testing.assert_array_equal(np.asarray(loaded["encoder"]["stem"]["kernel"]), source["encoder"]["stem"]["kernel"])
    for head in ("ctc_head", "kd_head"):
        np.testing.assert_array_equal(np.asarray(loaded[head]["projection"]["kernel"]), source["ctc_head"]["projection"]["kernel"])
    assert init_from_deeper_model(student, tmp_path / "deep", stride=1) == [0, 1]
    three = build_ctc_model(model_config("3x32", {"heads": 2}), rngs=nnx.Rngs(params=0, dropout=1))
    with pytest.raises(ConfigError, match="4 layers cannot give the student's 3 with stride 2"):
        init_from_deeper_model(three, tmp_path / "deep", stride=2)
    wide = build_ctc_model(model_config("2x64", {"heads": 2}), rngs=nnx.Rngs(params=0, dropout=1))
    with pytest.raises(ConfigError, match="this model expects"):
        init_from_deeper_model(wide, tmp_path / "deep")


@pytest.mark.slow
def test_distill_and_noisy_student_runs_from_the_command_line(tmp_path):
    """A few steps of each stage, through the CLI: the teacher is a saved untrained model, the
    alignments come from `signpipe align` (thresholds off, so every sequence is usable)."""
    import json

    from train_shards import write_spelling_shards

    from signpipe.cli import main

    shards = write_spelling_shards(tmp_path / "shards", n_train=16, n_validation=4)
    save_model(tmp_path / "teacher", "1x32")
    assert main(["align", "--workdir", str(tmp_path / "teacher"), "--shards", str(shards), "--out", str(tmp_path / "ali"),
                 "--min-confidence", "0", "--min-character-confidence", "0"]) == 0  # fmt: skip
    common = ["total_steps=2", "warmup_steps=1", "eval_every=2", "checkpoint_every=2", "log_every=1", "batch_size=4",
              "eval_batch_size=4", "max_length=32", "length_bucket=16", "model=1x16", "model.heads=2"]  # fmt: skip
    assert main(["train", "noisy-student", "--shards", str(shards), "--workdir", str(tmp_path / "ns"), *common,
                 f"alignments={tmp_path / 'ali'}", "cutmix_probability=1"]) == 0  # fmt: skip
    noisy = json.loads((tmp_path / "ns" / "final_metrics.json").read_text())
    assert noisy["step"] == 2 and noisy["aligned_usable"] == 16 and noisy["cutmix_probability"] == 1.0
    assert main(["train", "distill", "--shards", str(shards), "--workdir", str(tmp_path / "st"), *common,
                 f"teacher={tmp_path / 'teacher'}"]) == 0  # fmt: skip
    distilled = json.loads((tmp_path / "st" / "final_metrics.json").read_text())
    assert distilled["teacher_model"] == "1x32" and distilled["teacher_step"] == 2 and distilled["kd_weight"] == 10.0
    assert np.isfinite(distilled["train_kd_loss"]) and distilled["validation_score"] is not None
    # the student loads like any finetuned model (its KD head is simply not used)
    from signpipe.fingerspelling.finetune import load_finetuned_model

    model, config, step = load_finetuned_model(tmp_path / "st")
    assert isinstance(config, DistillConfig) and step == 2 and model.kd_head is None
    with pytest.raises(ConfigError, match="no alignments"):
        from signpipe.fingerspelling.noisy_student import train_and_evaluate

        train_and_evaluate(dataclasses.replace(resolve_config("noisy_student", "smoke"), data_dir=str(shards)), tmp_path / "x")


def shifted_shards(source, target, id_offset: int):
    """A copy of a shard directory whose sequence ids are moved by `id_offset` (another corpus)."""
    from signpipe.landmarks import features
    from signpipe.fingerspelling.shards import ShardSequence, load_split, read_manifest, write_manifest, write_shard

    manifest = read_manifest(source)
    for split, entry in manifest["splits"].items():
        moved = [ShardSequence(s.sequence_id + id_offset, s.participant_id, s.label, s.frames) for s in load_split(source, split)]
        write_shard(target / entry["shards"][0]["path"], moved, features.INPUT_POINTS)
    write_manifest(target, {k: v for k, v in manifest.items() if k != "format_version"})
    return target


def true_alignment_rows(shards, split: str = "train"):
    """Artifact rows whose alignments spell each phrase with one character per frame run."""
    from signpipe.fingerspelling.align.artifact import AlignedSequence
    from signpipe.fingerspelling.align.viterbi import ctc_forced_align
    from signpipe.data.schema import CHARACTER_MAP_FILE, packaged_map
    from signpipe.fingerspelling.shards import load_split

    character_map = packaged_map(CHARACTER_MAP_FILE)
    rows = []
    for sequence in load_split(shards, split):
        label = np.array([character_map[c] for c in sequence.label])
        log_probs = np.zeros((1, len(sequence.frames), 60), np.float32)
        aligned = ctc_forced_align(log_probs, [len(sequence.frames)], label[None], [len(label)], min_confidence=0.0,
                                   min_character_confidence=0.0)  # fmt: skip
        rows.append(AlignedSequence(sequence.sequence_id, split, sequence.label, aligned.sequence(0)))
    return rows


def test_noisy_student_data_adds_supplemental_sequences_with_their_alignments(tmp_path):
    from train_shards import write_spelling_shards

    from signpipe.fingerspelling.align.artifact import write_alignments
    from signpipe.fingerspelling.align.cutmix import CutMixBatches
    from signpipe.errors import SignpipeError
    from signpipe.fingerspelling.noisy_student import load_training_data, training_batches

    shards = write_spelling_shards(tmp_path / "shards", n_train=10, n_validation=3)
    extra = shifted_shards(write_spelling_shards(tmp_path / "raw-extra", n_train=6, n_validation=1, seed=1),
                           tmp_path / "extra", id_offset=1000)  # fmt: skip
    rows = true_alignment_rows(shards)
    write_alignments(tmp_path / "ali", rows[:-1], {})  # one training sequence was not aligned
    write_alignments(tmp_path / "extra-ali", true_alignment_rows(extra), {})
    config = resolve_config("noisy_student", "smoke", [f"data_dir={shards}", f"alignments={tmp_path / 'ali'}",
                            f"supplemental_data_dir={extra}", f"supplemental_alignments={tmp_path / 'extra-ali'}",
                            "batch_size=4"])  # fmt: skip
    data = load_training_data(config)
    assert (len(data.train), data.n_supplemental, len(data.validation)) == (16, 6, 3)
    assert (data.alignments.n_usable, data.alignments.n_missing) == (15, 1)
    assert isinstance(training_batches(config, data), CutMixBatches)
    without = load_training_data(dataclasses.replace(config, supplemental_alignments=""))
    assert (without.alignments.n_usable, without.alignments.n_missing) == (9, 7)
    clash = resolve_config("noisy_student", "smoke", [f"data_dir={shards}", f"supplemental_data_dir={shards}"])
    with pytest.raises(SignpipeError, match="are in both the data and the supplemental data"):
        load_training_data(clash)
