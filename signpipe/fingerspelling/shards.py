"""Feature shards: the preprocessed form of a corpus that training reads.

A shard is one parquet file, one row per sequence:

| column         | type            | meaning                                                        |
|----------------|-----------------|----------------------------------------------------------------|
| sequence_id    | int64           | the corpus' id                                                 |
| participant_id | int64           | the signer                                                     |
| label          | string          | phrase (fingerspelling) or sign (isolated signs)               |
| n_frames       | int32           | T                                                              |
| frames         | list<float32>   | the raw input points, `[T, P, 3]` flattened, NaN kept          |

`P` and which points are held are recorded in the file's schema metadata (`signpipe.points`)
and in the manifest, so a shard is self-describing. Frames are stored raw (before the y scale
and normalization) because those are part of the model: training and the exported graph apply
the same `signpipe.landmarks.features` function to these points.

The manifest (`manifest.json` beside the shards) lists the shards of each split with their
counts and the corpus statistics; it is written last, so a directory with a manifest is complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from signpipe.data.atomic import atomic_path, atomic_write_text
from signpipe.errors import SignpipeError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
SHARD_SCHEMA = pa.schema(
    [
        ("sequence_id", pa.int64()),
        ("participant_id", pa.int64()),
        ("label", pa.string()),
        ("n_frames", pa.int32()),
        ("frames", pa.list_(pa.float32())),
    ]
)


@dataclass(frozen=True)
class ShardSequence:
    """One preprocessed sequence as training sees it: raw input points `[T, P, 3]`."""

    sequence_id: int
    participant_id: int
    label: str
    frames: np.ndarray


def write_shard(path: str | Path, sequences: Iterable[ShardSequence], points: tuple[int, ...]) -> int:
    """Write one shard atomically; returns the number of sequences written."""
    seqs = list(sequences)
    n_points = len(points)
    for s in seqs:
        if s.frames.ndim != 3 or s.frames.shape[1:] != (n_points, 3):
            raise ValueError(f"sequence {s.sequence_id}: expected frames [T, {n_points}, 3], got {s.frames.shape}")
    lengths = np.array([len(s.frames) for s in seqs], dtype=np.int32)
    flat = np.concatenate([s.frames.reshape(-1) for s in seqs]).astype(np.float32) if seqs else np.zeros(0, np.float32)
    offsets = np.zeros(len(seqs) + 1, dtype=np.int32)
    np.cumsum(lengths * n_points * 3, out=offsets[1:])
    frames = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float32()))
    schema = SHARD_SCHEMA.with_metadata({b"signpipe.points": json.dumps(list(points)).encode()})
    table = pa.Table.from_arrays(
        [
            pa.array([s.sequence_id for s in seqs], pa.int64()),
            pa.array([s.participant_id for s in seqs], pa.int64()),
            pa.array([s.label for s in seqs], pa.string()),
            pa.array(lengths, pa.int32()),
            frames,
        ],
        schema=schema,
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", compression_level=1)
    return len(seqs)


def read_shard(path: str | Path) -> list[ShardSequence]:
    """Read every sequence of one shard."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise SignpipeError(f"{path}: feature shard not found") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise SignpipeError(f"{path}: not a readable feature shard parquet ({exc})") from None
    meta = table.schema.metadata or {}
    if b"signpipe.points" not in meta or set(SHARD_SCHEMA.names) - set(table.column_names):
        raise SignpipeError(f"{path}: not a signpipe feature shard (expected columns {SHARD_SCHEMA.names})")
    n_points = len(json.loads(meta[b"signpipe.points"]))
    flat = table.column("frames").combine_chunks()
    values = flat.values.to_numpy(zero_copy_only=False)
    offsets = flat.offsets.to_numpy()
    ids = table.column("sequence_id").to_numpy()
    pids = table.column("participant_id").to_numpy()
    labels = table.column("label").to_pylist()
    out = []
    for i in range(table.num_rows):
        frames = values[offsets[i] : offsets[i + 1]].reshape(-1, n_points, 3)
        out.append(ShardSequence(int(ids[i]), int(pids[i]), labels[i], frames))
    return out


def read_manifest(shard_dir: str | Path) -> dict:
    """The manifest of a complete shard directory."""
    path = Path(shard_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SignpipeError(
            f"{path}: no manifest (expected a feature-shard directory written by `signpipe landmarks preprocess`)"
        ) from None
    except json.JSONDecodeError as exc:
        raise SignpipeError(f"{path}: manifest is not valid JSON ({exc})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SignpipeError(f"{path}: manifest format {manifest.get('format_version')!r}, expected {FORMAT_VERSION}")
    return manifest


def read_checked_manifest(shard_dir: str | Path, purpose: str, phrases: bool = True) -> dict:
    """The manifest of a shard directory the recipe's model reads, checked once for every reader
    (finetuning, pretraining, alignment, export): the directory exists, it holds the model's input
    points (`signpipe.landmarks.features.INPUT_POINTS`) and a positive y scale, and, when the reader
    needs `phrases`, it was made from a fingerspelling corpus. `purpose` names the reader in the
    messages ("CTC finetuning", "alignment")."""
    from signpipe.landmarks import features

    shard_dir = Path(shard_dir)
    if not shard_dir.is_dir():
        raise SignpipeError(f"{shard_dir}: feature-shard directory not found (expected the output of preprocess)")
    manifest = read_manifest(shard_dir)
    where = shard_dir / MANIFEST
    kind = manifest.get("kind", "fingerspelling")
    if phrases and kind != "fingerspelling":
        raise SignpipeError(f"{where}: shards of a {kind!r} corpus; {purpose} needs a fingerspelling corpus")
    if tuple(manifest.get("points", ())) != features.INPUT_POINTS:
        raise SignpipeError(
            f"{where}: shards hold points {manifest.get('points')!r:.80}, expected the model's "
            f"{len(features.INPUT_POINTS)} input points (signpipe.landmarks.features.INPUT_POINTS)"
        )
    y_scale = manifest.get("y_scale")
    if isinstance(y_scale, bool) or not isinstance(y_scale, (int, float)) or not y_scale > 0:
        raise SignpipeError(f"{where}: y_scale {y_scale!r}, expected a positive number")
    return manifest


def write_manifest(shard_dir: str | Path, manifest: dict) -> None:
    manifest = {"format_version": FORMAT_VERSION, **manifest}
    atomic_write_text(Path(shard_dir) / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))


def iter_split(shard_dir: str | Path, split: str) -> Iterator[ShardSequence]:
    """Every sequence of a split ("train" or "validation"), shard by shard."""
    shard_dir = Path(shard_dir)
    manifest = read_manifest(shard_dir)
    splits = manifest.get("splits", {})
    if split not in splits:
        raise SignpipeError(f"{shard_dir / MANIFEST}: no split {split!r} (has {sorted(splits)})")
    for shard in splits[split]["shards"]:
        yield from read_shard(shard_dir / shard["path"])


def load_split(shard_dir: str | Path, split: str) -> list[ShardSequence]:
    return list(iter_split(shard_dir, split))
