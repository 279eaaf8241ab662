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

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from signpipe.data.atomic import atomic_path
from signpipe.data.schema import N_POINTS, POINT_NAMES

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
