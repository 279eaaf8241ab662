"""The gate against a champion it cannot read: the registry names a champion whose entry, recorded
evaluation or bundle is missing or damaged, and the gate fails its "vs champion" criterion with
the reason in one line instead of leaving the comparison out (which let publish promote a model
nobody compared with production). With a readable champion the comparison is made as before.

Fast: the bundles are small zips that are never run; where a champion must be scored, the scorer is
replaced by one returning a fixed score."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from kfp.dsl import HTML, Artifact, Dataset, Markdown, Metrics, Model

from components.fingerspelling.gate import gate
from components.signs.gate import gate_signs
from signpipe.export.bundle import Bundle, read_bundle
from signpipe.export.evaluate import EvaluationResult
from signpipe.export.gate import (
    GateMeasurements,
    GateThresholds,
    RegistryChampion,
    UnreadableChampion,
    judge,
    registry_champion,
    run_gate,
)
from signpipe.signs.gate import MAJORITY_CRITERION, MajorityBaseline, SignsGateThresholds, judge_signs
from signpipe.registry import CHAMPION_FILE, LocalModelRegistry
from signpipe.reports import gate_report


def artifact(kind, folder: Path, name: str):
    folder.mkdir(parents=True, exist_ok=True)
    return kind(name=name, uri=str(folder / name))


def fake_bundle(folder: Path, columns: list[str], model: bytes = b"not run here") -> Path:
    """A bundle zip that reads back (`read_bundle(check_model=False)`) but holds no real model."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.tflite", model)
        archive.writestr("inference_args.json", json.dumps({"selected_columns": columns}))
    return path


def evaluation_dict(task: str, metric: str, score: float, bundle: Path, data: Path, n_sequences: int) -> dict:
    return {"task": task, "metric": metric, "score": score, "n_sequences": n_sequences,
            "latency_ms": {"p50": 1.0, "p95": 2.0, "mean": 1.2, "max": 3.0}, "model_bytes": 12, "bundle": str(bundle),
            "data": str(data), "threads": 1}


def fixed_scorer(score: float, seen: list | None = None):
    """A stand-in for `evaluate_bundle` that scores any bundle `score` (after reading it)."""

    def evaluate(bundle, data, **kwargs):
        path = bundle.path if isinstance(bundle, Bundle) else Path(bundle)
        read_bundle(path, check_model=False)
        if seen is not None:
            seen.append(path)
        return EvaluationResult("t", "m", score, 1, {"p50": 1.0, "p95": 1.0, "mean": 1.0, "max": 1.0}, 1, str(path),
                                str(data), 1)

    return evaluate


# --- the rules -------------------------------------------------------------------------------------


def test_an_unreadable_champion_fails_the_comparison_with_its_reason():
    reason = "the registry r names champion 0003, but its bundle /r/versions/0003/model.zip cannot be read (no such file)"
    result = judge(GateMeasurements(model_mb=1.0, score=0.9, champion_problem=reason), GateThresholds(min_score=0.5))
    assert not result.passed
    (failed,) = result.failed
    assert failed.name == "score vs champion" and failed.problem == reason and failed.threshold is None
    report = result.markdown()
    assert report.startswith("# Gate: FAIL")
    assert f"Failed: score vs champion: {reason}." in report.splitlines()
    assert "| score vs champion (champion unreadable) | 0.9 | not measurable | **FAIL** |" in report
    values = json.loads(json.dumps(result.to_dict(), allow_nan=False))  # strict JSON: no NaN stands in for the threshold
    assert values["criteria"][-1]["problem"] == reason and values["criteria"][-1]["passed"] is False
    page = gate_report(values["criteria"], result.passed)
    assert "not measurable" in page and "cannot be read (no such file)" in page and "FAILED" in page


def test_the_signs_gate_fails_the_same_way():
    result = judge_signs(1.0, 0.9, 10.0, SignsGateThresholds(), majority=MajorityBaseline(0.5, "hello", 4),
                         champion_problem="champion 0002 cannot be read")
    assert [c.name for c in result.failed] == ["accuracy vs champion"]
    assert [c.name for c in result.criteria][-1] == MAJORITY_CRITERION
    assert "Failed: accuracy vs champion: champion 0002 cannot be read." in result.markdown()


def test_a_readable_champion_is_compared_as_before():
    within = judge(GateMeasurements(model_mb=1, score=0.79, champion_score=0.80), GateThresholds(champion_margin=0.02))
    assert within.passed and within.criteria[-1].problem == ""
    below = judge(GateMeasurements(model_mb=1, score=0.77, champion_score=0.80), GateThresholds(champion_margin=0.02))
    assert [c.name for c in below.failed] == ["score vs champion"]
    assert "Failed: score vs champion is 0.77, needs >= 0.78." in below.markdown()


# --- reading the champion from a registry ------------------------------------------------------------


def published_registry(tmp_path: Path, score: float = 0.6) -> LocalModelRegistry:
    registry = LocalModelRegistry(tmp_path / "registry")
    registry.publish(fake_bundle(tmp_path / "champion", ["x_face_0"]), {"score": score, "metric": "m"})
    return registry


def test_no_champion_is_no_comparison(tmp_path):
    with registry_champion(LocalModelRegistry(tmp_path / "empty")) as found:
        assert found == RegistryChampion(None) and found.for_gate is None


def test_a_readable_champion_gives_its_bundle(tmp_path):
    registry = published_registry(tmp_path)
    with registry_champion(registry) as found:
        assert found.entry.version == "0001" and found.problem == ""
        assert found.for_gate == Path(found.entry.bundle_uri) and found.for_gate.is_file()


def test_a_champion_whose_bundle_is_gone_is_a_problem_naming_it(tmp_path):
    registry = published_registry(tmp_path)
    bundle = Path(registry.champion().bundle_uri)
    bundle.unlink()
    with registry_champion(registry) as found:
        assert found.entry.version == "0001"
        assert isinstance(found.for_gate, UnreadableChampion)
        assert "names champion 0001" in found.problem and str(bundle) in found.problem and "cannot be read" in found.problem


def test_a_champion_whose_entry_or_evaluation_is_damaged_is_a_problem(tmp_path):
    registry = published_registry(tmp_path)
    entry_file = Path(registry.champion().uri) / "entry.json"
    raw = json.loads(entry_file.read_text())
    entry_file.write_text(json.dumps({**raw, "evaluation": {"metric": "m"}}))  # no score recorded
    with registry_champion(registry) as found:
        assert found.entry is not None and "expected a finite number under 'score'" in found.problem
    entry_file.write_text("{not json")
    with registry_champion(registry) as found:
        assert found.entry is None and "names a champion that cannot be read" in found.problem
        assert "unreadable registry entry" in found.problem
    (registry.root / CHAMPION_FILE).write_text(json.dumps({"version": "0009"}))
    with registry_champion(registry) as found:
        assert "0009" in found.problem


# --- the gate steps ---------------------------------------------------------------------------------


def gate_step_artifacts(tmp_path: Path, folder: str, columns: list[str], task: str, metric: str, score: float,
                        corpus: Path, n_sequences: int):
    """A fake bundle, its evaluation artifact and the gate step's output artifacts, under `folder`."""
    bundle = artifact(Model, tmp_path / folder, "bundle")
    fake_bundle(Path(bundle.path), columns)
    evaluation = artifact(Artifact, tmp_path / folder, "evaluation")
    Path(evaluation.path).mkdir()
    (Path(evaluation.path) / "evaluation.json").write_text(json.dumps(evaluation_dict(
        task, metric, score, Path(bundle.path) / "model.zip", corpus, n_sequences)))
    outputs = {name: artifact(kind, tmp_path / folder, name) for name, kind in (
        ("verdict", Artifact), ("report", HTML), ("report_markdown", Markdown), ("metrics", Metrics))}
    return bundle, evaluation, outputs


def signs_gate_run(tmp_path: Path, corpus: Path, registry: Path, folder: str, accuracy: float = 0.9, **thresholds):
    bundle, evaluation, outputs = gate_step_artifacts(tmp_path, folder, ["x", "y", "z"], "isolated_signs", "accuracy",
                                                      accuracy, corpus, 6)
    settings = {"min_accuracy": 0.0, "max_model_mb": 40.0, "max_mean_latency_ms": 100.0, "champion_margin": 0.0, **thresholds}
    passed = gate_signs.python_func(bundle=bundle, evaluation=evaluation, eval_corpus=Dataset(name="c", uri=str(corpus)),
                                    registry=str(registry), registry_storage="", **settings, **outputs)
    verdict = json.loads(Path(outputs["verdict"].path).read_text())
    return passed, verdict, outputs


def test_signs_gate_step_fails_loudly_on_a_champion_it_cannot_read(signs_corpus, tmp_path, monkeypatch):
    registry = LocalModelRegistry(tmp_path / "registry")
    champion = registry.publish(fake_bundle(tmp_path / "old", ["x", "y", "z"]), {"score": 0.5, "metric": "accuracy"})
    seen: list[Path] = []
    monkeypatch.setattr("signpipe.signs.gate.evaluate_bundle", fixed_scorer(0.85, seen))

    passed, verdict, _ = signs_gate_run(tmp_path, signs_corpus.root, registry.root, "readable", accuracy=0.9)
    assert passed and seen == [Path(champion.bundle_uri)]
    compared = next(c for c in verdict["criteria"] if c["name"] == "accuracy vs champion")
    assert compared["threshold"] == pytest.approx(0.85) and compared["passed"]
    passed, verdict, _ = signs_gate_run(tmp_path, signs_corpus.root, registry.root, "worse", accuracy=0.8)
    assert not passed and [c["name"] for c in verdict["criteria"] if not c["passed"]] == ["accuracy vs champion"]

    shutil.rmtree(champion.uri)  # the version folder is gone, champion.json still names it
    passed, verdict, outputs = signs_gate_run(tmp_path, signs_corpus.root, registry.root, "gone", accuracy=0.9)
    assert not passed
    assert outputs["verdict"].metadata["failed"] == ["accuracy vs champion"]
    (failed,) = [c for c in verdict["criteria"] if not c["passed"]]
    assert "names a champion that cannot be read" in failed["problem"] and "0001" in failed["problem"]
    report = Path(outputs["report_markdown"].path).read_text()
    assert report.startswith("# Gate: FAIL")
    assert sum(line.startswith("Failed: accuracy vs champion: the registry") for line in report.splitlines()) == 1
    assert "cannot be read" in Path(outputs["report"].path).read_text()


def test_fingerspelling_gate_step_fails_loudly_on_a_damaged_champion_bundle(fingerspelling_corpus, tmp_path, monkeypatch):
    corpus = fingerspelling_corpus.root
    monkeypatch.setattr("signpipe.export.evaluate.FingerspellingProtocol.read_bundle",
                        lambda self, path: read_bundle(path, check_model=False))  # the fake zips hold no model to check
    monkeypatch.setattr("signpipe.export.evaluate.evaluate_bundle", fixed_scorer(0.4))
    registry = LocalModelRegistry(tmp_path / "registry")
    champion = registry.publish(fake_bundle(tmp_path / "old", ["x_face_0"]), {"score": 0.4, "metric": "normalized_levenshtein"})

    def run(folder: str, score: float):
        bundle, evaluation, outputs = gate_step_artifacts(tmp_path, folder, ["x_face_0"], "fingerspelling",
                                                          "normalized_levenshtein", score, corpus, 25)
        passed = gate.python_func(bundle=bundle, evaluation=evaluation, eval_corpus=Dataset(name="c", uri=str(corpus)),
                                  registry=str(registry.root), registry_storage="", min_score=0.0, max_model_mb=40.0,
                                  max_latency_p95_ms=0.0, latency_frames=16, champion_margin=0.0, **outputs)
        return passed, json.loads(Path(outputs["verdict"].path).read_text()), outputs

    passed, verdict, _ = run("readable", 0.45)
    assert passed and verdict["champion"]["version"] == "0001"
    assert next(c for c in verdict["criteria"] if c["name"] == "normalized_levenshtein vs champion")["threshold"] == 0.4
    assert not run("worse", 0.35)[0]

    Path(champion.bundle_uri).write_bytes(b"truncated upload")  # not a zip any more
    passed, verdict, outputs = run("damaged", 0.45)
    assert not passed and outputs["verdict"].metadata["failed"] == ["normalized_levenshtein vs champion"]
    assert outputs["verdict"].metadata["champion_version"] == "0001"
    (failed,) = [c for c in verdict["criteria"] if not c["passed"]]
    assert f"the champion bundle {champion.bundle_uri} cannot be scored" in failed["problem"]
    assert "not a readable zip" in failed["problem"]


def test_run_gate_takes_an_unreadable_champion_and_a_missing_file(fingerspelling_corpus, tmp_path):
    bundle = Bundle(tmp_path / "candidate.zip", b"x" * 1000, ("x_face_0",))
    evaluation = EvaluationResult("fingerspelling", "normalized_levenshtein", 0.5, 25,
                                  {"p50": 1.0, "p95": 2.0, "mean": 1.0, "max": 2.0}, 1000, "c.zip", "d", 1)
    for champion, reason in ((UnreadableChampion("champion 0004 cannot be read"), "champion 0004 cannot be read"),
                             (tmp_path / "missing.zip", "bundle not found")):
        result = run_gate(bundle, fingerspelling_corpus.root, GateThresholds(), champion=champion, evaluation=evaluation)
        assert not result.passed and [c.name for c in result.failed] == ["normalized_levenshtein vs champion"]
        assert reason in result.failed[0].problem
