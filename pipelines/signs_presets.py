"""Presets of the isolated-signs pipeline (`pipelines/isolated_signs.py`): the table parallel to
the fingerspelling presets of `pipelines.presets`, with the same two halves.

- compile time: the machine of every step (`machines`), which changes the compiled spec.
- run time: everything else is a pipeline parameter (`runtime_parameters`), overridable per run
  with `key=value`: a parameter (`n_folds=3`, `min_accuracy=0.6`) or `signs.FIELD` for the fold
  training config (`signs.epochs=20`, `signs.width=256`; `signpipe.signs.config`, checked before
  anything runs or is submitted). The fold split and the y scale belong to the pipeline
  (`n_folds`, `fold_seed`, `y_scale`), not to `signs.*`, because every fold must agree on them.

Presets:
- `local`: the main job on one machine: 2 folds of the training `local` preset (a 128-wide model,
  15 epochs of batch 24), fp16, every step on CPU. Given no data, a local run trains on a synthetic
  corpus of 3000 sequences (12 per sign) by 12 signers and scores the ensemble on 750 sequences of
  other signers: 0.95-0.98 accuracy on unseen synthetic signers in about 4-5 minutes on 2 CPU
  cores shared with other work (a warm compilation cache saves about 45 s). Two folds, because
  kfp's local runner trains two folds at a time: a third fold would cost a second round. Its gate
  asks for accuracy 0.5 and more than the majority baseline.
- `smoke`: a plumbing check, not a model: 3 folds of the training `smoke` preset (a 64-wide model,
  40 epochs of batch 16), fp16, every step on CPU: minutes on 2 cores on the real asl-signs sample
  (what the tests run); its gate asks for no accuracy floor, only the competition's size and
  mean-latency limits, the majority baseline and the champion, and a local run publishes it into
  a registry of its own (`plumbing`).
- `seed`: the top-50 recipe: 5 folds of the training `seed` preset (width 384, 16 heads, 100
  epochs of batch 64, bf16 on the GPU), each fold on its own NVIDIA L4; conversion, evaluation
  and the gate on 8-core CPU machines.

Every preset's gate also asks for an accuracy strictly above the evaluation corpus' majority-class
baseline (`signpipe.signs.gate`); every preset but a plumbing one must set an accuracy floor
above 0 as well (an empty or constant answer must not pass).

`holdout_fraction`: given a corpus and no evaluation corpus, a run (local, or on Vertex AI in the
hold-out form of `pipelines.corpora`) holds about that share of the participants out of training
and scores the bundle on them (`signpipe.data.holdout`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pipelines.placement import Machine, StageTraining
from signpipe.errors import ConfigError

PIPELINE = "isolated-signs"
TRAINING_PREFIX = "signs"
"""`signs.FIELD=value` overrides go to the fold training config (`signs_overrides`)."""
IMAGE_STEP = {
    "validate": "validate",
    # the head of the DAG (pipelines.corpora): small CPU steps on the validation image
    "fingerprint-corpus": "validate",
    "hold-out-participants": "validate",
    "check-held-out": "validate",
    "plan-folds": "preprocess",
    "train-fold": "finetune",
    "export-ensemble": "export",
    "evaluate-signs": "evaluate",
    "gate-signs": "gate",
    "publish": "publish",
}
"""Pipeline step -> the step name `signpipe.images` knows it by (which image family runs it)."""
QUANTIZATIONS = ("fp16", "none", "int8")
SYNTH_SIGNS = 250
"""Signs of the synthetic asl-signs corpus, dealt in rounds (`signpipe.data.synth.generate_isolated_signs`)."""
CHECKPOINTS = ("last", "best")


@dataclasses.dataclass(frozen=True)
class SignsGate:
    """What a new bundle must reach before it may replace the champion (`signpipe.signs.gate`)."""

    min_accuracy: float = 0.0
    max_model_mb: float = 40.0
    max_mean_latency_ms: float = 100.0
    """Mean per sequence over the evaluation corpus; 0 skips the criterion."""
    champion_margin: float = 0.0


@dataclasses.dataclass(frozen=True)
class SignsPipelinePreset:
    """A named isolated-signs run: the fold training, every step's machine, the run-time defaults."""

    name: str
    description: str
    training: StageTraining
    machines: dict[str, Machine]
    n_folds: int = 5
    fold_seed: int = 0
    y_scale: float = 0.0
    """0: estimated on the corpus by the plan step."""
    quantize: str = "fp16"
    checkpoint: str = "last"
    """Which checkpoint of each fold goes into the ensemble: "last", or "best" by validation accuracy."""
    gate: SignsGate = SignsGate()
    synth_sequences: int = 540
    synth_participants: int = 6
    """The synthetic training corpus of a local run given no data (the evaluation corpus gets a
    quarter as many sequences from other signers). Its signs come in rounds of all 250, so a
    k-fold split stratified by sign needs more than (k - 1) x 250 sequences."""
    holdout_fraction: float = 0.2
    plumbing: bool = False
    """A check that every step runs, not a model: it may go without an accuracy floor, and a local
    run publishes it into a registry of its own (`pipelines.local.default_registry`)."""

    def __post_init__(self) -> None:
        problems = []
        if not self.plumbing and not self.gate.min_accuracy > 0:
            problems.append(f"gate min_accuracy {self.gate.min_accuracy} is no floor (an empty answer scores 0); "
                            "only a plumbing preset may go without one")
        if self.n_folds < 2:
            problems.append(f"n_folds must be at least 2, got {self.n_folds}")
        if self.synth_participants < self.n_folds:
            problems.append(f"synth_participants ({self.synth_participants}) cannot fill {self.n_folds} folds")
        if self.synth_sequences <= SYNTH_SIGNS * (self.n_folds - 1):
            problems.append(f"synth_sequences ({self.synth_sequences}) leaves every sign fewer than {self.n_folds} sequences "
                            f"(expected more than {SYNTH_SIGNS * (self.n_folds - 1)})")
        if self.quantize not in QUANTIZATIONS:
            problems.append(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {self.quantize!r}")
        if self.checkpoint not in CHECKPOINTS:
            problems.append(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {self.checkpoint!r}")
        if not 0 < self.holdout_fraction < 1:
            problems.append(f"holdout_fraction must be strictly between 0 and 1, got {self.holdout_fraction}")
        problems += [f"machine for unknown step {step!r}" for step in self.machines
                     if step != "default" and step not in IMAGE_STEP]
        if problems:
            raise ConfigError(f"isolated-signs preset {self.name!r}: " + "; ".join(problems))

    def image_step(self, step: str) -> str:
        """The `signpipe.images` step name of a pipeline step."""
        if step not in IMAGE_STEP:
            raise ConfigError(f"unknown isolated-signs pipeline step {step!r} (expected one of: {', '.join(IMAGE_STEP)})")
        return IMAGE_STEP[step]

    def machine(self, step: str) -> Machine:
        """The machine of a pipeline step; the preset's default when not listed."""
        self.image_step(step)
        return self.machines.get(step, self.machines.get("default", Machine()))

    def runtime_parameters(self) -> dict[str, Any]:
        return {
            "n_folds": self.n_folds,
            "fold_seed": self.fold_seed,
            "y_scale": self.y_scale,
            f"{TRAINING_PREFIX}_preset": self.training.preset,
            f"{TRAINING_PREFIX}_overrides": dict(self.training.overrides),
            "quantize": self.quantize,
            "checkpoint": self.checkpoint,
            "min_accuracy": self.gate.min_accuracy,
            "max_model_mb": self.gate.max_model_mb,
            "max_mean_latency_ms": self.gate.max_mean_latency_ms,
            "champion_margin": self.gate.champion_margin,
        }


def check_signs_parameters(parameters: Mapping[str, Any]) -> None:
    """Resolve the fold training config the parameters describe, so a typo (`signs.epoch=5`) or a
    fold-plan key (`signs.n_folds=3`) fails on the submitting machine, not in the fold steps."""
    from signpipe.signs.config import resolve_config
    from signpipe.signs.fold_plan import check_fold_overrides

    overrides = parameters[f"{TRAINING_PREFIX}_overrides"]
    check_fold_overrides(overrides)
    resolve_config(parameters[f"{TRAINING_PREFIX}_preset"], dict(overrides))
    if parameters["quantize"] not in QUANTIZATIONS:
        raise ConfigError(f"quantize={parameters['quantize']!r}: expected one of {', '.join(QUANTIZATIONS)}")
    if parameters["checkpoint"] not in CHECKPOINTS:
        raise ConfigError(f"checkpoint={parameters['checkpoint']!r}: expected one of {', '.join(CHECKPOINTS)}")
    if parameters["n_folds"] < 2:
        raise ConfigError(f"n_folds={parameters['n_folds']}: expected at least 2 (each fold validates on its own signers)")


_CPU_SMALL = Machine(cpu="4", memory="16G")
_CPU_LARGE = Machine(cpu="8", memory="32G")
_L4 = Machine(cpu="8", memory="32G", accelerator_type="NVIDIA_L4", accelerator_count=1)

PRESETS: dict[str, SignsPipelinePreset] = {
    preset.name: preset
    for preset in (
        SignsPipelinePreset(
            name="local",
            description=("the main job on one machine: 2 folds of the local training preset (128 wide, 15 epochs), "
                         "given no data on a synthetic corpus of 3000 sequences by 12 signers; minutes on 2 CPU cores"),
            training=StageTraining("local"),
            machines={"default": _CPU_SMALL},
            n_folds=2,
            gate=SignsGate(min_accuracy=0.5, max_model_mb=40.0, max_mean_latency_ms=100.0),
            synth_sequences=3000,
            synth_participants=12,
        ),
        SignsPipelinePreset(
            name="smoke",
            description=("plumbing check, not a model: 3 folds of the smoke training preset, everything on CPU, its "
                         "score means nothing (tests; minutes on 2 cores)"),
            plumbing=True,
            training=StageTraining("smoke"),
            machines={"default": _CPU_SMALL},
            n_folds=3,
            gate=SignsGate(min_accuracy=0.0, max_model_mb=40.0, max_mean_latency_ms=100.0),
            # the synthetic corpus deals its signs in rounds of all 250: past two rounds, some signs have
            # the 3 sequences a 3-fold split stratified by sign needs
            synth_sequences=540,
            synth_participants=6,
        ),
        SignsPipelinePreset(
            name="seed",
            description="the top-50 recipe: 5 folds of 100 epochs (batch 64, bf16), one NVIDIA L4 per fold, fp16 ensemble",
            training=StageTraining("seed"),
            machines={"default": _CPU_SMALL, "train-fold": _L4, "export-ensemble": _CPU_LARGE,
                      "evaluate-signs": _CPU_LARGE, "gate-signs": _CPU_LARGE},
            n_folds=5,
            # a broken run scores near 1/250; the real bar is the champion on the same corpus
            gate=SignsGate(min_accuracy=0.5, max_model_mb=40.0, max_mean_latency_ms=100.0),
            synth_sequences=2500,
            synth_participants=21,
        ),
    )
}
