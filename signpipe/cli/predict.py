"""`signpipe predict --model bundle.zip INPUT...`: what a published bundle says about landmark files
or videos.

    signpipe predict --model bundle.zip corpus/train_landmarks/5414471.parquet --sequence-id 1817141
    signpipe predict --model signs.zip clip.mp4 --top 3 --json
    signpipe predict --model bundle.zip corpus/                # every sequence, with its truth

A top-level command (registered in `signpipe.cli`) beside `extract`: it takes the same videos, or
the landmark files either Kaggle layout holds. The task (phrase or signs) is the bundle's own,
read from its model (`signpipe.predict`). A folder stands for the parquet files under it (a corpus
root predicts its corpus). A table for people by default, one row per sequence: the file's name
(its folder once, above the table), the answer, and the truth with how the answer compares when
the file sits in a corpus whose train.csv has it; `--json` prints one object per sequence for
scripts. Videos are landmarked in the video environment with a transient
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
from rich.text import Text

from signpipe.cli.options import examples

EPILOG = examples("signpipe predict --model bundle.zip corpus/train_landmarks/5414471.parquet",
                  "signpipe predict --model bundle.zip corpus --sequence-id 1817141 --json",
                  "signpipe predict --model signs.zip clip.mp4 --top 3")


def predict(
    inputs: list[Path] = typer.Argument(..., help="Landmark parquet files (fingerspelling or asl-signs layout), "
                                                  "folders of them (a corpus root: every sequence) and/or videos."),
    model: Path = typer.Option(..., "--model", help="Bundle zip: model.tflite (+ inference_args.json for "
                                                    "fingerspelling), as `signpipe export` writes it."),
    sequence_ids: list[int] | None = typer.Option(None, "--sequence-id", help="Predict only these sequences of the "
                                                                               "parquet inputs (repeatable)."),
    top: int = typer.Option(5, "--top", min=1, help="How many signs to list (isolated-signs bundles)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per sequence (with truth, "
                                                       "match and score when the corpus has the answer)."),
    threads: int = typer.Option(1, "--threads", min=1, help="Interpreter threads."),
    map_path: Path | None = typer.Option(None, "--map", help="Label map JSON (default: the competition's map of "
                                                             "the bundle's task)."),
) -> None:
    """Run a TFLite bundle as deployed: the phrase or the top signs, beside the truth when known.

    One row per sequence: the file's name, the phrase (fingerspelling) or the top signs with their scores and,
    when the file sits in a corpus whose train.csv has the sequence, the true phrase or sign with the per-
    sequence normalized Levenshtein score or whether the top sign matches.
    """
    from signpipe.cli.extract import FramesPerSecondColumn
    from signpipe.predict import FINGERSPELLING, load_predictor, predict as run_predict

    predictor = load_predictor(model, threads=threads, map_path=map_path)
    console = Console(stderr=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
               FramesPerSecondColumn(), TimeElapsedColumn())
    bar = Progress(*columns, console=console, transient=True)
    tasks: list = []

    def show(update) -> None:
        """Video landmarking progress; the bar starts with the first video (parquet inputs show none)."""
        if not tasks:
            bar.start()
            tasks.append(bar.add_task("landmarking", total=None))
        bar.update(tasks[0], completed=update.frames_done, total=update.frames_expected,
                   description=f"landmarking {escape(update.video.name)}")

    try:
        predictions = run_predict(predictor, inputs, sequence_ids=sequence_ids or None, top_k=top, progress=show)
    finally:
        if tasks:
            bar.stop()

    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in predictions], indent=2))
        return
    print_table(predictions, predictor.path.name, predictor.task == FINGERSPELLING)


MAX_FILE_COLUMN = 40
"""Longest path below the common folder shown in the file column; a longer one is shown by its name."""


def _shown_name(path: Path, folder: Path | None) -> str:
    """The path below `folder` when short, else the file's name."""
    if folder is not None:
        try:
            below = str(path.relative_to(folder))
        except ValueError:
            return path.name
        if len(below) <= MAX_FILE_COLUMN:
            return below
    return path.name


def _common_folder(paths: list[Path]) -> Path | None:
    """The deepest folder holding every path (None for a mix of absolute and relative paths)."""
    import os

    try:
        return Path(os.path.commonpath([str(p.parent) for p in paths]))
    except ValueError:
        return None


def print_table(predictions: list, bundle_name: str, fingerspelling: bool) -> None:
    """One row per sequence: the file's name (its folder once, on the line above the table), the
    sequence id, the frames, the answer and, when the corpus has it, the truth and how the answer
    compares; then how many were exact (and the normalized Levenshtein score over them)."""
    task = "fingerspelling" if fingerspelling else "isolated-signs"
    inputs = list(dict.fromkeys(p.input for p in predictions))
    folder = _common_folder(inputs) if inputs else None
    one_file = len(inputs) == 1  # then its path goes in the title, and no column repeats it
    if one_file:
        where = f", {inputs[0]}"
    else:
        where = f", files in {folder}" if folder is not None and str(folder) not in ("", ".") else ""
    with_truth = any(p.truth is not None for p in predictions)
    from rich import box

    table = Table(box=box.SIMPLE_HEAD)
    names = {path: _shown_name(path, folder if where else None) for path in inputs}
    if not one_file:
        table.add_column("file", no_wrap=True, min_width=max(map(len, names.values()), default=4))
    table.add_column("sequence_id", justify="right", no_wrap=True)
    table.add_column("frames", justify="right")
    if fingerspelling:
        table.add_column("prediction", overflow="fold")
        if with_truth:
            table.add_column("truth", overflow="fold")
            table.add_column("score", justify="right")
    else:
        table.add_column("signs (top)", overflow="fold")
        table.add_column("score", justify="right")
        if with_truth:
            table.add_column("truth", overflow="fold")
            table.add_column("match")
    for prediction in predictions:
        name = names[prediction.input]
        about = (*(() if one_file else (escape(name),)), "" if prediction.sequence_id is None else str(prediction.sequence_id),
                 str(prediction.n_frames))
        if fingerspelling:
            row = [*about, escape(prediction.phrase) if prediction.phrase else "[dim](empty)[/]"]
            if with_truth:
                score = prediction.score
                row += [escape(prediction.truth or ""),
                        "" if score is None else ("[green]1 (exact)[/]" if prediction.match else f"{score:.3f}")]
            table.add_row(*row)
        else:
            row = [*about, "\n".join(escape(s.sign) for s in prediction.signs),
                   "\n".join(f"{s.score:.4g}" for s in prediction.signs)]
            if with_truth:
                truth = prediction.truth
                if truth is None:
                    verdict = ""
                else:
                    rank = next((k for k, s in enumerate(prediction.signs, 1) if s.sign == truth), None)
                    verdict = ("[green]yes[/]" if prediction.match
                               else f"no (rank {rank})" if rank else f"no (not in top {len(prediction.signs)})")
                row += [escape(truth or ""), verdict]
            table.add_row(*row, end_section=True)
    console = Console(soft_wrap=False)
    console.print(Text.assemble((bundle_name, "bold"), f": {task}{where}"), soft_wrap=True, highlight=False)
    console.print(table)
    known = [p for p in predictions if p.truth is not None]
    if known:
        exact = sum(1 for p in known if p.match)
        line = f"{exact} of {len(known)} exact"
        if fingerspelling and any(p.truth for p in known):
            from signpipe.metrics import levenshtein_totals

            line += f"; normalized Levenshtein over them {levenshtein_totals([p.truth for p in known], [p.phrase or '' for p in known]).score:.3f}"
        console.print(line, highlight=False)
