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
    promoted a better model since the gate judged this one (`signpipe.registry`)."""
    import json
    from pathlib import Path

    from signpipe.data.atomic import atomic_write_text
    from signpipe.registry import open_registry

    scored = json.loads((Path(evaluation.path) / "evaluation.json").read_text(encoding="utf-8"))
    judged = json.loads(Path(verdict.path).read_text(encoding="utf-8"))
    expected = judged["champion"]["version"] if judged.get("champion") else None
    entry = open_registry(registry, registry_storage).publish(
        Path(bundle.path) / "model.zip", scored, {**labels, "run": run_name}, expected_champion=expected,
        champion_margin=champion_margin,
    )
    atomic_write_text(Path(published.path), json.dumps(entry.to_dict(), indent=2) + "\n")
    published.metadata.update({"registry": registry, "version": entry.version, "champion": entry.champion,
                               "bundle": entry.bundle_uri, "score": scored["score"]})
