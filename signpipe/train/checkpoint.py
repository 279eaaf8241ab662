"""Checkpoints of a training run (Orbax), so a preempted or killed run resumes where it stopped.

`workdir/checkpoints/<step>/` holds three items:
- `state`: the train state pytree (`step`, `params`, `opt_state`, `ema_params`, and whatever else a
  stage adds, such as a Data2vec teacher), saved from the devices and restored onto the current
  mesh, whatever its size: a run checkpointed on 1 device resumes on 4 and the reverse.
- `progress`: JSON: the data iterator's state (epoch, position, seed) and the best validation
  score so far with its step, everything outside the pytree that the run's future depends on.
- `config`: JSON: the config that wrote it. Resuming with a config that changes the trajectory
  (anything but `RUN_CONTROL_FIELDS`) is refused: the result would be neither run. One change is
  allowed: a larger `total_steps` extends the run (`signpipe.train.run_config.trajectory_differences`).

Kept: the last `keep` checkpoints plus the one with the best validation score (saved with that
score as its metric), so the best weights survive however long the run goes on after them.
On a file system Orbax writes into a temporary directory and renames it when complete, so a kill
mid-save leaves the previous checkpoints intact; saves are asynchronous and overlap the next steps.

A damaged checkpoint (a truncated or unreadable file, a missing item, weights that are not
finite) does not end a resume: `restore_latest` tries the steps from the newest down, moves each
one that fails out of Orbax's directory into `checkpoints-damaged/<step>` next to it (renamed, never
deleted; a warning names it) and resumes from the newest one that restores. When none restores,
nothing is moved and one error lists each step with its reason. A checkpoint whose weights are not
finite is never written (`signpipe.train.loop` stops the run before saving one).

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

import contextlib
import gc
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers

from signpipe.errors import ConfigError, SignpipeError
from signpipe.train.run_config import RunConfig, trajectory_differences

CHECKPOINT_DIR = "checkpoints"
DAMAGED_DIR = "checkpoints-damaged"
"""Where `restore_latest` moves checkpoints that fail to restore: next to `CHECKPOINT_DIR`, outside
the directory Orbax manages (on `gs://` Orbax deletes any step folder there that lacks its commit
marker, so a damaged one must leave it to be kept)."""
SCORE_METRIC = "validation_score"
ITEMS = ("state", "progress", "config")
MAX_REASON = 240
"""A restore failure's reason is cut to this many characters (TensorStore's run to pages)."""
SETTLE_SECONDS = 0.25
"""After a failed restore: time for the reads still in flight to finish (see `_quiet_failures`)."""

log = logging.getLogger(__name__)


class Restored(NamedTuple):
    step: int
    state: Any
    progress: dict
    config: dict | None = None
    """The config that wrote the checkpoint (None from `restore`, which does not read it)."""
    set_aside: tuple[str, ...] = ()
    """Newer checkpoints that failed to restore, moved to `DAMAGED_DIR`: "step N -> path (reason)"."""


@jax.jit
def _leaves_finite(leaves: list[jax.Array]) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def all_finite(tree: Any) -> bool:
    """Whether every floating-point value of `tree` (a train state) is finite: one jitted reduction
    on the devices, a scalar back."""
    leaves = [leaf for leaf in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)]
    return True if not leaves else bool(_leaves_finite(leaves))


def _reason(exc: BaseException) -> str:
    """A restore failure in one line: its root cause (TensorStore's own error under Orbax's
    wrapper), without the TensorStore spec that follows it, cut to `MAX_REASON` characters."""
    seen = {id(exc)}
    while (inner := exc.__cause__) is not None and id(inner) not in seen:  # `raise ... from`: the cause
        seen.add(id(inner))
        exc = inner
    text = " ".join(str(exc).split()).split(" [tensorstore_spec")[0]
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


class _DropLogRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def _quiet_failures() -> Iterator[list[str]]:
    """Keep a failing restore to the one line its caller reports. When a read fails, Orbax's event
    loop closes with TensorStore reads still in flight: their futures and coroutines, collected
    later, print pages of tracebacks ("Future exception was never retrieved", "Exception ignored
    in ...", "Event loop is closed"). Inside this block those go nowhere, and when the caller has
    appended a failure to the yielded list, the block lets the reads in flight finish and collects
    what they leave before it ends. The caller must catch the exception inside the block (a live
    exception keeps its coroutines alive past it)."""
    loggers = [logging.getLogger(name) for name in ("asyncio", "absl")]
    quiet = _DropLogRecords()
    previous_hook = sys.unraisablehook
    for logger in loggers:
        logger.addFilter(quiet)
    sys.unraisablehook = lambda unraisable: None
    failures: list[str] = []
    try:
        yield failures
    finally:
        if failures:
            time.sleep(SETTLE_SECONDS)
            gc.collect()
        sys.unraisablehook = previous_hook
        for logger in loggers:
            logger.removeFilter(quiet)


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
        self.read_only = read_only
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

    def _read(self, step: int, **items: Any) -> Any:
        """`manager.restore` of some items of one step; a failure is a `SignpipeError` naming the
        step (a damaged checkpoint: a resume sets it aside, see `restore_latest`)."""
        with _quiet_failures() as failures:
            try:
                return self.manager.restore(step, args=ocp.args.Composite(**items))
            except Exception as exc:  # Orbax and TensorStore raise anything from ValueError to Exception
                failures.append(_reason(exc))
        raise SignpipeError(
            f"{self.directory / str(step)}: checkpoint cannot be read ({failures[0]}); if it is damaged, "
            "running the training command again on this workdir sets it aside and resumes from the one before"
        )

    def saved_config(self, step: int) -> dict:
        return dict(self._read(step, config=ocp.args.JsonRestore()).config)

    def saved_progress(self, step: int) -> dict:
        return dict(self._read(step, progress=ocp.args.JsonRestore()).progress)

    def _latest_readable_config(self) -> tuple[int, dict] | None:
        """(step, saved config) of the newest checkpoint whose config reads; a damaged one is
        skipped here (and set aside by `restore_latest`)."""
        for step in reversed(self.all_steps()):
            try:
                return step, self.saved_config(step)
            except SignpipeError:
                continue
        return None

    def check_config(self, config: RunConfig) -> None:
        """Refuse to resume the latest checkpoint with a config that changes the trajectory (a
        larger `total_steps` extends the run; see `trajectory_differences`)."""
        found = self._latest_readable_config()
        if found is None:
            return
        step, saved = found
        if saved.get("stage") != config.to_dict()["stage"]:
            raise ConfigError(
                f"{self.directory}: holds checkpoints of a {saved.get('stage')} run, not {config.to_dict()['stage']}; "
                "use a new workdir for each stage"
            )
        differences = trajectory_differences(saved, config)
        if differences:
            saved_total = saved.get("total_steps")
            shorter = isinstance(saved_total, int) and config.total_steps < saved_total
            raise ConfigError(
                f"{self.directory}: holds checkpoints of another run config (step {step}); differing: "
                + "; ".join(differences[:6])
                + (f" (and {len(differences) - 6} more)" if len(differences) > 6 else "")
                + ". Use a new workdir, or the original config to resume"
                + (
                    f"; a run is extended by raising total_steps above {saved_total} with every other value as "
                    "it was, never shortened."
                    if shorter
                    else f" (to train it longer, only raise total_steps above {saved_total})."
                )
            )

    def save(
        self,
        step: int,
        state: Any,
        progress: Mapping[str, Any],
        config: RunConfig,
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
        restored = self._read(step, state=ocp.args.StandardRestore(abstract_state), progress=ocp.args.JsonRestore())
        return Restored(step, restored.state, dict(restored.progress))

    def restore_latest(self, abstract_state: Any, verify: Callable[[Any], bool] = all_finite) -> Restored | None:
        """The newest checkpoint that restores completely (state into `abstract_state`, progress,
        config) and whose state passes `verify` (by default: every weight finite); None when there
        is no checkpoint. Newer ones that fail are damaged: each is moved out of the checkpoint
        directory into `DAMAGED_DIR` with a warning (unless read-only) and listed in
        `Restored.set_aside`. When none restores, nothing is moved and one error lists them all."""
        failures: list[tuple[int, str]] = []
        restored = None
        with _quiet_failures() as failed:
            for step in reversed(self.all_steps()):
                try:
                    restored = self.manager.restore(
                        step,
                        args=ocp.args.Composite(
                            state=ocp.args.StandardRestore(abstract_state),
                            progress=ocp.args.JsonRestore(),
                            config=ocp.args.JsonRestore(),
                        ),
                    )
                except Exception as exc:  # a damaged file fails anywhere in Orbax or TensorStore
                    failed.append(_reason(exc))
                    failures.append((step, failed[-1]))
                    continue
                if verify(restored.state):
                    break
                failures.append((step, "its weights are not finite (NaN or infinite values)"))
                restored = None
        if restored is not None:
            moved = self._set_aside(failures) if failures else ()
            return Restored(step, restored.state, dict(restored.progress), dict(restored.config), moved)
        if not failures:
            return None
        raise SignpipeError(
            f"{self.directory}: no checkpoint can be resumed from: "
            + "; ".join(f"step {step}: {problem}" for step, problem in failures)
            + ". Nothing was moved. If they were written for another model or signpipe version, use a new "
            f"workdir; if they are damaged, move {self.directory} aside (or use a new workdir) to start over."
        )

    def _set_aside(self, failures: list[tuple[int, str]]) -> tuple[str, ...]:
        """Move the checkpoints of `failures` into `DAMAGED_DIR` (renamed, never deleted)."""
        if self.read_only:
            return tuple(f"step {step} ({problem}); not moved (read-only)" for step, problem in failures)
        self.manager.wait_until_finished()
        target_root = self.directory.parent / DAMAGED_DIR
        moved = []
        for step, problem in failures:
            source = self.directory / str(step)
            target = target_root / str(step)
            n = 1
            while target.exists():  # set aside before: keep both
                target, n = target_root / f"{step}.{n}", n + 1
            if jax.process_index() == 0:
                target_root.mkdir(parents=True, exist_ok=True)
                try:
                    source.rename(target)
                except OSError as exc:
                    raise SignpipeError(
                        f"{source}: checkpoint is damaged ({problem}) and could not be moved to {target} ({exc}); "
                        "move it out of the checkpoints directory by hand and run again"
                    ) from None
            note = f"step {step} -> {target} ({problem})"
            log.warning("damaged checkpoint set aside: %s", note)
            moved.append(note)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("signpipe: damaged checkpoints set aside")
        self.manager.reload()
        return tuple(moved)

    def restore_unstructured(self, step: int | None = None) -> tuple[int, dict]:
        """The `state` item as saved (nested dicts of arrays, string keys), without knowing its
        structure: for reading weights into another model (an encoder from pretraining)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise SignpipeError(f"{self.directory}: no checkpoint found (expected a workdir of a finished run)")
        return step, self._read(step, state=ocp.args.StandardRestore()).state

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
