"""Plan the folds of the isolated-signs pipeline: which participants validate each fold, the
corpus' y scale, and whether the evaluation corpus shares signers with training
(`signpipe.signs.fold_plan`)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def plan_folds(
    corpus: Input[Dataset],
    eval_corpus: Input[Dataset],
    n_folds: int,
    fold_seed: int,
    y_scale: float,
    training_preset: str,
    training_overrides: dict,
    plan: Output[Dataset],
    metrics: Output[Metrics],
    corpus_fingerprint: str = "",
    eval_corpus_fingerprint: str = "",
) -> list:
    """The fold plan (`fold_plan.json`) with the y scale estimated once for every fold (on the
    sequence subset the training config names); returns the fold numbers the fan-out iterates
    over. The training config is resolved here too, so a bad override fails before any fold runs.
    The fingerprints (`fingerprint_corpus`) make changed data at the same address a new input."""
    from signpipe.reports import record_metrics
    from signpipe.signs.config import resolve_config
    from signpipe.signs.fold_plan import check_fold_overrides, write_plan
    from signpipe.signs.fold_plan import plan_folds as plan_corpus_folds

    check_fold_overrides(training_overrides)
    training = resolve_config(training_preset, dict(training_overrides))
    fold_plan = plan_corpus_folds(corpus.path, n_folds=n_folds, fold_seed=fold_seed, y_scale=y_scale,
                                  y_scale_sequences=training.y_scale_sequences, eval_corpus_dir=eval_corpus.path)
    write_plan(fold_plan, plan.path)
    record_metrics(metrics, {
        "n_folds": fold_plan.n_folds, "sequences": fold_plan.n_sequences, "participants": fold_plan.n_participants,
        "signs": fold_plan.n_signs, "y_scale": fold_plan.y_scale, "eval_participants": fold_plan.eval_participants,
        "eval_participants_in_training": fold_plan.eval_participants_in_training,
        "folds": {str(f.fold): {"participants": len(f.participants), "sequences": f.n_sequences, "signs": f.n_signs}
                  for f in fold_plan.folds},
    })
    plan.metadata.update({
        "n_folds": fold_plan.n_folds, "y_scale": fold_plan.y_scale, "y_scale_estimated": fold_plan.y_scale_estimated,
        "validation_participants": {str(f.fold): list(f.participants) for f in fold_plan.folds},
        "eval_participants_in_training": fold_plan.eval_participants_in_training,
        "corpus_fingerprint": corpus_fingerprint, "eval_corpus_fingerprint": eval_corpus_fingerprint,
    })
    return list(range(fold_plan.n_folds))
