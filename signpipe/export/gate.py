"""The gate: a bundle is published only if it fits the competition's limits and beats the bar.

Criteria, each with its measured value and threshold in the report:
- size: `model.tflite` at most `max_model_mb` MB (10^6 bytes; the competition's limit is 40 MB).
- latency: p95 of the signature call at `latency_frames` frames on `latency_threads` threads, at
  most `max_latency_p95_ms` (checked when set). Consecutive probe calls alternate between
  `latency_frames` and one frame fewer, because the scorer's sequences differ in length and a
  graph with a symbolic time axis pays for every change of length; timing one repeated length
  would hide that cost.
- mean latency (checked when `max_mean_latency_ms` is set): the mean signature call per sequence
  over the evaluation corpus, the asl-signs competition's own limit (100 ms), measured while
  scoring.
- score: the protocol's score (`signpipe.export.evaluate`) on the evaluation corpus at least
  `min_score`; with a champion bundle, also at least the champion's score on the same corpus
  minus `champion_margin`.
- a champion that cannot be read: when the registry names a champion whose entry, evaluation or
  bundle cannot be read or scored, the "vs champion" criterion fails and says why. Dropping the
  comparison would let publish promote a model nobody compared with production.

`judge` holds the rules and works on measurements alone (tests and pipelines that measured
already); `run_gate` measures a bundle and then judges it. The report is Markdown, so the
pipeline can show it as an artifact and a person can read why a model was held back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from signpipe.errors import ConfigError, SignpipeError
from signpipe.export.bundle import OUTPUT_NAME, Bundle

DEFAULT_MAX_MODEL_MB = 40.0
MEAN_LATENCY_CRITERION = "mean latency per sequence"


@dataclasses.dataclass(frozen=True)
class GateThresholds:
    max_model_mb: float = DEFAULT_MAX_MODEL_MB
    max_latency_p95_ms: float | None = None
    max_mean_latency_ms: float | None = None
    latency_frames: int = 128
    latency_threads: int = 1
    latency_calls: int = 40
    min_score: float = 0.0
    champion_margin: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if not self.max_model_mb > 0:
            problems.append(f"max_model_mb must be positive, got {self.max_model_mb}")
        for name in ("max_latency_p95_ms", "max_mean_latency_ms"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                problems.append(f"{name} must be positive, got {value}")
        for name in ("latency_frames", "latency_threads"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.latency_calls < 2:
            problems.append(f"latency_calls must be at least 2 (a p95 of one call means nothing), got {self.latency_calls}")
        if not math.isfinite(self.min_score):
            problems.append(f"min_score must be a finite number, got {self.min_score}")
        if not (math.isfinite(self.champion_margin) and self.champion_margin >= 0):
            problems.append(f"champion_margin must be a non-negative number, got {self.champion_margin}")
        if problems:
            raise ConfigError("gate thresholds: " + "; ".join(problems))


PLUMBING_NOTE = "a check that every step runs, not a model: this score means nothing"


def with_note(result: GateResult, label: str, note: str) -> GateResult:
    """`result` whose report opens with `label: note` (above the corpus and champion facts)."""
    return dataclasses.replace(result, context=((label, note),) + result.context)


def with_plumbing_note(result: GateResult) -> GateResult:
    """`result` whose report opens by saying it judged a plumbing run (`PipelinePreset.plumbing`),
    whose score means nothing."""
    return with_note(result, "plumbing preset", PLUMBING_NOTE)


SHARED_SIGNERS_LABEL = "WARNING: signers seen in training"


def shared_signers_note(n_shared: int) -> str:
    """What the gate's report and a run's summary say when the evaluation corpus shares signers
    with the training corpus (allowed only by an explicit flag)."""
    return (f"the evaluation corpus shares {n_shared} participant(s) with the training corpus (allowed by "
            "allow_shared_participants): the score includes signers the model trained on, so it overstates how the "
            "model reads new signers")


def with_lineage(result: GateResult, eval_corpus_fingerprint: str, shared_participants: int) -> GateResult:
    """`result` with the evaluation corpus' fingerprint among its facts and, first, a warning when
    the evaluation corpus shares `shared_participants` signers with the training corpus."""
    if eval_corpus_fingerprint:
        result = dataclasses.replace(result, context=result.context + (("evaluation corpus fingerprint",
                                                                         eval_corpus_fingerprint),))
    if shared_participants:
        result = with_note(result, SHARED_SIGNERS_LABEL, shared_signers_note(shared_participants))
    return result


@dataclasses.dataclass(frozen=True)
class UnreadableChampion:
    """A champion the registry names but the gate cannot score: `run_gate` fails its "vs
    champion" criterion with `reason` instead of leaving the comparison out."""

    reason: str


@dataclasses.dataclass(frozen=True)
class GateMeasurements:
    """What the gate judges; `latency_p95_ms` and `champion_score` may be absent."""

    model_mb: float
    score: float
    latency_p95_ms: float | None = None
    champion_score: float | None = None
    metric: str = "score"
    latency_mean_ms: float | None = None
    latency_mean_note: str = "evaluation corpus"
    """Where the mean latency was measured, shown beside it in the report."""
    champion_problem: str = ""
    """Why a champion the registry names could not be scored (the comparison then fails)."""


@dataclasses.dataclass(frozen=True)
class Criterion:
    name: str
    measured: float
    threshold: float | None
    """None only with a `problem`: there was nothing to compare with."""
    comparison: str  # "<=", ">=" or ">" (strictly above: a baseline to beat, not a floor to reach)
    unit: str = ""
    note: str = ""
    problem: str = ""
    """Why the criterion could not be checked; such a criterion fails."""

    @property
    def passed(self) -> bool:
        if self.problem or self.threshold is None:
            return False
        if self.comparison == "<=":
            return self.measured <= self.threshold
        if self.comparison == ">":
            return self.measured > self.threshold
        return self.measured >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed}


@dataclasses.dataclass(frozen=True)
class GateResult:
    criteria: tuple[Criterion, ...]
    thresholds: GateThresholds
    subject: str = ""
    context: tuple[tuple[str, str], ...] = ()
    """Facts shown under the table (corpus, champion, latency settings), as (label, value)."""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria)

    @property
    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def markdown(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [f"# Gate: {verdict}", ""]
        if self.subject:
            lines += [f"Bundle: `{self.subject}`", ""]
        lines += ["| criterion | measured | threshold | result |", "|---|---|---|---|"]
        for c in self.criteria:
            unit = f" {c.unit}" if c.unit else ""
            result = "pass" if c.passed else "**FAIL**"
            name = f"{c.name} ({c.note})" if c.note else c.name
            threshold = f"{c.comparison} {_number(c.threshold)}{unit}" if c.threshold is not None else "not measurable"
            lines.append(f"| {name} | {_number(c.measured)}{unit} | {threshold} | {result} |")
        if self.failed:
            lines += ["", "Failed: " + "; ".join(_failure(c) for c in self.failed) + "."]
        if self.context:
            lines += [""] + [f"- {label}: {value}" for label, value in self.context]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "subject": self.subject,
            "criteria": [c.to_dict() for c in self.criteria],
            "thresholds": dataclasses.asdict(self.thresholds),
            "context": dict(self.context),
        }


def _number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _failure(c: Criterion) -> str:
    """One failed criterion as the report's closing line names it."""
    if c.problem:
        return f"{c.name}: {c.problem}"
    unit = f" {c.unit}" if c.unit else ""
    return f"{c.name} is {_number(c.measured)}{unit}, needs {c.comparison} {_number(c.threshold)}{unit}"


def judge(
    measurements: GateMeasurements,
    thresholds: GateThresholds = GateThresholds(),
    subject: str = "",
    context: Mapping[str, str] | None = None,
) -> GateResult:
    """Apply the thresholds to measured values; one criterion per rule that applies."""
    criteria = [Criterion("model size", measurements.model_mb, thresholds.max_model_mb, "<=", "MB")]
    if thresholds.max_latency_p95_ms is not None:
        if measurements.latency_p95_ms is None:
            raise SignpipeError("gate: a latency threshold is set but no latency was measured")
        criteria.append(
            Criterion(
                "latency p95",
                measurements.latency_p95_ms,
                thresholds.max_latency_p95_ms,
                "<=",
                "ms",
                f"{thresholds.latency_frames} frames, {thresholds.latency_threads} thread"
                + ("s" if thresholds.latency_threads > 1 else ""),
            )
        )
    if thresholds.max_mean_latency_ms is not None:
        if measurements.latency_mean_ms is None:
            raise SignpipeError("gate: a mean latency threshold is set but no mean latency was measured")
        criteria.append(Criterion(MEAN_LATENCY_CRITERION, measurements.latency_mean_ms, thresholds.max_mean_latency_ms,
                                  "<=", "ms", measurements.latency_mean_note))
    criteria.append(Criterion(f"{measurements.metric}", measurements.score, thresholds.min_score, ">="))
    if measurements.champion_problem:
        criteria.append(Criterion(f"{measurements.metric} vs champion", measurements.score, None, ">=",
                                  note="champion unreadable", problem=measurements.champion_problem))
    elif measurements.champion_score is not None:
        criteria.append(
            Criterion(
                f"{measurements.metric} vs champion",
                measurements.score,
                measurements.champion_score - thresholds.champion_margin,
                ">=",
                note=f"champion {_number(measurements.champion_score)} - margin {_number(thresholds.champion_margin)}",
            )
        )
    for c in criteria:
        if not math.isfinite(c.measured):
            raise SignpipeError(f"gate: {c.name} measured as {c.measured} (expected a finite number)")
    return GateResult(tuple(criteria), thresholds, subject, tuple((context or {}).items()))


def probe_inputs(n_columns: int, n_frames: int, seed: int = 0) -> np.ndarray:
    """Landmark-like rows `[n_frames, n_columns]`: coordinates near the image centre, the first
    third of each axis block (a hand's worth) NaN in some frames, as MediaPipe leaves them."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(0.5, 0.1, size=(n_frames, n_columns)).astype(np.float32)
    per_axis = n_columns // 3
    missing = rng.random(n_frames) < 0.4
    for axis in range(3):
        rows[np.ix_(missing, np.arange(axis * per_axis, axis * per_axis + per_axis // 4))] = np.nan
    return rows


def probe_landmarks(n_frames: int, seed: int = 0) -> np.ndarray:
    """Raw frames `[n_frames, 543, 3]` for a bundle that reads whole landmark frames (isolated
    signs): coordinates near the image centre, one hand missing (NaN) in each frame, as in the
    corpus where one hand signs."""
    from signpipe.data.schema import LEFT_HAND, N_POINTS, RIGHT_HAND

    rng = np.random.default_rng(seed)
    frames = rng.normal(0.5, 0.1, size=(n_frames, N_POINTS, 3)).astype(np.float32)
    left = rng.random(n_frames) < 0.5
    frames[np.ix_(left, np.asarray(LEFT_HAND))] = np.nan
    frames[np.ix_(~left, np.asarray(RIGHT_HAND))] = np.nan
    return frames


def measure_latency(
    model: bytes, n_columns: int | None, n_frames: int, threads: int = 1, calls: int = 40
) -> dict[str, float]:
    """p50/p95/mean/max (ms) of `calls` signature calls alternating `n_frames` and
    `n_frames - 1` frames (see the module docstring), after one warm-up call. `n_columns` is the
    width of a fingerspelling bundle's rows (one output row per frame); None probes a bundle that
    takes whole `[frames, 543, 3]` landmarks (isolated signs)."""
    import time

    from signpipe.export.evaluate import latency_summary, signature_runner

    runner = signature_runner(model, threads)
    longer = probe_landmarks(n_frames) if n_columns is None else probe_inputs(n_columns, n_frames)
    inputs = [longer, longer[: max(n_frames - 1, 1)]]
    outputs = runner(inputs=longer)[OUTPUT_NAME]
    if n_columns is not None and outputs.shape[0] != n_frames:
        raise SignpipeError(f"latency probe: {n_frames} frames in, {outputs.shape[0]} output rows (expected one per frame)")
    seconds = []
    for k in range(calls):
        start = time.perf_counter()
        runner(inputs=inputs[k % 2])
        seconds.append(time.perf_counter() - start)
    return latency_summary(seconds)


CHAMPION_READ_ERRORS = (SignpipeError, OSError, ValueError, RuntimeError, KeyError)
"""What reading or scoring a champion bundle raises when the bundle is missing, damaged, or not
one the evaluation corpus' protocol can call."""


def score_champion(champion: str | Path | Bundle | UnreadableChampion, score: Any) -> tuple[float | None, str]:
    """(the champion's score, "") from `score(champion)`, or (None, why it could not be scored):
    the gate then fails its comparison instead of dropping it."""
    if isinstance(champion, UnreadableChampion):
        return None, champion.reason
    where = champion.path if isinstance(champion, Bundle) else champion
    try:
        return float(score(champion)), ""
    except CHAMPION_READ_ERRORS as exc:
        return None, f"the champion bundle {where} cannot be scored ({exc}); the comparison with production cannot be made"


@dataclasses.dataclass(frozen=True)
class RegistryChampion:
    """The champion a gate compares with, as read from a model registry: its entry (None when the
    registry has none, or names one whose entry cannot be read), a local path to its bundle, or
    the `problem` that keeps it from being read."""

    entry: Any | None
    bundle: Path | None = None
    problem: str = ""

    @property
    def for_gate(self) -> Path | UnreadableChampion | None:
        """What `run_gate` and `run_signs_gate` take as `champion`."""
        return UnreadableChampion(self.problem) if self.problem else self.bundle


@contextlib.contextmanager
def registry_champion(registry: Any) -> Iterator[RegistryChampion]:
    """The champion of `registry` (`signpipe.registry`), its bundle made local for the time of the
    block (downloaded into a scratch folder when it is in Cloud Storage and not mounted). A champion
    the registry names but whose entry, recorded evaluation or bundle cannot be read comes back as
    a `problem`, never as "no champion"."""
    from signpipe.registry import score_of

    with tempfile.TemporaryDirectory(prefix="signpipe-champion-") as scratch:
        try:
            entry = registry.champion()
        except SignpipeError as exc:
            found = RegistryChampion(None, problem=f"the registry {registry.uri} names a champion that cannot be read "
                                                   f"({exc}); the comparison with production cannot be made")
        else:
            found = RegistryChampion(None)
            if entry is not None:
                try:
                    score_of(entry.evaluation, f"its recorded evaluation ({entry.uri})")
                    found = RegistryChampion(entry, registry.local_bundle(entry, Path(scratch)))
                except SignpipeError as exc:
                    found = RegistryChampion(entry, problem=f"the registry {registry.uri} names champion {entry.version}, "
                                                            f"but {exc}; the comparison with production cannot be made")
        yield found


def run_gate(
    bundle: str | Path | Bundle,
    data: str | Path,
    thresholds: GateThresholds = GateThresholds(),
    champion: str | Path | Bundle | UnreadableChampion | None = None,
    evaluation: Any | None = None,
) -> GateResult:
    """Measure `bundle` (size, latency, score on the corpus at `data`) and judge it; the champion,
    when given, is scored on the same corpus. A ready `evaluation` (an `EvaluationResult` of this
    bundle on `data`) saves scoring it again. A champion that cannot be read or scored (or an
    `UnreadableChampion`) fails the "vs champion" criterion with the reason."""
    from signpipe.data.corpus import open_corpus
    from signpipe.export.evaluate import IsolatedSignsProtocol, evaluate_bundle, protocol_for

    protocol = protocol_for(open_corpus(data))
    bundle = bundle if isinstance(bundle, Bundle) else protocol.read_bundle(bundle)
    whole_frames = isinstance(protocol, IsolatedSignsProtocol)
    if evaluation is None:
        evaluation = evaluate_bundle(bundle, data, threads=thresholds.latency_threads)
    context = {
        "evaluation corpus": f"`{data}`, {evaluation.n_sequences} sequences",
        "corpus latency (all sequences)": f"p50 {evaluation.latency_ms['p50']} ms, p95 {evaluation.latency_ms['p95']} ms",
    }
    latency_p95 = None
    if thresholds.max_latency_p95_ms is not None:
        latency = measure_latency(
            bundle.model,
            None if whole_frames else len(bundle.selected_columns),
            thresholds.latency_frames,
            thresholds.latency_threads,
            thresholds.latency_calls,
        )
        latency_p95 = latency["p95"]
        context["latency probe"] = (
            f"{thresholds.latency_calls} calls at {thresholds.latency_frames}/{thresholds.latency_frames - 1} frames, "
            f"p50 {latency['p50']} ms, p95 {latency['p95']} ms"
        )
    champion_score, champion_problem = None, ""
    if champion is not None:
        def score(candidate: str | Path | Bundle) -> float:
            read = candidate if isinstance(candidate, Bundle) else protocol.read_bundle(candidate)
            return evaluate_bundle(read, data, threads=thresholds.latency_threads).score

        champion_score, champion_problem = score_champion(champion, score)
        if champion_score is not None:
            where = champion.path if isinstance(champion, Bundle) else champion
            context["champion"] = f"`{where}`, {evaluation.metric} {champion_score:.4f}"
    measurements = GateMeasurements(bundle.model_mb, evaluation.score, latency_p95, champion_score, evaluation.metric,
                                    evaluation.latency_ms.get("mean"), champion_problem=champion_problem)
    return judge(measurements, thresholds, str(bundle.path), context)
