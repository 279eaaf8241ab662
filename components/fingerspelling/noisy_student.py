"""Noisy student: retrain the teacher with temporal CutMix on its own pseudo-alignments
(`signpipe.fingerspelling.noisy_student`)."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def noisy_student(features: Input[Dataset], alignments: Input[Dataset], preset: str, overrides: dict, model: Output[Model],
                  metrics: Output[Metrics], report: Output[HTML], pretrained: Input[Model] = None):
    """CTC finetuning with CutMix batches cut where the alignments place the characters; starts
    from `pretrained` when given: the pretrained encoder, as the teacher did, or the teacher
    itself (its EMA encoder and CTC head) in presets that continue the teacher."""
    import dataclasses

    from components import html_report
    from signpipe.reports import record_metrics, training_report
    from signpipe.fingerspelling.config import resolve_config
    from signpipe.fingerspelling.noisy_student import STAGE, train_and_evaluate

    config = resolve_config(STAGE, preset, overrides)
    config = dataclasses.replace(config, data_dir=features.path, alignments=alignments.path,
                                 init_from=pretrained.path if pretrained is not None else config.init_from)
    final = train_and_evaluate(config, model.path)
    record_metrics(metrics, final)
    html_report(report, training_report(model.path, "noisy student (CutMix finetune)", final))
    model.metadata.update({"stage": STAGE, "model": config.model, "step": final["step"],
                           "validation_score": final["validation_score"], "best_validation_score": final["best_validation_score"],
                           "cutmix_probability": config.cutmix_probability, "tensorboard_logdir": f"{model.uri}/tb"})
