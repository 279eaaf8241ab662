"""Compile a pipeline to its spec, and prove the spec is well-formed before anything is submitted.

`compile_pipeline("fingerspelling", "small", "spec.yaml", registry=..., tag=...)` writes the
Vertex AI spec (images from `signpipe.images`, machines from the preset) and then reads it back
into kfp's `PipelineSpec` proto and its `PipelineDeploymentConfig`, and checks that every task
names a component, every component an executor, every executor an image: a malformed spec fails
here, on the submitting machine, not minutes later on Vertex.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signpipe.data.atomic import atomic_path
from signpipe.errors import ConfigError, SignpipeError

PIPELINES = {"fingerspelling": "pipelines.fingerspelling", "isolated-signs": "pipelines.isolated_signs"}
"""Pipeline name -> module with `build_pipeline(preset, target, images)`."""


def check_pipeline_name(name: str) -> str:
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r} (expected one of: {', '.join(PIPELINES)})")
    return name


def pipeline_function(name: str, preset_name: str, target: str = "vertex", images: Mapping[str, str] | None = None,
                      hold_out: bool = False) -> Callable:
    """The `@dsl.pipeline` function of pipeline `name` with preset `preset_name` for `target`, in
    the form given an evaluation corpus or (`hold_out`) holding participants out of the corpus
    (`pipelines.corpora`)."""
    from pipelines.presets import preset

    module = importlib.import_module(PIPELINES[check_pipeline_name(name)])
    return module.build_pipeline(preset(preset_name, name), target, images, hold_out=hold_out)


def resolve_images(registry: str | None = None, tag: str | None = None) -> dict[str, str]:
    """Family -> image reference for a Vertex compile: `signpipe images`' registry and tag rules
    (flags, then $SIGNPIPE_IMAGE_REGISTRY / $SIGNPIPE_IMAGE_TAG, then the git revision)."""
    from signpipe.images import image_uris

    return image_uris(registry, tag, families=["cpu", "jax-tpu", "jax-cuda"])


@dataclass(frozen=True)
class CompiledPipeline:
    """A compiled spec read back: its file, the proto, and the deployment config."""

    path: Path
    spec: Any  # kfp.pipeline_spec.pipeline_spec_pb2.PipelineSpec
    deployment: Any  # kfp.pipeline_spec.pipeline_spec_pb2.PipelineDeploymentConfig

    @property
    def name(self) -> str:
        return self.spec.pipeline_info.name

    def executor_images(self) -> dict[str, str]:
        return {label: executor.container.image for label, executor in self.deployment.executors.items()}

    def root_tasks(self) -> dict[str, Any]:
        return dict(self.spec.root.dag.tasks)


def _structure_problems(spec: Any, deployment: Any) -> list[str]:
    problems = []
    components = dict(spec.components)

    def walk(dag: Any, where: str) -> None:
        for task_name, task in dag.tasks.items():
            ref = task.component_ref.name
            if ref not in components:
                problems.append(f"{where}/{task_name}: names component {ref!r}, which the spec does not define")
                continue
            component = components[ref]
            if component.WhichOneof("implementation") == "dag":
                walk(component.dag, f"{where}/{task_name}")
            elif component.executor_label not in deployment.executors:
                problems.append(f"{where}/{task_name}: executor {component.executor_label!r} missing from the deployment config")
            for upstream in task.dependent_tasks:
                if upstream not in dag.tasks:
                    problems.append(f"{where}/{task_name}: depends on {upstream!r}, which is not a task of the same DAG")

    walk(spec.root.dag, spec.pipeline_info.name or "root")
    for label, executor in deployment.executors.items():
        if executor.WhichOneof("spec") == "container" and not executor.container.image:
            problems.append(f"executor {label}: no image")
    return problems


def load_compiled(path: str | Path) -> CompiledPipeline:
    """Parse a compiled spec (YAML or JSON) into kfp's protos and check its structure."""
    import yaml
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    path = Path(path)
    try:
        documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise SignpipeError(f"{path}: not a readable pipeline spec ({exc})") from None
    if not documents or not isinstance(documents[0], dict):
        raise SignpipeError(f"{path}: empty or not a mapping (expected a compiled kfp PipelineSpec)")
    raw = documents[0].get("pipelineSpec", documents[0])  # a PipelineJob JSON wraps the spec
    try:
        spec = json_format.ParseDict(raw, pipeline_spec_pb2.PipelineSpec())
        deployment = json_format.ParseDict(
            json_format.MessageToDict(spec.deployment_spec), pipeline_spec_pb2.PipelineDeploymentConfig()
        )
    except json_format.ParseError as exc:
        raise SignpipeError(f"{path}: does not parse as a kfp PipelineSpec ({exc})") from None
    if not spec.pipeline_info.name or not spec.root.dag.tasks:
        raise SignpipeError(f"{path}: a PipelineSpec without a name or without tasks")
    problems = _structure_problems(spec, deployment)
    if problems:
        raise SignpipeError(f"{path}: malformed pipeline spec: " + "; ".join(problems[:10]))
    return CompiledPipeline(path, spec, deployment)


def compile_pipeline(
    name: str,
    preset_name: str,
    out: str | Path,
    target: str = "vertex",
    registry: str | None = None,
    tag: str | None = None,
    images: Mapping[str, str] | None = None,
    hold_out: bool = False,
) -> CompiledPipeline:
    """Compile pipeline `name` with `preset_name` for `target` into `out` (written whole or not
    at all) and return it parsed and checked. For "vertex" the images come from `images`, else
    from `registry`/`tag` (see `resolve_images`); `hold_out`: the form without an evaluation
    corpus (`pipeline_function`)."""
    from kfp import compiler

    if target == "vertex" and images is None:
        images = resolve_images(registry, tag)
    function = pipeline_function(name, preset_name, target, images, hold_out)
    out = Path(out)
    if out.suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(f"{out}: expected a .yaml (or .json) file name for the compiled spec")
    with atomic_path(out) as tmp:
        staged = tmp.with_suffix(out.suffix)  # kfp picks the format from the suffix
        try:
            compiler.Compiler().compile(function, str(staged))
            compiled = load_compiled(staged)
            staged.replace(tmp)
        finally:
            staged.unlink(missing_ok=True)
    return CompiledPipeline(out, compiled.spec, compiled.deployment)


def compile_to_directory(name: str, preset_name: str, target: str, images: Mapping[str, str] | None,
                         directory: str | Path, hold_out: bool = False) -> CompiledPipeline:
    """Compile into `directory` as NAME-PRESET.yaml (what submit and schedule send)."""
    return compile_pipeline(name, preset_name, Path(directory) / f"{name}-{preset_name}.yaml", target=target, images=images,
                            hold_out=hold_out)


def describe(compiled: CompiledPipeline) -> dict[str, Any]:
    """Task names, images and machine requests of a compiled spec, for the CLI to print."""
    components = dict(compiled.spec.components)
    tasks = {}

    def walk(dag: Any) -> None:
        for task_name, task in dag.tasks.items():
            component = components[task.component_ref.name]
            if component.WhichOneof("implementation") == "dag":
                walk(component.dag)
                continue
            executor = compiled.deployment.executors[component.executor_label]
            if executor.WhichOneof("spec") != "container":
                tasks[task_name] = {"kind": executor.WhichOneof("spec")}
                continue
            container = executor.container
            resources = json.loads(json.dumps(
                {"cpu": container.resources.resource_cpu_limit, "memory": container.resources.resource_memory_limit,
                 "accelerator": container.resources.accelerator.resource_type,
                 "accelerator_count": container.resources.accelerator.resource_count}))
            tasks[task_name] = {"image": container.image, **{k: v for k, v in resources.items() if v}}
            if "machine" in task.inputs.parameters:  # a custom-job launcher: the job's own machine
                from google.protobuf import json_format

                machine = json_format.MessageToDict(task.inputs.parameters["machine"].runtime_value.constant)
                tasks[task_name]["custom_job"] = (
                    f"{machine['machine_type']} {machine['tpu_topology']}" if machine.get("tpu_topology")
                    else f"{machine['machine_type']} x{int(machine.get('replica_count', 1))} "
                         f"({machine.get('accelerator_type', '')})")

    walk(compiled.spec.root.dag)
    return {"pipeline": compiled.name, "path": str(compiled.path), "tasks": tasks}
