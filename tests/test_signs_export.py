"""The fold-ensemble TFLite export of isolated signs, and scoring it the competition's way.

Two small random-init fold models with different y scales and a short crop window are converted
once; the TFLite graph must match the JAX computation at lengths it was never traced at (shorter
and longer than the crop window, hands missing), and `signpipe evaluate` must agree with an
independent scorer written here from the competition's description: pandas reads x, y, z of each
long file, reshapes to [n_frames, 543, 3], calls the signature runner, takes the argmax.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flax import nnx

from signpipe.data import signs
from signpipe.data.schema import N_POINTS, PART_OFFSET, SIGN_MAP_FILE, packaged_map
from signpipe.errors import SignpipeError
from signpipe.export.bundle import read_bundle, write_bundle
from signpipe.export.evaluate import SIGNS_COLUMNS, evaluate_bundle
from signpipe.signs.config import resolve_config
from signpipe.signs.export import jax_ensemble_function, to_tflite
from signpipe.signs.model import build_sign_model
from signpipe.signs.train import TrainedFold

MAX_FRAMES = 16
LENGTHS = (5, 29)
"""Shorter and longer than the crop window; each costs a JAX compile, so only two."""


def random_frames(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    frames = rng.normal(0.5, 0.15, size=(n_frames, N_POINTS, 3)).astype(np.float32)
    left = PART_OFFSET["left_hand"]
    frames[rng.random(n_frames) < 0.5, left : left + 21] = np.nan
    return frames


def fold(seed: int, y_scale: float) -> TrainedFold:
    config = resolve_config("smoke", ["width=32", "heads=8", f"max_frames={MAX_FRAMES}", "length_bucket=16",
                                      f"y_scale={y_scale}", "arcface_scale=30"])
    model = build_sign_model(config.model_config(250), rngs=nnx.Rngs(params=seed, dropout=seed + 1))
    return TrainedFold(model, config, step=0, workdir=Path(f"fold{seed}"))


@pytest.fixture(scope="module")
def folds() -> list[TrainedFold]:
    return [fold(0, 1.3), fold(1, 0.9)]


@pytest.fixture(scope="module")
def bundle(folds, tmp_path_factory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("bundle") / "bundle.zip", to_tflite(folds, "fp16"), SIGNS_COLUMNS)


def signature_runner(model: bytes):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=model).get_signature_runner("serving_default")


def test_tflite_ensemble_matches_jax_at_untraced_lengths(folds, bundle: Path) -> None:
    model = read_bundle(bundle, check_model=False).model
    runner = signature_runner(model)
    ensemble = jax_ensemble_function(folds)
    rng = np.random.default_rng(0)
    for n_frames in LENGTHS:
        frames = random_frames(rng, n_frames)
        got = runner(inputs=frames)["outputs"]
        want = np.asarray(ensemble(frames))
        assert got.shape == (250,) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-5)  # fp16 weights
        top_two = np.sort(want)[-2:]
        if top_two[1] - top_two[0] > 1e-3:
            assert got.argmax() == want.argmax()
    assert not np.allclose(want, np.asarray(jax_ensemble_function(folds[:1])(frames)))  # both members count
    assert runner(inputs=random_frames(rng, 1))["outputs"].shape == (250,)  # a single frame works too
    assert len(model) < 2e6


def write_corpus(root: Path, frames_by_id: dict[int, np.ndarray], signs_by_id: dict[int, str]) -> Path:
    rows = []
    for k, (sequence_id, frames) in enumerate(frames_by_id.items()):
        participant = 500 + k % 2
        relative = f"{signs.LANDMARK_DIR}/{participant}/{sequence_id}.parquet"
        signs.write_landmark_file(root / relative, frames, first_frame=17)
        rows.append((relative, participant, sequence_id, signs_by_id[sequence_id]))
    pd.DataFrame(rows, columns=list(signs.METADATA_COLUMNS)).to_csv(root / "train.csv", index=False)
    (root / SIGN_MAP_FILE).write_text(json.dumps(packaged_map(SIGN_MAP_FILE)), encoding="utf-8")
    return root


def competition_scorer(bundle_zip: Path, corpus: Path) -> dict[int, str]:
    """The asl-signs scorer as the competition describes it, independent of signpipe's reader."""
    with zipfile.ZipFile(bundle_zip) as archive:
        runner = signature_runner(archive.read("model.tflite"))
    index_to_sign = {index: sign for sign, index in json.loads((corpus / SIGN_MAP_FILE).read_text()).items()}
    predictions = {}
    for row in pd.read_csv(corpus / "train.csv").itertuples():
        data = pd.read_parquet(corpus / row.path, columns=["x", "y", "z"])
        frames = data.to_numpy().reshape(len(data) // 543, 543, 3).astype(np.float32)
        predictions[int(row.sequence_id)] = index_to_sign[int(np.argmax(runner(inputs=frames)["outputs"]))]
    return predictions


def test_evaluate_agrees_with_an_independent_competition_scorer(bundle: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames_by_id = {7000 + k: random_frames(rng, n) for k, n in enumerate((3, 12, 20, 5, 31, 9))}
    runner = signature_runner(read_bundle(bundle, check_model=False).model)
    sign_of = {index: sign for sign, index in packaged_map(SIGN_MAP_FILE).items()}
    ranked = {i: np.argsort(-runner(inputs=f)["outputs"], kind="stable") for i, f in frames_by_id.items()}
    # labels: the ensemble's answer for four sequences, its third choice for one, a poor choice for one
    labels = {i: sign_of[int(r[0])] for i, r in ranked.items()}
    ids = list(frames_by_id)
    labels[ids[1]], labels[ids[4]] = sign_of[int(ranked[ids[1]][2])], sign_of[int(ranked[ids[4]][200])]
    corpus = write_corpus(tmp_path / "corpus", frames_by_id, labels)

    independent = competition_scorer(bundle, corpus)
    result = evaluate_bundle(bundle, corpus)
    assert {i: p for i, _, p in result.predictions} == independent
    truth_accuracy = np.mean([independent[i] == labels[i] for i in ids])
    assert result.task == "isolated-signs" and result.metric == "accuracy"
    assert result.score == pytest.approx(truth_accuracy) and result.score == pytest.approx(4 / 6)
    assert result.details["top3_accuracy"] == pytest.approx(5 / 6)
    assert sum(v["n"] for v in result.details["per_sign_accuracy"].values()) == 6
    assert result.n_sequences == 6 and set(result.latency_ms) >= {"p50", "p95", "mean"}
    assert result.model_bytes == len(read_bundle(bundle, check_model=False).model)
    printed = json.loads(json.dumps(result.to_dict()))
    assert printed["score"] == result.score and "per_sign_accuracy" in printed


def test_a_bundle_with_the_wrong_interface_is_refused(bundle: Path, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", {1: random_frames(np.random.default_rng(2), 4)}, {1: "hello"})
    with zipfile.ZipFile(bundle) as archive:
        model = archive.read("model.tflite")
    not_a_model = write_bundle(tmp_path / "broken.zip", b"not a flatbuffer", SIGNS_COLUMNS)
    with pytest.raises(SignpipeError, match="not a loadable TFLite model"):
        evaluate_bundle(not_a_model, corpus)
    assert read_bundle(write_bundle(tmp_path / "ok.zip", model, SIGNS_COLUMNS), check_model=False).model == model
