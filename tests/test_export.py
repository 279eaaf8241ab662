"""The exported bundle, checked against the JAX model and against a second, independent scorer.

A `tiny` model with random weights is enough here: its per-frame argmax already varies from frame
to frame (asserted: the decoded phrases are not empty), so agreement between the TFLite graph and
JAX is a real check of preprocessing, encoder and greedy collapsing inside the graph. The corpus is
the synthetic generator's, in the Kaggle layout, so `signpipe evaluate` and the independent scorer
read real parquet files exactly as the competition's scorer did.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from flax import nnx

from signpipe.cli import main
from signpipe.data.corpus import open_corpus
from signpipe.data.synth import generate_fingerspelling, planted_y_scale
from signpipe.fingerspelling.decode import decode_phrases
from signpipe.errors import SignpipeError
from signpipe.export.bundle import ARGS_FILE, MODEL_FILE, read_bundle, write_bundle
from signpipe.export.evaluate import evaluate_bundle, signature_runner
from signpipe.fingerspelling.export import export_model
from signpipe.landmarks import features
from signpipe.fingerspelling.model import build_ctc_model, model_config

N_SEQUENCES = 40
BUCKETS = (16, 64)  # small enough that the synthetic sequences (about 100 frames) also take the fallback


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export") / "corpus"
    generate_fingerspelling(root, N_SEQUENCES, seed=11)
    return root


@pytest.fixture(scope="module")
def y_scale(corpus_dir: Path) -> float:
    return planted_y_scale(corpus_dir)


@pytest.fixture(scope="module")
def model():
    return build_ctc_model(model_config("tiny"), rngs=nnx.Rngs(params=3, dropout=1))


@pytest.fixture(scope="module")
def bundles(model, y_scale: float, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("bundles")
    return {
        graph: export_model(model, y_scale, out / f"{graph}.zip", quantize="none", graph=graph, buckets=BUCKETS).path
        for graph in ("dynamic", "fast")
    }


# --- an independent scorer: the competition's protocol written again from scratch ---------------


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ca != cb))
    return row[-1]


def kaggle_score(bundle_zip: Path, corpus_root: Path) -> tuple[float, dict[int, str]]:
    """tf.lite.Interpreter, pandas reading the columns `inference_args.json` names, argmax rows
    through the character map, the normalized total Levenshtein distance by its own DP."""
    import tensorflow as tf

    with zipfile.ZipFile(bundle_zip) as archive:
        model = archive.read("model.tflite")
        columns = json.loads(archive.read("inference_args.json"))["selected_columns"]
    runner = tf.lite.Interpreter(model_content=model).get_signature_runner("serving_default")
    character_map = json.loads((corpus_root / "character_to_prediction_index.json").read_text())
    characters = {index: character for character, index in character_map.items()}
    metadata = pd.read_csv(corpus_root / "train.csv", dtype={"phrase": str}, keep_default_na=False)
    predictions: dict[int, str] = {}
    for path, group in metadata.groupby("path"):
        table = pd.read_parquet(corpus_root / path, columns=columns)  # sequence_id is the index
        for sequence_id in group["sequence_id"]:
            frames = table[table.index == sequence_id].to_numpy(dtype=np.float32)
            outputs = runner(inputs=frames)["outputs"]
            predictions[int(sequence_id)] = "".join(characters.get(int(i), "") for i in np.argmax(outputs, axis=1))
    truths = dict(zip(metadata["sequence_id"].astype(int), metadata["phrase"], strict=True))
    n_characters = sum(len(t) for t in truths.values())
    distance = sum(edit_distance(truths[i], predictions[i]) for i in truths)
    return (n_characters - distance) / n_characters, predictions


# --- tests ----------------------------------------------------------------------------------------


def test_bundle_is_the_competitions_zip(bundles: dict[str, Path]) -> None:
    with zipfile.ZipFile(bundles["fast"]) as archive:
        assert sorted(archive.namelist()) == sorted([MODEL_FILE, ARGS_FILE])
        args = json.loads(archive.read(ARGS_FILE))
    assert args == {"selected_columns": features.selected_columns()}
    bundle = read_bundle(bundles["fast"])
    assert bundle.selected_columns == tuple(features.selected_columns())
    assert bundle.model_bytes > 100_000


@pytest.fixture(scope="module")
def jax_logits(model):
    """`[[T_i, 225], ...]` -> `[[T_i, C], ...]`: one jitted, masked call on the padded batch (the
    encoder ignores padding), instead of a compilation per sequence length."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, x, mask):
        return nnx.merge(graphdef, state)(x, mask, deterministic=True)

    def logits(sequences: list[np.ndarray]) -> list[np.ndarray]:
        lengths = [len(s) for s in sequences]
        padded_length = -(-max(lengths) // 64) * 64
        x = np.zeros((len(sequences), padded_length, features.N_FEATURES), np.float32)
        for row, sequence in zip(x, sequences, strict=True):
            row[: len(sequence)] = sequence
        mask = np.arange(padded_length)[None, :] < np.array(lengths)[:, None]
        out = np.asarray(run(state, x, mask))
        return [out[i, :n] for i, n in enumerate(lengths)]

    return logits


@pytest.fixture(scope="module")
def jax_phrases(jax_logits, corpus_dir: Path, y_scale: float) -> dict[int, str]:
    """featurize (numpy) + model (JAX) + greedy decoding: the training side's own pieces."""
    corpus = open_corpus(corpus_dir)
    sequences = list(corpus.iter_sequences(points=features.INPUT_POINTS))
    inputs = [features.featurize(s.frames, y_scale, xp=np).reshape(s.n_frames, features.N_FEATURES) for s in sequences]
    logits = jax_logits(inputs)
    return {s.sequence_id: decode_phrases(z[None], None, corpus.label_map)[0] for s, z in zip(sequences, logits, strict=True)}


@pytest.mark.parametrize("graph", ["dynamic", "fast"])
def test_tflite_decodes_what_the_jax_model_decodes(
    graph: str, bundles: dict[str, Path], jax_phrases: dict[int, str], corpus_dir: Path
) -> None:
    expected = jax_phrases
    result = evaluate_bundle(bundles[graph], corpus_dir)
    got = {sequence_id: prediction for sequence_id, _, prediction in result.predictions}
    assert result.n_sequences == len(expected) == N_SEQUENCES
    assert sum(bool(p) for p in expected.values()) > N_SEQUENCES // 2, "trivial model: parity would mean nothing"
    assert len({p for p in expected.values()}) > N_SEQUENCES // 2
    agreement = np.mean([got[i] == expected[i] for i in expected])
    assert agreement >= 0.99


def probe_rows(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    rows = rng.normal(0.5, 0.1, size=(n_frames, 3 * features.N_INPUT_POINTS)).astype(np.float32)
    rows[rng.random(n_frames) < 0.5, : features.HAND_SIZE] = np.nan  # the left hand's x, now and then
    return rows


def test_fast_graph_outputs_equal_the_dynamic_graphs(bundles: dict[str, Path]) -> None:
    fast = signature_runner(read_bundle(bundles["fast"]).model)
    dynamic = signature_runner(read_bundle(bundles["dynamic"]).model)
    rng = np.random.default_rng(0)
    # around each bucket's edge, and past the last bucket (the dynamic fallback)
    for n_frames in (1, 2, 15, 16, 17, 63, 64, 65, 150):
        rows = probe_rows(rng, n_frames)
        got, expected = fast(inputs=rows)["outputs"], dynamic(inputs=rows)["outputs"]
        assert got.shape == expected.shape == (n_frames, 60)
        np.testing.assert_array_equal(got, expected)


def test_sequence_without_any_hand_gives_valid_rows(bundles: dict[str, Path]) -> None:
    rows = probe_rows(np.random.default_rng(1), 30)
    hand_columns = [i for i, name in enumerate(features.selected_columns()) if "hand" in name]
    rows[:, hand_columns] = np.nan
    for graph in ("dynamic", "fast"):
        outputs = signature_runner(read_bundle(bundles[graph]).model)(inputs=rows)["outputs"]
        assert outputs.shape == (30, 60)
        assert np.isfinite(outputs).all()
        np.testing.assert_array_equal(outputs.sum(axis=1), 1.0)  # one class per row, blank included


def test_rows_hold_greedy_collapsing(bundles: dict[str, Path], jax_logits, y_scale: float) -> None:
    """Row by row: the blank where greedy emits nothing, else the frame's argmax, repeats merged."""
    rows = probe_rows(np.random.default_rng(2), 50)
    outputs = signature_runner(read_bundle(bundles["dynamic"]).model)(inputs=rows)["outputs"]
    frames = features.frames_from_columns(rows, xp=np)
    x = features.featurize(frames, y_scale, xp=np).reshape(50, features.N_FEATURES)
    (logits,) = jax_logits([x])
    argmax = logits.argmax(axis=1)
    emitted = outputs.argmax(axis=1)
    blank = 59
    for t in range(50):
        repeat = t > 0 and argmax[t] == argmax[t - 1]
        assert emitted[t] == (blank if repeat else argmax[t])
    assert (emitted != blank).sum() > 10


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_an_independent_scorer_agrees_with_signpipe_evaluate(bundles: dict[str, Path], corpus_dir: Path) -> None:
    score, predictions = kaggle_score(bundles["fast"], corpus_dir)
    result = evaluate_bundle(bundles["fast"], corpus_dir)
    assert {sequence_id: p for sequence_id, _, p in result.predictions} == predictions
    assert result.score == pytest.approx(score, abs=1e-12)
    assert result.details["n_characters"] > 0


def test_evaluate_command_prints_the_json_report(bundles: dict[str, Path], corpus_dir: Path, capsys, tmp_path: Path) -> None:
    predictions_csv = tmp_path / "predictions.csv"
    status = main(["evaluate", "--model", str(bundles["dynamic"]), "--data", str(corpus_dir), "--limit", "12",
                   "--predictions", str(predictions_csv)])  # fmt: skip
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_sequences"] == 12
    assert report["metric"] == "normalized_levenshtein"
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p95"] <= report["latency_ms"]["max"]
    assert report["model_bytes"] == read_bundle(bundles["dynamic"]).model_bytes
    assert report["interpreter"] == "ai_edge_litert"
    expected = evaluate_bundle(bundles["dynamic"], corpus_dir, limit=12)
    assert report["score"] == pytest.approx(expected.score)
    written = pd.read_csv(predictions_csv, dtype={"truth": str, "prediction": str}, keep_default_na=False)
    assert len(written) == 12 and list(written.columns) == ["sequence_id", "truth", "prediction", "latency_ms"]
    assert (written["latency_ms"] > 0).all()  # each sequence's own time, after the columns readers rely on


def test_broken_bundles_are_refused_with_what_was_expected(bundles: dict[str, Path], tmp_path: Path) -> None:
    model = read_bundle(bundles["dynamic"]).model

    not_zip = tmp_path / "not.zip"
    not_zip.write_bytes(b"plain bytes")
    with pytest.raises(SignpipeError, match="not a readable zip"):
        read_bundle(not_zip)

    no_args = tmp_path / "no_args.zip"
    with zipfile.ZipFile(no_args, "w") as archive:
        archive.writestr(MODEL_FILE, model)
    with pytest.raises(SignpipeError, match="lacks inference_args.json"):
        read_bundle(no_args)

    bad_json = tmp_path / "bad_json.zip"
    with zipfile.ZipFile(bad_json, "w") as archive:
        archive.writestr(MODEL_FILE, model)
        archive.writestr(ARGS_FILE, "{selected_columns: ")
    with pytest.raises(SignpipeError, match="not valid JSON"):
        read_bundle(bad_json)

    wrong_width = write_bundle(tmp_path / "wrong_width.zip", model, features.selected_columns()[:-1])
    with pytest.raises(SignpipeError, match=r"expected float32 \[n_frames, 287\]"):
        read_bundle(wrong_width)

    with pytest.raises(SignpipeError, match="more than once"):
        write_bundle(tmp_path / "twice.zip", model, ["x_pose_0", "x_pose_0"])
    assert not (tmp_path / "twice.zip").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_evaluate_refuses_a_corpus_of_the_other_task(bundles: dict[str, Path], signs_corpus) -> None:
    with pytest.raises(SignpipeError, match="fingerspelling corpora only"):
        evaluate_bundle(bundles["dynamic"], signs_corpus.root)
