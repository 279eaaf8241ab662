"""Export: the student's EMA weights -> the Kaggle bundle (`model.tflite` + `inference_args.json`)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def export(student: Input[Model], features: Input[Dataset], quantize: str, graph: str, bundle: Output[Model],
           corpus_fingerprint: str = ""):
    """Convert the student with the corpus' y scale built into the graph (`signpipe.export`:
    `quantize` none/fp16/int8, `graph` fast/dynamic); `bundle` is a folder holding `model.zip`.
    `corpus_fingerprint` names the data the model trained on in the bundle's metadata (lineage).
    The student's training log (`metrics.jsonl`) is kept beside `model.zip`: publish stores it with
    the registry version, and a later gate draws its curves against the next model's."""
    import shutil
    from pathlib import Path

    from signpipe.fingerspelling.export import export_checkpoint
    from signpipe.fingerspelling.shards import read_checked_manifest
    from signpipe.registry import TRAINING_CURVES_FILE

    y_scale = float(read_checked_manifest(features.path, "export", phrases=False)["y_scale"])
    result = export_checkpoint(student.path, Path(bundle.path) / "model.zip", quantize=quantize, graph=graph, y_scale=y_scale)
    bundle.metadata.update({key: value for key, value in result.to_dict().items() if key not in ("path", "checkpoint")})
    bundle.metadata["file"] = "model.zip"
    bundle.metadata["corpus_fingerprint"] = corpus_fingerprint
    curves = Path(student.path) / TRAINING_CURVES_FILE
    if curves.is_file():
        shutil.copyfile(curves, Path(bundle.path) / TRAINING_CURVES_FILE)
