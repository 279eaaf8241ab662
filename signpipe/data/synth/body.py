"""The 33-point MediaPipe pose of a seated signer whose arms reach the hands where they sign.

Body frame, metres: x towards the signer's left (image right), y down, z away from the camera,
origin between the shoulders. MediaPipe's "left" is the signer's left, so the left shoulder (11)
has positive x. Scenes are built for a right-handed signer (signing with the right hand, x < 0)
and mirrored for left-handed ones (`mirror_pose`).

The elbow is solved from shoulder and wrist with fixed upper-arm and forearm lengths (two-bone
inverse kinematics), so the pose wrist follows the hand's wrist and the elbow always sits between.
"""

from __future__ import annotations

import numpy as np

N_POSE = 33
NOSE = 0
LEFT_EYE_INNER, LEFT_EYE, LEFT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE, RIGHT_EYE_OUTER = 1, 2, 3, 4, 5, 6
LEFT_EAR, RIGHT_EAR, MOUTH_LEFT, MOUTH_RIGHT = 7, 8, 9, 10
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST = 11, 12, 13, 14, 15, 16
LEFT_PINKY, RIGHT_PINKY, LEFT_INDEX, RIGHT_INDEX, LEFT_THUMB, RIGHT_THUMB = 17, 18, 19, 20, 21, 22
LEFT_HIP, RIGHT_HIP = 23, 24
#: pose index -> the same landmark on the other side of the body
MIRROR = np.array([0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9] + [i + 1 if i % 2 else i - 1 for i in range(11, 33)])

# Lower body of a seated signer, (x, y, z) for the signer's left side; the right is mirrored.
# Knees and feet are usually outside the picture, as in the real corpora.
_LOWER_BODY_LEFT = {
    LEFT_HIP: (0.10, 0.50, 0.03),
    25: (0.12, 0.56, -0.38),  # knee, forward on a chair
    27: (0.12, 0.98, -0.40),  # ankle
    29: (0.12, 1.03, -0.35),  # heel
    31: (0.12, 1.04, -0.50),  # foot index
}
_ELBOW_POLE = np.array([-0.3, 1.0, 0.6])  # right elbow: out, down and back
#: Head centre relative to the point between the shoulders.
HEAD_OFFSET = np.array([0.0, -0.15, -0.02])  # the chin ends up just above the shoulder line


def elbow_position(shoulder: np.ndarray, wrist: np.ndarray, upper: float, fore: float, pole: np.ndarray) -> np.ndarray:
    """Elbows `[T, 3]` for shoulders and wrists `[T, 3]`: two-bone IK bent towards `pole`.

    The wrist must be reachable (see `reachable`); the elbow lies on the circle of points `upper`
    from the shoulder and `fore` from the wrist, at the point nearest the pole direction.
    """
    axis = wrist - shoulder
    distance = np.linalg.norm(axis, axis=-1, keepdims=True)
    axis = axis / np.maximum(distance, 1e-9)
    along = (upper**2 - fore**2 + distance**2) / (2.0 * distance)
    across = np.sqrt(np.clip(upper**2 - along**2, 0.0, None))
    bend = pole - np.sum(pole * axis, axis=-1, keepdims=True) * axis
    bend /= np.maximum(np.linalg.norm(bend, axis=-1, keepdims=True), 1e-9)
    return shoulder + along * axis + across * bend


def reachable(shoulder: np.ndarray, wrist: np.ndarray, reach: float) -> np.ndarray:
    """Wrists `[T, 3]` pulled towards the shoulder where they lie beyond 97% of the arm's reach."""
    offset = wrist - shoulder
    distance = np.linalg.norm(offset, axis=-1, keepdims=True)
    return shoulder + offset * np.minimum(1.0, 0.97 * reach / np.maximum(distance, 1e-9))


def shoulder_positions(root: np.ndarray, shoulder_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Right and left shoulders `[T, 3]` around the point between them."""
    half = np.array([shoulder_width / 2.0, 0.0, 0.0])
    return root - half, root + half


def pose_points(
    root: np.ndarray,
    shoulder_width: float,
    arm_length: float,
    right_hand: np.ndarray,
    left_hand: np.ndarray,
) -> np.ndarray:
    """Pose `[T, 33, 3]` below the head (points 0-10 are left at zero for the face to fill).

    `right_hand` and `left_hand` are the two hands' 21 joints `[T, 21, 3]` (their wrists already
    reachable); the pose wrist is the hand's wrist and the pose's pinky, index and thumb points
    sit on the corresponding knuckles, as MediaPipe's pose model places them.
    """
    n = len(root)
    pose = np.zeros((n, N_POSE, 3))
    right_shoulder, left_shoulder = shoulder_positions(root, shoulder_width)
    upper, fore = 0.54 * arm_length, 0.46 * arm_length
    pose[:, RIGHT_SHOULDER], pose[:, LEFT_SHOULDER] = right_shoulder, left_shoulder
    pose[:, RIGHT_ELBOW] = elbow_position(right_shoulder, right_hand[:, 0], upper, fore, _ELBOW_POLE)
    pose[:, LEFT_ELBOW] = elbow_position(left_shoulder, left_hand[:, 0], upper, fore, _ELBOW_POLE * [-1, 1, 1])
    for hand, wrist, pinky, index, thumb in (
        (right_hand, RIGHT_WRIST, RIGHT_PINKY, RIGHT_INDEX, RIGHT_THUMB),
        (left_hand, LEFT_WRIST, LEFT_PINKY, LEFT_INDEX, LEFT_THUMB),
    ):
        pose[:, wrist] = hand[:, 0]
        pose[:, pinky] = 0.5 * (hand[:, 17] + hand[:, 18])
        pose[:, index] = 0.5 * (hand[:, 5] + hand[:, 6])
        pose[:, thumb] = hand[:, 2]
    scale = shoulder_width / 0.30
    for left_index, (x, y, z) in _LOWER_BODY_LEFT.items():
        right_index = MIRROR[left_index]
        pose[:, left_index] = root + np.array([x * scale, y, z])
        pose[:, right_index] = root + np.array([-x * scale, y, z])
    return pose


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """The same pose performed mirror-wise: x negated and left/right landmarks swapped."""
    mirrored = pose[:, MIRROR].copy()
    mirrored[..., 0] *= -1.0
    return mirrored
