"""Evaluate: score the ensemble bundle the asl-signs way on the evaluation corpus, with the
confusion matrix the Vertex UI draws and a report of the signs it gets wrong."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def evaluate_signs(bundle: Input[Model], eval_corpus: Input[Dataset], threads: int, evaluation: Output[Artifact],
                   metrics: Output[Metrics], confusion: Output[ClassificationMetrics], report: Output[HTML],
                   eval_corpus_fingerprint: str = ""):
    """`signpipe.export.evaluate_bundle` (the scorer's x, y, z -> `[n_frames, 543, 3]` ->
    signature runner -> argmax): accuracy, top-3 accuracy, latency per sequence and size as
    metrics; `evaluation.json` and `predictions.csv` as files; the confusion matrix over the signs
    that occur as `confusion`; `report` the per-sign page. `eval_corpus_fingerprint` is recorded
    with the score (the data it was measured on)."""
    import json
    from pathlib import Path

    from components import html_report
    from signpipe.data.atomic import atomic_write_text
    from signpipe.data.corpus import open_corpus
    from signpipe.export.evaluate import evaluate_bundle, result_json, write_predictions
    from signpipe.signs.report import confusion_matrix, evaluation_report
    from signpipe.reports import record_metrics

    result = evaluate_bundle(Path(bundle.path) / "model.zip", eval_corpus.path, threads=threads)
    atomic_write_text(Path(evaluation.path) / "evaluation.json", result_json(result, eval_corpus_fingerprint) + "\n")
    write_predictions(result, Path(evaluation.path) / "predictions.csv")
    values = result.to_dict()
    signs, counts = confusion_matrix([truth for _, truth, _ in result.predictions],
                                     [predicted for _, _, predicted in result.predictions],
                                     open_corpus(eval_corpus.path).label_map)
    confusion.log_confusion_matrix(signs, counts.tolist())
    # the file beside the metadata: kfp's local cache looks for it before reusing the step
    atomic_write_text(Path(confusion.path), json.dumps({"signs": signs, "counts": counts.tolist()}) + "\n")
    html_report(report, evaluation_report(values, signs, counts, latencies_ms=result.latencies_ms))
    headline = {"accuracy": result.score, "top3_accuracy": values.get("top3_accuracy"), "n_sequences": result.n_sequences,
                "signs": len(signs), "latency_ms": result.latency_ms, "model_mb": values["model_mb"]}
    record_metrics(metrics, headline)
    evaluation.metadata.update({"score": result.score, "metric": result.metric, "top3_accuracy": values.get("top3_accuracy"),
                                "n_sequences": result.n_sequences, "latency_ms": result.latency_ms,
                                "model_mb": values["model_mb"], "data_fingerprint": eval_corpus_fingerprint})
