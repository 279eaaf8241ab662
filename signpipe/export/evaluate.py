"""Score a bundle the way the competition's scorer did, on a corpus in the Kaggle layout.

The scorer (REFERENCE.md section 1) read each sequence's `selected_columns` from its parquet file
(in the file's row order, NaN left in), called
`Interpreter(model).get_signature_runner("serving_default")(inputs=frames)`, and turned
`argmax(outputs["outputs"], axis=1)` into characters through the character map, an index the
map does not hold (the CTC blank) giving "". The score is the normalized total Levenshtein
distance. `evaluate_bundle` repeats exactly that with `ai_edge_litert` (the runtime the TFLite
model ships to) and also reports what the gate needs: latency per sequence (p50/p95 of the
signature call alone, after one warm-up call) and the model's size.

What is specific to a task sits in a `ScoringProtocol`: how a bundle is checked, how a sequence
becomes the model's input, how an output becomes a prediction, how predictions are scored. The
protocol is picked by the corpus kind (`protocol_for`), without touching the timing and reporting
around it:
- fingerspelling (above);
- isolated signs (REFERENCE.md section 3): the scorer read `x, y, z` of a sequence's long parquet
  file, reshaped them to float32 `[n_frames, 543, 3]`, called the same signature runner and took
  `argmax(outputs["outputs"])` over the 250 signs; the metric is accuracy. `IsolatedSignsProtocol`
  also reports top-3 accuracy and the accuracy of each sign.
"""

from __future__ import annotations

import csv
import io
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from signpipe.data.atomic import atomic_write_text
from signpipe.data.corpus import (
    FINGERSPELLING,
    ISOLATED_SIGNS,
    check_columns,
    float32_frames,
    open_corpus,
    open_parquet,
    read_parquet_columns,
)
from signpipe.data.schema import character_table, indices_to_phrase
from signpipe.errors import ConfigError, CorpusError, SignpipeError
from signpipe.export.bundle import INPUT_NAME, OUTPUT_NAME, SIGNATURE, Bundle, read_bundle, serving_signature, shape_signature
from signpipe.metrics import levenshtein_totals

INTERPRETER = "ai_edge_litert"


@dataclass(frozen=True)
class ScoredInput:
    """One sequence as the scorer hands it to the model, with its true label."""

    sequence_id: int
    inputs: np.ndarray
    truth: str


class ScoringProtocol(ABC):
    """The task-specific part of a competition's scorer."""

    task: str = ""
    metric: str = ""

    @abstractmethod
    def inputs(self, corpus: Any, bundle: Bundle, parts: Sequence[str] | None, limit: int | None) -> Iterator[ScoredInput]:
        """Every selected sequence of the corpus as the model's input."""

    @abstractmethod
    def decode(self, outputs: np.ndarray) -> str:
        """The model's `outputs` for one sequence -> the prediction."""

    @abstractmethod
    def score(self, truths: Sequence[str], predictions: Sequence[str]) -> dict[str, float | int]:
        """`{"score": ..., details}` over all sequences."""

    def read_bundle(self, path: str | Path) -> Bundle:
        """The bundle at `path`, checked for what this protocol calls."""
        return read_bundle(path)

    def ranking(self, outputs: np.ndarray) -> Any:
        """What scoring needs of one output beyond the decoded prediction (None: nothing)."""
        return None

    def score_with_rankings(
        self, truths: Sequence[str], predictions: Sequence[str], rankings: Sequence[Any]
    ) -> dict[str, Any]:
        """`score`, plus whatever `ranking` kept of every output makes possible."""
        return self.score(truths, predictions)


class FingerspellingProtocol(ScoringProtocol):
    """asl-fingerspelling: selected wide columns in, one-hot-ish rows out, normalized Levenshtein."""

    task = FINGERSPELLING
    metric = "normalized_levenshtein"

    def __init__(self, character_map: Mapping[str, int]):
        self.table = character_table(character_map)

    def inputs(self, corpus: Any, bundle: Bundle, parts: Sequence[str] | None, limit: int | None) -> Iterator[ScoredInput]:
        rows = corpus.select(parts)
        if limit is not None:
            rows = rows.iloc[:limit]
        columns = list(bundle.selected_columns)
        for relative_path, group in rows.groupby("path", sort=False):
            path = corpus.root / relative_path
            frames_by_id = read_selected_columns(path, columns, group["sequence_id"].to_numpy())
            for sequence_id, phrase in zip(group["sequence_id"].tolist(), group["phrase"].tolist(), strict=True):
                yield ScoredInput(int(sequence_id), frames_by_id[int(sequence_id)], str(phrase))

    def decode(self, outputs: np.ndarray) -> str:
        if outputs.ndim != 2:
            raise SignpipeError(f"model output {OUTPUT_NAME!r} has shape {outputs.shape}; expected [rows, classes]")
        return indices_to_phrase(np.argmax(outputs, axis=1), self.table)

    def score(self, truths: Sequence[str], predictions: Sequence[str]) -> dict[str, float | int]:
        totals = levenshtein_totals(truths, predictions)
        return {"score": totals.score, "n_characters": totals.n_characters, "distance": totals.distance}


def read_selected_columns(path: Path, columns: list[str], sequence_ids: Iterable[int]) -> dict[int, np.ndarray]:
    """`{sequence_id: float32 [rows, len(columns)]}` from one wide parquet file, rows in file order
    as the scorer read them (`pd.read_parquet(path, columns=...)`, then the sequence's rows)."""
    parquet = open_parquet(path)
    problems = check_columns(parquet.schema_arrow, {"sequence_id": "integer", **dict.fromkeys(columns, "floating")}, path)
    if problems:
        raise CorpusError(problems)
    table = read_parquet_columns(parquet, path, ["sequence_id", *columns])
    ids = table.column("sequence_id").to_numpy()
    block = float32_frames(table, columns)
    order = np.argsort(ids, kind="stable")  # stable: each sequence keeps the file's row order
    sorted_ids = ids[order]
    wanted = np.asarray(list(sequence_ids), dtype=np.int64)
    starts = np.searchsorted(sorted_ids, wanted, side="left")
    ends = np.searchsorted(sorted_ids, wanted, side="right")
    missing = wanted[starts == ends]
    if len(missing):
        listed = ", ".join(map(str, missing[:5]))
        raise CorpusError(f"expected rows of sequence_id {listed} (listed in the metadata), found none", str(path))
    return {int(i): block[order[s:e]] for i, s, e in zip(wanted, starts, ends, strict=True)}


SIGNS_COLUMNS = ("x", "y", "z")
"""The columns the asl-signs scorer read from a long file: a signs bundle's `selected_columns`."""
SIGNS_TOP_K = 3


class IsolatedSignsProtocol(ScoringProtocol):
    """asl-signs: a long file's x, y, z as `[n_frames, 543, 3]` in, scores over the signs out,
    accuracy (plus top-3 and per-sign accuracy)."""

    task = ISOLATED_SIGNS
    metric = "accuracy"

    def __init__(self, sign_map: Mapping[str, int]):
        self.signs = sorted(sign_map, key=sign_map.get)

    def read_bundle(self, path: str | Path) -> Bundle:
        bundle = read_bundle(path, check_model=False)
        check_signs_signature(bundle.model, len(self.signs), f"{bundle.path}:model.tflite")
        return bundle

    def inputs(self, corpus: Any, bundle: Bundle, parts: Sequence[str] | None, limit: int | None) -> Iterator[ScoredInput]:
        from signpipe.data.signs import read_long_frames

        rows = corpus.select(parts)
        if limit is not None:
            rows = rows.iloc[:limit]
        for relative_path, sequence_id, sign in zip(rows["path"], rows["sequence_id"], rows["sign"], strict=True):
            frames, _ = read_long_frames(corpus.root / relative_path)
            yield ScoredInput(int(sequence_id), frames, str(sign))

    def _scores(self, outputs: np.ndarray) -> np.ndarray:
        scores = np.asarray(outputs).reshape(-1)
        if scores.shape != (len(self.signs),):
            raise SignpipeError(
                f"model output {OUTPUT_NAME!r} has shape {np.shape(outputs)}; expected [{len(self.signs)}] "
                "(one score per sign)"
            )
        return scores

    def decode(self, outputs: np.ndarray) -> str:
        return self.signs[int(np.argmax(self._scores(outputs)))]

    def ranking(self, outputs: np.ndarray) -> tuple[str, ...]:
        """The `SIGNS_TOP_K` best signs, best first (ties: lower index first, as argmax)."""
        order = np.argsort(-self._scores(outputs), kind="stable")[:SIGNS_TOP_K]
        return tuple(self.signs[int(i)] for i in order)

    def score(self, truths: Sequence[str], predictions: Sequence[str]) -> dict[str, float | int]:
        correct = np.asarray([t == p for t, p in zip(truths, predictions, strict=True)])
        return {"score": float(correct.mean()), "n_correct": int(correct.sum())}

    def score_with_rankings(
        self, truths: Sequence[str], predictions: Sequence[str], rankings: Sequence[Any]
    ) -> dict[str, Any]:
        details: dict[str, Any] = dict(self.score(truths, predictions))
        in_top = [truth in ranked for truth, ranked in zip(truths, rankings, strict=True)]
        details[f"top{SIGNS_TOP_K}_accuracy"] = float(np.mean(in_top))
        per_sign: dict[str, dict[str, float | int]] = {}
        for sign in sorted(set(truths)):
            hits = [p == sign for t, p in zip(truths, predictions, strict=True) if t == sign]
            per_sign[sign] = {"n": len(hits), "accuracy": float(np.mean(hits))}
        details["per_sign_accuracy"] = per_sign
        return details


def check_signs_signature(model: bytes, n_signs: int, where: str) -> None:
    """The model loads, and its `serving_default` takes float32 `inputs [n_frames, 543, 3]` and
    returns `outputs [n_signs]`: what the asl-signs scorer calls."""
    from signpipe.data.schema import N_POINTS

    details, output = serving_signature(model, where)
    shape = shape_signature(details)
    if details["dtype"] != np.float32 or len(shape) != 3 or shape[1:] != [N_POINTS, 3]:
        if len(shape) == 2:
            raise SignpipeError(
                f"{where}: input {INPUT_NAME!r} is [n_frames, {shape[1]}] columns: a fingerspelling model, which scores "
                f"{FINGERSPELLING} corpora only; an {ISOLATED_SIGNS} corpus needs a model taking float32 "
                f"[n_frames, {N_POINTS}, 3]"
            )
        raise SignpipeError(
            f"{where}: input {INPUT_NAME!r} is {np.dtype(details['dtype']).name} {shape}; expected float32 "
            f"[n_frames, {N_POINTS}, 3] (the x, y, z of every landmark of every frame)"
        )
    if int(np.prod(output["shape"])) != n_signs:
        raise SignpipeError(f"{where}: output {OUTPUT_NAME!r} has shape {list(output['shape'])}; expected [{n_signs}]")


def protocol_for(corpus: Any) -> ScoringProtocol:
    if corpus.kind == FINGERSPELLING:
        return FingerspellingProtocol(corpus.label_map)
    if corpus.kind == ISOLATED_SIGNS:
        return IsolatedSignsProtocol(corpus.label_map)
    raise SignpipeError(f"{corpus.root}: a {corpus.kind} corpus; bundles can be scored on {FINGERSPELLING} and "
                        f"{ISOLATED_SIGNS} corpora")


@dataclass
class EvaluationResult:
    """What `signpipe evaluate` prints (as JSON, without the per-sequence predictions)."""

    task: str
    metric: str
    score: float
    n_sequences: int
    latency_ms: dict[str, float]
    model_bytes: int
    bundle: str
    data: str
    threads: int
    details: dict[str, Any] = field(default_factory=dict)
    n_empty_predictions: int = 0
    interpreter: str = INTERPRETER
    predictions: list[tuple[int, str, str]] = field(default_factory=list)
    """(sequence_id, truth, prediction) per sequence, in corpus order."""
    latencies_ms: list[float] = field(default_factory=list)
    """The signature call's time per sequence (ms), in the order of `predictions` (empty when not
    measured, as in an `EvaluationResult` rebuilt from `evaluation.json`)."""

    @property
    def model_mb(self) -> float:
        return self.model_bytes / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metric": self.metric,
            "score": self.score,
            **self.details,
            "n_sequences": self.n_sequences,
            "n_empty_predictions": self.n_empty_predictions,
            "latency_ms": self.latency_ms,
            "model_bytes": self.model_bytes,
            "model_mb": round(self.model_mb, 3),
            "threads": self.threads,
            "interpreter": self.interpreter,
            "bundle": self.bundle,
            "data": self.data,
        }

    def predictions_csv(self) -> str:
        """sequence_id, truth, prediction (the columns readers rely on, first), then latency_ms
        when every sequence's time was kept."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        timed = len(self.latencies_ms) == len(self.predictions) and bool(self.predictions)
        writer.writerow(["sequence_id", "truth", "prediction", *(["latency_ms"] if timed else [])])
        if timed:
            writer.writerows((*row, f"{ms:.3f}") for row, ms in zip(self.predictions, self.latencies_ms, strict=True))
        else:
            writer.writerows(self.predictions)
        return buffer.getvalue()


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean/max in milliseconds of per-call timings."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise SignpipeError("no timings to summarize (expected at least one call)")
    p50, p95 = np.percentile(ms, [50, 95])
    figures = {"p50": p50, "p95": p95, "mean": ms.mean(), "max": ms.max()}
    return {name: round(float(value), 3) for name, value in figures.items()}


def signature_runner(model: bytes, threads: int = 1):
    """The scorer's call: `Interpreter(model).get_signature_runner("serving_default")`."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be a positive integer, got {threads!r}")
    return Interpreter(model_content=model, num_threads=threads).get_signature_runner(SIGNATURE)


def evaluate_bundle(
    bundle: str | Path | Bundle,
    data: str | Path,
    *,
    threads: int = 1,
    parts: Sequence[str] | None = None,
    limit: int | None = None,
    map_path: str | Path | None = None,
) -> EvaluationResult:
    """Score `bundle` on the corpus at `data` (all parts unless `parts`; the first `limit`
    sequences of the metadata if given) with the competition's protocol."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a positive integer, got {limit!r}")
    corpus = open_corpus(data, map_path=map_path)
    protocol = protocol_for(corpus)
    bundle = bundle if isinstance(bundle, Bundle) else protocol.read_bundle(bundle)
    runner = signature_runner(bundle.model, threads)

    predictions: list[tuple[int, str, str]] = []
    rankings: list[Any] = []
    seconds: list[float] = []
    for item in protocol.inputs(corpus, bundle, parts, limit):
        if not seconds and not predictions:
            runner(inputs=item.inputs)  # warm-up: the first call allocates and plans the graph
        start = time.perf_counter()
        outputs = runner(inputs=item.inputs)
        seconds.append(time.perf_counter() - start)
        scores = np.asarray(outputs[OUTPUT_NAME])
        predictions.append((item.sequence_id, item.truth, protocol.decode(scores)))
        rankings.append(protocol.ranking(scores))
    if not predictions:
        raise SignpipeError(f"{data}: no sequences selected to score (parts={parts!r})")

    details = protocol.score_with_rankings(
        [truth for _, truth, _ in predictions], [p for _, _, p in predictions], rankings
    )
    return EvaluationResult(
        task=protocol.task,
        metric=protocol.metric,
        score=float(details.pop("score")),
        n_sequences=len(predictions),
        latency_ms=latency_summary(seconds),
        model_bytes=bundle.model_bytes,
        bundle=str(bundle.path),
        data=str(data),
        threads=threads,
        details=details,
        n_empty_predictions=sum(1 for _, _, p in predictions if not p),
        predictions=predictions,
        latencies_ms=[round(s * 1e3, 3) for s in seconds],
    )


def write_predictions(result: EvaluationResult, path: str | Path) -> Path:
    """Per-sequence truth and prediction as CSV (written whole or not at all)."""
    atomic_write_text(path, result.predictions_csv())
    return Path(path)


def result_json(result: EvaluationResult, data_fingerprint: str = "") -> str:
    """`result` as the JSON a run keeps (`evaluation.json`), with the evaluation corpus'
    fingerprint (`signpipe.data.fingerprint`) when known: the registry keeps it with the score."""
    values = result.to_dict()
    if data_fingerprint:
        values["data_fingerprint"] = data_fingerprint
    return json.dumps(values, indent=2)
