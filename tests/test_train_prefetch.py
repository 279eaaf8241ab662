"""Batches prepared in a background thread: the same batches in the same order, a position that
follows what the loop took (not what the thread prepared), exact restore, errors raised in the
loop, and a training loop stopped on a non-finite loss."""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import pytest

from signpipe.fingerspelling.config import preset
from signpipe.train.batching import IteratorState
from signpipe.train.loop import NonFiniteLossError, run_training_loop
from signpipe.train.mesh import make_mesh, replicate
from signpipe.train.prefetch import PrefetchedBatches


class Counting:
    def __init__(self, fail_at: int | None = None) -> None:
        self.state = IteratorState(0, 0, 0)
        self.fail_at = fail_at

    def __next__(self):
        position = self.state.position
        if position == self.fail_at:
            raise ValueError(f"bad sample at {position}")
        self.state = IteratorState(0, position + 1, 0)
        return position

    def restore(self, state: IteratorState) -> None:
        self.state = state


def test_same_batches_and_state_follows_the_consumer():
    feed = PrefetchedBatches(Counting(), depth=3)
    taken = [next(feed) for _ in range(5)]
    assert taken == [0, 1, 2, 3, 4]
    assert feed.state.position == 5  # the thread may be ahead; the state is where the loop is
    feed.close()
    assert next(feed) == 5  # close put the wrapped iterator back


def test_restore_repositions_exactly():
    feed = PrefetchedBatches(Counting())
    [next(feed) for _ in range(4)]
    feed.restore(IteratorState(0, 2, 0))
    assert feed.state.position == 2
    assert [next(feed) for _ in range(3)] == [2, 3, 4]
    feed.close()


def test_an_error_in_the_thread_is_raised_at_its_batch():
    feed = PrefetchedBatches(Counting(fail_at=3))
    assert [next(feed) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="bad sample at 3"):
        next(feed)
    assert feed.state.position == 3


def test_training_stops_at_a_non_finite_loss(tmp_path):
    config = dataclasses.replace(preset("finetune", "smoke"), total_steps=20, warmup_steps=1, log_every=2,
                                 checkpoint_every=4)

    class Values:
        def __init__(self):
            self.state = IteratorState(0, 0, 0)

        def __next__(self):
            position = self.state.position
            self.state = IteratorState(0, position + 1, 0)
            return {"value": np.full((1,), math.inf if position >= 6 else 1.0, np.float32)}

        def restore(self, state):
            self.state = state

    def step(state, batch):
        return {"step": state["step"] + 1}, {"loss": batch["value"][0]}

    mesh = make_mesh()
    state = replicate({"step": jnp.int32(0)}, mesh)
    with pytest.raises(NonFiniteLossError, match="training diverged at step 7: train/loss is inf"):
        run_training_loop(config=config, workdir=tmp_path, mesh=mesh, state=state, train_step=step, batches=Values())
    assert not (tmp_path / "final_metrics.json").exists()
