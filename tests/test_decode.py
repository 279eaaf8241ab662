"""Greedy CTC decoding: repeats merged, blanks dropped, padding ignored, phrases through the map."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from signpipe.data.schema import CHARACTER_MAP_FILE, CTC_BLANK, packaged_map
from signpipe.fingerspelling.decode import (
    character_table,
    ctc_greedy_decode,
    decode_phrases,
    greedy_keep_mask,
    indices_to_phrase,
)

B = CTC_BLANK


def one_hot_logits(paths: list[list[int]], length: int, n_classes: int = CTC_BLANK + 1) -> np.ndarray:
    logits = np.zeros((len(paths), length, n_classes), np.float32)
    for b, path in enumerate(paths):
        padded = path + [B] * (length - len(path))
        logits[b, np.arange(length), padded] = 5.0
    return logits


def test_repeats_merge_and_blanks_separate():
    (decoded,) = ctc_greedy_decode(np.array([[1, 1, B, 1, 2, 2, B, B, 3]]))
    np.testing.assert_array_equal(decoded, [1, 1, 2, 3])


def test_padding_is_never_emitted():
    indices = np.array([[4, 4, 5, 7, 7], [B, 6, B, 8, 9]])
    mask = np.array([[True, True, True, False, False], [True, True, True, True, False]])
    first, second = ctc_greedy_decode(indices, mask)
    np.testing.assert_array_equal(first, [4, 5])
    np.testing.assert_array_equal(second, [6, 8])


def test_logits_and_indices_decode_alike_and_empty_rows_stay_empty():
    logits = one_hot_logits([[3, 3, B, 2], [], [B, B]], length=6)
    from_logits = ctc_greedy_decode(logits)
    from_indices = ctc_greedy_decode(logits.argmax(-1))
    assert [r.tolist() for r in from_logits] == [r.tolist() for r in from_indices] == [[3, 2], [], []]


def test_keep_mask_numpy_and_jax_agree():
    rng = np.random.default_rng(0)
    indices = rng.choice([0, 1, 2, B], size=(4, 20))
    mask = np.arange(20)[None, :] < np.array([[20], [13], [1], [0]])
    expected = greedy_keep_mask(indices, mask)
    actual = np.asarray(greedy_keep_mask(jnp.asarray(indices), jnp.asarray(mask), xp=jnp))
    np.testing.assert_array_equal(expected, actual)
    # reference: a Python loop over the rule
    for b in range(4):
        previous = -1
        for t in range(20):
            want = bool(mask[b, t]) and indices[b, t] != previous and indices[b, t] != B
            assert expected[b, t] == want
            previous = indices[b, t]


def test_phrases_round_trip_through_the_character_map():
    character_map = packaged_map(CHARACTER_MAP_FILE)
    phrases = ["hello world", "1-800-555-0199", "www.a.com/b", "ll"]
    paths = []
    for phrase in phrases:
        path = []
        for k, c in enumerate(phrase):
            if k and phrase[k - 1] == c:
                path.append(B)  # a doubled letter needs a blank between its frames
            path += [character_map[c]] * 2
        paths.append(path)
    length = max(map(len, paths)) + 3
    assert decode_phrases(one_hot_logits(paths, length), None, character_map) == phrases


def test_unknown_indices_give_nothing():
    table = character_table({"a": 0, "b": 1})
    assert indices_to_phrase([0, 1, 59, 7, 0], table) == "aba"
    assert indices_to_phrase([], table) == ""
