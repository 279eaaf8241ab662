"""Feature-shard directories for the training tests, written with the shard writer itself.

Each character of a small alphabet has its own fixed hand shape (21 random 3-D points, the same
for every seed); a phrase is spelled by holding each character's shape for a few frames, with
jitter, in the right-hand slot (the left hand missing). So the data is learnable in a few hundred
steps, and the mechanics tests (resume, devices) run on tiny, realistic inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from signpipe.data.schema import CHARACTER_MAP_FILE, packaged_map
from signpipe.landmarks import features
from signpipe.fingerspelling.shards import ShardSequence, write_manifest, write_shard

ALPHABET = "abcdefgh"
_SHAPES = np.random.default_rng(12345).normal(0.0, 0.05, size=(len(ALPHABET), 21, 3)).astype(np.float32)


def spelled_frames(phrase: str, rng: np.random.Generator, frames_per_character: tuple[int, int] = (3, 5)) -> np.ndarray:
    """Raw input points `[T, 96, 3]` spelling `phrase` (characters from `ALPHABET`)."""
    holds = rng.integers(frames_per_character[0], frames_per_character[1] + 1, size=len(phrase))
    shapes = np.repeat(_SHAPES[[ALPHABET.index(c) for c in phrase]], holds, axis=0)
    n_frames = len(shapes)
    frames = np.full((n_frames, features.N_INPUT_POINTS, 3), np.nan, dtype=np.float32)
    wrist = np.array([0.5, 0.5, 0.0], np.float32) + rng.normal(0, 0.01, size=(n_frames, 1, 3))
    frames[:, 21:42] = wrist + shapes + rng.normal(0, 0.004, size=shapes.shape)
    frames[:, 42:] = rng.normal(0.5, 0.1, size=(1, features.N_INPUT_POINTS - 42, 3)) + rng.normal(
        0, 0.002, size=(n_frames, features.N_INPUT_POINTS - 42, 3)
    )
    return frames.astype(np.float32)


def write_spelling_shards(
    shard_dir: Path,
    n_train: int = 64,
    n_validation: int = 16,
    seed: int = 0,
    phrase_length: tuple[int, int] = (2, 5),
    too_short: int = 0,
) -> Path:
    """A complete shard directory (train + validation + manifest). `too_short` extra training
    sequences get fewer frames than characters, to exercise the drop rule."""
    rng = np.random.default_rng(seed)
    splits = {}
    next_id = 1
    for split, n in (("train", n_train), ("validation", n_validation)):
        sequences = []
        for k in range(n + (too_short if split == "train" else 0)):
            phrase = "".join(rng.choice(list(ALPHABET), size=int(rng.integers(*phrase_length, endpoint=True))))
            frames = spelled_frames(phrase, rng)
            if k >= n:
                frames = frames[: len(phrase) - 1]
            sequences.append(ShardSequence(next_id, 1 + k % 3, phrase, frames))
            next_id += 1
        name = f"{split}-00000.parquet"
        write_shard(shard_dir / name, sequences, features.INPUT_POINTS)
        splits[split] = {"shards": [{"path": name, "sequences": len(sequences)}], "sequences": len(sequences)}
    write_manifest(
        shard_dir,
        {
            "kind": "fingerspelling",
            "y_scale": 1.0,
            "points": list(features.INPUT_POINTS),
            "label_map": packaged_map(CHARACTER_MAP_FILE),
            "splits": splits,
        },
    )
    return shard_dir
