"""Optimizer pieces: schedule shape, decay only on kernels, clipping before AdamW, EMA ramp."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from signpipe.fingerspelling.model import build_ctc_model, model_config
from signpipe.fingerspelling.config import preset
from signpipe.train.optim import (
    build_optimizer,
    ema_decay_at,
    learning_rate_schedule,
    update_ema,
    weight_decay_mask,
)


@pytest.fixture(scope="module")
def params():
    model = build_ctc_model(model_config("tiny", {"layers": 1, "width": 32, "heads": 2}), rngs=nnx.Rngs(0))
    return nnx.state(model, nnx.Param)


def config(**changes):
    base = dataclasses.replace(preset("finetune", "smoke"), total_steps=100, warmup_steps=10, learning_rate=1e-3)
    return dataclasses.replace(base, **changes)


def test_cosine_schedule_warms_up_then_decays():
    schedule = learning_rate_schedule(config(end_learning_rate_fraction=0.1))
    values = np.array([float(schedule(s)) for s in range(101)])
    assert values[0] == 0.0
    assert values[10] == pytest.approx(1e-3)
    assert np.all(np.diff(values[:11]) > 0) and np.all(np.diff(values[10:]) <= 1e-12)
    assert values[100] == pytest.approx(1e-4)


def test_onecycle_schedule_peaks_after_warmup():
    schedule = learning_rate_schedule(config(schedule="onecycle", end_learning_rate_fraction=0.01))
    values = np.array([float(schedule(s)) for s in range(101)])
    assert int(values.argmax()) == 10 and values.max() == pytest.approx(1e-3)
    assert values[0] == pytest.approx(1e-3 / 25)
    assert values[100] == pytest.approx(1e-5, rel=1e-3)


def test_weight_decay_only_on_kernels(params):
    mask = weight_decay_mask(params)
    flat = {"/".join(map(str, path)): bool(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(mask)}
    decayed = {k for k, v in flat.items() if v}
    assert decayed and all("kernel" in k for k in decayed)
    assert all(not flat[k] for k in flat if k.endswith(("bias']", "scale']")) or "bias" in k or "scale" in k)

    # with zero gradients AdamW moves only the decayed leaves
    optimizer = build_optimizer(config(weight_decay=0.5, warmup_steps=0), params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = optimizer.update(zeros, optimizer.init(params), params)
    moved = jax.tree.map(lambda u: bool(jnp.any(u != 0)), updates)
    assert jax.tree.leaves(moved) == jax.tree.leaves(mask)


def test_gradients_are_clipped_before_adam(params):
    optimizer = build_optimizer(config(clip_norm=0.5), params)
    huge = jax.tree.map(lambda p: jnp.full_like(p, 100.0), params)
    _, state = optimizer.update(huge, optimizer.init(params), params)
    adam_state = state[1][0]  # chain(clip, adamw(...)) -> adamw's scale_by_adam state
    first_moment = optax.tree.norm(adam_state.mu)
    assert float(first_moment) == pytest.approx((1 - 0.9) * 0.5, rel=1e-4)


def test_ema_decay_ramps_up_to_its_value():
    assert float(ema_decay_at(0, 0.993)) == pytest.approx(0.1)
    assert float(ema_decay_at(90, 0.993)) == pytest.approx(91 / 100)
    assert float(ema_decay_at(100_000, 0.993)) == pytest.approx(0.993)


def test_update_ema_is_a_convex_step():
    ema = {"w": jnp.zeros(3), "b": jnp.ones(2)}
    new = {"w": jnp.full(3, 10.0), "b": jnp.zeros(2)}
    out = update_ema(ema, new, 0.9)
    np.testing.assert_allclose(out["w"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(out["b"], 0.9, rtol=1e-6)
