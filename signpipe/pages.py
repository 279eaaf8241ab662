"""The pages a person reads after a run: the fingerspelling evaluation page and the run's index.

Both are self-contained HTML in the style of `signpipe.reports` (inline CSS and SVG, no scripts,
nothing fetched from the network), so they open from `runs/<name>/` in any browser and inline on
the Vertex AI run page.

- `fingerspelling_evaluation_page`: where a fingerspelling model goes wrong. The score by phrase
  kind (`phrase_kind`) and by phrase length (`length_bucket`), the best and worst predictions
  beside their true phrases, the most confused characters (`character_confusions`, from a
  Levenshtein alignment of each truth with its prediction), the share of empty outputs and a
  histogram of the latency per sequence.
- `run_index_page`: `runs/<run>/index.html`, written by every local run
  (`pipelines.local.run_local`), also one that failed: what was trained on what, the score
  against a trivial baseline and against the champion, the gate's criteria, size and latency,
  then links to every step's page and to the run's key files.
"""

from __future__ import annotations

import csv
import html
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from signpipe.reports import CHART_HEIGHT, CHART_WIDTH, _MARGIN, _page, _tick_label, _value_cell, inline_code, key_value_table

PHONE = "phone number"
WEB = "web address"
ADDRESS = "street address"
OTHER = "name/other"
PHRASE_KINDS = (PHONE, WEB, ADDRESS, OTHER)

_PHONE_CHARACTERS = re.compile(r"^[0-9+\-(). ]+$")
_MIN_PHONE_DIGITS = 7
_DOMAIN = re.compile(r"[a-z0-9-]\.[a-z]{2,}(?:[/:?#~]|$)")
_STREET_WORDS = frozenset({
    "street", "st", "avenue", "ave", "av", "boulevard", "blvd", "road", "rd", "drive", "dr", "lane", "ln", "way",
    "court", "ct", "place", "pl", "terrace", "circle", "cir", "highway", "hwy", "parkway", "pkwy", "square", "sq",
    "trail", "trl", "route", "rte", "suite", "apt", "unit",
})
_HOUSE_NUMBER = re.compile(r"^\d+[a-z]?\s+\S")


def phrase_kind(phrase: str) -> str:
    """The kind of a true fingerspelling phrase, by the first rule that applies (case ignored):

    1. phone number: only digits, spaces and `+ - ( ) .`, with at least 7 digits
       ("+39 66 5063 4982", "1-800-793-3362");
    2. web address: no spaces inside and either an `@` (e-mail), a `www.`, `http`, a `/`, or a
       dot followed by two or more letters at the end or before `/ : ? # ~`
       ("jobswalker.net", "kim1@hazel.info", "patel.net/travel?id=626");
    3. street address: a house number followed by a word ("4514 hill boulevard"), or any word
       that names a street type (street, ave, blvd, road, drive, lane, way, suite, ...);
    4. name/other: everything else (names, bare numbers, words).
    """
    text = phrase.strip().lower()
    if _PHONE_CHARACTERS.match(text) and sum(ch.isdigit() for ch in text) >= _MIN_PHONE_DIGITS:
        return PHONE
    if text and " " not in text and ("@" in text or "www." in text or "http" in text or "/" in text
                                     or _DOMAIN.search(text)):
        return WEB
    words = re.findall(r"[a-z]+", text)
    if _HOUSE_NUMBER.match(text) or any(word in _STREET_WORDS for word in words):
        return ADDRESS
    return OTHER


LENGTH_BUCKETS = ((1, 10), (11, 15), (16, 20), (21, 25), (26, None))
"""Phrase lengths in characters, each bucket inclusive; the competition's longest phrase is 31."""


def length_bucket(n_characters: int) -> str:
    """The `LENGTH_BUCKETS` label ("11-15", "26+") holding a phrase of `n_characters`."""
    for low, high in LENGTH_BUCKETS:
        if n_characters >= low and (high is None or n_characters <= high):
            return f"{low}+" if high is None else f"{low}-{high}"
    return "0"


def sequence_score(truth: str, prediction: str) -> float:
    """One phrase's normalized Levenshtein, (len - distance) / len: 1 when exact, 0 for an empty
    output, negative when the prediction adds more errors than the phrase has characters."""
    import Levenshtein

    if not truth:
        return 1.0 if not prediction else -float(len(prediction))
    return (len(truth) - Levenshtein.distance(truth, prediction)) / len(truth)


@dataclass(frozen=True)
class Confusion:
    kind: str  # "substitution", "deletion" (a true character missing), "insertion" (an extra one)
    truth: str
    predicted: str
    count: int


def character_confusions(pairs: Iterable[tuple[str, str]]) -> list[Confusion]:
    """Counted character edits of every (truth, prediction) pair by a minimal Levenshtein
    alignment: a substitution of a true character by another, a deletion of a true character, an
    insertion of a character the truth does not have. Most frequent first (ties by kind, then
    characters)."""
    import Levenshtein

    counts: Counter[tuple[str, str, str]] = Counter()
    for truth, prediction in pairs:
        for operation, at_truth, at_prediction in Levenshtein.editops(truth, prediction):
            if operation == "replace":
                counts["substitution", truth[at_truth], prediction[at_prediction]] += 1
            elif operation == "delete":
                counts["deletion", truth[at_truth], ""] += 1
            elif operation == "insert":
                counts["insertion", "", prediction[at_prediction]] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [Confusion(kind, truth, predicted, count) for (kind, truth, predicted), count in ranked]


def histogram_svg(values: Sequence[float], title: str, x_label: str = "ms", bins: int = 20,
                  width: int = CHART_WIDTH, height: int = CHART_HEIGHT) -> str:
    """An SVG bar chart of how `values` spread over `bins` equal bins (count per bin), with the
    bin edges on the x axis: the latency per sequence, for instance."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    left, right, top, bottom = _MARGIN["left"], _MARGIN["right"], _MARGIN["top"], _MARGIN["bottom"]
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{html.escape(title)}</text>',
    ]
    if data.size == 0:
        parts.append(f'<text x="{left}" y="{top + plot_h / 2:.1f}" font-size="12" fill="#5f6368">no data</text></svg>')
        return "".join(parts)
    low, high = float(data.min()), float(data.max())
    if high == low:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(data, bins=bins, range=(low, high))
    peak = max(int(counts.max()), 1)
    for level in np.linspace(0, peak, min(_grid_steps(peak), 5)):
        y = top + plot_h * (1 - level / peak)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e8eaed"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#5f6368">{level:.0f}</text>')
    bar_w = plot_w / len(counts)
    for k, count in enumerate(counts):
        if count:
            bar_h = plot_h * count / peak
            parts.append(f'<rect x="{left + k * bar_w + 1:.1f}" y="{top + plot_h - bar_h:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                         f'height="{bar_h:.1f}" fill="#1a73e8"><title>{_tick_label(edges[k])}-{_tick_label(edges[k + 1])}: '
                         f"{int(count)}</title></rect>")
    for k in np.linspace(0, len(counts), 5).astype(int):
        x = left + k * bar_w
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle" fill="#5f6368">'
                     f"{_tick_label(float(edges[k]))}</text>")
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bdc1c6"/>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" font-size="11" text-anchor="middle" fill="#5f6368">'
                 f"{html.escape(x_label)} ({data.size} values)</text></svg>")
    return "".join(parts)


def _grid_steps(peak: int) -> int:
    return peak + 1 if peak < 4 else 5


def _score_rows(groups: Mapping[str, list[tuple[str, str]]], order: Sequence[str]) -> str:
    from signpipe.metrics import levenshtein_totals

    rows = []
    for name in order:
        pairs = groups.get(name)
        if not pairs:
            continue
        totals = levenshtein_totals([t for t, _ in pairs], [p for _, p in pairs])
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{len(pairs)}</td><td>{totals.n_characters}</td>"
                    f"<td>{totals.distance}</td><td>{totals.score:.4f}</td></tr>")
    return ("<table><tr><th></th><th>sequences</th><th>characters</th><th>edit distance</th><th>score</th></tr>"
            + "".join(rows) + "</table>")


def _shown(character: str) -> str:
    return {" ": "␣ (space)", "": "-"}.get(character, character)


EXAMPLES = 10
CONFUSIONS = 25


def fingerspelling_evaluation_page(evaluation: Mapping[str, Any], rows: Sequence[tuple[int, str, str]],
                                   latencies_ms: Sequence[float] | None = None,
                                   title: str = "Fingerspelling: evaluation") -> str:
    """The page of one fingerspelling evaluation: `evaluation` is `EvaluationResult.to_dict()`,
    `rows` its (sequence_id, truth, prediction) in corpus order, `latencies_ms` the signature
    call's time per sequence in the same order."""
    latency = evaluation.get("latency_ms") or {}
    n = len(rows)
    empty = sum(1 for _, _, p in rows if not p)
    headline = {
        "score": f"{evaluation['score']:.4f} ({evaluation.get('metric', '')})",
        "sequences": n,
        "characters": evaluation.get("n_characters", sum(len(t) for _, t, _ in rows)),
        "empty outputs": f"{empty} of {n} ({empty / n:.1%})" if n else "-",
        "latency per sequence": (f"mean {latency.get('mean')} ms, p50 {latency.get('p50')} ms, p95 {latency.get('p95')} ms, "
                                 f"max {latency.get('max')} ms" if latency else "-"),
        "model size": f"{evaluation.get('model_mb', '-')} MB",
        "interpreter": f"{evaluation.get('interpreter', '')}, {evaluation.get('threads', 1)} thread(s)",
        "corpus": evaluation.get("data", ""),
    }
    body = ["<h2>Result</h2>" + key_value_table(headline)]

    by_kind: dict[str, list[tuple[str, str]]] = {}
    by_length: dict[str, list[tuple[str, str]]] = {}
    for _, truth, prediction in rows:
        by_kind.setdefault(phrase_kind(truth), []).append((truth, prediction))
        by_length.setdefault(length_bucket(len(truth)), []).append((truth, prediction))
    body.append("<h2>Score by phrase kind</h2>" + _score_rows(by_kind, PHRASE_KINDS)
                + "<p>Kinds by rule (<code>signpipe.pages.phrase_kind</code>): phone numbers are digits with "
                  "<code>+ - ( ) .</code>; web addresses have no spaces and an <code>@</code>, <code>/</code>, "
                  "<code>www.</code> or a domain ending; street addresses start with a house number or name a street "
                  "type; the rest are names and other phrases.</p>")
    length_order = [length_bucket(low) for low, _ in LENGTH_BUCKETS]
    body.append("<h2>Score by phrase length (characters)</h2>" + _score_rows(by_length, length_order))

    scored = [(sequence_score(t, p), sid, t, p) for sid, t, p in rows]
    best = sorted(scored, key=lambda item: (-item[0], item[1]))[:EXAMPLES]
    worst = sorted(scored, key=lambda item: (item[0], item[1]))[:EXAMPLES]
    for heading, chosen in (("Best predictions", best), ("Worst predictions", worst)):
        cells = "".join(
            f"<tr><td>{sid}</td><td><code>{html.escape(t)}</code></td><td><code>{html.escape(p) or '<i>(empty)</i>'}</code></td>"
            f"<td>{score:.3f}</td></tr>" for score, sid, t, p in chosen
        )
        body.append(f"<h2>{heading}</h2><table><tr><th>sequence</th><th>true phrase</th><th>prediction</th>"
                    f"<th>normalized Levenshtein</th></tr>{cells}</table>")

    confusions = character_confusions((t, p) for _, t, p in rows)
    totals = Counter(c.kind for c in confusions for _ in range(c.count))
    summary = ", ".join(f"{totals.get(kind, 0)} {kind}s" for kind in ("substitution", "deletion", "insertion"))
    confusion_rows = "".join(
        f"<tr><td>{c.kind}</td><td><code>{html.escape(_shown(c.truth))}</code></td>"
        f"<td><code>{html.escape(_shown(c.predicted))}</code></td><td>{c.count}</td></tr>"
        for c in confusions[:CONFUSIONS]
    )
    body.append(f"<h2>Most confused characters</h2><p>From a minimal Levenshtein alignment of each true phrase with its "
                f"prediction: {summary}.</p>"
                + (f"<table><tr><th>edit</th><th>true</th><th>predicted</th><th>count</th></tr>{confusion_rows}</table>"
                   if confusions else "<p>none: every prediction was exact</p>"))
    body.append("<h2>Latency per sequence</h2>" + histogram_svg(latencies_ms or [], "signature call per sequence", "ms"))
    return _page(title, body)


# --- the run's index page -------------------------------------------------------------------------



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
    for name in ("train.csv", "supplemental_metadata.csv"):
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


def _verdict_rows(criteria: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for c in criteria:
        unit = f" {c['unit']}" if c.get("unit") else ""
        threshold = (f"{html.escape(str(c.get('comparison', '')))} {_value_cell(c['threshold'])}{html.escape(unit)}"
                     if c.get("threshold") is not None else "not measurable")
        ok = bool(c.get("passed"))
        note = f" ({inline_code(str(c['note']))})" if c.get("note") else ""
        rows.append(f"<tr><td>{html.escape(str(c['name']))}{note}</td><td>{_value_cell(c['measured'])}{html.escape(unit)}</td>"
                    f'<td>{threshold}</td><td class="{"pass" if ok else "fail"}">{"pass" if ok else "fail"}</td></tr>')
    return "<table><tr><th>criterion</th><th>measured</th><th>threshold</th><th></th></tr>" + "".join(rows) + "</table>"


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
        body.append("<h2>Gate</h2>" + verdict_line + _verdict_rows(verdict["criteria"]))

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
