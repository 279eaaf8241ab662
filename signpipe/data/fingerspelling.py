"""The asl-fingerspelling corpus layout (REFERENCE.md section 1).

```
ROOT/train.csv                      path,file_id,sequence_id,participant_id,phrase
ROOT/supplemental_metadata.csv      same columns (optional)
ROOT/character_to_prediction_index.json
ROOT/train_landmarks/<file_id>.parquet          many sequences per file, wide columns,
ROOT/supplemental_landmarks/<file_id>.parquet   index `sequence_id`, `frame` + 1,629 coordinates
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
    FINGERSPELLING,
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
from signpipe.data.schema import CHARACTER_MAP_FILE, N_POINTS, WIDE_COLUMNS, wide_columns
from signpipe.data.sequence import LandmarkSequence
from signpipe.errors import CorpusError, Problem

METADATA_COLUMNS = ("path", "file_id", "sequence_id", "participant_id", "phrase")
PARTS_FILES = {"train": "train.csv", "supplemental": "supplemental_metadata.csv"}
PARTS_DIRS = {"train": "train_landmarks", "supplemental": "supplemental_landmarks"}
#: sequences per parquet row group when writing; readers filter row groups by `sequence_id`.
ROW_GROUP_SEQUENCES = 16


def wide_schema() -> pa.Schema:
    """The competition's parquet schema: `sequence_id` (int64 index), `frame` (int16), float32 coords."""
    fields = [pa.field("sequence_id", pa.int64()), pa.field("frame", pa.int16())]
    fields += [pa.field(c, pa.float32()) for c in WIDE_COLUMNS]
    return pa.schema(fields, metadata={b"pandas": _PANDAS_INDEX_METADATA})


# pandas reads `sequence_id` back as the index, as with the competition's own files.
_PANDAS_INDEX_METADATA = (
    b'{"index_columns": ["sequence_id"], "column_indexes": [], "columns": '
    b'[{"name": "sequence_id", "field_name": "sequence_id", "pandas_type": "int64", '
    b'"numpy_type": "int64", "metadata": null}], "pandas_version": "2.2.0"}'
)


def wide_table(sequences: Iterable[tuple[int, np.ndarray]]) -> pa.Table:
    """Arrow table in the wide layout from `(sequence_id, frames [T, 543, 3])` pairs."""
    ids, frames_list = [], []
    for sequence_id, frames in sequences:
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 3 or frames.shape[1:] != (N_POINTS, 3):
            raise ValueError(f"sequence {sequence_id}: expected frames [T, {N_POINTS}, 3], got {frames.shape}")
        ids.append(np.full(len(frames), sequence_id, dtype=np.int64))
        frames_list.append(frames)
    all_frames = np.concatenate(frames_list) if frames_list else np.zeros((0, N_POINTS, 3), np.float32)
    frame_no = np.concatenate([np.arange(len(f), dtype=np.int16) for f in frames_list]) if frames_list else np.zeros(0, np.int16)
    # [N, 543, 3] -> [3, 543, N] -> 1,629 columns, axis-major like WIDE_COLUMNS
    coords = np.ascontiguousarray(all_frames.transpose(2, 1, 0)).reshape(3 * N_POINTS, -1)
    arrays = [pa.array(np.concatenate(ids) if ids else np.zeros(0, np.int64)), pa.array(frame_no)]
    arrays += [pa.array(col) for col in coords]
    return pa.Table.from_arrays(arrays, schema=wide_schema())


def write_landmark_file(path: str | Path, sequences: Iterable[tuple[int, np.ndarray]]) -> None:
    """Write one `<file_id>.parquet` atomically, a few sequences per row group."""
    table = wide_table(sequences)
    with atomic_path(path) as tmp:
        writer = pq.ParquetWriter(tmp, table.schema, compression="snappy", use_dictionary=False)
        try:
            ids = table.column("sequence_id").to_numpy()
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            bounds = list(starts[::ROW_GROUP_SEQUENCES]) + [len(ids)]
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                writer.write_table(table.slice(lo, hi - lo))
        finally:
            writer.close()


# --- reading ------------------------------------------------------------------------------------

#: the metadata columns that must hold integers / text
INTEGER_COLUMNS = ("file_id", "sequence_id", "participant_id")
TEXT_COLUMNS = ("path", "phrase")


def load_metadata(root: str | Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    """`train.csv` plus the optional `supplemental_metadata.csv`, one frame with a `part` column.

    Returns the problems instead of raising them so the validator can report them all; the frame
    is `None` when `train.csv` itself is unusable.
    """
    root = Path(root)
    frames, problems = [], []
    for part, csv_name in PARTS_FILES.items():
        csv = root / csv_name
        if part != "train" and not csv.exists():
            continue
        frame, found = read_metadata_csv(csv, METADATA_COLUMNS, INTEGER_COLUMNS, TEXT_COLUMNS)
        problems += found
        if frame is not None:
            frames.append(frame.assign(part=part))
        elif part == "train":
            return None, problems
    metadata = pd.concat(frames, ignore_index=True)
    if not problems:
        problems += duplicate_id_problems(metadata, f"{root / PARTS_FILES['train']} + {PARTS_FILES['supplemental']}"
                                          if len(frames) > 1 else str(root / PARTS_FILES["train"]))
    return metadata, problems


def _sequence_id_ranges(parquet: pq.ParquetFile) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest `sequence_id` of each row group, from the footer statistics.

    A row group without statistics gets the whole int64 range, so it is always read.
    """
    n_groups = parquet.metadata.num_row_groups
    lo = np.full(n_groups, np.iinfo(np.int64).min, dtype=np.int64)
    hi = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    names = parquet.metadata.schema.names
    if "sequence_id" not in names:
        return lo, hi
    column = names.index("sequence_id")
    for g in range(n_groups):
        stats = parquet.metadata.row_group(g).column(column).statistics
        if stats is not None and stats.has_min_max and isinstance(stats.min, int) and isinstance(stats.max, int):
            lo[g], hi[g] = stats.min, stats.max
    return lo, hi


def _may_hold(ids: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """`[len(ids), len(lo)]`: which row groups' id ranges contain each id."""
    return (ids[:, None] >= lo[None, :]) & (ids[:, None] <= hi[None, :])


def read_wide_sequences(
    path: str | Path,
    sequence_ids: Iterable[int] | None = None,
    points: Sequence[int] | None = None,
    *,
    skip_missing: bool = False,
    parquet: pq.ParquetFile | None = None,
    with_frame_numbers: bool = False,
) -> Iterator[tuple[int, np.ndarray]] | Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """`(sequence_id, frames [T, P, 3] float32)` for the sequences of one wide parquet file.

    Reads only `sequence_id`, `frame` and the 3 x P columns of `points` (never all 1,629), and
    only the row groups whose `sequence_id` statistics can hold a wanted id. Sequences are yielded
    as soon as no later row group can add frames to them, so memory stays near one row group's
    worth even for the competition's large files. Frames come out sorted by `frame`.
    A wanted id with no rows is a `CorpusError` (after the others were yielded) unless
    `skip_missing`, which the validator uses to count them itself; it also passes the `parquet`
    it already opened for the schema checks, so the footer is parsed once. With
    `with_frame_numbers`, each item is `(sequence_id, frames, frame numbers [T] int64)`.
    """
    path = Path(path)
    points = resolve_points(points)
    n_points = N_POINTS if points is None else len(points)
    coordinate_columns = wide_columns(points)
    parquet = open_parquet(path) if parquet is None else parquet
    expected = {"sequence_id": "integer", "frame": "integer", **dict.fromkeys(coordinate_columns, "floating")}
    problems = check_columns(parquet.schema_arrow, expected, path)
    if problems:
        raise CorpusError(problems)

    lo, hi = _sequence_id_ranges(parquet)
    wanted = None if sequence_ids is None else np.unique(np.fromiter(sequence_ids, dtype=np.int64))
    groups = np.arange(len(lo))
    if wanted is not None:
        groups = groups[_may_hold(wanted, lo, hi).any(axis=0)]

    columns = ["sequence_id", "frame", *coordinate_columns]
    pending: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    found: set[int] = set()
    for k, group in enumerate(groups):
        table = read_parquet_columns(parquet, path, columns, int(group))
        ids = table.column("sequence_id").to_numpy()
        if wanted is not None:
            keep = np.isin(ids, wanted)
            if not keep.all():
                table, ids = table.filter(pa.array(keep)), ids[keep]
        if len(ids):
            frame_numbers = table.column("frame").to_numpy()
            block = float32_frames(table, coordinate_columns)
            order = None if np.all(ids[1:] >= ids[:-1]) else np.argsort(ids, kind="stable")
            sorted_ids = ids if order is None else ids[order]
            starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
            for start, end in zip(starts, np.r_[starts[1:], len(ids)]):
                rows = slice(start, end) if order is None else order[start:end]
                pending.setdefault(int(sorted_ids[start]), []).append((frame_numbers[rows], block[rows]))
        if not pending:
            continue
        open_ids = np.fromiter(pending, dtype=np.int64)
        later = groups[k + 1:]
        complete = open_ids[~_may_hold(open_ids, lo[later], hi[later]).any(axis=1)]
        for sequence_id in complete.tolist():
            found.add(sequence_id)
            frames, frame_numbers = _assemble_frames(pending.pop(sequence_id), n_points)
            yield (sequence_id, frames, frame_numbers) if with_frame_numbers else (sequence_id, frames)

    if wanted is not None and not skip_missing:
        missing = [i for i in wanted.tolist() if i not in found]
        if missing:
            raise CorpusError(Problem(str(path), f"expected rows of sequence_id {quote_items(missing)} "
                                                 "(listed in the metadata), found none"))


def _assemble_frames(pieces: list[tuple[np.ndarray, np.ndarray]], n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Join a sequence's row blocks `[t, 3P]` (axis-major columns) into `[T, P, 3]` in frame
    order; with the frame numbers in that order."""
    frame_numbers = np.concatenate([f for f, _ in pieces]) if len(pieces) > 1 else pieces[0][0]
    rows = np.concatenate([b for _, b in pieces]) if len(pieces) > 1 else pieces[0][1]
    if np.any(frame_numbers[1:] < frame_numbers[:-1]):
        order = np.argsort(frame_numbers, kind="stable")
        rows, frame_numbers = rows[order], frame_numbers[order]
    frames = np.ascontiguousarray(rows.reshape(len(rows), 3, n_points).transpose(0, 2, 1))
    return frames, frame_numbers.astype(np.int64)


class FingerspellingCorpus(Corpus):
    """An asl-fingerspelling corpus: many sequences per wide parquet file, labels are phrases."""

    kind = FINGERSPELLING
    map_file = CHARACTER_MAP_FILE
    part_names = tuple(PARTS_FILES)

    @classmethod
    def open(cls, root: str | Path, map_path: str | Path | None = None) -> FingerspellingCorpus:
        root = require_directory(root)
        metadata, problems = load_metadata(root)
        if problems:
            raise CorpusError(problems)
        label_map, found_map = require_label_map(root, cls.map_file, map_path)
        return cls(root, metadata, label_map, found_map)

    def iter_sequences(
        self,
        points: Sequence[int] | None = None,
        parts: Iterable[str] | str | None = None,
        sequence_ids: Iterable[int] | None = None,
    ) -> Iterator[LandmarkSequence]:
        """Selected sequences file by file (each parquet file opened once), in file order."""
        points = resolve_points(points)
        rows = self.select(parts, sequence_ids)
        for (part, relative_path), group in rows.groupby(["part", "path"], sort=False):
            path = self.root / relative_path
            ids = group["sequence_id"].to_numpy()
            about = dict(zip(ids.tolist(), zip(group["participant_id"].tolist(), group["phrase"].tolist(),
                                               group["file_id"].tolist())))
            for sequence_id, frames, frame_numbers in read_wide_sequences(path, ids, points, with_frame_numbers=True):
                participant_id, phrase, file_id = about[sequence_id]
                yield LandmarkSequence(sequence_id, participant_id, phrase, frames, points, str(path),
                                       {"part": part, "file_id": file_id, "frame_numbers": frame_numbers})

    def read_sequence(self, sequence_id: int, points: Sequence[int] | None = None) -> LandmarkSequence:
        row = self.row(sequence_id)
        return next(self.iter_sequences(points, parts=[row["part"]], sequence_ids=[int(row["sequence_id"])]))
