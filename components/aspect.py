"""Estimate the y scale: the corpus' camera aspect ratio, which the model's normalization needs."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def estimate_y_scale(corpus: Input[Dataset], method: str, estimate: Output[Artifact], metrics: Output[Metrics],
                     corpus_fingerprint: str = "") -> float:
    """`signpipe.landmarks.aspect.estimate_y_scale` on the corpus: the estimate with its interval
    and per-participant values as JSON, the headline numbers as metrics; returns the y scale.
    `corpus_fingerprint`: the data's identity, so changed data is never a cache hit."""
    import json
    from pathlib import Path

    from signpipe.data.atomic import atomic_write_text
    from signpipe.landmarks.aspect import estimate_y_scale as estimate_corpus_y_scale
    from signpipe.reports import record_metrics

    result = estimate_corpus_y_scale(corpus.path, method=method)
    values = result.to_dict()
    atomic_write_text(Path(estimate.path), json.dumps(values, indent=2) + "\n")
    headline = ("y_scale", "ci_low", "ci_high", "n_frames", "n_sequences", "z_scale")
    record_metrics(metrics, {**{name: values[name] for name in headline}, "participants": len(values["per_participant"])})
    estimate.metadata.update({"y_scale": result.y_scale, "method": result.method, "ci": [result.ci_low, result.ci_high],
                              "corpus_fingerprint": corpus_fingerprint})
    return float(result.y_scale)
