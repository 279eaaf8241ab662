"""Cross-validation by participant: which sequences each fold trains and validates on, where the
fold runs live, and the out-of-fold score (`signpipe.signs.train.train_folds` runs the folds).

StratifiedGroupKFold over participants (the seed's split, `signpipe.data.groups.assign_folds`): a participant's sequences are all in
one fold, so validation always meets signers the model never saw, as the hidden test set does;
within that constraint every fold gets about the same share of each sign. The split is a pure
function of the metadata and `(n_folds, fold_seed)`, so every fold's run (one process, or one
pipeline step each) computes the same assignment without passing it around.

The out-of-fold score pools every fold's validation predictions: each sequence is predicted by the
one model that did not train on its signer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from signpipe.data.groups import assign_folds
from signpipe.errors import ConfigError, SignpipeError

FOLD_DIR_PREFIX = "fold_"
OOF_METRICS_FILE = "oof_metrics.json"
VALIDATION_PREDICTIONS_FILE = "validation_predictions.npz"
"""What a fold run leaves for the out-of-fold score (written by `signpipe.signs.train`)."""


def fold_metadata(metadata: pd.DataFrame, fold: int, n_folds: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, validation rows) of `fold` in a corpus' metadata."""
    if not 0 <= fold < n_folds:
        raise ConfigError(f"fold must be in 0..{n_folds - 1}, got {fold}")
    folds = assign_folds(metadata["participant_id"].to_numpy(), metadata["sign"].to_numpy(), n_folds, seed)
    return metadata[folds != fold], metadata[folds == fold]


def fold_workdir(root: str | Path, fold: int) -> Path:
    return Path(root) / f"{FOLD_DIR_PREFIX}{fold}"


def fold_workdirs(root: str | Path) -> list[Path]:
    """The fold runs under a run root, in fold order."""
    root = Path(root)
    found = [p for p in root.glob(f"{FOLD_DIR_PREFIX}*") if p.is_dir() and p.name[len(FOLD_DIR_PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(FOLD_DIR_PREFIX):]))


def parse_folds(text: str, n_folds: int) -> list[int]:
    """`all` or a comma list such as `0,2` -> fold numbers, checked against `n_folds`."""
    if text.strip().lower() == "all":
        return list(range(n_folds))
    try:
        folds = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"--folds {text!r}: expected 'all' or fold numbers such as 0,2") from None
    if not folds or min(folds) < 0 or max(folds) >= n_folds:
        raise ConfigError(f"--folds {text!r}: expected fold numbers in 0..{n_folds - 1}")
    return folds


@dataclasses.dataclass(frozen=True)
class OutOfFold:
    """Every validated sequence's prediction, pooled over folds."""

    sequence_ids: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    folds: np.ndarray

    def metrics(self) -> dict[str, Any]:
        ranked = np.argsort(-self.probabilities, axis=1, kind="stable")
        top1 = ranked[:, 0] == self.labels
        top3 = (ranked[:, :3] == self.labels[:, None]).any(axis=1)
        per_fold = {int(f): float(top1[self.folds == f].mean()) for f in np.unique(self.folds)}
        majority = float(np.bincount(self.labels).max() / len(self.labels))
        return {
            "oof_accuracy": float(top1.mean()),
            "oof_top3_accuracy": float(top3.mean()),
            "majority_baseline": majority,
            "n_sequences": int(len(self.labels)),
            "accuracy_per_fold": per_fold,
        }


def collect_out_of_fold(workdirs: Iterable[str | Path]) -> OutOfFold:
    """Pool the validation predictions each fold run wrote (`VALIDATION_PREDICTIONS_FILE`)."""
    parts = []
    for workdir in workdirs:
        path = Path(workdir) / VALIDATION_PREDICTIONS_FILE
        if not path.is_file():
            raise SignpipeError(f"{path}: no validation predictions (expected a finished signs training run)")
        with np.load(path) as saved:
            parts.append({k: saved[k] for k in ("sequence_ids", "labels", "probabilities", "fold")})
    if not parts:
        raise SignpipeError("no fold runs to pool (expected at least one finished fold)")
    sequence_ids = np.concatenate([p["sequence_ids"] for p in parts])
    if len(np.unique(sequence_ids)) != len(sequence_ids):
        raise SignpipeError("fold runs validated some sequences twice (were they trained with different fold splits?)")
    return OutOfFold(
        sequence_ids,
        np.concatenate([p["labels"] for p in parts]),
        np.concatenate([p["probabilities"] for p in parts]),
        np.concatenate([np.full(len(p["labels"]), int(p["fold"])) for p in parts]),
    )
