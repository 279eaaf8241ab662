"""The fold plan of an isolated-signs pipeline run: which participants validate each fold, the
corpus' y scale, and whether the evaluation corpus shares signers with the training corpus.

In the pipeline each fold trains in its own step (`dsl.ParallelFor`). The fold split itself is a
pure function of the metadata (`signpipe.data.groups.assign_folds`), so every step could compute
it; the plan still exists as an artifact because it is what a person checks in the run graph
(participants per fold, sequence counts, the y scale), and it carries what should be computed once
rather than per fold: the y scale estimate, the same function and sequence subset
`signpipe.signs.train.prepare_fold` would use, so passing it on changes no result. Each fold step
builds its config from the plan (`fold_config`) and checks afterwards that it validated on
exactly the plan's participants (`check_fold_run`).

The plan also counts the evaluation corpus' participants that are in the training corpus: a fold
ensemble has trained on every training participant, so a score on them says little about new
signers. The count is a metric of the plan step, visible before any training starts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from signpipe.data.atomic import atomic_write_text
from signpipe.data.corpus import ISOLATED_SIGNS, open_corpus
from signpipe.errors import ConfigError, SignpipeError

PLAN_FILE = "fold_plan.json"
PIPELINE_KEYS = ("data_dir", "fold", "n_folds", "fold_seed", "y_scale")
"""Config keys the fold plan decides; a training override of one would split the folds differently
from the plan (or silently lose), so it is refused: they are pipeline parameters instead."""


@dataclasses.dataclass(frozen=True)
class FoldAssignment:
    fold: int
    participants: tuple[int, ...]
    """The participants this fold validates on (and its model never sees)."""
    n_sequences: int
    n_signs: int


@dataclasses.dataclass(frozen=True)
class FoldPlan:
    corpus: str
    n_folds: int
    fold_seed: int
    y_scale: float
    y_scale_estimated: bool
    folds: tuple[FoldAssignment, ...]
    n_sequences: int
    n_participants: int
    n_signs: int
    eval_corpus: str = ""
    eval_participants: int = 0
    eval_participants_in_training: int = 0

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["folds"] = [{**dataclasses.asdict(f), "participants": list(f.participants)} for f in self.folds]
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FoldPlan:
        values = dict(values)
        folds = tuple(FoldAssignment(int(f["fold"]), tuple(int(p) for p in f["participants"]), int(f["n_sequences"]),
                                     int(f["n_signs"])) for f in values.pop("folds"))
        return cls(folds=folds, **values)


def participants_in(corpus_dir: str | Path) -> set[int]:
    return {int(p) for p in open_corpus(corpus_dir).metadata["participant_id"].unique()}


def plan_folds(corpus_dir: str | Path, n_folds: int = 5, fold_seed: int = 0, y_scale: float = 0.0,
               y_scale_sequences: int = 2000, eval_corpus_dir: str | Path | None = None) -> FoldPlan:
    """The plan for `n_folds` folds of the asl-signs corpus at `corpus_dir`; `y_scale` 0 estimates
    it (on at most `y_scale_sequences` sequences, seeded by `fold_seed`, as a fold run would)."""
    from signpipe.data.groups import assign_folds

    corpus = open_corpus(corpus_dir)
    if corpus.kind != ISOLATED_SIGNS:
        raise SignpipeError(f"{corpus_dir}: a {corpus.kind} corpus; the isolated-signs pipeline trains on an "
                            f"{ISOLATED_SIGNS} corpus")
    if y_scale < 0:
        raise ConfigError(f"y_scale must be 0 (estimate it) or positive, got {y_scale}")
    metadata = corpus.metadata
    largest_sign = int(metadata["sign"].value_counts().max())
    if largest_sign < n_folds:
        raise ConfigError(
            f"{corpus_dir}: no sign has {n_folds} sequences (the most frequent has {largest_sign}); folds stratified by "
            f"sign need at least one that does: lower n_folds or use a larger corpus"
        )
    folds = assign_folds(metadata["participant_id"].to_numpy(), metadata["sign"].to_numpy(), n_folds, fold_seed)
    assignments = tuple(
        FoldAssignment(
            fold,
            tuple(int(p) for p in np.unique(metadata["participant_id"].to_numpy()[folds == fold])),
            int(np.sum(folds == fold)),
            int(metadata["sign"][folds == fold].nunique()),
        )
        for fold in range(n_folds)
    )
    estimated = y_scale == 0
    if estimated:
        from signpipe.landmarks.aspect import estimate_y_scale
        from signpipe.signs.data import hand_sequences

        y_scale = estimate_y_scale(hand_sequences(corpus, metadata, y_scale_sequences, fold_seed), n_bootstrap=0).y_scale
    eval_values: dict[str, Any] = {}
    if eval_corpus_dir is not None:
        evaluated = open_corpus(eval_corpus_dir)
        if evaluated.kind != ISOLATED_SIGNS:
            raise SignpipeError(f"{eval_corpus_dir}: a {evaluated.kind} corpus; the evaluation corpus of the "
                                f"isolated-signs pipeline must be an {ISOLATED_SIGNS} corpus")
        eval_participants = {int(p) for p in evaluated.metadata["participant_id"].unique()}
        training = {int(p) for p in metadata["participant_id"].unique()}
        eval_values = {"eval_corpus": str(eval_corpus_dir), "eval_participants": len(eval_participants),
                       "eval_participants_in_training": len(eval_participants & training)}
    return FoldPlan(
        corpus=str(corpus_dir), n_folds=n_folds, fold_seed=fold_seed, y_scale=round(float(y_scale), 6),
        y_scale_estimated=estimated, folds=assignments, n_sequences=len(metadata),
        n_participants=int(metadata["participant_id"].nunique()), n_signs=int(metadata["sign"].nunique()), **eval_values,
    )


def write_plan(plan: FoldPlan, directory: str | Path) -> Path:
    path = Path(directory) / PLAN_FILE
    atomic_write_text(path, json.dumps(plan.to_dict(), indent=2) + "\n")
    return path


def read_plan(directory: str | Path) -> FoldPlan:
    path = Path(directory)
    path = path / PLAN_FILE if path.is_dir() else path
    try:
        return FoldPlan.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise SignpipeError(f"{path}: no fold plan (expected the output of the plan-folds step)") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise SignpipeError(f"{path}: not a fold plan ({exc})") from None


def check_fold_overrides(overrides: Mapping[str, Any]) -> None:
    """Refuse training overrides of what the plan decides (`PIPELINE_KEYS`)."""
    owned = sorted(set(overrides) & set(PIPELINE_KEYS))
    if owned:
        raise ConfigError(f"training overrides {', '.join(owned)}: set by the pipeline's fold plan; use the pipeline "
                          "parameters n_folds, fold_seed and y_scale instead")


def fold_config(plan: FoldPlan, fold: int, preset: str, overrides: Mapping[str, Any], data_dir: str | Path):
    """The `SignsConfig` of fold `fold`: the training preset and overrides, with the data, the fold
    split and the y scale from the plan."""
    from signpipe.signs.config import resolve_config

    check_fold_overrides(overrides)
    if not 0 <= fold < plan.n_folds:
        raise ConfigError(f"fold {fold} is not in the plan (folds 0..{plan.n_folds - 1})")
    return resolve_config(preset, dict(overrides), data_dir=str(data_dir), fold=fold, n_folds=plan.n_folds,
                          fold_seed=plan.fold_seed, y_scale=plan.y_scale)


def check_fold_run(plan: FoldPlan, fold: int, final_metrics: Mapping[str, Any]) -> None:
    """A fold run validated on the participants the plan gave its fold (same counts of signers and
    sequences): otherwise the corpus changed under the run, or the split did."""
    planned = plan.folds[fold]
    ran = (final_metrics.get("n_validation_participants"), final_metrics.get("n_validation"))
    if ran != (len(planned.participants), planned.n_sequences):
        raise SignpipeError(
            f"fold {fold} validated on {ran[0]} participants / {ran[1]} sequences; the plan gives it "
            f"{len(planned.participants)} / {planned.n_sequences} (did the corpus change since the plan?)"
        )
