"""CTC forced alignment: the most likely path of a known phrase through a CTC model's outputs.

The phrase is what the video spells; the model's per-frame log-probabilities say when. The path
runs over the blank-interleaved label (`blank, c1, blank, c2, ..., cL, blank`, 2L + 1 states):
each frame sits on one state, a step either stays, moves to the next state, or skips a blank
between two different characters (CTC's rules; a blank between equal characters is mandatory,
which is why a doubled letter needs an extra frame). Viterbi keeps, per state, the best log-score
of any path ending there, and a back-pointer per frame and state; following the pointers back
from the better of the two final states (last character or trailing blank) gives the path.

Everything is vectorized over the batch and the states; only time is a loop, as the recursion
needs frame t - 1 before frame t. Sequences of different lengths share one padded batch: a padded
frame carries the scores through unchanged and a padded label position is a state no path enters.

A sequence with fewer frames than CTC needs for its phrase (`ctc_min_frames`) has no path at all:
it is flagged `impossible` (all frames blank, no spans) rather than left out, so callers can count
and report it. A path that exists but runs through frames the model gives little probability is
flagged `low_confidence`, with the two thresholds below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signpipe.data.schema import CTC_BLANK
from signpipe.errors import SignpipeError

DEFAULT_MIN_CONFIDENCE = 0.5
"""Mean probability, over a sequence's frames, of the class its path puts there: below this the
model mostly disagrees with the phrase. Blank frames dominate this mean, so it only catches
sequences the model cannot read at all."""
DEFAULT_MIN_CHARACTER_CONFIDENCE = 0.01
"""Mean probability of a character over its own frames: below this the model never saw that
character where the path puts it, the mark of a phrase that does not match the video. Measured
with a weak smoke-preset model (validation score 0.36) on its synthetic training set: it flags 16%
of the true phrases, 93% of phrases with one character replaced and 99% of other sequences'
phrases (0.05 would flag 39% of the true ones, and their alignments were no worse than the rest)."""

_STAY, _ADVANCE, _SKIP = 0, 1, 2


@dataclass(frozen=True)
class SequenceAlignment:
    """The forced alignment of one sequence."""

    frame_classes: np.ndarray
    """[T] int32: the character index or the blank at each frame (all blank when impossible)."""
    spans: np.ndarray
    """[L, 2] int32: first frame and end frame (exclusive) of each character on the path
    (-1 when impossible)."""
    character_confidence: np.ndarray
    """[L] float32: mean probability of each character over its span (NaN when impossible)."""
    confidence: float
    """Mean probability of the path's class over the frames (0 when impossible)."""
    path_log_prob: float
    """Log-probability of the whole path (-inf when impossible)."""
    impossible: bool
    low_confidence: bool


@dataclass(frozen=True)
class BatchAlignment:
    """Forced alignments of a padded batch; `sequence(b)` cuts out one of them."""

    frame_classes: np.ndarray
    """[B, T] int32, the blank at padded frames."""
    spans: np.ndarray
    """[B, L, 2] int32, -1 at padded label positions and for impossible sequences."""
    character_confidence: np.ndarray
    """[B, L] float32, NaN where `spans` is -1."""
    confidence: np.ndarray
    """[B] float32."""
    path_log_prob: np.ndarray
    """[B] float32."""
    impossible: np.ndarray
    """[B] bool."""
    low_confidence: np.ndarray
    """[B] bool (never set for impossible sequences, which are flagged as such)."""
    frame_lengths: np.ndarray
    label_lengths: np.ndarray

    def __len__(self) -> int:
        return int(self.frame_classes.shape[0])

    def sequence(self, index: int) -> SequenceAlignment:
        n_frames, n_characters = int(self.frame_lengths[index]), int(self.label_lengths[index])
        return SequenceAlignment(
            frame_classes=self.frame_classes[index, :n_frames].copy(),
            spans=self.spans[index, :n_characters].copy(),
            character_confidence=self.character_confidence[index, :n_characters].copy(),
            confidence=float(self.confidence[index]),
            path_log_prob=float(self.path_log_prob[index]),
            impossible=bool(self.impossible[index]),
            low_confidence=bool(self.low_confidence[index]),
        )


def _check_shapes(log_probs: np.ndarray, frame_lengths: np.ndarray, labels: np.ndarray, label_lengths: np.ndarray) -> None:
    if log_probs.ndim != 3:
        raise SignpipeError(f"forced alignment: expected log-probabilities [B, T, C], got shape {log_probs.shape}")
    batch, n_frames, n_classes = log_probs.shape
    if labels.ndim != 2 or labels.shape[0] != batch:
        raise SignpipeError(f"forced alignment: expected labels [B={batch}, L], got shape {labels.shape}")
    if frame_lengths.shape != (batch,) or label_lengths.shape != (batch,):
        raise SignpipeError(
            f"forced alignment: expected frame_lengths and label_lengths of shape ({batch},), "
            f"got {frame_lengths.shape} and {label_lengths.shape}"
        )
    if batch and (frame_lengths.min() < 1 or frame_lengths.max() > n_frames):
        raise SignpipeError(f"forced alignment: frame lengths must be in [1, {n_frames}], got {frame_lengths.tolist()}")
    if batch and (label_lengths.min() < 0 or label_lengths.max() > labels.shape[1]):
        raise SignpipeError(
            f"forced alignment: label lengths must be in [0, {labels.shape[1]}], got {label_lengths.tolist()}"
        )
    real_labels = labels[np.arange(labels.shape[1])[None, :] < label_lengths[:, None]]
    if real_labels.size and (real_labels.min() < 0 or real_labels.max() >= n_classes):
        raise SignpipeError(
            f"forced alignment: label indices must be in [0, {n_classes}), got {real_labels.min()}..{real_labels.max()}"
        )


def ctc_forced_align(
    log_probs: np.ndarray,
    frame_lengths: np.ndarray,
    labels: np.ndarray,
    label_lengths: np.ndarray,
    *,
    blank: int = CTC_BLANK,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    min_character_confidence: float = DEFAULT_MIN_CHARACTER_CONFIDENCE,
) -> BatchAlignment:
    """Viterbi-align each phrase of a batch to its frames.

    log_probs [B, T, C]: the model's per-frame log-probabilities (raw logits work too: they are
    log-softmax normalized here, a no-op for log-probabilities). frame_lengths [B]: real frames
    per sequence. labels [B, L] int with label_lengths [B]: the phrases as class indices.
    """
    log_probs = np.asarray(log_probs, dtype=np.float32)
    frame_lengths = np.asarray(frame_lengths, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    label_lengths = np.asarray(label_lengths, dtype=np.int64)
    _check_shapes(log_probs, frame_lengths, labels, label_lengths)
    log_probs = log_probs - _logsumexp(log_probs)
    batch, n_frames, _ = log_probs.shape
    rows = np.arange(batch)
    n_states = 2 * labels.shape[1] + 1

    # the blank-interleaved label, and which states a path may use and jump between
    states = np.full((batch, n_states), blank, dtype=np.int64)
    states[:, 1::2] = labels
    state_lengths = 2 * label_lengths + 1
    valid_state = np.arange(n_states)[None, :] < state_lengths[:, None]
    may_skip = np.zeros((batch, n_states), dtype=bool)
    may_skip[:, 3::2] = labels[:, 1:] != labels[:, :-1]  # c_{i-1} -> c_i over the blank when they differ
    may_skip &= valid_state

    emissions = np.take_along_axis(log_probs, states[:, None, :], axis=2)  # [B, T, S]
    score = np.full((batch, n_states), -np.inf, dtype=np.float32)
    score[:, 0] = emissions[:, 0, 0]
    if n_states > 1:
        score[:, 1] = np.where(label_lengths > 0, emissions[:, 0, 1], -np.inf)
    back = np.zeros((n_frames, batch, n_states), dtype=np.int8)
    for t in range(1, n_frames):
        advance = _shifted_right(score, 1)
        skip = np.where(may_skip, _shifted_right(score, 2), -np.inf)
        candidates = np.stack([score, advance, skip])  # order = _STAY, _ADVANCE, _SKIP; ties keep the earlier move
        choice = candidates.argmax(axis=0)
        stepped = np.where(valid_state, candidates.max(axis=0) + emissions[:, t], -np.inf)
        active = (t < frame_lengths)[:, None]
        score = np.where(active, stepped, score)
        back[t] = np.where(active, choice, _STAY)

    # the path ends on the last character or on the blank after it
    last_blank = state_lengths - 1
    last_character = np.maximum(state_lengths - 2, 0)
    end_scores = np.stack([score[rows, last_blank], score[rows, last_character]], axis=1)
    path_log_prob = end_scores.max(axis=1)
    impossible = ~np.isfinite(path_log_prob)
    state = np.where(end_scores[:, 0] >= end_scores[:, 1], last_blank, last_character)

    # follow the back-pointers; padded frames sit past the last state so each row stays sorted
    path = np.full((batch, n_frames), n_states, dtype=np.int64)
    for t in range(n_frames - 1, -1, -1):
        active = t < frame_lengths
        path[:, t] = np.where(active, state, n_states)
        state = np.where(active, state - back[t, rows, state], state)

    real_frame = np.arange(n_frames)[None, :] < frame_lengths[:, None]
    on_path = np.minimum(path, n_states - 1)
    frame_classes = np.where(real_frame, np.take_along_axis(states, on_path, axis=1), blank)
    frame_log_probs = np.take_along_axis(emissions, on_path[:, :, None], axis=2)[:, :, 0]
    frame_probs = np.where(real_frame, np.exp(frame_log_probs), 0.0)
    confidence = frame_probs.sum(axis=1) / frame_lengths

    spans, character_confidence = _character_spans(path, frame_probs, label_lengths, n_states)
    frame_classes = np.where(impossible[:, None], blank, frame_classes)
    spans[impossible] = -1
    character_confidence[impossible] = np.nan
    confidence = np.where(impossible, 0.0, confidence)
    weakest = np.min(np.where(np.isnan(character_confidence), np.inf, character_confidence), axis=1, initial=np.inf)
    low_confidence = ~impossible & ((confidence < min_confidence) | (weakest < min_character_confidence))
    return BatchAlignment(
        frame_classes=frame_classes.astype(np.int32),
        spans=spans,
        character_confidence=character_confidence,
        confidence=confidence.astype(np.float32),
        path_log_prob=path_log_prob.astype(np.float32),
        impossible=impossible,
        low_confidence=low_confidence,
        frame_lengths=frame_lengths,
        label_lengths=label_lengths,
    )


def _shifted_right(score: np.ndarray, by: int) -> np.ndarray:
    """score[:, s - by] at state s: where a path arriving by `by` states comes from."""
    shifted = np.full_like(score, -np.inf)
    shifted[:, by:] = score[:, : score.shape[1] - by]
    return shifted


def _logsumexp(log_probs: np.ndarray) -> np.ndarray:
    top = log_probs.max(axis=-1, keepdims=True)
    return top + np.log(np.exp(log_probs - top).sum(axis=-1, keepdims=True))


def _character_spans(
    path: np.ndarray, frame_probs: np.ndarray, label_lengths: np.ndarray, n_states: int
) -> tuple[np.ndarray, np.ndarray]:
    """First/end frame of each character state on the path, and its mean probability there.

    Each row of `path` is non-decreasing, so shifting row b by b * (n_states + 1) makes the whole
    batch one sorted array and a single `searchsorted` finds every character's frames.
    """
    batch, n_frames = path.shape
    n_labels = (n_states - 1) // 2
    offsets = np.arange(batch)[:, None] * (n_states + 1)
    flat = (path + offsets).ravel()
    character_states = 2 * np.arange(n_labels)[None, :] + 1 + offsets
    row_start = np.arange(batch)[:, None] * n_frames
    starts = np.searchsorted(flat, character_states, side="left") - row_start
    ends = np.searchsorted(flat, character_states, side="right") - row_start
    real = np.arange(n_labels)[None, :] < label_lengths[:, None]
    spans = np.where(real[:, :, None], np.stack([starts, ends], axis=-1), -1).astype(np.int32)
    cumulative = np.concatenate([np.zeros((batch, 1)), np.cumsum(frame_probs, axis=1)], axis=1)
    span_sums = np.take_along_axis(cumulative, np.clip(ends, 0, n_frames), axis=1) - np.take_along_axis(
        cumulative, np.clip(starts, 0, n_frames), axis=1
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = span_sums / (ends - starts)
    return spans, np.where(real, mean, np.nan).astype(np.float32)


def character_segments(spans: np.ndarray, n_frames: int) -> np.ndarray:
    """[L, 2] segments that tile the characters' stretch of the sequence without gaps.

    A CTC model fires each character on a frame or two and fills the rest with blanks, so the
    path's spans are narrow spikes; a character actually lasts from about its spike to the next
    one. Each blank run between two characters is split at its middle, the first character
    starts at its first frame and the last one ends at its last frame (the frames before and
    after are the hand rising and lowering). `spans` [L, 2] as in `SequenceAlignment`.
    """
    spans = np.asarray(spans, dtype=np.int64)
    if spans.size == 0 or spans.min() < 0:
        return spans.copy()
    if spans.max() > n_frames:
        raise SignpipeError(f"character segments: spans reach frame {spans.max()}, past the {n_frames} frames")
    middles = (spans[:-1, 1] + spans[1:, 0] + 1) // 2
    starts = np.concatenate([spans[:1, 0], middles])
    ends = np.concatenate([middles, spans[-1:, 1]])
    return np.stack([starts, ends], axis=1)
