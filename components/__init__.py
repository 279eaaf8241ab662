"""Pipeline components: one module per stage, each a thin `@dsl.component` that maps its typed
artifacts to paths, calls into `signpipe`, and records what flowed (counts, the y scale, scores,
sizes) as artifact metadata and `Metrics`. The steps follow the recipes: `components.fingerspelling`
holds the fingerspelling recipe's steps, `components.signs` the isolated-signs recipe's; the steps
both pipelines share stay here at the top (`corpus`, `validate`, `aspect`, `publish`,
`extract_videos`), with the helpers every step uses (`html_report`).

Components carry no logic of their own (DESIGN.md): a stage's behaviour lives in `signpipe/`, so it
runs the same from Python, the CLI and the pipeline. They are lightweight Python components built
with `install_kfp_package=False`: locally they run in this environment
(`kfp.local.SubprocessRunner(use_venv=False)`), on Vertex AI in the project's images, which already
hold kfp and signpipe. `LOCAL_IMAGE` is only their default; the pipeline builder sets every task's
real image from `signpipe.images` when it compiles for Vertex (`pipelines.placement.TaskPlacement`).
"""

LOCAL_IMAGE = "python:3.11-slim"
"""The image a component names until the pipeline sets its step's image. Local runs never pull it
(the subprocess runner uses this interpreter); a Python image keeps that runner from warning."""

HTML_SUFFIX = ".html"


def html_report(report, page: str) -> str:
    """Write `page` to the `Output[HTML]` artifact `report` under a name ending in `.html`.

    kfp hands an output artifact a URI with no extension (`.../gate/report`); a browser opens such
    a file as plain text. The artifact's local path follows its URI (`kfp.dsl.Artifact.path`), and
    the executor writes the URI back into the task's executor output, from which the local runner
    and Vertex AI both take the artifact's address; so the suffix is set on the URI before the page
    is written. Called from inside a component's function (imported there: lightweight components
    carry only their function's body). Returns the path written."""
    from pathlib import Path

    if not report.uri.endswith(HTML_SUFFIX):
        report.uri = report.uri + HTML_SUFFIX
    path = Path(report.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return str(path)


def finish_gate(result, found, opened, bundle_dir, *, verdict, report, report_markdown, metrics, title: str,
                plumbing: bool = False, eval_corpus_fingerprint: str = "", shared_participants: int = 0,
                recorded_thresholds=None) -> bool:
    """The part both gate steps share once their gate has judged (`result`, a `GateResult`):
    the lineage (`eval_corpus_fingerprint`, `shared_participants`) and, for a `plumbing` run, the
    note that its score means nothing; the verdict (the result with the champion judged against,
    which publish needs to promote safely) in `verdict`; the Markdown report; the HTML page titled
    `title` with the run's training curves against the champion's; `metrics` (passed and each
    criterion's measurement); and `verdict`'s metadata (passed, the champion's version, the failed
    criteria, shared participants). `found` is the `registry_champion` the gate judged against,
    `opened` its registry, `bundle_dir` the bundle artifact's folder. `recorded_thresholds` (name
    -> criterion) also records those criteria's thresholds under those names in the metrics and
    the metadata. Called from inside a component's function, like `html_report`. Returns whether
    the bundle passed."""
    import json
    from pathlib import Path

    from signpipe.data.atomic import atomic_write_text
    from signpipe.export.gate import with_lineage, with_plumbing_note
    from signpipe.registry import TRAINING_CURVES_FILE
    from signpipe.reports import gate_report, jsonl_records, record_metrics, training_comparison

    champion = found.entry
    curves = Path(bundle_dir) / TRAINING_CURVES_FILE
    champion_curves = opened.version_file(champion, TRAINING_CURVES_FILE) if champion is not None else None
    against_champion = training_comparison(jsonl_records(curves.read_text(encoding="utf-8") if curves.is_file() else None),
                                           jsonl_records(champion_curves), champion.version if champion is not None else None)
    result = with_lineage(result, eval_corpus_fingerprint, shared_participants)
    if plumbing:  # a plumbing preset's run: the report says its score means nothing
        result = with_plumbing_note(result)
    values = result.to_dict()
    values["champion"] = champion.to_dict() if champion is not None else None
    atomic_write_text(Path(verdict.path), json.dumps(values, indent=2) + "\n")
    Path(report_markdown.path).write_text(result.markdown(), encoding="utf-8")
    html_report(
        report,
        gate_report(values["criteria"], result.passed, title,
                    champion={"version": champion.version, "uri": champion.uri, "score": champion.evaluation.get("score"),
                              **champion.metadata} if champion is not None else None,
                    context=values["context"], sections=[against_champion]),
    )
    thresholds = {name: next(c["threshold"] for c in values["criteria"] if c["name"] == criterion)
                  for name, criterion in (recorded_thresholds or {}).items()}
    record_metrics(metrics, {"passed": result.passed, **{c["name"]: c["measured"] for c in values["criteria"]},
                             **thresholds})
    verdict.metadata.update({"passed": result.passed, "champion_version": champion.version if champion is not None else "",
                             "failed": [c["name"] for c in values["criteria"] if not c["passed"]],
                             **thresholds, "shared_participants": shared_participants})
    return result.passed
