"""The pages a run leaves (`signpipe.pages`, `signpipe.reports`, `components.html_report`): the
phrase-kind rules, the character confusions, the histogram, the run's index page from a fake run,
the gate page's code spans and curves, and the `.html` name every HTML artifact gets."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from kfp.dsl import HTML

from components import html_report
from signpipe.fingerspelling.report import (
    ADDRESS,
    OTHER,
    PHONE,
    WEB,
    character_confusions,
    fingerspelling_evaluation_page,
    length_bucket,
    phrase_kind,
    sequence_score,
)
from signpipe.pages import CorpusSize, corpus_size, run_index_page, trivial_baseline
from signpipe.reports import (
    alignment_report,
    histogram_svg,
    curve_groups,
    gate_report,
    inline_code,
    metric_series,
    training_comparison,
    training_report,
)


@pytest.mark.parametrize(("phrase", "kind"), [
    ("+39 66 5063 4982", PHONE), ("1-800-793-3362", PHONE), ("(901) 506.1825", PHONE),
    ("jobswalker.net", WEB), ("kim1@hazel.info", WEB), ("patel.net/travel?id=626", WEB), ("www.jazz25.info/~sunset", WEB),
    ("https://x.co", WEB),
    ("4514 hill boulevard", ADDRESS), ("14216 east ortiz ave", ADDRESS), ("9873 w willow ln", ADDRESS), ("main street", ADDRESS),
    ("books; dixon", OTHER), ("150", OTHER), ("sarah connor", OTHER), ("", OTHER), ("555-12", OTHER),
])
def test_phrase_kinds_follow_the_documented_rules(phrase, kind):
    assert phrase_kind(phrase) == kind


def test_length_buckets_and_sequence_scores():
    assert [length_bucket(n) for n in (1, 10, 11, 20, 25, 26, 31)] == ["1-10", "1-10", "11-15", "16-20", "21-25", "26+", "26+"]
    assert sequence_score("abcd", "abcd") == 1.0 and sequence_score("abcd", "") == 0.0
    assert sequence_score("abcd", "abxd") == 0.75 and sequence_score("ab", "xyzw") < 0


def test_character_confusions_count_substitutions_deletions_and_insertions():
    found = character_confusions([("hello", "hallo"), ("cat", "ca"), ("dog", "dogs"), ("sea", "saa"), ("same", "same")])
    counted = {(c.kind, c.truth, c.predicted): c.count for c in found}
    assert counted == {("substitution", "e", "a"): 2, ("deletion", "t", ""): 1, ("insertion", "", "s"): 1}
    assert found[0].count == 2  # most frequent first
    assert character_confusions([("abc", "abc")]) == []


def test_histogram_svg_draws_one_bar_per_filled_bin():
    svg = histogram_svg([1.0, 1.1, 1.2, 5.0, float("nan")], "latency", "ms", bins=4)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    bars = re.findall(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)" fill="#1a73e8">', svg)
    assert len(bars) == 2 and float(bars[0]) > float(bars[1])  # 3 values in the first bin, 1 in the last
    assert "(4 values)" in svg
    assert "no data" in histogram_svg([], "empty")
    assert histogram_svg([2.0, 2.0], "one value").count('fill="#1a73e8"') == 1


def test_fingerspelling_evaluation_page_shows_kinds_lengths_examples_confusions_and_latency():
    rows = [(1, "1-800-793-3362", "1-800-793-3362"), (2, "jobswalker.net", "jobwalker.net"), (3, "4514 hill blvd", ""),
            (4, "sarah", "sara h")]
    evaluation = {"score": 0.5, "metric": "normalized_levenshtein", "n_characters": 47, "latency_ms": {"p50": 1, "p95": 2,
                  "mean": 1.2, "max": 3}, "model_mb": 0.4, "data": "eval-corpus"}
    page = fingerspelling_evaluation_page(evaluation, rows, [1.0, 1.5, 2.0, 3.0])
    for shown in ("phone number", "web address", "street address", "name/other", "11-15", "Best predictions",
                  "Worst predictions", "1 of 4 (25.0%)", "<i>(empty)</i>", "deletion", "insertion", "<svg"):
        assert shown in page, shown
    worst = page.split("<h2>Worst predictions</h2>")[1]
    assert worst.index("4514 hill blvd") < worst.index("1-800-793-3362")


def fake_corpus(root: Path, rows: list[tuple[int, str]], column: str = "phrase") -> Path:
    root.mkdir(parents=True)
    lines = [f"path,participant_id,sequence_id,{column}"] + [f"x.parquet,{p},{k},{label}" for k, (p, label) in enumerate(rows)]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return root


def test_trivial_baselines():
    eval_rows = [(1, "abc"), (1, "abc"), (2, "abd"), (2, "xyz")]
    fs = trivial_baseline("fingerspelling", corpus_size_of(eval_rows))
    assert fs is not None and fs[0] == pytest.approx((12 - (0 + 0 + 1 + 3)) / 12) and "'abc'" in fs[1]
    signs = trivial_baseline("isolated-signs", corpus_size_of(eval_rows))
    assert signs is not None and signs[0] == 0.5


def corpus_size_of(rows: list[tuple[int, str]]) -> CorpusSize:
    labels = [label for _, label in rows]
    return CorpusSize(len(rows), len({p for p, _ in rows}), Counter(labels).most_common(1)[0][0], labels)


def fake_run(tmp_path: Path, succeeded: bool = True) -> tuple[Path, dict]:
    run_dir = tmp_path / "fingerspelling-smoke-1"
    corpus = fake_corpus(run_dir / "corpus", [(1, "abc"), (2, "hello"), (3, "abc")])
    held_out = fake_corpus(run_dir / "eval-corpus", [(7, "abc"), (8, "abc"), (8, "xyz")])
    job = run_dir / "pipeline" / "job-1"
    for task, page in (("finetune", "report.html"), ("evaluate", "report.html"), ("gate", "report.html"),
                       ("for-loop-2-iteration-0/train-fold", "report.html")):
        (job / task).mkdir(parents=True, exist_ok=True)
        (job / task / page).write_text("<!DOCTYPE html><html><body>step</body></html>")
    (job / "evaluate" / "evaluation").mkdir()
    (job / "evaluate" / "evaluation" / "evaluation.json").write_text("{}")
    (run_dir / "pipeline.log").write_text("log")
    (run_dir / "summary.json").write_text("{}")
    run = {"pipeline": "fingerspelling", "preset": "smoke", "succeeded": succeeded, "seconds": 80.0,
           "failed_task": None if succeeded else "distill",
           "tasks": [{"task": "finetune", "seconds": 12.0, "status": "SUCCESS"}],
           "summary": {"corpus": str(corpus), "eval_corpus": str(held_out), "score": 0.5, "metric": "normalized_levenshtein",
                       "eval_sequences": 3.0, "gate": "passed", "gate_failed": [], "model_mb": 0.4, "quantize": "fp16",
                       "latency_ms": {"mean": 1.0, "p50": 1.0, "p95": 2.0}, "published_version": "0002",
                       "champion_version": "0002"}}
    return run_dir, run


def test_run_index_page_headline_links_and_notes(tmp_path):
    run_dir, run = fake_run(tmp_path)
    verdict = {"passed": True, "criteria": [
        {"name": "model size", "measured": 0.4, "threshold": 40.0, "comparison": "<=", "unit": "MB", "passed": True},
        {"name": "score vs champion", "measured": 0.5, "threshold": 0.3, "comparison": ">=", "note": "champion `0.3`",
         "passed": True}],
        "champion": {"version": "0001", "evaluation": {"score": 0.3}}}
    files = {"evaluation": run_dir / "pipeline/job-1/evaluate/evaluation/evaluation.json", "task log": run_dir / "pipeline.log",
             "summary": run_dir / "summary.json", "bundle": run_dir / "missing.zip"}
    page = run_index_page(run, run_dir, ["preset smoke: this score means nothing"], verdict, files)
    assert "3 sequences, 3 participants" in page and "3 sequences, 2 participants" in page
    assert "0.5000 (normalized_levenshtein, 3 sequences)" in page
    baseline = (9 - 3) / 9  # "abc" for every sequence: only "xyz" is wrong, 3 edits of 9 characters
    assert f"{0.5 - baseline:+.4f} (baseline {baseline:.4f}" in page
    assert "+0.2000 (champion version 0001, score 0.3000)" in page
    assert '<p class="note">preset smoke: this score means nothing</p>' in page
    assert "champion <code>0.3</code>" in page and "`" not in page
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert "pipeline/job-1/for-loop-2-iteration-0/train-fold/report.html" in hrefs
    assert "missing.zip" not in page  # only files that exist are linked
    assert all((run_dir / href).is_file() for href in hrefs) and not any(href.startswith("/") for href in hrefs)
    assert ">train-fold #0</a>" in page and ">evaluate</a>" in page


def test_run_index_page_compares_with_earlier_runs_read_from_their_folders(tmp_path):
    import json

    from signpipe.local_runs import list_local_runs

    runs_dir = tmp_path / "runs"
    older = runs_dir / "fingerspelling-local-20261201-090000"
    older.mkdir(parents=True)
    (older / "summary.json").write_text(json.dumps({"pipeline": "fingerspelling", "preset": "local", "succeeded": True,
                                                    "summary": {"score": 0.8, "gate": "passed"}}))
    (older / "index.html").write_text("<!DOCTYPE html><html><body>old</body></html>")
    killed = runs_dir / "fingerspelling-local-20261202-090000"
    killed.mkdir()
    (killed / "parameters.json").write_text(json.dumps({"labels": {"preset": "local"}}))
    other_task = runs_dir / "isolated-signs-local-20261202-100000"
    other_task.mkdir()
    (other_task / "summary.json").write_text(json.dumps({"pipeline": "isolated-signs", "summary": {"score": 0.99}}))
    run_dir, run = fake_run(runs_dir)
    earlier = [other.row() for other in list_local_runs(runs_dir, "fingerspelling") if other.folder != run_dir]
    page = run_index_page(run, run_dir, earlier=earlier)
    section = page.split("Earlier runs of this pipeline")[1]
    assert "fingerspelling-local-20261201-090000" in section and "0.8000" in section and "-0.3000" in section
    assert "incomplete" in section  # the killed run, without a score
    assert "isolated-signs" not in section and "0.99" not in section
    assert 'href="../fingerspelling-local-20261201-090000/index.html"' in section
    assert (run_dir / "../fingerspelling-local-20261201-090000/index.html").is_file()


def test_run_index_page_of_a_failed_run(tmp_path):
    run_dir, run = fake_run(tmp_path, succeeded=False)
    run["summary"] = {"corpus": run["summary"]["corpus"]}
    page = run_index_page(run, run_dir, error="failed at task distill: `ValueError`: boom")
    assert "FAILED" in page and "failed at distill" in page and "<code>ValueError</code>" in page
    assert "size unknown" in page  # the evaluation corpus is not known


def test_corpus_size_reads_train_csv(tmp_path):
    root = fake_corpus(tmp_path / "c", [(1, "hello"), (1, "hello"), (2, "world")], column="sign")
    size = corpus_size(root)
    assert (size.sequences, size.participants, size.most_common_label) == (3, 2, "hello")
    assert corpus_size(tmp_path / "nothing") is None


def test_html_report_names_the_artifact_dot_html(tmp_path):
    report = HTML(name="report", uri=str(tmp_path / "gate" / "report"))
    written = html_report(report, "<!DOCTYPE html><p>hi</p>")
    assert report.uri == str(tmp_path / "gate" / "report.html") and written == report.path
    assert Path(report.path).read_text() == "<!DOCTYPE html><p>hi</p>"
    html_report(report, "again")  # a second call keeps one suffix
    assert report.uri.endswith("/report.html") and not report.uri.endswith(".html.html")
    remote = HTML(name="report", uri="gs://bucket/root/job/gate/report")
    remote.uri = remote.uri + ".html"
    assert remote.path == "/gcs/bucket/root/job/gate/report.html"  # on Vertex the mount follows the URI


def test_gate_page_renders_code_spans_and_alignment_summary_as_a_table():
    page = gate_report([{"name": "latency", "measured": 1.0, "threshold": 2.0, "comparison": "<=", "unit": "ms",
                         "note": "at `64` frames", "passed": True}], True,
                       context={"evaluation corpus": "`/data/eval`, 40 sequences"})
    assert "<code>64</code>" in page and "<code>/data/eval</code>" in page and "`" not in page
    assert inline_code("a <b> `c`") == "a &lt;b&gt; <code>c</code>"
    aligned = alignment_report([], "align", {"train": {"sequences": 190, "usable": 188}, "validation": {"sequences": 10}})
    summary = aligned.split("<h2>Summary</h2>")[1].split("<h2>")[0]
    assert "<th>split</th><th>sequences</th><th>usable</th>" in summary and "{" not in summary


def test_training_curves_share_a_chart_and_meet_the_champion(tmp_path):
    records = [{"step": 1, "train/loss": 3.0}, {"step": 2, "train/loss": 2.0, "validation/loss": 2.5, "validation/score": 0.1},
               {"step": 2, "train/learning_rate": 1e-3}]
    groups = curve_groups(metric_series(records))
    assert set(groups["loss"]) == {"train/loss", "validation/loss"} and "score" in groups and "learning_rate" in groups
    champion = [{"step": 1, "train/loss": 2.0}, {"step": 2, "train/loss": 1.0}]
    section = training_comparison(records, champion, "0001")
    assert "champion version 0001: dashed" in section and "champion train/loss" in section and "stroke-dasharray" in section
    assert "learning_rate" not in section  # only the quantities a reader compares
    assert "kept no training curves" in training_comparison(records, None, "0001")
    assert "no champion yet" in training_comparison(records, None, None)
    assert "holds no training curves" in training_comparison(None, champion, "0001")
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    page = training_report(tmp_path, "finetune", {"step": 2})
    assert page.count("<svg") == 3  # loss (train + validation), score, learning rate


def test_registries_keep_the_training_curves_with_a_version(tmp_path, monkeypatch):
    from signpipe import registry as registries

    bundle = tmp_path / "model.zip"
    bundle.write_bytes(b"zip")
    curves = tmp_path / registries.TRAINING_CURVES_FILE
    curves.write_text('{"step": 1, "train/loss": 2.0}\n')
    local = registries.LocalModelRegistry(tmp_path / "registry")
    first = local.publish(bundle, {"score": 0.5, "metric": "m"}, extra_files=[curves])
    old = local.publish(bundle, {"score": 0.4, "metric": "m"})  # a version published without curves
    assert local.version_file(first, registries.TRAINING_CURVES_FILE) == curves.read_text()
    assert local.version_file(old, registries.TRAINING_CURVES_FILE) is None

    vertex = registries.VertexModelRegistry("p", "r", "m", "gs://bucket/models")
    entry = registries.RegistryEntry(version="3", uri="gs://bucket/models/m/1", bundle="model.zip", evaluation={})
    read = []

    def fake_read(uri, project, credentials=None):
        read.append(uri)
        if uri.endswith("/missing"):
            raise OSError("not found")
        return "curves"

    monkeypatch.setattr(registries, "_read_text", fake_read)
    assert vertex.version_file(entry, registries.TRAINING_CURVES_FILE) == "curves"
    assert vertex.version_file(entry, "missing") is None
    assert read[0] == "gs://bucket/models/m/1/metrics.jsonl"


def test_a_failed_local_run_still_writes_its_page(tmp_path):
    """A run whose corpus fails validation: run_local raises, and `index.html` says where and why."""
    from rich.console import Console

    from pipelines.local import SUMMARY_FILE, run_local
    from signpipe.data.schema import CHARACTER_MAP_FILE, packaged_map
    from signpipe.errors import SignpipeError

    data = fake_corpus(tmp_path / "data", [(1, "abc"), (2, "hello")])
    held_out = fake_corpus(tmp_path / "held-out", [(7, "abc"), (8, "xyz")])
    for root in (data, held_out):  # the fingerspelling layout's columns, but no landmark files
        lines = (root / "train.csv").read_text().splitlines()
        (root / "train.csv").write_text("path,file_id,sequence_id,participant_id,phrase\n" + "\n".join(
            f"train_landmarks/1.parquet,1,{k},{line.split(',')[1]},{line.split(',')[3]}" for k, line in enumerate(lines[1:])) + "\n")
        (root / CHARACTER_MAP_FILE).write_text(json.dumps(packaged_map(CHARACTER_MAP_FILE)))
    console = Console(record=True, width=200, force_terminal=False)
    with pytest.raises(SignpipeError, match="run failed at task"):
        run_local("fingerspelling", "smoke", data=data, eval_data=held_out, runs_dir=tmp_path / "runs", console=console)
    run_dir = next((tmp_path / "runs").glob("fingerspelling-smoke-*"))
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    page = (run_dir / "index.html").read_text()
    assert summary["summary"]["index"] == str(run_dir / "index.html") and "run page" in console.export_text()
    assert "FAILED" in page and "failed at task validate" in page and "2 sequences, 2 participants" in page
    assert all((run_dir / href).is_file() for href in re.findall(r'href="([^"]+)"', page))
