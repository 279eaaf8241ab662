"""`signpipe landmarks ...`: what the model's input is made of.

`aspect` prints a corpus' y scale as JSON (overall under `y_scale`, per participant, and the other
method's figure for comparison) so that scripts and pipeline steps can read it with any JSON tool.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Landmarks: the corpus' aspect ratio and the model's input features.", no_args_is_help=True)


@app.command()
def aspect(
    corpus_dir: Path = typer.Argument(..., help="Corpus directory (asl-fingerspelling or asl-signs layout)."),
    # plain values checked by estimate_y_scale, whose ConfigError the root app prints in one line
    method: str = typer.Option(
        "rigid", "--method", "-m", help="rigid: 3-D bone lengths (default); affine: the fingerspelling seed's palm fit."
    ),
    max_sequences: int | None = typer.Option(
        None, "--max-sequences", "-n", help="Read a seeded random subset of this many sequences."
    ),
    map_path: Path | None = typer.Option(None, "--map", help="Label map, if not in the corpus directory or ../maps."),
    z_scale: float | None = typer.Option(
        None, "--z-scale", help="Hold z at this factor instead of fitting its unit (rigid method)."
    ),
    bootstrap: int = typer.Option(200, "--bootstrap", help="Bootstrap replicates for the intervals (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subset and the bootstrap."),
) -> None:
    """Estimate the corpus' y scale (the factor for normalized y), overall and per participant."""
    from signpipe.landmarks.aspect import estimate_y_scale

    estimate = estimate_y_scale(
        corpus_dir, method=method, max_sequences=max_sequences, map_path=map_path,
        z_scale=z_scale, n_bootstrap=bootstrap, seed=seed,
    )
    print(json.dumps(estimate.to_dict(), indent=2))
