"""Render one sequence: hands, arms, body, face and camera, frames `[T, 543, 3]` as MediaPipe gives them.

Everything is built for a right-handed signer in the body frame of `body.py` and mirrored for a
left-handed one, so the signing hand is `right_hand` or `left_hand` accordingly. Noise enters at
three scales: per signer (`signers.py`), per sequence (posture, tilt, drift) and per frame (joint
jitter, detector misses), all from the sequence's own random stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import signpipe.data.synth.body as body  # the modules themselves, not the package, which imports this one
import signpipe.data.synth.camera as camera
from signpipe.data.schema import N_POINTS, PART_OFFSET, PARTS
from signpipe.data.synth.face import (
    LEFT_EYE_INNER, LEFT_EYE_LOWER, LEFT_EYE_OUTER, LEFT_EYE_UPPER, NOSE_TIP, RIGHT_EYE_INNER, RIGHT_EYE_LOWER,
    RIGHT_EYE_OUTER, RIGHT_EYE_UPPER, face_points,
)  # fmt: skip
from signpipe.data.synth.hand import N_ANGLES, pose_hand
from signpipe.data.synth.motion import smooth_noise, smoothstep
from signpipe.data.synth.rotation import euler_matrices, rotate_points
from signpipe.data.synth.shapes import REPEAT_SLIDE, REST_SHAPE, SHAPE_DIMS, character_shape, character_trace
from signpipe.data.synth.sign_templates import BASE_HAND_WRIST, SignTemplate
from signpipe.data.synth.signers import Signer
from signpipe.data.synth.timeline import blend_keys, character_timeline

#: Local hand frame (radial, distal, palmar) -> body frame for a right hand held up, palm to the camera.
_HAND_UP = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
#: Right wrist (body frame) and orientation (degrees) of an arm hanging at rest.
_REST_WRIST = np.array([-0.20, 0.48, -0.06])
_REST_ORIENTATION = np.array([160.0, 70.0, 0.0])
#: Where a fingerspelling hand waits before and after the phrase, relative to its spelling place.
_LOWERED = np.array([0.0, 0.10, 0.06])
_PART = {part: slice(PART_OFFSET[part], PART_OFFSET[part] + size) for part, size in PARTS}
#: Per-point detector jitter (metres): MediaPipe's pose is far noisier than its hand and face.
_JITTER_PER_POINT = np.concatenate(
    [np.full(size, {"face": 0.0008, "left_hand": 0.0008, "pose": 0.004, "right_hand": 0.0008}[part]) for part, size in PARTS]
)[:, None].astype(np.float32)
_FACE_MISS_SEQUENCE_SHARE = 0.08


@dataclass(frozen=True, eq=False)
class RenderedSequence:
    frames: np.ndarray  #: `[T, 543, 3]` float32, NaN where a part was not detected
    signing_hand: str  #: "right_hand" or "left_hand"
    spans: np.ndarray | None = None  #: fingerspelling: `[n, 2]` start/end frame per character
    first_frame: int = 0


def _mirror_x(points: np.ndarray) -> np.ndarray:
    """The whole scene seen mirror-wise (about the image's x = 0 line of the body frame)."""
    mirrored = points.copy()
    mirrored[..., 0] *= -1.0
    return mirrored


def _other_side(hand: np.ndarray, root: np.ndarray) -> np.ndarray:
    """A right hand `[T, 21, 3]` mirrored about the body's midline: the left hand doing the same."""
    mirrored = hand.copy()
    mirrored[..., 0] = 2.0 * root[:, None, 0] - hand[..., 0]
    return mirrored


def _place_hand(signer: Signer, angles: np.ndarray, rotation: np.ndarray, wrist: np.ndarray) -> np.ndarray:
    """Right-hand joints `[T, 21, 3]` in the body frame from angles, orientations `[T, 3, 3]`, wrists."""
    return wrist[:, None, :] + rotate_points(rotation, pose_hand(angles, signer.hand))


def _resting_hand(signer: Signer, root: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The idle arm's hand, hanging at rest beside the body (as a right hand; mirror it for the left)."""
    n = len(root)
    wrist = root + _REST_WRIST * signer.body_size + smooth_noise(rng, n, 3, 15.0, 0.01)
    orientation = euler_matrices(np.deg2rad(_REST_ORIENTATION + smooth_noise(rng, n, 3, 15.0, 5.0)))
    angles = np.broadcast_to(REST_SHAPE[:N_ANGLES], (n, N_ANGLES))
    return _place_hand(signer, angles, _HAND_UP @ orientation, wrist)


def _head_pose(rng: np.random.Generator, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(root)
    position = root + body.HEAD_OFFSET + smooth_noise(rng, n, 3, 18.0, 0.006)
    tilt = rng.normal(0.0, [0.08, 0.08, 0.05]) + smooth_noise(rng, n, 3, 15.0, [0.05, 0.07, 0.03])
    return position, euler_matrices(tilt)


def _assemble(
    signer: Signer,
    rng: np.random.Generator,
    root: np.ndarray,
    signing: np.ndarray,
    other: np.ndarray,
    signing_found: np.ndarray,
    other_found: np.ndarray,
) -> tuple[np.ndarray, str]:
    """Body, face, camera and detector around two posed hands (right-handed body frame).

    `signing` is the right hand, `other` the left (already a left hand); `*_found` say in which
    frames the detector would find each hand if it is inside the picture.
    """
    n = len(root)
    pose = body.pose_points(root, signer.shoulder_width, signer.arm_length, signing, other)
    right, left, right_found, left_found = signing, other, signing_found, other_found
    signing_hand = "right_hand"
    if signer.handedness == "left":
        pose = body.mirror_pose(pose)
        right, left, right_found, left_found = _mirror_x(other), _mirror_x(signing), other_found, signing_found
        signing_hand = "left_hand"
    head_position, head_rotation = _head_pose(rng, root)
    mouth = np.clip(smooth_noise(rng, n, 1, 4.0, 0.003)[:, 0] + 0.0015, 0.0, 0.008)
    face = face_points(head_position, head_rotation, mouth)
    ear = np.array([0.078, 0.0, 0.01])
    pose[:, body.NOSE] = face[:, NOSE_TIP]
    pose[:, body.LEFT_EYE_INNER], pose[:, body.LEFT_EYE_OUTER] = face[:, LEFT_EYE_INNER], face[:, LEFT_EYE_OUTER]
    pose[:, body.LEFT_EYE] = 0.5 * (face[:, LEFT_EYE_UPPER] + face[:, LEFT_EYE_LOWER])
    pose[:, body.RIGHT_EYE_INNER], pose[:, body.RIGHT_EYE_OUTER] = face[:, RIGHT_EYE_INNER], face[:, RIGHT_EYE_OUTER]
    pose[:, body.RIGHT_EYE] = 0.5 * (face[:, RIGHT_EYE_UPPER] + face[:, RIGHT_EYE_LOWER])
    pose[:, body.LEFT_EAR] = head_position + head_rotation @ ear
    pose[:, body.RIGHT_EAR] = head_position + head_rotation @ (ear * [-1.0, 1.0, 1.0])
    pose[:, body.MOUTH_LEFT], pose[:, body.MOUTH_RIGHT] = face[:, 291], face[:, 61]

    world = np.empty((n, N_POINTS, 3))
    for name, points in (("face", face), ("left_hand", left), ("pose", pose), ("right_hand", right)):
        world[:, _PART[name]] = points
    world += rng.standard_normal(world.shape, dtype=np.float32) * _JITTER_PER_POINT
    cam = signer.camera
    points_cam = camera.to_camera(world, cam)
    # MediaPipe's depth origins: each hand's wrist, the head centre, the middle of the hips.
    depth_origin = np.empty((n, N_POINTS))
    depth_origin[:, _PART["face"]] = camera.to_camera(head_position[:, None, :], cam)[:, :1, 2]
    pose_cam = points_cam[:, _PART["pose"]]
    depth_origin[:, _PART["pose"]] = 0.5 * (pose_cam[:, body.LEFT_HIP, 2] + pose_cam[:, body.RIGHT_HIP, 2])[:, None]
    for hand in ("left_hand", "right_hand"):
        depth_origin[:, _PART[hand]] = points_cam[:, PART_OFFSET[hand], 2][:, None]
    frames = camera.normalize(points_cam, cam, camera.camera_shake(rng, n), depth_origin)

    for hand, found in (("right_hand", right_found), ("left_hand", left_found)):
        frames[~(found & camera.in_frame(frames[:, _PART[hand]])), _PART[hand]] = np.nan
    if n > 3 and rng.random() < _FACE_MISS_SEQUENCE_SHARE:
        start = int(rng.integers(0, n - 1))
        frames[start : start + int(rng.integers(1, 4)), _PART["face"]] = np.nan
    frames = frames.astype(np.float32)
    return frames, signing_hand


def _other_hand_glimpses(rng: np.random.Generator, n: int, share_of_sequences: float) -> np.ndarray:
    """Frames in which an idle hand is found: none in most sequences, a short glimpse in some."""
    found = np.zeros(n, dtype=bool)
    if n > 2 and rng.random() < share_of_sequences:
        start = int(rng.integers(0, n - 1))
        found[start : start + int(rng.integers(2, 9))] = True
    return found


def render_fingerspelling(phrase: str, signer: Signer, rng: np.random.Generator) -> RenderedSequence:
    """One fingerspelled phrase, with the frames where each character dominates."""
    n = len(phrase)
    timeline = character_timeline(n, signer.frames_per_character, rng)
    t = timeline.n_frames
    shapes = np.stack([REST_SHAPE, *(character_shape(c) for c in phrase), REST_SHAPE])
    shapes = shapes + signer.shape_bias + rng.normal(0.0, 1.0, shapes.shape) * np.r_[np.full(N_ANGLES, 3.0), np.full(3, 4.0)]
    moves = np.zeros((n + 2, 3))
    moves[1 : n + 1, 0] = -rng.uniform(0.0, 0.003) * np.arange(n)  # the hand drifts outwards along the phrase
    moves[1 : n + 1] += rng.normal(0.0, 0.005, (n, 3))
    moves[0], moves[n + 1] = _LOWERED, moves[n] + _LOWERED
    params = blend_keys(np.concatenate([shapes, moves], axis=1), timeline.phase)

    extra = np.zeros((t, 4))  # traced characters and doubled letters: dx, dy, dz (m), roll (deg)
    for i, character in enumerate(phrase):
        start, end = timeline.spans[i]
        trace = character_trace(character, timeline.progress[start:end])
        if trace is not None:
            extra[start:end] += trace
        if i and phrase[i - 1] == character:
            extra[start:end, :3] += REPEAT_SLIDE * np.sin(np.pi * timeline.progress[start:end])[:, None]
    orientation = params[:, N_ANGLES:SHAPE_DIMS] + np.c_[np.zeros(t), extra[:, 3], np.zeros(t)]
    tilt = signer.base_orientation + rng.normal(0.0, [10.0, 12.0, 6.0]) + smooth_noise(rng, t, 3, 12.0, [6.0, 8.0, 4.0])
    rotation = _HAND_UP @ euler_matrices(np.deg2rad(tilt)) @ euler_matrices(np.deg2rad(orientation))

    root = smooth_noise(rng, t, 3, 25.0, [0.008, 0.005, 0.008])
    wrist = root + signer.spelling_wrist + params[:, SHAPE_DIMS:] + extra[:, :3] + smooth_noise(rng, t, 3, 5.0, 0.002)
    right_shoulder, _ = body.shoulder_positions(root, signer.shoulder_width)
    wrist = body.reachable(right_shoulder, wrist, signer.arm_length)
    signing = _place_hand(signer, params[:, :N_ANGLES], rotation, wrist)
    other = _other_side(_resting_hand(signer, root, rng), root)

    signing_found = camera.detection_runs(rng, t, signer.hand_miss_fraction)
    frames, signing_hand = _assemble(signer, rng, root, signing, other, signing_found, _other_hand_glimpses(rng, t, 0.12))
    return RenderedSequence(frames, signing_hand, spans=timeline.spans.copy())


def render_sign(template: SignTemplate, signer: Signer, rng: np.random.Generator) -> RenderedSequence:
    """One isolated sign: raise the hand(s), perform the movement, start lowering them."""
    core = max(4, int(round(template.frames * signer.sign_speed * np.exp(rng.normal(0.0, 0.15)))))
    lead_in, lead_out = int(rng.integers(1, 7)), int(rng.integers(0, 7))
    t = lead_in + core + lead_out
    frame = np.arange(t)
    u = np.clip((frame - lead_in + 0.5) / core, 0.0, 1.0)
    u = 0.5 * u + 0.5 * smoothstep(u)  # movements accelerate and slow down, but not to a stop
    raised = np.ones(t)  # 0 = arm at rest, 1 = hand at the sign
    raised[:lead_in] = smoothstep((frame[:lead_in] + 1.0) / (lead_in + 1.0))
    lowering = rng.uniform(0.4, 1.0)
    after = frame[lead_in + core :] - lead_in - core
    raised[lead_in + core :] = 1.0 - lowering * smoothstep((after + 1.0) / (lead_out + 1.0))
    w = raised[:, None]

    root = smooth_noise(rng, t, 3, 25.0, [0.008, 0.005, 0.008])
    rest_wrist = _REST_WRIST * signer.body_size
    resting = np.r_[REST_SHAPE[:N_ANGLES], _REST_ORIENTATION]
    placement = rng.normal(0.0, 0.015, 3)  # no two performances start at the same spot
    bias = signer.shape_bias + rng.normal(0.0, 3.0, SHAPE_DIMS)
    tilt = euler_matrices(np.deg2rad(smooth_noise(rng, t, 3, 10.0, [5.0, 7.0, 4.0])))
    right_shoulder, _ = body.shoulder_positions(root, signer.shoulder_width)

    def posed(shape_path: np.ndarray, wrist_at_sign: np.ndarray) -> np.ndarray:
        """A right hand moving between rest (weight 0) and its place in the sign (weight 1).

        Angles and orientation angles are blended together, as between fingerspelled characters.
        """
        shape = resting * (1.0 - w) + shape_path * w
        rotation = _HAND_UP @ tilt @ euler_matrices(np.deg2rad(shape[:, N_ANGLES:]))
        wrist = root + rest_wrist * (1.0 - w) + wrist_at_sign * w + smooth_noise(rng, t, 3, 5.0, 0.002)
        wrist = body.reachable(right_shoulder, wrist, signer.arm_length)
        return _place_hand(signer, shape[:, :N_ANGLES], rotation, wrist)

    shape_weight = smoothstep(u)[:, None]
    shape_path = (template.start_shape * (1.0 - shape_weight) + template.end_shape * shape_weight) + bias
    signing = posed(shape_path, template.wrist_path(u) + placement)
    if template.hands == "mirror":
        other = _other_side(signing, root)
    elif template.hands == "base":  # posed as a right hand on the mirrored spot, then mirrored
        still = np.broadcast_to(template.base_shape + bias, (t, SHAPE_DIMS))
        other = _other_side(posed(still, BASE_HAND_WRIST * [-1.0, 1.0, 1.0] + placement), root)
    else:
        other = _other_side(_resting_hand(signer, root, rng), root)

    signing_found = camera.detection_runs(rng, t, signer.hand_miss_fraction)
    if template.hands == "one":
        other_found = _other_hand_glimpses(rng, t, 0.1)
    else:
        other_found = camera.detection_runs(rng, t, signer.hand_miss_fraction)
    frames, signing_hand = _assemble(signer, rng, root, signing, other, signing_found, other_found)
    return RenderedSequence(frames, signing_hand, first_frame=int(rng.integers(0, 30)))
