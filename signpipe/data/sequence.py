"""The in-memory unit every corpus reader yields, whatever the layout on disk."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LandmarkSequence:
    """One signed sequence: float32 frames `[T, P, 3]` (x, y, z) with its label and ids.

    `points` names which of the 543 landmarks the second axis holds (in that order), `None`
    meaning all 543. Missing landmarks (a hand MediaPipe did not find) are NaN.
    `label` is the phrase (fingerspelling) or the sign (isolated signs).
    """

    sequence_id: int
    participant_id: int
    label: str
    frames: np.ndarray
    points: tuple[int, ...] | None = None
    source: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])
