"""The local model registry: versioned folders, an atomic champion pointer, and the rule that a
worse model never replaces a better champion, even when runs race."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from signpipe.errors import ConfigError, SignpipeError
from signpipe.registry import (
    CHAMPION_FILE,
    LocalModelRegistry,
    RegistryEntry,
    VertexModelRegistry,
    beats_champion,
    may_promote,
    open_registry,
    vertex_label,
)


def make_bundle(folder: Path, content: bytes = b"zip bytes") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    bundle = folder / "model.zip"
    bundle.write_bytes(content)
    return bundle


def evaluation(score: float) -> dict:
    return {"score": score, "metric": "normalized_levenshtein", "n_sequences": 40, "latency_ms": {"p50": 1.0, "p95": 2.0}}


def test_first_publish_becomes_champion_and_keeps_files(tmp_path):
    registry = LocalModelRegistry(tmp_path / "registry")
    assert registry.champion() is None and registry.versions() == []
    entry = registry.publish(make_bundle(tmp_path / "a", b"first"), evaluation(0.4), {"preset": "smoke"})
    assert entry.champion and entry.version == "0001"
    assert Path(entry.bundle_uri).read_bytes() == b"first"
    assert json.loads((Path(entry.uri) / "evaluation.json").read_text())["score"] == 0.4
    champion = registry.champion()
    assert champion == entry
    assert champion.metadata == {"preset": "smoke"}
    assert json.loads((tmp_path / "registry" / CHAMPION_FILE).read_text())["version"] == "0001"


def test_better_or_equal_model_replaces_champion_worse_does_not(tmp_path):
    registry = LocalModelRegistry(tmp_path / "registry")
    first = registry.publish(make_bundle(tmp_path / "a"), evaluation(0.5), expected_champion=None)
    better = registry.publish(make_bundle(tmp_path / "b"), evaluation(0.6), expected_champion="0001")
    assert better.champion and registry.champion().version == better.version == "0002"
    # a run that saw no champion at its gate but loses to the one promoted meanwhile is stored, not promoted
    worse = registry.publish(make_bundle(tmp_path / "c"), evaluation(0.55), expected_champion=None)
    assert not worse.champion
    assert registry.champion().version == "0002"
    versions = registry.versions()
    assert [v.version for v in versions] == ["0001", "0002", "0003"]
    assert [v.champion for v in versions] == [False, True, False]
    assert first.version == "0001"


def test_gate_verdict_against_the_current_champion_promotes(tmp_path):
    """The gate judged the new model against champion 0001 on the same corpus: that verdict holds
    even if the recorded scores (possibly from another corpus) say otherwise."""
    registry = LocalModelRegistry(tmp_path / "registry")
    registry.publish(make_bundle(tmp_path / "a"), evaluation(0.9))
    entry = registry.publish(make_bundle(tmp_path / "b"), evaluation(0.7), expected_champion="0001")
    assert entry.champion and registry.champion().version == "0002"


def test_champion_margin_lets_a_slightly_worse_model_through(tmp_path):
    registry = LocalModelRegistry(tmp_path / "registry")
    registry.publish(make_bundle(tmp_path / "a"), evaluation(0.60))
    assert not registry.publish(make_bundle(tmp_path / "b"), evaluation(0.58), expected_champion=None).champion
    assert registry.publish(make_bundle(tmp_path / "c"), evaluation(0.58), expected_champion=None, champion_margin=0.05).champion


def test_rules_without_a_registry():
    champion = RegistryEntry("0003", "/r/versions/0003", "model.zip", evaluation(0.5))
    assert beats_champion(evaluation(0.1), None)
    assert beats_champion(evaluation(0.5), champion)
    assert not beats_champion(evaluation(0.49), champion)
    assert beats_champion(evaluation(0.49), champion, champion_margin=0.02)
    assert may_promote(evaluation(0.1), champion, "0003")
    assert not may_promote(evaluation(0.1), champion, "0002")
    assert may_promote(evaluation(0.1), None, "")
    with pytest.raises(ConfigError):
        beats_champion(evaluation(0.5), champion, champion_margin=-1)
    with pytest.raises(SignpipeError, match="score"):
        beats_champion({"metric": "x"}, champion)


def test_publish_rejects_missing_bundle_and_scoreless_evaluation(tmp_path):
    registry = LocalModelRegistry(tmp_path / "registry")
    with pytest.raises(SignpipeError, match="no such bundle"):
        registry.publish(tmp_path / "missing.zip", evaluation(0.5))
    with pytest.raises(SignpipeError, match="score"):
        registry.publish(make_bundle(tmp_path / "a"), {"score": float("nan")})
    assert registry.versions() == []


def test_failed_copy_leaves_no_version_behind(tmp_path, monkeypatch):
    registry = LocalModelRegistry(tmp_path / "registry")
    bundle = make_bundle(tmp_path / "a")

    def broken_copy(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("signpipe.registry.shutil.copy2", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        registry.publish(bundle, evaluation(0.5))
    assert list((tmp_path / "registry" / "versions").iterdir()) == []
    assert registry.champion() is None


def test_dangling_champion_pointer_is_reported(tmp_path):
    root = tmp_path / "registry"
    root.mkdir()
    (root / CHAMPION_FILE).write_text(json.dumps({"version": "0007"}))
    with pytest.raises(SignpipeError, match="0007"):
        LocalModelRegistry(root).champion()


def _publish_in_process(args: tuple[str, str, float]) -> str:
    root, bundle_dir, score = args
    bundle = make_bundle(Path(bundle_dir))
    return LocalModelRegistry(root).publish(bundle, evaluation(score), expected_champion=None).version


def test_concurrent_publishes_get_distinct_versions_and_the_best_wins(tmp_path):
    root = tmp_path / "registry"
    scores = [0.3, 0.9, 0.5, 0.7]
    jobs = [(str(root), str(tmp_path / f"b{k}"), score) for k, score in enumerate(scores)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        versions = pool.map(_publish_in_process, jobs)
    assert sorted(versions) == ["0001", "0002", "0003", "0004"]
    champion = LocalModelRegistry(root).champion()
    assert champion.evaluation["score"] == 0.9


def test_open_registry_picks_the_backend(tmp_path):
    assert isinstance(open_registry(str(tmp_path / "r")), LocalModelRegistry)
    vertex = open_registry("vertex://my-project/us-central1/signpipe-fingerspelling", storage="gs://bucket/models")
    assert isinstance(vertex, VertexModelRegistry)
    assert (vertex.project, vertex.location, vertex.model_name) == ("my-project", "us-central1", "signpipe-fingerspelling")
    assert vertex.uri == "vertex://my-project/us-central1/signpipe-fingerspelling"
    with pytest.raises(ConfigError, match="PROJECT/REGION/MODEL_NAME"):
        open_registry("vertex://my-project/us-central1")
    with pytest.raises(ConfigError, match="gs://"):
        open_registry("vertex://p/r/m", storage="/tmp/models")
    with pytest.raises(ConfigError):
        open_registry("s3://bucket/models")
    with pytest.raises(ConfigError):
        open_registry("")


def test_vertex_labels_are_valid():
    assert vertex_label("Smoke.Run/1") == "smoke-run-1"
    assert len(vertex_label("x" * 100)) == 63


def test_a_chain_within_the_margin_step_by_step_cannot_slide_the_champion(tmp_path):
    """0.60 -> 0.57 -> 0.54: each within 0.05 of the champion before it, as the gate judged; the
    champion may not fall more than the margin below the chain's best (0.60)."""
    registry = LocalModelRegistry(tmp_path / "registry")
    first = registry.publish(make_bundle(tmp_path / "a"), evaluation(0.60))
    assert first.champion and first.chain_best == 0.60
    second = registry.publish(make_bundle(tmp_path / "b"), evaluation(0.57), expected_champion="0001", champion_margin=0.05)
    assert second.champion and second.chain_best == 0.60 and registry.champion() == second
    third = registry.publish(make_bundle(tmp_path / "c"), evaluation(0.54), expected_champion="0002", champion_margin=0.05)
    assert not third.champion and registry.champion().version == "0002"
    assert json.loads((tmp_path / "registry" / CHAMPION_FILE).read_text())["chain_best"] == 0.60
    better = registry.publish(make_bundle(tmp_path / "d"), evaluation(0.61), expected_champion="0002", champion_margin=0.05)
    assert better.champion and registry.champion().chain_best == 0.61
    assert [v.chain_best for v in registry.versions()] == [None, None, None, 0.61]


def test_the_chain_rule_without_a_registry():
    champion = RegistryEntry("0002", "/r/versions/0002", "model.zip", evaluation(0.57), champion=True, chain_best=0.60)
    assert may_promote(evaluation(0.55), champion, "0002", champion_margin=0.05)  # 0.55 >= 0.60 - 0.05
    assert not may_promote(evaluation(0.549), champion, "0002", champion_margin=0.05)
    assert not may_promote(evaluation(0.549), champion, None, champion_margin=0.05)
    # without a margin nothing can slide, and the gate's verdict on its own corpus stands
    assert may_promote(evaluation(0.3), champion, "0002")
    # a champion promoted before chains were recorded starts its own
    legacy = RegistryEntry("0001", "/r/versions/0001", "model.zip", evaluation(0.57), champion=True)
    assert may_promote(evaluation(0.53), legacy, "0001", champion_margin=0.05)
    assert not may_promote(evaluation(0.51), legacy, "0001", champion_margin=0.05)


def test_a_champion_pointer_without_a_chain_best_still_reads(tmp_path):
    registry = LocalModelRegistry(tmp_path / "registry")
    registry.publish(make_bundle(tmp_path / "a"), evaluation(0.5))
    (tmp_path / "registry" / CHAMPION_FILE).write_text(json.dumps({"version": "0001", "promoted": "2025-01-01T00:00:00+00:00"}))
    assert registry.champion().chain_best is None
    entry = registry.publish(make_bundle(tmp_path / "b"), evaluation(0.46), expected_champion="0001", champion_margin=0.05)
    assert entry.champion and entry.chain_best == 0.5
