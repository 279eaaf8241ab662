"""The step loop every training stage shares: resume, step, log, evaluate, checkpoint, stop.

A stage (finetune, pretrain, distill) builds its train state pytree, a jitted `train_step(state,
batch) -> (state, scalars)`, a restorable batch iterator and, optionally, an `evaluate(state) ->
scalars`; `run_training_loop` drives them. Keeping this in one place is what makes every stage
resumable the same way:

- On start it restores the latest checkpoint of the workdir (train state, iterator position, best
  score) onto the current mesh; the loop then continues at that step.
- Every `checkpoint_every` steps, after every evaluation and at the end it saves a checkpoint.
- `stop_after_step=N` ends the process with `os._exit` right after step N (once pending saves are
  written), without closing anything: a rehearsal of a hard kill, used by the kill-and-resume test.
- SIGTERM (how Vertex AI and TPU maintenance preempt a job) makes it save the current step and
  exit with status 143, so a restarted job loses nothing.

The state's step counter and the iterator both live in the checkpoint, and the train step draws
its randomness from `fold_in(seed, step)`, so a resumed run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from signpipe.errors import SignpipeError
from signpipe.train.checkpoint import RunCheckpoints, abstract_like
from signpipe.train.compile_cache import enable_compilation_cache
from signpipe.train.config import TrainConfig
from signpipe.train.data import Batch, IteratorState
from signpipe.train.mesh import replicated_sharding, shard_batch
from signpipe.train.prefetch import PrefetchedBatches
from signpipe.train.reporting import ScalarWriter, StepRate, TrainingProgress

STOPPED_EXIT_CODE = 75
"""Exit status of a run ended by `stop_after_step` (EX_TEMPFAIL: "try again")."""
PREEMPTED_EXIT_CODE = 143
"""Exit status after a SIGTERM checkpoint (128 + 15, what the signal itself would give)."""


class RestorableBatches(Protocol):
    """A batch iterator whose position can be saved and restored (`data.TrainBatches`)."""

    state: IteratorState

    def __next__(self) -> Batch: ...

    def restore(self, state: IteratorState) -> None: ...


@dataclass(frozen=True)
class LoopOutcome:
    state: Any
    step: int
    resumed_from: int | None
    last_train: dict[str, float]
    last_evaluation: dict[str, float] | None
    best_score: float | None
    best_step: int | None
    train_seconds: float
    steps_run: int
    time_split: dict[str, float] | None = None
    """Seconds of the loop by kind (`StageClock.split`): compile, steps, data_wait, evaluation,
    checkpoint, restore."""


class StageClock:
    """Where a training loop's wall time goes, without slowing it: the first step is timed to
    completion (it holds the compilation, or its cache read); waits for the next batch, evaluations
    and checkpoint saves are timed as they happen; the steps are the rest."""

    KINDS = ("restore", "compile", "data_wait", "evaluation", "checkpoint")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.KINDS, 0.0)
        self._started = time.perf_counter()

    @contextlib.contextmanager
    def measure(self, kind: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[kind] += time.perf_counter() - began

    def split(self) -> dict[str, float]:
        total = time.perf_counter() - self._started
        steps = max(0.0, total - sum(self.seconds.values()))
        return {**{k: round(v, 3) for k, v in self.seconds.items()}, "steps": round(steps, 3), "total": round(total, 3)}


class _TerminationFlag:
    """Set by SIGTERM; checked between steps so the handler itself does no work.

    With several processes the hosts must agree on the step to save at (a save is collective),
    so there jax's preemption sync service, which watches SIGTERM itself, decides instead.
    """

    def __init__(self) -> None:
        self._raised = False
        self._previous: Any = None
        self._multi_process = jax.process_count() > 1

    def install(self) -> None:
        if not self._multi_process and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def reached(self, step: int) -> bool:
        if self._multi_process:
            return multihost_utils.reached_preemption_sync_point(step)
        return self._raised

    def _handle(self, signum: int, frame: Any) -> None:
        self._raised = True

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


def _mean_scalars(window: list[Mapping[str, Any]]) -> dict[str, float]:
    """Mean of each scalar over the steps since the last log: one device sync per log, not per step."""
    stacked = jax.device_get(window)
    return {name: float(np.mean([float(s[name]) for s in stacked])) for name in stacked[0]}


class NonFiniteLossError(SignpipeError):
    """The training loss became NaN or infinite: the run stops rather than train on garbage."""


def _check_finite(scalars: Mapping[str, float], step: int, workdir: Path) -> None:
    """Stop at the first logged window whose loss is not finite; the checkpoints before it stay."""
    loss = scalars.get("loss")
    if loss is not None and not math.isfinite(loss):
        raise NonFiniteLossError(
            f"{workdir}: training loss is {loss} at step {step} (expected a finite number); the run stops here. "
            "Check the data for non-finite values (signpipe data validate) and the learning rate; "
            "the last checkpoint before this window is kept"
        )


def run_training_loop(
    *,
    config: TrainConfig,
    workdir: str | Path,
    mesh: Mesh,
    state: Any,
    train_step: Callable[[Any, dict[str, jax.Array]], tuple[Any, Mapping[str, jax.Array]]],
    batches: RestorableBatches,
    evaluate: Callable[[Any], dict[str, float]] | None = None,
    eval_every: int | None = None,
    score_key: str | None = None,
    description: str = "train",
    extra_progress: Callable[[], Mapping[str, Any]] | None = None,
) -> LoopOutcome:
    """Run `config.total_steps` steps of `train_step`, resuming from the workdir's checkpoints.

    `state` is the freshly initialized train state (replicated on `mesh`), used when there is no
    checkpoint and as the restore target's structure otherwise; it must hold an int `"step"`.
    `evaluate(state)` returns scalars named like "validation/score"; `score_key` picks the one
    whose maximum marks the best checkpoint.
    """
    workdir = Path(workdir)
    clock = StageClock()
    enable_compilation_cache()
    is_primary = jax.process_index() == 0
    checkpoints = RunCheckpoints(workdir, keep=config.keep_checkpoints)
    checkpoints.check_config(config)
    with clock.measure("restore"):
        restored = checkpoints.restore_latest(abstract_like(state, replicated_sharding(mesh)))
    best_score: float | None = None
    best_step: int | None = None
    last_train: dict[str, float] = {}
    resumed_from = None
    if restored is not None:
        state = restored.state
        batches.restore(IteratorState.from_dict(restored.progress["iterator"]))
        best_score, best_step = restored.progress.get("best_score"), restored.progress.get("best_step")
        last_train = dict(restored.progress.get("last_train", {}))
        resumed_from = restored.step
    start = int(jax.device_get(state["step"]))
    total = config.total_steps
    last_evaluation: dict[str, float] | None = None

    # the next batches are augmented in a thread while the device steps; `feed.state` is where
    # the loop is, so checkpoints stay exact
    depth = getattr(config, "prefetch", 2)  # configs of other recipes may not have the field
    feed = PrefetchedBatches(batches, depth) if depth > 0 else batches

    def progress_record() -> dict[str, Any]:
        record = {
            "iterator": feed.state.to_dict(),
            "best_score": best_score,
            "best_step": best_step,
            "last_train": last_train,
        }
        if extra_progress is not None:
            record.update(extra_progress())
        return record

    termination = _TerminationFlag()
    termination.install()
    started = time.perf_counter()
    try:
        with (
            ScalarWriter(workdir, start_step=start, enabled=is_primary) as scalars,
            TrainingProgress(description, total, start, enabled=is_primary) as progress,
        ):
            if resumed_from is not None:
                progress.note(f"resumed from the checkpoint of step {resumed_from}")
            rate = StepRate(start)
            window: list[Mapping[str, Any]] = []
            for step in range(start + 1, total + 1):
                with clock.measure("data_wait"):
                    batch = shard_batch(next(feed), mesh)
                if step == start + 1:  # the first call compiles (or reads the compilation cache)
                    with clock.measure("compile"):
                        state, step_scalars = jax.block_until_ready(train_step(state, batch))
                    rate = StepRate(step)
                else:
                    state, step_scalars = train_step(state, batch)
                window.append(step_scalars)
                if step % config.log_every == 0 or step == total or step == config.stop_after_step:
                    last_train = _mean_scalars(window)
                    window = []
                    _check_finite(last_train, step, workdir)
                    steps_per_second = rate.read(step)
                    scalars.write(
                        step,
                        {
                            **{f"train/{k}": v for k, v in last_train.items()},
                            "train/steps_per_second": steps_per_second,
                            "train/samples_per_second": steps_per_second * config.batch_size,
                        },
                    )
                    progress.update(step, last_train.get("loss", math.nan), steps_per_second)
                score = None
                if evaluate is not None and eval_every and (step % eval_every == 0 or step == total):
                    with clock.measure("evaluation"):
                        last_evaluation = evaluate(state)
                    scalars.write(step, last_evaluation)
                    progress.note(
                        f"step {step}: " + "  ".join(f"{k} {v:.4f}" for k, v in last_evaluation.items())
                    )
                    if score_key is not None:
                        score = last_evaluation[score_key]
                        if best_score is None or score > best_score:
                            best_score, best_step = score, step
                    rate = StepRate(step)  # evaluation time is not training throughput
                preempted = termination.reached(step)
                if step % config.checkpoint_every == 0 or score is not None or step == total or preempted:
                    if window:  # the checkpoint's last_train must not depend on where logging fell
                        last_train = _mean_scalars(window)
                        window = []
                        _check_finite(last_train, step, workdir)  # never checkpoint a diverged state
                    with clock.measure("checkpoint"):
                        checkpoints.save(step, state, progress_record(), config, score)
                if preempted:
                    checkpoints.wait()
                    progress.note(f"SIGTERM: checkpoint of step {step} saved; exiting")
                    scalars.flush()
                    raise SystemExit(PREEMPTED_EXIT_CODE)
                if config.stop_after_step and step == config.stop_after_step and step < total:
                    checkpoints.wait()
                    scalars.flush()
                    os._exit(STOPPED_EXIT_CODE)
            if evaluate is not None and last_evaluation is None:
                # nothing left to train (resumed at the end): report the final weights all the same
                with clock.measure("evaluation"):
                    last_evaluation = evaluate(state)
            with clock.measure("checkpoint"):
                checkpoints.wait()
    finally:
        if isinstance(feed, PrefetchedBatches):
            feed.close()
        termination.uninstall()
        checkpoints.close()
    return LoopOutcome(
        state=state,
        step=total,
        resumed_from=resumed_from,
        last_train=last_train,
        last_evaluation=last_evaluation,
        best_score=best_score,
        best_step=best_step,
        train_seconds=time.perf_counter() - started,
        steps_run=total - start,
        time_split=clock.split(),
    )

