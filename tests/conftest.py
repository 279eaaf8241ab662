"""Shared fixtures: the real asl-signs sample (copied when a test breaks it) and tiny corpora of
both layouts written with signpipe's own writers from random frames, with the frames kept so
tests can compare what a reader returns with exactly what was written."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signpipe.data import fingerspelling, signs
from signpipe.data.schema import CHARACTER_MAP_FILE, LEFT_HAND, N_POINTS, RIGHT_HAND, SIGN_MAP_FILE, packaged_map

SHARED_DIR = Path(__file__).parents[2] / "shared"
SHARED_DATA = SHARED_DIR / "data"
SIGNS_SAMPLE = SHARED_DATA / "asl-signs-sample"
SHARED_MAPS = SHARED_DATA / "maps"


@dataclass
class WrittenCorpus:
    """A corpus written by a fixture, with what went into it."""

    root: Path
    frames: dict[int, np.ndarray] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    participants: dict[int, int] = field(default_factory=dict)
    parts: dict[int, str] = field(default_factory=dict)
    first_frames: dict[int, int] = field(default_factory=dict)
    files: dict[int, Path] = field(default_factory=dict)


def random_frames(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """`[T, 543, 3]` float32 landmarks where each hand is, frame by frame, fully present or fully
    NaN, as MediaPipe leaves them."""
    frames = rng.normal(0.5, 0.2, size=(n_frames, N_POINTS, 3)).astype(np.float32)
    for hand in (LEFT_HAND, RIGHT_HAND):
        absent = rng.random(n_frames) < 0.4
        frames[np.ix_(absent, hand)] = np.nan
    return frames


def write_map(path: Path, name: str) -> None:
    path.write_text(json.dumps(packaged_map(name)), encoding="utf-8")


def write_fingerspelling_corpus(root: Path, seed: int = 0, files: dict[str, dict[int, int]] | None = None) -> WrittenCorpus:
    """A small asl-fingerspelling corpus: `files` maps part -> {file_id: number of sequences}.

    The default puts 20 sequences in one train file, so with 16 sequences per row group the
    readers' row-group pruning has two groups to choose from.
    """
    files = files or {"train": {1000: 20, 1001: 3}, "supplemental": {2000: 2}}
    rng = np.random.default_rng(seed)
    characters = [c for c in packaged_map(CHARACTER_MAP_FILE)]
    corpus = WrittenCorpus(root)
    next_id = 100
    for part, by_file in files.items():
        rows = []
        for file_id, n_sequences in by_file.items():
            relative = f"{fingerspelling.PARTS_DIRS[part]}/{file_id}.parquet"
            sequences = []
            for _ in range(n_sequences):
                sequence_id, next_id = next_id, next_id + int(rng.integers(1, 50))
                frames = random_frames(rng, int(rng.integers(3, 12)))
                phrase = "".join(rng.choice(characters, size=int(rng.integers(3, 15))))
                participant = int(rng.integers(1, 4))
                sequences.append((sequence_id, frames))
                rows.append((relative, file_id, sequence_id, participant, phrase))
                corpus.frames[sequence_id], corpus.labels[sequence_id] = frames, phrase
                corpus.participants[sequence_id], corpus.parts[sequence_id] = participant, part
                corpus.files[sequence_id] = root / relative
            fingerspelling.write_landmark_file(root / relative, sequences)
        metadata = pd.DataFrame(rows, columns=list(fingerspelling.METADATA_COLUMNS))
        metadata.to_csv(root / fingerspelling.PARTS_FILES[part], index=False)
    write_map(root / CHARACTER_MAP_FILE, CHARACTER_MAP_FILE)
    return corpus


def write_signs_corpus(root: Path, seed: int = 0, n_sequences: int = 6) -> WrittenCorpus:
    """A small asl-signs corpus over two participants; frame numbers start anywhere, as in the
    competition's files (the real sample starts at 20-odd)."""
    rng = np.random.default_rng(seed)
    sign_names = list(packaged_map(SIGN_MAP_FILE))
    corpus = WrittenCorpus(root)
    rows = []
    for k in range(n_sequences):
        participant = (16069, 25571)[k % 2]
        sequence_id = 1_000_000 + 7919 * k
        relative = f"{signs.LANDMARK_DIR}/{participant}/{sequence_id}.parquet"
        frames = random_frames(rng, int(rng.integers(2, 10)))
        first_frame = int(rng.integers(0, 40))
        sign = str(rng.choice(sign_names))
        signs.write_landmark_file(root / relative, frames, first_frame=first_frame)
        rows.append((relative, participant, sequence_id, sign))
        corpus.frames[sequence_id], corpus.labels[sequence_id] = frames, sign
        corpus.participants[sequence_id], corpus.parts[sequence_id] = participant, "train"
        corpus.first_frames[sequence_id], corpus.files[sequence_id] = first_frame, root / relative
    pd.DataFrame(rows, columns=list(signs.METADATA_COLUMNS)).to_csv(root / "train.csv", index=False)
    write_map(root / SIGN_MAP_FILE, SIGN_MAP_FILE)
    return corpus


@pytest.fixture(scope="session")
def signs_sample() -> Path:
    """The real asl-signs sample in shared/data (read only: never write under it)."""
    if not (SIGNS_SAMPLE / "train.csv").is_file() or not SHARED_MAPS.is_dir():
        pytest.skip(f"real asl-signs sample not found at {SIGNS_SAMPLE} (with maps in {SHARED_MAPS})")
    return SIGNS_SAMPLE


@pytest.fixture
def signs_sample_copy(signs_sample: Path, tmp_path: Path) -> Path:
    """A writable copy of the real sample, laid out like shared/data (maps in ../maps)."""
    root = tmp_path / "asl-signs-sample"
    shutil.copytree(signs_sample, root)
    shutil.copytree(SHARED_MAPS, tmp_path / "maps")
    return root


@pytest.fixture
def fingerspelling_corpus(tmp_path: Path) -> WrittenCorpus:
    return write_fingerspelling_corpus(tmp_path / "fingerspelling")


@pytest.fixture
def signs_corpus(tmp_path: Path) -> WrittenCorpus:
    return write_signs_corpus(tmp_path / "signs")


@pytest.fixture
def make_fingerspelling_corpus():
    """`make(root, seed=0, files=None) -> WrittenCorpus`, for tests that need other shapes."""
    return write_fingerspelling_corpus


@pytest.fixture
def make_random_frames():
    """`make(rng, n_frames) -> [T, 543, 3]` float32 with whole hands NaN in some frames."""
    return random_frames


VIDEO_SCRIPT = Path(__file__).with_name("test_video.py")
"""Run in the video environment with `--write-videos DIR`, it writes the test videos (real photos)."""


@pytest.fixture(scope="module")
def video_python() -> Path:
    """The video environment's interpreter, with mediapipe, OpenCV and scikit-image, or a skip."""
    from signpipe.errors import SignpipeError
    from signpipe.video import environment

    try:
        python = environment.find_video_python()
    except SignpipeError as exc:
        pytest.skip(f"no video environment (make video-env): {exc}")
    # looked up, not imported: importing mediapipe takes seconds, and the worker does it anyway
    code = ("import importlib.util\n"
            "print(' '.join(m for m in ('mediapipe', 'cv2', 'skimage') if importlib.util.find_spec(m) is None))")
    probe = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    missing = probe.stdout.strip() if probe.returncode == 0 else f"it does not run ({probe.stderr.strip()[-200:]})"
    if missing:
        pytest.skip(f"video environment {python} lacks {missing} (make video-env)")
    return python


@pytest.fixture(scope="module")
def test_videos(video_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test videos made from real photos, by name."""
    directory = tmp_path_factory.mktemp("videos")
    subprocess.run([str(video_python), str(VIDEO_SCRIPT), "--write-videos", str(directory)], check=True, timeout=120)
    return {p.name: p for p in directory.iterdir()}
