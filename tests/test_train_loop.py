"""The shared step loop on a toy train state (no model to compile): evaluation cadence and best
checkpoint, SIGTERM preemption saving the current step, and an exact resume afterwards."""

from __future__ import annotations

import dataclasses
import signal

import jax.numpy as jnp
import numpy as np
import pytest

from signpipe.train.checkpoint import RunCheckpoints
from signpipe.fingerspelling.config import preset
from signpipe.train.batching import IteratorState
from signpipe.train.loop import PREEMPTED_EXIT_CODE, run_training_loop
from signpipe.train.mesh import make_mesh, replicate
from signpipe.train.reporting import read_metrics

CONFIG = dataclasses.replace(
    preset("finetune", "smoke"), total_steps=10, warmup_steps=1, log_every=2, checkpoint_every=4, keep_checkpoints=1
)


class CountingBatches:
    """Batch k holds the number k: the state it reaches shows exactly which batches it saw."""

    def __init__(self) -> None:
        self.state = IteratorState(0, 0, 0)

    def __next__(self) -> dict[str, np.ndarray]:
        position = self.state.position
        self.state = IteratorState(0, position + 1, 0)
        return {"value": np.full((1,), float(position))}

    def restore(self, state: IteratorState) -> None:
        self.state = state


def toy_step(state, batch):
    total = state["total"] * 0.5 + batch["value"][0]
    return {"step": state["step"] + 1, "total": total}, {"loss": total}


def run(workdir, train_step=toy_step, evaluate=None, eval_every=None):
    mesh = make_mesh()
    state = replicate({"step": jnp.int32(0), "total": jnp.float32(0)}, mesh)
    return run_training_loop(
        config=CONFIG, workdir=workdir, mesh=mesh, state=state, train_step=train_step, batches=CountingBatches(),
        evaluate=evaluate, eval_every=eval_every, score_key="validation/score",
    )  # fmt: skip


def test_evaluation_cadence_and_best_checkpoint(tmp_path):
    scores = iter([0.2, 0.9, 0.4, 0.3])
    outcome = run(tmp_path, evaluate=lambda state: {"validation/score": next(scores)}, eval_every=3)
    assert outcome.step == 10 and outcome.best_step == 6 and outcome.best_score == 0.9
    assert [r["step"] for r in read_metrics(tmp_path) if "validation/score" in r] == [3, 6, 9, 10]
    with RunCheckpoints(tmp_path) as checkpoints:
        assert checkpoints.all_steps() == [6, 10]  # the last one and the best one


def test_sigterm_saves_the_current_step_and_the_rerun_resumes(tmp_path):
    expected = run(tmp_path / "whole")

    def preempted_step(state, batch):
        if int(state["step"]) == 5:
            signal.raise_signal(signal.SIGTERM)
        return toy_step(state, batch)

    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exit_info:
        run(tmp_path / "preempted", preempted_step)
    assert exit_info.value.code == PREEMPTED_EXIT_CODE
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the loop's handler is gone again
    with RunCheckpoints(tmp_path / "preempted") as checkpoints:
        assert checkpoints.latest_step() == 6

    resumed = run(tmp_path / "preempted")
    assert resumed.resumed_from == 6 and resumed.steps_run == 4
    assert float(resumed.state["total"]) == pytest.approx(float(expected.state["total"]))
    assert resumed.last_train == pytest.approx(expected.last_train)
