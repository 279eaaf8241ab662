"""`signpipe predict` and the video extraction component.

Two bundles, one per task. The fingerspelling bundle is the real export of a `tiny` model with
random weights (as in tests/test_export.py: its per-frame argmax already varies, so phrases are
not empty and agreement with `signpipe evaluate` means something). No isolated-signs exporter is
needed to test prediction on that task: a small TFLite model of the asl-signs scorer's signature
(`inputs [n_frames, 543, 3]` -> `outputs [250]`: the frame mean, NaN as 0, through a random dense
layer and a softmax) zipped as `model.tflite` alone, whose scores numpy recomputes independently.

The tests that landmark videos need the video environment (`make video-env`) and are skipped,
with the reason, without it; their videos are scikit-image's photographs made into clips by
tests/test_video.py run as a script in that environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from signpipe.cli import main
from signpipe.data import signs
from signpipe.data.corpus import open_corpus
from signpipe.data.schema import N_POINTS, N_SIGNS, SIGN_MAP_FILE, packaged_map
from signpipe.data.synth import generate_fingerspelling, planted_y_scale
from signpipe.data.validate import validate_corpus
from signpipe.errors import ConfigError, SignpipeError
from signpipe.export.bundle import ARGS_FILE, MODEL_FILE
from signpipe.export.evaluate import evaluate_bundle
from signpipe.images import FAMILIES
from signpipe.metrics import normalized_levenshtein
from signpipe.predict import (
    FINGERSPELLING,
    ISOLATED_SIGNS,
    LONG_PARQUET,
    VIDEO,
    WIDE_PARQUET,
    InputError,
    load_predictor,
    predict,
)

#: frames of tests/test_video.py's clips: astronaut.mp4 (2 of coffee, 6 of the astronaut), coffee.avi
ASTRONAUT_FRAMES, COFFEE_FRAMES = 8, 3
SIGNS_SAMPLE_FILES = ("train_landmark_files/16069/497384476.parquet", "train_landmark_files/16069/1695422525.parquet")


def run_cli(capsys, *args) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return status, captured.out, captured.err


# --- the bundles ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic fingerspelling corpus: 6 sequences in two wide files."""
    root = tmp_path_factory.mktemp("predict") / "corpus"
    generate_fingerspelling(root, 6, seed=11, sequences_per_file=4)
    return root


@pytest.fixture(scope="module")
def fingerspelling_bundle(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flax import nnx

    from signpipe.fingerspelling.export import export_model
    from signpipe.fingerspelling.model import build_ctc_model, model_config

    model = build_ctc_model(model_config("tiny"), rngs=nnx.Rngs(params=3, dropout=1))
    out = tmp_path_factory.mktemp("bundles") / "fingerspelling.zip"
    return export_model(model, planted_y_scale(corpus_dir), out, quantize="none", graph="dynamic").path


def convert(serving_default, module) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serving_default.get_concrete_function()], module)
    return converter.convert()


def zip_model(path: Path, model: bytes, **other_files: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MODEL_FILE, model)
        for name, text in other_files.items():
            archive.writestr(name, text)
    return path


@pytest.fixture(scope="module")
def sign_weights() -> np.ndarray:
    return np.random.default_rng(5).normal(0.0, 1.0, size=(N_POINTS * 3, N_SIGNS)).astype(np.float32)


def toy_sign_scores(frames: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """What the toy isolated-signs model computes, in numpy: softmax(mean_t(frames, NaN as 0) @ W)."""
    pooled = np.nan_to_num(np.asarray(frames, dtype=np.float64)).mean(axis=0).reshape(-1)
    logits = pooled @ weights
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


@pytest.fixture(scope="module")
def signs_bundle(sign_weights: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The asl-signs scorer's signature around a mean-pool + dense + softmax, `model.tflite` alone."""
    import tensorflow as tf

    weights = tf.constant(sign_weights)

    class ToySignModel(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, N_POINTS, 3], tf.float32, name="inputs")])
        def serving_default(self, inputs):
            present = tf.where(tf.math.is_nan(inputs), tf.zeros_like(inputs), inputs)
            pooled = tf.reshape(tf.reduce_mean(present, axis=0), [1, N_POINTS * 3])
            return {"outputs": tf.reshape(tf.nn.softmax(tf.matmul(pooled, weights)), [N_SIGNS])}

    module = ToySignModel()
    return zip_model(tmp_path_factory.mktemp("bundles") / "signs.zip", convert(module.serving_default, module))


@pytest.fixture(scope="module")
def sign_names() -> dict[int, str]:
    return {index: sign for sign, index in packaged_map(SIGN_MAP_FILE).items()}


# --- fingerspelling -------------------------------------------------------------------------------


def test_predict_on_the_landmark_files_gives_evaluates_phrases(fingerspelling_bundle: Path, corpus_dir: Path) -> None:
    evaluated = {sequence_id: prediction for sequence_id, _, prediction in
                 evaluate_bundle(fingerspelling_bundle, corpus_dir).predictions}
    corpus = open_corpus(corpus_dir)
    files = sorted({corpus_dir / p for p in corpus.metadata["path"]})
    predictions = predict(fingerspelling_bundle, files)
    assert [p.task for p in predictions] == [FINGERSPELLING] * len(evaluated)
    assert {p.sequence_id: p.phrase for p in predictions} == evaluated
    assert any(evaluated.values())  # a real check: the random model does emit characters
    # every sequence of each file, in the order they are stored, with its frame count
    for path in files:
        stored = pq.read_table(path, columns=["sequence_id"]).column("sequence_id").to_numpy()
        from_file = [p for p in predictions if p.input == path]
        assert [p.sequence_id for p in from_file] == list(dict.fromkeys(stored.tolist()))
        assert [p.n_frames for p in from_file] == [int((stored == p.sequence_id).sum()) for p in from_file]
        assert {p.source for p in from_file} == {WIDE_PARQUET}


def test_a_sequence_in_the_long_layout_reads_the_same_columns(fingerspelling_bundle: Path, corpus_dir: Path,
                                                              tmp_path: Path) -> None:
    """The wide columns the bundle names, taken from `[T, 543, 3]` frames (long files, videos),
    are the very columns `signpipe evaluate` reads from the wide file."""
    corpus = open_corpus(corpus_dir)
    sequence = corpus.read_sequence(int(corpus.metadata["sequence_id"].iloc[4]))
    long_file = tmp_path / f"{sequence.sequence_id}.parquet"
    signs.write_landmark_file(long_file, sequence.frames)
    wide_file = corpus_dir / corpus.row(sequence.sequence_id)["path"]
    from_wide, from_long = predict(fingerspelling_bundle, [wide_file, long_file], sequence_ids=[sequence.sequence_id])
    assert (from_wide.source, from_long.source) == (WIDE_PARQUET, LONG_PARQUET)
    assert from_long.sequence_id == from_wide.sequence_id == sequence.sequence_id
    assert from_long.n_frames == from_wide.n_frames == len(sequence.frames)
    assert from_long.phrase == from_wide.phrase


def test_sequence_ids_select_and_unknown_ones_are_named(fingerspelling_bundle: Path, corpus_dir: Path) -> None:
    corpus = open_corpus(corpus_dir)
    files = sorted({corpus_dir / p for p in corpus.metadata["path"]})
    wanted = [int(i) for i in corpus.metadata["sequence_id"].iloc[[1, 5]]]
    assert sorted(p.sequence_id for p in predict(fingerspelling_bundle, files, sequence_ids=wanted)) == sorted(wanted)
    with pytest.raises(InputError, match="expected sequence_id 12345 in the parquet inputs"):
        predict(fingerspelling_bundle, files, sequence_ids=[wanted[0], 12345])


def test_cli_prints_a_table_and_json(fingerspelling_bundle: Path, corpus_dir: Path, capsys) -> None:
    corpus = open_corpus(corpus_dir)
    row = corpus.metadata.iloc[0]
    wide_file = corpus_dir / row["path"]
    sequence_id = int(row["sequence_id"])
    expected = predict(fingerspelling_bundle, [wide_file], sequence_ids=[sequence_id])[0].phrase
    status, out, _ = run_cli(capsys, "predict", "--model", fingerspelling_bundle, wide_file,
                             "--sequence-id", sequence_id, "--json")
    assert status == 0
    truth = str(row["phrase"])
    assert json.loads(out) == [{"input": str(wide_file), "source": WIDE_PARQUET, "sequence_id": sequence_id,
                                "frames": len(corpus.read_sequence(sequence_id).frames), "task": FINGERSPELLING,
                                "phrase": expected, "truth": truth, "match": expected == truth,
                                "normalized_levenshtein": normalized_levenshtein([truth], [expected])}]
    status, out, _ = run_cli(capsys, "predict", "--model", fingerspelling_bundle, wide_file)
    assert status == 0
    assert "fingerspelling" in out and str(row["sequence_id"]) in out and expected in out


def test_a_corpus_folder_predicts_every_sequence_with_its_truth(fingerspelling_bundle: Path, corpus_dir: Path) -> None:
    """A folder stands for the parquet files under it (the corpus root: its synth_alignment.parquet,
    in neither landmark layout, is passed over); each sequence gets its train.csv phrase."""
    corpus = open_corpus(corpus_dir)
    files = sorted({corpus_dir / p for p in corpus.metadata["path"]})
    by_files = predict(fingerspelling_bundle, files)
    by_folder = predict(fingerspelling_bundle, [corpus_dir])
    assert [(p.input, p.sequence_id, p.phrase) for p in by_folder] == [(p.input, p.sequence_id, p.phrase) for p in by_files]
    phrases = dict(zip(corpus.metadata["sequence_id"].astype(int), corpus.metadata["phrase"], strict=True))
    assert {p.sequence_id: p.truth for p in by_folder} == phrases
    for prediction in by_folder:
        assert prediction.match == (prediction.phrase == prediction.truth)
        assert prediction.score == pytest.approx(normalized_levenshtein([prediction.truth], [prediction.phrase]))
    # the sub-folder alone, and a copy outside any corpus (no truth there)
    assert len(predict(fingerspelling_bundle, [corpus_dir / "train_landmarks"])) == len(by_folder)


def test_no_truth_outside_a_corpus(fingerspelling_bundle: Path, corpus_dir: Path, tmp_path: Path) -> None:
    corpus = open_corpus(corpus_dir)
    lone = tmp_path / "lone.parquet"
    shutil.copy(corpus_dir / corpus.metadata["path"].iloc[0], lone)
    (prediction, *_) = predict(fingerspelling_bundle, [lone])
    assert prediction.truth is None and prediction.match is None and prediction.score is None
    assert "truth" not in prediction.to_dict()


def test_cli_table_is_one_readable_row_per_sequence_and_quiet(fingerspelling_bundle: Path, corpus_dir: Path,
                                                              capfd, monkeypatch) -> None:
    """File names (the folder once, in the title), the truth and the score; and no TFLite runtime
    chatter on stderr (it writes from C++ to file descriptor 2)."""
    monkeypatch.setenv("COLUMNS", "160")
    status = main(["predict", "--model", str(fingerspelling_bundle), str(corpus_dir)])
    out, err = capfd.readouterr()
    assert status == 0
    assert "INFO" not in err and "XNNPACK" not in err and err == ""
    corpus = open_corpus(corpus_dir)
    rows = [line for line in out.splitlines() if ".parquet" in line and "files in" not in line]
    assert len(rows) == len(corpus.metadata)
    for line in rows:
        assert str(corpus_dir) not in line and line.split()[0].endswith(".parquet")
        assert line.split()[0].startswith("train_landmarks/") or "/" not in line.split()[0]
    for sequence_id, phrase in zip(corpus.metadata["sequence_id"], corpus.metadata["phrase"], strict=True):
        row = next(line for line in rows if f" {sequence_id} " in line)
        assert phrase.split()[0] in row  # the truth is on the sequence's own row
    assert f"of {len(corpus.metadata)} exact" in out


def test_signs_truth_comes_from_the_asl_signs_train_csv(signs_bundle: Path, signs_sample: Path, capsys,
                                                        monkeypatch) -> None:
    metadata = pd.read_csv(signs_sample / "train.csv")
    files = [signs_sample / name for name in SIGNS_SAMPLE_FILES]
    predictions = predict(signs_bundle, files, top_k=3)
    for path, prediction in zip(files, predictions, strict=True):
        expected = metadata.loc[metadata["sequence_id"] == int(path.stem), "sign"].item()
        assert prediction.truth == expected
        assert prediction.match == (prediction.signs[0].sign == expected)
        assert prediction.to_dict()["truth"] == expected and prediction.score is None
    monkeypatch.setenv("COLUMNS", "160")
    status, out, _ = run_cli(capsys, "predict", "--model", signs_bundle, *files, "--top", 3)
    assert status == 0 and "truth" in out and "match" in out
    for path, prediction in zip(files, predictions, strict=True):
        assert path.name in out and prediction.truth in out
        assert str(path) not in out


# --- isolated signs -------------------------------------------------------------------------------


def test_signs_bundle_top_k_on_real_asl_signs_files(signs_bundle: Path, sign_weights: np.ndarray, signs_sample: Path,
                                                    sign_names: dict[int, str]) -> None:
    files = [signs_sample / name for name in SIGNS_SAMPLE_FILES]
    predictions = predict(signs_bundle, files, top_k=3)
    assert len(predictions) == len(files)
    for path, prediction in zip(files, predictions, strict=True):
        frames, _ = signs.read_long_frames(path)
        scores = toy_sign_scores(frames, sign_weights)
        best = np.argsort(-scores)[:3]
        assert (prediction.task, prediction.source) == (ISOLATED_SIGNS, LONG_PARQUET)
        assert prediction.sequence_id == int(path.stem) and prediction.n_frames == len(frames)
        assert [s.sign for s in prediction.signs] == [sign_names[i] for i in best]
        np.testing.assert_allclose([s.score for s in prediction.signs], scores[best], rtol=1e-3, atol=1e-7)
    assert predictions[0].signs != predictions[1].signs  # the scores do depend on the landmarks


def test_signs_bundle_on_wide_files_and_through_the_cli(signs_bundle: Path, sign_weights: np.ndarray,
                                                        corpus_dir: Path, sign_names: dict[int, str], capsys) -> None:
    corpus = open_corpus(corpus_dir)
    sequence = corpus.read_sequence(int(corpus.metadata["sequence_id"].iloc[2]))
    wide_file = corpus_dir / corpus.row(sequence.sequence_id)["path"]
    scores = toy_sign_scores(sequence.frames, sign_weights)
    best = np.argsort(-scores)[:4]
    status, out, _ = run_cli(capsys, "predict", "--model", signs_bundle, wide_file,
                             "--sequence-id", sequence.sequence_id, "--top", 4, "--json")
    assert status == 0
    (printed,) = json.loads(out)
    assert (printed["source"], printed["sequence_id"], printed["frames"]) == (WIDE_PARQUET, sequence.sequence_id,
                                                                              len(sequence.frames))
    assert [s["sign"] for s in printed["signs"]] == [sign_names[i] for i in best]
    np.testing.assert_allclose([s["score"] for s in printed["signs"]], scores[best], rtol=1e-3, atol=1e-7)
    status, out, _ = run_cli(capsys, "predict", "--model", signs_bundle, wide_file, "--sequence-id",
                             sequence.sequence_id, "--top", 2)
    assert status == 0 and "isolated-signs" in out
    assert sign_names[best[0]] in out and sign_names[best[1]] in out and sign_names[best[2]] not in out


def test_the_task_comes_from_the_signature(signs_bundle: Path, fingerspelling_bundle: Path) -> None:
    assert load_predictor(signs_bundle).task == ISOLATED_SIGNS
    fingerspelling = load_predictor(fingerspelling_bundle)
    assert fingerspelling.task == FINGERSPELLING and len(fingerspelling.selected_columns) > 0


# --- bad bundles and bad inputs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def odd_models() -> dict[str, bytes]:
    """Models the scorer could not call as either task: a 2-D input (columns) and a [T, 10, 2] input."""
    import tensorflow as tf

    class Columns(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="inputs")])
        def serving_default(self, inputs):
            return {"outputs": tf.concat([inputs, inputs[:, :1]], axis=1)}

    class Points(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 10, 2], tf.float32, name="inputs")])
        def serving_default(self, inputs):
            return {"outputs": tf.reduce_sum(inputs, axis=[0, 1])}

    columns, points = Columns(), Points()
    return {"columns": convert(columns.serving_default, columns), "points": convert(points.serving_default, points)}


def test_bad_bundles_are_named_with_what_was_expected(tmp_path: Path, odd_models: dict[str, bytes], capsys) -> None:
    text = tmp_path / "notes.zip"
    text.write_text("not a zip")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("readme.txt", "no model here")
    two_columns = {ARGS_FILE: json.dumps({"selected_columns": ["x_face_0", "y_face_0"]})}
    cases = {
        tmp_path / "absent.zip": "bundle not found",
        text: "not a readable zip",
        empty: f"bundle lacks {MODEL_FILE} (expected it at the top of the zip, found readme.txt)",
        zip_model(tmp_path / "garbage.zip", b"\x00" * 64): "not a loadable TFLite model",
        zip_model(tmp_path / "points.zip", odd_models["points"]): "expected [n_frames, n_columns] (fingerspelling) or "
                                                                   f"[n_frames, {N_POINTS}, 3] (isolated signs)",
        zip_model(tmp_path / "columns.zip", odd_models["columns"]): f"needs {ARGS_FILE}",
        zip_model(tmp_path / "mismatch.zip", odd_models["columns"], **two_columns): "is [n_frames, 6]; expected one "
                                                                                   "column per selected column",
    }
    for bundle, message in cases.items():
        with pytest.raises(SignpipeError) as caught:
            load_predictor(bundle)
        assert message in str(caught.value) and str(bundle) in str(caught.value)
    status, _, err = run_cli(capsys, "predict", "--model", empty, tmp_path / "x.parquet")
    assert status == 2 and f"bundle lacks {MODEL_FILE}" in err


def test_bad_inputs_are_all_named_before_any_prediction(signs_bundle: Path, tmp_path: Path, capsys) -> None:
    text = tmp_path / "clip.mp4"
    text.write_text("video,label\nhello.mp4,hello\n")
    other_parquet = tmp_path / "table.parquet"
    pq.write_table(pa.table({"a": [1, 2], "b": [0.5, 0.25]}), other_parquet)
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(b"PAR1" + b"\x00" * 40)
    folder = tmp_path / "folder"  # holds no parquet file
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "readme.txt").write_text("nothing to predict")
    missing = tmp_path / "missing.parquet"
    with pytest.raises(InputError) as caught:
        predict(signs_bundle, [text, other_parquet, damaged, folder, missing])
    problems = {Path(p.where).name: p.message for p in caught.value.problems}
    assert set(problems) == {"clip.mp4", "table.parquet", "damaged.parquet", "folder", "missing.parquet"}
    assert "or a video (MP4/MOV, AVI, MKV/WebM, ...), found a text file" in problems["clip.mp4"]
    assert "expected a landmark file in the fingerspelling layout" in problems["table.parquet"]
    assert "found a, b" in problems["table.parquet"]
    assert "expected a readable parquet file" in problems["damaged.parquet"]
    assert "expected landmark parquet files in the folder (at any depth), found none" in problems["folder"]
    assert "found no such file" in problems["missing.parquet"]
    status, _, err = run_cli(capsys, "predict", "--model", signs_bundle, text, other_parquet)
    assert status == 2 and "2 problems found" in err and "clip.mp4" in err and "table.parquet" in err
    with pytest.raises(ConfigError, match="top"):
        predict(signs_bundle, [other_parquet], top_k=0)


def test_a_fingerspelling_bundle_needs_coordinate_columns_for_frames(odd_models: dict[str, bytes], tmp_path: Path,
                                                                    signs_sample: Path) -> None:
    """A bundle reading columns no landmark frame has (here `frame`) can read a wide file but not
    frames from a long file or a video: said so, naming the columns."""
    columns = ["x_face_0", "y_face_0", "z_face_0", "frame", "x_pose_0", "y_pose_0"]
    bundle = zip_model(tmp_path / "odd.zip", odd_models["columns"],
                       **{ARGS_FILE: json.dumps({"selected_columns": columns})})
    with pytest.raises(SignpipeError, match="selects frame: not landmark coordinate columns"):
        predict(bundle, [signs_sample / SIGNS_SAMPLE_FILES[0]])


# --- the extraction component ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def component_spec(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from kfp import compiler

    from components.extract_videos import extract_videos

    path = tmp_path_factory.mktemp("compiled") / "extract_videos.yaml"
    compiler.Compiler().compile(extract_videos, str(path))
    return yaml.safe_load(path.read_text())


def component_command(spec: dict, videos: Path, labels: Path, corpus: Path, layout: str, participant: int) -> list[str]:
    """The container's command line with the artifact paths and parameters the launcher would fill in."""
    (executor,) = spec["deploymentSpec"]["executors"].values()
    container = executor["container"]
    values = {"inputs.artifacts['videos'].path": videos, "inputs.artifacts['labels'].path": labels,
              "outputs.artifacts['corpus'].path": corpus, "inputs.parameters['layout']": layout,
              "inputs.parameters['participant_id']": participant}
    filled = []
    for arg in container["args"]:
        key = arg.removeprefix("{{$.").removesuffix("}}")
        filled.append(str(values.pop(key)))
    assert not values
    return container["command"] + filled


def test_component_compiles_onto_the_video_image(component_spec: dict) -> None:
    (executor,) = component_spec["deploymentSpec"]["executors"].values()
    container = executor["container"]
    assert container["image"] == FAMILIES["video"].image
    assert container["command"][:2] == ["sh", "-c"] and "exec signpipe extract" in container["command"][2]
    assert container["args"] == ["{{$.inputs.artifacts['videos'].path}}", "{{$.inputs.artifacts['labels'].path}}",
                                 "{{$.outputs.artifacts['corpus'].path}}", "{{$.inputs.parameters['layout']}}",
                                 "{{$.inputs.parameters['participant_id']}}"]
    (component,) = component_spec["components"].values()
    assert set(component["inputDefinitions"]["artifacts"]) == {"videos", "labels"}
    assert set(component["outputDefinitions"]["artifacts"]) == {"corpus"}
    assert component["inputDefinitions"]["parameters"]["layout"]["defaultValue"] == FINGERSPELLING
    syntax = subprocess.run(["sh", "-n", "-c", container["command"][2]], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


def test_component_command_hands_the_folders_videos_to_signpipe_extract(component_spec: dict, tmp_path: Path) -> None:
    """The container's shell line, run here with a stand-in `signpipe` that records its arguments."""
    videos = tmp_path / "my videos"
    (videos / "sub.mp4").mkdir(parents=True)  # a folder, not a video
    for name in ("b clip.MP4", "a.mov", "notes.txt", ".hidden.mp4", "c.webm"):
        (videos / name).write_bytes(b"x")
    stand_in = tmp_path / "bin" / "signpipe"
    stand_in.parent.mkdir()
    recorded = tmp_path / "args.txt"
    stand_in.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "{recorded}"\n')
    stand_in.chmod(0o755)
    labels, corpus = tmp_path / "labels.csv", tmp_path / "outputs" / "deep" / "corpus"
    environ = {**os.environ, "PATH": f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(component_command(component_spec, videos, labels, corpus, "isolated-signs", 7),
                          capture_output=True, text=True, env=environ, timeout=60)
    assert done.returncode == 0, done.stderr
    assert recorded.read_text().splitlines() == [
        "extract", str(videos / "a.mov"), str(videos / "b clip.MP4"), str(videos / "c.webm"),
        "--out", str(corpus), "--layout", "isolated-signs", "--labels", str(labels), "--participant", "7"]
    assert f"skipped {videos / 'notes.txt'}" in done.stderr and "sub.mp4" not in done.stderr
    assert corpus.parent.is_dir() and not corpus.exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no videos")
    done = subprocess.run(component_command(component_spec, empty, labels, corpus, FINGERSPELLING, 0),
                          capture_output=True, text=True, env=environ, timeout=60)
    assert done.returncode == 2 and "expected video files in this folder, found none" in done.stderr


# --- videos (video environment) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def extracted_by_the_component(component_spec: dict, test_videos: dict[str, Path],
                               tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The component's command with the real `signpipe` on a folder of the two good clips."""
    folder = tmp_path_factory.mktemp("component")
    videos = folder / "videos"
    videos.mkdir()
    for name in ("astronaut.mp4", "coffee.avi"):
        shutil.copy(test_videos[name], videos / name)
    labels = folder / "labels.csv"
    pd.DataFrame({"video": ["astronaut.mp4", "coffee"], "label": ["eileen collins", "coffee"]}).to_csv(labels, index=False)
    corpus = folder / "outputs" / "corpus"
    environ = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(component_command(component_spec, videos, labels, corpus, FINGERSPELLING, 0),
                          capture_output=True, text=True, env=environ, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return corpus


def test_component_extracts_a_corpus_that_validates(extracted_by_the_component: Path) -> None:
    report = validate_corpus(extracted_by_the_component)
    assert report.ok, report.problems
    corpus = open_corpus(extracted_by_the_component)
    assert sorted(corpus.metadata["phrase"]) == ["coffee", "eileen collins"]
    assert corpus.kind == FINGERSPELLING


def test_predict_on_videos_end_to_end(test_videos: dict[str, Path], extracted_by_the_component: Path,
                                      signs_bundle: Path, fingerspelling_bundle: Path, capsys) -> None:
    """Videos -> MediaPipe -> the bundle, through the CLI and the API, give what the same bundle
    says about the landmark files extracted from those videos."""
    videos = [test_videos["astronaut.mp4"], test_videos["coffee.avi"]]
    status, out, _ = run_cli(capsys, "predict", "--model", signs_bundle, *videos, "--top", 3, "--json")
    assert status == 0
    from_videos = json.loads(out)
    assert [(p["input"], p["source"], p["sequence_id"], p["frames"]) for p in from_videos] == [
        (str(videos[0]), VIDEO, None, ASTRONAUT_FRAMES), (str(videos[1]), VIDEO, None, COFFEE_FRAMES)]
    assert all(len(p["signs"]) == 3 for p in from_videos)

    updates = []
    (spelled,) = predict(fingerspelling_bundle, [videos[0]], progress=updates.append)
    assert (spelled.source, spelled.n_frames, spelled.task) == (VIDEO, ASTRONAUT_FRAMES, FINGERSPELLING)
    assert isinstance(spelled.phrase, str) and updates[-1].frames_done == ASTRONAUT_FRAMES

    corpus = open_corpus(extracted_by_the_component)
    sequence_of = dict(zip(corpus.metadata["phrase"], corpus.metadata["sequence_id"].astype(int)))
    landmark_files = sorted({extracted_by_the_component / p for p in corpus.metadata["path"]})
    by_id = {p.sequence_id: p for p in predict(signs_bundle, landmark_files, top_k=3)}
    for printed, phrase in zip(from_videos, ["eileen collins", "coffee"], strict=True):
        from_file = by_id[sequence_of[phrase]]
        assert from_file.n_frames == printed["frames"]
        assert [s.sign for s in from_file.signs] == [s["sign"] for s in printed["signs"]]
        np.testing.assert_allclose([s.score for s in from_file.signs], [s["score"] for s in printed["signs"]],
                                   rtol=1e-5)
    (spelled_from_file,) = predict(fingerspelling_bundle, landmark_files, sequence_ids=[sequence_of["eileen collins"]])
    assert spelled_from_file.phrase == spelled.phrase
