"""The noisy-student step: retrain the teacher with CutMix on its own pseudo-alignments.

    signpipe align --model runs/teacher --data shards/ --out runs/alignments
    signpipe train noisy-student --data shards/ --workdir runs/teacher-cutmix --preset smoke \\
        alignments=runs/alignments

This is CTC finetuning (`signpipe.train.finetune`: same model, loss, optimizer, EMA, evaluation,
checkpoints and resumable loop) whose training batches come from
`signpipe.align.cutmix.CutMixBatches`: each row is, with probability `cutmix_probability`, mixed
with another training sequence at frames its alignment says where characters are. The seed
retrained its large teacher this way and it scored better than the teacher it started from.

`supplemental_data_dir` adds the train split of a second shard directory (the competition's
supplemental set), with its own alignments in `supplemental_alignments`; the seed found that
such extra data hurt without CutMix and helped (+0.01) with it.

`train_and_evaluate` is built from `run_ctc_stage`, which distillation (`signpipe.train.distill`)
reuses with its own model and train step.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from signpipe.align.artifact import AlignmentRecords, read_alignments
from signpipe.align.cutmix import DEFAULT_RETRIES, AttachedAlignments, CutMixBatches, attach_alignments
from signpipe.data.atomic import atomic_write_text
from signpipe.errors import ConfigError, SignpipeError
from signpipe.landmarks.shards import read_manifest
from signpipe.models import CTCModel
from signpipe.train.checkpoint import RunCheckpoints
from signpipe.train.config import PRESETS, STAGES, FinetuneConfig, dump_config
from signpipe.train.data import LabelledSplit, TrainBatches, character_map_of, load_labelled_split
from signpipe.train.finetune import (
    FINAL_METRICS_FILE,
    SCORE_KEY,
    build_model,
    evaluate_split,
    make_eval_step,
    make_train_step,
)
from signpipe.train.loop import run_training_loop
from signpipe.train.mesh import (
    check_batch_size,
    make_mesh,
    maybe_initialize_distributed,
    process_rows,
    replicate,
)
from signpipe.train.optim import build_optimizer

STAGE = "noisy_student"
DEFAULT_CUTMIX_PROBABILITY = 0.5


@dataclasses.dataclass(frozen=True)
class NoisyStudentConfig(FinetuneConfig):
    """CTC finetuning with temporal CutMix on pseudo-alignments (REFERENCE.md section 2, "CutMix")."""

    alignments: str = ""
    """Alignments artifact (`signpipe align` output) covering the train split of `data_dir`."""
    cutmix_probability: float = DEFAULT_CUTMIX_PROBABILITY
    cutmix_retries: int = DEFAULT_RETRIES
    supplemental_data_dir: str = ""
    """Shard directory whose train split is added to the training data ("" = none)."""
    supplemental_alignments: str = ""
    """Alignments of `supplemental_data_dir`'s train split ("" = its sequences are never mixed)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = []
        if not 0.0 <= self.cutmix_probability <= 1.0:
            problems.append(f"cutmix_probability must be in [0, 1], got {self.cutmix_probability}")
        if self.cutmix_retries < 0:
            problems.append(f"cutmix_retries must be 0 or more, got {self.cutmix_retries}")
        if self.supplemental_alignments and not self.supplemental_data_dir:
            problems.append("supplemental_alignments is set but supplemental_data_dir is not")
        if problems:
            raise ConfigError(f"{type(self).__name__}: " + "; ".join(problems))


def register_stage(name: str, config_class: type[FinetuneConfig], presets: dict[str, dict[str, Any]]) -> None:
    """Make a stage known to `signpipe.train.config` (presets, overrides, configs saved in
    checkpoints), as its own stages are; registering the same class again is a no-op."""
    known = STAGES.get(name)
    if known is not None and known is not config_class:
        raise ConfigError(f"training stage {name!r} is already registered with {known.__name__}")
    STAGES[name] = config_class
    PRESETS.setdefault(name, presets)


register_stage(
    STAGE,
    NoisyStudentConfig,
    {name: {**values, "cutmix_probability": DEFAULT_CUTMIX_PROBABILITY} for name, values in PRESETS["finetune"].items()},
)


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What a CTC stage trains and validates on."""

    train: LabelledSplit
    validation: LabelledSplit
    character_map: dict[str, int]
    alignments: AttachedAlignments | None
    n_supplemental: int


def _merged(first: LabelledSplit, second: LabelledSplit, where: str) -> LabelledSplit:
    overlap = np.intersect1d(first.sequence_ids, second.sequence_ids)
    if overlap.size:
        raise SignpipeError(f"{where}: sequence ids {overlap[:5].tolist()} are in both the data and the supplemental data")
    return LabelledSplit(
        first.name,
        first.features + second.features,
        first.labels + second.labels,
        first.phrases + second.phrases,
        np.concatenate([first.sequence_ids, second.sequence_ids]),
        first.n_dropped_too_short + second.n_dropped_too_short,
    )


def load_training_data(config: NoisyStudentConfig) -> TrainingData:
    """Train split (plus supplemental), validation split, and the alignments matched to the train
    split when the config names any."""
    train = load_labelled_split(config.data_dir, "train", config.max_label_length)
    validation = load_labelled_split(config.data_dir, "validation", config.max_label_length)
    character_map = character_map_of(config.data_dir, read_manifest(config.data_dir))
    records = read_alignments(config.alignments) if config.alignments else None
    n_supplemental = 0
    if config.supplemental_data_dir:
        supplemental = load_labelled_split(config.supplemental_data_dir, "train", config.max_label_length)
        if character_map_of(config.supplemental_data_dir, read_manifest(config.supplemental_data_dir)) != character_map:
            raise SignpipeError(
                f"{config.supplemental_data_dir}: its character map differs from {config.data_dir}'s; "
                "both must label characters the same way"
            )
        train = _merged(train, supplemental, config.supplemental_data_dir)
        n_supplemental = len(supplemental)
        if config.supplemental_alignments:
            extra = read_alignments(config.supplemental_alignments)
            records = AlignmentRecords((records.rows if records else []) + extra.rows, records.metadata if records else {})
    attached = attach_alignments(train, records, config.alignments or config.supplemental_alignments) if records else None
    return TrainingData(train, validation, character_map, attached, n_supplemental)


def training_batches(config: NoisyStudentConfig, data: TrainingData) -> TrainBatches:
    """CutMix batches when there are alignments, the plain augmented ones otherwise."""
    arguments = dict(
        batch_size=config.batch_size,
        max_length=config.max_length,
        length_bucket=config.length_bucket,
        max_label_length=config.max_label_length,
        seed=config.seed,
        augment=config.augment,
        augmentation=config.augmentation,
        rows=process_rows(config.batch_size),
        length_grouping=config.length_grouping,
    )
    if data.alignments is None:
        return TrainBatches(data.train, **arguments)
    return CutMixBatches(
        data.train, data.alignments.frame_classes, config.cutmix_probability, retries=config.cutmix_retries, **arguments
    )


StepFactory = Callable[[Any, Any, optax.GradientTransformation, Mesh], Callable[[Any, Any], tuple[Any, dict]]]
"""(graphdef, rng_state, optimizer, mesh) -> jitted `train_step(state, batch) -> (state, scalars)`."""


def run_ctc_stage(
    config: NoisyStudentConfig,
    workdir: str | Path,
    *,
    build: Callable[[], CTCModel],
    make_step: StepFactory,
    description: str,
    extra_metrics: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train a CTC model as finetuning does (state layout, evaluation, checkpoints, resume, final
    metrics), with the batches of `training_batches` and the train step `make_step` builds.
    `build` and `make_step` run once the devices are set up (multi-host jobs must connect before
    any array exists); `extra_metrics()` adds the stage's own entries to the final metrics."""
    maybe_initialize_distributed()
    workdir = Path(workdir)
    mesh = make_mesh()
    check_batch_size(config.batch_size, mesh)
    check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
    if jax.process_index() == 0:
        with RunCheckpoints(workdir, keep=config.keep_checkpoints) as existing:
            existing.check_config(config)  # before anything in the workdir is overwritten
        dump_config(config, workdir)
    data = load_training_data(config)

    model = build()
    graphdef, params, rng_state = nnx.split(model, nnx.Param, ...)
    optimizer = build_optimizer(config, params)
    state = replicate(
        {"step": jnp.int32(0), "params": params, "opt_state": optimizer.init(params), "ema_params": jax.tree.map(jnp.copy, params)},
        mesh,
    )
    train_step = make_step(graphdef, rng_state, optimizer, mesh)
    eval_step = make_eval_step(graphdef, rng_state, config.model_config().blank_index, mesh)
    batches = training_batches(config, data)

    def evaluate(state: dict[str, Any]) -> dict[str, float]:
        scalars, _ = evaluate_split(eval_step, state["ema_params"], data.validation, config, mesh, data.character_map)
        return scalars

    outcome = run_training_loop(
        config=config,
        workdir=workdir,
        mesh=mesh,
        state=state,
        train_step=train_step,
        batches=batches,
        evaluate=evaluate,
        eval_every=config.eval_every,
        score_key=SCORE_KEY,
        description=description,
    )
    evaluation = outcome.last_evaluation or {}
    attached = data.alignments
    metrics: dict[str, Any] = {
        "step": outcome.step,
        "validation_score": evaluation.get(SCORE_KEY),
        "validation_loss": evaluation.get("validation/loss"),
        "best_validation_score": outcome.best_score,
        "best_step": outcome.best_step,
        "train_loss": outcome.last_train.get("loss"),
        **{f"train_{name}": value for name, value in outcome.last_train.items() if name not in ("loss", "learning_rate")},
        "n_train": len(data.train),
        "n_supplemental": data.n_supplemental,
        "n_validation": len(data.validation),
        "dropped_too_short_train": data.train.n_dropped_too_short,
        "dropped_too_short_validation": data.validation.n_dropped_too_short,
        "cutmix_probability": config.cutmix_probability if attached else 0.0,
        "aligned_usable": attached.n_usable if attached else 0,
        "aligned_flagged": attached.n_flagged if attached else 0,
        "aligned_missing": attached.n_missing if attached else len(data.train),
        **(extra_metrics() if extra_metrics is not None else {}),
        "resumed_from_step": outcome.resumed_from,
        "steps_run": outcome.steps_run,
        "train_seconds": round(outcome.train_seconds, 3),
        "n_devices": int(mesh.devices.size),
    }
    if jax.process_index() == 0:
        atomic_write_text(workdir / FINAL_METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    return metrics


def check_data_dirs(config: NoisyStudentConfig) -> None:
    """Fail on a wrong config type or a missing shard directory before anything is loaded or compiled."""
    if not isinstance(config, NoisyStudentConfig):
        raise ConfigError(f"{STAGE} and distill need their own configs, got a {type(config).__name__}")
    if not config.data_dir:
        raise ConfigError("no data_dir (pass --data SHARDS, or data_dir=PATH)")
    for name in ("data_dir", "supplemental_data_dir"):
        path = getattr(config, name)
        if path and not Path(path).is_dir():
            raise SignpipeError(f"{name}={path}: feature-shard directory not found (expected the output of preprocess)")


def train_and_evaluate(config: NoisyStudentConfig, workdir: str | Path) -> dict[str, Any]:
    """Finetune with CutMix on the alignments of `config.alignments` (resuming from `workdir`
    when it holds checkpoints of this config); returns finetuning's final metrics plus how many
    training sequences CutMix could use."""
    check_data_dirs(config)
    if not config.alignments:
        raise ConfigError("noisy-student: no alignments (pass alignments=DIR, the output of `signpipe align`)")
    return run_ctc_stage(
        config,
        workdir,
        build=lambda: build_model(config),
        make_step=lambda graphdef, rng_state, optimizer, mesh: make_train_step(graphdef, rng_state, optimizer, config, mesh),
        description="noisy-student",
    )
