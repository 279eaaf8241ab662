"""CTC prefix beam search: exact with a wide beam, better than greedy where paths split a phrase."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from signpipe.data.schema import CHARACTER_MAP_FILE, packaged_map
from signpipe.fingerspelling.decode import beam_search_phrases, ctc_greedy_decode, ctc_prefix_beam_search, decode_phrases


def collapse(path: tuple[int, ...], blank: int) -> tuple[int, ...]:
    merged = [c for k, c in enumerate(path) if k == 0 or c != path[k - 1]]
    return tuple(c for c in merged if c != blank)


def label_probabilities(log_probs: np.ndarray, blank: int) -> dict[tuple[int, ...], float]:
    """Every labelling's probability, summed over all C^T paths: the brute-force reference."""
    n_frames, n_classes = log_probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(n_classes), repeat=n_frames):
        p = float(np.exp(log_probs[np.arange(n_frames), path].sum()))
        label = collapse(path, blank)
        totals[label] = totals.get(label, 0.0) + p
    return totals


def random_log_probs(rng: np.random.Generator, n_frames: int, n_classes: int, concentration: float) -> np.ndarray:
    return np.log(rng.dirichlet(np.full(n_classes, concentration), size=n_frames))


@pytest.mark.parametrize("seed", range(8))
def test_wide_beam_finds_the_most_probable_labelling(seed: int) -> None:
    rng = np.random.default_rng(seed)
    blank = 3
    log_probs = random_log_probs(rng, n_frames=6, n_classes=4, concentration=0.7)
    totals = label_probabilities(log_probs, blank)
    best_label, best_p = max(totals.items(), key=lambda item: item[1])
    assert sorted(totals.values())[-2] < best_p * (1 - 1e-9), "tie: the test would not be decisive"

    got = ctc_prefix_beam_search(log_probs, beam_width=len(totals), blank=blank)
    assert tuple(got.tolist()) == best_label
    assert got.dtype == np.int32


def test_beats_greedy_when_the_phrase_is_spread_over_paths() -> None:
    # each frame: blank 0.6, "a" 0.4. Best single path is blank-blank (""), 0.36; but "a" collects
    # a-a, a-blank, blank-a: 0.16 + 0.24 + 0.24 = 0.64.
    log_probs = np.log(np.array([[0.4, 0.6], [0.4, 0.6]]))
    (greedy,) = ctc_greedy_decode(log_probs[None], blank=1)
    assert greedy.tolist() == []
    assert ctc_prefix_beam_search(log_probs, beam_width=2, blank=1).tolist() == [0]


def test_doubled_letter_needs_a_blank_between() -> None:
    n_classes, blank = 4, 3
    sharp = np.full((5, n_classes), np.log(0.01))
    for t, c in enumerate([1, blank, 1, 1, 2]):
        sharp[t, c] = np.log(0.97)
    assert ctc_prefix_beam_search(sharp, beam_width=4, blank=blank).tolist() == [1, 1, 2]
    without_blank = sharp.copy()
    without_blank[1] = without_blank[0]
    assert ctc_prefix_beam_search(without_blank, beam_width=4, blank=blank).tolist() == [1, 2]


def test_confident_frames_give_the_greedy_answer_and_constants_change_nothing() -> None:
    rng = np.random.default_rng(5)
    n_frames, n_classes = 40, 60
    path = rng.integers(0, n_classes, size=n_frames)
    logits = rng.normal(0, 0.3, size=(n_frames, n_classes))
    logits[np.arange(n_frames), path] += 12.0
    (greedy,) = ctc_greedy_decode(logits[None])
    beam = ctc_prefix_beam_search(logits, beam_width=8)
    np.testing.assert_array_equal(beam, greedy)
    offsets = rng.normal(0, 50, size=(n_frames, 1))  # per-frame constants: every path gains the same
    np.testing.assert_array_equal(ctc_prefix_beam_search(logits + offsets, beam_width=8), beam)


def test_empty_and_all_blank_sequences_decode_to_nothing() -> None:
    assert ctc_prefix_beam_search(np.zeros((0, 5)), beam_width=3, blank=4).tolist() == []
    blanks = np.full((6, 5), -10.0)
    blanks[:, 4] = 0.0
    assert ctc_prefix_beam_search(blanks, beam_width=3, blank=4).tolist() == []


@pytest.mark.parametrize(
    ("log_probs", "beam_width", "blank"),
    [(np.zeros((3,)), 2, 0), (np.zeros((3, 4)), 0, 3), (np.zeros((3, 4)), 2, 4), (np.zeros((3, 4)), 2.5, 3)],
)
def test_bad_arguments_are_refused(log_probs: np.ndarray, beam_width, blank: int) -> None:
    with pytest.raises(ValueError):
        ctc_prefix_beam_search(log_probs, beam_width=beam_width, blank=blank)


def test_batch_phrases_follow_the_mask_and_the_character_map() -> None:
    character_map = packaged_map(CHARACTER_MAP_FILE)
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 0.2, size=(3, 12, 60))
    paths = rng.integers(0, 60, size=(3, 12))
    logits[np.arange(3)[:, None], np.arange(12)[None, :], paths] += 9.0
    mask = np.arange(12)[None, :] < np.array([[12], [7], [1]])
    beam = beam_search_phrases(logits, mask, character_map, beam_width=4)
    assert beam == decode_phrases(logits, mask, character_map)
    assert len(beam[2]) <= 1
