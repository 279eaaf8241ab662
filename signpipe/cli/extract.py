"""`signpipe extract VIDEOS... --out DIR --layout ...`: videos -> a corpus of MediaPipe landmarks.

A top-level command (registered in `signpipe.cli`), since it makes a corpus from outside data
rather than working on one. MediaPipe runs in the video environment (docs/video.md); this
command runs wherever signpipe is installed and finds that environment by itself.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from signpipe.cli.options import examples

EPILOG = examples("signpipe extract clips/*.mp4 --out corpus --layout isolated-signs",
                  "signpipe extract a.mp4 b.mp4 --out corpus --layout fingerspelling --labels labels.csv")


class Layout(str, Enum):
    fingerspelling = "fingerspelling"
    isolated_signs = "isolated-signs"


class FramesPerSecondColumn(ProgressColumn):
    """Extraction speed, the figure that says how long a folder of videos will take."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("- frames/s" if speed is None else f"{speed:.1f} frames/s", style="progress.data.speed")


def extract(
    videos: list[Path] = typer.Argument(..., help="Video files (MP4/MOV, AVI, MKV/WebM, ...), any number."),
    out: Path = typer.Option(..., "--out", help="New corpus directory (must not exist or be empty)."),
    layout: Layout = typer.Option(..., "--layout", help="Kaggle layout to write: fingerspelling (wide parquet) "
                                                        "or isolated-signs (long parquet per sequence)."),
    labels: Path | None = typer.Option(None, "--labels", help="CSV with columns video,label: each video's file "
                                                              "name (or stem) and its phrase or sign. Without it, "
                                                              "only landmark files are written, not train.csv."),
    participant: int = typer.Option(0, "--participant", min=0, help="participant_id of every sequence."),
    map_path: Path | None = typer.Option(None, "--map", help="Label map JSON to check labels against and copy "
                                                             "(default: the competition's)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists and is not empty."),
) -> None:
    """Extract MediaPipe Holistic landmarks from videos into a corpus that every pipeline accepts."""
    from signpipe.video.extract import extract_videos

    console = Console(stderr=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
               FramesPerSecondColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("starting MediaPipe", total=None)

        def show(update) -> None:
            bar.update(task, completed=update.frames_done, total=update.frames_expected,
                       description=f"{update.video_index + 1}/{len(videos)} {escape(update.video.name)}")

        result = extract_videos(videos, out, layout.value, labels, participant_id=participant, map_path=map_path,
                                overwrite=overwrite, progress=show)
        bar.update(task, completed=result.frames, total=result.frames, description=f"{len(videos)}/{len(videos)} done")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    startup = "" if result.startup_seconds is None else f" after {result.startup_seconds:.1f} s of start-up"
    print(f"wrote {result.sequences:,} sequence{'s' if result.sequences != 1 else ''} ({result.frames:,} frames) "
          f"in the {result.layout} layout to {result.root}: {result.frames_per_second:.1f} frames/s{startup}")
    if result.labelled:
        print(f"check it with: signpipe data validate {result.root}")
