"""Pipeline presets: which stages a run has, how each training stage is configured, where each step
runs on Vertex AI.

A pipeline preset names a whole run the way a training preset names one stage (DESIGN.md
"Presets name whole runs"): `smoke` is the local plumbing check (minutes on 2 CPU cores, no
pretraining), `small` and `large` the seed's student/teacher sizes, `kaggle5th` the full recipe.
It is data, split in two by when it takes effect:

- compile time: the stages that exist in the DAG (`stages`) and the machine of every step
  (`machines`). Both change the compiled spec, so they are fixed by `--preset`.
- run time: everything else becomes a pipeline parameter (`runtime_parameters`), visible in the
  Vertex UI, changeable per run or per schedule without recompiling, and overridable from the
  command line with `key=value`: a parameter name (`min_score=0.3`, `n_shards=4`) or
  `STAGE.FIELD` for a training stage's config (`finetune.total_steps=300`,
  `distill.model.dropout=0`).

The isolated-signs pipeline has its own table of the same two halves (`pipelines.signs_presets`);
`preset(name, pipeline)` looks a preset up in the table of its pipeline, and `TaskPlacement`
(`pipelines.placement`, with `Machine` and `StageTraining`, which both tables use) places the steps
of either (each preset says which image family runs a step: `image_step`).

Machines: CPU steps get a CPU/memory size; GPU steps add `accelerator_type`/`accelerator_count`,
which a plain pipeline step can request; the TPU pretraining step has a TPU VM `machine_type`
(`ct5lp-hightpu-4t`, which bundles its chips: no accelerator fields) and a `tpu_topology` (which
decides how many VMs the slice has), which only a Vertex custom job can express, so that step is
compiled as a launcher that runs the training in a custom job (docs/pipelines.md explains why, and
which Vertex AI documentation the machines were checked against).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pipelines.placement import Machine, StageTraining, TaskPlacement  # noqa: F401 (also imported from here by name)
from signpipe.errors import ConfigError

# The stages of the fingerspelling recipe, in DAG order; those a preset may switch off are marked.
TRAINING_STAGES = ("pretrain", "finetune", "noisy_student", "distill")
OPTIONAL_STAGES = ("pretrain", "noisy_student", "distill")
# Pipeline step -> the step name `signpipe.images` knows it by (which image family runs it).
IMAGE_STEP = {
    "validate": "validate",
    # the head of the DAG (pipelines.corpora): small CPU steps on the validation image
    "fingerprint-corpus": "validate",
    "hold-out-participants": "validate",
    "check-held-out": "validate",
    "estimate-y-scale": "aspect_ratio",
    "plan-shards": "preprocess",
    "write-shard": "preprocess",
    "gather-shards": "preprocess",
    "pretrain": "pretrain",
    "finetune": "finetune",
    "align": "align",
    "noisy-student": "finetune",
    "distill": "distill",
    "export": "export",
    "evaluate": "evaluate",
    "gate": "gate",
    "publish": "publish",
}


@dataclasses.dataclass(frozen=True)
class GateThresholds:
    """What a new model must reach before it may replace the champion (`signpipe.export.gate`)."""

    min_score: float = 0.0
    max_model_mb: float = 40.0
    max_latency_p95_ms: float = 100.0
    """0 skips the latency criterion."""
    latency_frames: int = 128
    champion_margin: float = 0.0
    """How much worse than the current champion a new model may score and still replace it."""


@dataclasses.dataclass(frozen=True)
class PipelinePreset:
    """A named run: its optional stages, the config of each training stage, every step's machine,
    and the starting values of the run-time parameters."""

    name: str
    description: str
    stages: frozenset[str]
    training: dict[str, StageTraining]
    machines: dict[str, Machine]
    n_shards: int = 2
    validation_fraction: float = 0.05
    group_by_participant: bool = False
    y_scale_method: str = "rigid"
    align_min_confidence: float = 0.5
    align_min_character_confidence: float = 0.05
    """Alignments below these confidences are flagged and left out of CutMix (`signpipe.fingerspelling.align`)."""
    quantize: str = "fp16"
    export_graph: str = "fast"
    """`signpipe.fingerspelling.export` graph: "fast" (fixed-length copies, what production ships) or
    "dynamic" (one copy: a fraction of the conversion time)."""
    gate: GateThresholds = GateThresholds()
    synth_sequences: int = 200
    """Size of the synthetic corpus a local run generates when it is given no data."""
    synth_participants: int | None = None
    """Its signers (None: the generator's default, one per 50 sequences up to 40); the evaluation
    corpus gets a fifth as many, all others."""
    holdout_fraction: float = 0.2
    """Given a corpus and no evaluation corpus, about this share of its `train` sequences, whole
    participants, is held out of training to score the bundle on (`signpipe.data.holdout`)."""
    noisy_student_from_teacher: bool = False
    """Start the noisy student from the teacher's weights (EMA encoder and CTC head) rather than from
    the pretrained encoder or from scratch: on a budget of minutes the student then spends its steps
    improving on the teacher with CutMix instead of relearning what the teacher knew."""
    plumbing: bool = False
    """A check that every step runs, not a model: its score means nothing, so it has no score floor,
    its summary and gate report say so, and a local run publishes into a registry of its own
    (`pipelines.local.default_registry`), never the one real runs use."""

    def has(self, stage: str) -> bool:
        """Whether the DAG has `stage` (the noisy student brings its alignment step with it)."""
        if stage not in TRAINING_STAGES:
            raise ConfigError(f"unknown stage {stage!r} (expected one of: {', '.join(TRAINING_STAGES)})")
        return stage == "finetune" or stage in self.stages

    def image_step(self, step: str) -> str:
        """The `signpipe.images` step name of a pipeline step (which image family runs it)."""
        if step not in IMAGE_STEP:
            raise ConfigError(f"unknown pipeline step {step!r} (expected one of: {', '.join(IMAGE_STEP)})")
        return IMAGE_STEP[step]

    def machine(self, step: str) -> Machine:
        """The machine of a pipeline step (`IMAGE_STEP`'s names); CPU default when not listed."""
        if step not in IMAGE_STEP:
            raise ConfigError(f"unknown pipeline step {step!r} (expected one of: {', '.join(IMAGE_STEP)})")
        return self.machines.get(step, self.machines.get("default", Machine()))

    def runtime_parameters(self) -> dict[str, Any]:
        """The run-time pipeline parameters this preset starts from (see the module docstring)."""
        values: dict[str, Any] = {
            "n_shards": self.n_shards,
            "validation_fraction": self.validation_fraction,
            "group_by_participant": self.group_by_participant,
            "y_scale_method": self.y_scale_method,
            "align_min_confidence": self.align_min_confidence,
            "align_min_character_confidence": self.align_min_character_confidence,
            "quantize": self.quantize,
            "export_graph": self.export_graph,
            "min_score": self.gate.min_score,
            "max_model_mb": self.gate.max_model_mb,
            "max_latency_p95_ms": self.gate.max_latency_p95_ms,
            "latency_frames": self.gate.latency_frames,
            "champion_margin": self.gate.champion_margin,
        }
        for stage in TRAINING_STAGES:
            if stage in self.stages or stage == "finetune":
                training = self.training[stage]
                values[f"{stage}_preset"] = training.preset
                values[f"{stage}_overrides"] = dict(training.overrides)
        return values


def _check_preset(preset: PipelinePreset) -> PipelinePreset:
    if not preset.plumbing and not preset.gate.min_score > 0:
        raise ConfigError(f"preset {preset.name!r}: min_score {preset.gate.min_score} is no floor (an empty output "
                          "scores 0); only a plumbing preset may go without one")
    unknown = set(preset.stages) - set(OPTIONAL_STAGES)
    if unknown:
        raise ConfigError(f"preset {preset.name!r}: unknown optional stages {sorted(unknown)} (expected {OPTIONAL_STAGES})")
    missing = [s for s in TRAINING_STAGES if (s in preset.stages or s == "finetune") and s not in preset.training]
    if missing:
        raise ConfigError(f"preset {preset.name!r}: no training config for {', '.join(missing)}")
    for step in preset.machines:
        if step != "default" and step not in IMAGE_STEP:
            raise ConfigError(f"preset {preset.name!r}: machine for unknown step {step!r}")
    return preset


_CPU_SMALL = Machine(cpu="4", memory="16G")
_CPU_LARGE = Machine(cpu="8", memory="32G")
_L4 = Machine(cpu="8", memory="32G", accelerator_type="NVIDIA_L4", accelerator_count=1)
_A100 = Machine(cpu="12", memory="85G", accelerator_type="NVIDIA_TESLA_A100", accelerator_count=1)
# TPU v5e: one VM of 4 chips (2x2) for the small model; a 4x4 slice (16 chips on 4 VMs of
# ct5lp-hightpu-4t) for the large one. Vertex AI takes a TPU VM as its machine type and topology
# only, in one worker pool of one replica (docs/pipelines.md, "Checked against the Vertex AI
# documentation"); cpu/memory apply to plain steps only and are not sent.
_V5E_2X2 = Machine(cpu="24", memory="48G", machine_type="ct5lp-hightpu-4t", tpu_topology="2x2")
_V5E_4X4 = Machine(cpu="24", memory="48G", machine_type="ct5lp-hightpu-4t", tpu_topology="4x4")

# One padded length per stage (length_bucket = max_length): on 2 cores each distinct batch shape
# costs a compilation of the train and eval steps, which at these budgets outweighs the training.
_SMOKE_SHAPES = {"max_length": 128, "length_bucket": 128}
_SMOKE_TRAINING = {
    # Just enough steps for every stage to run its whole code path (train, evaluate, checkpoint)
    # on 2 shared cores; the smoke run checks plumbing, not accuracy.
    "pretrain": StageTraining("smoke", {**_SMOKE_SHAPES, "total_steps": 40, "warmup_steps": 5, "checkpoint_every": 40,
                                        "log_every": 10}),
    "finetune": StageTraining("smoke", {**_SMOKE_SHAPES, "total_steps": 100, "warmup_steps": 10, "batch_size": 16,
                                        "eval_every": 50, "checkpoint_every": 50, "log_every": 25}),
    "noisy_student": StageTraining("smoke", {**_SMOKE_SHAPES, "total_steps": 30, "warmup_steps": 3, "batch_size": 16,
                                             "eval_every": 30, "checkpoint_every": 30, "log_every": 10}),
    "distill": StageTraining("smoke", {**_SMOKE_SHAPES, "total_steps": 30, "warmup_steps": 3, "batch_size": 16,
                                       "eval_every": 30, "checkpoint_every": 30, "log_every": 10}),
}


# The main job on 2 CPU cores (`benchmarks/local_run.py` measures it; docs/decisions.md says how it was
# chosen): CTC finetuning alone, one padded length, a learning rate high enough to leave CTC's blank
# plateau within a few hundred steps. The other stages are off by the evidence of
# `benchmarks/recipe_ablation.py` at this model's scale (docs/results.md, 3 seeds, held-out signers):
# - pretrain: -0.0005 [-0.019, +0.018] with 10x unlabelled data, -0.013 with 15% of the labels (below
#   zero in every seed), and the longest stage (one pretraining run = three finetuning runs);
# - noisy_student: +0.0075 [+0.002, +0.013] over the teacher at equal steps (5 seeds), but it needs the
#   teacher's run and an alignment first, about doubling the job; as many more teacher steps scored the
#   same in the one run that compared them (0.888 vs 0.884), so the minutes go to the teacher;
# - distill: +0.009 for a 1x64 student over the same student alone, but still below its teacher; the
#   tiny model is 0.4 MB, there is nothing to shrink.
_LOCAL_TRAINING = {"finetune": StageTraining("local")}  # its one padded length is the training preset's


def _seed_training(size: str) -> dict[str, StageTraining]:
    return {stage: StageTraining(size) for stage in TRAINING_STAGES}


PRESETS: dict[str, PipelinePreset] = {
    preset.name: _check_preset(preset)
    for preset in (
        PipelinePreset(
            name="local",
            description=("the main job on one machine: a real model in minutes on 2 CPU cores (CTC finetuning; the "
                         "other stages do not pay at this budget), scored on signers it never saw"),
            stages=frozenset(),
            training=_LOCAL_TRAINING,
            machines={"default": _CPU_SMALL},
            n_shards=2,
            export_graph="dynamic",
            gate=GateThresholds(min_score=0.5, max_model_mb=40.0, max_latency_p95_ms=200.0, latency_frames=128),
            synth_sequences=2000,
            # many signers with few sequences each: what a model must generalize over is the signer
            synth_participants=200,
        ),
        PipelinePreset(
            name="smoke",
            description=("plumbing check, not a model: every stage but pretraining with tiny budgets, its score means "
                         "nothing (tests; seconds per stage on 2 cores)"),
            stages=frozenset({"noisy_student", "distill"}),
            training=_SMOKE_TRAINING,
            machines={"default": _CPU_SMALL},
            n_shards=1,
            # a teacher of a hundred steps is barely better than chance: keep all its alignments,
            # so CutMix and distillation still run their whole code path
            align_min_confidence=0.0,
            align_min_character_confidence=0.0,
            export_graph="dynamic",
            gate=GateThresholds(min_score=0.0, max_model_mb=40.0, max_latency_p95_ms=1000.0, latency_frames=64),
            synth_sequences=200,
            plumbing=True,
        ),
        PipelinePreset(
            name="small",
            description="the seed's recipe at the 24x256 size: pretraining on a TPU v5e 2x2, training on one L4",
            # every stage: the seed's scale, where it measured their gains; what recipe_ablation measures on
            # a 2-layer model on 2 cores does not transfer (docs/results.md says why pretraining fails there)
            stages=frozenset(OPTIONAL_STAGES),
            training=_seed_training("small"),
            machines={"default": _CPU_SMALL, "pretrain": _V5E_2X2, "finetune": _L4, "noisy-student": _L4,
                      "distill": _L4, "align": _CPU_LARGE, "export": _CPU_LARGE, "evaluate": _CPU_LARGE},
            n_shards=8,
            gate=GateThresholds(min_score=0.5, max_model_mb=40.0, max_latency_p95_ms=100.0, latency_frames=128),
            synth_sequences=2000,
        ),
        PipelinePreset(
            name="large",
            description="the seed's 24x1024 teacher: pretraining on a TPU v5e 4x4 slice (4 hosts), training on one A100",
            stages=frozenset(OPTIONAL_STAGES),
            training={**_seed_training("large"), "distill": StageTraining("small")},
            machines={"default": _CPU_SMALL, "pretrain": _V5E_4X4, "finetune": _A100, "noisy-student": _A100,
                      "distill": _A100, "align": _CPU_LARGE, "export": _CPU_LARGE, "evaluate": _CPU_LARGE},
            n_shards=16,
            gate=GateThresholds(min_score=0.6, max_model_mb=40.0, max_latency_p95_ms=100.0, latency_frames=128),
            synth_sequences=5000,
        ),
        PipelinePreset(
            name="kaggle5th",
            description="the 5th place recipe end to end: large teacher, noisy student, distilled 24x256 student",
            stages=frozenset(OPTIONAL_STAGES),
            training={**_seed_training("kaggle5th"), "distill": StageTraining("small")},
            machines={"default": _CPU_SMALL, "pretrain": _V5E_4X4, "finetune": _A100, "noisy-student": _A100,
                      "distill": _A100, "align": _CPU_LARGE, "export": _CPU_LARGE, "evaluate": _CPU_LARGE},
            n_shards=32,
            gate=GateThresholds(min_score=0.7, max_model_mb=40.0, max_latency_p95_ms=100.0, latency_frames=128),
            synth_sequences=5000,
        ),
    )
}


PIPELINE_PRESETS = {"fingerspelling": "pipelines.presets", "isolated-signs": "pipelines.signs_presets"}
"""Pipeline name -> the module whose `PRESETS` table names its runs."""


def presets_of(pipeline: str) -> Mapping[str, Any]:
    """The preset table of `pipeline` (each preset has `machine`, `image_step`, `runtime_parameters`)."""
    import importlib

    if pipeline not in PIPELINE_PRESETS:
        raise ConfigError(f"unknown pipeline {pipeline!r} (expected one of: {', '.join(PIPELINE_PRESETS)})")
    return importlib.import_module(PIPELINE_PRESETS[pipeline]).PRESETS


def preset(name: str, pipeline: str = "fingerspelling") -> Any:
    """Preset `name` of `pipeline` (a `PipelinePreset` for fingerspelling,
    `pipelines.signs_presets.SignsPipelinePreset` for isolated signs)."""
    table = presets_of(pipeline)
    try:
        return table[name]
    except KeyError:
        raise ConfigError(f"unknown pipeline preset {name!r} of {pipeline} (expected one of: {', '.join(table)})") from None


def _parse_value(text: str) -> Any:
    """A command-line value as JSON when it parses (numbers, booleans, objects), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(parameters: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """`parameters` with `key=value` items applied: a parameter name, or `STAGE.FIELD` for a
    training stage's overrides (`finetune.total_steps=300`; the training config checks the field
    and its type when the stage runs, and `signpipe.fingerspelling.config` before submission, see
    `check_training_overrides`)."""
    values = {key: (dict(value) if isinstance(value, Mapping) else value) for key, value in parameters.items()}
    for item in overrides:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. min_score=0.3 or finetune.total_steps=300")
        stage, dot, field = key.partition(".")
        if dot and (stage in TRAINING_STAGES or f"{stage}_overrides" in values):
            slot = f"{stage}_overrides"
            if slot not in values:
                raise ConfigError(f"override {item!r}: the preset has no {stage} stage")
            values[slot][field] = raw.strip()
            continue
        if key not in values:
            stages = [f"{name.removesuffix('_overrides')}.FIELD" for name in values if name.endswith("_overrides")]
            close = difflib.get_close_matches(key, list(values) + stages, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; known: {', '.join(sorted(values))}"
            raise ConfigError(f"override {item!r}: unknown pipeline parameter {key!r}{hint}")
        current, value = values[key], _parse_value(raw.strip())
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"override {item!r}: {key} expects true or false")
        elif isinstance(current, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"override {item!r}: {key} expects a number")
            if isinstance(current, int) and not float(value).is_integer():
                raise ConfigError(f"override {item!r}: {key} expects an integer")
            value = type(current)(value)
        elif isinstance(current, str):
            value = raw.strip()
        elif isinstance(current, dict) and not isinstance(value, dict):
            raise ConfigError(f"override {item!r}: {key} expects a JSON object")
        values[key] = value
    return values


def resolved_stage_configs(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The config each training stage of a run trains with, from the run's pipeline parameters
    (`runtime_parameters()` with any `key=value` applied): `resolve_config(stage, STAGE_preset,
    STAGE_overrides)`, the call each training step makes (components/fingerspelling/finetune.py, ...), for every
    stage the run has; for the isolated-signs pipeline, its one fold training config under
    `"signs"` (components/signs/plan.py's call). Stage -> config object (its `to_dict()` is what
    a workdir's config.json holds, less `data_dir`, which the run sets)."""
    if "signs_preset" in parameters:  # the isolated-signs pipeline: one fold training config
        from pipelines.signs_presets import TRAINING_PREFIX
        from signpipe.signs.config import resolve_config as resolve_signs

        # the fold split and y scale are the pipeline's (its fold plan sets them on every fold's config:
        # `signpipe.signs.fold_plan.fold_config`); a y_scale of 0 is estimated by the plan step
        return {TRAINING_PREFIX: resolve_signs(parameters[f"{TRAINING_PREFIX}_preset"],
                                               dict(parameters[f"{TRAINING_PREFIX}_overrides"]),
                                               n_folds=parameters["n_folds"], fold_seed=parameters["fold_seed"],
                                               y_scale=parameters["y_scale"])}
    from signpipe.fingerspelling.config import STAGES, resolve_config

    return {stage: resolve_config(stage, parameters[f"{stage}_preset"], parameters[f"{stage}_overrides"])
            for stage in TRAINING_STAGES if f"{stage}_preset" in parameters and stage in STAGES}


def resolve_preset(pipeline: str, name: str, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """What pipeline preset `name` (with `key=value` overrides, as `signpipe run` takes them) runs,
    stage by stage: the stages in its DAG, each training stage's preset, the overrides the pipeline
    preset puts on it and the config it resolves to (`resolved_stage_configs`), and the other
    run-time parameters (gate thresholds, shards, quantization, ...). `signpipe presets` prints it."""
    chosen = preset(name, pipeline)
    parameters = apply_overrides(chosen.runtime_parameters(), overrides)
    check_training_overrides(parameters)
    configs = resolved_stage_configs(parameters)
    if pipeline == "fingerspelling":
        stages = [step for step in ("pretrain", "finetune", "align", "noisy_student", "distill")
                  if (step == "align" and chosen.has("noisy_student")) or (step != "align" and chosen.has(step))]
        stages = ["validate", "estimate-y-scale", "preprocess", *stages, "export", "evaluate", "gate", "publish"]
    else:
        stages = ["validate", "plan-folds", f"train-fold x {parameters['n_folds']}", "export-ensemble",
                  "evaluate-signs", "gate-signs", "publish"]
    training = {stage: {"preset": parameters[f"{stage}_preset"], "overrides": dict(parameters[f"{stage}_overrides"]),
                        "config": {key: value for key, value in config.to_dict().items() if key not in ("data_dir", "fold")}}
                for stage, config in configs.items()}
    others = {key: value for key, value in parameters.items()
              if not (key.endswith("_preset") or key.endswith("_overrides"))}
    return {"pipeline": pipeline, "preset": chosen.name, "description": chosen.description,
            "plumbing": chosen.plumbing, "stages": stages, "training": training, "parameters": others}


def check_training_overrides(parameters: Mapping[str, Any]) -> None:
    """Resolve every training stage's config that `signpipe.fingerspelling.config` knows, so a typo in
    `finetune.total_step=...` fails on the submitting machine instead of an hour into a run."""
    if "signs_preset" in parameters:  # the isolated-signs pipeline: one fold training config
        from pipelines.signs_presets import check_signs_parameters

        check_signs_parameters(parameters)
        return
    resolved_stage_configs(parameters)
