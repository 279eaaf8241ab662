"""Run configs of the training stages: dataclasses, named presets, `key=value` overrides.

A preset names a whole run (DESIGN.md "Presets name whole runs"); it is data on top of the
dataclass defaults, and any field can be overridden from the command line:

    signpipe train finetune --shards shards/ --workdir runs/ft --preset smoke total_steps=500 model.dropout=0

or from Python:

    config = resolve_config("finetune", "smoke", ["total_steps=500", "model.dropout=0"])
    train_and_evaluate(replace(config, data_dir="shards/"), "runs/ft")

`model` names a size of `signpipe.fingerspelling.model.sizes` ("tiny", "small", "large" or "LxD"); `model.KEY=V`
overrides one field of that size's `ModelConfig`. Every value is type-checked and range-checked
when the config is built, so a typo fails before any data is read or anything is compiled.

Presets (finetune; pretrain follows the same sizes):
- `local`: the main job on 2 CPU cores (`signpipe run fingerspelling --local`): the tiny model at
  a learning rate high enough to leave CTC's blank plateau in a few hundred steps, one padded
  length, light augmentation with long sequences squeezed rather than cut, evaluation only at the
  end; docs/decisions.md has the measurements it was chosen by.
- `smoke`: the tiny model on a synthetic corpus, minutes on 2 CPU cores; what tests and the
  pipeline's smoke preset start from. Its learning rate and EMA are higher than the seed's and its
  augmentation lighter ("light") because the run is two thousand, not tens of thousands, of steps:
  with the seed's full augmentation the same 1,000 steps reached 0.48 instead of 0.74 (validation
  score, 800-sequence synthetic corpus), and 2,000 "light" steps on 1,600 sequences reach the
  0.85 the acceptance test asks for (`tests/test_train_smoke.py`).
- `small`: the seed's 24 x 256 student, the seed's optimizer settings, a single-GPU-sized run.
- `large`: the seed's 24 x 1024 teacher, same settings.
- `kaggle5th`: the seed's full recipe for the large teacher (batch 256, lr 5e-4, 1k warmup, EMA 0.993,
  about 65 epochs of the 95% train split).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from signpipe.data.atomic import atomic_write_text
from signpipe.errors import ConfigError
from signpipe.fingerspelling.model.sizes import ModelConfig, model_config
from signpipe.train.run_config import EXTENSION_FIELDS, RUN_CONTROL_FIELDS, extends, trajectory_differences  # noqa: F401 (their home is the shared layer)

CONFIG_FILE = "config.json"
DEFAULT_CUTMIX_PROBABILITY = 0.5
DEFAULT_CUTMIX_RETRIES = 8
"""Draws of a partner before a CutMix sample falls back to no mix (`signpipe.fingerspelling.align.cutmix`)."""
TEACHER_CHECKPOINTS = ("best", "last")
SCHEDULES = ("cosine", "onecycle")
AUGMENTATIONS = ("seed", "light")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Fields every training stage shares: data, model, optimizer, and how the run is driven."""

    # data
    data_dir: str = ""
    batch_size: int = 32
    eval_batch_size: int = 64
    max_length: int = 128
    length_bucket: int = 32
    length_grouping: int = 16
    """Training batches are formed from windows of this many batches sorted by length (1 = off):
    with lengths spread 10-250 frames, random batches pad to nearly the longest and waste about
    half the compute."""
    augment: bool = True
    augmentation: str = "seed"
    """Which augmentation when `augment` is on: "seed" (the seed's full pipeline) or "light"
    (see `signpipe.fingerspelling.data.augmentation_pipeline`)."""
    # model
    model: str = "tiny"
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 0
    # optimizer (AdamW, REFERENCE.md section 2)
    total_steps: int = 1000
    warmup_steps: int = 100
    schedule: str = "cosine"
    learning_rate: float = 5e-4
    end_learning_rate_fraction: float = 0.0
    weight_decay: float = 0.01
    adam_b1: float = 0.9
    adam_b2: float = 0.98
    clip_norm: float = 1.0
    # driving the run
    log_every: int = 50
    prefetch: int = 2
    """Training batches prepared ahead in a background thread while the device steps (0 = in line)."""
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    stop_after_step: int = 0

    def __post_init__(self) -> None:
        problems = _range_problems(self)
        if problems:
            raise ConfigError(f"{type(self).__name__}: " + "; ".join(problems))
        self.model_config()  # a bad size or model override fails here, with its own message

    def model_config(self) -> ModelConfig:
        return model_config(self.model, self.model_overrides)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": stage_of(self), **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(TrainConfig):
    """CTC finetuning (REFERENCE.md section 2, "Finetuning")."""

    init_from: str = ""
    """Workdir of a pretraining run whose encoder weights start this model ("" = fresh weights)."""
    ema_decay: float = 0.993
    max_label_length: int = 32
    eval_every: int = 500


@dataclasses.dataclass(frozen=True)
class PretrainConfig(TrainConfig):
    """Data2vec 2.0 pretraining (REFERENCE.md section 2, "Data2vec 2.0 pretraining")."""

    mask_ratio: float = 0.5
    mask_block: int = 5
    masks_per_sample: int = 8
    teacher_decay_start: float = 0.999
    teacher_decay_end: float = 0.99999
    teacher_decay_steps: int = 100_000
    target_layers: int = 2
    """Layers averaged into the Data2vec target: the seed's 6 in the presets of 24-layer models; the
    default fits the default (tiny, 2-layer) model."""
    decoder_layers: int = 4
    decoder_kernel: int = 7


@dataclasses.dataclass(frozen=True)
class NoisyStudentConfig(FinetuneConfig):
    """CTC finetuning with temporal CutMix on pseudo-alignments (REFERENCE.md section 2, "CutMix")."""

    alignments: str = ""
    """Alignments artifact (`signpipe align` output) covering the train split of `data_dir`."""
    cutmix_probability: float = DEFAULT_CUTMIX_PROBABILITY
    cutmix_retries: int = DEFAULT_CUTMIX_RETRIES
    supplemental_data_dir: str = ""
    """Shard directory whose train split is added to the training data ("" = none)."""
    supplemental_alignments: str = ""
    """Alignments of `supplemental_data_dir`'s train split ("" = its sequences are never mixed)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = []
        if not 0.0 <= self.cutmix_probability <= 1.0:
            problems.append(f"cutmix_probability must be in [0, 1], got {self.cutmix_probability}")
        if self.cutmix_retries < 0:
            problems.append(f"cutmix_retries must be 0 or more, got {self.cutmix_retries}")
        if self.supplemental_alignments and not self.supplemental_data_dir:
            problems.append("supplemental_alignments is set but supplemental_data_dir is not")
        if problems:
            raise ConfigError(f"{type(self).__name__}: " + "; ".join(problems))


@dataclasses.dataclass(frozen=True)
class DistillConfig(NoisyStudentConfig):
    """Distillation into the model `model` names (the student) from the finetuned `teacher`.

    CutMix fields are the noisy student's: with `alignments` set the student trains on CutMix
    batches, without them on the plain augmented ones.
    """

    teacher: str = ""
    """Workdir of the teacher: a finetuning or noisy-student run."""
    teacher_checkpoint: str = "best"
    kd_weight: float = 10.0
    init_layers_from: str = ""
    """Workdir of a deeper model of the student's width (pretraining, finetuning...) whose every
    k-th layer starts the student ("" = fresh weights, or `init_from`'s encoder)."""
    init_layer_stride: int = 0
    """k; 0 = the deeper model's layers // the student's layers."""

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = []
        if self.teacher_checkpoint not in TEACHER_CHECKPOINTS:
            problems.append(f"teacher_checkpoint must be one of {list(TEACHER_CHECKPOINTS)}, got {self.teacher_checkpoint!r}")
        if self.kd_weight < 0:
            problems.append(f"kd_weight must be non-negative, got {self.kd_weight}")
        if self.init_layer_stride < 0:
            problems.append(f"init_layer_stride must be 0 (automatic) or positive, got {self.init_layer_stride}")
        if self.init_layers_from and self.init_from:
            problems.append("init_from and init_layers_from both set; the student starts from one of them")
        if problems:
            raise ConfigError(f"{type(self).__name__}: " + "; ".join(problems))


def _distill_presets() -> dict[str, dict[str, Any]]:
    """Finetuning's presets with the student sizes the seed distilled into: its 24 x 256 `small`
    model for the full-size presets (830 epochs of the 95% split at batch 256 for `kaggle5th`), the
    tiny model for `smoke`."""
    presets = {name: {**values, "kd_weight": 10.0} for name, values in PRESETS["finetune"].items()}
    presets["large"] = {**presets["large"], "model": "small"}
    presets["kaggle5th"] = {**presets["kaggle5th"], "model": "small", "total_steps": 207_000, "checkpoint_every": 2000}
    return presets


_SEED_OPTIMIZER = {"learning_rate": 5e-4, "weight_decay": 0.01, "adam_b1": 0.9, "adam_b2": 0.98, "clip_norm": 1.0}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "finetune": {
        "local": {
            "model": "tiny",
            "model_overrides": {"dropout": 0.0, "layerdrop": 0.0},
            "augmentation": "light",
            "batch_size": 16,
            "eval_batch_size": 64,
            "max_length": 128,
            "length_bucket": 128,
            "total_steps": 5000,
            "warmup_steps": 100,
            "learning_rate": 4e-3,
            "weight_decay": 0.01,
            "ema_decay": 0.98,
            "eval_every": 100_000,
            "checkpoint_every": 1000,
            "log_every": 100,
        },
        "smoke": {
            "model": "tiny",
            "model_overrides": {"dropout": 0.0, "layerdrop": 0.0},
            "augmentation": "light",
            "batch_size": 32,
            "eval_batch_size": 64,
            "max_length": 128,
            "total_steps": 2000,
            "warmup_steps": 60,
            "learning_rate": 2e-3,
            "weight_decay": 0.01,
            "ema_decay": 0.98,
            "eval_every": 500,
            "checkpoint_every": 250,
            "log_every": 25,
        },
        "small": {
            **_SEED_OPTIMIZER,
            "model": "small",
            "batch_size": 64,
            "eval_batch_size": 128,
            "max_length": 384,
            "total_steps": 60_000,
            "warmup_steps": 1000,
            "ema_decay": 0.993,
            "eval_every": 2000,
            "checkpoint_every": 1000,
            "log_every": 100,
        },
        "large": {
            **_SEED_OPTIMIZER,
            "model": "large",
            "batch_size": 64,
            "eval_batch_size": 128,
            "max_length": 384,
            "total_steps": 60_000,
            "warmup_steps": 1000,
            "ema_decay": 0.993,
            "eval_every": 2000,
            "checkpoint_every": 1000,
            "log_every": 100,
        },
        "kaggle5th": {
            **_SEED_OPTIMIZER,
            "model": "large",
            "batch_size": 256,
            "eval_batch_size": 256,
            "max_length": 512,
            "total_steps": 16_000,
            "warmup_steps": 1000,
            "ema_decay": 0.993,
            "eval_every": 1000,
            "checkpoint_every": 500,
            "log_every": 100,
        },
    },
    "pretrain": {
        "local": {
            "model": "tiny",
            "model_overrides": {"dropout": 0.0, "layerdrop": 0.0},
            "batch_size": 32,
            "max_length": 128,
            "length_bucket": 128,
            "total_steps": 1000,
            "warmup_steps": 60,
            "learning_rate": 2e-3,
            "masks_per_sample": 2,
            "target_layers": 2,
            "decoder_layers": 1,
            "teacher_decay_start": 0.99,
            "teacher_decay_end": 0.999,
            "teacher_decay_steps": 1000,
            "checkpoint_every": 500,
            "log_every": 50,
        },
        "smoke": {
            "model": "tiny",
            "model_overrides": {"dropout": 0.0, "layerdrop": 0.0},
            "batch_size": 16,
            "max_length": 128,
            "total_steps": 300,
            "warmup_steps": 30,
            "learning_rate": 1e-3,
            "masks_per_sample": 2,
            "target_layers": 2,
            "decoder_layers": 1,
            "teacher_decay_start": 0.99,
            "teacher_decay_end": 0.999,
            "teacher_decay_steps": 300,
            "checkpoint_every": 100,
            "log_every": 25,
        },
        "small": {
            **_SEED_OPTIMIZER,
            "model": "small",
            "batch_size": 64,
            "max_length": 512,
            "total_steps": 100_000,
            "warmup_steps": 5000,
            "teacher_decay_steps": 50_000,
            "target_layers": 6,
            "checkpoint_every": 2000,
            "log_every": 100,
        },
        "large": {
            **_SEED_OPTIMIZER,
            "model": "large",
            "batch_size": 64,
            "max_length": 512,
            "total_steps": 100_000,
            "warmup_steps": 5000,
            "teacher_decay_steps": 50_000,
            "target_layers": 6,
            "checkpoint_every": 2000,
            "log_every": 100,
        },
        "kaggle5th": {
            **_SEED_OPTIMIZER,
            "model": "large",
            "batch_size": 256,
            "max_length": 512,
            "total_steps": 200_000,
            "warmup_steps": 10_000,
            "teacher_decay_steps": 100_000,
            "target_layers": 6,
            "checkpoint_every": 2000,
            "log_every": 100,
        },
    },
}


def _noisy_student_presets(finetune: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Finetuning's presets with CutMix on (the seed's noisy student trains like finetuning)."""
    return {name: {**values, "cutmix_probability": DEFAULT_CUTMIX_PROBABILITY} for name, values in finetune.items()}


def _distill_presets(finetune: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Finetuning's presets with the student sizes the seed distilled into: its 24 x 256 `small`
    model for the full-size presets (830 epochs of the 95% split at batch 256 for `kaggle5th`), the
    tiny model for `smoke`."""
    presets = {name: {**values, "kd_weight": 10.0} for name, values in finetune.items()}
    presets["large"] = {**presets["large"], "model": "small"}
    presets["kaggle5th"] = {**presets["kaggle5th"], "model": "small", "total_steps": 207_000, "checkpoint_every": 2000}
    return presets


PRESETS["noisy_student"] = _noisy_student_presets(PRESETS["finetune"])
PRESETS["distill"] = _distill_presets(PRESETS["finetune"])

STAGES: dict[str, type[TrainConfig]] = {
    "pretrain": PretrainConfig,
    "finetune": FinetuneConfig,
    "noisy_student": NoisyStudentConfig,
    "distill": DistillConfig,
}
"""The recipe's training stages, each with its config class (`PRESETS[stage]` holds its presets).
A new stage is declared here (its config class and presets), then trained by its own module; a
workdir's saved config names its stage, so every stage's configs read back without importing the
stage's module."""


# range checks shared by every stage; a field a stage does not have is skipped
_POSITIVE_INTS = (
    "batch_size", "eval_batch_size", "max_length", "length_bucket", "length_grouping", "total_steps", "log_every",
    "checkpoint_every", "keep_checkpoints", "max_label_length", "eval_every", "mask_block",
    "masks_per_sample", "teacher_decay_steps", "target_layers", "decoder_layers", "decoder_kernel",
)  # fmt: skip
_UNIT_INTERVAL_OPEN_TOP = ("adam_b1", "adam_b2", "ema_decay", "end_learning_rate_fraction",
                           "teacher_decay_start", "teacher_decay_end")  # fmt: skip


_FLOAT_RANGES = {
    "learning_rate": " > 0", "clip_norm": " > 0", "weight_decay": " >= 0", "mask_ratio": " in (0, 1)",
    "cutmix_probability": " in [0, 1]", "kd_weight": " >= 0",
    **{name: " in [0, 1)" for name in _UNIT_INTERVAL_OPEN_TOP},
}  # fmt: skip
"""The allowed range of a float field, for the message that refuses a NaN or infinite value."""


def _float_fields(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if hints.get(f.name) is float]


def _range_problems(config: TrainConfig) -> list[str]:
    problems = []
    values = dataclasses.asdict(config)
    # NaN compares false with everything, so each range check below would let it through: a value
    # that is not a finite number is refused first, by name (learning_rate=nan, kd_weight=inf, ...)
    not_finite = [name for name in _float_fields(type(config)) if not math.isfinite(values[name])]
    problems += [f"{name} must be a finite number{_FLOAT_RANGES.get(name, '')}, got {values[name]}" for name in not_finite]
    for key, value in sorted(config.model_overrides.items()):
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"model.{key} must be a finite number, got {value}")
            not_finite.append(f"model.{key}")
    if not_finite:
        return problems
    for name in _POSITIVE_INTS:
        if name in values and values[name] < 1:
            problems.append(f"{name} must be at least 1, got {values[name]}")
    for name in _UNIT_INTERVAL_OPEN_TOP:
        if name in values and not 0.0 <= values[name] < 1.0:
            problems.append(f"{name} must be in [0, 1), got {values[name]}")
    if not 0 <= config.warmup_steps < config.total_steps:
        problems.append(f"warmup_steps must be in [0, total_steps={config.total_steps}), got {config.warmup_steps}")
    if config.augmentation not in AUGMENTATIONS:
        problems.append(f"augmentation must be one of {list(AUGMENTATIONS)}, got {config.augmentation!r}")
    if config.schedule not in SCHEDULES:
        problems.append(f"schedule must be one of {list(SCHEDULES)}, got {config.schedule!r}")
    for name in ("learning_rate", "clip_norm"):
        if not values[name] > 0:
            problems.append(f"{name} must be positive (> 0), got {values[name]}")
    if not config.weight_decay >= 0:
        problems.append(f"weight_decay must be non-negative, got {config.weight_decay}")
    if config.prefetch < 0:
        problems.append(f"prefetch must be 0 (off) or a number of batches, got {config.prefetch}")
    if config.stop_after_step < 0:
        problems.append(f"stop_after_step must be 0 (off) or a step number, got {config.stop_after_step}")
    if config.length_bucket > config.max_length:
        problems.append(f"length_bucket {config.length_bucket} exceeds max_length {config.max_length}")
    if "mask_ratio" in values and not 0.0 < values["mask_ratio"] < 1.0:
        problems.append(f"mask_ratio must be in (0, 1), got {values['mask_ratio']}")
    if "decoder_kernel" in values and values["decoder_kernel"] % 2 == 0:
        problems.append(f"decoder_kernel must be odd, got {values['decoder_kernel']}")
    if "target_layers" in values:
        layers = _model_layers(config)
        if layers is not None and values["target_layers"] > layers:
            problems.append(f"target_layers {values['target_layers']} exceeds the model's {layers} layers")
    return problems


def _model_layers(config: TrainConfig) -> int | None:
    try:
        return config.model_config().layers
    except ConfigError:
        return None  # reported by model_config() itself right after


def stage_of(config: TrainConfig) -> str:
    for stage, cls in STAGES.items():
        if type(config) is cls:
            return stage
    raise ConfigError(f"{type(config).__name__} is not the config of a training stage ({sorted(STAGES)})")


def _field_types(cls: type[TrainConfig]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(cls: type[TrainConfig], key: str, value: Any) -> Any:
    """An override value (a string from the command line, or a Python value) as the field's type."""
    wanted = _field_types(cls)[key]
    if wanted is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}={value!r}: expected a boolean (true/false)")
    if wanted is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}={value!r}: expected an integer")
        try:
            number = float(str(value).replace("_", "")) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={value!r}: expected an integer") from None
        if not number.is_integer():
            raise ConfigError(f"{key}={value!r}: expected an integer")
        return int(number)
    if wanted is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}={value!r}: expected a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={value!r}: expected a number") from None
    if wanted is str:
        return str(value)
    if typing.get_origin(wanted) is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigError(f"{key}={value!r}: expected a JSON object") from None
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}={value!r}: expected a mapping")
        return dict(value)
    raise ConfigError(f"{key}: field of unsupported type {wanted}")


def _unknown_key(cls: type[TrainConfig], key: str) -> ConfigError:
    names = sorted(f.name for f in dataclasses.fields(cls))
    close = difflib.get_close_matches(key, names, n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else f"; known keys: {', '.join(names)}"
    return ConfigError(f"unknown {stage_of_class(cls)} config key {key!r}{hint} (model fields go as model.KEY=VALUE)")


def stage_of_class(cls: type[TrainConfig]) -> str:
    return next((stage for stage, c in STAGES.items() if c is cls), cls.__name__)


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """`["a=1", "model.dropout=0"]` -> `{"a": "1", "model.dropout": "0"}`; a later key wins."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value, e.g. total_steps=500 or model.dropout=0")
        pairs[key.strip()] = value.strip()
    return pairs


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any] | Iterable[str]) -> TrainConfig:
    """A new config with `overrides` (a mapping, or `key=value` strings) applied and checked."""
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    cls = type(config)
    names = {f.name for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    dotted: dict[str, Any] = {}
    for key, value in overrides.items():
        if key.startswith("model."):
            dotted[key.removeprefix("model.")] = value
        elif key in names:
            changes[key] = _coerce(cls, key, value)
        else:
            raise _unknown_key(cls, key)
    # a whole `model_overrides` mapping replaces the old one; `model.KEY` entries go on top
    model_overrides = {**changes.pop("model_overrides", config.model_overrides), **dotted}
    size = changes.get("model", config.model)
    # typed and range-checked by the model config, stored typed so the JSON dump is exact
    typed = model_config(size, model_overrides).to_dict()
    changes["model_overrides"] = {key: typed[key] for key in model_overrides}
    return dataclasses.replace(config, **changes)


def preset_names(stage: str) -> list[str]:
    return sorted(PRESETS[_check_stage(stage)])


def _check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise ConfigError(f"unknown training stage {stage!r}; expected one of {sorted(STAGES)}")
    return stage


def preset(stage: str, name: str) -> TrainConfig:
    """The named preset of a stage, as a checked config."""
    presets = PRESETS[_check_stage(stage)]
    if name not in presets:
        raise ConfigError(f"unknown {stage} preset {name!r}; expected one of {sorted(presets)}")
    return apply_overrides(STAGES[stage](), presets[name])


def resolve_config(stage: str, preset_name: str, overrides: Mapping[str, Any] | Iterable[str] = ()) -> TrainConfig:
    """Preset, then overrides: the config a command line describes."""
    return apply_overrides(preset(stage, preset_name), overrides)


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """Inverse of `TrainConfig.to_dict` (the JSON in a workdir)."""
    values = dict(values)
    stage = values.pop("stage", None)
    if stage is None:
        raise ConfigError("config: no 'stage' key (expected a config written by signpipe train)")
    cls = STAGES[_check_stage(stage)]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise _unknown_key(cls, unknown[0])
    return cls(**{key: _coerce(cls, key, value) for key, value in values.items()})


def dump_config(config: TrainConfig, workdir: str | Path) -> Path:
    """Write `workdir/config.json` atomically: what the run used, readable by `load_config`."""
    path = Path(workdir) / CONFIG_FILE
    atomic_write_text(path, json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no run config (expected the config.json of a signpipe train workdir)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    return config_from_dict(values)
