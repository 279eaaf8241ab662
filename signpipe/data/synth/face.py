"""A 468-point face mesh whose lips sit at MediaPipe's indices and move a little.

Only some indices of MediaPipe's mesh matter downstream: the 40 lip points (REFERENCE.md section
2) that the 5th place recipe feeds its model, and the landmarks the pose model shares with the
face (nose, eyes, mouth corners). Those are placed where MediaPipe puts them. The other points are
spread over the front of an ellipsoidal head with a nose, so the mesh occupies a face-sized,
face-shaped region; their exact index-to-place correspondence is not MediaPipe's.

Head frame, metres: x towards the signer's left (image right), y down, z away from the camera,
origin at the centre of the head.
"""

from __future__ import annotations

import functools

import numpy as np

N_FACE = 468
#: The lip points the recipe uses (REFERENCE.md section 2), in its order.
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269, 270,
        291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)  # fmt: skip
# MediaPipe's four lip contours, each from the signer's right mouth corner (image left) to the left.
UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

NOSE_TIP = 1
CHIN = 152
FOREHEAD = 10
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER = 33, 133, 159, 145
LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_EYE_UPPER, LEFT_EYE_LOWER = 263, 362, 386, 374

_HALF_WIDTH, _HALF_HEIGHT, _DEPTH = 0.075, 0.095, 0.095  # ellipsoid of the face surface
_MOUTH_Y, _MOUTH_HALF_WIDTH = 0.050, 0.026
#: Landmarks placed by hand (x, y); depth comes from the face surface.
_NAMED = {
    NOSE_TIP: (0.0, 0.024), 4: (0.0, 0.015), 5: (0.0, 0.003), 6: (0.0, -0.016), 168: (0.0, -0.026),
    2: (0.0, 0.032), 94: (0.0, 0.035), 19: (0.0, 0.028), CHIN: (0.0, 0.091), FOREHEAD: (0.0, -0.088),
    RIGHT_EYE_OUTER: (-0.045, -0.018), RIGHT_EYE_INNER: (-0.015, -0.018), RIGHT_EYE_UPPER: (-0.030, -0.024),
    RIGHT_EYE_LOWER: (-0.030, -0.012), LEFT_EYE_OUTER: (0.045, -0.018), LEFT_EYE_INNER: (0.015, -0.018),
    LEFT_EYE_UPPER: (0.030, -0.024), LEFT_EYE_LOWER: (0.030, -0.012),
    234: (-0.072, 0.000), 454: (0.072, 0.000), 172: (-0.055, 0.065), 397: (0.055, 0.065),
}  # fmt: skip


def _surface_depth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth of the face surface (negative: towards the camera) with a nose and sunken eyes."""
    r2 = np.clip((x / _HALF_WIDTH) ** 2 + (y / _HALF_HEIGHT) ** 2, 0.0, 0.97)
    z = -_DEPTH * np.sqrt(1.0 - r2)
    z -= 0.026 * np.exp(-((x / 0.013) ** 2) - ((y - 0.010) / 0.025) ** 2)  # nose
    for eye_x in (-0.030, 0.030):  # sunken eyes
        z += 0.007 * np.exp(-((x - eye_x) ** 2 + (y + 0.018) ** 2) / 0.015**2)
    z -= 0.006 * np.exp(-((x / 0.03) ** 2) - ((y - _MOUTH_Y) / 0.015) ** 2)  # lips stand out
    return z


def _lip_contours() -> dict[int, tuple[float, float]]:
    s = np.linspace(-1.0, 1.0, 11)
    bulge = (1.0 - s**2) ** 0.6
    points: dict[int, tuple[float, float]] = {}
    contours = (
        (UPPER_OUTER, 1.0, _MOUTH_Y - 0.010 * bulge + 0.002 * np.exp(-(s / 0.15) ** 2)),  # cupid's bow dip
        (LOWER_OUTER, 1.0, _MOUTH_Y + 0.012 * bulge),
        (UPPER_INNER, 0.82, _MOUTH_Y - 0.0015 * bulge),
        (LOWER_INNER, 0.82, _MOUTH_Y + 0.0015 * bulge),
    )
    for indices, width, ys in contours:
        for index, x, y in zip(indices, s * _MOUTH_HALF_WIDTH * width, ys):
            points[index] = (float(x), float(y))
    return points


@functools.cache
def face_template() -> np.ndarray:
    """The neutral face `[468, 3]` in the head frame (read-only)."""
    placed = {**_NAMED, **_lip_contours()}
    free = [i for i in range(N_FACE) if i not in placed]
    placed_xy = np.array(list(placed.values()))
    # Sunflower spiral over the face ellipse (even coverage, no randomness), minus the mouth opening
    # and whatever lies within 4 mm of a placed landmark; grown until enough points are left.
    n_spiral = N_FACE
    while True:
        k = np.arange(n_spiral)
        radius = np.sqrt((k + 0.5) / n_spiral)
        angle = k * np.pi * (3.0 - np.sqrt(5.0))
        x = 0.97 * _HALF_WIDTH * radius * np.cos(angle)
        y = 0.97 * _HALF_HEIGHT * radius * np.sin(angle)
        in_mouth = ((x / (_MOUTH_HALF_WIDTH * 0.8)) ** 2 + ((y - _MOUTH_Y) / 0.004) ** 2) < 1.0
        near = np.hypot(x[:, None] - placed_xy[:, 0], y[:, None] - placed_xy[:, 1]).min(axis=1) < 0.004
        keep = np.flatnonzero(~in_mouth & ~near)
        if len(keep) >= len(free):
            break
        n_spiral += 16
    keep = keep[: len(free)]
    xy = np.zeros((N_FACE, 2))
    xy[free] = np.stack([x[keep], y[keep]], axis=1)
    for index, point in placed.items():
        xy[index] = point
    template = np.concatenate([xy, _surface_depth(xy[:, 0], xy[:, 1])[:, None]], axis=1)
    template.setflags(write=False)
    return template


@functools.cache
def _jaw_weights() -> np.ndarray:
    """How far each point drops when the mouth opens by one unit: lower lips and chin follow the jaw."""
    template = face_template()
    weights = np.clip((template[:, 1] - _MOUTH_Y) / 0.02, 0.0, 1.0) * 0.8
    s = np.linspace(-1.0, 1.0, 11)
    weights[list(LOWER_OUTER)] = np.sqrt(1.0 - s**2)
    weights[list(LOWER_INNER)] = np.sqrt(1.0 - s**2)
    weights.setflags(write=False)
    return weights


def face_points(head_position: np.ndarray, head_rotation: np.ndarray, mouth_opening: np.ndarray) -> np.ndarray:
    """Face landmarks `[T, 468, 3]` (body frame) for a head at `[T, 3]`, rotated `[T, 3, 3]`.

    `mouth_opening` `[T]` (metres) lowers the lower lip and the chin, as when mouthing words.
    """
    rotated = face_template() @ np.swapaxes(head_rotation, -1, -2)  # [T, 468, 3]
    # the jaw drops along the head's own y axis: column 1 of its rotation
    rotated += (mouth_opening[:, None] * _jaw_weights())[..., None] * head_rotation[:, None, :, 1]
    return rotated + head_position[:, None, :]
