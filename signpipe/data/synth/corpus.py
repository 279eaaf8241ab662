"""Write whole synthetic corpora in the two Kaggle layouts, with their ground truth beside them.

Every sequence draws from its own random stream keyed by (seed, kind, sequence position), so a
corpus is byte-for-byte reproducible from its seed, and the alphabet and sign templates come from
package constants, so corpora of different seeds share one "language" but no participant.
The corpus is built under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from signpipe.data import fingerspelling, signs
from signpipe.data.atomic import atomic_directory, atomic_path
from signpipe.data.schema import CHARACTER_MAP_FILE, PART_OFFSET, SIGN_MAP_FILE
from signpipe.data.synth.phrases import random_phrase
from signpipe.data.synth.scene import RenderedSequence, render_fingerspelling, render_sign
from signpipe.data.synth.shapes import ALPHABET_SEED, alphabet_shapes
from signpipe.data.synth.sign_templates import SIGN_TEMPLATE_SEED, sign_templates
from signpipe.data.synth.signers import KINDS, MAX_SEED, PARTICIPANTS_PER_SEED, Signer, make_signers
from signpipe.data.synth.truth import ALIGNMENT_SCHEMA, GENERATOR, TRUTH_VERSION, write_ground_truth
from signpipe.errors import ConfigError

FINGERSPELLING_Y_SCALE = 1.8979
#: Canvas height / width typical of the isolated-signs corpus (implied width/height 0.8-1.0).
ISOLATED_SIGNS_Y_SCALE = 1.1
MAX_DEFAULT_PARTICIPANTS = 100


@dataclass(frozen=True)
class SynthCorpus:
    """What was written, for the CLI to report."""

    root: Path
    kind: str
    seed: int
    n_sequences: int
    n_participants: int
    n_frames: int
    hand_nan_fraction: float
    y_scale: float


def _check_options(n_sequences, seed, y_scale, y_scale_spread, n_participants) -> int:
    """Validate the options common to both kinds; return the number of participants to use."""
    if isinstance(n_sequences, bool) or not isinstance(n_sequences, (int, np.integer)) or n_sequences < 1:
        raise ConfigError(f"n_sequences must be a positive integer, got {n_sequences!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
    if not isinstance(y_scale, (int, float)) or not math.isfinite(y_scale) or not 0.2 <= y_scale < 5.0:
        raise ConfigError(f"y_scale (canvas height / width) must be in [0.2, 5), got {y_scale!r}")
    if not isinstance(y_scale_spread, (int, float)) or not 0.0 <= y_scale_spread <= 0.5:
        raise ConfigError(f"y_scale_spread must be in [0, 0.5], got {y_scale_spread!r}")
    if n_participants is None:
        return int(min(n_sequences, max(2, min(n_sequences // 50, MAX_DEFAULT_PARTICIPANTS))))
    if isinstance(n_participants, bool) or not isinstance(n_participants, (int, np.integer)):
        raise ConfigError(f"n_participants must be an integer, got {n_participants!r}")
    if not 1 <= n_participants <= min(n_sequences, PARTICIPANTS_PER_SEED - 1):
        raise ConfigError(
            f"n_participants must be in [1, {min(n_sequences, PARTICIPANTS_PER_SEED - 1)}] "
            f"(at most one per sequence), got {n_participants}"
        )
    return int(n_participants)


def _corpus_rng(seed: int, kind: str) -> np.random.Generator:
    return np.random.default_rng([seed, KINDS.index(kind), 1])


def _sequence_rng(seed: int, kind: str, position: int) -> np.random.Generator:
    return np.random.default_rng([seed, KINDS.index(kind), 2, position])


def _assign_participants(rng: np.random.Generator, n_sequences: int, n_participants: int) -> np.ndarray:
    """Which participant signs each sequence: everyone at least once, some much more than others."""
    weights = rng.dirichlet(np.full(n_participants, 4.0))
    counts = 1 + rng.multinomial(n_sequences - n_participants, weights)
    return rng.permutation(np.repeat(np.arange(n_participants), counts))


def _unique_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct random ids in [1, 2**31), like the competitions' sequence and file ids."""
    return rng.choice(2**31 - 1, size=n, replace=False).astype(np.int64) + 1


def _copy_packaged_map(root: Path, name: str) -> None:
    with atomic_path(root / name) as tmp:
        tmp.write_bytes((resources.files("signpipe.data") / "maps" / name).read_bytes())


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def _shapes_digest() -> str:
    """Fingerprint of the fixed alphabet and sign templates: equal digests, same synthetic language."""
    digest = hashlib.sha256(np.round(alphabet_shapes(), 6).tobytes())
    for template in sign_templates():
        for array in (template.anchor, template.coefficients, template.start_shape, template.end_shape):
            digest.update(np.round(array, 6).tobytes())
        digest.update(f"{template.sign}|{template.hands}|{template.cycles}|{template.frames}".encode())
    return digest.hexdigest()[:16]


def _signing_hand_missing(rendered: RenderedSequence) -> int:
    offset = PART_OFFSET[rendered.signing_hand]
    return int(np.isnan(rendered.frames[:, offset, 0]).sum())


def _truth(kind, seed, n_sequences, y_scale, y_scale_spread, signers: list[Signer], per_participant, nan_fraction) -> dict:
    participants = []
    for k, signer in enumerate(signers):
        participants.append({**signer.summary(), "n_sequences": int(per_participant[k])})
    return {
        "generator": GENERATOR,
        "version": TRUTH_VERSION,
        "kind": kind,
        "seed": int(seed),
        "n_sequences": int(n_sequences),
        "y_scale": float(y_scale),
        "y_scale_spread": float(y_scale_spread),
        "alphabet_seed": ALPHABET_SEED,
        "sign_template_seed": SIGN_TEMPLATE_SEED,
        "shapes_digest": _shapes_digest(),
        "hand_nan_fraction": round(float(nan_fraction), 4),
        "participants": participants,
    }


def generate_fingerspelling(
    out_dir: str | Path,
    n_sequences: int,
    seed: int,
    y_scale: float = FINGERSPELLING_Y_SCALE,
    *,
    n_participants: int | None = None,
    sequences_per_file: int = 150,
    y_scale_spread: float = 0.0,
    overwrite: bool = False,
    workers: int = 1,
) -> SynthCorpus:
    """Write a synthetic asl-fingerspelling corpus (REFERENCE.md section 1 layout) to `out_dir`.

    `workers` > 1 renders the landmark files in that many processes; the corpus is byte-for-byte
    the same.

    `train.csv`, `train_landmarks/<file_id>.parquet` (`sequences_per_file` sequences each),
    `character_to_prediction_index.json`, and beside them `synth_truth.json` and
    `synth_alignment.parquet` (see `signpipe.data.synth.truth`). `out_dir` must be new or empty
    unless `overwrite`.
    """
    n_people = _check_options(n_sequences, seed, y_scale, y_scale_spread, n_participants)
    per_file = sequences_per_file
    if isinstance(per_file, bool) or not isinstance(per_file, (int, np.integer)) or per_file < 1:
        raise ConfigError(f"sequences_per_file must be a positive integer, got {sequences_per_file!r}")
    kind = "fingerspelling"
    signers = make_signers(seed, kind, n_people, y_scale, y_scale_spread)
    rng = _corpus_rng(seed, kind)
    who = _assign_participants(rng, n_sequences, n_people)
    sequence_ids = _unique_ids(rng, n_sequences)
    n_files = -(-n_sequences // per_file)
    file_ids = np.sort(_unique_ids(rng, n_files))

    rows, n_frames, n_missing = [], 0, 0
    spans = {name: [] for name in ALIGNMENT_SCHEMA.names}
    with atomic_directory(out_dir, overwrite=overwrite) as root:
        landmarks = root / fingerspelling.PARTS_DIRS["train"]
        jobs = [
            (seed, landmarks, int(file_id), [(position, signers[who[position]], int(sequence_ids[position]))
                                             for position in range(f * per_file, min((f + 1) * per_file, n_sequences))])
            for f, file_id in enumerate(file_ids)
        ]
        for file_rows, file_spans, file_frames, file_missing in _map_files(_fingerspelling_file, jobs, workers):
            rows += file_rows
            for name, parts in file_spans.items():
                spans[name] += parts
            n_frames += file_frames
            n_missing += file_missing
        metadata = pd.DataFrame(rows, columns=list(fingerspelling.METADATA_COLUMNS))
        _write_csv(root / fingerspelling.PARTS_FILES["train"], metadata)
        _copy_packaged_map(root, CHARACTER_MAP_FILE)
        table = pa.Table.from_pydict({name: np.concatenate(parts) for name, parts in spans.items()}, ALIGNMENT_SCHEMA)
        per_participant = np.bincount(who, minlength=n_people)
        truth = _truth(kind, seed, n_sequences, y_scale, y_scale_spread, signers, per_participant, n_missing / n_frames)
        write_ground_truth(root, truth, table)
    return SynthCorpus(
        Path(out_dir), kind, int(seed), int(n_sequences), n_people, n_frames, n_missing / n_frames, float(y_scale)
    )


def _fingerspelling_file(job: tuple) -> tuple[list, dict[str, list], int, int]:
    """Render and write one landmark file of a fingerspelling corpus (a worker's unit of work);
    returns its metadata rows, alignment spans and frame counts. Each sequence draws from its own
    stream, so the corpus is the same whichever process renders which file."""
    seed, landmarks, file_id, members = job
    kind = "fingerspelling"
    rows, batch, n_frames, n_missing = [], [], 0, 0
    spans: dict[str, list] = {name: [] for name in ALIGNMENT_SCHEMA.names}
    for position, signer, sequence_id in members:
        sequence_rng = _sequence_rng(seed, kind, position)
        phrase = random_phrase(sequence_rng)
        rendered = render_fingerspelling(phrase, signer, sequence_rng)
        batch.append((sequence_id, rendered.frames))
        rows.append((f"{landmarks.name}/{file_id}.parquet", file_id, sequence_id, signer.participant_id, phrase))
        spans["sequence_id"].append(np.full(len(phrase), sequence_id, np.int64))
        spans["char_index"].append(np.arange(len(phrase), dtype=np.int16))
        spans["character"].append(np.array(list(phrase), dtype=object))
        spans["start_frame"].append(rendered.spans[:, 0].astype(np.int32))
        spans["end_frame"].append(rendered.spans[:, 1].astype(np.int32))
        n_frames += len(rendered.frames)
        n_missing += _signing_hand_missing(rendered)
    fingerspelling.write_landmark_file(landmarks / f"{file_id}.parquet", batch)
    return rows, spans, n_frames, n_missing


def _isolated_signs_files(job: tuple) -> tuple[list, int, int]:
    """Render and write a run of asl-signs sequences, one landmark file each (a worker's unit of
    work); returns their metadata rows and frame counts."""
    seed, root, members = job
    templates = sign_templates()
    rows, n_frames, n_missing = [], 0, 0
    for position, signer, sign_index, sequence_id in members:
        template = templates[sign_index]
        rendered = render_sign(template, signer, _sequence_rng(seed, "isolated_signs", position))
        path = f"{signs.LANDMARK_DIR}/{signer.participant_id}/{sequence_id}.parquet"
        signs.write_landmark_file(root / path, rendered.frames, first_frame=rendered.first_frame)
        rows.append((path, signer.participant_id, sequence_id, template.sign))
        n_frames += len(rendered.frames)
        n_missing += _signing_hand_missing(rendered)
    return rows, n_frames, n_missing


def _map_files(render: Any, jobs: list, workers: int) -> Any:
    """`render` over `jobs` in order, in `workers` processes (1: in this one)."""
    if workers <= 1 or len(jobs) <= 1:
        return map(render, jobs)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(render, jobs))


def generate_isolated_signs(
    out_dir: str | Path,
    n_sequences: int,
    seed: int,
    y_scale: float = ISOLATED_SIGNS_Y_SCALE,
    *,
    n_participants: int | None = None,
    y_scale_spread: float = 0.0,
    overwrite: bool = False,
    workers: int = 1,
) -> SynthCorpus:
    """Write a synthetic asl-signs corpus (REFERENCE.md section 3 layout) to `out_dir`; `workers`
    > 1 renders in that many processes (the same bytes).

    `train.csv`, `train_landmark_files/<participant_id>/<sequence_id>.parquet` (long format, one
    sequence each), `sign_to_prediction_index_map.json`, and beside them `synth_truth.json`.
    Signs are dealt in shuffled rounds of all 250, so every sign appears before any repeats.
    """
    n_people = _check_options(n_sequences, seed, y_scale, y_scale_spread, n_participants)
    kind = "isolated_signs"
    signers = make_signers(seed, kind, n_people, y_scale, y_scale_spread)
    templates = sign_templates()
    rng = _corpus_rng(seed, kind)
    who = _assign_participants(rng, n_sequences, n_people)
    sequence_ids = _unique_ids(rng, n_sequences)
    rounds = -(-n_sequences // len(templates))
    sign_of = np.concatenate([rng.permutation(len(templates)) for _ in range(rounds)])[:n_sequences]

    rows, n_frames, n_missing = [], 0, 0
    with atomic_directory(out_dir, overwrite=overwrite) as root:
        chunk = 100  # sequences per unit of work: one file each, so any grouping gives the same corpus
        jobs = [
            (seed, root, [(position, signers[who[position]], int(sign_of[position]), int(sequence_ids[position]))
                          for position in range(start, min(start + chunk, n_sequences))])
            for start in range(0, n_sequences, chunk)
        ]
        for chunk_rows, chunk_frames, chunk_missing in _map_files(_isolated_signs_files, jobs, workers):
            rows += chunk_rows
            n_frames += chunk_frames
            n_missing += chunk_missing
        _write_csv(root / "train.csv", pd.DataFrame(rows, columns=list(signs.METADATA_COLUMNS)))
        _copy_packaged_map(root, SIGN_MAP_FILE)
        per_participant = np.bincount(who, minlength=n_people)
        truth = _truth(kind, seed, n_sequences, y_scale, y_scale_spread, signers, per_participant, n_missing / n_frames)
        write_ground_truth(root, truth, None)
    return SynthCorpus(
        Path(out_dir), kind, int(seed), int(n_sequences), n_people, n_frames, n_missing / n_frames, float(y_scale)
    )
