"""Extracted landmarks into either Kaggle layout, with the layouts' own writers.

Both writers produce what `open_corpus` and `signpipe data validate` read: the landmark files,
`train.csv` and the label map, when the sequences have labels. Without labels there is no
training corpus to describe (the layouts require a phrase or sign per sequence), so only the
landmark files are written, e.g. for inspection or for `signpipe predict`. Either way
`videos.csv` records where each sequence came from and how often MediaPipe found each part,
which is the first thing to look at when a recording gives poor landmarks.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import pandas as pd

from signpipe.data import fingerspelling, signs
from signpipe.data.corpus import FINGERSPELLING, ISOLATED_SIGNS, METADATA_FILE
from signpipe.data.schema import CHARACTER_MAP_FILE, PART_OFFSET, PARTS, SIGN_MAP_FILE
from signpipe.video.inputs import SEQUENCE_ID_BITS

INDEX_FILE = "videos.csv"
#: sequences per wide parquet file; bounds the memory held before a file is written (a sequence of
#: 300 frames is about 2 MB as float32)
SEQUENCES_PER_FILE = 128
_PART_PROBES = np.array([PART_OFFSET[part] for part, _ in PARTS])


def part_frame_counts(frames: np.ndarray) -> dict[str, int]:
    """Frames in which MediaPipe found each part (a part is all-NaN or not at all)."""
    found = ~np.isnan(frames[:, _PART_PROBES, 0])
    return {f"{part}_frames": int(n) for (part, _), n in zip(PARTS, found.sum(axis=0))}


class CorpusWriter(ABC):
    """Collects extracted sequences into a new corpus directory (which the caller made)."""

    layout: str = ""
    map_file: str = ""
    metadata_columns: tuple[str, ...] = ()

    def __init__(self, root: Path, participant_id: int) -> None:
        self.root = Path(root)
        self.participant_id = int(participant_id)
        self.rows: list[dict] = []

    def add(self, video: Path, sequence_id: int, label: str | None, frames: np.ndarray) -> None:
        self.rows.append({"video": str(video), "sequence_id": int(sequence_id), "participant_id": self.participant_id,
                          "path": "", "label": label, "frames": len(frames), **part_frame_counts(frames)})
        self._write_frames(self.rows[-1], frames)

    @abstractmethod
    def _write_frames(self, row: dict, frames: np.ndarray) -> None:
        """Write (or buffer) one sequence's landmark data and set `row["path"]`."""

    def _flush(self) -> None:
        """Write whatever `_write_frames` buffered."""

    @abstractmethod
    def _metadata(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The layout's `train.csv` from the index rows."""

    def finish(self, label_map: dict[str, int] | None) -> pd.DataFrame:
        """Write the buffered landmarks, `videos.csv`, and, when every sequence has a label,
        `train.csv` and the label map. Returns the index."""
        self._flush()
        index = pd.DataFrame(self.rows)
        labelled = bool(len(index)) and index["label"].notna().all()
        if not labelled:
            index = index.drop(columns="label")
        index.to_csv(self.root / INDEX_FILE, index=False)
        if labelled:
            if label_map is None:
                raise ValueError("labelled sequences need the label map they were checked against")
            self._metadata(index).to_csv(self.root / METADATA_FILE, index=False)
            (self.root / self.map_file).write_text(json.dumps(label_map, indent=1), encoding="utf-8")
        return index


class FingerspellingWriter(CorpusWriter):
    """Wide parquet files under `train_landmarks/`, up to `SEQUENCES_PER_FILE` sequences each."""

    layout = FINGERSPELLING
    map_file = CHARACTER_MAP_FILE

    def __init__(self, root: Path, participant_id: int) -> None:
        super().__init__(root, participant_id)
        self._pending: list[tuple[dict, np.ndarray]] = []

    def _write_frames(self, row: dict, frames: np.ndarray) -> None:
        self._pending.append((row, frames))
        if len(self._pending) >= SEQUENCES_PER_FILE:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        ids = [row["sequence_id"] for row, _ in self._pending]
        # named after its sequences, so re-extracting the same videos names the file the same
        digest = hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes()).digest()
        file_id = int.from_bytes(digest[:8], "big") >> (64 - SEQUENCE_ID_BITS)
        relative = f"{fingerspelling.PARTS_DIRS['train']}/{file_id}.parquet"
        fingerspelling.write_landmark_file(self.root / relative, [(row["sequence_id"], f) for row, f in self._pending])
        for row, _ in self._pending:
            row["path"], row["file_id"] = relative, file_id
        self._pending = []

    def _metadata(self, rows: pd.DataFrame) -> pd.DataFrame:
        return rows.rename(columns={"label": "phrase"})[list(fingerspelling.METADATA_COLUMNS)]


class SignsWriter(CorpusWriter):
    """One long parquet file per sequence: `train_landmark_files/<participant>/<sequence>.parquet`."""

    layout = ISOLATED_SIGNS
    map_file = SIGN_MAP_FILE

    def _write_frames(self, row: dict, frames: np.ndarray) -> None:
        relative = f"{signs.LANDMARK_DIR}/{row['participant_id']}/{row['sequence_id']}.parquet"
        signs.write_landmark_file(self.root / relative, frames)
        row["path"] = relative

    def _metadata(self, rows: pd.DataFrame) -> pd.DataFrame:
        return rows.rename(columns={"label": "sign"})[list(signs.METADATA_COLUMNS)]


WRITERS: dict[str, type[CorpusWriter]] = {FINGERSPELLING: FingerspellingWriter, ISOLATED_SIGNS: SignsWriter}
