"""Checkpoints of a training run (Orbax), so a preempted or killed run resumes where it stopped.

`workdir/checkpoints/<step>/` holds three items:
- `state`: the train state pytree (`step`, `params`, `opt_state`, `ema_params`, and whatever else a
  stage adds, such as a Data2vec teacher), saved from the devices and restored onto the current
  mesh, whatever its size: a run checkpointed on 1 device resumes on 4 and the reverse.
- `progress`: JSON: the data iterator's state (epoch, position, seed) and the best validation
  score so far with its step, everything outside the pytree that the run's future depends on.
- `config`: JSON: the config that wrote it. Resuming with a config that changes the trajectory
  (anything but `RUN_CONTROL_FIELDS`) is refused: the result would be neither run.

Kept: the last `keep` checkpoints plus the one with the best validation score (saved with that
score as its metric), so the best weights survive however long the run goes on after them.
Orbax writes into a temporary directory and renames it when complete, so a kill mid-save
leaves the previous checkpoints intact; saves are asynchronous and overlap the next steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from signpipe.errors import ConfigError, SignpipeError
from signpipe.train.config import TrainConfig, trajectory_differences

CHECKPOINT_DIR = "checkpoints"
SCORE_METRIC = "validation_score"
ITEMS = ("state", "progress", "config")


class Restored(NamedTuple):
    step: int
    state: Any
    progress: dict


def checkpoint_dir(workdir: str | Path) -> Path:
    return Path(workdir).absolute() / CHECKPOINT_DIR


class RunCheckpoints:
    """The checkpoints of one workdir."""

    def __init__(self, workdir: str | Path, keep: int = 2, asynchronous: bool = True, read_only: bool = False):
        if keep < 1:
            raise ConfigError(f"keep_checkpoints must be at least 1, got {keep}")
        self.directory = checkpoint_dir(workdir)
        policy = checkpoint_managers.AnyPreservationPolicy(
            [
                checkpoint_managers.LatestN(keep),
                checkpoint_managers.BestN(
                    get_metric_fn=lambda metrics: metrics[SCORE_METRIC], n=1, keep_checkpoints_without_metrics=False
                ),
            ]
        )
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policy,
            enable_async_checkpointing=asynchronous,
            cleanup_tmp_directories=not read_only,
            create=not read_only,
            read_only=read_only,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def saved_config(self, step: int) -> dict:
        restored = self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
        return dict(restored.config)

    def saved_progress(self, step: int) -> dict:
        restored = self.manager.restore(step, args=ocp.args.Composite(progress=ocp.args.JsonRestore()))
        return dict(restored.progress)

    def check_config(self, config: TrainConfig) -> None:
        """Refuse to resume the latest checkpoint with a config that changes the trajectory."""
        step = self.latest_step()
        if step is None:
            return
        saved = self.saved_config(step)
        if saved.get("stage") != config.to_dict()["stage"]:
            raise ConfigError(
                f"{self.directory}: holds checkpoints of a {saved.get('stage')} run, not {config.to_dict()['stage']}; "
                "use a new workdir for each stage"
            )
        differences = trajectory_differences(saved, config)
        if differences:
            raise ConfigError(
                f"{self.directory}: holds checkpoints of another run config (step {step}); differing: "
                + "; ".join(differences[:6])
                + (f" (and {len(differences) - 6} more)" if len(differences) > 6 else "")
                + ". Use a new workdir, or the original config to resume."
            )

    def save(
        self,
        step: int,
        state: Any,
        progress: Mapping[str, Any],
        config: TrainConfig,
        score: float | None = None,
    ) -> None:
        """Save (asynchronously) unless this step is saved already; a `score` makes the checkpoint
        a candidate for "best"."""
        if step in self.manager.all_steps():
            return
        self.manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                progress=ocp.args.JsonSave(dict(progress)),
                config=ocp.args.JsonSave(config.to_dict()),
            ),
            metrics=None if score is None else {SCORE_METRIC: float(score)},
            force=True,
        )

    def restore(self, step: int, abstract_state: Any) -> Restored:
        """State restored into the structure, dtypes and shardings of `abstract_state` (a pytree of
        `jax.ShapeDtypeStruct` with `sharding`, e.g. from `abstract_like`)."""
        try:
            restored = self.manager.restore(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), progress=ocp.args.JsonRestore()),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SignpipeError(
                f"{self.directory / str(step)}: checkpoint does not match this run's model and optimizer ({exc})"
            ) from None
        return Restored(step, restored.state, dict(restored.progress))

    def restore_latest(self, abstract_state: Any) -> Restored | None:
        step = self.latest_step()
        return None if step is None else self.restore(step, abstract_state)

    def restore_unstructured(self, step: int | None = None) -> tuple[int, dict]:
        """The `state` item as saved (nested dicts of arrays, string keys), without knowing its
        structure: for reading weights into another model (an encoder from pretraining)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise SignpipeError(f"{self.directory}: no checkpoint found (expected a workdir of a finished run)")
        restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
        return step, restored.state

    def wait(self) -> None:
        """Block until pending asynchronous saves are on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()

    def __enter__(self) -> RunCheckpoints:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def abstract_like(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """Shapes and dtypes of `tree` placed with `sharding`: the restore target for that layout."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
