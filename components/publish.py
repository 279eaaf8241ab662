"""Publish: promote the bundle in the model registry of the run's environment."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def publish(
    bundle: Input[Model],
    evaluation: Input[Artifact],
    verdict: Input[Artifact],
    registry: str,
    registry_storage: str,
    champion_margin: float,
    labels: dict,
    run_name: str,
    published: Output[Artifact],
):
    """Store the bundle as a new registry version (a local versioned folder, or the Vertex AI Model
    Registry with the bundle in Cloud Storage) and make it the champion unless another run
    promoted a better model since the gate judged this one (`signpipe.registry`). A verdict that
    did not pass is refused (the pipeline's condition already skips publish then). The version
    records its lineage: the run, the fingerprint of the data it trained on (the bundle's
    metadata) and of the data it was scored on (the evaluation's)."""
    import json
    from pathlib import Path

    from signpipe.data.atomic import atomic_write_text
    from signpipe.errors import SignpipeError
    from signpipe.registry import TRAINING_CURVES_FILE, open_registry

    scored = json.loads((Path(evaluation.path) / "evaluation.json").read_text(encoding="utf-8"))
    judged = json.loads(Path(verdict.path).read_text(encoding="utf-8"))
    if judged.get("passed") is not True:  # the pipeline's condition keeps publish off a failed gate; so does publish
        failed = ", ".join(c["name"] for c in judged.get("criteria", []) if not c.get("passed")) or "no passing verdict"
        raise SignpipeError(f"{verdict.uri}: the gate did not pass this bundle ({failed}); nothing is published")
    expected = judged["champion"]["version"] if judged.get("champion") else None
    lineage = {"corpus_fingerprint": bundle.metadata.get("corpus_fingerprint", ""),
               "eval_corpus_fingerprint": evaluation.metadata.get("data_fingerprint", "")}
    metadata = {**labels, "run": run_name, **{key: value for key, value in lineage.items() if value}}
    curves = Path(bundle.path) / TRAINING_CURVES_FILE  # kept by export, for a later gate's "against the champion"
    entry = open_registry(registry, registry_storage).publish(
        Path(bundle.path) / "model.zip", scored, metadata, expected_champion=expected,
        champion_margin=champion_margin, extra_files=[curves] if curves.is_file() else [],
    )
    atomic_write_text(Path(published.path), json.dumps(entry.to_dict(), indent=2) + "\n")
    published.metadata.update({"registry": registry, "version": entry.version, "champion": entry.champion,
                               "bundle": entry.bundle_uri, "score": scored["score"], **lineage})
