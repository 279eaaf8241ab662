"""`signpipe train`: run a training stage on feature shards.

    signpipe train finetune --shards shards/ --workdir runs/ft --preset smoke total_steps=500 model.dropout=0
    signpipe train pretrain --shards shards/ --workdir runs/pt --preset small
    signpipe train presets finetune

A run resumes by itself when its workdir holds checkpoints of the same config; a damaged last
checkpoint is set aside (moved to `checkpoints-damaged/`) and the run resumes from the one before.
A finished (or interrupted) run is extended by running it again with a larger `total_steps` and
every other value as it was:

    signpipe train finetune --shards shards/ --workdir runs/ft --preset local total_steps=8000   # after 5000

It continues from its last checkpoint; from there the learning rate follows the schedule of the
new total (for the cosine schedule: back up to the value the longer schedule has at that step, then
down to its end at the new total), so the result is not the same as a run of the new length from
scratch. A smaller `total_steps` is refused. The final metrics are printed as strict JSON on
stdout (and saved as `final_metrics.json` in the workdir; a value that is not finite is `null`);
progress goes to stderr. A run whose loss, gradient norm, weights or validation scalars stop being
finite stops with an error naming the step (exit status 2), keeping its last good checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from signpipe.cli.options import examples, renamed

app = typer.Typer(
    help="Train models on feature shards: pretrain (Data2vec 2.0), finetune (CTC), noisy-student, distill.",
    epilog=examples("signpipe train finetune --shards shards --workdir runs/ft --preset smoke",
                    "signpipe train presets finetune"),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

SHARDS_OPTION = typer.Option(..., "--shards", help="Feature-shard directory (output of `signpipe landmarks preprocess`).")
WORKDIR_OPTION = typer.Option(
    ..., "--workdir",
    help="Run directory: config, checkpoints, logs; resumed if it exists (a larger total_steps=N extends a finished run).",
)  # fmt: skip
PRESET_OPTION = typer.Option("local", "--preset", help="Named preset: local (minutes on a CPU), smoke (plumbing), small, large, kaggle5th.")
OVERRIDES_ARGUMENT = typer.Argument(None, help="Config overrides key=value (model.KEY=VALUE for the model).", show_default=False)
SHOW_CONFIG_OPTION = typer.Option(False, "--show-config", help="Print the resolved config as JSON and exit.")


def old_data_option():
    """The refused `--data` of the training stages (they read feature shards: `--shards`)."""
    return renamed("--data", "--shards")


def run_stage(stage_module: str, stage: str, shards: Path, workdir: Path, preset: str, overrides: list[str] | None,
              show_config: bool) -> None:
    """What every `signpipe train` command does: the stage's config from its preset, `key=value`
    overrides and `--shards`; printed with `--show-config`, else trained (resumed when the workdir
    holds checkpoints of the same config) and its final metrics printed as JSON."""
    import importlib

    from signpipe.fingerspelling.config import resolve_config

    module = importlib.import_module(stage_module)  # the stage's trainer (its config is in signpipe.fingerspelling.config)
    config = dataclasses.replace(resolve_config(stage, preset, list(overrides or [])), data_dir=str(shards))
    if show_config:
        typer.echo(json.dumps(config.to_dict(), indent=2))
        return
    from signpipe.train.reporting import strict_json

    typer.echo(strict_json(module.train_and_evaluate(config, workdir), indent=2))


@app.command(epilog=examples("signpipe train finetune --shards shards --workdir runs/ft --preset smoke",
                            "signpipe train finetune --shards shards --workdir runs/ft init_from=runs/pt"))
def finetune(
    shards: Path = SHARDS_OPTION,
    workdir: Path = WORKDIR_OPTION,
    preset: str = PRESET_OPTION,
    overrides: list[str] | None = OVERRIDES_ARGUMENT,
    show_config: bool = SHOW_CONFIG_OPTION,
    _old_data: str | None = old_data_option(),
) -> None:
    """CTC finetuning of the fingerspelling model; validation with greedy decoding and the
    normalized Levenshtein score."""
    run_stage("signpipe.fingerspelling.finetune", "finetune", shards, workdir, preset, overrides, show_config)


@app.command(epilog=examples("signpipe train pretrain --shards shards --workdir runs/pt --preset smoke"))
def pretrain(
    shards: Path = SHARDS_OPTION,
    workdir: Path = WORKDIR_OPTION,
    preset: str = PRESET_OPTION,
    overrides: list[str] | None = OVERRIDES_ARGUMENT,
    show_config: bool = SHOW_CONFIG_OPTION,
    _old_data: str | None = old_data_option(),
) -> None:
    """Data2vec 2.0 pretraining of the encoder (its weights then start finetuning via init_from)."""
    run_stage("signpipe.fingerspelling.pretrain", "pretrain", shards, workdir, preset, overrides, show_config)


STAGE_MODULES = {
    "finetune": "signpipe.fingerspelling.finetune",
    "pretrain": "signpipe.fingerspelling.pretrain",
    "noisy-student": "signpipe.fingerspelling.noisy_student",
    "distill": "signpipe.fingerspelling.distill",
}
"""Command name -> the module that trains the stage."""


@app.command(epilog=examples("signpipe train presets finetune", "signpipe train presets distill"))
def presets(stage: str = typer.Argument("finetune", help="finetune, pretrain, noisy-student or distill.")) -> None:
    """List a stage's presets with the values each sets (a pipeline preset may override them: `signpipe presets`)."""

    from rich.console import Console
    from rich.table import Table

    from signpipe.errors import ConfigError
    from signpipe.fingerspelling.config import PRESETS, preset_names

    command = stage.replace("_", "-")
    if command not in STAGE_MODULES:
        raise ConfigError(f"unknown training stage {stage!r}; expected one of {', '.join(STAGE_MODULES)}")
    stage = command.replace("-", "_")
    names = preset_names(stage)
    keys = sorted({key for name in names for key in PRESETS[stage][name]})
    table = Table(title=f"{command} presets (what `signpipe train {command} --preset NAME` starts from)")
    table.add_column("key", no_wrap=True)  # the names are what a reader types: never cut them
    for name in names:
        table.add_column(name, overflow="fold")
    for key in keys:
        table.add_row(key, *(str(PRESETS[stage][name].get(key, "")) for name in names))
    console = Console()
    console.print(table)
    console.print("A pipeline preset may override these values for its own stages: see `signpipe presets PIPELINE "
                  "--preset NAME` for what a pipeline trains with.", highlight=False, soft_wrap=True)
