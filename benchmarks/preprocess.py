"""Sequences per second of the preprocess step, against a straightforward pandas implementation.

    .venv/bin/python benchmarks/preprocess.py [--data DIR] [--sequences N]

Both produce the same shards (checked): signpipe's step reads only the 288 input columns with
pyarrow projection, file by file, and writes list-typed parquet shards; the baseline is what a
notebook would do: `pandas.read_parquet` of each whole file (1,629 columns), `.loc` per sequence,
a Python loop over frames gathering each point's x, y, z, and `DataFrame.to_parquet` per shard.
Without `--data` a synthetic fingerspelling corpus is generated first (not timed).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from signpipe.landmarks import features
from signpipe.fingerspelling.preprocess import plan_shards, preprocess
from signpipe.fingerspelling.shards import load_split


def baseline_preprocess(corpus_dir: Path, out_dir: Path, plan: dict) -> int:
    """The straightforward version: whole files through pandas, per-frame Python loops."""
    out_dir.mkdir(parents=True)
    meta = pd.read_csv(corpus_dir / "train.csv")
    path_of = dict(zip(meta["sequence_id"], meta["path"]))
    cols = features.selected_columns()
    n_points = len(features.INPUT_POINTS)
    cache: dict[str, pd.DataFrame] = {}
    n = 0
    for shard in plan["shards"]:
        rows = []
        for sid in shard["sequence_ids"]:
            path = path_of[sid]
            if path not in cache:
                cache.clear()
                cache[path] = pd.read_parquet(corpus_dir / path)
            df = cache[path].loc[[sid]]
            frames = []
            for _, frame in df.iterrows():
                point_rows = [[frame[cols[a * n_points + p]] for a in range(3)] for p in range(n_points)]
                frames.append(point_rows)
            arr = np.asarray(frames, dtype=np.float32)
            rows.append({"sequence_id": sid, "n_frames": len(arr), "frames": arr.reshape(-1)})
            n += 1
        pd.DataFrame(rows).to_parquet(out_dir / shard["name"])
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a fingerspelling corpus (default: a synthetic one)")
    parser.add_argument("--sequences", type=int, default=300, help="synthetic corpus size")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="signpipe-bench-"))
    try:
        corpus = args.data
        if corpus is None:
            from signpipe.data.synth import generate_fingerspelling

            corpus = work / "corpus"
            generate_fingerspelling(corpus, args.sequences, seed=7)
        plan = plan_shards(corpus, sequences_per_shard=128)
        n = sum(len(s["sequence_ids"]) for s in plan["shards"])

        t0 = time.perf_counter()
        preprocess(corpus, work / "fast", y_scale=1.0, sequences_per_shard=128)
        fast = time.perf_counter() - t0

        t0 = time.perf_counter()
        baseline_preprocess(corpus, work / "slow", plan)
        slow = time.perf_counter() - t0

        check = load_split(work / "fast", "train")[0]
        base = pd.read_parquet(work / "slow" / "train-00000.parquet").set_index("sequence_id")
        np.testing.assert_array_equal(check.frames.reshape(-1), base.loc[check.sequence_id, "frames"])

        print(f"sequences                          {n}")
        print(f"signpipe preprocess (projection)   {n / fast:10.1f} sequences/s  ({fast:.2f} s)")
        print(f"pandas, whole files, per frame     {n / slow:10.1f} sequences/s  ({slow:.2f} s)")
        print(f"ratio                              {slow / fast:10.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
