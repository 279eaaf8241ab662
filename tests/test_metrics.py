"""The competition metric, (N - D) / N over totals, checked against a plain dynamic program."""

from __future__ import annotations

import numpy as np
import pytest

from signpipe.errors import SignpipeError
from signpipe.metrics import LevenshteinTotals, levenshtein_totals, normalized_levenshtein


def edit_distance(a: str, b: str) -> int:
    """Textbook Levenshtein dynamic program, as an independent reference."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def test_known_values():
    assert normalized_levenshtein(["abc", "de"], ["abc", "de"]) == 1.0
    # N = 5, D = 1 (substitution) + 2 (deletions)
    assert normalized_levenshtein(["abc", "de"], ["abd", ""]) == pytest.approx(0.4)
    assert normalized_levenshtein(["hello"], [""]) == 0.0
    # more errors than characters: negative, as on the leaderboard
    assert normalized_levenshtein(["a"], ["xyz"]) == pytest.approx(-2.0)


def test_ratio_of_totals_not_mean_of_ratios():
    truths, predictions = ["a", "abcdefghij"], ["", "abcdefghij"]
    assert normalized_levenshtein(truths, predictions) == pytest.approx(10 / 11)


def test_matches_reference_dynamic_program():
    rng = np.random.default_rng(0)
    alphabet = list("abc -1")
    truths = ["".join(rng.choice(alphabet, size=rng.integers(1, 12))) for _ in range(50)]
    predictions = ["".join(rng.choice(alphabet, size=rng.integers(0, 12))) for _ in range(50)]
    n = sum(map(len, truths))
    d = sum(edit_distance(t, p) for t, p in zip(truths, predictions))
    assert normalized_levenshtein(truths, predictions) == pytest.approx((n - d) / n)


def test_totals_add_up_across_batches():
    truths, predictions = ["abc", "hello", "x"], ["ab", "jello", ""]
    whole = levenshtein_totals(truths, predictions)
    split = levenshtein_totals(truths[:2], predictions[:2]) + levenshtein_totals(truths[2:], predictions[2:])
    assert whole == split == LevenshteinTotals(9, 3)
    assert split.score == pytest.approx(6 / 9)


def test_bad_inputs():
    with pytest.raises(SignpipeError, match="one prediction per phrase"):
        normalized_levenshtein(["a", "b"], ["a"])
    with pytest.raises(SignpipeError, match="no characters"):
        normalized_levenshtein([""], ["abc"])
