"""Video -> landmarks -> corpus (signpipe.video, `signpipe extract`).

Two kinds of tests. Those that need no MediaPipe run everywhere: recognizing videos by their
bytes, bad inputs, finding the video environment, labels, the worker protocol's failures, and
writing both layouts from landmark arrays (a stand-in landmarker) read back by the validator.
Those that landmark real videos need the video environment (`make video-env`) and are skipped,
with the reason, without it: their videos are real photographs shipped with scikit-image
(astronaut: a person, face and shoulders, no hands; coffee: no person), assembled into short
videos with OpenCV inside the video environment by this file run as a script.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signpipe.cli import main
from signpipe.data.corpus import open_corpus
from signpipe.data.schema import CHARACTER_MAP_FILE, PART_OFFSET, PART_SIZE, SIGN_MAP_FILE, packaged_map
from signpipe.data.validate import validate_corpus
from signpipe.errors import CorpusError, SignpipeError
from signpipe.video import environment
from signpipe.video.client import FrameProgress, WorkerFailed, landmark_videos, video_landmarks
from signpipe.video.corpus_writer import INDEX_FILE, SEQUENCES_PER_FILE
from signpipe.video.extract import extract_folder, extract_videos
from signpipe.video.inputs import (
    SEQUENCE_ID_BITS,
    VideoError,
    check_videos,
    content_id,
    folder_videos,
    identify_bytes,
    unique_ids,
)
from signpipe.video.labels import match_labels, read_labels

#: the start of an MP4 file: enough for the byte check, not for a decoder
MP4_HEADER = b"\x00\x00\x00\x1cftypisom\x00\x00\x02\x00isomiso2mp41"
#: frames of the test videos (see `write_test_videos`)
ASTRONAUT_VIDEO_COFFEE_FRAMES = 2
ASTRONAUT_VIDEO_PERSON_FRAMES = 6
COFFEE_VIDEO_FRAMES = 3
VIDEO_SIZE = 512


def part_slice(part: str) -> slice:
    return slice(PART_OFFSET[part], PART_OFFSET[part] + PART_SIZE[part])


def run_cli(capsys, *args) -> tuple[int, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    return status, output


def fake_video(path: Path, seed: int) -> Path:
    """A file that passes the byte check as an MP4 (for tests whose landmarker decodes nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MP4_HEADER + np.random.default_rng(seed).bytes(256))
    return path


def random_landmarker(make_random_frames, lengths: dict[str, int]):
    """A stand-in for MediaPipe: random frames (hands NaN in some frames), `lengths[name]` of them
    per video, reported through `progress` like the real one; remembers what it returned."""
    returned: dict[str, np.ndarray] = {}

    def landmarker(paths, progress, python):
        rng = np.random.default_rng(7)
        done = 0
        for index, path in enumerate(paths):
            frames = make_random_frames(rng, lengths[path.name])
            for _ in frames:
                done += 1
                progress(FrameProgress(path, index, done, sum(lengths.values())))
            returned[path.name] = frames
            yield path, frames

    landmarker.returned = returned
    return landmarker


def write_labels(path: Path, rows: dict[str, str]) -> Path:
    pd.DataFrame({"video": list(rows), "label": list(rows.values())}).to_csv(path, index=False)
    return path


# --- recognizing videos by their bytes ----------------------------------------------------------


@pytest.mark.parametrize("header, video, words", [
    (MP4_HEADER, True, "MP4"),
    (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", True, "MP4/QuickTime"),
    (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", True, "QuickTime"),
    (b"RIFF\x00\x10\x00\x00AVI LIST", True, "AVI"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", True, "Matroska/WebM"),
    (b"\x47" + bytes(187) + b"\x47" + bytes(10), True, "transport stream"),
    (b"GIF89a\x10\x00", True, "GIF"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", False, "HEIF"),
    (b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00", False, "audio"),
    (b"RIFF\x00\x10\x00\x00WAVEfmt ", False, "WAV"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", False, "PNG image"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", False, "JPEG image"),
    (b"PAR1\x15\x04", False, "parquet"),
    (b"video,label\nhello.mp4,hello\n", False, "text file"),
    (b"", False, "empty file"),
    (b"\x00\x01\x02\x03\xfe\xff\x00", False, "unrecognized"),
])
def test_identify_bytes_tells_videos_from_other_files(header, video, words):
    kind = identify_bytes(header)
    assert kind.is_video is video
    assert words in kind.description


def test_check_videos_lists_every_bad_file_at_once(tmp_path):
    good = fake_video(tmp_path / "good.mp4", 0)
    (tmp_path / "notes.mp4").write_text("not a video\n", encoding="utf-8")
    (tmp_path / "empty.avi").write_bytes(b"")
    (tmp_path / "still.mov").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (tmp_path / "folder.mp4").mkdir()
    bad = ["notes.mp4", "empty.avi", "still.mov", "folder.mp4", "missing.mp4"]
    with pytest.raises(VideoError) as caught:
        check_videos([good, *(tmp_path / name for name in bad)])
    problems = {Path(p.where).name: p.message for p in caught.value.problems}
    assert set(problems) == set(bad)
    assert "found a text file" in problems["notes.mp4"]
    assert "found an empty file" in problems["empty.avi"]
    assert "found a PNG image" in problems["still.mov"]
    assert "found a directory" in problems["folder.mp4"]
    assert "found no such file" in problems["missing.mp4"]
    # a video is recognized by its bytes, not its name
    renamed = fake_video(tmp_path / "recording.bin", 1)
    assert check_videos([good, renamed]) == [good, renamed]
    with pytest.raises(VideoError, match="expected each video once, found it 2 times"):
        check_videos([good, tmp_path / "." / "good.mp4"])
    with pytest.raises(VideoError, match="at least one video"):
        check_videos([])


def test_folder_videos_takes_video_endings_and_names_the_rest(tmp_path):
    for name in ("b.MP4", "a.avi", "c.webm"):
        fake_video(tmp_path / name, 0)
    (tmp_path / "labels.csv").write_text("video,label\n", encoding="utf-8")
    (tmp_path / ".hidden.mp4").write_bytes(MP4_HEADER)
    (tmp_path / "sub").mkdir()
    fake_video(tmp_path / "sub" / "d.mp4", 0)
    videos, ignored = folder_videos(tmp_path)
    assert [v.name for v in videos] == ["a.avi", "b.MP4", "c.webm"]
    assert [p.name for p in ignored] == ["labels.csv"]
    csv_only = tmp_path / "csv-only"
    csv_only.mkdir()
    (csv_only / "labels.csv").write_text("video,label\n", encoding="utf-8")
    with pytest.raises(VideoError, match="expected video files .*, found 1 other file"):
        folder_videos(csv_only)
    with pytest.raises(VideoError, match="found no such directory"):
        folder_videos(tmp_path / "nowhere")


def test_sequence_ids_come_from_content_and_stay_distinct(tmp_path):
    a, b = fake_video(tmp_path / "a.mp4", 0), fake_video(tmp_path / "b.mp4", 1)
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(a.read_bytes())
    ids = [content_id(p) for p in (a, b, copy)]
    assert all(0 <= i < 2**SEQUENCE_ID_BITS for i in ids)
    assert ids[0] == ids[2] != ids[1]
    assert content_id(a) == ids[0]  # the same bytes always give the same id
    assert unique_ids(ids) == [ids[0], ids[1], (ids[0] + 1) % 2**SEQUENCE_ID_BITS]
    assert unique_ids([5, 5, 6, 5]) == [5, 6, 7, 8]


# --- finding the video environment ---------------------------------------------------------------


def test_find_video_python_order_and_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "_checkout_roots", lambda: [tmp_path])
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, _real=importlib.util.find_spec: None if name == "mediapipe" else _real(name, *a))
    monkeypatch.delenv(environment.ENV_VARIABLE, raising=False)
    with pytest.raises(SignpipeError, match="no video environment.*make video-env"):
        environment.find_video_python()

    venv_python = tmp_path / ".venv-video" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text("#!/bin/sh\n", encoding="utf-8")
    venv_python.chmod(0o755)
    assert environment.find_video_python() == venv_python

    explicit = tmp_path / "elsewhere" / "python3"
    explicit.parent.mkdir()
    explicit.write_text("#!/bin/sh\n", encoding="utf-8")
    explicit.chmod(0o755)
    monkeypatch.setenv(environment.ENV_VARIABLE, str(explicit))
    assert environment.find_video_python() == explicit  # the variable wins over .venv-video
    monkeypatch.setenv(environment.ENV_VARIABLE, str(tmp_path / "no-python"))
    with pytest.raises(SignpipeError, match=f"{environment.ENV_VARIABLE}=.*found no such file"):
        environment.find_video_python()
    monkeypatch.setenv(environment.ENV_VARIABLE, str(tmp_path))
    with pytest.raises(SignpipeError, match="found a directory"):
        environment.find_video_python()


def test_find_video_python_falls_back_to_an_interpreter_with_mediapipe(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "_checkout_roots", lambda: [tmp_path])
    monkeypatch.delenv(environment.ENV_VARIABLE, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "mediapipe" else None)
    assert environment.find_video_python() == Path(sys.executable)


# --- the worker protocol's failures (no MediaPipe needed) ----------------------------------------


def test_worker_rejects_a_bad_request_with_a_fatal_event():
    done = subprocess.run([sys.executable, "-m", "signpipe.video.worker"], input='{"videos": "a.mp4"}',
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    event = json.loads(done.stdout.splitlines()[-1])
    assert event["event"] == "fatal" and "bad request" in event["message"]


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is not None,
                    reason="needs an interpreter without mediapipe: this one has it")
def test_an_interpreter_without_mediapipe_is_a_clear_error(tmp_path):
    video = fake_video(tmp_path / "a.mp4", 0)
    with pytest.raises(WorkerFailed, match="cannot import the video libraries.*make video-env"):
        list(landmark_videos([video], python=sys.executable))


def test_an_interpreter_without_signpipe_is_a_clear_error(tmp_path, monkeypatch):
    # `python -S` has no site-packages, and away from the checkout `-m` cannot find the source
    # either: signpipe is not importable
    monkeypatch.chdir(tmp_path)
    python = tmp_path / "bare-python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n', encoding="utf-8")
    python.chmod(0o755)
    video = fake_video(tmp_path / "a.mp4", 0)
    with pytest.raises(WorkerFailed, match="exited with status 1 before finishing.*signpipe is not installed there"):
        list(landmark_videos([video], python=python))
    with pytest.raises(WorkerFailed, match="could not start it"):
        list(landmark_videos([video], python=tmp_path / "no-such-python"))


# --- labels --------------------------------------------------------------------------------------


def test_labels_match_by_file_name_or_stem_and_every_problem_is_named(tmp_path):
    videos = [tmp_path / "hello.mp4", tmp_path / "a b.avi"]
    labels = read_labels(write_labels(tmp_path / "labels.csv", {"hello": "TV", "a b.avi": "apple", "extra": "bed"}))
    assert match_labels(videos, labels, "labels.csv") == (["TV", "apple"], ["extra"])
    with pytest.raises(CorpusError, match="expected a label for every video, found none for c.mp4"):
        match_labels([*videos, tmp_path / "c.mp4"], labels, "labels.csv")
    with pytest.raises(CorpusError, match="'hello' to name one video"):
        match_labels([*videos, tmp_path / "hello.mov"], labels, "labels.csv")

    (tmp_path / "bad.csv").write_text("video,label\nx.mp4,\n,y\nz.mp4,a\nz.mp4,b\n", encoding="utf-8")
    with pytest.raises(CorpusError) as caught:
        read_labels(tmp_path / "bad.csv")
    messages = " | ".join(p.message for p in caught.value.problems)
    assert "non-empty label" in messages and "line 2" in messages
    assert "non-empty video" in messages and "line 3" in messages
    assert "z.mp4 more than once" in messages
    (tmp_path / "columns.csv").write_text("file,sign\na.mp4,TV\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="expected columns video,label, found file,sign"):
        read_labels(tmp_path / "columns.csv")
    with pytest.raises(CorpusError, match="found no such file"):
        read_labels(tmp_path / "missing.csv")


# --- writing both layouts from landmark arrays ---------------------------------------------------


def assert_frames_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(np.nan_to_num(actual), np.nan_to_num(expected), rtol=0, atol=1e-6)


@pytest.mark.parametrize("layout", ["fingerspelling", "isolated-signs"])
def test_extracted_corpus_validates_and_reads_back(tmp_path, make_random_frames, layout):
    videos = [fake_video(tmp_path / "videos" / f"{name}.mp4", k) for k, name in enumerate(("one", "two", "three"))]
    names = {"fingerspelling": ["3 creek house", "www.a-b.com", "+1 555"], "isolated-signs": ["TV", "apple", "TV"]}[layout]
    labels = write_labels(tmp_path / "labels.csv", dict(zip(["one.mp4", "two", "three.mp4"], names)))
    landmarker = random_landmarker(make_random_frames, {"one.mp4": 5, "two.mp4": 1, "three.mp4": 9})
    result = extract_videos(videos, tmp_path / "corpus", layout, labels, participant_id=42, landmarker=landmarker)

    assert result.labelled and result.sequences == 3 and result.frames == 15
    report = validate_corpus(result.root)
    assert report.ok, report.problems
    assert report.kind == layout and report.warnings == []
    assert report.summary["train"].sequences_read == 3 and report.summary["train"].frames_total == 15
    corpus = open_corpus(result.root)
    map_file = CHARACTER_MAP_FILE if layout == "fingerspelling" else SIGN_MAP_FILE
    assert corpus.label_map == packaged_map(map_file)
    index = pd.read_csv(result.root / INDEX_FILE)
    assert list(index["video"]) == [str(v) for v in videos]
    for (video, label), sequence_id in zip(zip(videos, names), index["sequence_id"]):
        sequence = corpus.read_sequence(sequence_id)
        assert sequence.label == label and sequence.participant_id == 42
        assert sequence_id == content_id(video)
        assert_frames_equal(sequence.frames, landmarker.returned[video.name])
    expected_hands = [int((~np.isnan(landmarker.returned[v.name][:, PART_OFFSET["left_hand"], 0])).sum()) for v in videos]
    assert list(index["left_hand_frames"]) == expected_hands
    assert list(index["face_frames"]) == [5, 1, 9]


def test_extraction_without_labels_writes_landmarks_only(tmp_path, make_random_frames):
    videos = [fake_video(tmp_path / f"v{k}.mp4", k) for k in range(2)]
    landmarker = random_landmarker(make_random_frames, {"v0.mp4": 4, "v1.mp4": 3})
    updates: list[FrameProgress] = []
    result = extract_videos(videos, tmp_path / "out", "isolated-signs", landmarker=landmarker, progress=updates.append)
    assert [u.frames_done for u in updates] == list(range(1, 8)) and updates[-1].frames_expected == 7
    assert result.startup_seconds is not None and 0 < result.startup_seconds <= result.seconds
    assert result.frames == 7 and np.isfinite(result.frames_per_second) and result.frames_per_second > 0
    assert not result.labelled
    assert not (result.root / "train.csv").exists() and not (result.root / SIGN_MAP_FILE).exists()
    assert any("no labels given" in w for w in result.warnings)
    index = pd.read_csv(result.root / INDEX_FILE)
    assert "label" not in index.columns and list(index["frames"]) == [4, 3]
    from signpipe.data.signs import read_long_frames

    frames, _ = read_long_frames(result.root / index["path"][0])
    assert_frames_equal(frames, landmarker.returned["v0.mp4"])


def test_fingerspelling_files_hold_a_bounded_number_of_sequences(tmp_path, make_random_frames, monkeypatch):
    monkeypatch.setattr("signpipe.video.corpus_writer.SEQUENCES_PER_FILE", 2)
    videos = [fake_video(tmp_path / "videos" / f"v{k}.mp4", k) for k in range(5)]
    labels = write_labels(tmp_path / "labels.csv", {f"v{k}": "abc" for k in range(5)})
    landmarker = random_landmarker(make_random_frames, {f"v{k}.mp4": 2 for k in range(5)})
    result = extract_folder(tmp_path / "videos", tmp_path / "corpus", "fingerspelling", labels, landmarker=landmarker)
    assert validate_corpus(result.root).ok
    assert sorted(pd.read_csv(result.root / "train.csv").groupby("file_id").size()) == [1, 2, 2]
    assert SEQUENCES_PER_FILE > 2  # the production bound is untouched by the patch above


def test_labels_are_checked_before_any_frame_is_landmarked(tmp_path):
    videos = [fake_video(tmp_path / "a.mp4", 0), fake_video(tmp_path / "b.mp4", 1)]

    def landmarker(paths, progress, python):
        raise AssertionError("landmarking started although the labels were wrong")

    labels = write_labels(tmp_path / "labels.csv", {"a": "hello", "b": "CAPITALS"})
    with pytest.raises(CorpusError) as caught:
        extract_videos(videos, tmp_path / "out", "fingerspelling", labels, landmarker=landmarker)
    unknown = sorted(re.search(r"found '(.)' in the phrase of b.mp4", p.message).group(1) for p in caught.value.problems)
    assert unknown == sorted(set("CAPITALS"))
    with pytest.raises(CorpusError, match="expected signs from the sign map, found 'not-a-sign' for a.mp4"):
        extract_videos(videos, tmp_path / "out", "isolated-signs",
                       write_labels(tmp_path / "s.csv", {"a": "not-a-sign", "b": "TV"}), landmarker=landmarker)
    assert not (tmp_path / "out").exists()


def test_a_failed_extraction_leaves_nothing_behind(tmp_path, make_random_frames):
    videos = [fake_video(tmp_path / "a.mp4", 0), fake_video(tmp_path / "b.mp4", 1)]

    def landmarker(paths, progress, python):
        yield paths[0], make_random_frames(np.random.default_rng(0), 3)
        raise VideoError(f"{paths[1]}: expected at least one frame")

    with pytest.raises(VideoError):
        extract_videos(videos, tmp_path / "out", "isolated-signs", landmarker=landmarker)
    # neither the corpus nor its temporary build directory is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(SignpipeError, match="not empty"):
        extract_videos(videos, tmp_path / "taken", "isolated-signs", landmarker=landmarker)
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]


def test_cli_bad_inputs_exit_2_with_the_problems(tmp_path, capsys, monkeypatch):
    text = tmp_path / "notes.mp4"
    text.write_text("hello\n", encoding="utf-8")
    status, output = run_cli(capsys, "extract", text, tmp_path / "missing.avi", "--out", tmp_path / "out",
                             "--layout", "fingerspelling")
    assert status == 2
    assert "2 problems found" in output and "found a text file" in output and "found no such file" in output
    status, output = run_cli(capsys, "extract", text, "--out", tmp_path / "out", "--layout", "phrases")
    assert status == 2 and "phrases" in output
    monkeypatch.setenv(environment.ENV_VARIABLE, str(tmp_path / "no-python"))
    status, output = run_cli(capsys, "extract", fake_video(tmp_path / "a.mp4", 0), "--out", tmp_path / "out",
                             "--layout", "isolated-signs")
    assert status == 2 and "expected the python executable of the video environment" in output
    assert not (tmp_path / "out").exists()


# --- real videos through MediaPipe (video environment) -------------------------------------------


@pytest.fixture(scope="module")
def cli_extraction(test_videos, tmp_path_factory) -> tuple[Path, str]:
    """`signpipe extract` of both good videos into the fingerspelling layout: the corpus and what
    the command printed (progress bar, warnings, summary)."""
    root = tmp_path_factory.mktemp("extracted") / "corpus"
    labels = write_labels(root.parent / "labels.csv", {"astronaut.mp4": "eileen collins", "coffee": "coffee"})
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        status = main(["extract", str(test_videos["astronaut.mp4"]), str(test_videos["coffee.avi"]), "--out", str(root),
                       "--layout", "fingerspelling", "--labels", str(labels)])
    assert status == 0, printed.getvalue()
    return root, printed.getvalue()


@pytest.fixture(scope="module")
def fingerspelling_from_videos(cli_extraction) -> Path:
    return cli_extraction[0]


def test_cli_reports_progress_speed_and_the_video_without_a_person(cli_extraction):
    root, printed = cli_extraction
    assert "Traceback" not in printed
    assert "2/2 done" in printed and "11/11" in printed
    assert re.search(r"wrote 2 sequences \(11 frames\) in the fingerspelling layout to .*: [0-9.]+ frames/s after "
                     r"[0-9.]+ s of start-up", printed)
    assert "MediaPipe found no person (no pose in any frame) in coffee.avi" in printed
    assert f"signpipe data validate {root}" in printed


def test_the_video_environment_has_no_jax_or_tensorflow(video_python):
    code = ("import importlib.util, sys, signpipe.cli, signpipe.video.extract, signpipe.video.worker\n"
            "heavy = [m for m in ('jax', 'jaxlib', 'tensorflow', 'flax') if importlib.util.find_spec(m)]\n"
            "loaded = [m for m in sys.modules if m.split('.')[0] in ('jax', 'tensorflow')]\n"
            "print(heavy, loaded)\n")
    done = subprocess.run([str(video_python), "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] []"


def test_real_video_landmarks_have_the_layout_and_find_the_person(fingerspelling_from_videos):
    report = validate_corpus(fingerspelling_from_videos)
    assert report.ok, report.problems
    corpus = open_corpus(fingerspelling_from_videos)
    by_label = {s.label: s.frames for s in corpus.iter_sequences()}
    astronaut, coffee = by_label["eileen collins"], by_label["coffee"]
    assert astronaut.dtype == np.float32
    assert astronaut.shape == (ASTRONAUT_VIDEO_COFFEE_FRAMES + ASTRONAUT_VIDEO_PERSON_FRAMES, 543, 3)
    assert coffee.shape == (COFFEE_VIDEO_FRAMES, 543, 3)
    person = astronaut[ASTRONAUT_VIDEO_COFFEE_FRAMES:]
    # face and pose found in every frame showing the astronaut, with the face inside the picture
    assert np.isfinite(person[:, part_slice("face")]).all()
    assert np.isfinite(person[:, part_slice("pose")]).all()
    face_xy = person[:, part_slice("face"), :2]
    assert ((face_xy > 0) & (face_xy < 1)).all()
    # her hands are out of the picture: each hand NaN, all 21 points, in every frame
    for hand in ("left_hand", "right_hand"):
        assert np.isnan(person[:, part_slice(hand)]).all()
    # no person in the coffee frames before her, nor in the coffee video after her (a fresh
    # MediaPipe graph per video: nothing tracked over from the astronaut)
    assert np.isnan(astronaut[:ASTRONAUT_VIDEO_COFFEE_FRAMES]).all()
    assert np.isnan(coffee).all()
    index = pd.read_csv(fingerspelling_from_videos / INDEX_FILE)
    assert list(index["pose_frames"]) == [ASTRONAUT_VIDEO_PERSON_FRAMES, 0]


def test_real_video_into_the_isolated_signs_layout_through_video_landmarks(test_videos, fingerspelling_from_videos,
                                                                           video_python, tmp_path):
    """The single-video entry (`video_landmarks`, what predict uses) as the landmarker."""
    def one_at_a_time(paths, progress, python):
        for path in paths:
            yield path, video_landmarks(path, python=video_python)

    labels = write_labels(tmp_path / "labels.csv", {"astronaut": "airplane"})
    result = extract_videos([test_videos["astronaut.mp4"]], tmp_path / "signs", "isolated-signs", labels,
                            landmarker=one_at_a_time)
    report = validate_corpus(result.root)
    assert report.ok, report.problems
    frames = open_corpus(result.root).read_sequence(int(result.index["sequence_id"][0])).frames
    earlier = next(s.frames for s in open_corpus(fingerspelling_from_videos).iter_sequences()
                   if s.label == "eileen collins")
    # the same video landmarked again: the same parts found in the same frames, the same places
    np.testing.assert_array_equal(np.isnan(frames), np.isnan(earlier))
    np.testing.assert_allclose(np.nan_to_num(frames), np.nan_to_num(earlier), atol=0.02)


def test_damaged_and_empty_videos_are_named_before_landmarking(test_videos):
    with pytest.raises(VideoError) as caught:
        list(landmark_videos([test_videos["astronaut.mp4"], test_videos["empty.avi"], test_videos["truncated.mp4"]]))
    problems = {Path(p.where).name: p.message for p in caught.value.problems}
    assert set(problems) == {"empty.avi", "truncated.mp4"}
    assert "found none that decodes" in problems["empty.avi"]
    assert "OpenCV can decode, found a damaged file" in problems["truncated.mp4"]


# --- test videos, written inside the video environment ------------------------------------------


def write_test_videos(directory: Path) -> None:
    """Short videos from scikit-image's photographs (run with the video environment's python).

    astronaut.mp4 (mp4v): 2 frames of coffee, then 6 of the astronaut, each slightly shifted and
    zoomed as a handheld camera would; coffee.avi (MJPG): 3 frames of coffee; empty.avi: a
    container with no frame; truncated.mp4: the first half of astronaut.mp4 (no index).
    """
    import cv2
    from skimage import data

    def bgr(rgb: np.ndarray) -> np.ndarray:
        rgb = cv2.resize(rgb, (VIDEO_SIZE, VIDEO_SIZE), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)

    def handheld(image: np.ndarray, k: int) -> np.ndarray:
        scale, centre = 1.0 + 0.01 * k, VIDEO_SIZE / 2
        shift_x, shift_y = 4 * np.sin(k), 3 * np.cos(k)
        matrix = np.float32([[scale, 0, shift_x + centre * (1 - scale)], [0, scale, shift_y + centre * (1 - scale)]])
        return cv2.warpAffine(image, matrix, (VIDEO_SIZE, VIDEO_SIZE), borderMode=cv2.BORDER_REPLICATE)

    def write(name: str, codec: str, frames: list[np.ndarray]) -> Path:
        path = directory / name
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 15, (VIDEO_SIZE, VIDEO_SIZE))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {codec} into {path}")
        for frame in frames:
            writer.write(frame)
        writer.release()
        return path

    astronaut, coffee = bgr(data.astronaut()), bgr(data.coffee())
    person = write("astronaut.mp4", "mp4v", [coffee] * ASTRONAUT_VIDEO_COFFEE_FRAMES
                   + [handheld(astronaut, k) for k in range(ASTRONAUT_VIDEO_PERSON_FRAMES)])
    write("coffee.avi", "MJPG", [handheld(coffee, k) for k in range(COFFEE_VIDEO_FRAMES)])
    write("empty.avi", "MJPG", [])
    content = person.read_bytes()
    (directory / "truncated.mp4").write_bytes(content[: len(content) // 2])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write-videos"] and len(sys.argv) == 3:
        write_test_videos(Path(sys.argv[2]))
    else:
        sys.exit(f"usage: {os.path.basename(__file__)} --write-videos DIRECTORY")
