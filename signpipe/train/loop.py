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
- A run that diverges stops with `TrainingDiverged` at the first step whose training loss,
  gradient norm or any other step scalar is not finite, at an evaluation whose scalars are not
  finite, or before a checkpoint whose weights are not finite; no diverged state is checkpointed, so
  the last checkpoint saved before stays the one a rerun resumes from. The check costs no device
  sync of its own: the step scalars are read at log steps (and before each checkpoint) anyway, the
  whole window at once, so the error names the first bad step exactly; the weights are checked
  with one jitted reduction per checkpoint.
- A larger `total_steps` than the checkpoint's config extends the run: it continues from the
  checkpoint with the learning-rate schedule of the new total (`LoopOutcome.extensions`).

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
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from signpipe.errors import SignpipeError
from signpipe.train.checkpoint import RunCheckpoints, abstract_like, all_finite
from signpipe.train.compile_cache import enable_compilation_cache
from signpipe.train.run_config import RunConfig
from signpipe.train.batching import Batch, IteratorState
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
    extensions: tuple[dict[str, int], ...] = ()
    """Each time the run was extended: `{"step": resumed at, "from_total_steps", "to_total_steps"}`."""
    set_aside: tuple[str, ...] = ()
    """Damaged checkpoints moved aside when this run resumed (`Restored.set_aside`)."""


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


class NonFinite(NamedTuple):
    """The first value of a run that is not finite: at which step, which scalar, what value (None
    for the weights, checked as a whole, between `first_step` and `step`)."""

    step: int
    name: str
    value: float | None
    first_step: int | None = None


def _check_order(name: str) -> tuple[int, str]:
    """The loss first, then the gradient norm, then the rest: the name an error reports."""
    return ({"loss": 0, "grad_norm": 1}.get(name, 2), name)


def _read_window(window: list[Mapping[str, Any]], last_step: int) -> tuple[dict[str, float], NonFinite | None]:
    """Mean of each scalar over the steps since the last log (one device sync per log, not per
    step), and the first step of the window with a scalar that is not finite."""
    stacked = jax.device_get(window)
    names = sorted(stacked[0], key=_check_order)
    values = np.array([[float(s[name]) for name in names] for s in stacked], dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: a NaN mean, reported as null
        means = {name: float(mean) for name, mean in zip(names, values.mean(axis=0), strict=True)}
    bad = ~np.isfinite(values)
    if not bad.any():
        return means, None
    row = int(np.argmax(bad.any(axis=1)))
    column = int(np.argmax(bad[row]))
    return means, NonFinite(last_step - len(stacked) + 1 + row, f"train/{names[column]}", float(values[row, column]))


class TrainingDiverged(SignpipeError):
    """Training produced a value that is not finite (loss, gradient norm, weights, a validation
    scalar); the run stopped at the first step it was seen at, without checkpointing it."""

    def __init__(self, message: str, step: int, quantity: str, value: float | None):
        super().__init__(message)
        self.step, self.quantity, self.value = step, quantity, value


NonFiniteLossError = TrainingDiverged
"""The former name (a non-finite training loss is one way a run diverges)."""


def _learning_rate_text(config: Any) -> str:
    fields = [f"{name}={getattr(config, name)}" for name in ("learning_rate", "warmup_steps", "warmup_epochs", "clip_norm")
              if hasattr(config, name)]  # fmt: skip
    return ", ".join(fields)


LEARNING_RATE_TOO_HIGH = "a learning rate too high for this model ({config})"
BAD_INPUTS = "non-finite input features in {what}"


def _divergence_message(
    workdir: Path, found: NonFinite, cause: str, remedy: str, last_checkpoint: int | None, start: int
) -> str:
    if found.value is None:
        where = f"step {found.step}" if found.first_step in (None, found.step) else f"steps {found.first_step}-{found.step}"
        what = f"in {where}: {found.name} are not finite"
    else:
        what = f"at step {found.step}: {found.name} is {found.value} (expected a finite number)"
    kept = (
        f"the checkpoint of step {last_checkpoint} is kept and a rerun resumes from it"
        if last_checkpoint is not None
        else "no checkpoint was saved before it"
    )
    return (
        f"{workdir}: training diverged {what}. Likely cause: {cause}. Nothing diverged was checkpointed; {kept}. {remedy}"
        + (f" (this run started at step {start})" if start else "")
    )


def run_training_loop(
    *,
    config: RunConfig,
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
    whose maximum marks the best checkpoint. Raises `TrainingDiverged` at the first value that is
    not finite (see the module docstring).
    """
    workdir = Path(workdir)
    clock = StageClock()
    enable_compilation_cache()
    is_primary = jax.process_index() == 0
    checkpoints = RunCheckpoints(workdir, keep=config.keep_checkpoints)
    try:
        checkpoints.check_config(config)
        with clock.measure("restore"):
            restored = checkpoints.restore_latest(abstract_like(state, replicated_sharding(mesh)))
    except BaseException:
        checkpoints.close()
        raise
    best_score: float | None = None
    best_step: int | None = None
    last_train: dict[str, float] = {}
    resumed_from = None
    extensions: list[dict[str, int]] = []
    if restored is not None:
        state = restored.state
        batches.restore(IteratorState.from_dict(restored.progress["iterator"]))
        best_score, best_step = restored.progress.get("best_score"), restored.progress.get("best_step")
        last_train = dict(restored.progress.get("last_train", {}))
        extensions = [dict(e) for e in restored.progress.get("extensions", [])]
        resumed_from = restored.step
        saved_total = (restored.config or {}).get("total_steps")
        if isinstance(saved_total, int) and saved_total != config.total_steps:
            extensions.append({"step": restored.step, "from_total_steps": saved_total, "to_total_steps": config.total_steps})
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
            "extensions": extensions,
        }
        if extra_progress is not None:
            record.update(extra_progress())
        return record

    def diverged(found: NonFinite, cause: str, remedy: str) -> TrainingDiverged:
        """The error for `found`, once the checkpoints saved before it are on disk."""
        checkpoints.wait()
        message = _divergence_message(workdir, found, cause, remedy, checkpoints.latest_step(), start)
        return TrainingDiverged(message, found.step, found.name, found.value)

    lower_rate = "The same config diverges again: train in a new workdir with a lower learning_rate or a longer warmup."
    fix_data = "Fix or drop the sequences with non-finite values (signpipe data validate), then train again."

    def training_diverged(found: NonFinite) -> TrainingDiverged:
        # the loss of the first step of a run is computed with finite weights (fresh, or restored and
        # verified): only its batch can make it non-finite; later, the learning rate is the usual cause
        if found.step == start + 1:
            return diverged(
                found, BAD_INPUTS.format(what=f"the batch of step {found.step}") + " (the weights were finite before it)",
                fix_data,
            )  # fmt: skip
        return diverged(
            found,
            LEARNING_RATE_TOO_HIGH.format(config=_learning_rate_text(config))
            + ", or " + BAD_INPUTS.format(what=f"the batch of step {found.step}"),
            lower_rate,
        )

    weights_checked = start  # the last step the weights were seen finite at (a fresh or verified state)

    def check_weights(step: int) -> None:
        nonlocal weights_checked
        if all_finite(state):
            weights_checked = step
        else:
            raise diverged(
                NonFinite(step, "the weights", None, weights_checked + 1),
                LEARNING_RATE_TOO_HIGH.format(config=_learning_rate_text(config))
                + ": the weights overflowed while the loss and gradient norm were still finite",
                lower_rate,
            )

    def check_evaluation(step: int, scalars: Mapping[str, float]) -> None:
        bad = [(name, value) for name, value in scalars.items() if not math.isfinite(float(value))]
        if not bad:
            return
        found = NonFinite(step, bad[0][0], float(bad[0][1]))
        if all_finite(state):
            raise diverged(found, BAD_INPUTS.format(what="the validation split") + " (the weights are finite)", fix_data)
        raise diverged(found, LEARNING_RATE_TOO_HIGH.format(config=_learning_rate_text(config)), lower_rate)

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
            if extensions and extensions[-1]["step"] == resumed_from:
                extension = extensions[-1]
                progress.note(
                    f"extending the run from total_steps={extension['from_total_steps']} to {total}: from step "
                    f"{start} on, the learning rate follows the schedule of {total} steps"
                )
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
                    last_train, found = _read_window(window, step)
                    window = []
                    steps_per_second = rate.read(step)
                    scalars.write(
                        step,
                        {
                            **{f"train/{k}": v for k, v in last_train.items()},
                            "train/steps_per_second": steps_per_second,
                            "train/samples_per_second": steps_per_second * config.batch_size,
                        },
                    )
                    if found is not None:
                        raise training_diverged(found)
                    progress.update(step, last_train.get("loss", math.nan), steps_per_second)
                score = None
                if evaluate is not None and eval_every and (step % eval_every == 0 or step == total):
                    with clock.measure("evaluation"):
                        last_evaluation = evaluate(state)
                    scalars.write(step, last_evaluation)
                    check_evaluation(step, last_evaluation)
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
                        last_train, found = _read_window(window, step)
                        window = []
                        if found is not None:  # never checkpoint a diverged state
                            raise training_diverged(found)
                    with clock.measure("checkpoint"):
                        check_weights(step)
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
                check_evaluation(start, last_evaluation)
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
        extensions=tuple(extensions),
        set_aside=restored.set_aside if restored is not None else (),
    )


def outcome_notes(outcome: LoopOutcome) -> dict[str, Any]:
    """What a stage's final metrics add about how the run went, when there is something to say:
    the extensions of `total_steps` and the damaged checkpoints set aside on resuming."""
    notes: dict[str, Any] = {}
    if outcome.extensions:
        notes["extensions"] = [dict(extension) for extension in outcome.extensions]
    if outcome.set_aside:
        notes["checkpoints_set_aside"] = list(outcome.set_aside)
    return notes
