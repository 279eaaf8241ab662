"""Transforms that hide or corrupt part of a sequence, so the model learns to do without it.

Each one hits a share `ratio` of frames (or points) chosen without replacement, floor(ratio * n + u)
of them with u uniform in [0, 1): the expected share is exactly `ratio`, and one draw is never
further than one item from it (independent coin flips per frame would scatter widely on short
sequences).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signpipe.errors import ConfigError
from signpipe.landmarks.augment.sample import Sample
from signpipe.landmarks.augment.transform import Transform, require_in_range


def choose_share(rng: np.random.Generator, n_items: int, ratio: float) -> np.ndarray:
    """`[n_items]` bool with floor(ratio * n_items + u) entries true, at random places."""
    count = min(int(ratio * n_items + rng.random()), n_items)
    chosen = np.zeros(n_items, dtype=bool)
    chosen[rng.choice(n_items, size=count, replace=False)] = True
    return chosen


@dataclass(frozen=True)
class FrameBlockMask(Transform):
    """Hide blocks of `block_size` consecutive frames, `ratio` of the frames in all.

    Blocks, not single frames: a lone missing frame is easy to infer from its two neighbours, a gap
    of several frames has to be bridged from context. The frames are cut into a grid of blocks at a
    random phase and `ratio` of the blocks are hidden (written NaN), so every frame is hidden with
    probability `ratio`; chosen neighbours merge into longer gaps. (The seed drew block centres
    with probability ratio / block_size each; overlaps made it hide less than asked: about 61%
    for ratio 0.8.)
    """

    ratio: float = 0.1
    block_size: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        require_in_range(self, "ratio", self.ratio, 0.0, 1.0)
        if self.block_size < 1:
            raise ConfigError(f"FrameBlockMask: block_size must be >= 1, got {self.block_size}")

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        block_of_frame = (np.arange(sample.n_frames) + rng.integers(self.block_size)) // self.block_size
        hidden = choose_share(rng, int(block_of_frame[-1]) + 1, self.ratio)[block_of_frame]
        points = sample.points.copy()
        points[hidden] = np.nan
        return sample.with_points(points)


@dataclass(frozen=True)
class FrameNoise(Transform):
    """Corrupt `ratio` of the frames with Gaussian noise of `noise_stdev`.

    `replace=True` (the seed's) swaps the present points of those frames for pure noise: garbage
    frames the model must learn to discount, as a tracker glitch produces. `replace=False` adds the
    noise instead (jitter). Missing points stay missing either way: noise must not invent a hand.
    """

    ratio: float = 0.1
    noise_stdev: float = 1.0
    replace: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        require_in_range(self, "ratio", self.ratio, 0.0, 1.0)
        require_in_range(self, "noise_stdev", self.noise_stdev, 0.0, np.inf)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        frames = np.flatnonzero(choose_share(rng, sample.n_frames, self.ratio))
        if frames.size == 0:
            return sample
        points = sample.points.copy()
        selected = points[frames]
        noise = rng.standard_normal(size=selected.shape, dtype=np.float32) * np.float32(self.noise_stdev)
        # 0 * NaN is NaN: missing points stay missing in both modes
        points[frames] = selected * 0 + noise if self.replace else selected + noise
        return sample.with_points(points)


@dataclass(frozen=True)
class FeatureMask(Transform):
    """Hide `ratio` of the points (all three coordinates, every frame), written NaN.

    Whole points rather than single coordinates: a point with one coordinate missing counts as
    missing anyway, and a model that cannot rely on any one landmark spreads its attention.
    """

    ratio: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        require_in_range(self, "ratio", self.ratio, 0.0, 1.0)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        hidden = choose_share(rng, sample.points.shape[1], self.ratio)
        points = sample.points.copy()
        points[:, hidden] = np.nan
        return sample.with_points(points)
