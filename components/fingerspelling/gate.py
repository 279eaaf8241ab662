"""Gate: the new bundle against the thresholds and the registry's champion."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def gate(
    bundle: Input[Model],
    evaluation: Input[Artifact],
    eval_corpus: Input[Dataset],
    registry: str,
    registry_storage: str,
    min_score: float,
    max_model_mb: float,
    max_latency_p95_ms: float,
    latency_frames: int,
    champion_margin: float,
    verdict: Output[Artifact],
    report: Output[HTML],
    report_markdown: Output[Markdown],
    metrics: Output[Metrics],
    plumbing: bool = False,
    eval_corpus_fingerprint: str = "",
    shared_participants: int = 0,
) -> bool:
    """`signpipe.export.gate.run_gate` with the current champion of `registry` (scored on the same
    corpus); returns whether the bundle may be published. `verdict` records the champion version
    judged against, which publish needs to promote safely (`signpipe.registry.may_promote`). A
    champion the registry names but whose bundle or evaluation cannot be read fails the gate
    (`signpipe.export.gate.registry_champion`).
    `plumbing`: the run is a plumbing check (`pipelines.presets.PipelinePreset.plumbing`); the
    report says its score means nothing. `eval_corpus_fingerprint` is listed in the report;
    `shared_participants` (from `check_held_out`), when not 0, heads it with a warning that the
    score includes signers the model trained on."""
    import json
    from pathlib import Path

    from components import finish_gate
    from signpipe.export.evaluate import EvaluationResult
    from signpipe.export.gate import GateThresholds, registry_champion, run_gate
    from signpipe.registry import open_registry

    scored = json.loads((Path(evaluation.path) / "evaluation.json").read_text(encoding="utf-8"))
    evaluated = EvaluationResult(task=scored["task"], metric=scored["metric"], score=scored["score"],
                                 n_sequences=scored["n_sequences"], latency_ms=scored["latency_ms"],
                                 model_bytes=scored["model_bytes"], bundle=scored["bundle"], data=scored["data"],
                                 threads=scored["threads"])
    thresholds = GateThresholds(max_model_mb=max_model_mb, max_latency_p95_ms=max_latency_p95_ms or None,
                                latency_frames=latency_frames, min_score=min_score, champion_margin=champion_margin)
    opened = open_registry(registry, registry_storage)
    with registry_champion(opened) as found:
        result = run_gate(Path(bundle.path) / "model.zip", eval_corpus.path, thresholds, champion=found.for_gate,
                          evaluation=evaluated)
    return finish_gate(result, found, opened, bundle.path, verdict=verdict, report=report,
                       report_markdown=report_markdown, metrics=metrics, title="Gate", plumbing=plumbing,
                       eval_corpus_fingerprint=eval_corpus_fingerprint, shared_participants=shared_participants)
