"""The encoder's contracts: shapes, padding invariance, relative positions, LayerDrop, sizes."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from signpipe.errors import ConfigError
from signpipe.fingerspelling.model import (
    SIZES,
    CTCModel,
    Encoder,
    EncoderLayer,
    ModelConfig,
    apply_rotary,
    build_ctc_model,
    count_params,
    fp16_megabytes,
    frame_mask,
    model_config,
    rotary_angles,
)

TINY = model_config("tiny")


@pytest.fixture(scope="module")
def model() -> CTCModel:
    return build_ctc_model(TINY, rngs=nnx.Rngs(params=0, dropout=1), with_kd_head=True)


# Jitted entry points: one XLA compile per input shape instead of one per primitive (eager), which
# keeps this file fast on two shared cores; tests reuse a few shapes on purpose.
@nnx.jit
def infer(model: CTCModel, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    return model(x, mask, deterministic=True)


@nnx.jit
def train_step(model: CTCModel, x: jax.Array, mask: jax.Array):
    """Training-mode forward and backward: (loss, CTC logits), parameter grads, input grads."""

    def loss(model: CTCModel, x: jax.Array):
        logits, kd_logits = model.logits_with_kd(x, mask, deterministic=False)
        return jnp.sum(jnp.where(mask[..., None], logits**2 + kd_logits**2, 0.0)), logits

    return nnx.value_and_grad(loss, argnums=(0, 1), has_aux=True)(model, x)


@nnx.jit
def embed(model: CTCModel, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    return model.encoder.embed(x, mask)


@nnx.jit
def encode(model: CTCModel, h: jax.Array, mask: jax.Array | None, positions: jax.Array | None) -> jax.Array:
    return model.encoder.encode(h, mask, positions, deterministic=True)


def frames(seed: int, batch: int, n_frames: int, n_features: int = TINY.n_features) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=(batch, n_frames, n_features)), jnp.float32)


def test_output_shapes(model: CTCModel) -> None:
    x = frames(0, 2, 12)
    mask = frame_mask(jnp.array([12, 1]), 12)

    @nnx.jit
    def all_outputs(model: CTCModel, x: jax.Array, mask: jax.Array):
        h = model.encoder.embed(x, mask)
        out, hidden = model.encoder.encode(h, mask, deterministic=True, return_hidden=True)
        logits, kd_logits = model.logits_with_kd(x, mask, deterministic=True)
        return h, out, hidden, logits, kd_logits, model.encoder.final_norm(hidden[-1])

    h, out, hidden, logits, kd_logits, normed_last = all_outputs(model, x, mask)
    assert h.shape == out.shape == (2, 12, TINY.width)
    assert hidden.shape == (TINY.layers, 2, 12, TINY.width)
    assert logits.shape == kd_logits.shape == (2, 12, TINY.n_classes)
    np.testing.assert_allclose(infer(model, x, mask), logits, atol=1e-6)
    # The last layer's output is what the final LayerNorm normalizes.
    np.testing.assert_allclose(normed_last, out, atol=1e-6)
    # The CTC and KD heads are distinct weights.
    assert not np.allclose(logits, kd_logits)


def test_frame_mask() -> None:
    np.testing.assert_array_equal(
        frame_mask(jnp.array([3, 0, 5]), 5),
        [[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]],
    )


def test_valid_frames_ignore_padding_content_and_length(model: CTCModel) -> None:
    lengths = [12, 5, 1]
    sequences = [frames(10 + i, 1, n)[0] for i, n in enumerate(lengths)]
    alone = [infer(model, seq[None], None)[0] for seq in sequences]
    rng = np.random.default_rng(7)
    for padded_length in (12, 23):
        garbage = rng.normal(scale=1e3, size=(len(lengths), padded_length, TINY.n_features)).astype(np.float32)
        garbage[:, ::2, :7] = np.nan  # NaN in padding must not leak either
        batch = garbage.copy()
        for i, seq in enumerate(sequences):
            batch[i, : len(seq)] = np.asarray(seq)
        out = infer(model, jnp.asarray(batch), frame_mask(jnp.array(lengths), padded_length))
        for i, n in enumerate(lengths):
            np.testing.assert_allclose(out[i, :n], alone[i], atol=2e-5, rtol=1e-5)
            assert np.isfinite(np.asarray(out[i])).all()


def test_input_gradient_is_zero_at_padded_frames(model: CTCModel) -> None:
    x = frames(3, 2, 12)
    mask = frame_mask(jnp.array([12, 5]), 12)
    _, (_, input_grad) = train_step(model, x, mask)
    input_grad = np.asarray(input_grad)
    assert np.all(input_grad[1, 5:] == 0.0)
    assert np.abs(input_grad[1, :5]).sum() > 0 and np.abs(input_grad[0]).sum() > 0


def test_rotary_scores_depend_only_on_relative_position() -> None:
    rng = np.random.default_rng(0)
    query = jnp.asarray(rng.normal(size=(1, 12, 2, 16)), jnp.float32)
    key = jnp.asarray(rng.normal(size=(1, 12, 2, 16)), jnp.float32)
    positions = jnp.arange(12)[None, :]

    @jax.jit
    def scores(positions: jax.Array) -> jax.Array:
        angles = rotary_angles(positions, 16, 10000.0)
        return jnp.einsum("bqhd,bkhd->bhqk", apply_rotary(query, angles), apply_rotary(key, angles))

    np.testing.assert_allclose(scores(positions), scores(positions + 37), atol=1e-4)
    np.testing.assert_allclose(scores(positions), scores(positions + 503), atol=1e-3)
    # Positions do matter once they are not a uniform shift.
    assert np.abs(np.asarray(scores(positions * 2) - scores(positions))).max() > 1e-2
    # Rotation preserves norms.
    rotated = apply_rotary(query, rotary_angles(positions, 16, 10000.0))
    np.testing.assert_allclose(jnp.linalg.norm(rotated, axis=-1), jnp.linalg.norm(query, axis=-1), rtol=1e-5)


def test_encoder_is_invariant_to_shifting_all_positions(model: CTCModel) -> None:
    x = frames(4, 2, 12)
    mask = frame_mask(jnp.array([12, 6]), 12)
    h = embed(model, x, mask)
    positions = jnp.broadcast_to(jnp.arange(12), (2, 12))
    reference = encode(model, h, mask, None)
    np.testing.assert_allclose(encode(model, h, mask, positions), reference, atol=1e-6)
    np.testing.assert_allclose(encode(model, h, mask, positions + 25), reference, atol=1e-4)
    reversed_order = encode(model, h, mask, 11 - positions)
    assert np.abs(np.asarray(reversed_order - reference)).max() > 1e-3


def test_encode_of_visible_subset_equals_masked_full_sequence(model: CTCModel) -> None:
    """Data2vec's student sees only visible tokens; with their positions it must compute exactly what
    the full sequence computes when the hidden tokens are masked out as keys."""
    n_frames = 12
    h = embed(model, frames(5, 2, n_frames), None)
    visible = np.array([[0, 2, 3, 7, 8, 11], [1, 4, 5, 6, 9, 10]])
    visible_mask = np.zeros((2, n_frames), bool)
    np.put_along_axis(visible_mask, visible, True, axis=1)
    full = encode(model, h, jnp.asarray(visible_mask), None)
    subset_h = jnp.take_along_axis(h, jnp.asarray(visible)[..., None], axis=1)
    all_visible = jnp.ones(visible.shape, bool)
    subset = encode(model, subset_h, all_visible, jnp.asarray(visible))
    np.testing.assert_allclose(subset, np.take_along_axis(np.asarray(full), visible[..., None], axis=1), atol=2e-5)
    # Without the original positions the subset is a different sequence.
    renumbered = encode(model, subset_h, all_visible, jnp.broadcast_to(jnp.arange(6), (2, 6)))
    assert np.abs(np.asarray(renumbered - subset)).max() > 1e-3
    # Different numbers of visible tokens per sample (a padded subset) stay consistent.
    subset_mask = jnp.asarray([[True] * 6, [True] * 4 + [False] * 2])
    padded = encode(model, subset_h, subset_mask, jnp.asarray(visible))
    np.testing.assert_allclose(padded[0], subset[0], atol=1e-6)
    visible_mask[1, visible[1, 4:]] = False
    full_short = encode(model, h, jnp.asarray(visible_mask), None)
    np.testing.assert_allclose(padded[1, :4], np.asarray(full_short)[1, visible[1, :4]], atol=2e-5)


def test_layerdrop_is_identity_in_eval_and_per_sample_in_training() -> None:
    config = dataclasses.replace(TINY, dropout=0.0, layerdrop=0.5)
    layer = EncoderLayer(config, rngs=nnx.Rngs(params=0, dropout=3))
    batch, n_frames = 64, 5
    x = jnp.broadcast_to(frames(6, 1, n_frames, config.width), (batch, n_frames, config.width))
    angles = rotary_angles(jnp.broadcast_to(jnp.arange(n_frames), (batch, n_frames)), config.head_width, config.rope_base)
    mask = jnp.ones((batch, n_frames), bool)

    @nnx.jit(static_argnames="deterministic")
    def apply(layer: EncoderLayer, deterministic: bool) -> jax.Array:
        return layer(x, angles, mask, deterministic=deterministic)

    evaluated = np.asarray(apply(layer, deterministic=True))
    np.testing.assert_array_equal(evaluated, apply(layer, deterministic=True))
    layer.layerdrop = 0.0
    np.testing.assert_array_equal(apply(layer, deterministic=False), evaluated)
    layer.layerdrop = config.layerdrop

    trained = np.asarray(apply(layer, deterministic=False))
    skipped = np.all(trained == np.asarray(x), axis=(1, 2))
    kept = np.all(np.isclose(trained, evaluated, atol=1e-6), axis=(1, 2))
    assert np.all(skipped ^ kept), "every sample is either skipped whole or computed whole"
    assert 10 < skipped.sum() < 54, f"about half of 64 samples should skip, got {skipped.sum()}"
    again = np.asarray(apply(layer, deterministic=False))
    assert not np.array_equal(np.all(again == np.asarray(x), axis=(1, 2)), skipped), "a fresh draw per call"


def test_dropout_only_in_training_and_fresh_each_step(model: CTCModel) -> None:
    x = frames(8, 2, 12)
    mask = frame_mask(jnp.array([12, 4]), 12)
    evaluated = infer(model, x, mask)
    np.testing.assert_array_equal(evaluated, infer(model, x, mask))
    (loss_a, train_a), (param_grads, _) = train_step(model, x, mask)
    (_, train_b), _ = train_step(model, x, mask)
    assert np.abs(np.asarray(train_a - evaluated)).max() > 1e-4
    assert np.abs(np.asarray(train_a - train_b)).max() > 1e-4, "the dropout rng advances across jit calls"
    assert np.isfinite(float(loss_a)) and np.isfinite(np.asarray(train_a)).all()
    grad_leaves = jax.tree.leaves(nnx.state(param_grads, nnx.Param))
    assert len(grad_leaves) == len(jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert all(np.isfinite(np.asarray(g)).all() for g in grad_leaves)


def test_split_merge_roundtrip(model: CTCModel) -> None:
    x = frames(9, 2, 12)
    mask = frame_mask(jnp.array([12, 3]), 12)
    graphdef, state = nnx.split(model)
    rebuilt = nnx.merge(graphdef, state)
    np.testing.assert_array_equal(infer(rebuilt, x, mask), infer(model, x, mask))


def test_kd_logits_need_a_kd_head() -> None:
    model = nnx.eval_shape(lambda: build_ctc_model(TINY, rngs=nnx.Rngs(0)))
    assert model.kd_head is None
    with pytest.raises(ConfigError, match="KD head"):
        model.logits_with_kd(frames(0, 1, 3), deterministic=True)


def test_tiny_param_count_matches_the_architecture() -> None:
    d, f, c, k = TINY.width, TINY.n_features, TINY.n_classes, TINY.stem_kernel
    per_layer = 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * 2 * d
    expected = (k * f * d + d) + TINY.layers * per_layer + 2 * d + (d * c + c)
    for with_kd_head, kd_params in ((False, 0), (True, d * c + c)):
        model = nnx.eval_shape(lambda: build_ctc_model(TINY, rngs=nnx.Rngs(0), with_kd_head=with_kd_head))
        assert count_params(model) == expected + kd_params


def test_small_is_about_19m_params_and_fits_40mb_as_fp16() -> None:
    small = nnx.eval_shape(lambda: build_ctc_model(model_config("small"), rngs=nnx.Rngs(0)))
    n_params = count_params(small)
    size_mb = fp16_megabytes(n_params)
    print(f"small (24x256): {n_params:,} params, {size_mb:.1f} MB as fp16")
    assert 18.5e6 < n_params < 19.5e6
    assert 36.0 < size_mb < 40.0


def test_named_sizes_and_layers_by_width() -> None:
    assert (model_config("tiny").layers, model_config("tiny").width, model_config("tiny").heads) == (2, 64, 4)
    small = model_config("small")
    assert (small.layers, small.width, small.heads, small.head_width) == (24, 256, 4, 64)
    large = model_config("large")
    assert (large.layers, large.width, large.heads) == (24, 1024, 16)
    assert model_config("9x384") == ModelConfig(layers=9, width=384, heads=6)
    assert small.blank_index == 59 and small.n_features == 225 and small.ffn_mult == 4
    assert (small.dropout, small.layerdrop, small.stem_kernel, small.rope_base) == (0.1, 0.1, 3, 10000.0)
    assert set(SIZES) >= {"tiny", "small", "large"}


def test_overrides_from_strings_and_mappings() -> None:
    config = model_config("small", ["layers=12", "dropout=0.2", "heads=8"])
    assert (config.layers, config.dropout, config.heads, config.width) == (12, 0.2, 8, 256)
    assert model_config("small", {"width": 512}).heads == 8, "heads follow an overridden width"
    assert model_config("tiny", {"layers": 3}).heads == 4, "a size's own head count stays"
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert model_config("9x384", ["n_classes=61"]).blank_index == 60


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("huge", (), "expected one of"),
        ("small", ["layers"], "key=value"),
        ("small", ["depth=3"], "unknown key"),
        ("small", ["layers=two"], "not a valid int"),
        ("small", ["layers=2.5"], "not a valid int"),
        ("small", ["heads=3"], "not divisible"),
        ("tiny", ["heads=64"], "must be even"),
        ("small", ["dropout=1.5"], r"\[0, 1\)"),
        ("small", ["stem_kernel=4"], "odd"),
        ("0x256", (), "positive"),
    ],
)
def test_bad_sizes_raise_config_errors(name: str, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        model_config(name, overrides)


def test_encoder_alone_has_no_head() -> None:
    encoder = nnx.eval_shape(lambda: Encoder(model_config("1x32"), rngs=nnx.Rngs(0)))
    out = nnx.eval_shape(lambda e, x: e(x, deterministic=True), encoder, jax.ShapeDtypeStruct((1, 4, 225), jnp.float32))
    assert out.shape == (1, 4, 32)
