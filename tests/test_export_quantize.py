"""Quantized variants: smaller files, (nearly) the same rows; and the `small` model's fp16 bundle fits
the competition's 40 MB."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from signpipe.errors import ConfigError
from signpipe.export.bundle import read_bundle
from signpipe.export.evaluate import signature_runner
from signpipe.export.gate import DEFAULT_MAX_MODEL_MB, probe_inputs
from signpipe.fingerspelling.export import (
    check_export_options,
    export_model,
    jax_outputs_function,
    resolve_graph,
    to_tflite_variants,
)
from signpipe.landmarks import features
from signpipe.fingerspelling.model import build_ctc_model, count_params, fp16_megabytes, model_config

Y_SCALE = 1.9
N_COLUMNS = 3 * features.N_INPUT_POINTS


@pytest.fixture(scope="module")
def model():
    return build_ctc_model(model_config("tiny"), rngs=nnx.Rngs(params=4, dropout=1))


@pytest.fixture(scope="module")
def variants(model) -> dict[str, bytes]:
    return to_tflite_variants(model, Y_SCALE, ["none", "fp16", "int8"], graph="dynamic")


def row_agreement(model_bytes: bytes, expected: dict[int, np.ndarray]) -> float:
    runner = signature_runner(model_bytes)
    same = [runner(inputs=probe_inputs(N_COLUMNS, t, seed=t))["outputs"].argmax(1) == rows.argmax(1) for t, rows in expected.items()]
    return float(np.concatenate(same).mean())


def test_quantized_files_are_smaller_and_decode_nearly_alike(model, variants: dict[str, bytes]) -> None:
    sizes = {q: len(b) for q, b in variants.items()}
    weights_mb = fp16_megabytes(count_params(model)) * 2  # fp32
    assert sizes["fp16"] < 0.65 * sizes["none"] and sizes["int8"] < sizes["fp16"]
    assert sizes["none"] > 0.9 * weights_mb * 1e6

    reference = jax_outputs_function(model, Y_SCALE)
    expected = {t: np.asarray(reference(jnp.asarray(probe_inputs(N_COLUMNS, t, seed=t)))) for t in (20, 57, 130)}
    assert row_agreement(variants["none"], expected) == 1.0
    assert row_agreement(variants["fp16"], expected) >= 0.97
    assert row_agreement(variants["int8"], expected) >= 0.8


def test_options_are_checked_before_any_conversion() -> None:
    assert resolve_graph("auto", "fp16") == "dynamic"
    assert resolve_graph("auto", "int8") == resolve_graph("auto", "none") == "fast"
    assert resolve_graph("dynamic", "int8") == "dynamic"
    assert check_export_options("int8", "fast", [64, 32, 64]) == (32, 64)
    for quantize, graph, buckets in (("int4", "auto", [32]), ("fp16", "static", [32]), ("none", "fast", []),
                                     ("none", "fast", [0, 32])):  # fmt: skip
        with pytest.raises(ConfigError):
            check_export_options(quantize, graph, buckets)


@pytest.mark.parametrize("y_scale", [0.0, -1.5, float("nan"), None])
def test_a_bad_y_scale_is_refused(model, y_scale, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="y_scale"):
        export_model(model, y_scale, tmp_path / "b.zip")
    assert not (tmp_path / "b.zip").exists()


@pytest.mark.slow
def test_small_models_fp16_bundle_is_under_40_mb(tmp_path: Path) -> None:
    small = build_ctc_model(model_config("small"), rngs=nnx.Rngs(params=0, dropout=1))
    result = export_model(small, Y_SCALE, tmp_path / "small.zip", quantize="fp16")
    bundle = read_bundle(result.path)
    print(f"small fp16 ({result.graph} graph): {bundle.model_mb:.2f} MB, weights {fp16_megabytes(count_params(small)):.2f} MB")
    assert result.graph == "dynamic"
    assert bundle.model_mb < DEFAULT_MAX_MODEL_MB
    rows = probe_inputs(N_COLUMNS, 40)
    assert signature_runner(bundle.model)(inputs=rows)["outputs"].shape == (40, 60)
