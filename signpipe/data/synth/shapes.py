"""The synthetic alphabet: one hand shape (and, for a few, a motion) per character of the map.

The alphabet is a constant of the package, identical for every corpus seed, so a model trained on
one synthetic corpus reads another. Letters and digits follow the American manual alphabet and
number signs (closely enough to look like hands, not claimed exact); the 23 other characters of
the competition's map have no standard hand shape, so they get shapes drawn once from
`ALPHABET_SEED`, each accepted only if it stays `MIN_SHAPE_DISTANCE` away from every other shape.

A shape vector (`SHAPE_DIMS` = 23 numbers, degrees) is the hand's 20 joint angles (`hand.py`)
followed by its orientation relative to the signer's neutral spelling pose: pitch about the radial
axis (fingers tip towards the camera), roll about the distal axis (palm turns towards the body),
yaw about the palm normal (fingers lean towards the little-finger side).
"""

from __future__ import annotations

import functools

import numpy as np

from signpipe.data.schema import CHARACTER_MAP_FILE, packaged_map
from signpipe.data.synth.hand import AVERAGE_HAND, HAND_LENGTH, N_ANGLES, pose_hand
from signpipe.data.synth.rotation import euler_matrices, rotate_points

SHAPE_DIMS = N_ANGLES + 3
#: Fixed seed of the shapes that are not letters or digits (never the corpus seed).
ALPHABET_SEED = 59_2023
#: Smallest shape distance (`shape_distances`, hand lengths) allowed between two characters; a
#: few degrees of per-occurrence variation move a joint by about 0.1.
MIN_SHAPE_DISTANCE = 0.25

# Finger states (MCP flexion, abduction, PIP, DIP) and thumb states (CMC azimuth, CMC elevation,
# MCP, IP); abduction is towards the thumb, so spreading is + for the index, - for ring and pinky.
STRAIGHT = (0, 0, 0, 0)
CURLED = (85, 0, 100, 60)
CURVED = (35, 0, 45, 20)
HOOKED = (15, 0, 95, 60)
THUMB_SIDE = (12, 5, 5, 0)
THUMB_OUT = (80, 5, 0, 0)
THUMB_ACROSS = (-25, 45, 30, 20)
THUMB_TUCKED = (-40, 30, 25, 25)


def _shape(thumb, index, middle, ring, pinky, orientation=(0, 0, 0)) -> np.ndarray:
    return np.array([*thumb, *index, *middle, *ring, *pinky, *orientation], dtype=np.float64)


_SIDEWAYS = (0, 90, -80)  # fingers point across the body, palm towards the signer
_PALM_IN = (0, 165, 0)  # number signs 0-5: palm towards the signer
_PALM_SIDE = (0, 60, 0)

_LETTERS_AND_DIGITS: dict[str, np.ndarray] = {
    "a": _shape(THUMB_SIDE, CURLED, CURLED, CURLED, CURLED),
    "b": _shape((-30, 40, 35, 25), (0, -5, 0, 0), STRAIGHT, (0, 4, 0, 0), (0, 10, 0, 0)),
    "c": _shape((50, 40, 10, 5), (25, 0, 35, 15), (25, 0, 35, 15), (25, 0, 35, 15), (25, 0, 35, 15), (0, -70, 0)),
    "d": _shape((-5, 55, 25, 15), STRAIGHT, (45, 0, 70, 40), (45, 0, 70, 40), (45, 0, 70, 40)),
    "e": _shape((-30, 25, 50, 45), (15, 0, 105, 80), (15, 0, 105, 80), (15, 0, 105, 80), (15, 0, 105, 80)),
    "f": _shape((20, 45, 15, 20), (40, 0, 55, 35), (0, 2, 0, 0), (0, -8, 0, 0), (0, -16, 0, 0)),
    "g": _shape((20, 15, 0, 0), STRAIGHT, CURLED, CURLED, CURLED, _SIDEWAYS),
    "h": _shape((-10, 40, 25, 20), (0, -4, 0, 0), (0, 3, 0, 0), CURLED, CURLED, _SIDEWAYS),
    "i": _shape(THUMB_ACROSS, CURLED, CURLED, CURLED, STRAIGHT),
    "j": _shape(THUMB_ACROSS, CURLED, CURLED, CURLED, STRAIGHT, (0, 70, 0)),
    "k": _shape((5, 45, 0, 0), STRAIGHT, (35, 0, 0, 0), CURLED, CURLED),
    "l": _shape(THUMB_OUT, STRAIGHT, CURLED, CURLED, CURLED),
    "m": _shape((-50, 25, 30, 30), (50, 0, 70, 30), (50, 0, 70, 30), (50, 0, 70, 30), CURLED, (20, 0, 0)),
    "n": _shape((-20, 35, 20, 15), (55, 0, 60, 30), (55, 0, 60, 30), CURLED, CURLED, (25, 0, 0)),
    "o": _shape((10, 65, 30, 30), (55, 0, 70, 45), (55, 0, 70, 45), (55, 0, 70, 45), (55, 0, 70, 45), (0, -40, 0)),
    "p": _shape((5, 45, 0, 0), STRAIGHT, (35, 0, 0, 0), CURLED, CURLED, (120, 0, 0)),
    "q": _shape((20, 15, 0, 0), STRAIGHT, CURLED, CURLED, CURLED, (140, 60, 0)),
    "r": _shape((-20, 40, 30, 20), (0, -12, 0, 0), (20, 25, 15, 0), CURLED, CURLED),
    "s": _shape((-30, 55, 20, 5), (85, 0, 105, 65), (85, 0, 105, 65), (85, 0, 105, 65), (85, 0, 105, 65)),
    "t": _shape((10, 40, 0, 0), (60, 0, 95, 45), CURLED, CURLED, CURLED),
    "u": _shape(THUMB_ACROSS, (0, -6, 0, 0), (0, 6, 0, 0), CURLED, CURLED),
    "v": _shape((-15, 50, 25, 30), (5, 24, 0, 0), (5, -22, 0, 0), CURLED, CURLED),
    "w": _shape((-35, 45, 30, 30), (0, 12, 0, 0), STRAIGHT, (0, -12, 0, 0), (55, 0, 60, 40)),
    "x": _shape((-20, 40, 30, 20), (0, 0, 85, 65), CURLED, CURLED, CURLED, (0, -30, 0)),
    "y": _shape(THUMB_OUT, CURLED, CURLED, CURLED, (0, -20, 0, 0)),
    "z": _shape(THUMB_ACROSS, STRAIGHT, CURLED, CURLED, CURLED, (30, 0, 0)),
    "0": _shape((5, 55, 30, 30), (55, 0, 70, 45), (55, 0, 70, 45), (55, 0, 70, 45), (55, 0, 70, 45), _PALM_IN),
    "1": _shape(THUMB_ACROSS, STRAIGHT, CURLED, CURLED, CURLED, _PALM_IN),
    "2": _shape(THUMB_ACROSS, (0, 12, 0, 0), (0, -10, 0, 0), CURLED, CURLED, _PALM_IN),
    "3": _shape((60, 10, 0, 0), (0, 12, 0, 0), (0, -8, 0, 0), CURLED, CURLED, _PALM_SIDE),
    "4": _shape(THUMB_TUCKED, (0, 10, 0, 0), STRAIGHT, (0, -8, 0, 0), (0, -14, 0, 0), _PALM_IN),
    "5": _shape((70, 10, 0, 0), (0, 10, 0, 0), STRAIGHT, (0, -8, 0, 0), (0, -14, 0, 0), _PALM_IN),
    "6": _shape((-35, 45, 30, 30), (0, 12, 0, 0), STRAIGHT, (0, -12, 0, 0), (55, 0, 60, 40), _PALM_SIDE),
    "7": _shape((-20, 50, 30, 25), (0, 12, 0, 0), STRAIGHT, (50, 0, 60, 40), (0, -14, 0, 0), _PALM_SIDE),
    "8": _shape((-10, 50, 30, 25), (0, 12, 0, 0), (45, 0, 60, 40), (0, -8, 0, 0), (0, -14, 0, 0), _PALM_SIDE),
    "9": _shape((15, 50, 20, 20), (40, 0, 60, 35), STRAIGHT, (0, -8, 0, 0), (0, -14, 0, 0), _PALM_SIDE),
}

#: The relaxed hand a signer starts from and returns to.
REST_SHAPE = _shape((30, 20, 10, 10), (20, 0, 25, 10), (25, 0, 30, 10), (30, 0, 35, 15), (35, 0, 40, 15), (20, 0, 0))

# Characters that are traced, not just held: control points of (dx, dy, dz) in metres in the
# signer's body frame (x towards the signer's left, y down, z away from the camera) and a roll in
# degrees, spread evenly over the character's span; each path starts and ends at rest.
_TRACES: dict[str, np.ndarray] = {
    "j": np.array([[0, 0, 0, 0], [0.0, 0.03, 0, 15], [-0.015, 0.06, -0.01, 45], [-0.04, 0.05, -0.02, 70], [0, 0, 0, 0]]),
    "z": np.array(
        [[0, 0, 0, 0], [0.05, 0, 0, 0], [0.0, 0.04, 0, 0], [0.05, 0.04, 0, 0], [0.025, 0.02, 0, 0], [0, 0, 0, 0]]
    ),
}
#: A doubled character slides outwards and back, so the two are visible as two.
REPEAT_SLIDE = np.array([-0.03, 0.005, 0.0])


def character_trace(character: str, progress: np.ndarray) -> np.ndarray | None:
    """Offsets `[T, 4]` (dx, dy, dz in metres, roll in degrees) of a traced character, else None."""
    points = _TRACES.get(character)
    if points is None:
        return None
    knots = np.linspace(0.0, 1.0, len(points))
    return np.stack([np.interp(progress, knots, points[:, k]) for k in range(points.shape[1])], axis=-1)


def shape_keypoints(shapes: np.ndarray) -> np.ndarray:
    """Joints `[N, 21, 3]` (hand lengths, local frame) of shape vectors `[N, 23]` on the average hand."""
    shapes = np.asarray(shapes, dtype=np.float64)
    joints = pose_hand(shapes[..., :N_ANGLES], AVERAGE_HAND)
    rotation = euler_matrices(np.deg2rad(shapes[..., N_ANGLES:]))
    return rotate_points(rotation, joints) / HAND_LENGTH


def shape_distances(shapes_a: np.ndarray, shapes_b: np.ndarray | None = None) -> np.ndarray:
    """How different every pair of shapes looks: the largest joint displacement, in hand lengths.

    The largest displacement, not the mean, because two shapes often differ in one finger only
    (u and r, m and n) and that finger is all a reader has to go on.
    """
    a = shape_keypoints(shapes_a)
    b = a if shapes_b is None else shape_keypoints(shapes_b)
    return np.linalg.norm(a[:, None] - b[None, :], axis=-1).max(axis=-1)


def _random_shape(rng: np.random.Generator) -> np.ndarray:
    finger_states = np.array([STRAIGHT, CURLED, CURVED, HOOKED, (80, 0, 10, 5)], dtype=np.float64)
    thumb_states = np.array([THUMB_SIDE, THUMB_OUT, THUMB_ACROSS, THUMB_TUCKED, (40, 50, 20, 20)], dtype=np.float64)
    fingers = finger_states[rng.integers(0, len(finger_states), size=4)]
    fingers[:, 1] = rng.uniform(-12.0, 12.0, size=4)
    thumb = thumb_states[rng.integers(0, len(thumb_states))]
    orientation = (rng.uniform(-50, 50), rng.uniform(-90, 120), rng.uniform(-50, 50))
    return _shape(thumb, *fingers, orientation)


@functools.cache
def _alphabet() -> tuple[tuple[str, ...], np.ndarray]:
    characters = tuple(sorted(packaged_map(CHARACTER_MAP_FILE), key=packaged_map(CHARACTER_MAP_FILE).get))
    shapes = {c: s for c, s in _LETTERS_AND_DIGITS.items()}
    rng = np.random.default_rng(ALPHABET_SEED)
    for character in characters:
        if character in shapes:
            continue
        taken = np.stack(list(shapes.values()))
        while True:
            candidate = _random_shape(rng)
            if shape_distances(candidate[None], taken).min() >= MIN_SHAPE_DISTANCE:
                shapes[character] = candidate
                break
    table = np.stack([shapes[c] for c in characters])
    table.setflags(write=False)
    return characters, table


def alphabet_characters() -> tuple[str, ...]:
    """The 59 characters of the map, in prediction-index order."""
    return _alphabet()[0]


def alphabet_shapes() -> np.ndarray:
    """Shape vectors `[59, 23]` (read-only), row i for the character of prediction index i."""
    return _alphabet()[1]


def character_shape(character: str) -> np.ndarray:
    """The shape vector of one character of the map."""
    characters, table = _alphabet()
    return table[characters.index(character)]
