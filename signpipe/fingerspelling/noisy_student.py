"""The noisy-student step: retrain the teacher with CutMix on its own pseudo-alignments.

    signpipe align --workdir runs/teacher --shards shards/ --out runs/alignments
    signpipe train noisy-student --shards shards/ --workdir runs/teacher-cutmix --preset smoke \\
        alignments=runs/alignments

This is CTC finetuning (`signpipe.fingerspelling.finetune`: same model, loss, optimizer, EMA, evaluation,
checkpoints and resumable loop) whose training batches come from
`signpipe.fingerspelling.align.cutmix.CutMixBatches`: each row is, with probability `cutmix_probability`, mixed
with another training sequence at frames its alignment says where characters are. The seed
retrained its large teacher this way and it scored better than the teacher it started from.

`supplemental_data_dir` adds the train split of a second shard directory (the competition's
supplemental set), with its own alignments in `supplemental_alignments`; the seed found that
such extra data hurt without CutMix and helped (+0.01) with it.

`train_and_evaluate` is built from `run_ctc_stage`, which distillation (`signpipe.fingerspelling.distill`)
reuses with its own model and train step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from signpipe.fingerspelling.align.artifact import AlignmentRecords, read_alignments
from signpipe.fingerspelling.align.cutmix import AttachedAlignments, CutMixBatches, attach_alignments
from signpipe.errors import ConfigError, SignpipeError
from signpipe.fingerspelling.shards import read_manifest
from signpipe.fingerspelling.model import CTCModel
from signpipe.fingerspelling.config import DEFAULT_CUTMIX_PROBABILITY, FinetuneConfig, NoisyStudentConfig  # noqa: F401
from signpipe.fingerspelling.data import LabelledSplit, TrainBatches, character_map_of, load_labelled_split
from signpipe.fingerspelling.finetune import StepFactory, build_model, make_train_step
from signpipe.fingerspelling.finetune import run_ctc_stage as run_finetune_stage
from signpipe.train.mesh import process_rows

STAGE = "noisy_student"


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


def run_ctc_stage(
    config: NoisyStudentConfig,
    workdir: str | Path,
    *,
    build: Callable[[], CTCModel],
    make_step: StepFactory,
    description: str,
    extra_metrics: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train a CTC model as finetuning does (`signpipe.fingerspelling.finetune.run_ctc_stage`: state layout,
    evaluation, checkpoints, resume, final metrics) on this stage's data (`load_training_data`:
    supplemental shards, alignments) and batches (`training_batches`: CutMix when there are
    alignments); the final metrics add the last train scalars, the supplemental and CutMix counts
    and `extra_metrics()`, the calling stage's own entries."""

    def stage_metrics(data: TrainingData, outcome: Any) -> dict[str, Any]:
        attached = data.alignments
        return {
            **{f"train_{name}": value for name, value in outcome.last_train.items() if name not in ("loss", "learning_rate")},
            "n_supplemental": data.n_supplemental,
            "cutmix_probability": config.cutmix_probability if attached else 0.0,
            "aligned_usable": attached.n_usable if attached else 0,
            "aligned_flagged": attached.n_flagged if attached else 0,
            "aligned_missing": attached.n_missing if attached else len(data.train),
            **(extra_metrics() if extra_metrics is not None else {}),
        }

    return run_finetune_stage(
        config,
        workdir,
        load_data=lambda: load_training_data(config),
        build=build,
        make_step=make_step,
        make_batches=lambda data: training_batches(config, data),
        description=description,
        stage_metrics=stage_metrics,
    )


def check_data_dirs(config: NoisyStudentConfig) -> None:
    """Fail on a wrong config type or a missing shard directory before anything is loaded or compiled."""
    if not isinstance(config, NoisyStudentConfig):
        raise ConfigError(f"{STAGE} and distill need their own configs, got a {type(config).__name__}")
    if not config.data_dir:
        raise ConfigError("no data_dir (pass --shards SHARDS, or data_dir=PATH)")
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
