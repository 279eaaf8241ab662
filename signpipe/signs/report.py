"""What an isolated-signs evaluation shows a person: its confusion matrix and an HTML page.

The Vertex AI run page draws a confusion matrix from a `ClassificationMetrics` artifact
(`confusion_matrix` gives its categories and counts); the HTML page (`evaluation_report`, inline
like every report of `signpipe.reports`) adds what a matrix of up to 250 signs hides: the
headline figures, the signs the model gets wrong most often, and which sign it takes each for.

The matrix covers the signs that occur in the evaluation, as truth or as prediction, in the order
of the label map, so runs on the same corpus line up row by row; rows are true signs, columns
predicted ones.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from signpipe.reports import _page, evaluation_facts, histogram_svg, key_value_table

HEATMAP_MAX_SIGNS = 30
"""Up to this many signs the page also draws the matrix itself; beyond it only the confused pairs."""
CONFUSED_PAIRS = 20


def confusion_matrix(truths: Sequence[str], predictions: Sequence[str],
                     sign_order: Mapping[str, int] | None = None) -> tuple[list[str], np.ndarray]:
    """(signs, counts `[n, n]` int64): `counts[i, j]` sequences of sign i predicted as sign j, over
    the signs that occur; ordered by `sign_order` (the label map), else by name."""
    if len(truths) != len(predictions):
        raise ValueError(f"{len(truths)} truths but {len(predictions)} predictions")
    names, codes = np.unique(np.asarray([*truths, *predictions], dtype=str), return_inverse=True)
    order = sign_order or {}
    ranked = sorted(range(len(names)), key=lambda k: (order.get(str(names[k]), len(order)), str(names[k])))
    position = np.empty(len(names), dtype=np.int64)
    position[ranked] = np.arange(len(names))
    codes = position[codes.reshape(-1)]
    rows, columns = codes[: len(truths)], codes[len(truths):]
    n = len(names)
    counts = np.bincount(rows * n + columns, minlength=n * n).reshape(n, n)
    return [str(names[k]) for k in ranked], counts


def confused_pairs(signs: Sequence[str], counts: np.ndarray, limit: int = CONFUSED_PAIRS) -> list[tuple[str, str, int]]:
    """The most frequent mistakes as (true sign, predicted sign, count), most frequent first."""
    off_diagonal = counts * (1 - np.eye(len(signs), dtype=counts.dtype))
    flat = np.argsort(-off_diagonal, axis=None, kind="stable")[:limit]
    rows, columns = np.unravel_index(flat, counts.shape)
    return [(signs[r], signs[c], int(off_diagonal[r, c])) for r, c in zip(rows, columns, strict=True) if off_diagonal[r, c] > 0]


def _heatmap(signs: Sequence[str], counts: np.ndarray) -> str:
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    shares = counts / totals
    header = "".join(f"<th>{html.escape(s)}</th>" for s in signs)
    rows = []
    for sign, row, share in zip(signs, counts, shares, strict=True):
        cells = "".join(
            f'<td style="background: rgba(26, 115, 232, {0.08 + 0.8 * s:.2f})">{int(n)}</td>' if n else "<td></td>"
            for n, s in zip(row, share, strict=True)
        )
        rows.append(f"<tr><th>{html.escape(sign)}</th>{cells}</tr>")
    return f"<table><tr><th>true \\ predicted</th>{header}</tr>{''.join(rows)}</table>"


def evaluation_report(evaluation: Mapping[str, Any], signs: Sequence[str], counts: np.ndarray,
                      title: str = "Isolated signs: evaluation", latencies_ms: Sequence[float] | None = None) -> str:
    """The page of one evaluation (`EvaluationResult.to_dict()` and its confusion matrix), with a
    histogram of `latencies_ms` (the signature call per sequence) when given."""

    headline = {
        "accuracy": evaluation["score"],
        "top-3 accuracy": evaluation.get("top3_accuracy", "-"),
        "sequences": evaluation["n_sequences"],
        "signs in the corpus": int(np.sum(counts.sum(axis=1) > 0)),
        **evaluation_facts(evaluation),
    }
    body = ["<h2>Result</h2>" + key_value_table(headline)]
    if latencies_ms:
        body.append("<h2>Latency per sequence</h2>" + histogram_svg(latencies_ms, "signature call per sequence", "ms"))

    per_sign = evaluation.get("per_sign_accuracy") or {}
    mistaken_for = {}
    for r, sign in enumerate(signs):
        row = counts[r].copy()
        row[r] = 0
        if row.any():
            mistaken_for[sign] = f"{signs[int(np.argmax(row))]} ({int(row.max())})"
    worst = sorted(per_sign.items(), key=lambda item: (item[1]["accuracy"], -item[1]["n"], item[0]))
    rows = "".join(
        f"<tr><td>{html.escape(sign)}</td><td>{values['n']}</td><td>{values['accuracy']:.3f}</td>"
        f"<td>{html.escape(mistaken_for.get(sign, '-'))}</td></tr>"
        for sign, values in worst
    )
    body.append("<h2>Per sign, worst first</h2><table><tr><th>sign</th><th>sequences</th><th>accuracy</th>"
                f"<th>most often taken for</th></tr>{rows}</table>")

    pairs = confused_pairs(signs, counts)
    pair_rows = "".join(f"<tr><td>{html.escape(t)}</td><td>{html.escape(p)}</td><td>{n}</td></tr>" for t, p, n in pairs)
    body.append("<h2>Most frequent confusions</h2>" + (
        f"<table><tr><th>true sign</th><th>predicted</th><th>sequences</th></tr>{pair_rows}</table>" if pairs
        else "<p>none: every sequence was recognized</p>"))
    if len(signs) <= HEATMAP_MAX_SIGNS:
        body.append("<h2>Confusion matrix</h2>" + _heatmap(signs, counts))
    else:
        body.append(f"<h2>Confusion matrix</h2><p>{len(signs)} signs: see the run's ClassificationMetrics artifact</p>")
    return _page(title, body)
