"""When each character of a fingerspelled phrase is formed: holds joined by eased transitions.

A phrase is a chain of keys: the relaxed hand, the n characters, the relaxed hand again. Each key
is held for some frames and then blended into the next one over a few frames (co-articulation:
between two characters the hand is partly both). `phase` is the key coordinate per frame: an
integer during a hold, fractional during a transition. A character "dominates" a frame when its
blend weight is at least one half; those frames are its ground-truth span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signpipe.data.synth.motion import smoothstep


@dataclass(frozen=True, eq=False)
class Timeline:
    phase: np.ndarray  #: `[T]` float, 0 = rest before, 1..n = characters, n + 1 = rest after
    dominant: np.ndarray  #: `[T]` int, the key with the larger blend weight
    spans: np.ndarray  #: `[n, 2]` int, start and end (exclusive) frame of each character
    progress: np.ndarray  #: `[T]` float in (0, 1): position within the dominant character's span

    @property
    def n_frames(self) -> int:
        return len(self.phase)


def character_timeline(
    n_characters: int, frames_per_character: float, rng: np.random.Generator, hold_fraction: float = 0.55
) -> Timeline:
    """A timeline for `n_characters` at about `frames_per_character` frames each.

    Each character lasts `frames_per_character * exp(N(0, 0.25))` frames (at least 2), of which
    about `hold_fraction` are held (at least 1, so every character dominates a frame) and the rest
    blend into the next key. The rest poses before and after take 0-2 held frames and 0-3 blend
    frames, so some sequences start or end mid-character, as cut recordings do.
    """
    n = n_characters
    durations = np.maximum(2, np.rint(frames_per_character * np.exp(rng.normal(0.0, 0.25, n)))).astype(np.int64)
    holds = np.clip(np.rint(durations * hold_fraction), 1, durations - 1).astype(np.int64)
    hold = np.concatenate([[rng.integers(0, 3)], holds, [rng.integers(0, 3)]])
    blend = np.concatenate([[rng.integers(0, 4)], durations - holds, [0]])
    blend[n] = rng.integers(0, 4)  # the last character blends into the rest pose, or the clip ends
    lengths = np.stack([hold, blend], axis=1).ravel()[:-1]  # hold0, blend0, hold1, ..., hold_{n+1}
    n_frames = int(lengths.sum())
    segment = np.repeat(np.arange(len(lengths)), lengths)
    offset = np.arange(n_frames) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    key = segment // 2
    in_blend = segment % 2 == 1
    weight = smoothstep((offset + 1.0) / (blend[key] + 1.0))
    phase = key + np.where(in_blend, weight, 0.0)
    dominant = np.floor(phase + 0.5).astype(np.int64)
    keys = np.arange(1, n + 1)
    spans = np.stack([np.searchsorted(dominant, keys, "left"), np.searchsorted(dominant, keys, "right")], axis=1)
    span_of_frame = np.clip(dominant - 1, 0, max(n - 1, 0))
    start, end = spans[span_of_frame, 0], spans[span_of_frame, 1]
    progress = (np.arange(n_frames) - start + 0.5) / np.maximum(end - start, 1)
    is_character = (dominant >= 1) & (dominant <= n)
    return Timeline(phase, dominant, spans, np.where(is_character, progress, np.nan))


def blend_keys(keys: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Per-frame values `[T, D]` linearly blended between key rows `[K, D]` at `phase` `[T]`."""
    lower = np.clip(np.floor(phase).astype(np.int64), 0, len(keys) - 1)
    upper = np.minimum(lower + 1, len(keys) - 1)
    w = (phase - lower)[:, None]
    return keys[lower] * (1.0 - w) + keys[upper] * w
