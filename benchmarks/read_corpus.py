"""How much column projection buys when reading a fingerspelling corpus for training.

The model uses 75 of the 543 points (225 of 1,629 coordinate columns). This compares
signpipe's reader (pyarrow column projection + row-group selection, one open per file) with
the obvious alternative, `pandas.read_parquet` of every column followed by a column selection,
and prints sequences per second for both and their ratio.

    .venv/bin/python benchmarks/read_corpus.py                  # builds 500 random sequences in a temp dir
    .venv/bin/python benchmarks/read_corpus.py --sequences 200
    .venv/bin/python benchmarks/read_corpus.py --data DIR       # an existing corpus (asl-fingerspelling layout)

The temporary corpus is written with the layout's own writer (random frames, 50-200 frames per
sequence over 5 files) so the benchmark does not depend on the synthetic-corpus generator.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from signpipe.data import fingerspelling
from signpipe.data.corpus import open_corpus
from signpipe.data.schema import CHARACTER_MAP_FILE, LEFT_HAND, RIGHT_HAND, packaged_map, point_index, wide_columns

#: REFERENCE.md section 2: the 40 lip points of the 5th place solution (face indices)
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
        270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
#: right hand 21 + pose 11-24 + lips 40 = 75 points, 225 columns
POINTS = RIGHT_HAND + tuple(point_index("pose", i) for i in range(11, 25)) + tuple(point_index("face", i) for i in LIPS)
assert len(POINTS) == 75


def write_random_corpus(root: Path, n_sequences: int, n_files: int, seed: int) -> None:
    """A fingerspelling corpus of random frames; hands NaN in about 40% of frames, like real data."""
    rng = np.random.default_rng(seed)
    characters = list(packaged_map(CHARACTER_MAP_FILE))
    rows, sequence_id = [], 1000
    for file_id, ids in enumerate(np.array_split(np.arange(n_sequences), n_files)):
        relative = f"{fingerspelling.PARTS_DIRS['train']}/{file_id}.parquet"
        sequences = []
        for _ in ids:
            sequence_id += int(rng.integers(1, 1000))
            n_frames = int(rng.integers(50, 201))
            frames = rng.random((n_frames, 543, 3), dtype=np.float32)
            for hand in (LEFT_HAND, RIGHT_HAND):
                frames[np.ix_(rng.random(n_frames) < 0.4, hand)] = np.nan
            sequences.append((sequence_id, frames))
            phrase = "".join(rng.choice(characters, size=int(rng.integers(5, 31))))
            rows.append((relative, file_id, sequence_id, int(rng.integers(0, 50)), phrase))
        fingerspelling.write_landmark_file(root / relative, sequences)
    pd.DataFrame(rows, columns=list(fingerspelling.METADATA_COLUMNS)).to_csv(root / "train.csv", index=False)
    (root / CHARACTER_MAP_FILE).write_text(json.dumps(packaged_map(CHARACTER_MAP_FILE)), encoding="utf-8")


def read_projected(root: Path, sequence_ids: np.ndarray) -> tuple[int, int]:
    corpus = open_corpus(root)
    n = frames = 0
    for sequence in corpus.iter_sequences(points=POINTS, sequence_ids=sequence_ids):
        n, frames = n + 1, frames + sequence.n_frames
    return n, frames


def read_all_columns_with_pandas(root: Path, metadata: pd.DataFrame) -> tuple[int, int]:
    columns = wide_columns(POINTS)
    n = frames = 0
    for relative_path, rows in metadata.groupby("path", sort=False):
        table = pd.read_parquet(root / relative_path)  # every column; sequence_id becomes the index
        selected = table.loc[table.index.isin(rows["sequence_id"]), columns]
        for _, block in selected.groupby(level=0, sort=False):
            sequence = block.to_numpy(np.float32).reshape(len(block), 3, len(POINTS)).transpose(0, 2, 1)
            n, frames = n + 1, frames + len(sequence)
    return n, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="existing asl-fingerspelling corpus (default: build a random one)")
    parser.add_argument("--sequences", type=int, default=500, help="sequences to read (and to build)")
    parser.add_argument("--files", type=int, default=5, help="parquet files of the built corpus")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="signpipe-read-bench-") as tmp:
        root = args.data
        if root is None:
            root = Path(tmp)
            start = time.perf_counter()
            write_random_corpus(root, args.sequences, args.files, args.seed)
            print(f"built {args.sequences} random sequences in {args.files} files in {time.perf_counter() - start:.1f} s")
        metadata = open_corpus(root).metadata
        metadata = metadata[metadata["part"] == "train"].head(args.sequences)
        files = metadata["path"].unique()
        size = sum((root / f).stat().st_size for f in files)
        print(f"corpus {root}: {len(metadata)} sequences in {len(files)} files, {size / 2**20:.0f} MiB; "
              f"reading {len(POINTS)} points = {3 * len(POINTS)} of 1,629 coordinate columns")
        for f in files:  # both readers then start from the page cache
            (root / f).read_bytes()

        start = time.perf_counter()
        n_pandas, frames_pandas = read_all_columns_with_pandas(root, metadata)
        pandas_s = time.perf_counter() - start
        start = time.perf_counter()
        n_projected, frames_projected = read_projected(root, metadata["sequence_id"].to_numpy())
        projected_s = time.perf_counter() - start
        assert (n_pandas, frames_pandas) == (n_projected, frames_projected), "the two readers disagree"

    print(f"pandas.read_parquet, all columns, then select: {n_pandas / pandas_s:8.1f} sequences/s ({pandas_s:.2f} s)")
    print(f"signpipe reader, projected columns:            {n_projected / projected_s:8.1f} sequences/s ({projected_s:.2f} s)")
    print(f"speed-up: {pandas_s / projected_s:.1f}x  ({frames_projected:,} frames)")


if __name__ == "__main__":
    main()
