"""The alignments artifact: one parquet row per sequence, what CutMix and the reports read.

```
DIR/alignments.parquet
    sequence_id          int64
    split                string          the shard split it came from ("train", "validation")
    phrase               string
    n_frames             int32
    frame_classes        list<int16>     character index or blank (59) per frame
    span_start           list<int32>     first frame of each character on the path
    span_end             list<int32>     end frame (exclusive) of each character on the path
    character_confidence list<float32>   mean probability of each character over its span
    confidence           float32         mean probability of the path's class over the frames
    path_log_prob        float32
    impossible           bool            fewer frames than CTC needs for the phrase
    low_confidence       bool            below the thresholds kept in the metadata
  schema metadata "signpipe.alignments": JSON {version, blank, model, model_step, thresholds...}
DIR/alignment_summary.json          counts and mean confidence, for pipeline metadata and people
```

Every sequence of the aligned splits has a row, flagged ones included, so what was left out of
CutMix and why stays visible. Both files are written under a temporary name and renamed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from signpipe.fingerspelling.align.viterbi import SequenceAlignment
from signpipe.data.atomic import atomic_path, atomic_write_text
from signpipe.errors import SignpipeError

ALIGNMENTS_FILE = "alignments.parquet"
SUMMARY_FILE = "alignment_summary.json"
FORMAT_VERSION = 1
METADATA_KEY = b"signpipe.alignments"
ALIGNMENTS_SCHEMA = pa.schema(
    [
        ("sequence_id", pa.int64()),
        ("split", pa.string()),
        ("phrase", pa.string()),
        ("n_frames", pa.int32()),
        ("frame_classes", pa.list_(pa.int16())),
        ("span_start", pa.list_(pa.int32())),
        ("span_end", pa.list_(pa.int32())),
        ("character_confidence", pa.list_(pa.float32())),
        ("confidence", pa.float32()),
        ("path_log_prob", pa.float32()),
        ("impossible", pa.bool_()),
        ("low_confidence", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class AlignedSequence:
    """One row: which sequence, and its alignment."""

    sequence_id: int
    split: str
    phrase: str
    alignment: SequenceAlignment


@dataclass(frozen=True)
class AlignmentRecords:
    """A whole alignments artifact in memory, indexed by sequence id."""

    rows: list[AlignedSequence]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def by_sequence_id(self) -> dict[int, AlignedSequence]:
        return {row.sequence_id: row for row in self.rows}

    def usable_frame_classes(self) -> dict[int, np.ndarray]:
        """Per-frame classes of the sequences CutMix may cut: neither impossible nor low-confidence."""
        return {
            row.sequence_id: row.alignment.frame_classes
            for row in self.rows
            if not (row.alignment.impossible or row.alignment.low_confidence)
        }


def summarize(rows: Sequence[AlignedSequence]) -> dict[str, Any]:
    """Counts per split and flag, and the mean confidence of the sequences that have a path."""
    summary: dict[str, Any] = {"sequences": len(rows), "splits": {}}
    for split in sorted({row.split for row in rows}):
        in_split = [row.alignment for row in rows if row.split == split]
        confidences = np.array([a.confidence for a in in_split if not a.impossible], dtype=np.float64)
        summary["splits"][split] = {
            "sequences": len(in_split),
            "impossible": int(sum(a.impossible for a in in_split)),
            "low_confidence": int(sum(a.low_confidence for a in in_split)),
            "usable": int(sum(not (a.impossible or a.low_confidence) for a in in_split)),
            "mean_confidence": float(confidences.mean()) if confidences.size else None,
        }
    return summary


def write_alignments(out_dir: str | Path, rows: Sequence[AlignedSequence], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Write `alignments.parquet` and `alignment_summary.json` into `out_dir`; returns the summary."""
    out_dir = Path(out_dir)
    ids = np.array([row.sequence_id for row in rows], dtype=np.int64)
    unique_ids, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise SignpipeError(f"alignments: sequence ids {unique_ids[counts > 1][:5].tolist()} appear more than once")
    alignments = [row.alignment for row in rows]
    for row in rows:
        if row.alignment.frame_classes.size == 0:
            raise SignpipeError(f"alignments: sequence {row.sequence_id} has no frames")

    def lists(arrays: list[np.ndarray], dtype: pa.DataType, numpy_dtype: type) -> pa.ListArray:
        offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
        np.cumsum([len(a) for a in arrays], out=offsets[1:])
        values = np.concatenate(arrays).astype(numpy_dtype) if arrays else np.zeros(0, numpy_dtype)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, dtype))

    table = pa.Table.from_arrays(
        [
            pa.array(ids, pa.int64()),
            pa.array([row.split for row in rows], pa.string()),
            pa.array([row.phrase for row in rows], pa.string()),
            pa.array([a.frame_classes.size for a in alignments], pa.int32()),
            lists([a.frame_classes for a in alignments], pa.int16(), np.int16),
            lists([a.spans[:, 0] for a in alignments], pa.int32(), np.int32),
            lists([a.spans[:, 1] for a in alignments], pa.int32(), np.int32),
            lists([a.character_confidence for a in alignments], pa.float32(), np.float32),
            pa.array([a.confidence for a in alignments], pa.float32()),
            pa.array([a.path_log_prob for a in alignments], pa.float32()),
            pa.array([a.impossible for a in alignments], pa.bool_()),
            pa.array([a.low_confidence for a in alignments], pa.bool_()),
        ],
        schema=ALIGNMENTS_SCHEMA.with_metadata(
            {METADATA_KEY: json.dumps({"version": FORMAT_VERSION, **metadata}, sort_keys=True).encode()}
        ),
    )
    summary = {**summarize(rows), "metadata": dict(metadata)}
    with atomic_path(out_dir / ALIGNMENTS_FILE) as tmp:
        pq.write_table(table, tmp, compression="zstd", compression_level=1)
    atomic_write_text(out_dir / SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def alignments_path(path: str | Path) -> Path:
    """The parquet file of an alignments artifact given either it or its directory."""
    path = Path(path)
    return path / ALIGNMENTS_FILE if path.is_dir() else path


def read_alignments(path: str | Path) -> AlignmentRecords:
    """Read an artifact written by `write_alignments` (its directory or its parquet file)."""
    path = alignments_path(path)
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise SignpipeError(f"{path}: no alignments (expected the output of `signpipe align`)") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise SignpipeError(f"{path}: not a readable alignments parquet ({exc})") from None
    meta = table.schema.metadata or {}
    missing = [name for name in ALIGNMENTS_SCHEMA.names if name not in table.column_names]
    if METADATA_KEY not in meta or missing:
        raise SignpipeError(f"{path}: not a signpipe alignments file (expected columns {ALIGNMENTS_SCHEMA.names})")
    metadata = json.loads(meta[METADATA_KEY])
    if metadata.get("version") != FORMAT_VERSION:
        raise SignpipeError(f"{path}: alignments format {metadata.get('version')!r}, expected {FORMAT_VERSION}")
    columns = table.select(ALIGNMENTS_SCHEMA.names).cast(ALIGNMENTS_SCHEMA.remove_metadata()).to_pydict()
    rows = []
    for k, sequence_id in enumerate(columns["sequence_id"]):
        frame_classes = np.asarray(columns["frame_classes"][k], dtype=np.int32)
        if frame_classes.size != columns["n_frames"][k]:
            raise SignpipeError(
                f"{path}: sequence {sequence_id} has {frame_classes.size} frame classes, n_frames says {columns['n_frames'][k]}"
            )
        spans = np.stack(
            [np.asarray(columns["span_start"][k], np.int32), np.asarray(columns["span_end"][k], np.int32)], axis=1
        ).reshape(-1, 2)
        alignment = SequenceAlignment(
            frame_classes=frame_classes,
            spans=spans,
            character_confidence=np.asarray(columns["character_confidence"][k], dtype=np.float32),
            confidence=float(columns["confidence"][k]),
            path_log_prob=float(columns["path_log_prob"][k]),
            impossible=bool(columns["impossible"][k]),
            low_confidence=bool(columns["low_confidence"][k]),
        )
        rows.append(AlignedSequence(int(sequence_id), columns["split"][k], columns["phrase"][k], alignment))
    return AlignmentRecords(rows, metadata)
