"""Export: the fold models averaged into ONE TFLite model with the asl-signs interface
(`signpipe.signs.export`), and the out-of-fold accuracy of the folds that went into it."""

from typing import List

from kfp import dsl
from kfp.dsl import Input, Metrics, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def export_ensemble(folds: Input[List[Model]], quantize: str, checkpoint: str, bundle: Output[Model], metrics: Output[Metrics],
                    corpus_fingerprint: str = ""):
    """`bundle` is a folder holding `model.zip` (`model.tflite` taking raw `[n_frames, 543, 3]`
    frames, returning the mean class probabilities `[250]` of the fold models); `checkpoint`
    "last" or "best" picks each fold's weights. The out-of-fold accuracy pools every fold's
    predictions on its own unseen participants: the cross-validated estimate of one model.
    `corpus_fingerprint` names the data the folds trained on in the bundle's metadata (lineage)."""
    import shutil
    from pathlib import Path

    from signpipe.registry import TRAINING_CURVES_FILE
    from signpipe.reports import record_metrics
    from signpipe.signs.export import export_ensemble as export_fold_ensemble
    from signpipe.signs.folds import collect_out_of_fold

    ordered = sorted(folds, key=lambda model: (int(model.metadata.get("fold", 0)), model.path))
    workdirs = [Path(model.path) for model in ordered]
    result = export_fold_ensemble(workdirs, Path(bundle.path) / "model.zip", quantize=quantize, which=checkpoint)
    out_of_fold = collect_out_of_fold(workdirs).metrics()
    if (workdirs[0] / TRAINING_CURVES_FILE).is_file():  # the first fold's curves stand for the ensemble's training
        shutil.copyfile(workdirs[0] / TRAINING_CURVES_FILE, Path(bundle.path) / TRAINING_CURVES_FILE)
    exported = result.to_dict()
    record_metrics(metrics, {"model_mb": exported["model_mb"], "n_folds": len(workdirs), **out_of_fold})
    bundle.metadata.update({
        "file": "model.zip", "model_mb": exported["model_mb"], "model_bytes": exported["model_bytes"],
        "quantize": quantize, "checkpoint": checkpoint, "n_folds": len(workdirs), "steps": exported["steps"],
        "y_scales": exported["y_scales"], "n_classes": exported["n_classes"],
        "oof_accuracy": out_of_fold["oof_accuracy"], "oof_top3_accuracy": out_of_fold["oof_top3_accuracy"],
        "corpus_fingerprint": corpus_fingerprint,
    })
