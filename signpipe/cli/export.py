"""`signpipe export`, `signpipe evaluate`, `signpipe gate`: from a checkpoint to a published bundle.

    signpipe export --workdir runs/ft --out bundle.zip [--quantize fp16|int8|none] [--graph auto|fast|dynamic]
    signpipe evaluate --model bundle.zip --data corpus/ [--threads 1] [--predictions preds.csv]
    signpipe gate --model bundle.zip --data corpus/ [--champion current.zip] [--max-mb 40]
                  [--max-latency-ms 200 --latency-frames 128 --threads 1] [--min-score 0.5] [--margin 0.005]
                  [--report gate.md] [--json-out gate.json]

`export` and `evaluate` print JSON on stdout. `gate` prints its Markdown report and exits with
status 1 when the bundle fails, so a script or pipeline step can stop on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from signpipe.cli.options import examples, renamed

EPILOGS = {
    "export": examples("signpipe export --workdir runs/ft --out bundle.zip --quantize fp16"),
    "evaluate": examples("signpipe evaluate --model bundle.zip --data corpus",
                         "signpipe evaluate --model bundle.zip --data corpus --predictions preds.csv"),
    "gate": examples("signpipe gate --model bundle.zip --data corpus --max-mb 40 --min-score 0.5",
                     "signpipe gate --model bundle.zip --data corpus --champion old.zip --json-out gate.json"),
}


def _print_json(values: dict) -> None:
    typer.echo(json.dumps(values, indent=2))


def export(
    workdir: Path = typer.Option(
        ..., "--workdir", help="Training folder (its best checkpoint, EMA weights) or WORKDIR/checkpoints/<step>."
    ),
    out: Path = typer.Option(..., "--out", help="Bundle zip to write (model.tflite + inference_args.json)."),
    quantize: str = typer.Option("fp16", "--quantize", help="Weights: fp16, int8 (dynamic range) or none (fp32)."),
    graph: str = typer.Option(
        "auto", "--graph", help="fast (fixed-length buckets), dynamic (one symbolic-length graph), or auto (fast unless fp16)."
    ),
    y_scale: float | None = typer.Option(
        None, "--y-scale", help="Corpus y scale to build in; default: the manifest of the shards the run trained on."
    ),
    _old_checkpoint: str | None = renamed("--checkpoint", "--workdir"),
) -> None:
    """Convert a trained fingerspelling model into a Kaggle-format TFLite bundle."""
    from signpipe.fingerspelling.export import export_checkpoint

    _print_json(export_checkpoint(workdir, out, quantize=quantize, graph=graph, y_scale=y_scale).to_dict())


def evaluate(
    model: Path = typer.Option(..., "--model", help="Bundle zip written by `signpipe export`."),
    data: Path = typer.Option(..., "--data", help="Corpus directory in the Kaggle layout (train.csv, parquet files)."),
    threads: int = typer.Option(1, "--threads", help="Interpreter threads."),
    parts: list[str] | None = typer.Option(None, "--part", help="Corpus part(s) to score (default: all)."),
    limit: int | None = typer.Option(None, "--limit", help="Score only the first N sequences of the metadata."),
    predictions: Path | None = typer.Option(None, "--predictions", help="Also write sequence_id,truth,prediction as CSV."),
) -> None:
    """Score a bundle with the competition's protocol (ai_edge_litert); prints score, latency, size."""
    from signpipe.export.evaluate import evaluate_bundle, write_predictions

    result = evaluate_bundle(model, data, threads=threads, parts=parts or None, limit=limit)
    if predictions is not None:
        write_predictions(result, predictions)
    _print_json(result.to_dict())


def gate(
    model: Path = typer.Option(..., "--model", help="Candidate bundle zip."),
    data: Path = typer.Option(..., "--data", help="Evaluation corpus directory in the Kaggle layout."),
    champion: Path | None = typer.Option(None, "--champion", help="Current champion bundle to compare against."),
    max_mb: float = typer.Option(40.0, "--max-mb", help="Largest allowed model.tflite, MB (10^6 bytes)."),
    max_latency_ms: float | None = typer.Option(None, "--max-latency-ms", help="Largest allowed p95 latency per sequence."),
    max_mean_latency_ms: float | None = typer.Option(
        None, "--max-mean-latency-ms", help="Largest allowed mean latency per sequence of the corpus (asl-signs: 100)."
    ),
    latency_frames: int = typer.Option(128, "--latency-frames", help="Frames per sequence of the latency probe."),
    threads: int = typer.Option(1, "--threads", help="Interpreter threads for latency and scoring."),
    min_score: float = typer.Option(0.0, "--min-score", help="Lowest allowed score."),
    margin: float = typer.Option(0.0, "--margin", help="How far below the champion's score the bundle may be."),
    report: Path | None = typer.Option(None, "--report", help="Also write the Markdown report here."),
    result_json: Path | None = typer.Option(None, "--json-out", help="Also write the result (criteria, thresholds) as JSON."),
    _old_json: str | None = renamed("--json", "--json-out"),
) -> None:
    """Pass or fail a bundle on size, latency and score (and a champion); exit status 1 on fail."""
    from signpipe.data.atomic import atomic_write_text
    from signpipe.export.gate import GateThresholds, run_gate

    thresholds = GateThresholds(
        max_model_mb=max_mb,
        max_latency_p95_ms=max_latency_ms,
        max_mean_latency_ms=max_mean_latency_ms,
        latency_frames=latency_frames,
        latency_threads=threads,
        min_score=min_score,
        champion_margin=margin,
    )
    result = run_gate(model, data, thresholds, champion=champion)
    text = result.markdown()
    if report is not None:
        atomic_write_text(report, text)
    if result_json is not None:
        atomic_write_text(result_json, json.dumps(result.to_dict(), indent=2) + "\n")
    typer.echo(text, nl=False)
    if not result.passed:
        raise typer.Exit(1)
