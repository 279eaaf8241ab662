"""Named model sizes and the one config object every model is built from.

A run names its model the way the seed does ("small" = 24 layers x 256, "large" = 24 x 1024) or
directly as "LxD" ("9x384"), then adjusts single fields with `key=value` overrides from a preset or
the command line. Every check lives here, so a bad size fails before anything is built or traced.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

import jax
from flax import nnx

from signpipe.errors import ConfigError

DEFAULT_HEAD_WIDTH = 64
"""Width of one attention head when a size does not name its head count (heads = width / 64)."""

SIZES: dict[str, dict[str, int]] = {
    # 2 x 64 keeps every test a fraction of a second on CPU; 4 heads still exercise head splitting.
    "tiny": {"layers": 2, "width": 64, "heads": 4},
    # The seed's distilled student: about 19M parameters, about 37 MB as fp16 TFLite.
    "small": {"layers": 24, "width": 256},
    # The seed's teacher (pretraining, pseudo-alignment, distillation source).
    "large": {"layers": 24, "width": 1024},
}

_LAYERS_BY_WIDTH = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shape and regularization of the conv-stem + RoPE transformer encoder and its heads."""

    layers: int
    width: int
    heads: int
    ffn_mult: int = 4
    dropout: float = 0.1
    layerdrop: float = 0.1
    stem_kernel: int = 3
    n_features: int = 225
    n_classes: int = 60
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        problems = []
        for name in ("layers", "width", "heads", "ffn_mult", "stem_kernel", "n_features"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.n_classes < 2:
            problems.append(f"n_classes must be at least 2 (characters + CTC blank), got {self.n_classes}")
        if self.heads >= 1 and self.width % self.heads:
            problems.append(f"width {self.width} is not divisible by heads {self.heads}")
        elif self.heads >= 1 and (self.width // self.heads) % 2:
            problems.append(
                f"head width {self.width}/{self.heads} = {self.width // self.heads} must be even "
                "(rotary embeddings rotate pairs of channels)"
            )
        if self.stem_kernel >= 1 and self.stem_kernel % 2 == 0:
            problems.append(f"stem_kernel must be odd so 'SAME' padding is symmetric in time, got {self.stem_kernel}")
        for name in ("dropout", "layerdrop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.rope_base <= 1.0:
            problems.append(f"rope_base must be greater than 1, got {self.rope_base}")
        if problems:
            raise ConfigError("model config: " + "; ".join(problems))

    @property
    def head_width(self) -> int:
        return self.width // self.heads

    @property
    def blank_index(self) -> int:
        """CTC blank is the last class (59 of 60): the character map fills 0..n_classes-2."""
        return self.n_classes - 1

    @property
    def name(self) -> str:
        return f"{self.layers}x{self.width}"

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for checkpoint metadata and pipeline artifacts."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelConfig:
        unknown = sorted(set(values) - _FIELD_TYPES.keys())
        if unknown:
            raise ConfigError(f"model config: unknown field(s) {unknown}; expected some of {sorted(_FIELD_TYPES)}")
        return cls(**{key: _coerce(key, value) for key, value in values.items()})


_FIELD_TYPES: dict[str, type] = {
    field.name: {"int": int, "float": float}[field.type] for field in dataclasses.fields(ModelConfig)
}


def _coerce(key: str, value: Any) -> int | float:
    """Turn an override (often a string from the command line) into the field's type, loudly."""
    wanted = _FIELD_TYPES[key]
    try:
        if wanted is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"model config: {key}={value!r} is not a valid {wanted.__name__}") from None


def _parse_overrides(overrides: Mapping[str, Any] | Iterable[str]) -> dict[str, Any]:
    if isinstance(overrides, Mapping):
        pairs = dict(overrides)
    else:
        pairs = {}
        for item in overrides:
            key, sep, value = str(item).partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"model override {item!r}: expected key=value, e.g. layers=12")
            pairs[key.strip()] = value.strip()
    unknown = sorted(set(pairs) - _FIELD_TYPES.keys())
    if unknown:
        raise ConfigError(f"model override: unknown key(s) {unknown}; expected some of {sorted(_FIELD_TYPES)}")
    return {key: _coerce(key, value) for key, value in pairs.items()}


def model_config(name: str = "small", overrides: Mapping[str, Any] | Iterable[str] = ()) -> ModelConfig:
    """Config of a named size ("tiny", "small", "large") or an "LxD" size, then `key=value` overrides.

    Heads follow the width (width / 64) unless an override names them, so "9x384" and "small" with
    width=512 both get 64-wide heads; a size's own head count (tiny's 4) holds only at its own width.
    """
    if name in SIZES:
        values: dict[str, Any] = dict(SIZES[name])
    else:
        match = _LAYERS_BY_WIDTH.match(name)
        if match is None:
            raise ConfigError(
                f"model size {name!r}: expected one of {sorted(SIZES)} or LAYERSxWIDTH such as '9x384'"
            )
        values = {"layers": int(match.group(1)), "width": int(match.group(2))}
    explicit = _parse_overrides(overrides)
    if "heads" not in explicit and "width" in explicit:
        values.pop("heads", None)
    values.update(explicit)
    values.setdefault("heads", max(1, values["width"] // DEFAULT_HEAD_WIDTH))
    return ModelConfig(**values)


def count_params(module: nnx.Module) -> int:
    """Trainable parameter count; works on abstract modules from `nnx.eval_shape` too, so the size
    of a large model can be checked without allocating it."""
    return sum(leaf.size for leaf in jax.tree.leaves(nnx.state(module, nnx.Param)))


def fp16_megabytes(n_params: int) -> float:
    """Weights stored as fp16, in MB (10^6 bytes): the figure to hold against the 40 MB limit."""
    return n_params * 2 / 1e6
