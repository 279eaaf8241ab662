"""Distill: the student learns from the frozen teacher's hard targets (`signpipe.fingerspelling.distill`)."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def distill(features: Input[Dataset], teacher: Input[Model], preset: str, overrides: dict, model: Output[Model],
            metrics: Output[Metrics], report: Output[HTML], alignments: Input[Dataset] = None):
    """Train the student (the preset's model size) with CTC + kd_weight x cross-entropy on the
    teacher's argmax; on CutMix batches when alignments are given."""
    import dataclasses

    from components import html_report
    from signpipe.reports import record_metrics, training_report
    from signpipe.fingerspelling.config import resolve_config
    from signpipe.fingerspelling.distill import STAGE, train_and_evaluate

    config = resolve_config(STAGE, preset, overrides)
    config = dataclasses.replace(config, data_dir=features.path, teacher=teacher.path,
                                 alignments=alignments.path if alignments is not None else config.alignments)
    final = train_and_evaluate(config, model.path)
    record_metrics(metrics, final)
    html_report(report, training_report(model.path, "distillation (student)", final))
    model.metadata.update({"stage": STAGE, "model": config.model, "step": final["step"],
                           "validation_score": final["validation_score"], "best_validation_score": final["best_validation_score"],
                           "kd_weight": config.kd_weight, "tensorboard_logdir": f"{model.uri}/tb"})
