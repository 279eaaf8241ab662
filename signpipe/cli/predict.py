"""`signpipe predict --model bundle.zip INPUT...`: what a published bundle says about landmark files
or videos.

    signpipe predict --model bundle.zip corpus/train_landmarks/5414471.parquet --sequence-id 1817141
    signpipe predict --model signs.zip clip.mp4 --top 3 --json

A top-level command (registered in `signpipe.cli`) beside `extract`: it takes the same videos, or
the landmark files either Kaggle layout holds. The task (phrase or signs) is the bundle's own,
read from its model (`signpipe.predict`). A table for people by default; `--json` prints one
object per sequence for scripts. Videos are landmarked in the video environment with a transient
progress bar on stderr, so stdout carries only the answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def predict(
    inputs: list[Path] = typer.Argument(..., help="Landmark parquet files (fingerspelling or asl-signs layout) "
                                                  "and/or videos, any number."),
    model: Path = typer.Option(..., "--model", help="Bundle zip: model.tflite (+ inference_args.json for "
                                                    "fingerspelling), as `signpipe export` writes it."),
    sequence_ids: list[int] | None = typer.Option(None, "--sequence-id", help="Predict only these sequences of the "
                                                                               "parquet inputs (repeatable)."),
    top: int = typer.Option(5, "--top", min=1, help="How many signs to list (isolated-signs bundles)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per sequence."),
    threads: int = typer.Option(1, "--threads", min=1, help="Interpreter threads."),
    map_path: Path | None = typer.Option(None, "--map", help="Label map JSON (default: the competition's map of "
                                                             "the bundle's task)."),
) -> None:
    """Run a TFLite bundle as deployed: the phrase (fingerspelling) or the top signs with scores."""
    from signpipe.cli.extract import FramesPerSecondColumn
    from signpipe.predict import FINGERSPELLING, load_predictor, predict as run_predict

    predictor = load_predictor(model, threads=threads, map_path=map_path)
    console = Console(stderr=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
               FramesPerSecondColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: list = []

        def show(update) -> None:
            if not tasks:
                tasks.append(bar.add_task("landmarking", total=None))
            bar.update(tasks[0], completed=update.frames_done, total=update.frames_expected,
                       description=f"landmarking {escape(update.video.name)}")

        predictions = run_predict(predictor, inputs, sequence_ids=sequence_ids or None, top_k=top, progress=show)

    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in predictions], indent=2))
        return
    fingerspelling = predictor.task == FINGERSPELLING
    table = Table(title=f"{predictor.path.name}: {predictor.task}", title_justify="left")
    table.add_column("input", overflow="fold")
    table.add_column("sequence_id", justify="right")
    table.add_column("frames", justify="right")
    if fingerspelling:
        table.add_column("phrase", overflow="fold")
    else:
        table.add_column("sign")
        table.add_column("score", justify="right")
    for prediction in predictions:
        about = (escape(str(prediction.input)), "" if prediction.sequence_id is None else str(prediction.sequence_id),
                 str(prediction.n_frames))
        if fingerspelling:
            table.add_row(*about, escape(prediction.phrase) if prediction.phrase else "[dim](empty)[/]")
        else:
            table.add_row(*about, "\n".join(escape(s.sign) for s in prediction.signs),
                          "\n".join(f"{s.score:.4g}" for s in prediction.signs), end_section=True)
    Console(soft_wrap=False).print(table)
