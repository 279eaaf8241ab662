"""Time the main job's local runs and score what they publish on signers they never saw.

    .venv/bin/python benchmarks/local_run.py                                  # both pipelines, preset local
    .venv/bin/python benchmarks/local_run.py --pipelines fingerspelling --seeds 101,202,303
    .venv/bin/python benchmarks/local_run.py --preset smoke                   # the plumbing preset

For each pipeline it runs `signpipe run PIPELINE --local --preset PRESET` (no data: a synthetic
corpus) into a temporary runs folder and prints
- the wall time per task and in total, against the 10-minute budget on 2 cores;
- for every training task, where its time went (`time_split` of its `final_metrics.json`): setup
  (reading and featurizing data, building the model), compile (the first step, compilation or its
  cache read), steps, data_wait (the loop waiting for the next batch), evaluation, checkpoint;
- the bundle's score on the run's own evaluation corpus, and on fresh synthetic corpora of other
  seeds (other signers, other phrases), each scored through `model.tflite` with the competition's
  protocol (`signpipe.export.evaluate.evaluate_bundle`).

Wall time on a shared machine says as much about the neighbours as about the pipeline: the load
average before and after and the CPU time of all the run's processes are printed with it. Set
`SIGNPIPE_JAX_CACHE=off` to measure a run without the compilation cache (a first run on a
fresh machine); by default the cache of earlier runs is used, as a user's second run would.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402

from pipelines.local import GateFailedError, run_local  # noqa: E402

BUDGET_S = 600.0
SPLIT_KINDS = ("setup", "compile", "steps", "data_wait", "evaluation", "checkpoint", "restore")
N_FRESH = {"fingerspelling": 200, "isolated-signs": 500}


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def training_splits(run_dir: Path) -> dict[str, dict[str, float]]:
    """Task folder name -> `time_split` of every training task of the run (fingerspelling stages and
    isolated-signs folds write `final_metrics.json` in their model artifact)."""
    splits = {}
    for path in sorted((run_dir / "pipeline").rglob("final_metrics.json")):
        values = json.loads(path.read_text())
        if "time_split" in values:
            task = path.relative_to(run_dir / "pipeline").parts[1]
            name, suffix = task, 2
            while name in splits:
                name, suffix = f"{task}-{suffix}", suffix + 1
            splits[name] = values["time_split"]
    return splits


def fresh_scores(pipeline: str, bundle: Path, seeds: list[int], workdir: Path) -> dict[int, float]:
    from signpipe.data.synth import generate_fingerspelling, generate_isolated_signs
    from signpipe.export.evaluate import evaluate_bundle

    scores = {}
    for seed in seeds:
        corpus = workdir / f"fresh-{pipeline}-{seed}"
        if pipeline == "fingerspelling":
            generate_fingerspelling(corpus, N_FRESH[pipeline], seed=seed)
        else:
            generate_isolated_signs(corpus, N_FRESH[pipeline], seed=seed, n_participants=4)
        scores[seed] = evaluate_bundle(bundle, corpus).score
        shutil.rmtree(corpus, ignore_errors=True)
    return scores


def bench(pipeline: str, preset: str, seeds: list[int], runs_dir: Path, console: Console) -> dict:
    load_before = os.getloadavg()
    cpu_before, started = cpu_seconds(), time.perf_counter()
    gate_failed = None
    try:
        run = run_local(pipeline, preset, runs_dir=runs_dir, console=console)
    except GateFailedError as exc:
        run, gate_failed = exc.run, str(exc)
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    load_after = os.getloadavg()
    bundle = Path(run.summary["bundle"])
    fresh = fresh_scores(pipeline, bundle, seeds, runs_dir) if seeds else {}
    return {"pipeline": pipeline, "preset": preset, "wall_s": wall, "cpu_s": cpu, "load_before": load_before,
            "load_after": load_after, "tasks": [(t.task, t.seconds) for t in run.tasks],
            "splits": training_splits(run.run_dir), "score": run.summary.get("score"),
            "metric": run.summary.get("metric"), "fresh": fresh, "gate": run.summary.get("gate"),
            "gate_failed": gate_failed, "model_mb": run.summary.get("model_mb")}


def print_result(result: dict) -> None:
    wall = result["wall_s"]
    lb, la = result["load_before"], result["load_after"]
    print(f"\n== {result['pipeline']} (preset {result['preset']})")
    print(f"machine: {os.cpu_count()} cores; load average (1/5/15 min) before {lb[0]:.1f}/{lb[1]:.1f}/{lb[2]:.1f}, "
          f"after {la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f}")
    print(f"{'task':<22} {'seconds':>8}  share")
    for task, seconds in sorted(result["tasks"], key=lambda t: -t[1]):
        print(f"{task:<22} {seconds:>8.1f}  {seconds / wall:6.1%}")
    print(f"{'total (wall)':<22} {wall:>8.1f}  budget {BUDGET_S:.0f} s: {'within' if wall <= BUDGET_S else 'OVER'}")
    print(f"{'CPU time, all procs':<22} {result['cpu_s']:>8.1f}")
    if result["splits"]:
        print("\ntraining tasks, seconds by kind (compile = the first step: compilation or its cache read)")
        print(f"{'task':<22} " + " ".join(f"{k:>10}" for k in SPLIT_KINDS))
        for task, split in result["splits"].items():
            print(f"{task:<22} " + " ".join(f"{split.get(k, 0.0):>10.1f}" for k in SPLIT_KINDS))
    print(f"\nheld-out {result['metric']}: {result['score']:.4f} on the run's evaluation corpus (other signers)"
          + (f"; gate FAILED: {result['gate_failed']}" if result["gate_failed"] else f"; gate {result['gate']}"))
    for seed, score in result["fresh"].items():
        print(f"  fresh synthetic corpus, seed {seed}: {score:.4f}")
    if result["fresh"]:
        values = list(result["fresh"].values())
        print(f"  mean over {len(values)} fresh seeds: {sum(values) / len(values):.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", default="fingerspelling,isolated-signs")
    parser.add_argument("--preset", default="local")
    parser.add_argument("--seeds", default="101,202", help="seeds of fresh synthetic corpora to score on ('' = none)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="where the run folders go (default: a temporary folder)")
    parser.add_argument("--json-out", dest="json", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="signpipe-bench-"))
    console = Console()
    results = []
    try:
        for pipeline in [p.strip() for p in args.pipelines.split(",") if p.strip()]:
            results.append(bench(pipeline, args.preset, seeds, runs_dir, console))
    finally:
        if args.runs_dir is None:
            shutil.rmtree(runs_dir, ignore_errors=True)
    for result in results:
        print_result(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0 if all(r["gate_failed"] is None and r["wall_s"] <= BUDGET_S for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
