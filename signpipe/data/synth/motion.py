"""Smooth random time curves: the slow drifts, sways and tremors every real signer shows.

A landmark stream whose hand, head and camera hold perfectly still between characters would let
a model key on artefacts; these curves make every sequence move a little, continuously.
"""

from __future__ import annotations

import numpy as np


def smoothstep(u: np.ndarray) -> np.ndarray:
    """Ease-in/ease-out weight in [0, 1]: starts and ends with zero velocity, as limbs do."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def smooth_noise(
    rng: np.random.Generator, n_frames: int, n_channels: int, knot_spacing: float, scale: float | np.ndarray
) -> np.ndarray:
    """Random curves `[n_frames, n_channels]` with std `scale` that change over ~`knot_spacing` frames.

    Gaussian values at knots `knot_spacing` frames apart, eased between knots; a random phase keeps
    the knots from falling on the same frames in every sequence.
    """
    spacing = max(float(knot_spacing), 1.0)
    n_knots = int(np.ceil(n_frames / spacing)) + 2
    knots = rng.normal(size=(n_knots, n_channels)) * np.asarray(scale, dtype=np.float64)
    t = np.arange(n_frames) / spacing + rng.uniform(0.0, 1.0)
    lower = np.floor(t).astype(np.int64)
    w = smoothstep(t - lower)[:, None]
    return knots[lower] * (1.0 - w) + knots[lower + 1] * w
