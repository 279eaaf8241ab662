"""The isolated-signs classifier, its ArcFace loss and the Ranger optimizer, on tiny inputs."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from signpipe.errors import ConfigError
from signpipe.signs.model import (
    SignModelConfig,
    arcface_logits,
    arcface_loss,
    build_sign_model,
    class_probabilities,
    frame_positions,
)
from signpipe.signs.optim import ranger, seed_schedule

TINY = SignModelConfig(width=32, blocks=2, heads=16, n_features=12, n_classes=7, max_frames=16)


def test_margin_lowers_only_the_target_logit() -> None:
    cosine = jnp.array([[0.9, 0.2, -0.3], [0.1, 0.5, 0.4], [-0.95, 0.0, 0.3]])
    labels = jnp.array([0, 2, 0])
    plain = np.asarray(arcface_logits(cosine, labels, scale=10.0, margin=0.0))
    np.testing.assert_allclose(plain, 10.0 * np.asarray(cosine), atol=1e-5)
    margin = np.asarray(arcface_logits(cosine, labels, scale=10.0, margin=0.3))
    target = np.eye(3, dtype=bool)[np.asarray(labels)]
    assert (margin[target] < plain[target]).all()
    np.testing.assert_allclose(margin[~target], plain[~target], atol=1e-5)
    np.testing.assert_allclose(margin[0, 0], 10.0 * math.cos(math.acos(0.9) + 0.3), rtol=1e-5)
    # past theta = pi - m the target logit still falls as theta grows (the linear continuation)
    far = np.asarray(arcface_logits(jnp.array([[-0.97], [-0.99]]), jnp.array([0, 0]), 10.0, 0.3))
    assert far[1, 0] < far[0, 0]


def test_arcface_loss_label_smoothing_and_finite_gradients() -> None:
    n_classes = 5
    labels = jnp.array([1, 3])
    confident = jnp.where(jax.nn.one_hot(labels, n_classes, dtype=bool), 1.0, -1.0)
    hard = arcface_loss(confident, labels, scale=30.0, margin=0.0, label_smoothing=0.0)
    smooth = arcface_loss(confident, labels, scale=30.0, margin=0.0, label_smoothing=0.2)
    assert float(hard.max()) < 1e-6 < float(smooth.min())  # smoothing penalizes total confidence
    # with smoothing the best cosine for the others is above -1: the loss is not monotone there
    expected = optax.softmax_cross_entropy(30.0 * confident, 0.8 * jax.nn.one_hot(labels, n_classes) + 0.2 / n_classes)
    np.testing.assert_allclose(smooth, expected, rtol=1e-5)
    # more margin, more loss; a better target cosine, less loss
    cosine = jnp.array([[0.5, 0.1, 0.0, 0.2, -0.1], [0.3, 0.0, 0.1, 0.4, 0.2]])
    assert (arcface_loss(cosine, labels, 30.0, 0.4, 0.2) > arcface_loss(cosine, labels, 30.0, 0.1, 0.2)).all()
    better = cosine.at[0, 1].set(0.6)
    assert arcface_loss(better, labels, 30.0, 0.4, 0.2)[0] < arcface_loss(cosine, labels, 30.0, 0.4, 0.2)[0]
    # at cos = +-1 (where d/dcos sqrt(1 - cos^2) is infinite) the gradient stays finite
    grads = jax.grad(lambda c: arcface_loss(c, labels, 30.0, 0.4, 0.2).sum())(confident)
    assert np.isfinite(np.asarray(grads)).all()


@pytest.fixture(scope="module")
def model():
    return build_sign_model(TINY, rngs=nnx.Rngs(params=0, dropout=1))


def test_classifier_shapes_masking_and_cosine_range(model) -> None:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 9, 12)), jnp.float32)
    mask = jnp.asarray(np.arange(9)[None, :] < np.array([[5], [9]]))
    run = nnx.jit(lambda m, x, mask: m(x, mask, deterministic=True))
    cosine = np.asarray(run(model, x, mask))
    assert cosine.shape == (2, 7) and np.abs(cosine).max() <= 1.0 + 1e-5
    # what sits in padded frames does not matter, nor how much padding there is
    noisy = x.at[0, 5:].set(1e3)
    np.testing.assert_allclose(run(model, noisy, mask), cosine, atol=1e-5)
    np.testing.assert_allclose(run(model, x[:1, :5], mask[:1, :5])[0], cosine[0], atol=1e-5)
    probabilities = np.asarray(class_probabilities(jnp.asarray(cosine), 16.0))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # positions count from the first valid frame (a crop window's start)
    np.testing.assert_array_equal(frame_positions(jnp.array([[False, False, True, True, False]]), 16), [[0, 0, 0, 1, 2]])


def test_training_mode_uses_dropout_and_eval_mode_does_not(model) -> None:
    x = jnp.ones((1, 4, 12))
    mask = jnp.ones((1, 4), bool)
    training = nnx.jit(lambda m, x, mask: m(x, mask, deterministic=False))
    evaluating = nnx.jit(lambda m, x, mask: m(x, mask, deterministic=True))
    assert not np.allclose(training(model, x, mask), training(model, x, mask))  # fresh dropout each call
    np.testing.assert_allclose(evaluating(model, x, mask), evaluating(model, x, mask))


def test_model_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="not divisible by heads"):
        SignModelConfig(width=30, heads=16)
    with pytest.raises(ConfigError, match="dropout"):
        SignModelConfig(dropout=1.0)


def test_ranger_moves_fast_weights_and_syncs_slow_ones_every_k_steps() -> None:
    target = jnp.array([1.0, -2.0, 3.0])
    params = {"w": jnp.zeros(3)}
    optimizer = ranger(1e-1, sync_period=3, slow_step_size=0.5)
    weights = optax.LookaheadParams(params, jax.tree.map(jnp.copy, params))
    state = optimizer.init(weights)
    loss = lambda p: jnp.sum((p["w"] - target) ** 2)  # noqa: E731
    history = []
    for _ in range(30):
        grads = jax.grad(loss)(weights.fast)
        updates, state = optimizer.update(grads, state, weights)
        weights = optax.apply_updates(weights, updates)
        history.append(weights)
    # slow weights change only at syncs (every 3rd step), and then the fast ones restart from them
    assert np.allclose(history[0].slow["w"], 0.0) and np.allclose(history[1].slow["w"], 0.0)
    assert not np.allclose(history[0].fast["w"], 0.0)
    assert not np.allclose(history[2].slow["w"], 0.0)
    np.testing.assert_allclose(history[2].fast["w"], history[2].slow["w"], rtol=1e-6)
    assert float(loss(history[-1].slow)) < 0.5 * float(loss(params))


def test_seed_schedule_rises_then_decays_to_the_end_value() -> None:
    schedule = seed_schedule(1e-6, 1e-4, 1e-7, warmup_steps=10, total_steps=100)
    assert math.isclose(float(schedule(0)), 1e-6, rel_tol=1e-4)
    assert math.isclose(float(schedule(10)), 1e-4, rel_tol=1e-4)
    assert math.isclose(float(schedule(100)), 1e-7, rel_tol=1e-3)
    assert float(schedule(5)) < float(schedule(10)) > float(schedule(50)) > float(schedule(90))
    with pytest.raises(ConfigError, match="warmup_steps"):
        seed_schedule(1e-6, 1e-4, 1e-7, warmup_steps=100, total_steps=100)


def test_bfloat16_compute_keeps_float32_weights_head_and_loss() -> None:
    model = build_sign_model(TINY, rngs=nnx.Rngs(params=0, dropout=1), dtype=jnp.bfloat16)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 12)), jnp.float32)
    mask = jnp.ones((2, 6), bool)

    @jax.jit
    def loss_and_grads(params):
        def loss(params):
            cosine = nnx.merge(graphdef, params, rest)(x, mask, deterministic=True)
            return arcface_loss(cosine, jnp.array([1, 4]), 16.0, 0.2, 0.2).mean(), cosine

        return jax.value_and_grad(loss, has_aux=True)(params)

    (value, cosine), grads = loss_and_grads(params)
    assert cosine.dtype == jnp.float32 and np.isfinite(float(value))
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    full = build_sign_model(TINY, rngs=nnx.Rngs(params=0, dropout=1))  # the same weights, float32 compute
    reference = nnx.jit(lambda m, x, mask: m(x, mask, deterministic=True))(full, x, mask)
    np.testing.assert_allclose(cosine, reference, atol=0.05)  # bf16 rounding only
