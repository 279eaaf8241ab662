"""Cross-validation folds by participant (signpipe.signs.folds), on the real sample's metadata and
on made-up metadata with many signs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signpipe.data.groups import assign_folds
from signpipe.errors import ConfigError
from signpipe.signs.folds import OutOfFold, fold_metadata, parse_folds


def check_grouped_and_stratified(participants: np.ndarray, signs: np.ndarray, folds: np.ndarray, n_folds: int,
                                 tolerance: float) -> None:
    assert set(folds) == set(range(n_folds))
    for participant in np.unique(participants):
        assert len(set(folds[participants == participant])) == 1, f"participant {participant} spans folds"
    overall = pd.Series(signs).value_counts(normalize=True)
    for fold in range(n_folds):
        share = pd.Series(signs[folds == fold]).value_counts(normalize=True).reindex(overall.index, fill_value=0)
        assert (share - overall).abs().max() <= tolerance, f"fold {fold} sign shares {share.to_dict()}"


def test_real_sample_folds_keep_participants_apart_and_signs_balanced(signs_sample) -> None:
    metadata = pd.read_csv(signs_sample / "train.csv")
    participants, signs = metadata["participant_id"].to_numpy(), metadata["sign"].to_numpy()
    folds = assign_folds(participants, signs, n_folds=5, seed=0)
    # 14 participants with 3 sequences of each of 2 signs: every fold is exactly half and half
    check_grouped_and_stratified(participants, signs, folds, 5, tolerance=0.0)
    np.testing.assert_array_equal(folds, assign_folds(participants, signs, n_folds=5, seed=0))  # a pure function
    assert not np.array_equal(folds, assign_folds(participants, signs, n_folds=5, seed=1))
    train, validation = fold_metadata(metadata, 2, 5, 0)
    assert len(train) + len(validation) == len(metadata)
    assert not set(train["participant_id"]) & set(validation["participant_id"])


def test_unbalanced_many_sign_folds_are_grouped_and_roughly_stratified() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    participants = rng.integers(0, 21, size=n)  # the competition's 21 signers
    signs = np.array([f"sign{k}" for k in rng.choice(20, size=n, p=np.arange(1, 21) / 210)])
    folds = assign_folds(participants, signs, n_folds=5, seed=3)
    check_grouped_and_stratified(participants, signs, folds, 5, tolerance=0.03)


def test_fold_errors_name_what_was_expected() -> None:
    with pytest.raises(ConfigError, match="3 participants cannot fill 5 folds"):
        assign_folds([1, 1, 2, 3], ["a", "b", "a", "b"], n_folds=5)
    with pytest.raises(ConfigError, match="n_folds must be at least 2"):
        assign_folds([1, 2], ["a", "b"], n_folds=1)
    assert parse_folds("all", 3) == [0, 1, 2] and parse_folds("2,0", 3) == [0, 2]
    with pytest.raises(ConfigError, match="expected fold numbers in 0..2"):
        parse_folds("3", 3)
    with pytest.raises(ConfigError, match="expected 'all' or fold numbers"):
        parse_folds("first", 3)


def test_out_of_fold_metrics_pool_the_folds() -> None:
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.4, 0.35, 0.25], [0.1, 0.2, 0.7]])
    pooled = OutOfFold(np.arange(4), np.array([0, 2, 1, 2]), probabilities, np.array([0, 0, 1, 1]))
    metrics = pooled.metrics()
    assert metrics["oof_accuracy"] == 0.5 and metrics["oof_top3_accuracy"] == 1.0
    assert metrics["accuracy_per_fold"] == {0: 0.5, 1: 0.5} and metrics["majority_baseline"] == 0.5


def test_folds_need_one_sign_with_a_sequence_per_fold():
    participants = [1, 2, 3, 4, 5, 6]
    signs = ["a", "b", "c", "d", "e", "f"]  # one sequence per sign: nothing to stratify over 3 folds
    with pytest.raises(ConfigError, match="no sign has 3 sequences"):
        assign_folds(participants, signs, n_folds=3)
