"""Motion templates of the 250 isolated signs: where the hand goes, how it moves, what shape it takes.

Like the alphabet, the templates are constants of the package, drawn once from
`SIGN_TEMPLATE_SEED` (never the corpus seed) so every synthetic isolated-signs corpus uses the
same 250 signs. They are not the real ASL signs; they are built from the same ingredients (a
location on the body, a movement, a hand shape that may change, one or two hands) and each is
accepted only if it stays `MIN_TEMPLATE_DISTANCE` away from every template before it.

A template's dominant-hand wrist path is `anchor + coefficients.T @ basis(u)` for u in [0, 1],
with basis `[u, sin(pi u), sin(2 pi c u), 1 - cos(2 pi c u)]` (a straight move, an arc, and c
repetitions of a tap or circle), in the right-handed body frame of `body.py`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from signpipe.data.schema import SIGN_MAP_FILE, packaged_map
from signpipe.data.synth.hand import HAND_LENGTH, N_ANGLES
from signpipe.data.synth.shapes import alphabet_characters, alphabet_shapes, shape_keypoints

SIGN_TEMPLATE_SEED = 250_2023
#: Smallest template distance (`template_distances`) allowed between two signs.
MIN_TEMPLATE_DISTANCE = 0.6
HANDEDNESS_KINDS = ("one", "mirror", "base")  # one hand; both hands mirrored; dominant acts on a still hand

# Wrist positions (metres, right-handed body frame) of places signs are made at.
ANCHORS = {
    "forehead": (-0.05, -0.11, -0.20), "temple": (-0.10, -0.08, -0.17), "chin": (-0.03, 0.00, -0.22),
    "cheek": (-0.10, -0.02, -0.18), "ear": (-0.13, -0.06, -0.12), "neck": (-0.03, 0.08, -0.20),
    "chest": (-0.03, 0.18, -0.18), "other_shoulder": (0.09, 0.10, -0.15), "stomach": (-0.03, 0.32, -0.18),
    "neutral": (-0.12, 0.15, -0.32), "side": (-0.22, 0.12, -0.25), "low": (-0.08, 0.28, -0.30),
}  # fmt: skip
#: Where the still hand of a two-handed "base" sign is held (signer's non-dominant side).
BASE_HAND_WRIST = np.array([0.06, 0.22, -0.26])
_N_SAMPLES = 9


@dataclass(frozen=True, eq=False)
class SignTemplate:
    sign: str
    anchor: np.ndarray  #: `[3]` start of the wrist path, metres
    coefficients: np.ndarray  #: `[4, 3]` path coefficients of the basis (metres)
    cycles: int  #: repetitions of the tap/circle component
    start_shape: np.ndarray  #: `[23]` shape vector at the start of the movement
    end_shape: np.ndarray  #: `[23]` shape vector at its end
    hands: str  #: one of `HANDEDNESS_KINDS`
    base_shape: np.ndarray  #: `[23]` the still hand's shape (used when `hands == "base"`)
    frames: int  #: frames of the movement at sign speed 1

    def wrist_path(self, u: np.ndarray) -> np.ndarray:
        """Dominant wrist positions `[T, 3]` at movement progress `u` `[T]` in [0, 1]."""
        return self.anchor + path_basis(u, self.cycles) @ self.coefficients


def path_basis(u: np.ndarray, cycles: int) -> np.ndarray:
    """Basis functions `[T, 4]` of a wrist path (see module docstring); all zero at u = 0."""
    u = np.asarray(u, dtype=np.float64)
    angle = 2.0 * np.pi * cycles * u
    return np.stack([u, np.sin(np.pi * u), np.sin(angle), 1.0 - np.cos(angle)], axis=-1)


def _descriptor(template: SignTemplate) -> np.ndarray:
    """What a sign looks like, in hand lengths: sampled wrist path plus start and end hand joints."""
    u = np.linspace(0.0, 1.0, _N_SAMPLES)
    path = template.wrist_path(u) / HAND_LENGTH
    shapes = shape_keypoints(np.stack([template.start_shape, template.end_shape]))
    return np.concatenate([path.ravel(), shapes.ravel(), [1.0 if template.hands != "one" else 0.0]])


def template_distances(descriptors_a: np.ndarray, descriptors_b: np.ndarray) -> np.ndarray:
    """Mean distance (hand lengths) over path samples and joints between sign descriptors.

    Path samples and hand joints are averaged separately and added, so neither a different place
    nor a different hand shape alone is drowned out; a one- vs two-handed difference adds 1.
    """
    n_path = 3 * _N_SAMPLES
    a, b = descriptors_a[:, None], descriptors_b[None]
    path = np.linalg.norm((a[..., :n_path] - b[..., :n_path]).reshape(a.shape[:1] + b.shape[1:2] + (-1, 3)), axis=-1)
    joints = (a[..., n_path:-1] - b[..., n_path:-1]).reshape(a.shape[:1] + b.shape[1:2] + (-1, 3))
    return path.mean(-1) + np.linalg.norm(joints, axis=-1).mean(-1) + np.abs(a[..., -1] - b[..., -1])


def _random_template(rng: np.random.Generator, sign: str, handshapes: np.ndarray) -> SignTemplate:
    anchor = np.array(ANCHORS[list(ANCHORS)[rng.integers(0, len(ANCHORS))]]) + rng.normal(0.0, 0.02, 3)
    coefficients = np.zeros((4, 3))
    if rng.random() < 0.7:
        coefficients[0] = rng.normal(0.0, 0.07, 3)
    if rng.random() < 0.5:
        coefficients[1] = rng.normal(0.0, 0.04, 3)
    if rng.random() < 0.6:
        direction = rng.normal(size=3)
        coefficients[2] = direction / np.linalg.norm(direction) * rng.uniform(0.015, 0.05)
        if rng.random() < 0.5:  # a circle: a second, perpendicular component
            other = np.cross(direction, rng.normal(size=3))
            coefficients[3] = other / np.linalg.norm(other) * np.linalg.norm(coefficients[2])
    start = handshapes[rng.integers(0, len(handshapes))].copy()
    start[N_ANGLES:] = (rng.uniform(-40, 60), rng.uniform(-90, 180), rng.uniform(-60, 60))
    start[:N_ANGLES] += rng.normal(0.0, 6.0, N_ANGLES)
    end = start.copy()
    if rng.random() < 0.3:  # the hand shape changes during the sign
        end[:N_ANGLES] = handshapes[rng.integers(0, len(handshapes)), :N_ANGLES]
    end[N_ANGLES:] += rng.normal(0.0, 20.0, 3)
    hands = HANDEDNESS_KINDS[int(rng.choice(3, p=[0.62, 0.2, 0.18]))]
    base = handshapes[rng.integers(0, len(handshapes))].copy()
    base[N_ANGLES:] = (rng.uniform(-30, 30), rng.uniform(60, 120), rng.uniform(-90, -60))  # palm up-ish, across
    if hands == "base":  # the dominant hand acts on the still hand, just above it
        anchor = BASE_HAND_WRIST + np.array([-0.05, -0.08, -0.02]) + rng.normal(0.0, 0.02, 3)
    return SignTemplate(
        sign=sign, anchor=anchor, coefficients=coefficients, cycles=int(rng.integers(1, 4)),
        start_shape=start, end_shape=end, hands=hands, base_shape=base, frames=int(rng.integers(6, 21)),
    )  # fmt: skip


@functools.cache
def sign_templates() -> tuple[SignTemplate, ...]:
    """The 250 templates, in the order of the packaged sign map's prediction indices."""
    sign_map = packaged_map(SIGN_MAP_FILE)
    signs = sorted(sign_map, key=sign_map.get)
    letters = [i for i, c in enumerate(alphabet_characters()) if c.isalnum()]
    handshapes = alphabet_shapes()[letters]
    rng = np.random.default_rng(SIGN_TEMPLATE_SEED)
    templates: list[SignTemplate] = []
    descriptors = np.zeros((0, 3 * _N_SAMPLES + 2 * 21 * 3 + 1))
    for sign in signs:
        while True:
            candidate = _random_template(rng, sign, handshapes)
            descriptor = _descriptor(candidate)[None]
            if not len(templates) or template_distances(descriptor, descriptors).min() >= MIN_TEMPLATE_DISTANCE:
                break
        templates.append(candidate)
        descriptors = np.concatenate([descriptors, descriptor])
    return tuple(templates)

