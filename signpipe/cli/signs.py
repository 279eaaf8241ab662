"""`signpipe signs`: the isolated-signs recipe (asl-signs corpus -> fold models -> one TFLite bundle).

    signpipe signs train --data corpus/ --workdir runs/signs [--preset smoke|seed] [--folds all|0|0,2] [key=value ...]
    signpipe signs export --workdir runs/signs --out bundle.zip [--quantize fp16|none|int8] [--which last|best]
    signpipe signs presets
    signpipe evaluate --model bundle.zip --data eval_corpus/

`train` runs the chosen folds one after another into `WORKDIR/fold_<i>/` (each resumes by itself
from its checkpoints) and prints JSON: each fold's metrics and the out-of-fold accuracy over every
finished fold. `export` averages every fold model under the workdir (or the fold workdirs named)
into one bundle and prints what it wrote as JSON. Progress goes to stderr.
"""

from __future__ import annotations

from pathlib import Path

import typer

from signpipe.cli.options import examples

app = typer.Typer(
    help="Isolated signs: k-fold ArcFace transformer training and the fold-ensemble TFLite export.",
    no_args_is_help=True,
    epilog=examples("signpipe signs train --data corpus --workdir runs/signs --preset smoke",
                    "signpipe signs export --workdir runs/signs --out signs.zip"),
    pretty_exceptions_enable=False,
)


def _print_json(values: dict) -> None:
    from signpipe.train.reporting import strict_json

    typer.echo(strict_json(values, indent=2))


@app.command(epilog=examples("signpipe signs train --data corpus --workdir runs/signs --preset smoke --folds 0",
                            "signpipe signs train --data corpus --workdir runs/signs --show-config blocks=2"))
def train(
    data: Path = typer.Option(..., "--data", help="asl-signs corpus directory (train.csv, train_landmark_files/)."),
    workdir: Path = typer.Option(..., "--workdir", help="Run root: a fold_<i>/ run per fold; resumed if present."),
    preset: str = typer.Option("smoke", "--preset", help="Named preset: smoke (plumbing), local (the main job on 2 CPU cores) or seed."),
    folds: str = typer.Option("all", "--folds", help="Folds to train: all, or numbers such as 0 or 0,2."),
    overrides: list[str] | None = typer.Argument(None, help="Config overrides key=value (blocks=2 width=128 ...).",
                                                 show_default=False),
    show_config: bool = typer.Option(False, "--show-config", help="Print the resolved config as JSON and exit."),
) -> None:
    """Train fold models (StratifiedGroupKFold by participant); prints fold and out-of-fold metrics."""
    from signpipe.signs.config import resolve_config
    from signpipe.signs.folds import parse_folds

    config = resolve_config(preset, list(overrides or []), data_dir=str(data))
    chosen = parse_folds(folds, config.n_folds)
    if show_config:
        _print_json({**config.to_dict(), "folds": chosen})
        return
    from signpipe.signs.train import train_folds

    _print_json(train_folds(config, workdir, chosen))


@app.command(epilog=examples("signpipe signs export --workdir runs/signs --out signs.zip",
                            "signpipe signs export --workdir runs/signs --out signs.zip --which best"))
def export(
    workdir: list[Path] = typer.Option(..., "--workdir", help="Run root with fold_<i>/ runs, or a fold run; repeatable."),
    out: Path = typer.Option(..., "--out", help="Bundle zip to write (model.tflite + inference_args.json)."),
    quantize: str = typer.Option("fp16", "--quantize", help="Weights: fp16, none (fp32) or int8 (dynamic range)."),
    which: str = typer.Option("last", "--which", help="Checkpoint of each fold: last, or best by validation accuracy."),
) -> None:
    """Average the fold models into one TFLite model: raw frames (n_frames x 543 x 3) in, 250 sign scores out."""
    from signpipe.signs.export import export_ensemble

    _print_json(export_ensemble(workdir, out, quantize=quantize, which=which).to_dict())


@app.command(epilog=examples("signpipe signs presets"))
def presets() -> None:
    """List the presets with the values each sets (a pipeline preset may override them: `signpipe presets isolated-signs`)."""
    from rich.console import Console
    from rich.table import Table

    from signpipe.signs.config import PRESETS

    names = sorted(PRESETS)
    table = Table(title="signs presets")
    table.add_column("key")
    for name in names:
        table.add_column(name)
    for key in sorted({key for name in names for key in PRESETS[name]}):
        table.add_row(key, *(str(PRESETS[name].get(key, "")) for name in names))
    Console().print(table)
