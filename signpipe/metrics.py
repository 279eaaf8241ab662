"""The competition's score for fingerspelling: normalized total Levenshtein distance.

Kaggle scored (N - D) / N over the whole test set, N the total characters of the true phrases and
D the summed edit distances (REFERENCE.md section 1). It is a ratio of totals, not a mean of
per-phrase ratios, so long phrases weigh more and a batch-wise evaluation must accumulate N and D
separately (`LevenshteinTotals`) and divide once at the end. The score is 1 for a perfect
transcript, 0 for predicting nothing, and negative when the predictions add more errors than
there are characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import Levenshtein

from signpipe.errors import SignpipeError


@dataclass(frozen=True)
class LevenshteinTotals:
    """Characters of the true phrases and summed edit distances; add two to merge batches."""

    n_characters: int = 0
    distance: int = 0

    def __add__(self, other: LevenshteinTotals) -> LevenshteinTotals:
        return LevenshteinTotals(self.n_characters + other.n_characters, self.distance + other.distance)

    @property
    def score(self) -> float:
        if self.n_characters == 0:
            raise SignpipeError(
                "normalized Levenshtein score: the true phrases hold no characters (expected at least one)"
            )
        return (self.n_characters - self.distance) / self.n_characters


def levenshtein_totals(truths: Sequence[str], predictions: Sequence[str]) -> LevenshteinTotals:
    """N and D of one batch of phrase pairs."""
    if len(truths) != len(predictions):
        raise SignpipeError(
            f"normalized Levenshtein score: {len(truths)} true phrases but {len(predictions)} predictions "
            "(expected one prediction per phrase)"
        )
    n_characters = sum(len(t) for t in truths)
    distance = sum(Levenshtein.distance(t, p) for t, p in zip(truths, predictions, strict=True))
    return LevenshteinTotals(n_characters, distance)


def normalized_levenshtein(truths: Sequence[str], predictions: Sequence[str]) -> float:
    """(N - D) / N over all pairs: the asl-fingerspelling leaderboard score."""
    return levenshtein_totals(truths, predictions).score
