"""Evaluate: score the bundle with the competition's protocol on the evaluation corpus."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def evaluate(bundle: Input[Model], eval_corpus: Input[Dataset], threads: int, evaluation: Output[Artifact],
             metrics: Output[Metrics], report: Output[HTML], eval_corpus_fingerprint: str = ""):
    """`signpipe.export.evaluate_bundle` on the evaluation corpus (Kaggle layout): the score,
    latency per sequence and size as metrics, `evaluation.json` and `predictions.csv` (with each
    sequence's latency) as files, and the evaluation page (`signpipe.pages`: score by phrase kind
    and length, best and worst predictions, confused characters, latency histogram);
    `eval_corpus_fingerprint` is recorded with the score (the data it was measured on)."""
    from pathlib import Path

    from components import html_report
    from signpipe.data.atomic import atomic_write_text
    from signpipe.export.evaluate import evaluate_bundle, result_json, write_predictions
    from signpipe.fingerspelling.report import fingerspelling_evaluation_page
    from signpipe.reports import record_metrics

    result = evaluate_bundle(Path(bundle.path) / "model.zip", eval_corpus.path, threads=threads)
    atomic_write_text(Path(evaluation.path) / "evaluation.json", result_json(result, eval_corpus_fingerprint) + "\n")
    write_predictions(result, Path(evaluation.path) / "predictions.csv")
    record_metrics(metrics, result.to_dict())
    html_report(report, fingerspelling_evaluation_page(result.to_dict(), result.predictions, result.latencies_ms))
    evaluation.metadata.update({"score": result.score, "metric": result.metric, "n_sequences": result.n_sequences,
                                "latency_ms": result.latency_ms, "model_mb": round(result.model_mb, 3),
                                "data_fingerprint": eval_corpus_fingerprint})
