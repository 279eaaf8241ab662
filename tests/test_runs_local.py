"""`signpipe runs list|show` on this machine's runs: run folders written by hand as
pipelines/local.py writes them (summary.json, parameters.json, pipeline.log, index.html), a killed
run without its summary, and a real `LocalModelRegistry`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signpipe.cli import main
from signpipe.registry import LocalModelRegistry


def write_run(runs: Path, folder: str, pipeline: str, preset: str, *, score: float | None, gate: str = "passed",
              failed: list[str] | None = None, published: str | None = None, succeeded: bool = True,
              report: bool = False) -> Path:
    run_dir = runs / folder
    run_dir.mkdir(parents=True)
    (run_dir / "parameters.json").write_text(json.dumps({"labels": {"preset": preset, "target": "local"}}))
    (run_dir / "pipeline.log").write_text("...\n")
    summary = {
        "run_dir": str(run_dir.resolve()), "pipeline": pipeline, "preset": preset, "succeeded": succeeded,
        "seconds": 93.5,
        "tasks": [{"task": "finetune", "seconds": 61.25, "status": "SUCCESS"},
                  {"task": "gate", "seconds": 1.5, "status": "SUCCESS" if succeeded else "FAILURE"}],
        "summary": {"score": score, "metric": "normalized_levenshtein" if pipeline == "fingerspelling" else "accuracy",
                    "gate": gate, "gate_failed": failed or [], "model_mb": 0.396, "quantize": "fp16",
                    "latency_ms": {"mean": 6.3, "p95": 11.6}, "published_version": published,
                    "corpus": "/data/corpus", "eval_corpus": "/data/eval-corpus", "registry": str(runs / "registry")},
        "failed_task": None if succeeded else "gate",
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    if report:
        (run_dir / "index.html").write_text("<html></html>")
    return run_dir


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    write_run(runs, "fingerspelling-local-20261201-090000", "fingerspelling", "local", score=0.612, published="0001",
              report=True)
    write_run(runs, "fingerspelling-local-20261202-090000", "fingerspelling", "local", score=0.41, gate="failed",
              failed=["min_score", "vs champion"], succeeded=False)
    write_run(runs, "isolated-signs-smoke-20261203-100000", "isolated-signs", "smoke", score=0.02, published="0001")
    killed = runs / "fingerspelling-smoke-20261203-120000"  # killed: parameters and log, no summary
    killed.mkdir()
    (killed / "parameters.json").write_text(json.dumps({"labels": {"preset": "smoke"}}))
    (killed / "pipeline.log").write_text("started\n")
    (runs / ".kfp-cache").mkdir()  # neither a run nor a registry
    bundle = tmp_path / "model.zip"
    bundle.write_bytes(b"not really a zip")
    registry = LocalModelRegistry(runs / "registry" / "fingerspelling")
    registry.publish(bundle, {"score": 0.55, "metric": "normalized_levenshtein"}, {"run": "first"})
    registry.publish(bundle, {"score": 0.612, "metric": "normalized_levenshtein"}, {"run": "second"})
    LocalModelRegistry(runs / "plumbing-registry" / "isolated-signs").publish(bundle, {"score": 0.02, "metric": "accuracy"})
    return runs


def cli(capsys, *args) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return status, captured.out, captured.err


def test_runs_list_is_local_without_a_project_newest_first(runs: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    status, out, _ = cli(capsys, "runs", "list", "--runs-dir", runs)
    assert status == 0
    assert out.startswith(f"local runs in {runs}")
    names = ["fingerspelling-smoke-20261203-120000", "isolated-signs-smoke-20261203-100000",
             "fingerspelling-local-20261202-090000", "fingerspelling-local-20261201-090000"]
    positions = [out.index(name) for name in names]
    assert positions == sorted(positions)
    lines = {name: next(line for line in out.splitlines() if name in line) for name in names}
    assert "incomplete" in lines[names[0]]
    assert "0.612 (NLev)" in lines[names[3]] and "passed" in lines[names[3]] and "0001" in lines[names[3]]
    assert "failed at gate" in lines[names[2]] and "min_score, vs champion" in lines[names[2]]
    assert ".kfp-cache" not in out
    # the registries: every version, the champion marked
    assert "registry/fingerspelling: champion 0002" in out
    assert "plumbing-registry/isolated-signs: champion 0001" in out
    version_lines = [line for line in out.splitlines() if "versions/000" in line]
    assert len(version_lines) == 3 and any("0.612" in line and line.rstrip().endswith("*") for line in version_lines)


def test_runs_list_filters_limits_and_prints_json(runs: Path, capsys) -> None:
    status, out, _ = cli(capsys, "runs", "list", "--local", "--runs-dir", runs, "--pipeline", "fingerspelling",
                         "--limit", "2", "--json")
    assert status == 0
    listed = json.loads(out)
    assert listed["where"] == "local"
    assert [run["name"] for run in listed["runs"]] == ["fingerspelling-smoke-20261203-120000",
                                                       "fingerspelling-local-20261202-090000"]
    assert listed["runs"][0]["state"] == "incomplete" and listed["runs"][0]["score"] is None
    assert listed["runs"][1]["gate_failed"] == ["min_score", "vs champion"]
    (registry,) = listed["registries"]  # --pipeline narrows the registries too
    assert registry["champion"] == "0002" and [v["version"] for v in registry["versions"]] == ["0001", "0002"]
    assert registry["versions"][1]["champion"] and registry["versions"][1]["bundle"].endswith("0002/model.zip")


def test_runs_list_of_an_empty_or_missing_folder(tmp_path: Path, capsys) -> None:
    status, out, _ = cli(capsys, "runs", "list", "--runs-dir", tmp_path / "nothing")
    assert status == 0 and "no runs" in out


def test_runs_show_a_local_run(runs: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    status, out, _ = cli(capsys, "runs", "show", "fingerspelling-local-20261201-090000", "--runs-dir", runs)
    assert status == 0
    for expected in ("(local run): succeeded", "0.612 (normalized_levenshtein)", "passed", "0.396 MB (fp16)",
                     "p95 11.6 ms", "/data/corpus", "/data/eval-corpus", "local", "finetune", "61.2",
                     str(runs / "fingerspelling-local-20261201-090000" / "index.html")):
        assert expected in out, expected
    # a run name alone gives its newest run; the failed criteria are named
    status, out, _ = cli(capsys, "runs", "show", "fingerspelling-local", "--runs-dir", runs)
    assert status == 0 and "20261202-090000" in out and "failed min_score, vs champion" in out
    assert "no index.html" in out
    status, out, _ = cli(capsys, "runs", "show", runs / "isolated-signs-smoke-20261203-100000")  # a path works too
    assert status == 0 and "isolated-signs" in out and "0.02 (accuracy)" in out
    status, out, _ = cli(capsys, "runs", "show", "fingerspelling-smoke-20261203-120000", "--runs-dir", runs)
    assert status == 0 and "incomplete" in out and "pipeline.log" in out
    status, out, _ = cli(capsys, "runs", "show", "fingerspelling-local-20261201-090000", "--runs-dir", runs, "--json")
    shown = json.loads(out)
    assert shown["summary"]["summary"]["score"] == 0.612 and shown["report"].endswith("index.html")


def test_runs_show_names_what_it_knows_when_the_run_is_not_there(runs: Path, capsys) -> None:
    status, _, err = cli(capsys, "runs", "show", "nope", "--runs-dir", runs)
    assert status == 2 and "nope: no such local run" in err and "isolated-signs-smoke-20261203-100000" in " ".join(err.split())
