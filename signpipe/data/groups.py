"""Folds of a corpus grouped by participant: every sequence of a signer lands in one fold.

`assign_folds` is StratifiedGroupKFold over participants: validation (or a held-out split) always
meets signers the model never saw, as a hidden test set does, and within that constraint every
fold gets about the same share of each label (sign). The assignment is a pure function of the
metadata and `(n_folds, seed)`, so whoever needs it (cross-validation in `signpipe.signs.folds`,
the held-out signers of `signpipe.data.holdout`) computes the same folds without passing them
around.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from signpipe.errors import ConfigError


def assign_folds(participants: Sequence[int], signs: Sequence[str], n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold number (0..n_folds-1) of each sequence, grouped by participant, stratified by sign."""
    from sklearn.model_selection import StratifiedGroupKFold

    participants = np.asarray(participants)
    n_participants = len(np.unique(participants))
    if n_folds < 2:
        raise ConfigError(f"n_folds must be at least 2, got {n_folds}")
    if n_participants < n_folds:
        raise ConfigError(
            f"{n_participants} participants cannot fill {n_folds} folds grouped by participant "
            f"(expected at least {n_folds}; lower n_folds)"
        )
    _, per_sign = np.unique(np.asarray(signs), return_counts=True)
    if per_sign.max(initial=0) < n_folds:
        raise ConfigError(
            f"no sign has {n_folds} sequences (the most any sign has is {per_sign.max(initial=0)}), so "
            f"{n_folds} folds cannot be stratified by sign (expected a larger corpus, or lower n_folds)"
        )
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.full(len(participants), -1, dtype=np.int64)
    with warnings.catch_warnings():
        # a sign seen fewer than n_folds times cannot be in every fold; the split is still grouped
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = splitter.split(np.zeros(len(participants)), np.asarray(signs), participants)
        for fold, (_, validation) in enumerate(splits):
            folds[validation] = fold
    return folds
