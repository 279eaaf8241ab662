"""What the shared training machinery needs of a run's config, and when a checkpoint may resume it.

Each recipe has its own config dataclass (`signpipe.fingerspelling.config.TrainConfig` and its
stages, `signpipe.signs.config.SignsConfig`); the loop, the checkpoints and the optimizer only read
the fields named here (`RunConfig`, `OptimizerConfig`), so they serve both without importing
either recipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class RunConfig(Protocol):
    """How a run is driven: what `signpipe.train.loop` and `signpipe.train.checkpoint` read."""

    total_steps: int
    batch_size: int
    log_every: int
    checkpoint_every: int
    keep_checkpoints: int
    stop_after_step: int

    def to_dict(self) -> dict[str, Any]: ...


class OptimizerConfig(Protocol):
    """The AdamW settings `signpipe.train.optim` builds its optimizer and schedule from."""

    total_steps: int
    warmup_steps: int
    schedule: str
    learning_rate: float
    end_learning_rate_fraction: float
    weight_decay: float
    adam_b1: float
    adam_b2: float
    clip_norm: float


RUN_CONTROL_FIELDS = frozenset({"stop_after_step", "log_every", "prefetch"})
"""Fields that only steer the process, not the training trajectory: a resumed run may change them."""
EXTENSION_FIELDS = frozenset({"total_steps", "epochs"})
"""Fields a resumed run may change together to train longer: a larger `total_steps` extends the run
(`epochs` is how the isolated-signs recipe derives its `total_steps`). The extended run continues from
the checkpoint; the learning-rate schedule is a function of `total_steps`, so from there on the
rate follows the new total's schedule (with cosine decay it rises from the old schedule's end to
the new schedule's value at that step, then decays to the new end). A smaller `total_steps` is a
different run and is refused."""


def extends(saved: Mapping[str, Any], current: Any) -> bool:
    """Whether `current` (a config) trains the run of `saved` (a checkpoint's config) for longer."""
    before, after = saved.get("total_steps"), current.to_dict().get("total_steps")
    return isinstance(before, int) and isinstance(after, int) and after > before


def trajectory_differences(saved: Mapping[str, Any], current: RunConfig) -> list[str]:
    """Keys whose values differ between a checkpoint's config and this run's, ignoring fields that
    only steer the process and, when `current` extends the run (a larger `total_steps`), the
    `EXTENSION_FIELDS`; non-empty means resuming would mix two different runs."""
    now = current.to_dict()
    ignored = RUN_CONTROL_FIELDS | (EXTENSION_FIELDS if extends(saved, current) else frozenset())
    keys = sorted((set(saved) | set(now)) - ignored)
    return [f"{k}: {saved.get(k, '<absent>')!r} -> {now.get(k, '<absent>')!r}" for k in keys if saved.get(k) != now.get(k)]
