"""Orbax checkpoints of a run: round trip, what is kept (last k + best), refusing another config."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from signpipe.errors import ConfigError
from signpipe.train.checkpoint import RunCheckpoints, abstract_like
from signpipe.train.config import preset
from signpipe.train.mesh import make_mesh, replicated_sharding

CONFIG = preset("finetune", "smoke")


def train_state(step: int) -> dict:
    return {
        "step": jnp.int32(step),
        "params": {"w": jnp.full((3, 2), float(step)), "b": jnp.arange(2.0) + step},
        "opt_state": (jnp.zeros(3), {"count": jnp.int32(step)}),
    }


def test_round_trip_onto_the_mesh(tmp_path):
    with RunCheckpoints(tmp_path, keep=2) as checkpoints:
        assert checkpoints.latest_step() is None
        checkpoints.save(5, train_state(5), {"iterator": {"epoch": 1, "position": 2, "seed": 0}}, CONFIG)
        checkpoints.wait()
    target = abstract_like(train_state(0), replicated_sharding(make_mesh()))
    with RunCheckpoints(tmp_path, keep=2) as checkpoints:
        restored = checkpoints.restore_latest(target)
    assert restored.step == 5
    assert restored.progress == {"iterator": {"epoch": 1, "position": 2, "seed": 0}}
    for want, got in zip(jax.tree.leaves(train_state(5)), jax.tree.leaves(restored.state)):
        np.testing.assert_array_equal(want, got)
        assert got.sharding.is_fully_replicated
    assert jax.tree.structure(restored.state) == jax.tree.structure(train_state(0))


def test_keeps_the_last_k_and_the_best(tmp_path):
    scores = {2: 0.9, 4: 0.3, 6: 0.5}
    with RunCheckpoints(tmp_path, keep=2) as checkpoints:
        for step in range(1, 8):
            checkpoints.save(step, train_state(step), {}, CONFIG, score=scores.get(step))
        checkpoints.wait()
        assert checkpoints.all_steps() == [2, 6, 7]


def test_refuses_a_checkpoint_of_another_config(tmp_path):
    with RunCheckpoints(tmp_path) as checkpoints:
        checkpoints.save(1, train_state(1), {}, CONFIG)
        checkpoints.wait()
        checkpoints.check_config(dataclasses.replace(CONFIG, stop_after_step=3, log_every=1))
        with pytest.raises(ConfigError, match=r"another run config \(step 1\); differing: learning_rate: 0.002 -> 0.1"):
            checkpoints.check_config(dataclasses.replace(CONFIG, learning_rate=0.1))
        with pytest.raises(ConfigError, match="holds checkpoints of a finetune run, not pretrain"):
            checkpoints.check_config(preset("pretrain", "smoke"))


def test_unstructured_restore_gives_nested_dicts(tmp_path):
    with RunCheckpoints(tmp_path) as checkpoints:
        checkpoints.save(3, train_state(3), {}, CONFIG)
        checkpoints.wait()
        step, saved = checkpoints.restore_unstructured()
    assert step == 3
    np.testing.assert_array_equal(saved["params"]["w"], np.full((3, 2), 3.0))
