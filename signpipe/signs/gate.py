"""The gate of isolated-signs bundles: the shared rules plus the asl-signs limit on time.

`signpipe.export.gate.judge` holds the rules both tasks share: `model.tflite` at most
`max_model_mb` (the competition's 40 MB), the accuracy at least `min_accuracy`, and with a champion
at least the champion's accuracy on the same corpus minus `champion_margin`. Time is where the
tasks differ. asl-signs limited inference to about 100 ms per sequence *on average* over the test
set (REFERENCE.md section 3), and its sequences are short (2-272 frames, median 18), so the
figure to judge is the mean over real sequences, which the evaluation already measured: every
sequence of the evaluation corpus timed through the scorer's own call (`evaluate_bundle`, one
warm-up call first). The fingerspelling gate's probe (p95 at a fixed length of synthetic wide rows)
answers another question here, so this gate switches it off and sets `judge`'s mean-latency
threshold instead.

A fixed accuracy floor says little on its own: a model that always names the most common sign of
the evaluation corpus scores that sign's share, which on a small or unbalanced corpus (the real
sample's held-out signers: two signs) can clear any floor set for 250 balanced signs. So the gate
also asks for an accuracy strictly above the evaluation corpus' majority-class baseline (the share
of its most common sign, from its `train.csv`): at or below it, the model has shown nothing a
constant answer would not.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from signpipe.errors import ConfigError
from signpipe.export.bundle import Bundle, read_bundle
from signpipe.export.evaluate import EvaluationResult, evaluate_bundle
from signpipe.export.gate import (
    MEAN_LATENCY_CRITERION,
    Criterion,
    GateMeasurements,
    GateResult,
    GateThresholds,
    UnreadableChampion,
    judge,
    score_champion,
)

LATENCY_CRITERION = MEAN_LATENCY_CRITERION
MAJORITY_CRITERION = "accuracy vs majority baseline"
COMPETITION_MEAN_LATENCY_MS = 100.0


@dataclasses.dataclass(frozen=True)
class SignsGateThresholds:
    max_model_mb: float = 40.0
    max_mean_latency_ms: float | None = COMPETITION_MEAN_LATENCY_MS
    """None (or 0 from a pipeline parameter) skips the latency criterion."""
    min_accuracy: float = 0.0
    champion_margin: float = 0.0

    def __post_init__(self) -> None:
        if self.max_mean_latency_ms is not None and not (math.isfinite(self.max_mean_latency_ms)
                                                         and self.max_mean_latency_ms > 0):
            raise ConfigError(f"gate thresholds: max_mean_latency_ms must be positive, got {self.max_mean_latency_ms}")
        self.shared()  # the shared rules check the rest

    def shared(self) -> GateThresholds:
        """The same thresholds as the shared gate's (its p95 probe switched off)."""
        return GateThresholds(max_model_mb=self.max_model_mb, max_latency_p95_ms=None,
                              max_mean_latency_ms=self.max_mean_latency_ms, min_score=self.min_accuracy,
                              champion_margin=self.champion_margin)


_RESULT_FIELDS = ("task", "metric", "score", "n_sequences", "latency_ms", "model_bytes", "bundle", "data", "threads",
                  "n_empty_predictions", "interpreter")
_DERIVED_FIELDS = ("model_mb",)


def evaluation_from_dict(values: Mapping[str, Any]) -> EvaluationResult:
    """An `EvaluationResult` back from its JSON (`EvaluationResult.to_dict()`, what the evaluate
    step writes): the protocol's details (top-3, per-sign accuracy) are the keys beyond its fields."""
    missing = [name for name in ("task", "metric", "score", "n_sequences", "latency_ms", "model_bytes") if name not in values]
    if missing:
        raise ConfigError(f"evaluation: missing {', '.join(missing)} (expected the evaluation.json of an evaluate step)")
    known = {name: values[name] for name in _RESULT_FIELDS if name in values}
    details = {name: value for name, value in values.items() if name not in _RESULT_FIELDS + _DERIVED_FIELDS}
    known.setdefault("bundle", "")
    known.setdefault("data", "")
    known.setdefault("threads", 1)
    return EvaluationResult(**known, details=details)


@dataclasses.dataclass(frozen=True)
class MajorityBaseline:
    """The accuracy of always answering the evaluation corpus' most common sign."""

    accuracy: float
    sign: str
    n_sequences: int

    @property
    def note(self) -> str:
        return f"always {self.sign!r}: {self.accuracy:.1%} of {self.n_sequences} sequences"


def majority_baseline(data: str | Path) -> MajorityBaseline:
    """The majority-class baseline of the asl-signs corpus at `data`, from its `train.csv`
    (ties go to the first sign in alphabetical order; the share is the same)."""
    from signpipe.data.corpus import open_corpus

    signs = open_corpus(data).metadata["sign"]
    if len(signs) == 0:
        raise ConfigError(f"{data}: the evaluation corpus has no sequences (expected at least one in its train.csv)")
    counts = signs.value_counts()
    top = int(counts.max())
    sign = sorted(str(name) for name, count in counts.items() if count == top)[0]
    return MajorityBaseline(top / len(signs), sign, int(len(signs)))


def judge_signs(
    model_mb: float,
    accuracy: float,
    mean_latency_ms: float,
    thresholds: SignsGateThresholds = SignsGateThresholds(),
    champion_accuracy: float | None = None,
    latency_note: str = "",
    subject: str = "",
    context: dict[str, str] | None = None,
    majority: MajorityBaseline | None = None,
    champion_problem: str = "",
) -> GateResult:
    """The verdict on measured values: `judge`'s criteria, the mean latency after the size, and
    with `majority` (the evaluation corpus' baseline) the accuracy strictly above it, last. A
    `champion_problem` (a champion that could not be scored) fails the comparison with it."""
    measurements = GateMeasurements(model_mb, accuracy, None, champion_accuracy, "accuracy", float(mean_latency_ms),
                                    latency_note, champion_problem)
    result = judge(measurements, thresholds.shared(), subject, context)
    if majority is None:
        return result
    beat = Criterion(MAJORITY_CRITERION, float(accuracy), majority.accuracy, ">", note=majority.note)
    return dataclasses.replace(result, criteria=result.criteria + (beat,))


def run_signs_gate(
    bundle: str | Path | Bundle,
    data: str | Path,
    thresholds: SignsGateThresholds = SignsGateThresholds(),
    champion: str | Path | Bundle | UnreadableChampion | None = None,
    evaluation: EvaluationResult | None = None,
    threads: int = 1,
) -> GateResult:
    """Judge `bundle` on the asl-signs corpus at `data` (scored now unless `evaluation`, an
    `EvaluationResult` of this bundle on `data`, is given) against the thresholds and the corpus'
    majority-class baseline; a champion bundle is scored on the same corpus with the same number
    of threads; one that cannot be read or scored fails the comparison with the reason."""
    bundle = bundle if isinstance(bundle, Bundle) else read_bundle(bundle, check_model=False)
    if evaluation is None:
        evaluation = evaluate_bundle(bundle.path, data, threads=threads)
    latency = evaluation.latency_ms
    context = {
        "evaluation corpus": f"`{data}`, {evaluation.n_sequences} sequences",
        "latency per sequence": f"mean {latency['mean']} ms, p50 {latency['p50']} ms, p95 {latency['p95']} ms, "
                                f"max {latency['max']} ms ({evaluation.threads} thread{'s' if evaluation.threads > 1 else ''})",
    }
    top3 = evaluation.details.get("top3_accuracy")
    if top3 is not None:
        context["top-3 accuracy"] = f"{top3:.4f}"
    champion_accuracy, champion_problem = None, ""
    if champion is not None:
        def score(candidate: str | Path | Bundle) -> float:
            path = candidate.path if isinstance(candidate, Bundle) else Path(candidate)
            return evaluate_bundle(path, data, threads=evaluation.threads).score

        champion_accuracy, champion_problem = score_champion(champion, score)
        if champion_accuracy is not None:
            where = champion.path if isinstance(champion, Bundle) else champion
            context["champion"] = f"`{where}`, accuracy {champion_accuracy:.4f}"
    majority = majority_baseline(data)
    context["majority baseline"] = majority.note
    note = f"{evaluation.n_sequences} sequences, {evaluation.threads} thread{'s' if evaluation.threads > 1 else ''}"
    return judge_signs(bundle.model_mb, evaluation.score, latency["mean"], thresholds, champion_accuracy, note,
                       str(bundle.path), context, majority, champion_problem)
