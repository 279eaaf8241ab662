"""Run config of isolated-signs training: one dataclass, named presets, `key=value` overrides.

    signpipe signs train --data corpus/ --workdir runs/signs --preset smoke --folds 0 blocks=2 width=128

or from Python:

    config = resolve_config("smoke", ["epochs=5"], data_dir="corpus/")
    train_and_evaluate(config, "runs/signs/fold_0")

Presets:
- `smoke`: a 64-wide model, a few dozen epochs at a higher learning rate: about a minute per fold
  on 2 CPU cores on a corpus of a hundred sequences; a plumbing check (tests, `--preset smoke`),
  not a model.
- `local`: the main job on 2 CPU cores (the `local` pipeline preset): a 128-wide model, dropout
  0.1, a peak learning rate of 4e-3 after one warmup epoch, 15 epochs of batch 24: about two
  minutes per fold on a synthetic corpus of 1500 training sequences (two folds at a time on 2
  cores). On a budget of minutes the smoke model underfits (training accuracy under 0.5 after 20
  epochs); twice the width, half the dropout and twice the learning rate took about the same
  time per fold on 2 cores (a small step's fixed costs dominate) and lifted the held-out accuracy
  of the same 2-fold run from about 0.60 to about 0.95. Batch 24 leaves the real sample's 2-fold
  splits (30 and 36 training sequences) trainable.
- `seed`: the top-50 recipe (seeds/isolated-signs-top50.md): one block of 16 heads at width 384,
  Sub-center ArcFace (k = 3, scale 45, margin 0.4, label smoothing 0.2), dropout 0.4, Ranger,
  1e-6 -> 1e-4 -> 1e-7 over 100 epochs of batch 64 (5 of them warmup), mixed precision where
  the backend has bf16 (GPU, TPU).

`y_scale=0` (the default) estimates the corpus' y scale (`signpipe.landmarks.aspect`, rigid
method, on a seeded subset of all its sequences: a property of the cameras, not of the labels, and
one value for every fold, so the ensemble graph computes the features once) and `total_steps=0` derives the step count from
`epochs`; the config saved in the workdir holds the resolved values, which is what export reads and
what a resumed run is checked against.
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
from signpipe.signs.augment import AugmentConfig
from signpipe.signs.features import MAX_FRAMES
from signpipe.signs.model import SignModelConfig

STAGE = "signs"
CONFIG_FILE = "config.json"
COMPUTE_DTYPES = ("auto", "float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class SignsConfig:
    """One fold's training run. Model fields sit at the top level (`blocks=2`, `heads=8`)."""

    # data and folds
    data_dir: str = ""
    fold: int = 0
    n_folds: int = 5
    fold_seed: int = 0
    max_frames: int = MAX_FRAMES
    y_scale: float = 0.0
    """0: estimate it on the corpus; else the corpus' height/width ratio."""
    y_scale_sequences: int = 2000
    """At most this many sequences feed the y-scale estimate (a subset seeded by fold_seed)."""
    # model (SignModelConfig)
    width: int = 384
    blocks: int = 1
    heads: int = 16
    embed_mult: int = 2
    ffn_mult: int = 2
    dropout: float = 0.4
    subcenters: int = 3
    # loss
    arcface_scale: float = 45.0
    arcface_margin: float = 0.4
    label_smoothing: float = 0.2
    # optimizer and schedule (Ranger)
    epochs: int = 100
    total_steps: int = 0
    """0: `epochs` x batches per epoch of the fold's training split."""
    warmup_epochs: float = 5.0
    batch_size: int = 64
    eval_batch_size: int = 128
    length_bucket: int = 32
    initial_learning_rate: float = 1e-6
    learning_rate: float = 1e-4
    end_learning_rate: float = 1e-7
    adam_b1: float = 0.95
    adam_b2: float = 0.999
    lookahead_sync_period: int = 6
    lookahead_step_size: float = 0.5
    clip_norm: float = 0.0
    compute_dtype: str = "auto"
    """"auto": bfloat16 on GPU/TPU, float32 on CPU (where bf16 matmuls are emulated and slow)."""
    # augmentation
    augment: bool = True
    scale_low: float = 0.8
    scale_high: float = 1.5
    shift: float = 0.1
    degrees: float = 15.0
    augment_probability: float = 0.5
    flip_probability: float = 0.5
    seed: int = 0
    # driving the run
    eval_every: int = 0
    """Steps between validations; 0: once per epoch."""
    log_every: int = 50
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    stop_after_step: int = 0

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("signs config: " + "; ".join(problems))
        self.model_config()
        self.augment_config()

    def model_config(self, n_classes: int = 250) -> SignModelConfig:
        return SignModelConfig(
            width=self.width, blocks=self.blocks, heads=self.heads, embed_mult=self.embed_mult,
            ffn_mult=self.ffn_mult, dropout=self.dropout, subcenters=self.subcenters, n_classes=n_classes,
            max_frames=self.max_frames,
        )  # fmt: skip

    def augment_config(self) -> AugmentConfig:
        return AugmentConfig(
            scale_low=self.scale_low, scale_high=self.scale_high, shift=self.shift, degrees=self.degrees,
            probability=self.augment_probability, flip_probability=self.flip_probability,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"stage": STAGE, **dataclasses.asdict(self)}


_POSITIVE = ("n_folds", "max_frames", "y_scale_sequences", "epochs", "batch_size", "eval_batch_size", "length_bucket",
             "lookahead_sync_period", "log_every", "checkpoint_every", "keep_checkpoints")  # fmt: skip
_NON_NEGATIVE = ("fold", "y_scale", "total_steps", "warmup_epochs", "initial_learning_rate", "end_learning_rate",
                 "clip_norm", "eval_every", "stop_after_step", "arcface_margin")  # fmt: skip


def _problems(config: SignsConfig) -> list[str]:
    values = dataclasses.asdict(config)
    # NaN compares false with everything, so the range checks below would let it through: a float
    # that is not a finite number is refused first, by name (learning_rate=nan, dropout=inf, ...)
    hints = typing.get_type_hints(SignsConfig)
    not_finite = [f.name for f in dataclasses.fields(SignsConfig) if hints[f.name] is float
                  and not math.isfinite(values[f.name])]  # fmt: skip
    if not_finite:
        return [f"{name} must be a finite number, got {values[name]}" for name in not_finite]
    problems = [f"{name} must be at least 1, got {values[name]}" for name in _POSITIVE if values[name] < 1]
    problems += [f"{name} must be non-negative, got {values[name]}" for name in _NON_NEGATIVE if values[name] < 0]
    if config.n_folds >= 2 and config.fold >= config.n_folds:
        problems.append(f"fold must be in 0..{config.n_folds - 1}, got {config.fold}")
    if config.n_folds < 2:
        problems.append(f"n_folds must be at least 2 (one fold is held out), got {config.n_folds}")
    for name in ("learning_rate", "arcface_scale"):
        if not values[name] > 0:
            problems.append(f"{name} must be positive (> 0), got {values[name]}")
    if not 0 <= config.label_smoothing < 1:
        problems.append(f"label_smoothing must be in [0, 1), got {config.label_smoothing}")
    if config.arcface_margin >= 1.5:
        problems.append(f"arcface_margin is an angle in radians below pi/2, got {config.arcface_margin}")
    if config.compute_dtype not in COMPUTE_DTYPES:
        problems.append(f"compute_dtype must be one of {list(COMPUTE_DTYPES)}, got {config.compute_dtype!r}")
    for name in ("adam_b1", "adam_b2"):
        if not 0 <= values[name] < 1:
            problems.append(f"{name} must be in [0, 1), got {values[name]}")
    if not 0 < config.lookahead_step_size <= 1:
        problems.append(f"lookahead_step_size must be in (0, 1], got {config.lookahead_step_size}")
    if config.length_bucket > config.max_frames:
        problems.append(f"length_bucket {config.length_bucket} exceeds max_frames {config.max_frames}")
    return problems


PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "width": 64,
        "heads": 8,
        "blocks": 1,
        "dropout": 0.2,
        "arcface_scale": 16.0,
        "arcface_margin": 0.2,
        "epochs": 40,
        "warmup_epochs": 2.0,
        "batch_size": 16,
        "eval_batch_size": 32,
        "initial_learning_rate": 1e-4,
        "learning_rate": 2e-3,
        "end_learning_rate": 1e-5,
        "y_scale_sequences": 500,
        "log_every": 10,
        "checkpoint_every": 100,
    },
    "local": {
        "width": 128,
        "heads": 8,
        "blocks": 1,
        "dropout": 0.1,
        "arcface_scale": 16.0,
        "arcface_margin": 0.2,
        "epochs": 15,
        "warmup_epochs": 1.0,
        "batch_size": 24,
        "eval_batch_size": 64,
        "initial_learning_rate": 1e-4,
        "learning_rate": 4e-3,
        "end_learning_rate": 1e-5,
        "y_scale_sequences": 500,
        "log_every": 25,
        "checkpoint_every": 500,
    },
    "seed": {
        "width": 384,
        "heads": 16,
        "blocks": 1,
        "dropout": 0.4,
        "subcenters": 3,
        "arcface_scale": 45.0,
        "arcface_margin": 0.4,
        "label_smoothing": 0.2,
        "epochs": 100,
        "warmup_epochs": 5.0,
        "batch_size": 64,
        "eval_batch_size": 128,
        "initial_learning_rate": 1e-6,
        "learning_rate": 1e-4,
        "end_learning_rate": 1e-7,
        "log_every": 100,
        "checkpoint_every": 1000,
    },
}


def _coerce(key: str, value: Any) -> Any:
    """An override (a string from the command line, or a Python value) as the field's type."""
    wanted = typing.get_type_hints(SignsConfig)[key]
    text = str(value).strip()
    if wanted is bool:
        if isinstance(value, bool):
            return value
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}={value!r}: expected a boolean (true/false)")
    if wanted is int:
        try:
            number = float(text.replace("_", "")) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not number.is_integer():
            raise ConfigError(f"{key}={value!r}: expected an integer")
        return int(number)
    if wanted is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(text) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={value!r}: expected a number") from None
    return text if isinstance(value, str) else str(value)


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """`["blocks=2", "width=128"]` -> `{"blocks": "2", "width": "128"}`; a later key wins."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value, e.g. epochs=20 or blocks=2")
        pairs[key.strip()] = value.strip()
    return pairs


def apply_overrides(config: SignsConfig, overrides: Mapping[str, Any] | Iterable[str]) -> SignsConfig:
    """A new, checked config with `overrides` (a mapping or `key=value` strings) applied."""
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    names = [f.name for f in dataclasses.fields(SignsConfig)]
    changes = {}
    for key, value in overrides.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"unknown signs config key {key!r}{hint}")
        changes[key] = _coerce(key, value)
    return dataclasses.replace(config, **changes)


def preset(name: str) -> SignsConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown signs preset {name!r}; expected one of {sorted(PRESETS)}")
    return apply_overrides(SignsConfig(), PRESETS[name])


def resolve_config(preset_name: str, overrides: Mapping[str, Any] | Iterable[str] = (), **fields: Any) -> SignsConfig:
    """Preset, then `fields` (e.g. data_dir=...), then overrides: what a command line describes."""
    return apply_overrides(apply_overrides(preset(preset_name), fields), overrides)


def config_from_dict(values: Mapping[str, Any]) -> SignsConfig:
    """Inverse of `SignsConfig.to_dict` (the JSON in a workdir)."""
    values = dict(values)
    stage = values.pop("stage", None)
    if stage != STAGE:
        raise ConfigError(f"config: stage {stage!r}, expected {STAGE!r} (a config written by signpipe signs train)")
    return apply_overrides(SignsConfig(), values)


def dump_config(config: SignsConfig, workdir: str | Path) -> Path:
    path = Path(workdir) / CONFIG_FILE
    atomic_write_text(path, json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def load_config(workdir: str | Path) -> SignsConfig:
    path = Path(workdir)
    path = path / CONFIG_FILE if path.is_dir() else path
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no run config (expected the config.json of a signpipe signs train workdir)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    return config_from_dict(values)
