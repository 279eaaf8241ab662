"""Self-contained HTML reports of pipeline steps, for the Vertex AI run page and local runs.

Vertex shows an `HTML` output artifact inline in the run graph, but only as one static file: no
scripts from the network, no separate images. So every chart here is inline SVG built from the
numbers (a training workdir's `metrics.jsonl`, an alignment table, the gate's criteria), and the
same file opens from `runs/<name>/` in any browser.

`scalar_metrics` flattens a stage's result dict into the plain `name -> number` pairs a `Metrics`
artifact holds, so what the UI lists is exactly what the stage returned; `record_metrics` logs
them on the artifact.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

CHART_WIDTH = 520
CHART_HEIGHT = 220
_MARGIN = {"left": 64, "right": 16, "top": 28, "bottom": 36}
_GRID_LINES = 5
_PALETTE = ("#1a73e8", "#e8710a", "#188038", "#d93025", "#9334e6", "#12b5cb")
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 16px; color: #202124; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 24px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #dadce0; padding: 4px 8px; text-align: left; font-size: 13px; }
th { background: #f1f3f4; }
.pass { color: #188038; font-weight: 600; } .fail { color: #d93025; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.frames { font-family: monospace; font-size: 12px; white-space: nowrap; overflow-x: auto; }
.frames span { display: inline-block; min-width: 1.1em; text-align: center; }
.blank { color: #bdc1c6; }
.note { background: #fef7e0; border-left: 4px solid #f9ab00; padding: 6px 10px; }
code { background: #f1f3f4; padding: 0 3px; border-radius: 3px; font-size: 12px; }
"""
_CODE_SPAN = re.compile(r"`([^`]+)`")


def scalar_metrics(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Every finite number in a (nested) result dict, keyed `outer/inner`; booleans become 0/1,
    everything else (strings, lists, None, NaN) is left out because a metric must be a number."""
    flat: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(scalar_metrics(value, f"{name}/"))
        elif isinstance(value, (bool, np.bool_)):
            flat[name] = float(value)
        elif isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(float(value)):
            flat[name] = float(value)
    return flat


def record_metrics(metrics: Any, values: Mapping[str, Any]) -> dict[str, float]:
    """Log `values` (flattened by `scalar_metrics`) on a kfp `Metrics` artifact, and also write
    them as JSON at the artifact's path: Vertex reads the logged metadata, while a local run keeps
    the file, which kfp's local cache needs to find before it reuses a step."""
    from signpipe.data.atomic import atomic_write_text

    flat = scalar_metrics(values)
    for name, value in flat.items():
        metrics.log_metric(name, value)
    atomic_write_text(Path(metrics.path), json.dumps(flat, indent=2, sort_keys=True) + "\n")
    return flat


def metric_series(records: Iterable[Mapping[str, Any]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`metrics.jsonl` records -> name -> (steps, values), non-finite entries dropped (the log
    writes them as null; logs of older versions hold NaN and infinity as strings)."""
    collected: dict[str, tuple[list[float], list[float]]] = {}
    for record in records:
        step = record.get("step")
        if step is None:
            continue
        for name, value in record.items():
            if name == "step" or isinstance(value, (str, bool)) or value is None:
                continue
            steps, values = collected.setdefault(name, ([], []))
            steps.append(float(step))
            values.append(float(value))
    series = {}
    for name, (steps, values) in collected.items():
        x, y = np.asarray(steps), np.asarray(values)
        keep = np.isfinite(y)
        if keep.any():
            series[name] = (x[keep], y[keep])
    return series


def _tick_label(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e4 or magnitude < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4g}"


def _chart_frame(title: str, width: int, height: int) -> tuple[list[str], int, int, int, int]:
    """The opening of a chart's SVG (size, accessible title, the title drawn at the top left) and
    its plot area: (parts, left, top, plot width, plot height)."""
    left, right, top, bottom = _MARGIN["left"], _MARGIN["right"], _MARGIN["top"], _MARGIN["bottom"]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="{left}" y="16" font-size="13" font-weight="600">{html.escape(title)}</text>',
    ]
    return parts, left, top, width - left - right, height - top - bottom


def line_chart_svg(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    width: int = CHART_WIDTH,
    height: int = CHART_HEIGHT,
    x_label: str = "step",
    dashed: Iterable[str] = (),
    colors: Mapping[str, str] | None = None,
) -> str:
    """An SVG line chart of one or more (x, y) series sharing axes, with gridlines and a legend;
    the series named in `dashed` are drawn dashed, those in `colors` in that colour (the others
    take the palette in turn)."""
    dashed = set(dashed)
    colors = dict(colors or {})
    arrays = {name: (np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)) for name, (x, y) in series.items()}
    arrays = {name: xy for name, xy in arrays.items() if len(xy[0])}
    parts, left, top, plot_w, plot_h = _chart_frame(title, width, height)
    if not arrays:
        parts.append(f'<text x="{left}" y="{top + plot_h / 2:.1f}" font-size="12" fill="#5f6368">no data</text></svg>')
        return "".join(parts)
    all_x = np.concatenate([x for x, _ in arrays.values()])
    all_y = np.concatenate([y for _, y in arrays.values()])
    x_lo, x_hi = float(all_x.min()), float(all_x.max())
    y_lo, y_hi = float(all_y.min()), float(all_y.max())
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1.0, x_hi + 1.0
    if y_hi == y_lo:
        pad = abs(y_lo) * 0.05 or 1.0
        y_lo, y_hi = y_lo - pad, y_hi + pad

    def to_px(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w, top + (1.0 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    for level in np.linspace(y_lo, y_hi, _GRID_LINES):
        _, py = to_px(np.array([x_lo]), np.array([level]))
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py[0]:.1f}" y2="{py[0]:.1f}" stroke="#e8eaed"/>')
        parts.append(f'<text x="{left - 6}" y="{py[0] + 4:.1f}" font-size="10" text-anchor="end" fill="#5f6368">{_tick_label(level)}</text>')
    for level in np.linspace(x_lo, x_hi, _GRID_LINES):
        px, _ = to_px(np.array([level]), np.array([y_lo]))
        parts.append(f'<text x="{px[0]:.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle" fill="#5f6368">{_tick_label(level)}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bdc1c6"/>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" font-size="11" text-anchor="middle" fill="#5f6368">{html.escape(x_label)}</text>')
    for k, (name, (x, y)) in enumerate(arrays.items()):
        color = colors.get(name) or _PALETTE[k % len(_PALETTE)]
        px, py = to_px(x, y)
        if len(x) == 1:
            parts.append(f'<circle cx="{px[0]:.1f}" cy="{py[0]:.1f}" r="3" fill="{color}"/>')
        else:
            points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
            dash = ' stroke-dasharray="5,3"' if name in dashed else ""
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5"{dash} points="{points}"/>')
        if len(arrays) > 1:
            parts.append(f'<text x="{left + plot_w - 4}" y="{top + 14 + 13 * k}" font-size="11" text-anchor="end" fill="{color}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(values: Sequence[float], title: str, x_label: str = "ms", bins: int = 20,
                  width: int = CHART_WIDTH, height: int = CHART_HEIGHT) -> str:
    """An SVG bar chart of how `values` spread over `bins` equal bins (count per bin), with the
    bin edges on the x axis: the latency per sequence, for instance."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    parts, left, top, plot_w, plot_h = _chart_frame(title, width, height)
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


def evaluation_facts(evaluation: Mapping[str, Any]) -> dict[str, str]:
    """What an evaluation was measured with, as both recipes' evaluation pages list it under the
    score: the latency per sequence, the model's size, the interpreter and the corpus."""
    latency = evaluation.get("latency_ms") or {}
    return {
        "latency per sequence": (f"mean {latency.get('mean')} ms, p50 {latency.get('p50')} ms, p95 {latency.get('p95')} ms, "
                                 f"max {latency.get('max')} ms" if latency else "-"),
        "model size": f"{evaluation.get('model_mb', '-')} MB",
        "interpreter": f"{evaluation.get('interpreter', '')}, {evaluation.get('threads', 1)} thread(s)",
        "corpus": str(evaluation.get("data", "")),
    }


def _page(title: str, body: Iterable[str]) -> str:
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(body)}</body></html>"
    )


def _value_cell(value: Any) -> str:
    if isinstance(value, float):
        return html.escape(_tick_label(value) if math.isfinite(value) else str(value))
    return html.escape(str(value))


def inline_code(text: str) -> str:
    """`text` escaped for HTML, its Markdown code spans (`like this`) as <code>: the gate's notes
    and messages are written for its Markdown report and shown on HTML pages too."""
    return _CODE_SPAN.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(text, quote=False))


def key_value_table(values: Mapping[str, Any], code_spans: bool = False) -> str:
    """One row per entry; `code_spans`: string values may hold Markdown code spans (`inline_code`)."""
    def cell(value: Any) -> str:
        return inline_code(value) if code_spans and isinstance(value, str) else _value_cell(value)

    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{cell(v)}</td></tr>" for k, v in values.items())
    return f"<table>{rows}</table>"


def nested_table(values: Mapping[str, Mapping[str, Any]], corner: str = "") -> str:
    """A dict of dicts (`{"train": {"sequences": 190, ...}, ...}`) as one table: a row per outer
    key, a column per inner key (in first-seen order)."""
    columns: list[str] = []
    for inner in values.values():
        columns += [str(k) for k in inner if str(k) not in columns]
    header = f"<tr><th>{html.escape(corner)}</th>" + "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns) + "</tr>"
    rows = "".join(
        f"<tr><th>{html.escape(str(name))}</th>" + "".join(f"<td>{_value_cell(inner.get(c, ''))}</td>" for c in columns) + "</tr>"
        for name, inner in values.items()
    )
    return f"<table>{header}{rows}</table>"


_SPLITS = ("train", "validation", "val", "eval")


def quantity_of(name: str) -> tuple[str, str]:
    """(quantity, split) of a `metrics.jsonl` name: "train/loss" -> ("loss", "train"),
    "validation/loss" -> ("loss", "validation"); a name without a known split prefix is its own
    quantity."""
    split, _, rest = name.partition("/")
    return (rest, split) if rest and split in _SPLITS else (name, "")


def curve_groups(series: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The series of one run grouped by quantity, so that a chart draws the train and validation
    curves of the same quantity together: {"loss": {"train/loss": ..., "validation/loss": ...}}."""
    groups: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for name in sorted(series, key=lambda n: (quantity_of(n)[0], _SPLITS.index(quantity_of(n)[1]) if quantity_of(n)[1] else -1)):
        groups.setdefault(quantity_of(name)[0], {})[name] = series[name]
    return groups


def curve_charts(series: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 champion: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> list[str]:
    """One chart per quantity, the splits' curves on the same axes; with `champion` (the
    champion's series), its curves of that quantity on the same chart, dashed, named
    "champion <name>"."""
    charts = []
    champion_groups = curve_groups(champion) if champion else {}
    for quantity, members in curve_groups(series).items():
        drawn = dict(members)
        colors = {name: _PALETTE[k % len(_PALETTE)] for k, name in enumerate(members)}
        dashed = set()
        for k, (name, xy) in enumerate(champion_groups.get(quantity, {}).items()):
            drawn[f"champion {name}"] = xy
            dashed.add(f"champion {name}")
            colors[f"champion {name}"] = colors.get(name, _PALETTE[(len(members) + k) % len(_PALETTE)])  # its split's colour
        charts.append(line_chart_svg(drawn, quantity, dashed=dashed, colors=colors))
    return charts


def training_report(workdir: str | Path, title: str, final_metrics: Mapping[str, Any] | None = None) -> str:
    """A training stage's page: its final metrics, then one chart per logged quantity (loss with
    its train and validation curves together, validation score, learning rate, ...) from
    `workdir/metrics.jsonl`."""
    from signpipe.train.reporting import read_metrics  # here: the training package imports jax

    series = metric_series(read_metrics(workdir))
    body = []
    if final_metrics:
        body.append("<h2>Result</h2>" + key_value_table({k: v for k, v in final_metrics.items() if not isinstance(v, (dict, list))}))
    charts = curve_charts(series)
    body.append("<h2>Curves</h2>")
    body.append(f'<div class="charts">{"".join(charts)}</div>' if charts else "<p>no scalars were logged</p>")
    return _page(title, body)


_CHAMPION_QUANTITIES = ("loss", "score", "accuracy")


def jsonl_records(text: str | None) -> list[dict[str, Any]] | None:
    """The records of a `metrics.jsonl` text (None stays None: no curves were kept); a line that
    is not JSON (a log cut short) is skipped."""
    if text is None:
        return None
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def training_comparison(records: Iterable[Mapping[str, Any]] | None, champion_records: Iterable[Mapping[str, Any]] | None,
                        champion_version: str | None) -> str:
    """The gate page's section "Training against the champion": this run's final training curves
    (`metrics.jsonl` records kept beside the bundle) with the champion's, dashed, on the same
    charts, for the quantities a reader compares (loss, score, accuracy). Says so when there is
    no champion, or the champion kept no curves (a version published before they were kept)."""
    heading = "<h2>Training against the champion</h2>"
    this_run = metric_series(records or [])
    if not this_run:
        return heading + "<p>this run's bundle holds no training curves</p>"
    wanted = {name: xy for name, xy in this_run.items() if quantity_of(name)[0].split("_")[-1] in _CHAMPION_QUANTITIES}
    if champion_version is None:
        note = "<p>no champion yet: this run's curves alone</p>"
        champion = None
    else:
        champion = metric_series(champion_records or [])
        note = (f"<p>champion version {html.escape(str(champion_version))}: dashed</p>" if champion else
                f"<p>champion version {html.escape(str(champion_version))} kept no training curves (published before "
                "bundles carried them): this run's curves alone</p>")
    charts = curve_charts(wanted or this_run, champion)
    return heading + note + f'<div class="charts">{"".join(charts)}</div>'


def alignment_report(examples: Iterable[Mapping[str, Any]], title: str, summary: Mapping[str, Any] | None = None) -> str:
    """Pseudo-alignment examples, one row per sequence: the phrase, its confidence and flags, and
    the frame-by-frame characters (blank frames greyed) so a reader sees where each character sits.

    Each example: `sequence_id`, `phrase`, `frames` (per-frame character, "" for blank),
    optionally `confidence` and `flags`."""
    body = []
    if summary:
        nested = {k: v for k, v in summary.items() if isinstance(v, Mapping)}
        flat = {k: v for k, v in summary.items() if not isinstance(v, Mapping)}
        body.append("<h2>Summary</h2>" + (nested_table(nested, "split") if nested else "") + (key_value_table(flat) if flat else ""))
    rows = []
    for example in examples:
        cells = "".join(
            f'<span class="blank">&middot;</span>' if not ch else f"<span>{html.escape(ch)}</span>" for ch in example["frames"]
        )
        confidence = example.get("confidence")
        flags = ", ".join(example.get("flags") or []) or "-"
        rows.append(
            f"<tr><td>{html.escape(str(example['sequence_id']))}</td><td>{html.escape(example['phrase'])}</td>"
            f"<td>{_value_cell(float(confidence)) if confidence is not None else '-'}</td><td>{html.escape(flags)}</td>"
            f'<td class="frames">{cells}</td></tr>'
        )
    body.append("<h2>Examples</h2><table><tr><th>sequence</th><th>phrase</th><th>confidence</th><th>flags</th><th>frames</th></tr>"
                + "".join(rows) + "</table>")
    return _page(title, body)


def criteria_table(criteria: Iterable[Mapping[str, Any]]) -> str:
    """The gate's criteria as a table, one row each (`signpipe.export.gate.Criterion.to_dict()`):
    name (with its note), measured, threshold, pass or fail; the gate page and the run page show it."""
    rows = []
    for criterion in criteria:
        ok = bool(criterion.get("passed"))
        unit = f" {criterion['unit']}" if criterion.get("unit") else ""
        name = html.escape(str(criterion["name"])) + (f" ({inline_code(str(criterion['note']))})" if criterion.get("note") else "")
        threshold = (f"{html.escape(str(criterion.get('comparison', '')))} {_value_cell(criterion['threshold'])}{html.escape(unit)}"
                     if criterion.get("threshold") is not None else "not measurable")
        rows.append(
            f"<tr><td>{name}</td><td>{_value_cell(criterion['measured'])}{html.escape(unit)}</td>"
            f"<td>{threshold}</td>"
            f'<td class="{"pass" if ok else "fail"}">{"pass" if ok else "fail"}</td></tr>'
        )
    return "<table><tr><th>criterion</th><th>measured</th><th>threshold</th><th></th></tr>" + "".join(rows) + "</table>"


def gate_report(criteria: Iterable[Mapping[str, Any]], passed: bool, title: str = "Gate",
                champion: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None,
                sections: Iterable[str] = ()) -> str:
    """The gate's verdict, one row per criterion (`signpipe.export.gate.Criterion.to_dict()`:
    name, measured, comparison, threshold, unit, note, problem, passed), the facts it was measured under
    and the champion the new model was compared with; `sections`: more HTML after those (the
    training curves against the champion's, `training_comparison`). Markdown code spans in notes,
    problems and facts (written for the Markdown report) show as <code>."""
    verdict = ('<p class="pass">PASSED: the model may be published</p>' if passed
               else '<p class="fail">FAILED: the model is not published</p>')
    criteria = list(criteria)
    # a criterion that could not be checked (an unreadable champion) says why
    problems = [f'<p class="fail">{html.escape(str(c["name"]))}: {inline_code(str(c["problem"]))}</p>'
                for c in criteria if c.get("problem")]
    body = [verdict, criteria_table(criteria), *problems]
    if context:
        body.append("<h2>Measured under</h2>" + key_value_table(context, code_spans=True))
    body.append("<h2>Champion</h2>" + (key_value_table(champion, code_spans=True) if champion
                                       else "<p>none yet: the first model that passes becomes the champion</p>"))
    body.extend(sections)
    return _page(title, body)


def alignment_examples(records: Any, count: int) -> list[dict[str, Any]]:
    """Up to `count` rows of an alignments artifact (`signpipe.fingerspelling.align.AlignmentRecords`) as
    `alignment_report` shows them: flagged sequences first (what a reader checks), then usable
    ones; each frame labelled with the phrase character whose span holds it."""
    flagged = [row for row in records.rows if row.alignment.impossible or row.alignment.low_confidence]
    usable = [row for row in records.rows if not (row.alignment.impossible or row.alignment.low_confidence)]
    chosen = (flagged[: count // 2] + usable)[:count] if usable else flagged[:count]
    examples = []
    for row in chosen:
        alignment = row.alignment
        n_frames = int(alignment.frame_classes.size)
        owner_of_frame = np.full(n_frames, -1, dtype=np.int64)
        spans = np.asarray(alignment.spans, dtype=np.int64).reshape(-1, 2)
        valid = (spans[:, 0] >= 0) & (spans[:, 1] > spans[:, 0])
        starts, ends = spans[valid, 0], np.minimum(spans[valid, 1], n_frames)
        lengths = np.maximum(ends - starts, 0)
        owners = np.repeat(np.flatnonzero(valid), lengths)
        within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        owner_of_frame[np.repeat(starts, lengths) + within] = owners
        flags = [name for name, on in (("impossible", alignment.impossible), ("low confidence", alignment.low_confidence)) if on]
        examples.append({
            "sequence_id": row.sequence_id,
            "phrase": row.phrase,
            "frames": ["" if k < 0 else row.phrase[k] for k in owner_of_frame.tolist()],
            "confidence": float(alignment.confidence),
            "flags": flags,
        })
    return examples


def validation_markdown(report: Mapping[str, Any]) -> str:
    """A corpus validation report (`ValidationReport.to_dict()`) as Markdown: verdict, every
    problem and warning, and a table of each part's size and hand coverage."""
    lines = [f"# Corpus validation: {'OK' if report['ok'] else 'FAILED'}", "",
             f"- corpus: `{report['root']}`", f"- layout: {report['kind'] or 'unknown'}", f"- label map: `{report['map']}`", ""]
    for title, key in (("Problems", "problems"), ("Warnings", "warnings")):
        if report[key]:
            lines += [f"## {title}", ""] + [f"- {item['where']}: {item['message']}" for item in report[key]] + [""]
    summary = report.get("summary") or {}
    if summary:
        columns = ["sequences", "participants", "sequences_read", "frames_total", "frames_median", "no_hand_fraction"]
        lines += ["## Parts", "", "| part | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for part, values in summary.items():
            cells = [_tick_label(values[c]) if isinstance(values.get(c), float) else str(values.get(c, "")) for c in columns]
            lines.append(f"| {part} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
