"""Run a whole pipeline on this machine with kfp's local runner, and say what came out of it.

    run_local("fingerspelling", "smoke")   # what `make run` / `signpipe run fingerspelling --local` do
    run_local("isolated-signs", "smoke", data="../shared/data/asl-signs-sample")

Every task runs as a subprocess of this interpreter (`kfp.local.SubprocessRunner(use_venv=False)`),
with kfp's own DAG orchestration (ParallelFor, Collected, If, importers), exactly the compiled
graph that Vertex AI runs. A run keeps everything under `runs/<name>-<time>/`:

- `corpus/`, `eval-corpus/`: the synthetic corpora, when no data was given; given `--data` but
  no `--eval-data`, the corpus split by participant (`holdout.json` says who was held out of
  training to score the bundle on): a model is never scored on the signers it trained on. A
  given `--eval-data` that shares participants with `--data` is refused before anything runs,
  unless `allow_shared_participants` (then the summary and the gate's report say so);
- `pipeline/`: kfp's pipeline root, one folder per task with its artifacts;
- `pipeline.log`: every task's full output (training progress, TensorFlow's chatter);
- `summary.json`: what the terminal summary shows, plus the time per task;
- `index.html`: the run's page (`signpipe.pages.run_index_page`), written also when the run or
  its gate failed: the data, the score against a trivial baseline and the champion, the gate's
  criteria, and links to every step's page and the key files. Its path ends the summary.

With caching on (`--cache`), every run under the same `runs/` shares kfp's local cache
(`runs/.kfp-cache/`): repeating a run on the same data reuses each step whose inputs did not
change, and reruns the gate and publish, which read the registry and are never cached.

The model registry is shared between runs (`runs/registry/<pipeline>/` unless given), because
the gate compares each new model with the champion an earlier run published.

The terminal shows one line per task as it starts and ends: kfp's orchestrator logs those events
on the root logger, and a logging filter turns them into progress lines while the tasks' own
output goes to `pipeline.log`.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import json
import logging
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text
from rich.table import Table

from components import HTML_SUFFIX
from signpipe.data.atomic import atomic_write_text
from signpipe.errors import ConfigError, SignpipeError
from signpipe.export.gate import PLUMBING_NOTE, shared_signers_note
from signpipe.local_runs import (HOLDOUT_FILE, INDEX_FILE, LOG_FILE, PLUMBING_REGISTRY_DIR, REGISTRY_DIR, SUMMARY_FILE,
                                 list_local_runs)

RUNS_DIR = Path("runs")
CACHE_DIR = ".kfp-cache"
EVAL_CORPUS_SEED = 1
EARLIER_RUNS = 5
"""How many earlier runs of the same pipeline a run's page lists beside it."""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"^Executing task '([^']+)'")
_FINISHED = re.compile(r"^Task '([^']+)' finished with status (\w+)")
_SKIPPED = re.compile(r"^Skipping conditional task (\S+)")
_CACHED = re.compile(r"^Task (\S+) cache hit")
_EXCEPTION_LINE = re.compile(r"^\s*(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*(?:Error|Exception|Diverged|Interrupt|Exit)):\s*(.+)$")


def hide_checkout_docker_dir() -> None:
    """Keep kfp's optional `import docker` from finding this checkout's `docker/` folder.

    The editable install puts the repository root on `sys.path`, where `docker/` (the
    Dockerfiles) imports as an empty namespace package; kfp.local then takes it for the Docker
    SDK and fails on `docker.DockerClient`. When no real SDK is installed, the name is marked
    as absent so kfp sees the ImportError it handles (no DockerRunner, which is not used here).
    """
    if "docker" in sys.modules:
        return
    spec = importlib.util.find_spec("docker")
    if spec is not None and spec.origin in (None, "namespace"):
        sys.modules["docker"] = None  # type: ignore[assignment]


@dataclass
class TaskTiming:
    task: str
    seconds: float
    status: str


@dataclass
class LocalRun:
    """A finished (or failed) local run and what it produced."""

    run_dir: Path
    pipeline: str
    preset: str
    succeeded: bool
    seconds: float
    tasks: list[TaskTiming] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    failed_task: str | None = None

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["run_dir"] = str(self.run_dir)
        return values


class TaskProgress(logging.Filter):
    """Turns kfp's task start/finish log records into progress lines with durations.

    Attached to the root logger as a filter, so it sees the records whichever handler kfp
    installs; iterations of a ParallelFor share their task's name and are matched first in,
    first out.
    """

    def __init__(self, console: Console):
        super().__init__()
        self.console = console
        self.timings: list[TaskTiming] = []
        self.failed: str | None = None
        self._started: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()

    def _stamp(self) -> str:
        return time.strftime("%M:%S", time.gmtime(time.perf_counter() - self._t0))

    def filter(self, record: logging.LogRecord) -> bool:
        message = _ANSI.sub("", record.getMessage())
        with self._lock:
            if started := _STARTED.match(message):
                self._started.setdefault(started.group(1), []).append(time.perf_counter())
                self.console.print(f"[dim]{self._stamp()}[/]  [cyan]{started.group(1)}[/] ...", highlight=False)
            elif finished := _FINISHED.match(message):
                name, status = finished.groups()
                queue = self._started.get(name) or [time.perf_counter()]
                seconds = time.perf_counter() - queue.pop(0)
                self.timings.append(TaskTiming(name, round(seconds, 2), status))
                mark = "[green]done[/]" if status == "SUCCESS" else f"[bold red]{status}[/]"
                self.console.print(f"[dim]{self._stamp()}[/]  [cyan]{name}[/] {mark} in {seconds:.1f} s", highlight=False)
                if status != "SUCCESS" and self.failed is None:
                    self.failed = name
            elif cached := _CACHED.match(message):
                self.timings.append(TaskTiming(cached.group(1), 0.0, "CACHED"))
                self.console.print(f"[dim]{self._stamp()}[/]  [cyan]{cached.group(1)}[/] [green]cached[/]", highlight=False)
            elif skipped := _SKIPPED.match(message):
                self.console.print(f"[dim]{self._stamp()}[/]  [yellow]{skipped.group(1)} skipped[/] (condition false)", highlight=False)
        return True


def artifact_outputs(task: Any) -> dict[str, Any]:
    """The pipeline's outputs (`PipelineOutputs`) as uri + metadata, cached tasks included."""
    outputs = getattr(task, "outputs", None) or {}
    return {name: {"uri": value.uri, "metadata": dict(value.metadata)} for name, value in outputs.items() if hasattr(value, "uri")}


def registry_state(registry_dir: Path) -> dict[str, Any]:
    from signpipe.registry import LocalModelRegistry

    registry = LocalModelRegistry(registry_dir)
    champion = registry.champion()
    return {"versions": [v.version for v in registry.versions()],
            "champion": champion.to_dict() if champion is not None else None}


def summarize(outputs: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The figures a run ends with: score, size, latency, gate verdict, what was published and
    where the champion's bundle is."""
    summary: dict[str, Any] = {}
    exported = outputs.get("bundle")
    if exported:
        summary["bundle"] = str(Path(exported["uri"]) / exported["metadata"].get("file", "model.zip"))
        summary["model_mb"] = exported["metadata"].get("model_mb")
        summary["quantize"] = exported["metadata"].get("quantize")
        summary["corpus_fingerprint"] = exported["metadata"].get("corpus_fingerprint")
        if "oof_accuracy" in exported["metadata"]:  # a fold ensemble: the cross-validated accuracy of its folds
            summary["oof_accuracy"] = exported["metadata"]["oof_accuracy"]
            summary["n_folds"] = exported["metadata"].get("n_folds")
    evaluation = outputs.get("evaluation")
    if evaluation:
        meta = evaluation["metadata"]
        summary.update({"score": meta.get("score"), "metric": meta.get("metric"), "eval_sequences": meta.get("n_sequences"),
                        "latency_ms": meta.get("latency_ms")})
        if meta.get("top3_accuracy") is not None:
            summary["top3_accuracy"] = meta["top3_accuracy"]
        summary["eval_corpus_fingerprint"] = meta.get("data_fingerprint")
    verdict = outputs.get("verdict")
    if verdict:
        summary["gate"] = "passed" if verdict["metadata"].get("passed") else "failed"
        summary["gate_failed"] = verdict["metadata"].get("failed", [])
        summary["gate_report"] = str(Path(verdict["uri"]).parent / f"report{HTML_SUFFIX}")
    new_versions = [v for v in after.get("versions", []) if v not in before.get("versions", [])]
    champion = after.get("champion")
    summary["published_version"] = new_versions[-1] if new_versions else None
    summary["champion_version"] = champion["version"] if champion else None
    summary["champion_bundle"] = f"{champion['uri']}/{champion['bundle']}" if champion else None
    summary["champion_score"] = champion["evaluation"].get("score") if champion else None
    return summary


def _first(pattern: str, root: Path) -> Path | None:
    found = sorted(root.rglob(pattern)) if root.is_dir() else []
    return found[0] if found else None


def run_files(run_dir: Path, outputs: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Path]:
    """Label -> path of the files a run's page links: the evaluation and predictions, the gate's
    verdict, the bundle, the log, the parameters and the summary. A failed run has no pipeline
    outputs: its files are looked for under the pipeline root."""
    pipeline_root = run_dir / "pipeline"
    evaluation = Path(outputs["evaluation"]["uri"]) if outputs.get("evaluation") else None
    if evaluation is None:
        found = _first("evaluation.json", pipeline_root)
        evaluation = found.parent if found else None
    verdict = Path(outputs["verdict"]["uri"]) if outputs.get("verdict") else _first("verdict", pipeline_root)
    bundle = Path(summary["bundle"]) if summary.get("bundle") else _first("model.zip", pipeline_root)
    files = {
        "evaluation": evaluation / "evaluation.json" if evaluation else None,
        "predictions": evaluation / "predictions.csv" if evaluation else None,
        "gate verdict": verdict,
        "gate report (Markdown)": verdict.parent / "report_markdown" if verdict else None,
        "bundle": bundle,
        "task log": run_dir / LOG_FILE,
        "parameters": run_dir / "parameters.json",
        "held-out participants": run_dir / HOLDOUT_FILE,
        "summary": run_dir / SUMMARY_FILE,
    }
    return {label: path for label, path in files.items() if path is not None and path.exists()}


def write_run_page(run: LocalRun, error: str | None = None) -> Path:
    """`runs/<run>/index.html` (`signpipe.pages.run_index_page`) from what the run left: its
    summary, the gate's verdict when the gate ran, and its files."""
    from signpipe.pages import run_index_page

    figures = run.summary
    notes = []
    if figures.get("plumbing"):
        notes.append(f"preset {run.preset}: {PLUMBING_NOTE}")
    if figures.get("shared_participants"):
        notes.append(f"WARNING: {shared_signers_note(figures['shared_participants'])}")
    verdict = None
    verdict_path = Path(run.outputs["verdict"]["uri"]) if run.outputs.get("verdict") else None
    if verdict_path is not None and verdict_path.is_file():
        try:
            verdict = json.loads(verdict_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            verdict = None
    earlier = [other.row() for other in list_local_runs(run.run_dir.parent, run.pipeline, EARLIER_RUNS + 1)
               if other.folder.resolve() != run.run_dir.resolve()][:EARLIER_RUNS]
    path = run.run_dir / INDEX_FILE
    atomic_write_text(path, run_index_page(run.to_dict(), run.run_dir, notes, verdict,
                                           run_files(run.run_dir, run.outputs, figures), error, earlier))
    return path


def _with_fingerprint(where: str, fingerprint: str | None) -> str:
    return f"{where} (fingerprint {fingerprint})" if where and fingerprint else where


def _count(value: Any) -> Any:
    """A count read back from artifact metadata (kfp stores every number as a float) as an int."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def print_summary(console: Console, run: LocalRun) -> None:
    figures = run.summary
    table = Table(title=f"{run.pipeline} ({run.preset}): {'finished' if run.succeeded else 'FAILED'} in {run.seconds:.0f} s",
                  show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")

    def row(label: str, value: Any) -> None:
        if value not in (None, "", []):
            table.add_row(label, Text(str(value)))  # paths and messages as they are, never read as markup

    if figures.get("plumbing"):
        row("preset", f"{run.preset}: {PLUMBING_NOTE}")
    if figures.get("score") is not None:
        score = f"{figures['score']:.4f} ({figures.get('metric')}, {_count(figures.get('eval_sequences'))} sequences)"
        if figures.get("shared_participants"):
            score += f"; WARNING: {shared_signers_note(figures['shared_participants'])}"
        elif figures.get("plumbing"):
            score += " (plumbing preset: means nothing)"
        row("score", score)
    if figures.get("top3_accuracy") is not None:
        row("top-3 accuracy", f"{figures['top3_accuracy']:.4f}")
    if figures.get("oof_accuracy") is not None:
        row("out-of-fold", f"{figures['oof_accuracy']:.4f} accuracy over {_count(figures.get('n_folds'))} folds "
                           "(each fold's model on its own unseen signers)")
    held_out = figures.get("held_out_participants")
    row("trained on", _with_fingerprint(figures.get("corpus", ""), figures.get("corpus_fingerprint")))
    row("evaluated on", _with_fingerprint(figures.get("eval_corpus", ""), figures.get("eval_corpus_fingerprint"))
        + (f" (held-out participants {', '.join(map(str, held_out))})" if held_out else ""))
    row("size", f"{figures['model_mb']} MB ({figures.get('quantize')})" if figures.get("model_mb") is not None else None)
    latency = figures.get("latency_ms") or {}
    mean = f"mean {latency['mean']} ms, " if "mean" in latency else ""
    row("latency", f"{mean}p50 {latency['p50']} ms, p95 {latency['p95']} ms per sequence" if latency else None)
    if "gate" in figures:
        failed = ", ".join(figures["gate_failed"])
        row("gate", figures["gate"] + (f" ({failed})" if failed else ""))
        row("gate report", figures.get("gate_report"))
        published = figures.get("published_version")
        if published is None:
            row("published", "no")
        elif published == figures.get("champion_version"):
            row("published", f"version {published}, the new champion")
        else:
            row("published", f"version {published}, not promoted (a better champion was published meanwhile)")
    row("registry", figures.get("registry"))
    if figures.get("champion_version"):
        row("champion", f"version {figures['champion_version']} (score {figures['champion_score']:.4f})")
        row("champion bundle", figures.get("champion_bundle"))
    row("this run's bundle", figures.get("bundle"))
    row("run folder", run.run_dir)
    row("run page", figures.get("index"))
    row("task log", run.run_dir / LOG_FILE)
    if run.failed_task:
        row("failed task", f"{run.failed_task} (its output is in {run.run_dir / LOG_FILE})")
    console.print(table)
    timing = Table(title="time per task", title_justify="left")
    timing.add_column("task")
    timing.add_column("seconds", justify="right")
    timing.add_column("status")
    for item in run.tasks:
        timing.add_row(item.task, f"{item.seconds:.1f}", item.status)
    console.print(timing)


def default_registry(runs_dir: str | Path, pipeline: str, plumbing: bool = False) -> Path:
    """`runs_dir/registry/<pipeline>`; a plumbing preset's bundles (which mean nothing) go to
    `runs_dir/plumbing-registry/<pipeline>`, so they never become a real run's champion."""
    return Path(runs_dir) / (PLUMBING_REGISTRY_DIR if plumbing else REGISTRY_DIR) / pipeline


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """`runs_dir/<name>-<time>/`, made now (a second suffix keeps two runs in one second apart)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):
        candidate = Path(runs_dir) / (f"{name}-{stamp}" + (f"-{attempt}" if attempt else ""))
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise SignpipeError(f"{runs_dir}: could not create a new run folder for {name}")


def synthesize_corpora(run_dir: Path, n_sequences: int, console: Console, n_participants: int | None = None
                       ) -> tuple[Path, Path]:
    """A training corpus and a held-out evaluation corpus (other signers, other phrases: another
    seed) for a run given no data; rendered on every core."""
    from signpipe.data.synth import generate_fingerspelling

    n_eval = max(20, n_sequences // 5)
    eval_participants = None if n_participants is None else max(2, min(n_eval, n_participants // 5))
    console.print(f"generating a synthetic corpus: {n_sequences} training sequences"
                  f"{f' of {n_participants} signers' if n_participants else ''}, {n_eval} evaluation sequences "
                  "of other signers", highlight=False)
    workers = os.cpu_count() or 1
    corpus = generate_fingerspelling(run_dir / "corpus", n_sequences, seed=0, n_participants=n_participants,
                                     workers=workers)
    held_out = generate_fingerspelling(run_dir / "eval-corpus", n_eval, seed=EVAL_CORPUS_SEED,
                                       n_participants=eval_participants, workers=workers)
    return corpus.root, held_out.root


def synthesize_signs_corpora(run_dir: Path, chosen: Any, console: Console) -> tuple[Path, Path]:
    """Synthetic asl-signs corpora for an isolated-signs run given no data: the evaluation corpus
    from another seed, whose signers (participant ids) are not the training corpus' ones."""
    from signpipe.data.synth import generate_isolated_signs

    n_train, n_people = chosen.synth_sequences, chosen.synth_participants
    n_eval = max(20, n_train // 4)
    console.print(f"generating synthetic asl-signs corpora: {n_train} training sequences of {n_people} signers, "
                  f"{n_eval} evaluation sequences of other signers", highlight=False)
    workers = os.cpu_count() or 1
    corpus = generate_isolated_signs(run_dir / "corpus", n_train, seed=0, n_participants=n_people, workers=workers)
    held_out = generate_isolated_signs(run_dir / "eval-corpus", n_eval, seed=EVAL_CORPUS_SEED,
                                       n_participants=max(2, n_people // 2), workers=workers)
    return corpus.root, held_out.root


def hold_out_signers(run_dir: Path, data: Path, chosen: Any, console: Console) -> tuple[Path, Path]:
    """A run given a corpus and no evaluation corpus: about `holdout_fraction` of the
    participants go to `eval-corpus/` and never train (`signpipe.data.holdout`), the rest to
    `corpus/`; a model scored on its own training signers would only show what it memorized."""
    from signpipe.data.holdout import split_by_participant

    split = split_by_participant(data, run_dir / "corpus", run_dir / "eval-corpus", chosen.holdout_fraction,
                                 seed=EVAL_CORPUS_SEED)
    atomic_write_text(run_dir / HOLDOUT_FILE, json.dumps({"source": str(data), **split.to_dict()}, indent=2) + "\n")
    console.print(
        f"[yellow]note:[/] no --eval-data: participants {', '.join(map(str, split.held_out_participants))} "
        f"({split.n_held_out_sequences} sequences) are held out of training and the bundle is scored on them; "
        f"training uses the other {len(split.train_participants)} ({split.n_train_sequences} sequences)",
        highlight=False,
    )
    return split.train, split.held_out


def prepare_corpora(pipeline: str, chosen: Any, run_dir: Path, data: str | Path | None, eval_data: str | Path | None,
                    console: Console) -> tuple[Path, Path]:
    """(training corpus, evaluation corpus) of a local run: synthetic ones without data; the
    given ones; or, given only a training corpus, the corpus split into training signers and
    held-out signers."""
    if data is None:
        if pipeline == "isolated-signs":
            return synthesize_signs_corpora(run_dir, chosen, console)
        return synthesize_corpora(run_dir, chosen.synth_sequences, console, chosen.synth_participants)
    corpus = Path(data).resolve()
    if eval_data is not None:
        return corpus, Path(eval_data).resolve()
    return hold_out_signers(run_dir, corpus, chosen, console)


def check_shared_participants(data: str | Path | None, eval_data: str | Path | None, allow: bool, console: Console) -> int:
    """How many participants a given evaluation corpus shares with the given training corpus: a
    `ConfigError` when any do and `allow` is off (before anything is made; the pipeline's
    `check_held_out` step would fail the same way, later), a warning when allowed. 0 when the
    run makes its own evaluation corpus (synthetic, or held-out signers)."""
    if data is None or eval_data is None:
        return 0
    from signpipe.data.corpus import quote_items
    from signpipe.data.holdout import shared_participants

    shared = shared_participants(data, eval_data)
    if shared and not allow:
        listed = quote_items(shared, limit=10)
        raise ConfigError(f"--eval-data {eval_data} shares {len(shared)} participant(s) with --data {data} ({listed}): a score "
                          "on signers the model trained on shows what it memorized. Pass an evaluation corpus of other "
                          "signers, or no --eval-data to hold participants of --data out of training "
                          "(--allow-shared-participants to score on them anyway, flagged in the summary and the gate's report)")
    if shared:
        console.print(f"[yellow]warning:[/] {escape(shared_signers_note(len(shared)))}", highlight=False)
    return len(shared)


def task_error(log: Path) -> str | None:
    """The last exception a task raised, as its log shows it (`ExceptionName: message`, the module
    path left out), or None when the log has none: what a failed run's final message repeats so
    that the reason is on the terminal, not only in `pipeline.log`."""
    try:
        lines = _ANSI.sub("", log.read_text(encoding="utf-8", errors="replace")).splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        found = _EXCEPTION_LINE.match(line)
        if found:
            return f"{found.group(1)}: {found.group(2).strip()}"
    return None


def check_corpus_kind(pipeline: str, corpus: str | Path | None, option: str) -> None:
    """Refuse, before anything runs, a corpus of the other task (the pipeline's validate step
    would stop on it too, later). A pipeline is named after the corpus kind it trains on
    (`signpipe.data.corpus.KINDS`)."""
    if corpus is None:
        return
    from signpipe.data.corpus import detect_kind

    kind, expected = detect_kind(corpus), pipeline
    if kind != expected:
        raise ConfigError(f"{option} {corpus}: its train.csv has the {kind} columns, but the {pipeline} pipeline "
                          f"trains on {expected} corpora")


def run_parameters(preset_name: str, overrides: Sequence[str], fixed: Mapping[str, Any],
                   pipeline: str = "fingerspelling") -> dict[str, Any]:
    """The pipeline's arguments: the preset's run-time parameters, `key=value` overrides, then the
    run's own values (corpora, registry, labels)."""
    from pipelines.presets import apply_overrides, check_training_overrides, preset

    parameters = apply_overrides(preset(preset_name, pipeline).runtime_parameters(), overrides)
    check_training_overrides(parameters)
    return {**parameters, **fixed}


def run_local(
    pipeline: str = "fingerspelling",
    preset_name: str = "smoke",
    data: str | Path | None = None,
    eval_data: str | Path | None = None,
    overrides: Iterable[str] = (),
    runs_dir: str | Path = RUNS_DIR,
    registry: str | Path | None = None,
    name: str | None = None,
    console: Console | None = None,
    enable_caching: bool = False,
    allow_shared_participants: bool = False,
) -> LocalRun:
    """Run `pipeline` with `preset_name` locally (see the module docstring); raises
    `SignpipeError` when a task fails, after printing the summary of what did run."""
    from pipelines.compile import check_pipeline_name, pipeline_function
    from pipelines.presets import preset
    from signpipe.images import git_revision

    console = console or Console()
    check_pipeline_name(pipeline)
    chosen = preset(preset_name, pipeline)
    overrides = list(overrides)
    if data is not None and not Path(data).is_dir():
        raise ConfigError(f"--data {data}: no such corpus folder (expected a corpus in the Kaggle layout)")
    if eval_data is not None and not Path(eval_data).is_dir():
        raise ConfigError(f"--eval-data {eval_data}: no such corpus folder (expected a corpus in the Kaggle layout)")
    parameters = run_parameters(preset_name, overrides, {}, pipeline)  # a bad override fails before anything is made
    check_corpus_kind(pipeline, data, "--data")
    check_corpus_kind(pipeline, eval_data, "--eval-data")
    shared = check_shared_participants(data, eval_data, allow_shared_participants, console)
    run_dir = new_run_dir(runs_dir, name or f"{pipeline}-{preset_name}").resolve()
    try:
        revision = git_revision(Path(__file__).resolve().parent.parent)
    except SignpipeError:
        revision = "unknown"
    plumbing = chosen.plumbing
    registry_dir = Path(registry) if registry is not None else default_registry(runs_dir, pipeline, plumbing)
    console.print(f"[bold]{pipeline}[/] preset [bold]{preset_name}[/]: {chosen.description}", highlight=False)
    console.print(f"run folder {escape(str(run_dir))}", highlight=False)
    corpus, held_out = prepare_corpora(pipeline, chosen, run_dir, data, eval_data, console)
    arguments = {
        **parameters,
        "corpus_uri": str(corpus),
        "eval_corpus_uri": str(held_out),
        "allow_shared_participants": allow_shared_participants,
        "registry": str(registry_dir.resolve()),
        "labels": {"preset": preset_name, "revision": revision, "target": "local"},
    }
    atomic_write_text(run_dir / "parameters.json", json.dumps(arguments, indent=2) + "\n")

    hide_checkout_docker_dir()
    from kfp import local

    # kfp warns that display names and the like mean nothing to the local runner; they are for Vertex
    warnings.filterwarnings("ignore", message=r".*have no effect in the current local runner.*", category=UserWarning)

    function = pipeline_function(pipeline, preset_name, "local")
    pipeline_root = run_dir / "pipeline"
    # one cache for all runs, so a repeated run reuses every step whose inputs did not change
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root), raise_on_error=True,
               enable_caching=enable_caching, cache_root=str((Path(runs_dir) / CACHE_DIR).resolve()))
    before = registry_state(registry_dir)
    # bound to the terminal now: while the tasks run, sys.stdout is the run's log file
    progress = TaskProgress(Console(file=sys.stdout, force_terminal=console.is_terminal, no_color=console.no_color))
    root_logger = logging.getLogger()
    root_logger.addFilter(progress)
    # kfp logs cache hits at INFO outside the context where it raises the level itself
    level = root_logger.level
    root_logger.setLevel(min(level or logging.WARNING, logging.INFO))
    started = time.perf_counter()
    error: BaseException | None = None
    finished = None
    try:
        with open(run_dir / LOG_FILE, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            finished = function(**arguments)
    except RuntimeError as exc:  # kfp.local reports a failed task this way
        error = exc
    finally:
        root_logger.removeFilter(progress)
        root_logger.setLevel(level)
    outputs = artifact_outputs(finished)
    summary = summarize(outputs, before, registry_state(registry_dir))
    summary["corpus"] = str(corpus)
    summary["eval_corpus"] = str(held_out)
    summary["shared_participants"] = shared
    summary["plumbing"] = plumbing
    summary["registry"] = str(registry_dir.resolve())
    if (run_dir / HOLDOUT_FILE).is_file():
        summary["held_out_participants"] = json.loads((run_dir / HOLDOUT_FILE).read_text())["held_out_participants"]
    run = LocalRun(
        run_dir=run_dir,
        pipeline=pipeline,
        preset=preset_name,
        succeeded=error is None,
        seconds=round(time.perf_counter() - started, 2),
        tasks=progress.timings,
        outputs=outputs,
        summary=summary,
        failed_task=progress.failed,
    )
    failure = None
    if error is not None:
        reason = task_error(run_dir / LOG_FILE)
        failure = f"failed at task {run.failed_task or '?'}" + (f": {reason}" if reason else "")
    elif summary.get("gate") == "failed":
        failure = f"the model failed the gate ({', '.join(summary.get('gate_failed', [])) or '?'}); nothing was published"
    summary["index"] = str(run_dir / INDEX_FILE)
    atomic_write_text(run_dir / SUMMARY_FILE, json.dumps(run.to_dict(), indent=2, default=str) + "\n")
    try:
        write_run_page(run, failure)
    except Exception as exc:  # noqa: BLE001 (the page must never hide the run's own outcome)
        summary.pop("index", None)  # nor may the summary name a page that is not there
        atomic_write_text(run_dir / SUMMARY_FILE, json.dumps(run.to_dict(), indent=2, default=str) + "\n")
        console.print(f"[yellow]warning:[/] the run page could not be written ({escape(repr(exc))})", highlight=False)
    print_summary(console, run)
    if error is not None:
        raise SignpipeError(f"{pipeline} run {failure} (the task's whole output: {run_dir / LOG_FILE})")
    if summary.get("gate") == "failed":
        raise GateFailedError(run, summary.get("gate_failed", []), summary.get("gate_report", ""))
    return run


class GateFailedError(SignpipeError):
    """The run finished but its model failed the gate, so nothing was published: the run's
    outcome is a failure (a scheduled or scripted run must not read it as a new model)."""

    def __init__(self, run: LocalRun, failed: Sequence[str], report: str):
        self.run = run
        criteria = ", ".join(failed) or "?"
        super().__init__(f"the model failed the gate ({criteria}); nothing was published. See {report}")
