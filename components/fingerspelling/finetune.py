"""Finetune the teacher: CTC training on the feature shards (`signpipe.fingerspelling.finetune`)."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def finetune(features: Input[Dataset], preset: str, overrides: dict, model: Output[Model], metrics: Output[Metrics],
             report: Output[HTML], pretrained: Input[Model] = None):
    """Train the CTC teacher, from the pretrained encoder when there is one; `model` is the training
    workdir (checkpoints with EMA weights, metrics.jsonl, TensorBoard scalars under tb/)."""
    import dataclasses

    from components import html_report
    from signpipe.reports import record_metrics, training_report
    from signpipe.fingerspelling.config import resolve_config
    from signpipe.fingerspelling.finetune import train_and_evaluate

    config = resolve_config("finetune", preset, overrides)
    config = dataclasses.replace(config, data_dir=features.path, init_from=pretrained.path if pretrained is not None else config.init_from)
    final = train_and_evaluate(config, model.path)
    record_metrics(metrics, final)
    html_report(report, training_report(model.path, "finetune (CTC teacher)", final))
    model.metadata.update({"stage": "finetune", "model": config.model, "step": final["step"],
                           "validation_score": final["validation_score"], "best_validation_score": final["best_validation_score"],
                           "pretrained": pretrained is not None, "tensorboard_logdir": f"{model.uri}/tb"})
