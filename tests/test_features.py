"""The feature layout: input points, hand choice, per-group normalization, numpy == jnp == TFLite."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from signpipe.data import schema
from signpipe.landmarks import features

HAND, POSE, LIPS = features.GROUPS
# jitted once per shape: much cheaper than compiling every jnp operation on its own
featurize_jnp = jax.jit(features.featurize)
featurize_batch_jnp = jax.jit(features.featurize_batch)


def raw_frames(rng: np.random.Generator, n_frames: int, left_missing: int, right_missing: int) -> np.ndarray:
    """Raw input points `[T, 96, 3]`, a whole hand NaN in the first `*_missing` frames."""
    frames = rng.normal(0.5, 0.1, size=(n_frames, features.N_INPUT_POINTS, 3)).astype(np.float32)
    frames[:left_missing, 0:21] = np.nan
    frames[n_frames - right_missing :, 21:42] = np.nan
    return frames


def test_input_points_are_hands_pose_and_lips_in_order():
    points = features.INPUT_POINTS
    assert len(points) == len(set(points)) == 96
    assert points[:21] == schema.LEFT_HAND and points[21:42] == schema.RIGHT_HAND
    assert [schema.POINT_NAMES[p] for p in points[42:56]] == [("pose", i) for i in range(11, 25)]
    assert [schema.POINT_NAMES[p] for p in points[56:]] == [("face", i) for i in features.LIP_FACE_POINTS]
    assert features.GROUPS == (21, 14, 40) and features.N_FEATURES == 225


def test_selected_columns_are_axis_major_and_frames_from_columns_inverts_them():
    columns = features.selected_columns()
    assert len(columns) == 288
    assert columns[0] == "x_left_hand_0" and columns[96] == "y_left_hand_0" and columns[-1] == "z_face_415"
    frames = np.random.default_rng(0).normal(size=(5, 96, 3)).astype(np.float32)
    # rows as the scorer reads them: the value of column `axis_point` is frames[t, point, axis]
    by_name = {f"{axis}_{schema.POINT_NAMES[p][0]}_{schema.POINT_NAMES[p][1]}": frames[:, i, a]
               for i, p in enumerate(features.INPUT_POINTS) for a, axis in enumerate("xyz")}
    rows = np.stack([by_name[c] for c in columns], axis=1)
    np.testing.assert_array_equal(features.frames_from_columns(rows, xp=np), frames)
    np.testing.assert_array_equal(np.asarray(features.frames_from_columns(rows)), frames)
    with pytest.raises(ValueError, match=r"\[T, 3 \* P\]"):
        features.frames_from_columns(rows[:, :-1], xp=np)


def test_numpy_and_jnp_agree():
    frames = raw_frames(np.random.default_rng(1), 12, left_missing=3, right_missing=5)
    frames[4, 60:70] = np.nan  # some lips lost in one frame
    host = features.featurize(frames, 1.8979, xp=np)
    device = np.asarray(featurize_jnp(jnp.asarray(frames), 1.8979))
    assert host.shape == (12, 75, 3) and host.dtype == np.float32 and device.dtype == np.float32
    np.testing.assert_allclose(host, device, rtol=1e-5, atol=1e-5)
    assert np.all(host[4, HAND + POSE + 4 : HAND + POSE + 14] == 0)  # the lost lips come out 0


def test_jit_runs_for_any_number_of_frames():
    for n_frames in (1, 4, 23):
        frames = raw_frames(np.random.default_rng(n_frames), n_frames, left_missing=0, right_missing=n_frames)
        np.testing.assert_allclose(np.asarray(featurize_jnp(frames, 1.5)), features.featurize(frames, 1.5, xp=np),
                                   rtol=1e-5, atol=1e-5)


def test_dominant_hand_is_the_one_missing_in_fewer_frames_ties_going_right():
    rng = np.random.default_rng(2)
    frames = raw_frames(rng, 10, left_missing=2, right_missing=4)
    left_hand = features.featurize(frames, 1.0, xp=np)[:, :HAND]
    only_left = features.featurize(np.concatenate([frames[:, :21], frames[:, :21], frames[:, 42:]], axis=1), 1.0, xp=np)
    np.testing.assert_array_equal(left_hand, only_left[:, :HAND])

    frames = raw_frames(rng, 10, left_missing=4, right_missing=2)
    right_hand = features.featurize(frames, 1.0, xp=np)[:, :HAND]
    only_right = features.featurize(np.concatenate([frames[:, 21:42], frames[:, 21:]], axis=1), 1.0, xp=np)
    np.testing.assert_array_equal(right_hand, only_right[:, :HAND])

    frames = raw_frames(rng, 10, left_missing=3, right_missing=3)
    tie = features.featurize(frames, 1.0, xp=np)[:, :HAND]
    assert np.all(tie[7:] == 0) and np.all(tie[:3] != 0)  # right hand: missing in the last 3 frames


def test_each_group_is_centred_and_scaled_by_its_largest_x_or_y():
    frames = raw_frames(np.random.default_rng(3), 9, left_missing=9, right_missing=2)
    frames[..., 2] *= 5.0  # deep z must not set the scale
    out = features.featurize(frames, 1.3, xp=np)
    kept = np.concatenate([frames[:, 21:42], frames[:, 42:]], axis=1)  # the right hand, pose, lips
    for lo, hi in ((0, HAND), (HAND, HAND + POSE), (HAND + POSE, HAND + POSE + LIPS)):
        group, present = out[:, lo:hi], np.isfinite(kept[:, lo:hi, 0])
        np.testing.assert_allclose(group[present].mean(axis=0), 0.0, atol=1e-5)
        assert np.isclose(np.abs(group[..., :2]).max(), 1.0)
        assert np.abs(group[..., 2]).max() > 1.0
        assert np.all(group[~present] == 0)
    assert not np.isfinite(kept[7:, :HAND]).any()  # so the hand's last 2 frames were the zeros above


def test_y_scale_is_applied_before_normalization():
    # a hand twice as wide as tall in reality, squeezed in y by a 1.8 camera aspect
    square = np.stack(np.meshgrid(np.linspace(0, 2, 7), np.linspace(0, 1, 3)), -1).reshape(-1, 2)[:21]
    frames = np.full((4, 96, 3), 0.5, dtype=np.float32)
    frames[:, 21:42, 0] = 0.3 + 0.05 * square[:, 0]
    frames[:, 21:42, 1] = 0.4 + 0.05 * square[:, 1] / 1.8
    hand = features.featurize(frames, 1.8, xp=np)[:, :HAND]
    extent = hand[..., :2].max(axis=(0, 1)) - hand[..., :2].min(axis=(0, 1))
    np.testing.assert_allclose(extent, [2.0, 1.0], rtol=1e-5)  # width 2 (scaled to +-1), height 1
    unscaled = features.featurize(frames, 1.0, xp=np)[:, :HAND]
    unscaled_extent = unscaled[..., :2].max(axis=(0, 1)) - unscaled[..., :2].min(axis=(0, 1))
    np.testing.assert_allclose(unscaled_extent, [2.0, 1.0 / 1.8], rtol=1e-5)


def test_a_sequence_without_hands_gives_zeros_not_nan():
    frames = raw_frames(np.random.default_rng(4), 6, left_missing=6, right_missing=6)
    for out in (features.featurize(frames, 1.9, xp=np), np.asarray(featurize_jnp(frames, 1.9))):
        assert np.all(np.isfinite(out))
        assert np.all(out[:, :HAND] == 0) and np.any(out[:, HAND:] != 0)
    constant = np.full((3, 96, 3), 0.25, dtype=np.float32)  # every group a single point: extent 0
    assert np.all(features.featurize(constant, 1.0, xp=np) == 0)


def test_batch_with_padding_equals_each_sequence_alone():
    rng = np.random.default_rng(5)
    lengths = (7, 3, 5)
    sequences = [raw_frames(rng, t, left_missing=t // 2, right_missing=1) for t in lengths]
    batch = np.full((3, 7, 96, 3), 123.0, dtype=np.float32)  # padding holds junk, not NaN
    mask = np.zeros((3, 7), dtype=bool)
    for i, seq in enumerate(sequences):
        batch[i, : len(seq)], mask[i, : len(seq)] = seq, True
    for out in (features.featurize_batch(batch, mask, 1.4, xp=np), np.asarray(featurize_batch_jnp(batch, mask, 1.4))):
        for i, seq in enumerate(sequences):
            np.testing.assert_allclose(out[i, : len(seq)], features.featurize(seq, 1.4, xp=np), rtol=1e-5, atol=1e-5)
            assert np.all(out[i, len(seq) :] == 0)


def test_normalize_group_matches_featurize_on_a_group():
    frames = raw_frames(np.random.default_rng(6), 8, left_missing=0, right_missing=0)
    scaled = frames * np.array([1.0, 1.6, 1.0], dtype=np.float32)
    np.testing.assert_allclose(features.normalize_group(scaled[:, 42:56], xp=np),
                               features.featurize(frames, 1.6, xp=np)[:, HAND : HAND + POSE], rtol=1e-6)


def test_exports_with_a_symbolic_time_axis_and_no_gather():
    """What jax2tf converts: StableHLO for any T. A gather (integer indexing on the time axis)
    is what the TFLite converter rejects, so none may appear."""
    from jax import export

    def model(columns):
        return features.featurize(features.frames_from_columns(columns), 1.8979)

    exported = export.export(jax.jit(model))(jax.ShapeDtypeStruct(export.symbolic_shape("T, 288"), jnp.float32))
    operations = set(re.findall(r"stablehlo\.(\w+)", exported.mlir_module()))
    assert {"reduce", "select"} <= operations and not {op for op in operations if "gather" in op}
    for n_frames in (3, 17):
        frames = raw_frames(np.random.default_rng(n_frames), n_frames, left_missing=1, right_missing=2)
        rows = frames.transpose(0, 2, 1).reshape(n_frames, -1)  # axis-major, as selected_columns()
        np.testing.assert_allclose(np.asarray(exported.call(rows)), features.featurize(frames, 1.8979, xp=np),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # TensorFlow's import alone takes 20 s or more on the project's shared machine
def test_exported_graph_with_symbolic_time_matches_numpy():
    """The scorer's path: rows `[T, 288]` -> jax2tf (symbolic T) -> TFLite -> features."""
    tf = pytest.importorskip("tensorflow")
    from ai_edge_litert.interpreter import Interpreter
    from jax.experimental import jax2tf

    def model(columns):
        return features.featurize(features.frames_from_columns(columns), 1.8979)

    converted = jax2tf.convert(model, polymorphic_shapes=["(T, 288)"], with_gradient=False)
    graph = tf.function(converted, input_signature=[tf.TensorSpec([None, 288], tf.float32)], autograph=False)
    tflite = tf.lite.TFLiteConverter.from_concrete_functions([graph.get_concrete_function()], graph).convert()
    for n_frames in (3, 17):
        frames = raw_frames(np.random.default_rng(n_frames), n_frames, left_missing=1, right_missing=2)
        rows = frames.transpose(0, 2, 1).reshape(n_frames, -1)  # axis-major, as selected_columns()
        expected = features.featurize(frames, 1.8979, xp=np)
        np.testing.assert_allclose(graph(tf.constant(rows)).numpy(), expected, rtol=1e-5, atol=1e-5)
        interpreter = Interpreter(model_content=tflite)
        (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
        interpreter.resize_tensor_input(inputs["index"], [n_frames, 288])
        interpreter.allocate_tensors()
        interpreter.set_tensor(inputs["index"], rows)
        interpreter.invoke()
        np.testing.assert_allclose(interpreter.get_tensor(outputs["index"]), expected, rtol=1e-5, atol=1e-5)
