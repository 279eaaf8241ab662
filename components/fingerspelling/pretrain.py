"""Pretrain: Data2vec 2.0 on every sequence of the feature shards (`signpipe.fingerspelling.pretrain`).

Two forms of the same step: `pretrain` trains inside the step (locally, or on a Vertex step's own
CPU/GPU machine), `pretrain_on_custom_job` launches the identical `signpipe train pretrain` command
as a Vertex AI custom job on machines a plain step cannot ask for (a TPU slice with its topology
and replica count, docs/pipelines.md) and waits for it. Both leave the same workdir in `model`.
"""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def pretrain(features: Input[Dataset], preset: str, overrides: dict, model: Output[Model], metrics: Output[Metrics],
             report: Output[HTML]):
    """Pretrain the encoder; `model` is the training workdir (config, checkpoints, metrics.jsonl,
    TensorBoard scalars under tb/), `report` its loss curves."""
    import dataclasses

    from components import html_report
    from signpipe.reports import record_metrics, training_report
    from signpipe.fingerspelling.config import resolve_config
    from signpipe.fingerspelling.pretrain import train_and_evaluate

    config = dataclasses.replace(resolve_config("pretrain", preset, overrides), data_dir=features.path)
    final = train_and_evaluate(config, model.path)
    record_metrics(metrics, final)
    html_report(report, training_report(model.path, "pretrain (Data2vec 2.0)", final))
    model.metadata.update({"stage": "pretrain", "model": config.model, "step": final["step"],
                           "train_loss": final["train_loss"], "tensorboard_logdir": f"{model.uri}/tb"})


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def pretrain_on_custom_job(
    features: Input[Dataset],
    preset: str,
    overrides: dict,
    image_uri: str,
    machine: dict,
    vertex: dict,
    run_name: str,
    task_name: str,
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[HTML],
):
    """Pretrain in a Vertex AI custom job on `machine` (a `pipelines.presets.Machine` as a dict)
    running `image_uri`; `vertex` names the project, region, service account and TensorBoard.
    The job reads the shards and writes the workdir through Cloud Storage FUSE (/gcs/...), except
    its checkpoints, which Orbax writes to the workdir's gs:// twin directly (FUSE cannot rename
    a directory: `signpipe.train.checkpoint`).
    `run_name` and `task_name` (the pipeline passes kfp's run and task placeholders) name the job,
    so a retry of this step waits for the job its earlier attempt started, or resumes it if it
    failed, instead of starting a second one (`signpipe.custom_jobs`)."""
    from components import html_report
    from signpipe.custom_jobs import run_training_custom_job
    from signpipe.reports import record_metrics, training_report

    final = run_training_custom_job("pretrain", features.path, model.path, preset, overrides, image_uri, machine, vertex,
                                    run_name=run_name, task_name=task_name)
    record_metrics(metrics, final)
    html_report(report, training_report(model.path, "pretrain (Data2vec 2.0, custom job)", final))
    model.metadata.update({"stage": "pretrain", "step": final["step"], "train_loss": final["train_loss"],
                           "machine": machine, "tensorboard_logdir": f"{model.uri}/tb"})
