"""The video environment's side of extraction: `python -m signpipe.video.worker`.

The main environment cannot import mediapipe (protobuf conflict, docs/video.md), so it runs this
module with the video environment's interpreter and talks to it through files and JSON:

- stdin: one JSON request, `{"videos": [{"path": "/abs/in.mp4", "out": "/abs/0.npy"}, ...]}`;
- stdout: one JSON event per line, in this order:
  `{"event": "ready", "mediapipe": version, "opencv": version, "python": path}`,
  `{"event": "probed", "frame_counts": [n or null, ...], "problems": [{"index": i, "message": m}]}`
  (with problems, nothing is landmarked and the worker stops: every bad video reported at once),
  then per video `{"event": "frame", "index": i, "done": k}` after each frame and
  `{"event": "video", "index": i, "frames": T, "seconds": s}` once its `[T, 543, 3]` float32
  array is saved at its `out` path, and finally `{"event": "finished"}`;
- `{"event": "error", "index": i, "message": m}` for a video that fails mid-way, and
  `{"event": "fatal", "message": m}` when the worker cannot work at all (no mediapipe, bad
  request); the exit status is then non-zero.

Arrays travel as .npy files (written under a temporary name, then renamed) rather than through
the pipe, so a long video costs one file write, not megabytes of JSON. MediaPipe's own logging
and anything a library prints go to stderr: file descriptor 1 is pointed at stderr at start, and
events go to a private copy of the original stdout, so nothing else can corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import IO

import numpy as np

from signpipe.data.atomic import atomic_path


def _protocol_stream() -> IO[str]:
    """A private handle on the original stdout for events, with fd 1 sent to stderr."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return events


def _send(stream: IO[str], event: str, **fields) -> None:
    stream.write(json.dumps({"event": event, **fields}) + "\n")
    stream.flush()


def _read_request(text: str) -> list[dict]:
    request = json.loads(text)
    videos = request.get("videos") if isinstance(request, dict) else None
    if not isinstance(videos, list) or not all(isinstance(v, dict) and isinstance(v.get("path"), str)
                                               and isinstance(v.get("out"), str) for v in videos):
        raise ValueError('expected {"videos": [{"path": str, "out": str}, ...]}')
    return videos


def run(request_text: str, events: IO[str]) -> int:
    """Serve one request; the exit status of the worker."""
    try:
        videos = _read_request(request_text)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        _send(events, "fatal", message=f"bad request on stdin: {exc}")
        return 2
    try:
        import cv2
        import mediapipe

        from signpipe.video import holistic
    except ImportError as exc:
        _send(events, "fatal", message=f"{sys.executable} cannot import the video libraries ({exc}); "
                                       "expected mediapipe 0.10.x and OpenCV there (make video-env)")
        return 3
    _send(events, "ready", mediapipe=mediapipe.__version__, opencv=cv2.__version__, python=sys.executable)

    frame_counts, problems = [], []
    for index, video in enumerate(videos):
        try:
            frame_counts.append(holistic.probe_video(video["path"]).frame_count)
        except holistic.UnreadableVideo as exc:
            frame_counts.append(None)
            problems.append({"index": index, "message": str(exc)})
    _send(events, "probed", frame_counts=frame_counts, problems=problems)
    if problems:
        return 1

    for index, video in enumerate(videos):
        started = time.perf_counter()
        try:
            frames = holistic.landmark_video(video["path"], lambda done, i=index: _send(events, "frame", index=i, done=done))
        except holistic.UnreadableVideo as exc:
            _send(events, "error", index=index, message=str(exc))
            return 1
        with atomic_path(video["out"]) as tmp:
            with open(tmp, "wb") as stream:
                np.save(stream, frames)
        _send(events, "video", index=index, frames=len(frames), seconds=time.perf_counter() - started)
    _send(events, "finished")
    return 0


def main() -> int:
    events = _protocol_stream()
    return run(sys.stdin.read(), events)


if __name__ == "__main__":
    sys.exit(main())
