"""The smoke (plumbing) preset end to end with kfp's local runner; then the same run repeated with a
gate no model can pass, which must fail the run and leave the champion where it was. The plumbing
preset publishes into a registry of its own and says its score means nothing.

Slow (over a minute on 2 cores: every task is a process of its own), so not in the default suite;
but it is the promotion guard of a whole run (a failed gate publishes nothing and keeps the
champion), so it is also marked `guards` and CI runs it on its own (`make test-guards`). The main
job (`make run`, preset local) has its own test, `tests/test_main_job.py`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from rich.console import Console

from pipelines.local import CACHE_DIR, LOG_FILE, PLUMBING_NOTE, SUMMARY_FILE, GateFailedError, run_local
from signpipe.registry import LocalModelRegistry


def champion_lineage_of(runs: Path) -> tuple[str, str]:
    """The fingerprints of the data the plumbing registry's champion trained and was scored on."""
    metadata = LocalModelRegistry(runs / "plumbing-registry" / "fingerspelling").champion().metadata
    return metadata["corpus_fingerprint"], metadata["eval_corpus_fingerprint"]


def check_run_page(run_dir: Path, summary: dict) -> str:
    """The run's index.html exists, is named in the summary, every link on it resolves to a file
    of the run, and every step page it links is a `.html` file; returns the page."""
    index = run_dir / "index.html"
    assert summary["index"] == str(index) and index.is_file()
    page = index.read_text()
    links = [unquote(href) for href in re.findall(r'href="([^"]+)"', page)]
    assert links, "the run page links nothing"
    for href in links:
        assert (run_dir / href).is_file(), href
    steps = page.split("<h2>Step pages</h2>")[1].split("<h2>")[0]
    step_links = re.findall(r'href="([^"]+)"', steps)
    assert step_links and all(href.endswith(".html") for href in step_links), step_links
    unsuffixed = [path for path in (run_dir / "pipeline").rglob("report*") if path.is_file() and not path.suffix
                  and path.read_text(errors="replace").startswith("<!DOCTYPE")]
    assert not unsuffixed, f"HTML reports without the .html suffix: {unsuffixed}"
    return page


@pytest.mark.slow
@pytest.mark.guards
@pytest.mark.timeout(1800)
def test_smoke_run_publishes_then_a_tighter_gate_keeps_the_champion(tmp_path):
    runs = tmp_path / "runs"
    console = Console(record=True, width=160, force_terminal=False)
    first = run_local("fingerspelling", "smoke", runs_dir=runs, console=console, enable_caching=True)

    assert first.succeeded and first.run_dir.parent == runs.resolve()
    assert first.run_dir.name.startswith("fingerspelling-smoke-")
    for kept in ("corpus", "eval-corpus", "pipeline", LOG_FILE, SUMMARY_FILE, "parameters.json"):
        assert (first.run_dir / kept).exists(), kept
    printed = console.export_text()
    for line in ("score", "size", "latency", "gate", "champion bundle", "time per task", "finetune", "distill", "publish",
                 PLUMBING_NOTE):
        assert line in printed, line
    summary = json.loads((first.run_dir / SUMMARY_FILE).read_text())["summary"]
    assert summary["gate"] == "passed" and summary["published_version"] == summary["champion_version"] == "0001"
    assert Path(summary["champion_bundle"]).is_file() and Path(summary["bundle"]).is_file()
    assert 0.0 < summary["model_mb"] < 40.0 and summary["latency_ms"]["p95"] > 0
    finished = {t.task for t in first.tasks if t.status == "SUCCESS"}
    assert {"validate", "estimate-y-scale", "plan-shards", "write-shard", "gather-shards", "finetune", "align",
            "noisy-student", "distill", "export", "evaluate", "gate", "publish"} <= finished
    assert not any(t.task.startswith("pretrain") for t in first.tasks)  # no pretraining in smoke

    assert summary["plumbing"] is True and summary["shared_participants"] == 0
    assert summary["corpus_fingerprint"] and summary["eval_corpus_fingerprint"]  # the lineage of what was published
    assert champion_lineage_of(runs) == (summary["corpus_fingerprint"], summary["eval_corpus_fingerprint"])
    assert not (runs / "registry").exists()  # real runs' registry: a plumbing bundle never goes there
    registry = runs / "plumbing-registry" / "fingerspelling"
    gate_report = Path(summary["gate_report"]).read_text()
    assert "plumbing preset" in gate_report and "means nothing" in gate_report
    champion = LocalModelRegistry(registry).champion()
    assert champion.version == "0001" and champion.metadata["preset"] == "smoke"
    assert summary["gate_report"].endswith("gate/report.html")
    page = check_run_page(first.run_dir, summary)
    for shown in ("vs trivial baseline", "no champion yet", "gate PASSED", "evaluate", "finetune", "distill",
                  "predictions.csv", "pipeline.log", "summary.json", "model.zip", PLUMBING_NOTE):
        assert shown in page, shown
    assert "run page" in printed
    assert (Path(champion.uri) / "metrics.jsonl").is_file()  # the training curves travel with the version

    # the same data and settings, with a gate no model passes: every step up to the gate comes
    # from the cache, the gate fails, nothing is published, the champion stays
    with pytest.raises(GateFailedError, match="normalized_levenshtein") as failed:
        run_local("fingerspelling", "smoke", data=first.run_dir / "corpus", eval_data=first.run_dir / "eval-corpus",
                  overrides=["min_score=2"], runs_dir=runs, console=console, enable_caching=True)
    second = failed.value.run
    statuses = {t.task: t.status for t in second.tasks}
    assert statuses["finetune"] == statuses["export"] == "CACHED" and statuses["gate"] == "SUCCESS"
    assert "publish" not in statuses
    assert second.summary["gate"] == "failed" and "normalized_levenshtein" in second.summary["gate_failed"]
    assert second.summary["published_version"] is None
    page = check_run_page(second.run_dir, json.loads((second.run_dir / SUMMARY_FILE).read_text())["summary"])
    assert "gate FAILED" in page and "champion version 0001" in page and "the model failed the gate" in page
    gate_page = Path(second.summary["gate_report"]).read_text()
    assert "Training against the champion" in gate_page and "champion version 0001: dashed" in gate_page
    assert "stroke-dasharray" in gate_page and "`" not in gate_page
    assert LocalModelRegistry(registry).champion() == champion
    assert [v.version for v in LocalModelRegistry(registry).versions()] == ["0001"]
    assert (runs / CACHE_DIR).is_dir()
