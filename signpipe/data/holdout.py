"""Hold participants out of a corpus: a training corpus and an evaluation corpus whose signers
never train.

A fold ensemble has seen every participant of its training corpus (each fold model trains on all
folds but its own), so scoring the ensemble on that corpus measures recall, not the accuracy on new
signers that the competition's hidden test set asked for. When a run is given one corpus and no
evaluation corpus, `split_by_participant` sets a group of participants aside, chosen the way the
folds are (StratifiedGroupKFold: whole participants, signs spread evenly), and writes two corpora
in the same layout: the rest to train on, the group to score on. A fingerspelling model scored on
the signers it trained on says as little, so fingerspelling corpora are split the same way:
participants drawn at random until their `train` sequences reach the fraction (phrases are not
classes to stratify on); the held-out corpus holds their `train` sequences, the training corpus
every other sequence, the supplemental part's included, of every other participant.

The subsets keep the source's relative paths. An asl-signs landmark file (one sequence) is
hard-linked when the file system allows (no copy of a large corpus; corpus writers replace files by
renaming, never edit them in place, so a link cannot be changed through the other name) and copied
otherwise; so is a fingerspelling file whose sequences all go to one side, while a file holding
sequences of both sides is rewritten with each side's sequences. Each subset is built under a
temporary name and renamed into place (`atomic_directory`), which refuses an output that is,
holds or sits inside the source corpus.

`shared_participants` says which signers two corpora have in common: a run given an evaluation
corpus refuses one that shares signers with its training corpus.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from signpipe.data.atomic import atomic_directory, check_output_directory
from signpipe.data.corpus import FINGERSPELLING, ISOLATED_SIGNS, METADATA_FILE, open_corpus
from signpipe.data.fingerspelling import METADATA_COLUMNS as SPELLING_COLUMNS
from signpipe.data.fingerspelling import PARTS_FILES, read_wide_sequences, write_landmark_file
from signpipe.data.groups import assign_folds
from signpipe.data.schema import CHARACTER_MAP_FILE, SIGN_MAP_FILE
from signpipe.data.signs import METADATA_COLUMNS
from signpipe.errors import ConfigError, SignpipeError


@dataclasses.dataclass(frozen=True)
class ParticipantSplit:
    """Where the two corpora went and whose sequences are in each."""

    train: Path
    held_out: Path
    train_participants: tuple[int, ...]
    held_out_participants: tuple[int, ...]
    n_train_sequences: int
    n_held_out_sequences: int

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values.update(train=str(self.train), held_out=str(self.held_out),
                      train_participants=list(self.train_participants),
                      held_out_participants=list(self.held_out_participants))
        return values


def held_out_participants(metadata: pd.DataFrame, fraction: float, seed: int = 0) -> np.ndarray:
    """Participant ids to set aside: one group of a StratifiedGroupKFold split into about
    1/`fraction` groups, so the held-out signers carry about `fraction` of the sequences with
    every sign about as frequent as in the whole corpus (fewer, larger groups when the corpus has
    fewer signers, or its most frequent sign fewer sequences, than that)."""
    if not 0 < fraction < 1:
        raise ConfigError(f"holdout fraction must be strictly between 0 and 1, got {fraction}")
    participants = metadata["participant_id"].to_numpy()
    n_participants = len(np.unique(participants))
    largest_sign = int(metadata["sign"].value_counts().max()) if len(metadata) else 0
    # fewer signers than groups, or no sign common enough to stratify that many: hold out a larger share
    n_groups = min(max(2, int(round(1 / fraction))), n_participants, largest_sign)
    if n_groups < 2:
        raise ConfigError(f"a corpus of {n_participants} participant(s) whose most frequent sign has {largest_sign} "
                          "sequence(s) cannot be split into training and held-out participants (expected at least 2 of "
                          "each); pass a separate evaluation corpus")
    groups = assign_folds(participants, metadata["sign"].to_numpy(), n_groups, seed)
    return np.unique(participants[groups == 0])


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: a copy is as good, only slower
        shutil.copyfile(source, target)


@contextlib.contextmanager
def _output(out_dir: str | Path, corpus, in_place: bool) -> Iterator[Path]:
    """Where a subset is written: built aside and renamed into place (`atomic_directory`), or,
    `in_place`, straight into `out_dir` (a pipeline step's fresh output folder, which on Vertex AI
    is on the Cloud Storage mount, where a folder cannot be renamed)."""
    if not in_place:
        with atomic_directory(out_dir, inputs=(corpus.root, corpus.map_path)) as root:
            yield root
        return
    root = check_output_directory(out_dir, inputs=(corpus.root, corpus.map_path))
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise SignpipeError(f"{out_dir}: expected an empty output folder for the subset, found files in it")
    yield root


def write_corpus_subset(corpus, rows: pd.DataFrame, out_dir: str | Path, in_place: bool = False) -> Path:
    """An asl-signs corpus at `out_dir` holding exactly the metadata `rows` of `corpus` (an opened
    `SignsCorpus`), their landmark files, and the label map the source was read with."""
    if len(rows) == 0:
        raise SignpipeError(f"{corpus.root}: no sequences selected for {out_dir} (expected at least one)")
    with _output(out_dir, corpus, in_place) as root:
        for relative in rows["path"]:
            _link_or_copy(corpus.root / relative, root / relative)
        rows[list(METADATA_COLUMNS)].to_csv(root / METADATA_FILE, index=False)
        shutil.copyfile(corpus.map_path, root / SIGN_MAP_FILE)
    return Path(out_dir)


def held_out_spellers(metadata: pd.DataFrame, fraction: float, seed: int = 0) -> np.ndarray:
    """Participant ids to set aside from a fingerspelling corpus: drawn in a random order (`seed`)
    until their `train` sequences reach `fraction` of the part's, at least one participant and
    never all of them."""
    if not 0 < fraction < 1:
        raise ConfigError(f"holdout fraction must be strictly between 0 and 1, got {fraction}")
    train = metadata[metadata["part"] == "train"]
    counts = train["participant_id"].value_counts().sort_index()
    if len(counts) < 2:
        raise ConfigError(f"a corpus whose train part has {len(counts)} participant(s) cannot be split into training and "
                          "held-out participants (expected at least 2); pass a separate evaluation corpus")
    order = np.random.default_rng(seed).permutation(counts.index.to_numpy())
    reached = np.cumsum(counts.loc[order].to_numpy()) >= fraction * len(train)
    n_held = min(int(np.argmax(reached)) + 1, len(order) - 1)
    return np.sort(order[:n_held])


def write_spelling_subset(corpus, rows: pd.DataFrame, out_dir: str | Path, in_place: bool = False) -> Path:
    """A fingerspelling corpus at `out_dir` holding exactly the metadata `rows` of `corpus` (an
    opened `FingerspellingCorpus`), each part's csv, each landmark file with those rows'
    sequences (linked when the file goes whole), and the character map the source was read with."""
    if len(rows) == 0:
        raise SignpipeError(f"{corpus.root}: no sequences selected for {out_dir} (expected at least one)")
    in_file = corpus.metadata.groupby("path")["sequence_id"].size()
    with _output(out_dir, corpus, in_place) as root:
        for relative, group in rows.groupby("path", sort=False):
            source, target = corpus.root / relative, root / relative
            if len(group) == in_file[relative]:
                _link_or_copy(source, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                write_landmark_file(target, read_wide_sequences(source, group["sequence_id"].to_numpy()))
        for part, csv_name in PARTS_FILES.items():
            chosen = rows[rows["part"] == part]
            if len(chosen) or part == "train":
                chosen[list(SPELLING_COLUMNS)].to_csv(root / csv_name, index=False)
        shutil.copyfile(corpus.map_path, root / CHARACTER_MAP_FILE)
    return Path(out_dir)


def shared_participants(corpus: str | Path, other: str | Path) -> tuple[int, ...]:
    """Participant ids found in the metadata of both corpora (of any part)."""
    first, second = open_corpus(corpus), open_corpus(other)
    common = np.intersect1d(first.metadata["participant_id"].to_numpy(), second.metadata["participant_id"].to_numpy())
    return tuple(int(p) for p in common)


def split_by_participant(source: str | Path, train_dir: str | Path, held_out_dir: str | Path, fraction: float = 0.2,
                         seed: int = 0, in_place: bool = False) -> ParticipantSplit:
    """Write the corpus at `source` as a training corpus (`train_dir`) and a corpus of held-out
    participants (`held_out_dir`), about `fraction` of the sequences (see `held_out_participants`
    for asl-signs corpora, `held_out_spellers` for fingerspelling ones)."""
    corpus = open_corpus(source)
    metadata = corpus.metadata
    if corpus.kind == ISOLATED_SIGNS:
        held = held_out_participants(metadata, fraction, seed)
        is_held = metadata["participant_id"].isin(held).to_numpy()
        train_rows, held_rows = metadata[~is_held], metadata[is_held]
        write_corpus_subset(corpus, train_rows, train_dir, in_place)
        write_corpus_subset(corpus, held_rows, held_out_dir, in_place)
    elif corpus.kind == FINGERSPELLING:
        held = held_out_spellers(metadata, fraction, seed)
        is_held = metadata["participant_id"].isin(held).to_numpy()
        train_rows, held_rows = metadata[~is_held], metadata[is_held & (metadata["part"] == "train").to_numpy()]
        write_spelling_subset(corpus, train_rows, train_dir, in_place)
        write_spelling_subset(corpus, held_rows, held_out_dir, in_place)
    else:  # a new layout must say how its participants are held out
        raise SignpipeError(f"{source}: participants cannot be held out of a {corpus.kind} corpus")
    return ParticipantSplit(
        Path(train_dir), Path(held_out_dir),
        tuple(int(p) for p in np.unique(train_rows["participant_id"])), tuple(int(p) for p in held),
        len(train_rows), len(held_rows),
    )
