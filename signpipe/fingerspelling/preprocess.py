"""Corpus -> feature shards: the preprocess step.

Three phases, so the pipeline can fan out over shards (one worker per shard) and gather:

1. `plan_shards`: read only the metadata, split train/validation (the seed's 5% random split
   with `random_state=42`, or grouped by participant), and cut each split into shards of about
   `sequences_per_shard` sequences, keeping the sequences of one landmark file together so each
   worker opens as few files as possible.
2. `write_planned_shard`: one shard: read its sequences' input points (column projection, see
   `signpipe.data`), write them (`signpipe.fingerspelling.shards`), return its statistics.
3. `gather`: add the statistics up and write the manifest last, so a shard directory with a
   manifest is complete.

`preprocess` runs the three on one machine, with a process pool when `workers > 1`.
Frames are stored raw; the y scale goes into the manifest and is applied by
`signpipe.landmarks.features.featurize`, the function the exported model also runs.

Non-finite values (`signpipe.data.values`: an infinite coordinate, or a part only partly NaN)
would poison training silently, so a shard writer refuses a sequence holding any, naming file,
sequence and frame, unless the plan says `drop_nonfinite`: then those frames are left out and
counted (a sequence left without frames is left out whole), and the manifest records the counts
per split and in total (`nonfinite`).

`preprocess` writes its output through `signpipe.data.atomic.atomic_directory`: an output equal
to, inside or containing the corpus is refused, a second run writing the same output at once is
refused, the shards are built in a unique temporary folder, and a previous output is replaced
only once the new one is complete.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from signpipe.data.atomic import atomic_directory, atomic_write_text
from signpipe.data.corpus import open_corpus
from signpipe.data.values import describe_frame, frame_faults
from signpipe.errors import ConfigError, CorpusError, Problem, SignpipeError
from signpipe.landmarks import features
from signpipe.fingerspelling.shards import MANIFEST, ShardSequence, write_manifest, write_shard

PLAN = "plan.json"
SPLITS = ("train", "validation")


def split_assignment(
    sequence_ids: np.ndarray,
    participant_ids: np.ndarray,
    validation_fraction: float = 0.05,
    group_by_participant: bool = False,
    seed: int = 42,
) -> np.ndarray:
    """Boolean "is validation" per sequence.

    The default reproduces the seed's `train_test_split(labels, test_size=0.05, random_state=42)`
    over the metadata rows in corpus order; grouping by participant keeps every signer on one side
    (the stricter estimate of how the model does on new signers).
    """
    n = len(sequence_ids)
    if not 0.0 <= validation_fraction < 1.0:
        raise ConfigError(f"validation_fraction: expected a number in [0, 1), found {validation_fraction}")
    is_val = np.zeros(n, dtype=bool)
    if validation_fraction == 0.0 or n < 2:
        return is_val
    if group_by_participant:
        from sklearn.model_selection import GroupShuffleSplit

        if len(np.unique(participant_ids)) < 2:
            raise ConfigError("split by participant needs at least 2 participants; the corpus has 1")
        splitter = GroupShuffleSplit(n_splits=1, test_size=validation_fraction, random_state=seed)
        _, val_idx = next(splitter.split(np.zeros(n), groups=participant_ids))
    else:
        from sklearn.model_selection import train_test_split

        _, val_idx = train_test_split(np.arange(n), test_size=validation_fraction, random_state=seed)
    is_val[val_idx] = True
    return is_val


def plan_shards(
    corpus_dir: str | Path,
    sequences_per_shard: int = 512,
    n_shards: int | None = None,
    validation_fraction: float = 0.05,
    group_by_participant: bool = False,
    seed: int = 42,
    parts: Sequence[str] | None = None,
    map_path: str | Path | None = None,
    drop_nonfinite: bool = False,
) -> dict:
    """Which sequences go to which shard and split; cheap (metadata only), JSON-serializable.

    `n_shards`, when given, overrides `sequences_per_shard` so the pipeline can size shards for
    its number of parallel workers (each split gets at least one shard). `drop_nonfinite`: the
    shard writers leave out frames with non-finite values instead of refusing them.
    """
    corpus = open_corpus(corpus_dir, map_path)
    rows = corpus.select(parts)
    if len(rows) == 0:
        raise SignpipeError(f"{corpus_dir}: no sequences to preprocess (parts {parts or corpus.parts})")
    if sequences_per_shard < 1:
        raise ConfigError(f"sequences_per_shard: expected a positive integer, found {sequences_per_shard}")
    ids = rows["sequence_id"].to_numpy(np.int64)
    is_val = split_assignment(ids, rows["participant_id"].to_numpy(), validation_fraction, group_by_participant, seed)
    group_key = rows["path"].astype(str).to_numpy()
    shards = []
    for split, in_split in (("train", ~is_val), ("validation", is_val)):
        order = np.argsort(group_key[in_split], kind="stable")  # sequences of one file together
        split_ids = ids[in_split][order]
        if len(split_ids) == 0:
            continue
        if n_shards is not None:
            per = max(1, math.ceil(len(split_ids) / max(1, n_shards)))
        else:
            per = sequences_per_shard
        for k, lo in enumerate(range(0, len(split_ids), per)):
            shards.append({"name": f"{split}-{k:05d}.parquet", "split": split,
                           "sequence_ids": split_ids[lo : lo + per].tolist()})
    return {
        "corpus": str(Path(corpus_dir).resolve()),
        "kind": corpus.kind,
        "map_path": str(corpus.map_path) if corpus.map_path else None,
        "parts": list(parts) if parts else list(corpus.parts),
        "validation_fraction": validation_fraction,
        "group_by_participant": group_by_participant,
        "seed": seed,
        "label_map": corpus.label_map,
        "points": list(features.INPUT_POINTS),
        "drop_nonfinite": bool(drop_nonfinite),
        "shards": shards,
    }


def write_planned_shard(plan: dict, index: int, out_dir: str | Path) -> dict:
    """Write shard `index` of `plan` into `out_dir`; returns its statistics for `gather`.

    A sequence with non-finite values is a `CorpusError` (every such sequence of the shard
    listed) unless `plan["drop_nonfinite"]`; then its bad frames are left out and counted.
    """
    if not 0 <= index < len(plan["shards"]):
        raise ConfigError(f"shard index: expected 0..{len(plan['shards']) - 1}, found {index}")
    shard = plan["shards"][index]
    drop = bool(plan.get("drop_nonfinite", False))
    corpus = open_corpus(plan["corpus"], plan.get("map_path"))
    points = tuple(plan["points"])
    hand_slots = (slice(0, 21), slice(21, 42))
    seqs, n_frames, no_hand, label_len = [], [], [], []
    refused: list[Problem] = []
    dropped_frames, dropped_sequences, trimmed_sequences = 0, [], 0
    for seq in corpus.iter_sequences(points=points, sequence_ids=shard["sequence_ids"]):
        frames = seq.frames
        bad = frame_faults(frames, points).bad
        if bad.any():
            if not drop:
                refused.append(_nonfinite_problem(seq, bad, points))
                continue
            frames = frames[~bad]
            dropped_frames += int(bad.sum())
            if not len(frames):
                dropped_sequences.append(seq.sequence_id)
                continue
            trimmed_sequences += 1
        seqs.append(ShardSequence(seq.sequence_id, seq.participant_id, seq.label, frames))
        n_frames.append(len(frames))
        hands_missing = [np.isnan(frames[:, s, 0]).all(axis=1) for s in hand_slots]
        no_hand.append(int(np.logical_and(*hands_missing).sum()))
        label_len.append(len(seq.label))
    if refused:
        raise CorpusError(refused)
    out_dir = Path(out_dir)
    write_shard(out_dir / shard["name"], seqs, points)
    return {
        "name": shard["name"],
        "split": shard["split"],
        "sequences": len(seqs),
        "participants": sorted({s.participant_id for s in seqs}),
        "n_frames": n_frames,
        "frames_without_hand": int(sum(no_hand)),
        "label_lengths": label_len,
        "nonfinite_frames_dropped": dropped_frames,
        "nonfinite_sequences_trimmed": trimmed_sequences,
        "nonfinite_sequences_dropped": dropped_sequences,
    }


def _nonfinite_problem(seq, bad: np.ndarray, points: tuple[int, ...]) -> Problem:
    frame_numbers = seq.extra.get("frame_numbers")
    rows = np.flatnonzero(bad)
    first = int(rows[0])
    frame = f"frame {int(frame_numbers[first])}" if frame_numbers is not None else f"frame index {first}"
    more = f" (and {len(rows) - 1:,} more frame{'s' if len(rows) > 2 else ''} of {seq.n_frames:,})" if len(rows) > 1 else ""
    return Problem(seq.source, f"expected finite landmark coordinates in the model's input points, found "
                               f"{describe_frame(seq.frames, first, points)} in sequence_id {seq.sequence_id} {frame}{more}; "
                               "`signpipe data validate` lists every such frame, and preprocess --drop-nonfinite "
                               "leaves them out")


def gather(plan: dict, shard_stats: list[dict], out_dir: str | Path, y_scale: float) -> dict:
    """Check every planned shard is there, add up statistics, write the manifest (last)."""
    out_dir = Path(out_dir)
    by_name = {s["name"]: s for s in shard_stats}
    missing = [s["name"] for s in plan["shards"] if s["name"] not in by_name or not (out_dir / s["name"]).exists()]
    if missing:
        raise SignpipeError(f"{out_dir}: shards missing from the gather: {', '.join(missing[:5])}")
    if not (isinstance(y_scale, (int, float)) and math.isfinite(y_scale) and y_scale > 0):
        raise ConfigError(f"y_scale: expected a positive number, found {y_scale!r}")
    splits = {}
    for split in SPLITS:
        stats = [by_name[s["name"]] for s in plan["shards"] if s["split"] == split]
        if not stats:
            continue
        frames = np.array([f for s in stats for f in s["n_frames"]], dtype=np.int64)
        labels = np.array([n for s in stats for n in s["label_lengths"]], dtype=np.int64)
        nonfinite = _nonfinite_counts(stats)
        if not len(frames):
            raise SignpipeError(f"{plan['corpus']}: no sequence of the {split} split is left after leaving out frames "
                                f"with non-finite values ({nonfinite['frames_dropped']:,} frames dropped)")
        splits[split] = {
            "shards": [{"path": s["name"], "sequences": s["sequences"]} for s in stats],
            "sequences": int(sum(s["sequences"] for s in stats)),
            "participants": len({p for s in stats for p in s["participants"]}),
            "frames": int(frames.sum()),
            "frames_per_sequence": {"min": int(frames.min()), "median": float(np.median(frames)),
                                    "mean": float(frames.mean()), "max": int(frames.max())},
            "fraction_frames_without_hand": float(sum(s["frames_without_hand"] for s in stats) / max(1, frames.sum())),
            "label_length": {"min": int(labels.min()), "mean": float(labels.mean()), "max": int(labels.max())},
            "sequences_shorter_than_label": int((frames < labels).sum()) if plan["kind"] == "fingerspelling" else 0,
            "nonfinite": nonfinite,
        }
    manifest = {
        "kind": plan["kind"],
        "corpus": plan["corpus"],
        "parts": plan["parts"],
        "y_scale": float(y_scale),
        "points": plan["points"],
        "feature_groups": list(features.GROUPS),
        "label_map": plan["label_map"],
        "split": {"validation_fraction": plan["validation_fraction"],
                  "group_by_participant": plan["group_by_participant"], "seed": plan["seed"]},
        "splits": splits,
        "nonfinite": {"policy": "drop" if plan.get("drop_nonfinite") else "refuse",
                      **_nonfinite_counts(list(by_name.values()))},
    }
    write_manifest(out_dir, manifest)
    return manifest


def _nonfinite_counts(stats: list[dict]) -> dict:
    """Frames and sequences left out for non-finite values, added over shard statistics."""
    dropped = [i for s in stats for i in s.get("nonfinite_sequences_dropped", [])]
    return {"frames_dropped": int(sum(s.get("nonfinite_frames_dropped", 0) for s in stats)),
            "sequences_trimmed": int(sum(s.get("nonfinite_sequences_trimmed", 0) for s in stats)),
            "sequences_dropped": len(dropped), "sequence_ids_dropped": sorted(dropped)}


def _write_one(args: tuple[dict, int, str]) -> dict:
    plan, index, out_dir = args
    return write_planned_shard(plan, index, out_dir)


def preprocess(
    corpus_dir: str | Path,
    out_dir: str | Path,
    y_scale: float | None = None,
    sequences_per_shard: int = 512,
    n_shards: int | None = None,
    validation_fraction: float = 0.05,
    group_by_participant: bool = False,
    seed: int = 42,
    parts: Sequence[str] | None = None,
    map_path: str | Path | None = None,
    workers: int = 1,
    overwrite: bool = False,
    drop_nonfinite: bool = False,
) -> dict:
    """Preprocess a whole corpus on this machine; returns the manifest.

    Without `y_scale` it is estimated from the corpus (`signpipe.landmarks.aspect`), after the
    shards are written (so a corpus they refuse fails before that work). The output is checked
    (not the corpus, not inside it, not containing it, writable, not being written by another
    run) before any corpus file is read, built in a unique temporary folder and swapped in at
    the end (`atomic_directory`), so an interrupted or failed run leaves what was there before.
    """
    if y_scale is not None and not (isinstance(y_scale, (int, float)) and math.isfinite(y_scale) and y_scale > 0):
        raise ConfigError(f"y_scale: expected a positive number, found {y_scale!r}")
    with atomic_directory(out_dir, overwrite=overwrite, inputs=(corpus_dir, map_path)) as tmp:
        plan = plan_shards(corpus_dir, sequences_per_shard, n_shards, validation_fraction,
                           group_by_participant, seed, parts, map_path, drop_nonfinite)
        jobs = [(plan, i, str(tmp)) for i in range(len(plan["shards"]))]
        if workers > 1 and len(jobs) > 1:
            import multiprocessing

            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                stats = list(pool.map(_write_one, jobs))
        else:
            stats = [_write_one(job) for job in jobs]
        if y_scale is None:
            from signpipe.landmarks.aspect import estimate_y_scale

            y_scale = float(estimate_y_scale(corpus_dir, map_path=map_path).y_scale)
        atomic_write_text(tmp / PLAN, json.dumps({k: v for k, v in plan.items() if k != "label_map"}))
        manifest = gather(plan, stats, tmp, y_scale)
    return manifest


__all__ = ["MANIFEST", "PLAN", "gather", "plan_shards", "preprocess", "split_assignment", "write_planned_shard"]
