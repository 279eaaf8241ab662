"""`signpipe landmarks ...`: what the model's input is made of.

`aspect` prints a corpus' y scale as JSON (overall under `y_scale`, per participant, and the other
method's figure for comparison) so that scripts and pipeline steps can read it with any JSON tool.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from signpipe.cli.options import examples, renamed

app = typer.Typer(help="Landmarks: the corpus' aspect ratio and the model's input features.", no_args_is_help=True,
                  epilog=examples("signpipe landmarks aspect corpus", "signpipe landmarks preprocess corpus --out shards"))


@app.command(epilog=examples("signpipe landmarks aspect corpus", "signpipe landmarks aspect corpus --method affine -n 200"))
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


@app.command(epilog=examples("signpipe landmarks preprocess corpus --out shards",
                             "signpipe landmarks preprocess corpus --out shards --shard-count 4 --by-participant -j 4"))
def preprocess(
    corpus_dir: Path = typer.Argument(..., help="Corpus directory (asl-fingerspelling or asl-signs layout)."),
    out: Path = typer.Option(..., "--out", "-o", help="New directory for the feature shards and manifest.json."),
    y_scale: float | None = typer.Option(None, "--y-scale", help="The corpus' y scale; estimated (rigid) if omitted."),
    sequences_per_shard: int = typer.Option(512, "--sequences-per-shard", help="Shard size."),
    shard_count: int | None = typer.Option(None, "--shard-count", help="Shards per split (overrides --sequences-per-shard)."),
    validation_fraction: float = typer.Option(0.05, "--validation-fraction", help="Share held out (seed: 0.05)."),
    by_participant: bool = typer.Option(False, "--by-participant", help="Keep each participant on one side of the split."),
    seed: int = typer.Option(42, "--seed", help="Split seed (seed recipe: 42)."),
    part: list[str] = typer.Option([], "--part", help="Corpus parts to include (train, supplemental); default all."),
    map_path: Path | None = typer.Option(None, "--map", help="Label map, if not in the corpus directory or ../maps."),
    workers: int = typer.Option(1, "--workers", "-j", help="Processes writing shards in parallel."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing output directory (only once the new one is complete)."
    ),
    drop_nonfinite: bool = typer.Option(
        False, "--drop-nonfinite",
        help="Leave out frames with non-finite values (inf, or a part partly NaN) and count them, instead of refusing the corpus.",
    ),
    _old_shards: str | None = renamed("--shards", "--shard-count",
                                      "how many shards per split; --shards always means a feature-shard folder"),
) -> None:
    """Turn a corpus into feature shards (raw input points per sequence) plus a manifest.

    The output must be apart from the corpus (not it, not inside it, not containing it); it is
    built under a temporary name and replaces an existing one only when complete. A sequence
    with non-finite values stops the run unless --drop-nonfinite.
    """
    from signpipe.fingerspelling.preprocess import preprocess as run_preprocess

    manifest = run_preprocess(
        corpus_dir, out, y_scale=y_scale, sequences_per_shard=sequences_per_shard, n_shards=shard_count,
        validation_fraction=validation_fraction, group_by_participant=by_participant, seed=seed,
        parts=part or None, map_path=map_path, workers=workers, overwrite=overwrite, drop_nonfinite=drop_nonfinite,
    )
    nonfinite = manifest["nonfinite"]
    summary = {
        "out": str(out), "kind": manifest["kind"], "y_scale": manifest["y_scale"],
        "splits": {name: {k: s[k] for k in ("sequences", "participants", "frames")} | {"shards": len(s["shards"])}
                   for name, s in manifest["splits"].items()},
        "nonfinite": {k: nonfinite[k] for k in ("policy", "frames_dropped", "sequences_trimmed", "sequences_dropped")},
    }
    print(json.dumps(summary, indent=2))
    if nonfinite["frames_dropped"]:
        dropped = nonfinite["sequences_dropped"]
        touched = nonfinite["sequences_trimmed"] + dropped
        print(f"left out {nonfinite['frames_dropped']:,} frame{'s' if nonfinite['frames_dropped'] > 1 else ''} with "
              f"non-finite values from {touched:,} sequence{'s' if touched > 1 else ''}"
              + (f" ({dropped:,} of them had no other frame and were left out whole)" if dropped else ""),
              file=sys.stderr)
