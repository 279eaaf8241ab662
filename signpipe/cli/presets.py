"""`signpipe presets [PIPELINE] [--preset NAME] [key=value ...]`: what a pipeline preset trains with.

    signpipe presets                                  # every preset of both pipelines
    signpipe presets fingerspelling --preset smoke    # one preset
    signpipe presets isolated-signs --preset local --json

A pipeline preset picks a training preset for each stage and puts overrides on it (the smoke
pipeline trains finetune for 100 steps where `signpipe train presets` shows the training preset's
2,000): this command prints the result, the config every training stage of the run resolves to
(`pipelines.presets.resolve_preset`, the same resolution the pipeline's steps make), with the
values the pipeline preset (or a `key=value` given here) changed marked `*`, and the run-time
parameters (gate thresholds, shards, quantization).
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from signpipe.cli.options import examples

EPILOG = examples("signpipe presets", "signpipe presets fingerspelling --preset smoke",
                  "signpipe presets isolated-signs --preset local --json",
                  "signpipe presets fingerspelling --preset local finetune.total_steps=3000")
PIPELINES = ("fingerspelling", "isolated-signs")


def _value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def _print_resolved(console: Console, resolved: dict[str, Any]) -> None:
    plumbing = " (plumbing check: its score means nothing)" if resolved["plumbing"] else ""
    console.print(f"[bold]{resolved['pipeline']} --preset {resolved['preset']}[/]{plumbing}: "
                  f"{escape(resolved['description'])}", highlight=False, soft_wrap=True)
    console.print(f"stages: {' -> '.join(resolved['stages'])}", highlight=False, soft_wrap=True)
    training = resolved["training"]
    if training:
        table = Table(title="training config per stage (* set by the pipeline preset or a key=value, over the "
                            "stage's training preset)", title_justify="left")
        table.add_column("key", no_wrap=True)
        for stage, values in training.items():
            table.add_column(f"{stage}\n(preset {values['preset']})", overflow="fold")
        keys = list(dict.fromkeys(key for values in training.values() for key in values["config"]))
        for key in keys:
            cells = []
            for values in training.values():
                if key not in values["config"]:
                    cells.append("")
                    continue
                mark = " *" if key in values["overrides"] else ""
                cells.append(escape(_value(values["config"][key])) + mark)
            table.add_row(key, *cells)
        console.print(table)
    table = Table(title="run-time parameters (change one with key=value)", title_justify="left")
    table.add_column("parameter", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in resolved["parameters"].items():
        table.add_row(key, escape(_value(value)))
    console.print(table)


def presets(
    pipeline: str | None = typer.Argument(None, help="fingerspelling or isolated-signs (default: both)."),
    overrides: list[str] | None = typer.Argument(None, help="Overrides key=value, as `signpipe run` takes them "
                                                          "(min_score=0.3, finetune.total_steps=300).",
                                                 show_default=False),
    preset_name: str | None = typer.Option(None, "--preset", help="Only this preset (default: every preset)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: a list, one object per preset."),
) -> None:
    """What each pipeline preset runs, stage by stage.

    Its stages, the config each training stage trains with (the pipeline preset's overrides on the stage's
    training preset, which `signpipe train presets` lists alone), and its run-time parameters (gate
    thresholds, shards, quantization).
    """
    from pipelines.presets import presets_of, resolve_preset
    from signpipe.errors import ConfigError

    if pipeline is not None and "=" in pipeline:  # `signpipe presets --preset smoke key=value`
        pipeline, overrides = None, [pipeline, *(overrides or [])]
    if pipeline is not None and pipeline not in PIPELINES:
        raise ConfigError(f"unknown pipeline {pipeline!r}; expected one of {', '.join(PIPELINES)}")
    if overrides and preset_name is None:
        raise ConfigError("key=value overrides need one preset: pass --preset NAME")
    pipelines = [pipeline] if pipeline else list(PIPELINES)
    if preset_name is not None and pipeline is None:
        pipelines = [p for p in PIPELINES if preset_name in presets_of(p)]
        if not pipelines:
            raise ConfigError(f"unknown pipeline preset {preset_name!r} (fingerspelling: "
                              f"{', '.join(presets_of('fingerspelling'))}; isolated-signs: "
                              f"{', '.join(presets_of('isolated-signs'))})")
    resolved = [resolve_preset(p, name, overrides or [])
                for p in pipelines for name in ([preset_name] if preset_name else list(presets_of(p)))]
    if as_json:
        typer.echo(json.dumps(resolved, indent=2, default=str))
        return
    console = Console()
    for k, values in enumerate(resolved):
        if k:
            console.print()
        _print_resolved(console, values)
