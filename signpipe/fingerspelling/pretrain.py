"""Data2vec 2.0 pretraining of the encoder: `train_and_evaluate(config, workdir)`.

    signpipe train pretrain --shards shards/ --workdir runs/pt --preset smoke
    signpipe train finetune --shards shards/ --workdir runs/ft --preset smoke init_from=runs/pt

The method and its pieces are in `signpipe.fingerspelling.data2vec`; this module runs them with the
machinery every stage shares (config presets and overrides from `signpipe.fingerspelling.config`,
augmented batches from `signpipe.fingerspelling.data`, AdamW from `optim`, the data-parallel mesh, Orbax
checkpoints and the resumable loop). Labels are not used: every split of every shard directory
is pretraining data (the seed pretrained on all of it), and `data_dir` may list several
directories separated by commas (`data_dir=shards/,extra_shards/`), e.g. unlabelled corpora.

The train state is one pytree, checkpointed and resumed like finetuning's:

    {"step": int32, "params": student (encoder + decoder), "opt_state": AdamW, "teacher": encoder}

`params/encoder` is the student's encoder, the weights finetuning starts from (`init_from`, read
by `signpipe.fingerspelling.finetune.load_encoder_weights`). The teacher is an EMA of the student's
encoder with the decay ramped from `teacher_decay_start` to `teacher_decay_end` over
`teacher_decay_steps`. Masks, mask noise and dropout all come from `fold_in(key(seed), step)`,
so a resumed run repeats the uninterrupted one exactly, on any number of devices.

Files in the workdir: `config.json`, `checkpoints/`, `metrics.jsonl`, `tb/`, and at the end
`final_metrics.json` (what `train_and_evaluate` returns).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from signpipe.data.atomic import atomic_write_text
from signpipe.errors import ConfigError, CorpusError, Problem, SignpipeError
from signpipe.landmarks import features
from signpipe.fingerspelling.shards import load_split, read_checked_manifest
from signpipe.train.checkpoint import RunCheckpoints
from signpipe.fingerspelling.config import PretrainConfig, dump_config
from signpipe.fingerspelling.data import Batch, IteratorState, LabelledSplit, TrainBatches, non_finite_problem
from signpipe.fingerspelling.data2vec import Data2vecModel, masked_mse, sample_frame_masks, teacher_decay_at, teacher_targets
from signpipe.train.loop import outcome_notes, run_training_loop
from signpipe.train.mesh import (
    batch_sharding,
    check_batch_size,
    make_mesh,
    maybe_initialize_distributed,
    process_rows,
    replicate,
    replicated_sharding,
)
from signpipe.train.optim import build_optimizer, learning_rate_schedule, update_ema
from signpipe.train.reporting import read_metrics, strict_json

FINAL_METRICS_FILE = "final_metrics.json"
BATCH_KEYS = ("inputs", "mask", "weights")
"""What the pretraining step reads of a batch; label arrays are dropped before they reach devices."""


def shard_dirs(data_dir: str) -> list[Path]:
    """The shard directories named by `data_dir` (one path, or several separated by commas)."""
    dirs = [Path(part.strip()) for part in str(data_dir).split(",") if part.strip()]
    if not dirs:
        raise ConfigError("pretrain: no data_dir (pass --shards SHARDS, or data_dir=DIR[,DIR...])")
    return dirs


def load_pretraining_sequences(data_dir: str) -> LabelledSplit:
    """Every sequence of every split of the listed shard directories, featurized with each
    directory's own y scale, labels left empty (pretraining reads frames only)."""
    featurized: list[np.ndarray] = []
    ids: list[int] = []
    non_finite: list[Problem] = []
    for shard_dir in shard_dirs(data_dir):
        manifest = read_checked_manifest(shard_dir, "pretraining", phrases=False)
        where = shard_dir / "manifest.json"
        y_scale = manifest["y_scale"]
        splits = sorted(manifest.get("splits", {}))
        if not splits:
            raise SignpipeError(f"{where}: lists no splits (expected train and/or validation shards)")
        for split in splits:
            for sequence in load_split(shard_dir, split):
                if len(sequence.frames) == 0:
                    continue
                with np.errstate(invalid="ignore", over="ignore"):  # inf: reported below, by sequence
                    featurized.append(features.featurize(sequence.frames, y_scale, xp=np))
                ids.append(sequence.sequence_id)
                problem = non_finite_problem(sequence.frames, featurized[-1], f"{shard_dir} ({split}) sequence "
                                             f"{sequence.sequence_id}")  # fmt: skip
                if problem is not None:
                    non_finite.append(problem)
    if non_finite:
        raise CorpusError(non_finite)
    if not featurized:
        raise SignpipeError(f"{data_dir}: no sequence with frames in any split")
    no_label = np.zeros(0, np.int32)
    return LabelledSplit(
        name="pretrain",
        features=featurized,
        labels=[no_label] * len(featurized),
        phrases=[""] * len(featurized),
        sequence_ids=np.asarray(ids, np.int64),
        n_dropped_too_short=0,
    )


class FrameBatches:
    """`TrainBatches` (shuffled, augmented, restorable) without the label arrays."""

    def __init__(self, batches: TrainBatches):
        self.batches = batches

    @property
    def state(self) -> IteratorState:
        return self.batches.state

    def restore(self, state: IteratorState) -> None:
        self.batches.restore(state)

    def __iter__(self) -> FrameBatches:
        return self

    def __next__(self) -> Batch:
        batch = next(self.batches)
        return {key: batch[key] for key in BATCH_KEYS}


def build_model(config: PretrainConfig) -> Data2vecModel:
    return Data2vecModel(
        config.model_config(),
        config.decoder_layers,
        config.decoder_kernel,
        rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1),
    )


def initial_state(model: Data2vecModel, optimizer: optax.GradientTransformation) -> tuple[Any, Any, dict[str, Any]]:
    """(graphdef, non-parameter state, train state): the teacher starts as a copy of the student's
    encoder."""
    graphdef, params, rng_state = nnx.split(model, nnx.Param, ...)
    teacher = jax.tree.map(jnp.copy, nnx.state(model.encoder, nnx.Param))
    state = {"step": jnp.int32(0), "params": params, "opt_state": optimizer.init(params), "teacher": teacher}
    return graphdef, rng_state, state


def make_train_step(
    model: Data2vecModel,
    graphdef: Any,
    rng_state: Any,
    optimizer: optax.GradientTransformation,
    config: PretrainConfig,
    mesh: Mesh,
):
    """The jitted step: teacher targets, M masks per sample, student loss and gradients, AdamW
    update, teacher EMA update; the batch is split over the mesh, everything else replicated."""
    schedule = learning_rate_schedule(config)
    base_key = jax.random.key(config.seed)
    teacher_graphdef, _, teacher_rest = nnx.split(model.encoder, nnx.Param, ...)

    def loss_fn(params: Any, batch: Mapping[str, jax.Array], targets: jax.Array, keys: tuple) -> jax.Array:
        dropout_key, mask_key, noise_key = keys
        student = nnx.merge(graphdef, params, jax.tree.map(lambda leaf: leaf, rng_state))
        nnx.reseed(student, dropout=dropout_key)
        masks = sample_frame_masks(mask_key, batch["mask"], config.masks_per_sample, config.mask_ratio, config.mask_block)
        predictions = student.predict_masked(batch["inputs"], batch["mask"], masks, noise_key, deterministic=False)
        row_weights = jnp.repeat(batch["weights"], config.masks_per_sample, axis=0)
        repeated_targets = jnp.repeat(targets, config.masks_per_sample, axis=0)
        return masked_mse(predictions, repeated_targets, masks.masked, row_weights)

    def train_step(state: dict[str, Any], batch: Mapping[str, jax.Array]) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        step = state["step"]
        keys = tuple(jax.random.split(jax.random.fold_in(base_key, step), 3))
        teacher = nnx.merge(teacher_graphdef, state["teacher"], teacher_rest)
        targets = teacher_targets(teacher, batch["inputs"], batch["mask"], config.target_layers)
        loss, grads = jax.value_and_grad(loss_fn)(state["params"], batch, targets, keys)
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        decay = teacher_decay_at(step, config.teacher_decay_start, config.teacher_decay_end, config.teacher_decay_steps)
        new_teacher = update_ema(state["teacher"], params["encoder"], decay)
        new_state = {"step": step + 1, "params": params, "opt_state": opt_state, "teacher": new_teacher}
        scalars = {
            "loss": loss,
            "grad_norm": optax.global_norm(grads),
            "learning_rate": schedule(step),
            "teacher_decay": decay,
        }
        return new_state, scalars

    replicated = replicated_sharding(mesh)
    return jax.jit(
        train_step,
        in_shardings=(replicated, batch_sharding(mesh)),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )


def _check_inputs(config: PretrainConfig) -> None:
    if not isinstance(config, PretrainConfig):
        raise ConfigError(f"pretrain needs a PretrainConfig, got {type(config).__name__}")
    for shard_dir in shard_dirs(config.data_dir):
        if not shard_dir.is_dir():
            raise SignpipeError(f"{shard_dir}: feature-shard directory not found (expected the output of preprocess)")


def _logged_losses(workdir: Path) -> list[float]:
    return [float(record["train/loss"]) for record in read_metrics(workdir) if record.get("train/loss") is not None]


def train_and_evaluate(config: PretrainConfig, workdir: str | Path) -> dict[str, Any]:
    """Pretrain with Data2vec 2.0 (resuming from `workdir` when it holds checkpoints of this
    config) and return the final metrics: the first and last logged train loss (the loss curve's
    ends, from `metrics.jsonl`), the teacher's final decay, data counts and throughput."""
    _check_inputs(config)
    maybe_initialize_distributed()
    workdir = Path(workdir)
    mesh = make_mesh()
    check_batch_size(config.batch_size, mesh)
    if jax.process_index() == 0:
        with RunCheckpoints(workdir, keep=config.keep_checkpoints) as existing:
            existing.check_config(config)  # before anything in the workdir is overwritten
        dump_config(config, workdir)

    sequences = load_pretraining_sequences(config.data_dir)
    model = build_model(config)
    optimizer = build_optimizer(config, nnx.state(model, nnx.Param))
    graphdef, rng_state, state = initial_state(model, optimizer)
    state = replicate(state, mesh)
    train_step = make_train_step(model, graphdef, rng_state, optimizer, config, mesh)
    batches = FrameBatches(
        TrainBatches(
            sequences,
            config.batch_size,
            config.max_length,
            config.length_bucket,
            1,  # labels are empty; collate still wants a label width
            config.seed,
            augment=config.augment,
            rows=process_rows(config.batch_size),
        )
    )
    outcome = run_training_loop(
        config=config,
        workdir=workdir,
        mesh=mesh,
        state=state,
        train_step=train_step,
        batches=batches,
        description="pretrain",
    )
    losses = _logged_losses(workdir) if jax.process_index() == 0 else []
    metrics: dict[str, Any] = {
        "step": outcome.step,
        "train_loss": outcome.last_train.get("loss"),
        "first_logged_train_loss": losses[0] if losses else None,
        "last_logged_train_loss": losses[-1] if losses else None,
        "final_teacher_decay": float(
            teacher_decay_at(outcome.step - 1, config.teacher_decay_start, config.teacher_decay_end, config.teacher_decay_steps)
        ),
        "n_sequences": len(sequences),
        "n_frames": int(sequences.lengths.sum()),
        "resumed_from_step": outcome.resumed_from,
        "steps_run": outcome.steps_run,
        "train_seconds": round(outcome.train_seconds, 3),
        "n_devices": int(mesh.devices.size),
        **outcome_notes(outcome),
    }
    if jax.process_index() == 0:
        atomic_write_text(workdir / FINAL_METRICS_FILE, strict_json(metrics, indent=2) + "\n")
    return metrics
