"""Compile the isolated-signs pipeline with every preset and check the spec: the recipe's tasks and
edges, the folds fanned out over the plan and collected by the export, typed artifacts (the
confusion matrix as `ClassificationMetrics`), each step's image family and machine, publish only
under the gate's If; then the parameters and overrides that `run`, `compile`, `submit` and
`schedule` send, the last two against the recording Vertex server of test_vertex_requests."""

from __future__ import annotations

import dataclasses

import pytest

from components import LOCAL_IMAGE
from pipelines.compile import PIPELINES, compile_pipeline, describe, load_compiled
from pipelines.presets import apply_overrides, check_training_overrides, preset, presets_of
from pipelines.signs_presets import IMAGE_STEP, PRESETS, check_signs_parameters
from signpipe.cli import main
from signpipe.errors import ConfigError
from signpipe.signs.config import resolve_config
from test_vertex_requests import REGION, SERVICE_ACCOUNT, VertexRecorder, recorded, server, vertex  # noqa: F401 (fixtures)

IMAGES = {
    "cpu": "europe-west4-docker.pkg.dev/p/signpipe/signpipe-cpu:abc123",
    "jax-tpu": "europe-west4-docker.pkg.dev/p/signpipe/signpipe-jax-tpu:abc123",
    "jax-cuda": "europe-west4-docker.pkg.dev/p/signpipe/signpipe-jax-cuda:abc123",
}
ROOT_TASKS = {"importer", "importer-2", "fingerprint-corpus", "fingerprint-corpus-2", "validate", "validate-2",
              "check-held-out", "plan-folds", "for-loop-1", "export-ensemble", "evaluate-signs",
              "gate-signs", "condition-2"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("signs-specs")
    return {
        (name, target): load_compiled(compile_pipeline("isolated-signs", name, out / f"{name}-{target}.yaml", target=target,
                                                       images=IMAGES if target == "vertex" else None).path)
        for name in PRESETS
        for target in ("vertex", "local")
    }


def tasks_of(spec, dag=None):
    return (dag or spec.spec.root.dag).tasks


def sub_dag(spec, task_name):
    return spec.spec.components[tasks_of(spec)[task_name].component_ref.name].dag


def component(spec, task_name, dag=None):
    return spec.spec.components[tasks_of(spec, dag)[task_name].component_ref.name]


def container(spec, task_name, dag=None):
    return spec.deployment.executors[component(spec, task_name, dag).executor_label].container


def test_registered_with_its_own_presets():
    assert PIPELINES["isolated-signs"] == "pipelines.isolated_signs"
    assert set(presets_of("isolated-signs")) == {"local", "smoke", "seed"} and preset("seed", "isolated-signs").n_folds == 5
    assert preset("smoke", "isolated-signs").n_folds == 3 and preset("local", "isolated-signs").n_folds == 2
    with pytest.raises(ConfigError, match="unknown pipeline preset 'small' of isolated-signs"):
        preset("small", "isolated-signs")
    with pytest.raises(ConfigError, match="unknown pipeline"):
        presets_of("isolated")
    # the synthetic corpus deals all 250 signs in rounds: a k-fold split needs more than k - 1 rounds
    with pytest.raises(ConfigError, match="synth_sequences"):
        dataclasses.replace(PRESETS["smoke"], synth_sequences=500)
    with pytest.raises(ConfigError, match="cannot fill 3 folds"):
        dataclasses.replace(PRESETS["smoke"], synth_participants=2)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_resolves_its_fold_training_and_only_plumbing_goes_without_a_floor(name):
    chosen = PRESETS[name]
    parameters = chosen.runtime_parameters()
    check_signs_parameters(parameters)  # what run/submit check before anything runs
    config = resolve_config(parameters["signs_preset"], parameters["signs_overrides"])
    assert config.width % config.heads == 0 and config.batch_size <= chosen.synth_sequences // chosen.n_folds
    assert chosen.plumbing or chosen.gate.min_accuracy > 0
    assert chosen.synth_participants >= chosen.n_folds and chosen.synth_sequences > 250 * (chosen.n_folds - 1)


def test_local_is_the_real_job_and_smoke_the_plumbing_check():
    local, smoke = PRESETS["local"], PRESETS["smoke"]
    assert not local.plumbing and smoke.plumbing and not PRESETS["seed"].plumbing
    assert local.training.preset == "local" and local.gate.min_accuracy >= 0.5 and PRESETS["seed"].gate.min_accuracy >= 0.5
    # a real model learns from several sequences of every sign by many signers; smoke stays as small as it was
    assert local.synth_sequences >= 4 * 250 and local.synth_participants >= 8
    assert (smoke.synth_sequences, smoke.synth_participants, smoke.training.preset) == (540, 6, "smoke")
    small, big = resolve_config("smoke"), resolve_config("local")
    assert big.width > small.width and big.batch_size >= small.batch_size
    with pytest.raises(ConfigError, match="no floor"):
        dataclasses.replace(local, gate=dataclasses.replace(local.gate, min_accuracy=0.0))
    dataclasses.replace(local, plumbing=True, gate=dataclasses.replace(local.gate, min_accuracy=0.0))  # allowed there


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_tasks_and_edges_follow_the_recipe(compiled, name):
    spec = compiled[name, "vertex"]
    assert spec.name == "signpipe-isolated-signs"
    tasks = tasks_of(spec)
    assert set(tasks) == ROOT_TASKS

    def upstream(task, dag=None):
        return set(tasks_of(spec, dag)[task].dependent_tasks)

    assert upstream("validate") == {"importer", "fingerprint-corpus"}
    assert upstream("validate-2") == {"importer-2", "fingerprint-corpus-2"}
    assert upstream("check-held-out") == {"importer", "importer-2", "fingerprint-corpus", "fingerprint-corpus-2", "validate",
                                          "validate-2"}
    assert upstream("plan-folds") == {"importer", "importer-2", "fingerprint-corpus", "fingerprint-corpus-2", "validate",
                                      "validate-2", "check-held-out"}
    assert upstream("for-loop-1") == {"importer", "fingerprint-corpus", "plan-folds"}
    assert upstream("export-ensemble") == {"for-loop-1", "fingerprint-corpus"}
    assert upstream("evaluate-signs") == {"export-ensemble", "importer-2", "fingerprint-corpus-2"}
    assert upstream("gate-signs") == {"evaluate-signs", "export-ensemble", "importer-2", "fingerprint-corpus-2", "check-held-out"}
    assert "gate-signs" in upstream("condition-2")
    assert set(tasks_of(spec, sub_dag(spec, "for-loop-1"))) == {"train-fold"}
    assert set(tasks_of(spec, sub_dag(spec, "condition-2"))) == {"publish"}


def test_the_folds_fan_out_over_the_plan_and_the_export_collects_them(compiled):
    spec = compiled["seed", "vertex"]
    loop = tasks_of(spec)["for-loop-1"]
    assert loop.WhichOneof("iterator") == "parameter_iterator"
    assert loop.parameter_iterator.items.input_parameter == "pipelinechannel--plan-folds-Output"
    train = tasks_of(spec, sub_dag(spec, "for-loop-1"))["train-fold"]
    assert train.inputs.parameters["fold"].component_input_parameter == "pipelinechannel--plan-folds-Output-loop-item"
    assert component(spec, "export-ensemble").input_definitions.artifacts["folds"].is_artifact_list
    collected = tasks_of(spec)["export-ensemble"].inputs.artifacts["folds"]
    assert collected.task_output_artifact.producer_task == "for-loop-1"
    assert tasks_of(spec)["plan-folds"].inputs.parameters["n_folds"].component_input_parameter == "n_folds"


def test_the_gate_branch_publishes_and_neither_reads_a_cache(compiled):
    spec = compiled["smoke", "vertex"]
    condition = tasks_of(spec)["condition-2"]
    assert condition.trigger_policy.condition == "inputs.parameter_values['pipelinechannel--gate-signs-Output'] == true"
    assert not tasks_of(spec)["gate-signs"].caching_options.enable_cache
    assert not tasks_of(spec, sub_dag(spec, "condition-2"))["publish"].caching_options.enable_cache


def test_seed_trains_each_fold_on_a_gpu_with_the_cuda_image_and_the_rest_on_cpu(compiled):
    spec = compiled["seed", "vertex"]
    loop = sub_dag(spec, "for-loop-1")
    gpu = PRESETS["seed"].machine("train-fold")
    train = container(spec, "train-fold", loop)
    assert train.image == IMAGES["jax-cuda"]
    assert (train.resources.accelerator.resource_type, train.resources.accelerator.resource_count) == ("NVIDIA_L4", "1")
    assert (train.resources.resource_cpu_limit, train.resources.resource_memory_limit) == (gpu.cpu, gpu.memory)
    assert tasks_of(spec, loop)["train-fold"].retry_policy.max_retry_count == 2  # resumes from its checkpoint
    for task in ("validate", "plan-folds", "export-ensemble", "evaluate-signs", "gate-signs"):
        assert container(spec, task).image == IMAGES["cpu"], task
        assert not container(spec, task).resources.accelerator.resource_type, task
    assert container(spec, "export-ensemble").resources.resource_cpu_limit == "8"
    assert container(spec, "publish", sub_dag(spec, "condition-2")).image == IMAGES["cpu"]


def test_smoke_on_vertex_runs_everything_on_cpu_and_local_sets_nothing(compiled):
    described = describe(compiled["smoke", "vertex"])["tasks"]
    assert described.pop("importer") == described.pop("importer-2") == {"kind": "importer"}
    # the evaluation corpus is fingerprinted and validated too; no hold-out step in this form
    assert set(described) == (set(IMAGE_STEP) - {"hold-out-participants"}) | {"fingerprint-corpus-2", "validate-2"}
    assert {values["image"] for values in described.values()} == {IMAGES["cpu"]}
    assert all(values["cpu"] == "4" and "accelerator" not in values for values in described.values())
    for label, executor in compiled["seed", "local"].deployment.executors.items():
        if executor.WhichOneof("spec") == "container":
            assert executor.container.image == LOCAL_IMAGE, label
            assert not executor.container.resources.accelerator.resource_type, label


def test_artifact_types(compiled):
    spec = compiled["seed", "vertex"]

    def outputs(task, dag=None):
        return {name: a.artifact_type.schema_title for name, a in component(spec, task, dag).output_definitions.artifacts.items()}

    assert outputs("plan-folds") == {"plan": "system.Dataset", "metrics": "system.Metrics"}
    assert outputs("train-fold", sub_dag(spec, "for-loop-1")) == {"model": "system.Model", "metrics": "system.Metrics",
                                                                  "report": "system.HTML"}
    assert outputs("export-ensemble") == {"bundle": "system.Model", "metrics": "system.Metrics"}
    assert outputs("evaluate-signs") == {"evaluation": "system.Artifact", "metrics": "system.Metrics",
                                         "confusion": "system.ClassificationMetrics", "report": "system.HTML"}
    assert outputs("gate-signs") == {"verdict": "system.Artifact", "report": "system.HTML",
                                     "report_markdown": "system.Markdown", "metrics": "system.Metrics"}
    assert list(component(spec, "gate-signs").output_definitions.parameters) == ["Output"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_pipeline_parameters_default_to_the_preset(compiled, name):
    parameters = compiled[name, "vertex"].spec.root.input_definitions.parameters
    chosen = PRESETS[name]
    assert {"corpus_uri", "eval_corpus_uri", "registry"} <= {n for n, p in parameters.items() if not p.is_optional}
    assert parameters["n_folds"].default_value.number_value == chosen.n_folds
    assert parameters["signs_preset"].default_value.string_value == chosen.training.preset
    assert parameters["min_accuracy"].default_value.number_value == chosen.gate.min_accuracy
    assert parameters["max_mean_latency_ms"].default_value.number_value == chosen.gate.max_mean_latency_ms == 100.0
    assert parameters["max_model_mb"].default_value.number_value == 40.0
    assert parameters["quantize"].default_value.string_value == "fp16"


def test_overrides_reach_the_parameters_and_the_fold_training_config():
    base = PRESETS["smoke"].runtime_parameters()
    changed = apply_overrides(base, ["n_folds=4", "min_accuracy=0.6", "signs.epochs=5", "signs.width=32", "quantize=int8"])
    assert (changed["n_folds"], changed["min_accuracy"], changed["quantize"]) == (4, 0.6, "int8")
    assert changed["signs_overrides"] == {"epochs": "5", "width": "32"} and base["signs_overrides"] == {}
    check_training_overrides(changed)
    for bad, message in (("signs.n_folds=3", "set by the pipeline"), ("signs.y_scale=1.2", "set by the pipeline"),
                         ("signs.epoch=3", "did you mean epochs"), ("quantize=int4", "quantize"), ("n_folds=1", "at least 2")):
        with pytest.raises(ConfigError, match=message):
            check_training_overrides(apply_overrides(base, [bad]))
    for bad, message in (("finetune.total_steps=5", "no finetune stage"), ("n_fold=3", "did you mean n_folds"),
                         ("n_folds=2.5", "integer")):
        with pytest.raises(ConfigError, match=message):
            apply_overrides(base, [bad])


def test_compile_command_writes_the_seed_spec(tmp_path, capsys):
    out = tmp_path / "signs-seed.yaml"
    status = main(["compile", "isolated-signs", "--preset", "seed", "--out", str(out),
                   "--image-registry", "europe-west4-docker.pkg.dev/p/signpipe", "--image-tag", "abc123"])
    assert status == 0 and load_compiled(out).name == "signpipe-isolated-signs"
    printed = capsys.readouterr().out
    assert "train-fold" in printed and "NVIDIA_L4 x 1" in printed and "signpipe-jax-cuda:abc123" in printed


def test_submit_and_schedule_send_the_isolated_signs_run(vertex, capsys):  # noqa: F811 (the imported fixture)
    common = ["--project", vertex.project, "--region", REGION, "--pipeline-root", vertex.pipeline_root,
              "--service-account", SERVICE_ACCOUNT, "--image-registry", vertex.docker_registry, "--image-tag", "abc123",
              "--api-endpoint", vertex.api_endpoint, "--preset", "seed", "--data", "gs://data/asl-signs",
              "--eval-data", "gs://data/asl-signs-held-out"]
    assert main(["submit", "isolated-signs", *common, "signs.epochs=50", "n_folds=4"]) == 0
    assert "signpipe-isolated-signs-" in capsys.readouterr().out.replace("\n", "")
    body = recorded("POST", "/pipelineJobs")[0]["body"]
    values = body["runtimeConfig"]["parameterValues"]
    assert (values["corpus_uri"], values["eval_corpus_uri"]) == ("gs://data/asl-signs", "gs://data/asl-signs-held-out")
    assert values["n_folds"] == 4 and values["signs_overrides"] == {"epochs": "50"} and values["signs_preset"] == "seed"
    assert values["registry"] == f"vertex://{vertex.project}/{REGION}/signpipe-isolated-signs"
    assert body["labels"]["signpipe-pipeline"] == "isolated-signs" and body["labels"]["preset"] == "seed"
    spec = body["pipelineSpec"]
    assert spec["pipelineInfo"]["name"] == "signpipe-isolated-signs"
    train = spec["deploymentSpec"]["executors"][spec["components"]["comp-train-fold"]["executorLabel"]]["container"]
    assert train["image"].endswith("/signpipe-jax-cuda:abc123")
    assert train["resources"]["accelerator"]["resourceType"] == "NVIDIA_L4"

    assert main(["schedule", "isolated-signs", "--cron", "0 4 * * 1", *common, "--name", "signs-weekly"]) == 0
    (created,) = recorded("POST", "/schedules")
    job = created["body"]["createPipelineJobRequest"]["pipelineJob"]
    assert created["body"]["cron"] == "0 4 * * 1" and created["body"]["displayName"] == "signs-weekly"
    assert job["pipelineSpec"]["pipelineInfo"]["name"] == "signpipe-isolated-signs"
    assert job["runtimeConfig"]["parameterValues"]["n_folds"] == 5

    # a typo in a fold training override fails before anything is sent
    VertexRecorder.requests.clear()
    assert main(["submit", "isolated-signs", *common, "signs.epoch=50"]) == 2
    assert "did you mean epochs" in capsys.readouterr().err and not VertexRecorder.requests


def test_every_step_has_an_image_family():
    from signpipe.images import family_for_step

    for step, image_step in IMAGE_STEP.items():
        family = family_for_step(image_step, PRESETS["seed"].machine(step).accelerator_type or None)
        assert family.name == ("jax-cuda" if step == "train-fold" else "cpu"), step
