"""`signpipe align --workdir RUN --shards SHARDS --out DIR`: pseudo-align phrases with a trained model.

    signpipe align --workdir runs/teacher --shards shards/ --out runs/alignments
    signpipe align --workdir runs/teacher --shards shards/ --out runs/alignments --split train --split validation

A top-level command (registered in `signpipe.cli`): it turns a trained model and feature shards
into the alignments artifact that CutMix training (`signpipe train noisy-student`, `signpipe train
distill alignments=...`) reads. The artifact's summary (counts per split, flagged sequences, mean
confidence) is printed as JSON on stdout; progress goes to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from signpipe.fingerspelling.align.viterbi import DEFAULT_MIN_CHARACTER_CONFIDENCE, DEFAULT_MIN_CONFIDENCE
from signpipe.cli.options import examples, renamed

EPILOG = examples("signpipe align --workdir runs/ft --shards shards --out runs/align",
                  "signpipe align --workdir runs/ft --shards shards --out runs/align --which last")


def align(
    workdir: Path = typer.Option(..., "--workdir", help="Training folder (finetune, noisy-student or distill run) "
                                                        "whose checkpoint aligns; EMA weights."),
    shards: Path = typer.Option(..., "--shards", help="Feature-shard directory (output of `signpipe landmarks preprocess`)."),
    out: Path = typer.Option(..., "--out", help="Directory for alignments.parquet and alignment_summary.json."),
    split: list[str] = typer.Option(["train"], "--split", help="Shard split to align; repeat for several."),
    which: str = typer.Option("best", "--which", help="Checkpoint of the workdir: best (by validation score) or last."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Sequences per model call."),
    min_confidence: float = typer.Option(DEFAULT_MIN_CONFIDENCE, "--min-confidence", min=0.0, max=1.0,
                                         help="Flag a sequence whose path has a lower mean frame probability."),
    min_character_confidence: float = typer.Option(DEFAULT_MIN_CHARACTER_CONFIDENCE, "--min-character-confidence",
                                                   min=0.0, max=1.0,
                                                   help="Flag a sequence with a character of lower mean probability."),
    _old_model: str | None = renamed("--model", "--workdir"),
    _old_data: str | None = renamed("--data", "--shards"),
    _old_checkpoint: str | None = renamed("--checkpoint", "--which", "best or last, as `signpipe signs export --which`"),
) -> None:
    """Force-align every phrase of the shards to its frames with a trained CTC model (Viterbi)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from signpipe.fingerspelling.align.run import align_shards

    console = Console(stderr=True)
    with Progress(TextColumn("aligning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("align", total=None)
        summary = align_shards(
            workdir,
            shards,
            out,
            splits=split,
            batch_size=batch_size,
            which=which,
            min_confidence=min_confidence,
            min_character_confidence=min_character_confidence,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    typer.echo(json.dumps(summary, indent=2))
