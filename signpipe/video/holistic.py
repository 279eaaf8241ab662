"""Video frames -> 543 MediaPipe Holistic landmarks per frame. Runs only in the video environment.

This is the same model family the Kaggle corpora were recorded with: the legacy
`mediapipe.solutions.holistic` graph (mediapipe 0.10.x), whose models ship inside the wheel, so
extraction works offline. Only the pose model of `model_complexity=1` ships there (0 and 2 are
downloaded on first use), hence the fixed complexity. Face landmarks are the 468-point mesh
(`refine_face_landmarks=False`; the refined mesh has 478 points and no place in the layout).

Each video gets a fresh Holistic graph: in video mode the graph tracks regions of interest from
frame to frame, and a graph carried over from the previous video would start out "seeing" that
video's signer. A part MediaPipe does not find in a frame is NaN there, all its points at once,
as in the competition's data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from mediapipe.python.solutions import holistic as mp_holistic

from signpipe.data.schema import N_POINTS, PART_OFFSET, PART_SIZE

MODEL_COMPLEXITY = 1
MIN_DETECTION_CONFIDENCE = 0.5
MIN_TRACKING_CONFIDENCE = 0.5
#: Holistic's result field of each part of the 543-point layout
RESULT_FIELDS = {"face": "face_landmarks", "left_hand": "left_hand_landmarks", "pose": "pose_landmarks",
                 "right_hand": "right_hand_landmarks"}


class UnreadableVideo(Exception):
    """OpenCV cannot open a file as a video, or finds no frame in it."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video's header says; `frame_count` is `None` when the container does not tell
    (streams written by browsers often do not)."""

    frame_count: int | None
    fps: float | None
    width: int
    height: int


def _open(path: str | Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise UnreadableVideo("expected a video OpenCV can decode, found a damaged file or a format its FFmpeg "
                              "build does not read")
    return capture


def probe_video(path: str | Path) -> VideoInfo:
    """Open a video and decode its first frame, so damaged and empty videos are found before any
    landmarking starts."""
    capture = _open(path)
    try:
        ok, frame = capture.read()
        if not ok or frame is None:
            raise UnreadableVideo("expected at least one frame, found none that decodes (an empty or damaged video)")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        return VideoInfo(count if count > 0 else None, fps if fps > 0 else None, int(frame.shape[1]), int(frame.shape[0]))
    finally:
        capture.release()


def rgb_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decoded frames as contiguous RGB uint8 `[H, W, 3]`, the input MediaPipe expects.

    OpenCV applies a phone video's rotation metadata itself, so portrait recordings come out
    upright.
    """
    capture = _open(path)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
            else:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            yield frame
    finally:
        capture.release()


def _points(landmark_list, n_points: int) -> np.ndarray | None:
    """`[n, 3]` float32 x, y, z of one part's landmarks, `None` when the part was not found."""
    if landmark_list is None:
        return None
    points = np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float32)
    if points.shape != (n_points, 3):
        raise RuntimeError(f"MediaPipe Holistic returned {points.shape[0]} landmarks where {n_points} were expected")
    return points


class HolisticLandmarker:
    """One MediaPipe Holistic graph in video mode: one instance per video, used as a context."""

    def __init__(self) -> None:
        self._graph = mp_holistic.Holistic(
            static_image_mode=False,
            model_complexity=MODEL_COMPLEXITY,
            smooth_landmarks=True,
            refine_face_landmarks=False,
            min_detection_confidence=MIN_DETECTION_CONFIDENCE,
            min_tracking_confidence=MIN_TRACKING_CONFIDENCE,
        )

    def __enter__(self) -> HolisticLandmarker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._graph.close()

    def landmarks(self, rgb: np.ndarray) -> np.ndarray:
        """`[543, 3]` float32 landmarks of one RGB frame, NaN for the parts not found."""
        result = self._graph.process(rgb)
        frame = np.full((N_POINTS, 3), np.nan, dtype=np.float32)
        for part, field in RESULT_FIELDS.items():
            points = _points(getattr(result, field), PART_SIZE[part])
            if points is not None:
                frame[PART_OFFSET[part]:PART_OFFSET[part] + PART_SIZE[part]] = points
        return frame


def landmark_video(path: str | Path, on_frame: Callable[[int], None] | None = None) -> np.ndarray:
    """`[T, 543, 3]` float32 landmarks of every frame of a video, with a fresh graph.

    `on_frame(k)` is called after the k-th frame (1-based), for progress reports.
    """
    frames = []
    with HolisticLandmarker() as landmarker:
        for rgb in rgb_frames(path):
            frames.append(landmarker.landmarks(rgb))
            if on_frame is not None:
                on_frame(len(frames))
    if not frames:
        raise UnreadableVideo("expected at least one frame, found none that decodes (an empty or damaged video)")
    return np.stack(frames)
