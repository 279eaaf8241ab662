"""What the phone and MediaPipe make of the 3-D scene: normalized coordinates and missed hands.

The scene lives in metres, in the signer's body frame (x towards the signer's left, which is the
image's right; y down; z away from the camera; origin between the shoulders). The camera maps it
like MediaPipe normalizes its landmarks:

    x_n = X / W + x0,   y_n = Y / H + y0,   z_n = (Z - Z_ref) / W,   H = W * y_scale

with (X, Y, Z) the point after the camera's small roll, W and H the width and height of the canvas
at the signer's distance, and Z_ref a per-part depth origin (the wrist for a hand, the head for the
face, the hips for the pose), as MediaPipe reports relative depth. Multiplying y_n by `y_scale`
therefore gives back coordinates proportional to metres on all three axes: the planted aspect
ratio that `landmarks` estimation has to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signpipe.data.synth.motion import smooth_noise
from signpipe.data.synth.rotation import euler_matrices, rotate_points


@dataclass(frozen=True)
class Camera:
    """One signer's recording setup."""

    width_m: float  #: canvas width at the signer's distance, metres
    y_scale: float  #: canvas height / width: the factor that restores square geometry
    origin_x: float  #: normalized image position of the point between the shoulders
    origin_y: float
    roll_deg: float  #: the phone's tilt about its viewing axis

    @property
    def height_m(self) -> float:
        return self.width_m * self.y_scale


def camera_shake(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """Normalized image offsets `[T, 2]` of a hand-held phone drifting slowly."""
    return smooth_noise(rng, n_frames, 2, knot_spacing=20.0, scale=0.004)


def to_camera(points: np.ndarray, camera: Camera) -> np.ndarray:
    """Body-frame points `[T, P, 3]` rotated by the camera's roll (still metres)."""
    roll = euler_matrices(np.array([0.0, 0.0, np.deg2rad(camera.roll_deg)]))
    return rotate_points(roll, points)


def normalize(points_cam: np.ndarray, camera: Camera, shake: np.ndarray, depth_origin: np.ndarray) -> np.ndarray:
    """MediaPipe-style coordinates `[T, P, 3]` from camera-frame points `[T, P, 3]`.

    `depth_origin` `[T, P]` is the camera-frame depth each point's z is measured from.
    """
    out = np.empty_like(points_cam)
    out[..., 0] = points_cam[..., 0] / camera.width_m + camera.origin_x + shake[:, None, 0]
    out[..., 1] = points_cam[..., 1] / camera.height_m + camera.origin_y + shake[:, None, 1]
    out[..., 2] = (points_cam[..., 2] - depth_origin) / camera.width_m
    return out


def detection_runs(
    rng: np.random.Generator, n_frames: int, miss_fraction: float, mean_miss_run: float = 2.5, max_miss_run: int = 6
) -> np.ndarray:
    """Which frames a detector finds the object in (bool `[T]`), missing it in short bursts.

    Alternating runs: found for a geometric number of frames, then missed for a short geometric
    number (capped at `max_miss_run`), with means set so about `miss_fraction` of frames are missed.
    Bursts rather than independent misses because that is how MediaPipe loses a hand (motion blur,
    occlusion), and so a character is rarely lost entirely.
    """
    if n_frames <= 0:
        return np.zeros(0, dtype=bool)
    if miss_fraction <= 0.0:
        return np.ones(n_frames, dtype=bool)
    mean_found_run = mean_miss_run * (1.0 - miss_fraction) / miss_fraction
    n_pairs = n_frames // 2 + 2  # every pair of runs spans at least two frames
    found = rng.geometric(min(1.0, 1.0 / mean_found_run), size=n_pairs)
    missed = np.minimum(rng.geometric(1.0 / mean_miss_run, size=n_pairs), max_miss_run)
    starts_missed = rng.random() < miss_fraction
    lengths = np.stack([missed, found] if starts_missed else [found, missed], axis=1).ravel()
    states = np.tile([not starts_missed, starts_missed], n_pairs)
    return np.repeat(states, lengths)[:n_frames]


def in_frame(points_n: np.ndarray, margin: float = 0.02) -> np.ndarray:
    """Frames `[T]` whose normalized points `[T, P, 3]` are centred inside the image."""
    centre = points_n[..., :2].mean(axis=-2)
    return np.all((centre > -margin) & (centre < 1.0 + margin), axis=-1)

