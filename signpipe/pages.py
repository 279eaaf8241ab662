"""The run's own page, `runs/<run>/index.html`: what a person reads first after a local run.

`run_index_page` is written by every local run (`pipelines.local.run_local`), also one that
failed: what was trained on what, the score against a trivial baseline and against the champion,
the gate's criteria, size and latency, the earlier runs of the same pipeline, then links to every
step's page and to the run's key files. Self-contained HTML in the style of `signpipe.reports`
(inline CSS and SVG, no scripts, nothing fetched from the network). The step pages are the
recipes' own (`signpipe.fingerspelling.report`, `signpipe.signs.report`) and `signpipe.reports`.
"""

from __future__ import annotations

import csv
import html
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from signpipe.reports import _page, criteria_table, inline_code, key_value_table


@dataclass(frozen=True)
class CorpusSize:
    sequences: int
    participants: int
    most_common_label: str
    labels: list[str]


def corpus_size(root: str | Path) -> CorpusSize | None:
    """Sequences and participants of a corpus in the Kaggle layout (its `train.csv`, plus
    `supplemental_metadata.csv` when present), and its labels (phrases or signs); None when the
    folder holds no metadata to read."""
    labels: list[str] = []
    participants: set[str] = set()
    found = False
    from signpipe.data.fingerspelling import PARTS_FILES  # train.csv, then the supplemental metadata

    for name in PARTS_FILES.values():
        path = Path(root) / name
        if not path.is_file():
            continue
        found = True
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                participants.add(str(row.get("participant_id", "")))
                labels.append(str(row.get("phrase", row.get("sign", ""))))
    if not found:
        return None
    counts = Counter(labels)
    common = min(counts, key=lambda label: (-counts[label], label)) if counts else ""  # ties: the first by name
    return CorpusSize(len(labels), len(participants), common, labels)


def trivial_baseline(pipeline: str, eval_corpus: CorpusSize) -> tuple[float, str] | None:
    """(score, how) of predicting one fixed answer for every sequence of the evaluation corpus:
    fingerspelling, the normalized Levenshtein of its most frequent phrase; isolated signs, the
    accuracy of its most frequent sign. None when the corpus has no labels."""
    if not eval_corpus.labels:
        return None
    mode = eval_corpus.most_common_label
    if pipeline == "isolated-signs":
        share = sum(1 for label in eval_corpus.labels if label == mode) / len(eval_corpus.labels)
        return share, f"accuracy of always predicting the most frequent sign ({mode!r})"
    from signpipe.metrics import levenshtein_totals

    totals = levenshtein_totals(eval_corpus.labels, [mode] * len(eval_corpus.labels))
    return totals.score, f"normalized Levenshtein of predicting the most frequent phrase ({mode!r}) for every sequence"


def _relative(path: str | Path, run_dir: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), run_dir.resolve())).as_posix()


def _link(path: str | Path, run_dir: Path, label: str | None = None) -> str:
    href = _relative(path, run_dir)
    return f'<a href="{html.escape(href)}">{html.escape(label or href)}</a>'


def step_pages(run_dir: Path) -> list[tuple[str, Path]]:
    """(task/artifact, path) of every HTML report under the run's pipeline root, in task order
    as the folders sort (a ParallelFor iteration's folder names the iteration)."""
    pipeline = run_dir / "pipeline"
    if not pipeline.is_dir():
        return []
    pages = []
    for path in sorted(pipeline.rglob("*.html")):
        parts = path.relative_to(pipeline).parts
        folders = [part for part in parts[1:-1] if not part.startswith("for-loop-")] or list(parts[1:-1])
        iterations = [part.rsplit("-", 1)[-1] for part in parts[1:-1] if part.startswith("for-loop-") and "-iteration-" in part]
        artifact = parts[-1].removesuffix(".html")
        label = "/".join(folders)  # the job folder left out
        if iterations:
            label += f" #{'.'.join(iterations)}"
        if artifact != "report":
            label += f" ({artifact})"
        pages.append((label, path))
    return pages


def _earlier_rows(earlier: Sequence[Mapping[str, Any]], score: Any, run_dir: Path) -> str:
    """One row per earlier run: when, preset, its score and this run's difference from it, its gate."""
    rows = []
    for other in earlier:
        other_score = other.get("score")
        scored = isinstance(other_score, (int, float))
        difference = f"{score - other_score:+.4f}" if scored and isinstance(score, (int, float)) else "-"
        name = (_link(other["report"], run_dir, str(other["name"])) if other.get("report")
                else html.escape(str(other.get("name", "?"))))
        gate = other.get("gate") or other.get("state") or "-"
        rows.append(f"<tr><td>{name}</td><td>{html.escape(str(other.get('started') or '-'))}</td>"
                    f"<td>{html.escape(str(other.get('preset') or '-'))}</td>"
                    f"<td>{f'{other_score:.4f}' if scored else '-'}</td><td>{difference}</td><td>{html.escape(str(gate))}</td></tr>")
    return ("<table><tr><th>run</th><th>started</th><th>preset</th><th>score</th><th>this run minus it</th><th>gate</th></tr>"
            + "".join(rows) + "</table>")


def run_index_page(run: Mapping[str, Any], run_dir: str | Path, notes: Sequence[str] = (),
                   verdict: Mapping[str, Any] | None = None, key_files: Mapping[str, str | Path] | None = None,
                   error: str | None = None, earlier: Sequence[Mapping[str, Any]] = ()) -> str:
    """`runs/<run>/index.html`: `run` is the run's summary (`LocalRun.to_dict()`: pipeline,
    preset, succeeded, seconds, tasks, summary), `verdict` the gate's verdict JSON when the gate
    ran, `key_files` label -> path of the files to link (only those that exist are linked),
    `notes` the warnings shown first (plumbing preset, shared participants), `error` why the run
    failed, `earlier` the earlier runs of the same pipeline beside it, newest first
    (`signpipe.local_runs.LocalRunInfo.row()`), each linked to its own page when it has one."""
    run_dir = Path(run_dir)
    figures: Mapping[str, Any] = run.get("summary") or {}
    pipeline = str(run.get("pipeline", ""))
    status = "finished" if run.get("succeeded") else "FAILED"
    body = [f'<p class="note">{inline_code(note)}</p>' for note in notes]
    if error:
        body.append(f'<p class="fail">{inline_code(error)}</p>')

    train = corpus_size(figures["corpus"]) if figures.get("corpus") else None
    held_out = corpus_size(figures["eval_corpus"]) if figures.get("eval_corpus") else None
    headline: dict[str, str] = {
        "task": pipeline,
        "preset": str(run.get("preset", "")),
        "status": f"{status} in {float(run.get('seconds') or 0):.0f} s" + (f" (failed at {run['failed_task']})"
                                                                            if run.get("failed_task") else ""),
    }

    def data(where: Any, size: CorpusSize | None) -> str:
        counted = f"{size.sequences} sequences, {size.participants} participants" if size else "size unknown"
        return f"{where} ({counted})"

    headline["trained on"] = data(figures.get("corpus", "?"), train)
    headline["evaluated on"] = data(figures.get("eval_corpus", "?"), held_out) + (
        f"; held-out participants {', '.join(map(str, figures['held_out_participants']))}"
        if figures.get("held_out_participants") else "")
    score = figures.get("score")
    if score is not None:
        count = figures.get("eval_sequences")
        count = int(count) if isinstance(count, float) and count.is_integer() else count
        headline["score"] = f"{score:.4f} ({figures.get('metric')}, {count} sequences)"
        baseline = trivial_baseline(pipeline, held_out) if held_out else None
        if baseline is not None:
            headline["vs trivial baseline"] = f"{score - baseline[0]:+.4f} (baseline {baseline[0]:.4f}: {baseline[1]})"
        champion = (verdict or {}).get("champion")
        if champion:
            champion_score = (champion.get("evaluation") or {}).get("score")
            headline["vs champion"] = (f"{score - champion_score:+.4f} (champion version {champion['version']}, score "
                                       f"{champion_score:.4f})" if isinstance(champion_score, (int, float))
                                       else f"champion version {champion['version']}, no recorded score")
        elif verdict is not None:
            headline["vs champion"] = "no champion yet: the first model that passes becomes the champion"
    if figures.get("gate"):
        failed = ", ".join(figures.get("gate_failed") or [])
        headline["gate"] = figures["gate"] + (f" ({failed})" if failed else "")
    if figures.get("published_version"):
        headline["published"] = f"version {figures['published_version']}" + (
            ", the new champion" if figures.get("published_version") == figures.get("champion_version") else ", not promoted")
    if figures.get("model_mb") is not None:
        headline["model size"] = f"{figures['model_mb']} MB ({figures.get('quantize')})"
    latency = figures.get("latency_ms") or {}
    if latency:
        headline["latency"] = f"mean {latency.get('mean')} ms, p50 {latency.get('p50')} ms, p95 {latency.get('p95')} ms per sequence"
    if figures.get("oof_accuracy") is not None:
        folds = figures.get("n_folds")
        folds = int(folds) if isinstance(folds, float) and folds.is_integer() else folds
        headline["out-of-fold accuracy"] = f"{figures['oof_accuracy']:.4f} over {folds} folds"
    body.append("<h2>Run</h2>" + key_value_table(headline))

    if verdict and verdict.get("criteria"):
        verdict_line = ('<p class="pass">gate PASSED</p>' if verdict.get("passed") else '<p class="fail">gate FAILED</p>')
        body.append("<h2>Gate</h2>" + verdict_line + criteria_table(verdict["criteria"]))

    if earlier:
        body.append("<h2>Earlier runs of this pipeline</h2>" + _earlier_rows(earlier, score, run_dir))

    pages = step_pages(run_dir)
    body.append("<h2>Step pages</h2>" + ("<ul>" + "".join(f"<li>{_link(path, run_dir, label)}</li>" for label, path in pages)
                                         + "</ul>" if pages else "<p>no step wrote a page</p>"))
    files = [(label, Path(path)) for label, path in (key_files or {}).items() if path and Path(path).exists()]
    body.append("<h2>Files</h2>" + ("<ul>" + "".join(f"<li>{html.escape(label)}: {_link(path, run_dir)}</li>"
                                                     for label, path in files) + "</ul>" if files else "<p>none</p>"))
    tasks = run.get("tasks") or []
    if tasks:
        rows = "".join(f"<tr><td>{html.escape(str(t['task']))}</td><td>{float(t['seconds']):.1f}</td>"
                       f"<td>{html.escape(str(t['status']))}</td></tr>" for t in tasks)
        body.append(f"<h2>Time per task</h2><table><tr><th>task</th><th>seconds</th><th>status</th></tr>{rows}</table>")
    return _page(f"{pipeline} run ({run.get('preset', '')}): {status}", body)
