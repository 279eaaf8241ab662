"""Gate: the ensemble bundle against the asl-signs limits (40 MB, mean latency per sequence), an
accuracy floor, the evaluation corpus' majority-class baseline and the registry's champion
(`signpipe.signs.gate`)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def gate_signs(
    bundle: Input[Model],
    evaluation: Input[Artifact],
    eval_corpus: Input[Dataset],
    registry: str,
    registry_storage: str,
    min_accuracy: float,
    max_model_mb: float,
    max_mean_latency_ms: float,
    champion_margin: float,
    verdict: Output[Artifact],
    report: Output[HTML],
    report_markdown: Output[Markdown],
    metrics: Output[Metrics],
    plumbing: bool = False,
    eval_corpus_fingerprint: str = "",
    shared_participants: int = 0,
) -> bool:
    """`signpipe.signs.gate.run_signs_gate` with the evaluate step's measurements and the
    current champion of `registry` (scored on the same corpus); `max_mean_latency_ms` 0 skips the
    latency criterion. The accuracy must also be strictly above `eval_corpus`' majority-class
    baseline (the share of its most common sign). Returns whether the bundle may be published;
    `verdict` records the champion version judged against, which publish needs to promote safely,
    and the names of the failed criteria. A champion the registry names but whose bundle or
    evaluation cannot be read fails the gate (`signpipe.export.gate.registry_champion`).
    `eval_corpus_fingerprint` and `shared_participants`: as in `components.fingerspelling.gate.gate`."""
    import json
    from pathlib import Path

    from components import html_report
    from signpipe.data.atomic import atomic_write_text
    from signpipe.signs.gate import MAJORITY_CRITERION, SignsGateThresholds, evaluation_from_dict, run_signs_gate
    from signpipe.export.gate import registry_champion, with_lineage, with_plumbing_note
    from signpipe.registry import TRAINING_CURVES_FILE, open_registry
    from signpipe.reports import gate_report, jsonl_records, record_metrics, training_comparison

    evaluated = evaluation_from_dict(json.loads((Path(evaluation.path) / "evaluation.json").read_text(encoding="utf-8")))
    thresholds = SignsGateThresholds(max_model_mb=max_model_mb, max_mean_latency_ms=max_mean_latency_ms or None,
                                     min_accuracy=min_accuracy, champion_margin=champion_margin)
    opened = open_registry(registry, registry_storage)
    with registry_champion(opened) as found:
        result = run_signs_gate(Path(bundle.path) / "model.zip", eval_corpus.path, thresholds, champion=found.for_gate,
                                evaluation=evaluated, threads=evaluated.threads)
    champion = found.entry
    curves = Path(bundle.path) / TRAINING_CURVES_FILE
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
        gate_report(values["criteria"], result.passed, "Gate (isolated signs)",
                    champion={"version": champion.version, "uri": champion.uri, "score": champion.evaluation.get("score"),
                              **champion.metadata} if champion is not None else None,
                    context=values["context"], sections=[against_champion]),
    )
    baseline = next(c["threshold"] for c in values["criteria"] if c["name"] == MAJORITY_CRITERION)
    record_metrics(metrics, {"passed": result.passed, **{c["name"]: c["measured"] for c in values["criteria"]},
                             "majority_baseline": baseline})
    verdict.metadata.update({"passed": result.passed, "champion_version": champion.version if champion is not None else "",
                             "failed": [c["name"] for c in values["criteria"] if not c["passed"]],
                             "majority_baseline": baseline, "shared_participants": shared_participants})
    return result.passed
