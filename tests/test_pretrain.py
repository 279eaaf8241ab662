"""Data2vec 2.0 pretraining: each piece on tiny arrays, then a short run on spelled-shape shards
(the loss falls, a kill-and-resume repeats it, finetuning's init_from picks up its encoder)."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from signpipe.errors import ConfigError, SignpipeError
from signpipe.fingerspelling.model import Encoder, model_config
from signpipe.train.checkpoint import RunCheckpoints
from signpipe.fingerspelling.config import resolve_config
from signpipe.fingerspelling.data2vec import (
    Data2vecModel,
    MaskedFrameDecoder,
    gather_visible,
    instance_norm_over_time,
    masked_counts,
    masked_mse,
    place_visible,
    sample_frame_masks,
    targets_from_hidden,
    teacher_decay_at,
    teacher_targets,
    visible_slots,
)
from signpipe.fingerspelling.pretrain import load_pretraining_sequences, train_and_evaluate
from signpipe.train.reporting import read_metrics

from train_shards import write_spelling_shards

TINY = model_config("tiny", {"dropout": 0.0, "layerdrop": 0.0, "n_features": 12})


# one compiled call instead of dozens of eagerly dispatched ops (much faster on CPU)
sample_masks = jax.jit(sample_frame_masks, static_argnums=(2, 3, 4))


def prefix_mask(lengths, n_frames):
    return jnp.arange(n_frames)[None, :] < jnp.asarray(lengths)[:, None]


def runs(row: np.ndarray) -> list[int]:
    """Lengths of the maximal runs of True in a 1-D bool array."""
    padded = np.concatenate([[False], row, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(edges[1::2] - edges[0::2])


# --- masks -------------------------------------------------------------------------------------


def test_masks_cover_exactly_the_ratio_of_valid_frames_in_blocks():
    lengths, n_frames, m, ratio, block = [43, 40, 23, 7, 1, 0], 43, 4, 0.5, 5
    masks = sample_masks(jax.random.key(0), prefix_mask(lengths, n_frames), m, ratio, block)
    masked, visible = np.asarray(masks.masked), np.asarray(masks.visible)
    assert masked.shape == (len(lengths) * m, n_frames)
    for row in range(masked.shape[0]):
        length = lengths[row // m]
        assert masked[row].sum() == math.floor(ratio * length)
        assert not masked[row, length:].any() and not visible[row, length:].any()
        np.testing.assert_array_equal(masked[row, :length] | visible[row, :length], True)
        assert not (masked[row] & visible[row]).any()
        if length >= 20:
            # whole blocks plus at most one partial block and two cut at the sequence's ends
            assert sum(r < block for r in runs(masked[row])) <= 3
            assert len(runs(masked[row])) <= math.floor(ratio * length) // block + 3
    # the M masks of one sample differ; the same key gives the same masks
    assert len({masked[r].tobytes() for r in range(m)}) == m
    again = sample_masks(jax.random.key(0), prefix_mask(lengths, n_frames), m, ratio, block)
    np.testing.assert_array_equal(np.asarray(again.masked), masked)


def test_iid_masking_would_fail_the_block_check():
    """The block check above can fail: independent frame masking gives many short runs."""
    row = np.random.default_rng(0).random(43) < 0.5
    assert sum(r < 5 for r in runs(row)) > 3


def test_visible_slots_hold_the_visible_frames_in_time_order_with_static_width():
    lengths, n_frames, ratio = [37, 30, 3], 37, 0.5
    masks = sample_masks(jax.random.key(3), prefix_mask(lengths, n_frames), 2, ratio, 5)
    n_slots = visible_slots(n_frames, ratio)
    assert n_slots == 37 - 18
    assert masks.visible_positions.shape == masks.visible_valid.shape == (6, n_slots)
    for row in range(6):
        frames = np.flatnonzero(np.asarray(masks.visible[row]))
        n = len(frames)
        np.testing.assert_array_equal(np.asarray(masks.visible_positions[row, :n]), frames)
        np.testing.assert_array_equal(np.asarray(masks.visible_valid[row]), np.arange(n_slots) < n)


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.6, 0.7, 0.9])
def test_no_row_has_more_visible_frames_than_slots(ratio):
    n_frames = 10
    lengths = jnp.arange(n_frames + 1)
    counts = np.asarray(masked_counts(lengths, ratio, n_frames))
    assert np.all(np.arange(n_frames + 1) - counts <= visible_slots(n_frames, ratio))
    assert np.all(counts <= np.arange(n_frames + 1))
    # float32(0.7) * 10 rounds below 7: the guard still masks 7 of 10
    assert masked_counts(jnp.array([10]), 0.7, 10)[0] == 7


def test_gathered_visible_frames_go_back_to_their_time_index():
    valid = prefix_mask([12, 9], 12)
    masks = sample_masks(jax.random.key(1), valid, 3, 0.5, 3)
    frames = jax.random.normal(jax.random.key(2), (6, 12, 4))
    restored = place_visible(gather_visible(frames, masks), masks)
    np.testing.assert_array_equal(np.asarray(restored), np.where(np.asarray(masks.visible)[..., None], frames, 0.0))


@nnx.jit
def encode_three_ways(encoder: Encoder, inputs: jax.Array, valid: jax.Array, masks) -> tuple:
    """Visible frames encoded in place (masked frames hidden as keys), as student slots with their
    original positions, and as slots renumbered 0..V-1."""
    h = encoder.embed(inputs, valid)
    in_place = encoder.encode(h, masks.visible, deterministic=True)
    slots = encoder.encode(gather_visible(h, masks), masks.visible_valid, masks.visible_positions, deterministic=True)
    renumbered = encoder.encode(gather_visible(h, masks), masks.visible_valid, deterministic=True)
    return in_place, place_visible(slots, masks), renumbered, slots


def test_visible_frames_keep_their_original_rotary_positions():
    """The student's slots attend exactly as those frames would inside the full sequence with the
    masked frames hidden: same positions, same relative offsets."""
    n_frames = 20
    encoder = Encoder(TINY, rngs=nnx.Rngs(params=0, dropout=1))
    valid = prefix_mask([20, 14], n_frames)
    masks = sample_masks(jax.random.key(4), valid, 1, 0.5, 5)
    inputs = jax.random.normal(jax.random.key(5), (2, n_frames, TINY.n_features))
    in_place, placed, renumbered, slots = encode_three_ways(encoder, inputs, valid, masks)
    np.testing.assert_allclose(
        np.asarray(placed), np.where(np.asarray(masks.visible)[..., None], np.asarray(in_place), 0.0), atol=1e-5
    )
    # renumbering the slots 0..V-1 (losing the original positions) changes the result
    assert not np.allclose(np.asarray(renumbered), np.asarray(slots), atol=1e-3)


@nnx.jit
def predict_without_dropout(model: Data2vecModel, inputs, valid, masks, key):
    return model.predict_masked(inputs, valid, masks, key, deterministic=True)


def test_student_never_reads_masked_frames_beyond_the_stem_window():
    model = Data2vecModel(TINY, decoder_layers=2, decoder_kernel=7, rngs=nnx.Rngs(params=0, dropout=1))
    n_frames = 40
    valid = prefix_mask([40, 33], n_frames)
    masks = sample_masks(jax.random.key(6), valid, 1, 0.5, 5)
    inputs = jax.random.normal(jax.random.key(7), (2, n_frames, TINY.n_features))
    masked = np.asarray(masks.masked)
    # masked frames both of whose neighbours are masked: out of reach of the kernel-3 stem
    hidden_deep = masked & np.roll(masked, 1, axis=1) & np.roll(masked, -1, axis=1)
    hidden_deep[:, [0, -1]] = False
    assert hidden_deep.sum() >= 4
    changed = jnp.where(hidden_deep[..., None], 100.0, inputs)
    key = jax.random.key(8)
    before = predict_without_dropout(model, inputs, valid, masks, key)
    after = predict_without_dropout(model, changed, valid, masks, key)
    np.testing.assert_allclose(np.asarray(after), np.asarray(before), atol=1e-5)
    # and NaN in padded frames changes nothing either
    padded = jnp.where(np.asarray(valid)[..., None], inputs, jnp.nan)
    np.testing.assert_allclose(
        np.asarray(predict_without_dropout(model, padded, valid, masks, key)), np.asarray(before), atol=1e-6
    )
    assert before.shape == (2, n_frames, TINY.width)


# --- teacher ------------------------------------------------------------------------------------


def test_teacher_decay_ramps_linearly_then_stays():
    values = [float(teacher_decay_at(s, 0.999, 0.99999, 100_000)) for s in (0, 50_000, 100_000, 250_000)]
    np.testing.assert_allclose(values, [0.999, (0.999 + 0.99999) / 2, 0.99999, 0.99999], rtol=0, atol=1e-7)


def test_instance_norm_is_per_sequence_and_channel_over_valid_frames_only():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(2, 3, 9, 4)).astype(np.float32)  # [layers, B, T, D]
    lengths = [9, 5, 2]
    valid = np.asarray(prefix_mask(lengths, 9))
    out = np.asarray(instance_norm_over_time(jnp.asarray(x), jnp.asarray(valid)))
    for b, length in enumerate(lengths):
        part = x[:, b, :length]
        expected = (part - part.mean(axis=1, keepdims=True)) / np.sqrt(part.var(axis=1, keepdims=True) + 1e-5)
        np.testing.assert_allclose(out[:, b, :length], expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(out[:, b, length:], 0.0)
    garbage = np.where(valid[None, ..., None], x, 1e6).astype(np.float32)
    np.testing.assert_allclose(np.asarray(instance_norm_over_time(jnp.asarray(garbage), jnp.asarray(valid))), out, atol=1e-6)


def test_targets_are_the_mean_of_the_top_layers_normalized():
    hidden = jax.random.normal(jax.random.key(0), (4, 2, 8, 3)) * jnp.arange(1.0, 5.0)[:, None, None, None]
    valid = prefix_mask([8, 6], 8)
    targets = targets_from_hidden(hidden, valid, 2)
    expected = (instance_norm_over_time(hidden[2], valid) + instance_norm_over_time(hidden[3], valid)) / 2
    np.testing.assert_allclose(np.asarray(targets), np.asarray(expected), atol=1e-6)
    lower_changed = hidden.at[:2].set(0.0)
    np.testing.assert_array_equal(np.asarray(targets_from_hidden(lower_changed, valid, 2)), np.asarray(targets))


def test_teacher_targets_ignore_padding_and_have_the_encoder_width():
    targets_of = nnx.jit(teacher_targets, static_argnums=3)
    encoder = Encoder(TINY, rngs=nnx.Rngs(params=0, dropout=1))
    valid = prefix_mask([10, 7], 10)
    inputs = jax.random.normal(jax.random.key(1), (2, 10, TINY.n_features))
    targets = targets_of(encoder, inputs, valid, 2)
    assert targets.shape == (2, 10, TINY.width)
    np.testing.assert_array_equal(np.asarray(targets[1, 7:]), 0.0)
    other_padding = jnp.where(np.asarray(valid)[..., None], inputs, 5.0)
    np.testing.assert_allclose(np.asarray(targets_of(encoder, other_padding, valid, 2)), np.asarray(targets), atol=1e-5)


# --- decoder and loss ---------------------------------------------------------------------------


def test_decoder_is_depthwise_and_padding_does_not_leak():
    decoder = MaskedFrameDecoder(16, layers=3, kernel=7, rngs=nnx.Rngs(params=0, dropout=1))
    assert len(decoder.convolutions) == 3
    assert decoder.convolutions[0].kernel[...].shape == (7, 1, 16)
    valid = prefix_mask([12, 8], 12)
    x = jax.random.normal(jax.random.key(0), (2, 12, 16))
    decode = nnx.jit(lambda module, frames, mask: module(frames, mask))
    out = decode(decoder, x, valid)
    noisy_padding = jnp.where(np.asarray(valid)[..., None], x, 50.0)
    np.testing.assert_allclose(
        np.asarray(decode(decoder, noisy_padding, valid))[np.asarray(valid)], np.asarray(out)[np.asarray(valid)], atol=1e-5
    )


def test_loss_counts_masked_valid_frames_only():
    rng = np.random.default_rng(1)
    predictions, targets = rng.normal(size=(2, 2, 6, 3)).astype(np.float32)
    masked = np.zeros((2, 6), bool)
    masked[0, [1, 2]] = True
    masked[1, [4]] = True
    loss = float(masked_mse(jnp.asarray(predictions), jnp.asarray(targets), jnp.asarray(masked)))
    squared = ((predictions - targets) ** 2).mean(axis=-1)
    np.testing.assert_allclose(loss, squared[masked].mean(), rtol=1e-6)
    elsewhere = np.where(masked[..., None], predictions, 1e3).astype(np.float32)
    assert float(masked_mse(jnp.asarray(elsewhere), jnp.asarray(targets), jnp.asarray(masked))) == pytest.approx(loss, rel=1e-6)
    weighted = float(masked_mse(jnp.asarray(predictions), jnp.asarray(targets), jnp.asarray(masked), jnp.array([1.0, 0.0])))
    np.testing.assert_allclose(weighted, squared[0, [1, 2]].mean(), rtol=1e-6)


# --- data ---------------------------------------------------------------------------------------


def test_pretraining_reads_every_split_of_every_listed_directory(tmp_path):
    first = write_spelling_shards(tmp_path / "a", n_train=6, n_validation=2, seed=1)
    second = write_spelling_shards(tmp_path / "b", n_train=3, n_validation=1, seed=2)
    sequences = load_pretraining_sequences(f"{first},{second}")
    assert len(sequences) == 12
    assert all(f.shape[1:] == (75, 3) and label.size == 0 for f, label in zip(sequences.features, sequences.labels, strict=True))
    with pytest.raises(SignpipeError, match="nowhere: feature-shard directory not found"):
        load_pretraining_sequences(f"{first},{tmp_path / 'nowhere'}")
    with pytest.raises(ConfigError, match="no data_dir"):
        load_pretraining_sequences(" , ")


# --- a short run --------------------------------------------------------------------------------

RUN_OVERRIDES = [
    "batch_size=8",
    "max_length=32",
    "length_bucket=32",
    "total_steps=120",
    "warmup_steps=5",
    "learning_rate=3e-3",
    "teacher_decay_steps=120",
    "log_every=10",
    "checkpoint_every=40",
]


def run_config(shards: Path, extra: list[str] | None = None):
    config = resolve_config("pretrain", "smoke", RUN_OVERRIDES + (extra or []))
    return dataclasses.replace(config, data_dir=str(shards))


@pytest.fixture(scope="module")
def spelled_shards(tmp_path_factory) -> Path:
    return write_spelling_shards(tmp_path_factory.mktemp("pretrain") / "shards", n_train=48, n_validation=16, seed=3)


@pytest.fixture(scope="module")
def uninterrupted_run(spelled_shards, tmp_path_factory) -> tuple[Path, dict]:
    workdir = tmp_path_factory.mktemp("pretrain_run")
    return workdir, train_and_evaluate(run_config(spelled_shards), workdir)


def test_pretraining_loss_falls(uninterrupted_run):
    workdir, metrics = uninterrupted_run
    assert metrics["step"] == 120 and metrics["n_sequences"] == 64 and metrics["resumed_from_step"] is None
    losses = [r["train/loss"] for r in read_metrics(workdir) if "train/loss" in r]
    assert len(losses) == 12 and all(np.isfinite(losses))
    # targets start at unit variance per channel, so a loss near 1 is "predicts nothing"; the
    # pose and lip points of these shards are pure jitter, which bounds how far it can fall
    assert metrics["last_logged_train_loss"] < 0.9 * metrics["first_logged_train_loss"]
    assert (workdir / "final_metrics.json").is_file() and (workdir / "config.json").is_file()


# a subprocess and one more compilation: about 15 s on 2 cores; the pretraining half of the
# resume guard (test_train_resume has finetuning's), so it runs with the default suite
def test_kill_and_resume_repeats_the_uninterrupted_run(spelled_shards, uninterrupted_run, tmp_path):
    reference_dir, reference = uninterrupted_run
    workdir = tmp_path / "resumed"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, dataclasses\n"
            "from signpipe.fingerspelling.config import resolve_config\n"
            "from signpipe.fingerspelling.pretrain import train_and_evaluate\n"
            "config = resolve_config('pretrain', 'smoke', sys.argv[3:])\n"
            "train_and_evaluate(dataclasses.replace(config, data_dir=sys.argv[1]), sys.argv[2])\n",
            str(spelled_shards),
            str(workdir),
            *RUN_OVERRIDES,
            "stop_after_step=60",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == 75, killed.stderr[-2000:]
    resumed = train_and_evaluate(run_config(spelled_shards), workdir)
    assert resumed["resumed_from_step"] == 40 and resumed["steps_run"] == 80
    assert resumed["last_logged_train_loss"] == reference["last_logged_train_loss"]
    assert [r["train/loss"] for r in read_metrics(workdir)] == [r["train/loss"] for r in read_metrics(reference_dir)]
    with RunCheckpoints(reference_dir, read_only=True) as a, RunCheckpoints(workdir, read_only=True) as b:
        (step_a, state_a), (step_b, state_b) = a.restore_unstructured(), b.restore_unstructured()
    assert step_a == step_b == 120
    jax.tree.map(np.testing.assert_array_equal, state_a, state_b)


def saved_array(node) -> np.ndarray:
    """A checkpointed nnx Variable comes back as {"value": array}."""
    return np.asarray(node["value"] if isinstance(node, dict) else node)


def test_finetuning_starts_from_the_students_encoder(uninterrupted_run):
    from signpipe.fingerspelling.finetune import build_model

    workdir, _ = uninterrupted_run
    config = resolve_config("finetune", "smoke", ["total_steps=30", "warmup_steps=3"])
    pretrained = build_model(dataclasses.replace(config, init_from=str(workdir)))
    scratch = build_model(config)
    with RunCheckpoints(workdir, read_only=True) as checkpoints:
        _, saved = checkpoints.restore_unstructured()
    student, teacher = saved["params"]["encoder"], saved["teacher"]
    loaded = nnx.state(pretrained.encoder, nnx.Param).to_pure_dict()
    stem = saved_array(student["stem"]["kernel"])
    np.testing.assert_array_equal(np.asarray(loaded["stem"]["kernel"]), stem)
    np.testing.assert_array_equal(
        np.asarray(loaded["layers"][1]["ffn"]["expand"]["kernel"]),
        saved_array(student["layers"]["1"]["ffn"]["expand"]["kernel"]),
    )
    assert not np.array_equal(np.asarray(nnx.state(scratch.encoder, nnx.Param).to_pure_dict()["stem"]["kernel"]), stem)
    # the teacher is saved too, and lags behind the student it follows
    teacher_stem = saved_array(teacher["stem"]["kernel"])
    assert teacher_stem.shape == stem.shape and not np.array_equal(teacher_stem, stem)


@pytest.mark.slow  # a subprocess with its own compilation
def test_four_devices_give_the_losses_of_one(spelled_shards, uninterrupted_run, tmp_path):
    reference_dir, _ = uninterrupted_run
    workdir = tmp_path / "four_devices"
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, dataclasses, jax\n"
            "from signpipe.fingerspelling.config import resolve_config\n"
            "from signpipe.fingerspelling.pretrain import train_and_evaluate\n"
            "assert jax.device_count() == 4, jax.devices()\n"
            "config = resolve_config('pretrain', 'smoke', sys.argv[3:])\n"
            "train_and_evaluate(dataclasses.replace(config, data_dir=sys.argv[1]), sys.argv[2])\n",
            str(spelled_shards),
            str(workdir),
            *RUN_OVERRIDES,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"},
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    four = [r["train/loss"] for r in read_metrics(workdir)]
    one = [r["train/loss"] for r in read_metrics(reference_dir)]
    np.testing.assert_allclose(four, one, rtol=1e-4)
