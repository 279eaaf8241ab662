"""A kinematic right hand with MediaPipe's 21 joints, posed by finger joint angles.

Joint numbering is MediaPipe's: wrist 0, thumb 1-4 (CMC, MCP, IP, tip), index 5-8, middle 9-12,
ring 13-16, pinky 17-20 (MCP, PIP, DIP, tip). Bones are rigid, so the 3-D distance between two
joints of a bone never changes over a sequence: after undoing the camera's aspect ratio, a landmark
stream from this hand has constant bone lengths, which is what aspect-ratio estimation relies on.

Local frame, metres: `a` radial (towards the thumb), `b` distal (wrist -> middle MCP), `c` palmar
(out of the palm). Only right hands are modelled; a left hand is the mirror image of a right one,
produced by mirroring the whole scene (`scene.py`).

Angles, degrees, 20 per pose (`ANGLE_NAMES`): thumb CMC azimuth (0 = along the fingers, 90 = out
sideways, negative = across the palm), CMC elevation (out of the palm plane, palmar), MCP and IP
flexion; then for index, middle, ring, pinky: MCP flexion, MCP abduction (positive = towards the
thumb), PIP flexion, DIP flexion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_JOINTS = 21
N_ANGLES = 20
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
#: MediaPipe joints of each finger, base first.
FINGER_JOINTS = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20]])
ANGLE_NAMES: tuple[str, ...] = ("thumb_cmc_azimuth", "thumb_cmc_elevation", "thumb_mcp", "thumb_ip") + tuple(
    f"{finger}_{joint}" for finger in FINGERS[1:] for joint in ("mcp", "abduction", "pip", "dip")
)
#: Joint pairs a rigid bone (or the rigid palm) connects: their distance is fixed for one hand.
BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (0, 9), (9, 10), (10, 11), (11, 12),
    (0, 13), (13, 14), (14, 15), (15, 16),
    (0, 17), (17, 18), (18, 19), (19, 20),
    (5, 9), (9, 13), (13, 17),
)  # fmt: skip

# An average adult hand (wrist to middle fingertip 0.19 m): finger bases (thumb CMC, then MCPs)
# in the local frame, and each finger's three bone lengths, base outwards.
_BASES = np.array(
    [[0.027, 0.028, 0.012], [0.025, 0.090, 0.000], [0.004, 0.093, 0.000], [-0.014, 0.087, 0.003], [-0.030, 0.076, 0.006]]
)
_BONE_LENGTHS = np.array(
    [[0.040, 0.032, 0.026], [0.042, 0.025, 0.021], [0.046, 0.029, 0.022], [0.043, 0.028, 0.022], [0.034, 0.020, 0.019]]
)
#: Direction of each straight finger at zero abduction, degrees towards the thumb (the natural fan).
_SPLAY = np.deg2rad([6.0, 0.0, -5.0, -12.0])
#: Direction the thumb bends in when it flexes: towards the little finger and into the palm.
_THUMB_BEND = np.array([-1.0, 0.0, 1.0]) / np.sqrt(2.0)
_PALMAR = np.array([0.0, 0.0, 1.0])
HAND_LENGTH = float(_BASES[2, 1] + _BONE_LENGTHS[2].sum())


@dataclass(frozen=True, eq=False)
class HandGeometry:
    """One person's hand: where the fingers start and how long each bone is (metres)."""

    bases: np.ndarray
    bone_lengths: np.ndarray

    @property
    def length(self) -> float:
        """Wrist to middle fingertip, the usual measure of hand size."""
        return float(self.bases[2, 1] + self.bone_lengths[2].sum())


AVERAGE_HAND = HandGeometry(_BASES, _BONE_LENGTHS)


def signer_hand(rng: np.random.Generator, size: float) -> HandGeometry:
    """An individual hand: the average one scaled by `size`, each bone varied by a few percent."""
    bases = _BASES * size * (1.0 + rng.normal(0.0, 0.03, size=_BASES.shape))
    lengths = _BONE_LENGTHS * size * (1.0 + rng.normal(0.0, 0.04, size=_BONE_LENGTHS.shape))
    return HandGeometry(bases, lengths)


def pose_hand(angles_deg: np.ndarray, hand: HandGeometry = AVERAGE_HAND) -> np.ndarray:
    """Joint positions `[..., 21, 3]` in the local frame from joint angles `[..., 20]` (degrees).

    Each finger flexes in the plane spanned by its straight direction and the palm normal, so the
    flexions add up along the finger; the thumb's metacarpal direction comes from its two CMC
    angles and its MCP/IP joints bend towards the little finger side of the palm.
    """
    rad = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    lead = rad.shape[:-1]
    joints = np.zeros(lead + (N_JOINTS, 3))
    joints[..., FINGER_JOINTS[:, 0], :] = hand.bases

    fingers = rad[..., 4:].reshape(lead + (4, 4))  # (mcp, abduction, pip, dip)
    azimuth = _SPLAY + fingers[..., 1]
    straight = np.stack([np.sin(azimuth), np.cos(azimuth), np.zeros_like(azimuth)], axis=-1)  # [..., 4, 3]
    flexion = np.cumsum(fingers[..., [0, 2, 3]], axis=-1)  # [..., 4, 3 bones]
    directions = np.cos(flexion)[..., None] * straight[..., None, :] + np.sin(flexion)[..., None] * _PALMAR
    segments = directions * hand.bone_lengths[1:, :, None]
    joints[..., FINGER_JOINTS[1:, 1:], :] = hand.bases[1:, None, :] + np.cumsum(segments, axis=-2)

    cmc_azimuth, cmc_elevation = rad[..., 0], rad[..., 1]
    metacarpal = np.stack(
        [np.cos(cmc_elevation) * np.sin(cmc_azimuth), np.cos(cmc_elevation) * np.cos(cmc_azimuth), np.sin(cmc_elevation)],
        axis=-1,
    )
    bend = _THUMB_BEND - (metacarpal @ _THUMB_BEND)[..., None] * metacarpal
    bend /= np.maximum(np.linalg.norm(bend, axis=-1, keepdims=True), 1e-6)
    thumb_flexion = np.stack([np.zeros_like(rad[..., 2]), rad[..., 2], rad[..., 2] + rad[..., 3]], axis=-1)
    thumb_dirs = (
        np.cos(thumb_flexion)[..., None] * metacarpal[..., None, :] + np.sin(thumb_flexion)[..., None] * bend[..., None, :]
    )
    joints[..., FINGER_JOINTS[0, 1:], :] = hand.bases[0] + np.cumsum(thumb_dirs * hand.bone_lengths[0][:, None], axis=-2)
    return joints

