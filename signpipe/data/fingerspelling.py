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

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from signpipe.data.atomic import atomic_path
from signpipe.data.schema import N_POINTS, WIDE_COLUMNS

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
        writer = pq.ParquetWriter(tmp, table.schema, compression="snappy")
        try:
            ids = table.column("sequence_id").to_numpy()
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            bounds = list(starts[::ROW_GROUP_SEQUENCES]) + [len(ids)]
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                writer.write_table(table.slice(lo, hi - lo))
        finally:
            writer.close()
