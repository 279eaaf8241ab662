"""Synthetic participants: everything that stays fixed for one person across their sequences.

Participant ids are `seed * PARTICIPANTS_PER_SEED + k`, so two corpora generated with different
seeds never share a participant (a split by participant across corpora stays honest), and
participant k of a seed is the same person whatever the corpus size (except that a corpus of three
or more participants makes one of them left-handed if none is): each signer is drawn from its own
random stream keyed by (seed, kind, k).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from signpipe.data.synth.camera import Camera
from signpipe.data.synth.hand import HandGeometry, signer_hand
from signpipe.data.synth.shapes import SHAPE_DIMS

#: Upper bound on participants per corpus; also the stride between seeds' participant ids.
PARTICIPANTS_PER_SEED = 1000
#: Seeds must keep every participant id within int64 (and exact in a float64 JSON reader).
MAX_SEED = 2**53 // PARTICIPANTS_PER_SEED - 1
KINDS = ("fingerspelling", "isolated_signs")
LEFT_HANDED_SHARE = 0.2

# Framing differs: the fingerspelling corpus was filmed in portrait (tall canvas), the
# isolated-signs corpus closer to square (REFERENCE.md section 4).
_FRAMING = {
    "fingerspelling": {"width_m": (0.50, 0.75), "origin_y": (0.36, 0.48), "miss": (0.28, 0.42)},
    "isolated_signs": {"width_m": (0.50, 0.75), "origin_y": (0.58, 0.70), "miss": (0.18, 0.30)},
}


@dataclass(frozen=True, eq=False)
class Signer:
    """One synthetic participant."""

    participant_id: int
    handedness: str  #: "right" or "left": which hand signs
    hand_size: float  #: hand length / the average adult's
    hand: HandGeometry
    body_size: float  #: body dimensions / the average adult's
    shoulder_width: float  #: metres between the shoulder landmarks
    arm_length: float  #: shoulder to wrist, metres
    frames_per_character: float  #: fingerspelling speed (about 3 to 8 frames per character)
    sign_speed: float  #: isolated signs: > 1 is slower (more frames)
    hand_miss_fraction: float  #: share of frames the detector loses the signing hand in bursts
    shape_bias: np.ndarray  #: `[23]` degrees: this person's way of forming every shape
    spelling_wrist: np.ndarray  #: `[3]` metres, body frame: where the spelling hand is held
    base_orientation: np.ndarray  #: `[3]` degrees: the usual tilt of the spelling hand
    camera: Camera

    def summary(self) -> dict:
        """The ground truth about this signer that is worth scoring against (JSON-ready)."""
        c = self.camera
        return {
            "participant_id": self.participant_id,
            "handedness": self.handedness,
            "signing_hand": f"{self.handedness}_hand",
            "hand_size": round(self.hand_size, 4),
            "hand_length_m": round(self.hand.length, 4),
            "frames_per_character": round(self.frames_per_character, 3),
            "sign_speed": round(self.sign_speed, 3),
            "hand_miss_fraction": round(self.hand_miss_fraction, 3),
            "y_scale": c.y_scale,
            "camera": {"width_m": round(c.width_m, 4), "height_m": round(c.height_m, 4),
                       "origin_x": round(c.origin_x, 4), "origin_y": round(c.origin_y, 4),
                       "roll_deg": round(c.roll_deg, 3)},
        }  # fmt: skip


def participant_id(seed: int, k: int) -> int:
    return seed * PARTICIPANTS_PER_SEED + k


def make_signer(seed: int, kind: str, k: int, y_scale: float, y_scale_spread: float = 0.0) -> Signer:
    """Participant `k` of the corpus `(seed, kind)`.

    `y_scale_spread` > 0 gives each participant their own aspect ratio, `y_scale * exp(N(0, spread))`
    (different phones); at 0 every participant shares the corpus's planted `y_scale`.
    """
    rng = np.random.default_rng([seed, KINDS.index(kind), 0, k])
    framing = _FRAMING[kind]
    hand_size = float(rng.uniform(0.86, 1.14))
    own_y_scale = float(y_scale * np.exp(rng.normal(0.0, y_scale_spread))) if y_scale_spread > 0 else float(y_scale)
    camera = Camera(
        width_m=float(rng.uniform(*framing["width_m"])),
        y_scale=own_y_scale,
        origin_x=float(rng.uniform(0.42, 0.58)),
        origin_y=float(rng.uniform(*framing["origin_y"])),
        roll_deg=float(rng.normal(0.0, 2.5)),
    )
    body_size = float(np.clip(hand_size * rng.normal(1.0, 0.04), 0.85, 1.15))
    return Signer(
        participant_id=participant_id(seed, k),
        handedness="left" if rng.random() < LEFT_HANDED_SHARE else "right",
        hand_size=hand_size,
        hand=signer_hand(rng, hand_size),
        body_size=body_size,
        shoulder_width=0.30 * body_size,  # between MediaPipe's shoulder points, narrower than bone ends
        arm_length=0.56 * body_size,
        frames_per_character=float(rng.uniform(3.0, 8.0)),
        sign_speed=float(rng.uniform(0.75, 1.35)),
        hand_miss_fraction=float(rng.uniform(*framing["miss"])),
        shape_bias=np.concatenate([rng.normal(0.0, 3.0, SHAPE_DIMS - 3), rng.normal(0.0, 5.0, 3)]),
        spelling_wrist=np.array([-0.12, 0.02, -0.27]) * body_size + rng.normal(0.0, 0.025, 3),
        base_orientation=np.array([rng.normal(0.0, 12.0), rng.normal(0.0, 15.0), rng.normal(0.0, 8.0)]),
        camera=camera,
    )


def make_signers(seed: int, kind: str, n: int, y_scale: float, y_scale_spread: float = 0.0) -> list[Signer]:
    """The `n` participants of a corpus; with three or more, at least one is left-handed.

    The guarantee keeps small corpora from silently having one handedness only, which would let a
    pipeline that ignores the hand choice pass its tests.
    """
    signers = [make_signer(seed, kind, k, y_scale, y_scale_spread) for k in range(n)]
    if n >= 3 and all(s.handedness == "right" for s in signers):
        pick = int(np.random.default_rng([seed, KINDS.index(kind), 1]).integers(0, n))
        signers[pick] = replace(signers[pick], handedness="left")
    return signers
