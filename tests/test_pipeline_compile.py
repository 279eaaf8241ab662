"""Compile every pipeline with every preset and check the spec: it parses into kfp's protos, has
the recipe's tasks and edges, typed artifacts, images and machines from the preset, and publish
only under the gate's If."""

from __future__ import annotations

import pytest
from google.protobuf import json_format

from components import LOCAL_IMAGE
from pipelines.compile import PIPELINES, compile_pipeline, describe, load_compiled
from pipelines.presets import PRESETS, presets_of
from signpipe.errors import ConfigError, SignpipeError

IMAGES = {
    "cpu": "europe-west4-docker.pkg.dev/p/signpipe/signpipe-cpu:abc123",
    "jax-tpu": "europe-west4-docker.pkg.dev/p/signpipe/signpipe-jax-tpu:abc123",
    "jax-cuda": "europe-west4-docker.pkg.dev/p/signpipe/signpipe-jax-cuda:abc123",
}
ALWAYS = {"importer", "importer-2", "fingerprint-corpus", "fingerprint-corpus-2", "validate", "validate-2", "check-held-out",
          "estimate-y-scale", "plan-shards", "for-loop-1", "gather-shards", "finetune", "export", "evaluate", "gate"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Every (pipeline, preset, target) compiled once, read back from its file."""
    out = tmp_path_factory.mktemp("specs")
    specs = {}
    for pipeline in PIPELINES:
        for preset in presets_of(pipeline):
            for target in ("vertex", "local"):
                path = out / f"{pipeline}-{preset}-{target}.yaml"
                result = compile_pipeline(pipeline, preset, path, target=target, images=IMAGES if target == "vertex" else None)
                assert result.path == path and path.is_file()
                specs[pipeline, preset, target] = load_compiled(path)
    return specs


def root_tasks(spec):
    return spec.spec.root.dag.tasks


def component(spec, task_name, dag=None):
    tasks = dag.tasks if dag is not None else root_tasks(spec)
    return spec.spec.components[tasks[task_name].component_ref.name]


def container(spec, task_name, dag=None):
    return spec.deployment.executors[component(spec, task_name, dag).executor_label].container


def constant(task, name):
    return json_format.MessageToDict(task.inputs.parameters[name].runtime_value.constant)


def condition_dag(spec):
    return spec.spec.components[root_tasks(spec)["condition-2"].component_ref.name].dag


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_tasks_and_edges_follow_the_recipe(compiled, preset):
    spec = compiled["fingerspelling", preset, "vertex"]
    tasks = root_tasks(spec)
    chosen = PRESETS[preset]
    expected = set(ALWAYS) | {"condition-2"}
    if chosen.has("pretrain"):
        expected.add("pretrain-on-custom-job" if chosen.machine("pretrain").custom_job else "pretrain")
    if chosen.has("noisy_student"):
        expected |= {"align", "noisy-student"}
    if chosen.has("distill"):
        expected.add("distill")
    assert set(tasks) == expected

    def upstream(name):
        return set(tasks[name].dependent_tasks)

    assert upstream("validate") == {"importer", "fingerprint-corpus"}
    assert upstream("validate-2") == {"importer-2", "fingerprint-corpus-2"}
    assert {"importer", "importer-2", "validate", "validate-2"} <= upstream("check-held-out")
    # training starts once both corpora are valid and share no signers
    assert {"importer", "validate", "validate-2", "check-held-out", "fingerprint-corpus"} <= upstream("estimate-y-scale")
    assert {"validate", "validate-2", "check-held-out"} <= upstream("plan-shards")
    assert upstream("for-loop-1") == {"plan-shards"}
    assert {"estimate-y-scale", "for-loop-1", "plan-shards"} <= upstream("gather-shards")
    pretrain_task = next((t for t in tasks if t.startswith("pretrain")), None)
    assert "gather-shards" in upstream("finetune")
    assert (pretrain_task in upstream("finetune")) == chosen.has("pretrain")
    last_teacher = "noisy-student" if chosen.has("noisy_student") else "finetune"
    if chosen.has("noisy_student"):
        assert "finetune" in upstream("align") and "align" in upstream("noisy-student")
    if chosen.has("distill"):
        assert last_teacher in upstream("distill")
        assert "distill" in upstream("export")
    else:
        assert last_teacher in upstream("export")
    assert {"export", "importer-2", "fingerprint-corpus-2"} <= upstream("evaluate")
    assert {"evaluate", "export", "importer-2", "check-held-out"} <= upstream("gate")
    assert "gate" in upstream("condition-2")


def test_smoke_has_no_pretraining_and_small_has_it_on_a_tpu_custom_job(compiled):
    assert not any(t.startswith("pretrain") for t in root_tasks(compiled["fingerspelling", "smoke", "vertex"]))
    small = compiled["fingerspelling", "small", "vertex"]
    launcher = root_tasks(small)["pretrain-on-custom-job"]
    machine = constant(launcher, "machine")
    assert machine["machine_type"] == "ct5lp-hightpu-4t"
    assert not machine["accelerator_type"] and not machine["accelerator_count"]  # the TPU VM type bundles its chips
    assert machine["tpu_topology"] == "2x2"
    assert constant(launcher, "image_uri") == IMAGES["jax-tpu"]
    # the job's identity, resolved by Vertex at run time: the same for every retry of the task
    assert (constant(launcher, "run_name"), constant(launcher, "task_name")) == ("{{$.pipeline_job_name}}",
                                                                              "{{$.pipeline_task_name}}")
    # the launcher itself only submits and waits: CPU image, no accelerator
    assert container(small, "pretrain-on-custom-job").image == IMAGES["cpu"]
    assert not container(small, "pretrain-on-custom-job").resources.accelerator.resource_type
    large = compiled["fingerspelling", "large", "vertex"]
    machine = constant(root_tasks(large)["pretrain-on-custom-job"], "machine")
    assert (machine["tpu_topology"], machine["replica_count"]) == ("4x4", 1.0)  # one replica: the topology sets the VMs


@pytest.mark.parametrize("preset", ["small", "large", "kaggle5th"])
def test_training_steps_get_gpus_and_their_image_the_rest_cpu(compiled, preset):
    spec = compiled["fingerspelling", preset, "vertex"]
    gpu = PRESETS[preset].machine("finetune")
    for task in ("finetune", "noisy-student", "distill"):
        resources = container(spec, task).resources
        assert container(spec, task).image == IMAGES["jax-cuda"]
        assert resources.accelerator.resource_type == gpu.accelerator_type
        assert resources.accelerator.resource_count == str(gpu.accelerator_count)
        assert resources.resource_cpu_limit == gpu.cpu and resources.resource_memory_limit == gpu.memory
    for task in ("validate", "estimate-y-scale", "plan-shards", "gather-shards", "align", "export", "evaluate", "gate"):
        assert container(spec, task).image == IMAGES["cpu"]
        assert not container(spec, task).resources.accelerator.resource_type
    loop = spec.spec.components[root_tasks(spec)["for-loop-1"].component_ref.name].dag
    assert container(spec, "write-shard", loop).image == IMAGES["cpu"]
    assert container(spec, "publish", condition_dag(spec)).image == IMAGES["cpu"]


def test_smoke_on_vertex_runs_everything_on_cpu(compiled):
    spec = compiled["fingerspelling", "smoke", "vertex"]
    described = describe(spec)["tasks"]
    assert described.pop("importer") == described.pop("importer-2") == {"kind": "importer"}
    assert set(described) >= {"finetune", "distill", "publish", "write-shard"}
    assert {values["image"] for values in described.values()} == {IMAGES["cpu"]}
    assert not any("accelerator" in values for values in described.values())
    assert all(values["cpu"] == "4" and values["memory"] == "16G" for values in described.values())


def test_local_target_sets_no_machines_and_keeps_the_local_image(compiled):
    spec = compiled["fingerspelling", "small", "local"]
    assert "pretrain" in root_tasks(spec)  # the in-process form: no custom job locally
    for label, executor in spec.deployment.executors.items():
        if executor.WhichOneof("spec") == "container" and executor.container.image != "":
            assert executor.container.image == LOCAL_IMAGE, label
            assert not executor.container.resources.resource_cpu_limit


def test_artifact_types(compiled):
    spec = compiled["fingerspelling", "small", "vertex"]

    def outputs(task, dag=None):
        definitions = component(spec, task, dag).output_definitions
        return {name: a.artifact_type.schema_title for name, a in definitions.artifacts.items()}, {
            name: p.parameter_type for name, p in definitions.parameters.items()}

    def inputs(task, dag=None):
        return {name: a.artifact_type.schema_title for name, a in component(spec, task, dag).input_definitions.artifacts.items()}

    assert outputs("validate")[0] == {"summary": "system.Metrics", "report": "system.Markdown"}
    assert outputs("estimate-y-scale")[0] == {"estimate": "system.Artifact", "metrics": "system.Metrics"}
    assert outputs("gather-shards")[0] == {"features": "system.Dataset", "metrics": "system.Metrics"}
    for task in ("finetune", "noisy-student", "distill", "pretrain-on-custom-job"):
        assert outputs(task)[0] == {"model": "system.Model", "metrics": "system.Metrics", "report": "system.HTML"}
    assert inputs("finetune") == {"features": "system.Dataset", "pretrained": "system.Model"}
    assert component(spec, "finetune").input_definitions.artifacts["pretrained"].is_optional
    assert outputs("align")[0] == {"alignments": "system.Dataset", "metrics": "system.Metrics", "report": "system.HTML"}
    assert outputs("export")[0] == {"bundle": "system.Model"}
    assert outputs("evaluate")[0] == {"evaluation": "system.Artifact", "metrics": "system.Metrics", "report": "system.HTML"}
    gate_artifacts, gate_parameters = outputs("gate")
    assert gate_artifacts == {"verdict": "system.Artifact", "report": "system.HTML", "report_markdown": "system.Markdown",
                              "metrics": "system.Metrics"}
    assert list(gate_parameters) == ["Output"]
    assert inputs("gather-shards")["shards"] == "system.Dataset"
    assert component(spec, "gather-shards").input_definitions.artifacts["shards"].is_artifact_list
    assert outputs("publish", condition_dag(spec))[0] == {"published": "system.Artifact"}


def test_fan_out_and_the_gate_branch(compiled):
    spec = compiled["fingerspelling", "smoke", "vertex"]
    loop = root_tasks(spec)["for-loop-1"]
    assert loop.WhichOneof("iterator") == "parameter_iterator"
    assert loop.parameter_iterator.items.input_parameter == "pipelinechannel--plan-shards-Output"
    condition = root_tasks(spec)["condition-2"]
    assert condition.trigger_policy.condition == "inputs.parameter_values['pipelinechannel--gate-Output'] == true"
    assert set(condition_dag(spec).tasks) == {"publish"}
    # gate and publish read the registry: never served from cache
    assert not root_tasks(spec)["gate"].caching_options.enable_cache
    assert not condition_dag(spec).tasks["publish"].caching_options.enable_cache
    assert root_tasks(spec)["finetune"].retry_policy.max_retry_count == 2


def test_pipeline_parameters_default_to_the_preset(compiled):
    spec = compiled["fingerspelling", "smoke", "vertex"]
    parameters = spec.spec.root.input_definitions.parameters
    assert {"corpus_uri", "eval_corpus_uri", "registry"} <= {name for name, p in parameters.items() if not p.is_optional}
    smoke = PRESETS["smoke"]
    assert parameters["finetune_preset"].default_value.string_value == "smoke"
    assert parameters["finetune_overrides"].default_value.struct_value["total_steps"] == smoke.training["finetune"].overrides["total_steps"]
    assert parameters["min_score"].default_value.number_value == smoke.gate.min_score
    assert parameters["n_shards"].default_value.number_value == smoke.n_shards


def test_compile_refuses_what_vertex_cannot_run(tmp_path):
    with pytest.raises(ConfigError, match="missing"):
        compile_pipeline("fingerspelling", "small", tmp_path / "a.yaml", target="vertex", images={"cpu": IMAGES["cpu"]})
    with pytest.raises(ConfigError, match="unknown pipeline preset"):
        compile_pipeline("fingerspelling", "huge", tmp_path / "b.yaml", images=IMAGES)
    with pytest.raises(ConfigError, match="unknown pipeline"):
        compile_pipeline("isolated", "smoke", tmp_path / "c.yaml", images=IMAGES)
    with pytest.raises(ConfigError, match=".yaml"):
        compile_pipeline("fingerspelling", "smoke", tmp_path / "d.txt", images=IMAGES)
    assert not any(tmp_path.iterdir())


def test_malformed_specs_fail_to_load(tmp_path, compiled):
    source = compiled["fingerspelling", "smoke", "vertex"].path.read_text()
    broken = tmp_path / "broken.yaml"
    assert "name: comp-validate\n" in source
    broken.write_text(source.replace("name: comp-validate\n", "name: comp-nowhere\n"))
    with pytest.raises(SignpipeError, match="comp-nowhere"):
        load_compiled(broken)
    unknown_field = tmp_path / "unknown.yaml"
    unknown_field.write_text(source.replace("pipelineInfo:", "pipelineInformation:", 1))
    with pytest.raises(SignpipeError, match="PipelineSpec"):
        load_compiled(unknown_field)
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(SignpipeError):
        load_compiled(tmp_path / "empty.yaml")


def test_overrides_reach_parameters_and_training_configs():
    from pipelines.presets import apply_overrides, check_training_overrides

    base = PRESETS["smoke"].runtime_parameters()
    changed = apply_overrides(base, ["min_score=0.25", "n_shards=3", "group_by_participant=true", "quantize=int8",
                                     "finetune.total_steps=50", "distill.model.dropout=0"])
    assert (changed["min_score"], changed["n_shards"], changed["group_by_participant"], changed["quantize"]) == (0.25, 3, True, "int8")
    assert changed["finetune_overrides"]["total_steps"] == "50" and changed["distill_overrides"]["model.dropout"] == "0"
    assert base["finetune_overrides"]["total_steps"] == PRESETS["smoke"].training["finetune"].overrides["total_steps"]
    check_training_overrides(changed)
    for bad, message in (("min_scor=1", "did you mean min_score"), ("n_shards=1.5", "integer"), ("min_score=high", "number"),
                         ("group_by_participant=3", "true or false"), ("pretrain.total_steps=5", "no pretrain stage"),
                         ("nokey", "key=value")):
        with pytest.raises(ConfigError, match=message):
            apply_overrides(base, [bad])
    with pytest.raises(ConfigError, match="total_step"):
        check_training_overrides(apply_overrides(base, ["finetune.total_step=5"]))


def test_machines_are_checked_and_become_worker_pools():
    from pipelines.presets import Machine

    with pytest.raises(ConfigError, match="machine_type"):
        Machine(accelerator_type="TPU_V5_LITEPOD", accelerator_count=4)
    with pytest.raises(ConfigError, match="both a type"):
        Machine(accelerator_type="NVIDIA_L4")
    with pytest.raises(ConfigError, match="cpu"):
        Machine(cpu="four")
    with pytest.raises(ConfigError, match="custom job"):
        Machine().worker_pool_specs("image", ["signpipe"], [])
    assert PRESETS["smoke"].machine("finetune") == PRESETS["smoke"].machines["default"]


# What the Vertex AI documentation allows for TPU v5e training (docs/pipelines.md, "Checked against
# the Vertex AI documentation"): configure-compute#tpu lists the machine types with their topologies
# and VMs, a TPU VM's machine spec is its machine type and tpuTopology (no acceleratorType or
# acceleratorCount), and the job has a single worker pool with one replica.
DOCUMENTED_V5E = {  # (machine type, topology): (chips, VMs)
    ("ct5lp-hightpu-1t", "1x1"): (1, 1), ("ct5lp-hightpu-4t", "2x2"): (4, 1), ("ct5lp-hightpu-8t", "2x4"): (8, 1),
    ("ct5lp-hightpu-4t", "2x4"): (8, 2), ("ct5lp-hightpu-4t", "4x4"): (16, 4), ("ct5lp-hightpu-4t", "4x8"): (32, 8),
    ("ct5lp-hightpu-4t", "8x8"): (64, 16), ("ct5lp-hightpu-4t", "8x16"): (128, 32), ("ct5lp-hightpu-4t", "16x16"): (256, 64),
}


@pytest.mark.parametrize(("machine_type", "topology"), sorted(DOCUMENTED_V5E))
def test_every_documented_v5e_shape_is_one_pool_of_one_replica(machine_type, topology):
    from pipelines.presets import Machine

    machine = Machine(machine_type=machine_type, tpu_topology=topology)
    assert (machine.accelerator, machine.hosts) == ("TPU_V5_LITEPOD", DOCUMENTED_V5E[machine_type, topology][1])
    (pool,) = machine.worker_pool_specs("tpu-image", ["signpipe"], ["train", "pretrain"])
    assert pool["machine_spec"] == {"machine_type": machine_type, "tpu_topology": topology}
    assert pool["replica_count"] == 1
    hosts = DOCUMENTED_V5E[machine_type, topology][1]
    assert pool["container_spec"].get("env", []) == ([{"name": "SIGNPIPE_TPU_HOSTS", "value": str(hosts)}] if hosts > 1 else [])


def test_tpu_presets_send_the_documented_worker_pool_shape():
    small, large = PRESETS["small"].machine("pretrain"), PRESETS["large"].machine("pretrain")
    assert PRESETS["kaggle5th"].machine("pretrain") == large
    pools = large.worker_pool_specs("tpu-image", ["signpipe"], ["train", "pretrain"])
    assert pools == [{
        "machine_spec": {"machine_type": "ct5lp-hightpu-4t", "tpu_topology": "4x4"},
        "replica_count": 1,
        "container_spec": {"image_uri": "tpu-image", "command": ["signpipe"], "args": ["train", "pretrain"],
                           "env": [{"name": "SIGNPIPE_TPU_HOSTS", "value": "4"}]},
    }]
    assert small.worker_pool_specs("tpu-image", ["signpipe"], []) == [{
        "machine_spec": {"machine_type": "ct5lp-hightpu-4t", "tpu_topology": "2x2"}, "replica_count": 1,
        "container_spec": {"image_uri": "tpu-image", "command": ["signpipe"], "args": []}}]
    assert (small.hosts, large.hosts) == (1, 4)


def test_tpu_machines_outside_the_documentation_are_refused():
    from pipelines.presets import Machine
    from signpipe.custom_jobs import worker_pool_specs

    with pytest.raises(ConfigError, match="no accelerator_type"):
        Machine(machine_type="ct5lp-hightpu-4t", tpu_topology="2x2", accelerator_type="TPU_V5_LITEPOD", accelerator_count=4)
    with pytest.raises(ConfigError, match="replica_count must be 1"):
        Machine(machine_type="ct5lp-hightpu-4t", tpu_topology="4x4", replica_count=4)
    with pytest.raises(ConfigError, match="not one Vertex AI trains on"):
        Machine(machine_type="ct5lp-hightpu-8t", tpu_topology="4x4")
    with pytest.raises(ConfigError, match="not one Vertex AI trains on"):
        Machine(machine_type="ct5lp-hightpu-4t")
    with pytest.raises(ConfigError, match="not checked"):
        Machine(machine_type="ct6e-standard-4t", tpu_topology="2x2")
    with pytest.raises(ConfigError, match="TPU VM machine type"):
        Machine(machine_type="a2-highgpu-1g", tpu_topology="2x2")
    # the launcher checks the machine it is handed (a dict from a compiled spec) the same way
    with pytest.raises(ConfigError, match="replica_count must be 1"):
        worker_pool_specs({"machine_type": "ct5lp-hightpu-4t", "tpu_topology": "4x4", "replica_count": 4}, "i", [], [])
    # GPU machines keep Vertex's distributed layout: the primary replica, then the workers
    gpus = Machine(machine_type="a2-highgpu-1g", accelerator_type="NVIDIA_TESLA_A100", accelerator_count=1, replica_count=3)
    assert gpus.accelerator == "NVIDIA_TESLA_A100" and gpus.hosts == 3
    pools = gpus.worker_pool_specs("cuda-image", ["signpipe"], [])
    assert [pool["replica_count"] for pool in pools] == [1, 2]
    assert pools[0]["machine_spec"] == pools[1]["machine_spec"] == {
        "machine_type": "a2-highgpu-1g", "accelerator_type": "NVIDIA_TESLA_A100", "accelerator_count": 1}


def test_every_real_preset_has_a_score_floor_and_only_plumbing_goes_without():
    import dataclasses

    from pipelines.presets import GateThresholds, _check_preset

    for name, chosen in PRESETS.items():
        assert chosen.plumbing or chosen.gate.min_score >= 0.5, name  # an empty output scores 0
    assert PRESETS["smoke"].plumbing and not PRESETS["local"].plumbing
    with pytest.raises(ConfigError, match="no floor"):
        _check_preset(dataclasses.replace(PRESETS["local"], gate=GateThresholds(min_score=0.0)))


def test_the_local_preset_exports_its_teacher_and_a_noisy_student_can_start_from_it(compiled, tmp_path):
    import dataclasses

    from kfp import compiler

    from pipelines.fingerspelling import build_pipeline
    from pipelines.presets import StageTraining

    spec = compiled["fingerspelling", "local", "local"]
    assert "finetune" in root_tasks(spec)["export"].dependent_tasks
    assert constant(root_tasks(spec)["gate"], "plumbing") is False
    assert constant(root_tasks(compiled["fingerspelling", "smoke", "local"])["gate"], "plumbing") is True
    smoke_student = root_tasks(compiled["fingerspelling", "smoke", "local"])["noisy-student"]
    assert "pretrained" not in smoke_student.inputs.artifacts  # smoke's student starts from scratch

    chosen = dataclasses.replace(PRESETS["local"], stages=frozenset({"noisy_student"}), noisy_student_from_teacher=True,
                                 training={**PRESETS["local"].training, "noisy_student": StageTraining("local")})
    path = tmp_path / "continued.yaml"
    compiler.Compiler().compile(build_pipeline(chosen, "local"), str(path))
    student = root_tasks(load_compiled(path))["noisy-student"]
    assert student.inputs.artifacts["pretrained"].task_output_artifact.producer_task == "finetune"
