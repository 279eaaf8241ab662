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

    from components import finish_gate
    from signpipe.export.gate import registry_champion
    from signpipe.registry import open_registry
    from signpipe.signs.gate import MAJORITY_CRITERION, SignsGateThresholds, evaluation_from_dict, run_signs_gate

    evaluated = evaluation_from_dict(json.loads((Path(evaluation.path) / "evaluation.json").read_text(encoding="utf-8")))
    thresholds = SignsGateThresholds(max_model_mb=max_model_mb, max_mean_latency_ms=max_mean_latency_ms or None,
                                     min_accuracy=min_accuracy, champion_margin=champion_margin)
    opened = open_registry(registry, registry_storage)
    with registry_champion(opened) as found:
        result = run_signs_gate(Path(bundle.path) / "model.zip", eval_corpus.path, thresholds, champion=found.for_gate,
                                evaluation=evaluated, threads=evaluated.threads)
    return finish_gate(result, found, opened, bundle.path, verdict=verdict, report=report,
                       report_markdown=report_markdown, metrics=metrics, title="Gate (isolated signs)",
                       plumbing=plumbing, eval_corpus_fingerprint=eval_corpus_fingerprint,
                       shared_participants=shared_participants, recorded_thresholds={"majority_baseline": MAJORITY_CRITERION})
