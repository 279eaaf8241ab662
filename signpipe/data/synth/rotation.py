"""Rotation matrices for whole time series at once.

The generator rotates every hand, head and camera frame by frame; building the matrices for all
frames in one call keeps sequence rendering free of Python loops.
"""

from __future__ import annotations

import numpy as np


def euler_matrices(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices `[..., 3, 3]` from angles `[..., 3]` in radians about x, then y, then z.

    `R = Rz(angles[..., 2]) @ Ry(angles[..., 1]) @ Rx(angles[..., 0])`, all about the axes of the
    frame the matrix maps from, so small angles read as independent tilts about each axis.
    """
    angles = np.asarray(angles, dtype=np.float64)
    ca, cb, cc = np.cos(angles[..., 0]), np.cos(angles[..., 1]), np.cos(angles[..., 2])
    sa, sb, sc = np.sin(angles[..., 0]), np.sin(angles[..., 1]), np.sin(angles[..., 2])
    rows = (
        (cb * cc, sa * sb * cc - ca * sc, ca * sb * cc + sa * sc),
        (cb * sc, sa * sb * sc + ca * cc, ca * sb * sc - sa * cc),
        (-sb, sa * cb, ca * cb),
    )
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def rotate_points(rotation: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply per-frame rotations `[T, 3, 3]` (or one `[3, 3]`) to points `[T, P, 3]`."""
    return points @ np.swapaxes(rotation, -1, -2)
