"""The images a compiled pipeline names are the images docker/ builds.

Compiling for Vertex AI resolves image references the way `signpipe images build` and
`docker/cloudbuild.yaml` name what they push (`signpipe.images`). Here every image a compiled spec
can pull (each executor's container, and the image a TPU custom-job launcher hands to its job) is
traced back to an image family, to the Dockerfile that builds it and to the Cloud Build step that
pushes it, so a renamed image or Dockerfile fails here rather than as an image-pull error on Vertex.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.protobuf import json_format

from pipelines.compile import PIPELINES, compile_pipeline, resolve_images
from pipelines.presets import presets_of
from signpipe.images import CLOUDBUILD_CONFIG, FAMILIES, git_revision

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = "us-central1-docker.pkg.dev/proj/signpipe"
TAG = "rev42"
REFERENCE = re.compile(r"^(?P<registry>.+)/(?P<image>[a-z0-9-]+):(?P<tag>[A-Za-z0-9_.-]+)$")


def pulled_images(compiled) -> set[str]:
    """Every image reference a compiled spec makes Vertex pull: containers and custom-job images."""
    images = {executor.container.image for executor in compiled.deployment.executors.values()
              if executor.WhichOneof("spec") == "container"}  # importers pull nothing

    def walk(dag) -> None:
        for task in dag.tasks.values():
            component = compiled.spec.components[task.component_ref.name]
            if component.WhichOneof("implementation") == "dag":
                walk(component.dag)
            if "image_uri" in task.inputs.parameters:
                images.add(json_format.MessageToDict(task.inputs.parameters["image_uri"].runtime_value.constant))

    walk(compiled.spec.root.dag)
    return images


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    out = tmp_path_factory.mktemp("image-specs")
    images = resolve_images(REGISTRY, TAG)
    return {
        (pipeline, preset): compile_pipeline(pipeline, preset, out / f"{pipeline}-{preset}.yaml", target="vertex", images=images)
        for pipeline in PIPELINES
        for preset in presets_of(pipeline)
    }


def test_every_pulled_image_is_built_by_a_dockerfile_and_pushed_by_cloud_build(specs):
    by_image = {family.image: family for family in FAMILIES.values()}
    cloudbuild = (ROOT / CLOUDBUILD_CONFIG).read_text(encoding="utf-8")
    seen: dict[str, set[str]] = {pipeline: set() for pipeline in PIPELINES}
    for (pipeline, preset), compiled in specs.items():
        for reference in pulled_images(compiled):
            match = REFERENCE.match(reference)
            assert match, f"{pipeline}/{preset}: {reference!r} is not REGISTRY/IMAGE:TAG"
            assert (match["registry"], match["tag"]) == (REGISTRY, TAG), f"{pipeline}/{preset}: {reference}"
            family = by_image.get(match["image"])
            assert family is not None, f"{pipeline}/{preset}: image {match['image']!r} is not one of {sorted(by_image)}"
            assert (ROOT / family.dockerfile).is_file(), f"{family.dockerfile} (builds {family.image}) is missing"
            assert f"--file={family.dockerfile}" in cloudbuild, f"Cloud Build does not build {family.dockerfile}"
            assert f"${{_REGISTRY}}/{family.image}:${{_TAG}}" in cloudbuild, f"Cloud Build does not push {family.image}"
            seen[pipeline].add(family.name)
    # fingerspelling's small and large presets train on GPUs and pretrain on TPUs: all three families are used;
    # isolated signs trains its folds on GPUs (seed) and runs everything else on the cpu image
    assert seen["fingerspelling"] == {"cpu", "jax-cuda", "jax-tpu"}
    assert seen["isolated-signs"] == {"cpu", "jax-cuda"}


def test_the_default_tag_is_the_checkouts_revision(monkeypatch):
    monkeypatch.delenv("SIGNPIPE_IMAGE_TAG", raising=False)
    images = resolve_images(REGISTRY)
    revision = git_revision(ROOT)
    assert set(images) == {"cpu", "jax-tpu", "jax-cuda"}
    for name, reference in images.items():
        assert reference == f"{REGISTRY}/{FAMILIES[name].image}:{revision}"
