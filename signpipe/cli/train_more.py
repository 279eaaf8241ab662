"""`signpipe train noisy-student` and `signpipe train distill`: the stages after the teacher.

    signpipe train noisy-student --shards shards/ --workdir runs/teacher-cutmix --preset smoke alignments=runs/alignments
    signpipe train distill --shards shards/ --workdir runs/student --preset smoke teacher=runs/teacher
    signpipe train distill --shards shards/ --workdir runs/student --show-config teacher=runs/teacher model=1x64

They join the `train` sub-app (`add_commands`, called by `signpipe.cli`) and behave like its
`finetune`: a preset plus `key=value` overrides, resumed when the workdir holds checkpoints of the
same config, final metrics as JSON on stdout, progress on stderr. Their presets are finetuning's
(`distill` with the seed's student size); `--show-config` prints the resolved config.
"""

from __future__ import annotations

from pathlib import Path

import typer

from signpipe.cli.options import examples
from signpipe.cli.train import (
    OVERRIDES_ARGUMENT,
    PRESET_OPTION,
    SHARDS_OPTION,
    SHOW_CONFIG_OPTION,
    WORKDIR_OPTION,
    old_data_option,
    run_stage,
)


def noisy_student(
    shards: Path = SHARDS_OPTION,
    workdir: Path = WORKDIR_OPTION,
    preset: str = PRESET_OPTION,
    overrides: list[str] | None = OVERRIDES_ARGUMENT,
    show_config: bool = SHOW_CONFIG_OPTION,
    _old_data: str | None = old_data_option(),
) -> None:
    """Retrain with temporal CutMix on pseudo-alignments (alignments=DIR from `signpipe align`);
    supplemental_data_dir=SHARDS supplemental_alignments=DIR add more data."""
    run_stage("signpipe.fingerspelling.noisy_student", "noisy_student", shards, workdir, preset, overrides, show_config)


def distill(
    shards: Path = SHARDS_OPTION,
    workdir: Path = WORKDIR_OPTION,
    preset: str = PRESET_OPTION,
    overrides: list[str] | None = OVERRIDES_ARGUMENT,
    show_config: bool = SHOW_CONFIG_OPTION,
    _old_data: str | None = old_data_option(),
) -> None:
    """Knowledge distillation from a frozen teacher (teacher=WORKDIR) into a smaller student:
    CTC + kd_weight x cross-entropy on the teacher's per-frame argmax, on a separate KD head."""
    run_stage("signpipe.fingerspelling.distill", "distill", shards, workdir, preset, overrides, show_config)


def add_commands(train_app: typer.Typer) -> None:
    """Put the two commands on the `signpipe train` sub-app."""
    train_app.command("noisy-student", epilog=examples(
        "signpipe train noisy-student --shards shards --workdir ns alignments=align",
        "signpipe train noisy-student --shards shards --workdir runs/ns --preset smoke alignments=runs/align"))(noisy_student)
    train_app.command("distill", epilog=examples(
        "signpipe train distill --shards shards --workdir runs/student teacher=runs/ns",
        "signpipe train distill --shards shards --workdir runs/student --preset smoke teacher=runs/ns"))(distill)
