"""The encoder survives the seed's export route: jax2tf with a symbolic time axis, then TFLite.

Any numpy-style integer indexing along time (`x[0]`, `qkv[:, 0]`) would lower to a gather the
TFLite converter rejects; this test is the guard. It converts through a SavedModel with a
`serving_default` signature taking `inputs` [T, F] and returning `outputs`, as the Kaggle scorer
calls it, then runs the graph at two lengths it was never traced at.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from flax import nnx
from jax.experimental import jax2tf

from signpipe.fingerspelling.model import CTCModel, build_ctc_model, model_config

TINY = model_config("tiny")
LENGTHS = (17, 40)


@pytest.fixture(scope="module")
def model() -> CTCModel:
    return build_ctc_model(TINY, rngs=nnx.Rngs(params=0, dropout=1), with_kd_head=True)


def one_sequence_logits(model: CTCModel):
    """[T, F] -> [T, C] for a single unpadded sequence, the exported signature."""

    def logits(frames: jax.Array) -> jax.Array:
        return jnp.squeeze(model(frames[None], deterministic=True), axis=0)

    return logits


@pytest.fixture(scope="module")
def tflite_model(model: CTCModel, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # Only T is symbolic: the feature axis must stay the concrete 225 the stem's kernel expects.
    converted = jax2tf.convert(one_sequence_logits(model), polymorphic_shapes=["(T, _)"], with_gradient=False)

    @tf.function(
        input_signature=[tf.TensorSpec([None, TINY.n_features], tf.float32, name="inputs")], autograph=False
    )
    def serving_default(inputs):
        return {"outputs": converted(inputs)}

    saved_model_dir = tmp_path_factory.mktemp("export") / "saved_model"
    module = tf.Module()
    module.serving_default = serving_default
    tf.saved_model.save(module, str(saved_model_dir), signatures={"serving_default": serving_default})
    return tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir)).convert()


def sequence(seed: int, n_frames: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n_frames, TINY.n_features)).astype(np.float32)


@pytest.fixture(scope="module")
def jax_outputs(model: CTCModel) -> dict[int, np.ndarray]:
    logits = jax.jit(one_sequence_logits(model))
    return {n_frames: np.asarray(logits(jnp.asarray(sequence(n_frames, n_frames)))) for n_frames in LENGTHS}


def litert_interpreter(model_content: bytes):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=model_content)


def tf_lite_interpreter(model_content: bytes):
    return tf.lite.Interpreter(model_content=model_content)


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
@pytest.mark.parametrize("make_interpreter", [litert_interpreter, tf_lite_interpreter], ids=["litert", "tf.lite"])
def test_tflite_matches_jax_at_lengths_never_traced(
    tflite_model: bytes, jax_outputs: dict[int, np.ndarray], make_interpreter
) -> None:
    runner = make_interpreter(tflite_model).get_signature_runner("serving_default")
    for n_frames, expected in jax_outputs.items():
        got = runner(inputs=sequence(n_frames, n_frames))["outputs"]
        assert got.shape == (n_frames, TINY.n_classes)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
        assert np.std(expected) > 1e-2, "logits too flat for the comparison to mean anything"

    # The graph really attends over the whole sequence: appending frames changes earlier logits.
    short, long = LENGTHS
    extended = np.concatenate([sequence(short, short), sequence(0, long - short)])
    prefix = runner(inputs=extended)["outputs"][:short]
    assert np.abs(prefix - jax_outputs[short]).max() > 1e-4
