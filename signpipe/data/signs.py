"""The asl-signs (isolated signs) corpus layout (REFERENCE.md section 3).

```
ROOT/train.csv                       path,participant_id,sequence_id,sign
ROOT/sign_to_prediction_index_map.json
ROOT/train_landmark_files/<participant_id>/<sequence_id>.parquet
    long format: frame (int16), row_id (str), type (str), landmark_index (int16), x, y, z (float64);
    543 rows per frame in the order face, left_hand, pose, right_hand
```
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from signpipe.data.atomic import atomic_path
from signpipe.data.corpus_base import (
    ISOLATED_SIGNS,
    METADATA_FILE,
    Corpus,
    check_columns,
    duplicate_id_problems,
    float32_frames,
    open_parquet,
    quote_items,
    read_metadata_csv,
    read_parquet_columns,
    require_directory,
    require_label_map,
    resolve_points,
)
from signpipe.data.schema import AXES, N_POINTS, POINT_NAMES, SIGN_MAP_FILE
from signpipe.data.sequence import LandmarkSequence
from signpipe.errors import CorpusError, Problem

METADATA_COLUMNS = ("path", "participant_id", "sequence_id", "sign")
LANDMARK_DIR = "train_landmark_files"
LONG_SCHEMA = pa.schema(
    [
        ("frame", pa.int16()),
        ("row_id", pa.string()),
        ("type", pa.string()),
        ("landmark_index", pa.int16()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("z", pa.float64()),
    ]
)
_TYPES = np.array([part for part, _ in POINT_NAMES], dtype=object)
_INDICES = np.array([i for _, i in POINT_NAMES], dtype=np.int16)


def long_table(frames: np.ndarray, first_frame: int = 0) -> pa.Table:
    """Arrow table in the long layout from frames `[T, 543, 3]`."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3 or frames.shape[1:] != (N_POINTS, 3):
        raise ValueError(f"expected frames [T, {N_POINTS}, 3], got {frames.shape}")
    t = len(frames)
    frame_no = np.repeat(np.arange(first_frame, first_frame + t, dtype=np.int16), N_POINTS)
    types = np.tile(_TYPES, t)
    indices = np.tile(_INDICES, t)
    row_id = [f"{f}-{ty}-{i}" for f, ty, i in zip(frame_no.tolist(), types.tolist(), indices.tolist())]
    flat = frames.reshape(-1, 3)
    return pa.Table.from_arrays(
        [pa.array(frame_no), pa.array(row_id), pa.array(types, pa.string()), pa.array(indices),
         pa.array(flat[:, 0]), pa.array(flat[:, 1]), pa.array(flat[:, 2])],
        schema=LONG_SCHEMA,
    )


def write_landmark_file(path: str | Path, frames: np.ndarray, first_frame: int = 0) -> None:
    """Write one sequence's long-format parquet atomically."""
    table = long_table(frames, first_frame)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="snappy")


# --- reading ------------------------------------------------------------------------------------

#: the metadata columns that must hold integers / text
INTEGER_COLUMNS = ("participant_id", "sequence_id")
TEXT_COLUMNS = ("path", "sign")
#: what the readers need of a long file; `row_id`, `type` and `landmark_index` only restate the
#: fixed point order, which the validator checks and the readers rely on.
READ_COLUMNS = {"frame": "integer", "x": "floating", "y": "floating", "z": "floating"}


def load_metadata(root: str | Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    """`train.csv` with a `part` column ("train"), and what is wrong with it."""
    csv = Path(root) / METADATA_FILE
    metadata, problems = read_metadata_csv(csv, METADATA_COLUMNS, INTEGER_COLUMNS, TEXT_COLUMNS)
    if metadata is None:
        return None, problems
    metadata = metadata.assign(part="train")
    if not problems:
        problems += duplicate_id_problems(metadata, str(csv))
    return metadata, problems


def long_frame_blocks(frame_numbers: np.ndarray, path: str | Path) -> int:
    """Number of frames of a long file, after checking it is whole blocks of 543 rows, one frame each."""
    n_rows = len(frame_numbers)
    if n_rows == 0:
        raise CorpusError(Problem(str(path), f"expected at least one frame ({N_POINTS} rows), found 0 rows"))
    if n_rows % N_POINTS:
        raise CorpusError(Problem(str(path), f"expected {N_POINTS} rows per frame, found {n_rows:,} rows "
                                             f"({n_rows / N_POINTS:.2f} frames)"))
    blocks = frame_numbers.reshape(-1, N_POINTS)
    mixed = np.flatnonzero((blocks != blocks[:, :1]).any(axis=1))
    if len(mixed):
        first = int(mixed[0])
        raise CorpusError(Problem(str(path), f"expected {N_POINTS} rows per frame with one frame number each, found "
                                             f"rows {first * N_POINTS:,}-{(first + 1) * N_POINTS - 1:,} holding frames "
                                             f"{quote_items(np.unique(blocks[first]).tolist())}"))
    return len(blocks)


def frame_order(frame_numbers: np.ndarray) -> np.ndarray | None:
    """Row order that puts a long file's rows in frame order (stable, so the point order within
    a frame is kept), or `None` when they already are."""
    if len(frame_numbers) < 2 or np.all(frame_numbers[1:] >= frame_numbers[:-1]):
        return None
    return np.argsort(frame_numbers, kind="stable")


def read_long_sequence(path: str | Path, points: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`(frames [T, P, 3] float32, frame numbers [T])` of one long-format sequence file, in frame
    order whatever the order of the file's rows."""
    path = Path(path)
    points = resolve_points(points)
    parquet = open_parquet(path)
    problems = check_columns(parquet.schema_arrow, READ_COLUMNS, path)
    if problems:
        raise CorpusError(problems)
    table = read_parquet_columns(parquet, path, list(READ_COLUMNS))
    frame_numbers = table.column("frame").to_numpy()
    order = frame_order(frame_numbers)
    if order is not None:
        table, frame_numbers = table.take(pa.array(order)), frame_numbers[order]
    n_frames = long_frame_blocks(frame_numbers, path)
    frames = float32_frames(table, AXES).reshape(n_frames, N_POINTS, 3)
    if points is not None:
        frames = frames[:, points]
    return np.ascontiguousarray(frames), frame_numbers[::N_POINTS].astype(np.int64)


def read_long_frames(path: str | Path, points: Sequence[int] | None = None) -> tuple[np.ndarray, int]:
    """`(frames [T, P, 3] float32, first frame number)` of one long-format sequence file, in frame order."""
    frames, frame_numbers = read_long_sequence(path, points)
    return frames, int(frame_numbers[0])


class SignsCorpus(Corpus):
    """An asl-signs corpus: one long parquet file per sequence, labels are signs."""

    kind = ISOLATED_SIGNS
    map_file = SIGN_MAP_FILE
    part_names = ("train",)

    @classmethod
    def open(cls, root: str | Path, map_path: str | Path | None = None) -> SignsCorpus:
        root = require_directory(root)
        metadata, problems = load_metadata(root)
        if problems:
            raise CorpusError(problems)
        label_map, found_map = require_label_map(root, cls.map_file, map_path)
        return cls(root, metadata, label_map, found_map)

    def _sequence(self, row: tuple, points: tuple[int, ...] | None) -> LandmarkSequence:
        relative_path, participant_id, sequence_id, sign = row
        path = self.root / relative_path
        frames, frame_numbers = read_long_sequence(path, points)
        return LandmarkSequence(int(sequence_id), int(participant_id), str(sign), frames, points, str(path),
                                {"part": "train", "first_frame": int(frame_numbers[0]), "frame_numbers": frame_numbers})

    def iter_sequences(
        self,
        points: Sequence[int] | None = None,
        parts: Iterable[str] | str | None = None,
        sequence_ids: Iterable[int] | None = None,
    ) -> Iterator[LandmarkSequence]:
        """Selected sequences in metadata order, one file each."""
        points = resolve_points(points)
        rows = self.select(parts, sequence_ids)
        columns = [rows[c].tolist() for c in METADATA_COLUMNS]
        for row in zip(*columns):
            yield self._sequence(row, points)

    def read_sequence(self, sequence_id: int, points: Sequence[int] | None = None) -> LandmarkSequence:
        row = self.row(sequence_id)
        return self._sequence(tuple(row[c] for c in METADATA_COLUMNS), resolve_points(points))
