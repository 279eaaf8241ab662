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
On a file system Orbax writes into a temporary directory and renames it when complete, so a kill
mid-save leaves the previous checkpoints intact; saves are asynchronous and overlap the next steps.

Where the checkpoints live: a workdir on Vertex AI's Cloud Storage FUSE mount
(`/gcs/BUCKET/PATH`, what a pipeline step's `Model` artifact is) keeps them at
`gs://BUCKET/PATH/checkpoints`, written and read by Orbax through the Cloud Storage API, never
through the mount. FUSE cannot rename a directory atomically (by default not at all); on a
`gs://` path Orbax instead writes the step directory in place and marks it complete with a
`commit_success.txt` written last, and a step without one is not listed, so neither resumed from
nor restored (docs/pipelines.md, "Checked against the Vertex AI documentation"). Every reader
goes through `RunCheckpoints`, `checkpoint_dir` or `has_checkpoints`, so writers and readers agree
on the location. Everything else in the workdir (config, metrics, TensorBoard events, reports)
stays on the mount.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp
from etils import epath
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


GCS_FUSE_ROOT = "/gcs/"
"""Where Vertex AI mounts Cloud Storage buckets with Cloud Storage FUSE (`/gcs/BUCKET/...`)."""


def storage_path(path: str | Path) -> epath.Path:
    """`path` as Orbax should address it: a `/gcs/BUCKET/...` path (the FUSE mount) or a
    `gs://BUCKET/...` URI as that `gs://` URI, anything else as the absolute local path."""
    text = str(path)
    if text.startswith("gs://"):
        return epath.Path(text)
    if text.startswith(GCS_FUSE_ROOT) and len(text) > len(GCS_FUSE_ROOT):
        return epath.Path("gs://" + text[len(GCS_FUSE_ROOT):])
    return epath.Path(Path(text).absolute())


def checkpoint_dir(workdir: str | Path) -> epath.Path:
    """The checkpoint directory of `workdir` (`storage_path`: `gs://` for a workdir on the mount)."""
    return storage_path(workdir) / CHECKPOINT_DIR


def has_checkpoints(workdir: str | Path) -> bool:
    """Whether `workdir` has a checkpoint directory, wherever `checkpoint_dir` keeps it."""
    return checkpoint_dir(workdir).is_dir()


def completion_marker(directory: epath.Path) -> type:
    """How Orbax marks a checkpoint in `directory` complete: by renaming its temporary directory on
    a file system, by a `commit_success.txt` written last on Cloud Storage (`gs://`), which has no
    directory rename. (Orbax's own default for these paths; stated here so that the choice does not
    rest on a default.)"""
    atomicity = ocp.path.atomicity
    return atomicity.CommitFileTemporaryPath if str(directory).startswith("gs://") else atomicity.AtomicRenameTemporaryPath


def copy_checkpoints(source_workdir: str | Path, target_workdir: str | Path) -> int:
    """Copy the checkpoint directory of one workdir into another's (file by file, each wherever
    `checkpoint_dir` keeps it, overwriting); returns the number of files copied."""
    source, target = checkpoint_dir(source_workdir), checkpoint_dir(target_workdir)
    if not source.is_dir():
        return 0
    copied = 0
    for folder, _, files in source.walk():
        for name in files:
            destination = target / (folder / name).relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            (folder / name).copy(destination, overwrite=True)
            copied += 1
    return copied


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
            temporary_path_class=completion_marker(self.directory),
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
