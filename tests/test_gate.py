"""The gate: rules on measurements, then a real bundle measured and judged, through Python and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from signpipe.cli import main
from signpipe.data.synth import generate_fingerspelling, planted_y_scale
from signpipe.errors import ConfigError, SignpipeError
from signpipe.export.evaluate import evaluate_bundle
from signpipe.export.gate import GateMeasurements, GateThresholds, judge, measure_latency, run_gate
from signpipe.fingerspelling.export import export_model
from signpipe.fingerspelling.model import build_ctc_model, model_config

# --- rules -----------------------------------------------------------------------------------------


def test_every_criterion_is_listed_with_its_value_and_threshold() -> None:
    measured = GateMeasurements(model_mb=36.5, score=0.81, latency_p95_ms=120.0, champion_score=0.80,
                                metric="normalized_levenshtein")  # fmt: skip
    thresholds = GateThresholds(max_model_mb=40, max_latency_p95_ms=150, latency_frames=384, min_score=0.7, champion_margin=0.005)
    result = judge(measured, thresholds, subject="candidate.zip", context={"evaluation corpus": "`eval/`"})
    assert result.passed
    assert [c.name for c in result.criteria] == [
        "model size", "latency p95", "normalized_levenshtein", "normalized_levenshtein vs champion",
    ]  # fmt: skip
    assert [c.threshold for c in result.criteria] == [40, 150, 0.7, pytest.approx(0.795)]
    report = result.markdown()
    assert report.startswith("# Gate: PASS")
    assert "| model size | 36.5 MB | <= 40 MB | pass |" in report
    assert "| latency p95 (384 frames, 1 thread) | 120 ms | <= 150 ms | pass |" in report
    assert "champion 0.8 - margin 0.005" in report
    assert "- evaluation corpus: `eval/`" in report
    assert json.loads(json.dumps(result.to_dict()))["passed"] is True


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"model_mb": 40.01}, "model size"),
        ({"latency_p95_ms": 150.5}, "latency p95"),
        ({"score": 0.69, "champion_score": 0.6}, "score"),
        ({"champion_score": 0.82}, "score vs champion"),  # 0.81 < 0.82 - 0.005
    ],
)
def test_one_missed_threshold_fails_the_gate_and_says_which(change: dict, failing: str) -> None:
    values = {"model_mb": 36.5, "score": 0.81, "latency_p95_ms": 120.0, "champion_score": 0.80, **change}
    thresholds = GateThresholds(max_latency_p95_ms=150, min_score=0.7, champion_margin=0.005)
    result = judge(GateMeasurements(**values), thresholds)
    assert not result.passed
    assert [c.name for c in result.failed] == [failing]
    report = result.markdown()
    assert report.startswith("# Gate: FAIL")
    assert f"Failed: {failing} is" in report
    assert report.count("**FAIL**") == 1


def test_the_champion_margin_is_a_tolerance_and_latency_is_optional() -> None:
    within = judge(GateMeasurements(model_mb=10, score=0.795, champion_score=0.80), GateThresholds(champion_margin=0.005))
    assert within.passed and "latency p95" not in [c.name for c in within.criteria]
    with pytest.raises(SignpipeError, match="no latency was measured"):
        judge(GateMeasurements(model_mb=10, score=0.9), GateThresholds(max_latency_p95_ms=50))
    with pytest.raises(SignpipeError, match="finite"):
        judge(GateMeasurements(model_mb=10, score=float("nan")))


@pytest.mark.parametrize(
    "values",
    [{"max_model_mb": 0}, {"max_latency_p95_ms": -1.0}, {"latency_frames": 0}, {"latency_calls": 1},
     {"champion_margin": -0.1}, {"min_score": float("inf")}],
)  # fmt: skip
def test_nonsensical_thresholds_are_refused(values: dict) -> None:
    with pytest.raises(ConfigError, match="gate thresholds"):
        GateThresholds(**values)


# --- a real bundle ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gate") / "corpus"
    generate_fingerspelling(root, 12, seed=5)
    return root


@pytest.fixture(scope="module")
def bundle(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = build_ctc_model(model_config("tiny"), rngs=nnx.Rngs(params=1, dropout=1))
    out = tmp_path_factory.mktemp("gate_bundle") / "candidate.zip"
    return export_model(model, planted_y_scale(corpus_dir), out, quantize="none", graph="dynamic").path


def test_latency_probe_times_the_signature_call(bundle: Path) -> None:
    from signpipe.export.bundle import read_bundle

    latency = measure_latency(read_bundle(bundle).model, 288, n_frames=40, calls=6)
    assert 0 < latency["p50"] <= latency["p95"] <= latency["max"]


def test_tight_thresholds_fail_with_a_clear_report(bundle: Path, corpus_dir: Path) -> None:
    thresholds = GateThresholds(max_model_mb=0.05, max_latency_p95_ms=0.001, latency_frames=32, latency_calls=4, min_score=0.99)
    evaluation = evaluate_bundle(bundle, corpus_dir)
    result = run_gate(bundle, corpus_dir, thresholds, champion=bundle, evaluation=evaluation)
    assert not result.passed
    failed = {c.name for c in result.failed}
    assert failed == {"model size", "latency p95", "normalized_levenshtein"}
    assert "normalized_levenshtein vs champion" in {c.name for c in result.criteria if c.passed}  # it is its own champion
    report = result.markdown()
    assert report.startswith("# Gate: FAIL")
    size = next(c for c in result.criteria if c.name == "model size")
    assert size.measured == pytest.approx(evaluation.model_mb)
    assert f"| model size | {size.measured:.4g} MB | <= 0.05 MB | **FAIL** |" in report
    assert "latency probe: 4 calls at 32/31 frames" in report
    assert "12 sequences" in report


def test_gate_command_exits_1_on_fail_and_0_on_pass(bundle: Path, corpus_dir: Path, tmp_path: Path, capsys) -> None:
    report = tmp_path / "gate.md"
    result_json = tmp_path / "gate.json"
    common = ["gate", "--model", str(bundle), "--data", str(corpus_dir), "--report", str(report), "--json-out", str(result_json)]
    assert main([*common, "--max-mb", "0.05", "--min-score", "-1000"]) == 1
    printed = capsys.readouterr().out
    assert printed.startswith("# Gate: FAIL") and printed == report.read_text()
    assert json.loads(result_json.read_text())["passed"] is False

    assert main([*common, "--min-score", "-1000", "--max-latency-ms", "60000", "--latency-frames", "16"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Gate: PASS")
    assert "latency p95 (16 frames, 1 thread)" in printed


def test_mean_latency_criterion_is_judged_when_set():
    thresholds = GateThresholds(max_mean_latency_ms=100.0)
    fast = judge(GateMeasurements(model_mb=5.0, score=0.9, metric="accuracy", latency_mean_ms=12.5), thresholds)
    slow = judge(GateMeasurements(model_mb=5.0, score=0.9, metric="accuracy", latency_mean_ms=140.0), thresholds)
    assert fast.passed and not slow.passed
    assert [c.name for c in slow.failed] == ["mean latency per sequence"]
    assert "mean latency per sequence is 140 ms, needs <= 100 ms" in slow.markdown()
    with pytest.raises(SignpipeError, match="no mean latency was measured"):
        judge(GateMeasurements(model_mb=5.0, score=0.9), thresholds)
    with pytest.raises(ConfigError, match="max_mean_latency_ms must be positive"):
        GateThresholds(max_mean_latency_ms=0)


def test_latency_probe_of_a_bundle_reading_whole_landmark_frames(tmp_path):
    """An isolated-signs bundle takes [frames, 543, 3] and returns one score row: the probe feeds
    it whole frames (one hand missing per frame) and times it."""
    import tensorflow as tf

    from signpipe.export.gate import probe_landmarks

    @tf.function(input_signature=[tf.TensorSpec([None, 543, 3], tf.float32, name="inputs")])
    def serve(inputs):
        clean = tf.where(tf.math.is_nan(inputs), tf.zeros_like(inputs), inputs)
        return {"outputs": tf.nn.softmax(tf.reduce_mean(tf.reshape(clean, [-1, 543 * 3]), axis=0)[:250])}

    module = tf.Module()
    module.serve = serve
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], module)
    model = converter.convert()
    frames = probe_landmarks(30)
    assert frames.shape == (30, 543, 3)
    hands = np.isnan(frames[:, 468:489, 0]).all(1) ^ np.isnan(frames[:, 522:543, 0]).all(1)
    assert hands.all(), "exactly one hand missing in every frame"
    latency = measure_latency(model, None, n_frames=30, calls=4)
    assert set(latency) == {"p50", "p95", "mean", "max"} and latency["p95"] > 0
