"""`signpipe data ...`: check a corpus directory, make a synthetic one.

`validate` exits 0 when the corpus is usable and 1 when it has problems, after listing them all
(one `path: expected ..., found ...` line each), so scripts and pipeline steps can gate on it.
"""

from __future__ import annotations

import importlib
import json
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from signpipe.cli.options import examples
from signpipe.errors import SignpipeError

app = typer.Typer(help="Corpora: validate a corpus directory, generate a synthetic one.", no_args_is_help=True,
                  epilog=examples("signpipe data synth fingerspelling --out corpus", "signpipe data validate corpus"))


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def _number(value: float | None, pattern: str = "{:,}") -> str:
    return "-" if value is None else pattern.format(value)


#: table rows: label and how to show that field of a `PartSummary`; parts are the columns, so the
#: table stays narrow however many figures there are
_SUMMARY_ROWS = (
    ("sequences", lambda s: _number(s.sequences)),
    ("sequences read", lambda s: _number(s.sequences_read)),
    ("participants", lambda s: _number(s.participants)),
    ("frames", lambda s: _number(s.frames_total)),
    ("frames per sequence min", lambda s: _number(s.frames_min)),
    ("  median", lambda s: _number(s.frames_median, "{:g}")),
    ("  mean", lambda s: _number(s.frames_mean, "{:.1f}")),
    ("  max", lambda s: _number(s.frames_max)),
    ("frames without any hand", lambda s: _percent(s.no_hand_fraction)),
    ("frames without left hand", lambda s: _percent(s.no_left_hand_fraction)),
    ("frames without right hand", lambda s: _percent(s.no_right_hand_fraction)),
    ("frames without dominant hand", lambda s: _percent(s.no_dominant_hand_fraction)),
)


def _print_report(report, console: Console, max_problems: int) -> None:
    if report.summary:
        table = Table(title=f"{report.kind}: {report.root}", title_justify="left")
        table.add_column("")
        for part in report.summary:
            table.add_column(part, justify="right")
        for label, show in _SUMMARY_ROWS:
            table.add_row(label, *(show(s) for s in report.summary.values()))
        console.print(table)
    if report.kind is not None:
        console.print(f"label map: {report.map_path or 'not found, labels not checked'}", highlight=False, soft_wrap=True)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(str(warning))}", highlight=False, soft_wrap=True)
    if report.ok:
        console.print("[bold green]ok[/]: no problems found")
        return
    n = len(report.problems)
    console.print(f"[bold red]{n:,} problem{'s' if n > 1 else ''}:[/]")
    for problem in report.problems[:max_problems]:
        console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if n > max_problems:
        console.print(f"... and {n - max_problems:,} more (use --max-problems or --json to see them all)", highlight=False)


@app.command(epilog=examples("signpipe data validate corpus", "signpipe data validate corpus --json"))
def validate(
    directory: Path = typer.Argument(..., help="Corpus root: the directory holding train.csv."),
    map_path: Path | None = typer.Option(None, "--map", help="Label map JSON, if not in the corpus or ../maps."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole report as JSON instead of tables."),
    max_problems: int = typer.Option(50, "--max-problems", min=1, help="How many problems to list."),
) -> None:
    """Check a corpus (either Kaggle layout) and summarize it; exit 1 when it has problems."""
    from signpipe.data.validate import validate_corpus

    report = validate_corpus(directory, map_path)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report, Console(), max_problems)
    if not report.ok:
        n = len(report.problems)
        Console(stderr=True).print(f"[bold red]{escape(str(directory))}: {n:,} problem{'s' if n > 1 else ''} found[/]",
                                   highlight=False)
        raise typer.Exit(1)


# --- synthetic corpora (the generator lives in signpipe.data.synth) ------------------------------


class SynthKind(str, Enum):
    fingerspelling = "fingerspelling"
    isolated_signs = "isolated-signs"


@app.command(epilog=examples("signpipe data synth fingerspelling --out corpus --sequences 200",
                            "signpipe data synth isolated-signs --out signs-corpus --seed 1"))
def synth(
    kind: SynthKind = typer.Argument(..., help="Which Kaggle layout to write: fingerspelling or isolated-signs."),
    out: Path = typer.Option(..., "--out", help="New corpus directory (must not exist or be empty)."),
    sequences: int = typer.Option(200, "--sequences", min=1, help="Number of sequences."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed writes the same corpus."),
    y_scale: float | None = typer.Option(None, "--y-scale", help="Camera y/x scale to bake in (default: the generator's)."),
) -> None:
    """Write a synthetic corpus in a Kaggle layout, for smoke runs and tests without real data."""
    try:
        synthetic = importlib.import_module("signpipe.data.synth")
    except ModuleNotFoundError as exc:
        if exc.name != "signpipe.data.synth":
            raise
        raise SignpipeError("signpipe.data.synth: expected the synthetic corpus generator, found it missing "
                            "from this installation") from None
    generate = synthetic.generate_fingerspelling if kind is SynthKind.fingerspelling else synthetic.generate_isolated_signs
    options = {} if y_scale is None else {"y_scale": y_scale}
    generate(out, sequences, seed, **options)
    print(f"wrote a synthetic {kind.value} corpus of {sequences:,} sequences to {out}")
