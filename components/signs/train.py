"""Train one fold of the isolated-signs recipe: the ArcFace transformer on every participant but
the fold's own (`signpipe.signs.train`)."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def train_fold(corpus: Input[Dataset], plan: Input[Dataset], fold: int, preset: str, overrides: dict, model: Output[Model],
               metrics: Output[Metrics], report: Output[HTML], corpus_fingerprint: str = ""):
    """Fold `fold` of the plan; `model` is its training workdir (checkpoints, metrics.jsonl,
    TensorBoard scalars under tb/, the validation predictions the out-of-fold score pools).
    Fails when the fold did not validate on the plan's participants. `corpus_fingerprint`: the
    data's identity (`fingerprint_corpus`), recorded with the model."""
    from components import html_report
    from signpipe.reports import record_metrics, training_report
    from signpipe.signs.fold_plan import check_fold_run, fold_config, read_plan
    from signpipe.signs.train import train_and_evaluate

    fold_plan = read_plan(plan.path)
    config = fold_config(fold_plan, fold, preset, overrides, corpus.path)
    final = train_and_evaluate(config, model.path)
    check_fold_run(fold_plan, fold, final)
    record_metrics(metrics, final)
    html_report(report, training_report(model.path, f"isolated signs: fold {fold} of {fold_plan.n_folds}", final))
    model.metadata.update({
        "fold": fold, "n_folds": fold_plan.n_folds, "step": final["step"],
        "validation_accuracy": final["validation_accuracy"], "validation_top3_accuracy": final["validation_top3_accuracy"],
        "majority_baseline": final["majority_baseline"],
        "validation_participants": list(fold_plan.folds[fold].participants), "y_scale": final["y_scale"],
        "compute_dtype": final["compute_dtype"], "tensorboard_logdir": f"{model.uri}/tb",
        "corpus_fingerprint": corpus_fingerprint,
    })
