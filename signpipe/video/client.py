"""The main environment's side of extraction: run the video worker and stream its landmarks back.

`landmark_videos` is the one way signpipe turns videos into `[T, 543, 3]` frames: the extraction
command writes them into a corpus, and `video_landmarks` (one video, e.g. for `signpipe predict`)
returns them directly. The worker protocol is described in `signpipe.video.worker`.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from signpipe.data.schema import N_POINTS
from signpipe.errors import Problem, SignpipeError
from signpipe.video.environment import find_video_python
from signpipe.video.inputs import VideoError, check_videos

WORKER_MODULE = "signpipe.video.worker"
#: how much of the worker's stderr an error message quotes
STDERR_TAIL_LINES = 12


@dataclass(frozen=True)
class FrameProgress:
    """Where extraction stands after a frame: for a progress bar and a frames/s figure.

    `frames_expected` is the sum of the videos' frame counts, `None` when a container does not
    say how many frames it holds.
    """

    video: Path
    video_index: int
    frames_done: int
    frames_expected: int | None


class WorkerFailed(SignpipeError):
    """The video worker could not start or stopped without finishing, with why and where."""


def _stderr_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    # MediaPipe's routine start-up chatter says nothing about a failure
    lines = [line for line in lines if line.strip() and not line.startswith(("I0000", "W0000", "INFO: Created"))]
    return "\n".join(lines[-STDERR_TAIL_LINES:])


def landmark_videos(
    videos: Iterable[str | Path],
    progress: Callable[[FrameProgress], None] | None = None,
    python: str | Path | None = None,
) -> Iterator[tuple[Path, np.ndarray]]:
    """`(video, frames [T, 543, 3] float32)` for each video, in order, as each is finished.

    Every video is checked first (here, then decoded once by the worker), and one `VideoError`
    lists all the bad ones before any landmarking starts. `python` overrides the discovery of the
    video environment (`find_video_python`). One worker process serves all the videos, so
    MediaPipe's start-up is paid once. Stopping the iteration early stops the worker.
    """
    paths = check_videos(videos)
    interpreter = Path(python) if python is not None else find_video_python()
    with tempfile.TemporaryDirectory(prefix="signpipe-video-") as scratch:
        scratch_dir = Path(scratch)
        outputs = [scratch_dir / f"{i}.npy" for i in range(len(paths))]
        request = {"videos": [{"path": str(p), "out": str(o)} for p, o in zip(paths, outputs)]}
        stderr_path = scratch_dir / "worker.stderr"
        with open(stderr_path, "wb") as stderr:
            try:
                worker = subprocess.Popen([str(interpreter), "-m", WORKER_MODULE], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=stderr, text=True, encoding="utf-8")
            except OSError as exc:
                raise WorkerFailed(f"{interpreter}: expected the video environment's python, could not start it "
                                   f"({exc.strerror or exc})") from None
            try:
                yield from _serve(worker, request, paths, outputs, progress, interpreter, stderr_path)
            finally:
                if worker.poll() is None:
                    worker.kill()
                worker.wait()
                if worker.stdout is not None:
                    worker.stdout.close()


def _serve(worker: subprocess.Popen, request: dict, paths: list[Path], outputs: list[Path],
           progress: Callable[[FrameProgress], None] | None, interpreter: Path,
           stderr_path: Path) -> Iterator[tuple[Path, np.ndarray]]:
    """Send the request, follow the events, yield each finished video's frames."""
    try:
        worker.stdin.write(json.dumps(request))
        worker.stdin.close()
    except BrokenPipeError:
        pass  # the worker died at start; its exit status and stderr tell why, below
    expected: int | None = None
    done_before = 0  # frames of the videos already finished
    finished = False
    for line in worker.stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # not an event: nothing but the worker writes to this pipe, but stay robust
        kind = event.get("event")
        if kind == "fatal":
            raise WorkerFailed(f"video worker ({interpreter}): {event.get('message')}")
        if kind == "probed":
            counts = event.get("frame_counts", [])
            expected = None if any(c is None for c in counts) else int(sum(counts))
            bad = event.get("problems", [])
            if bad:
                raise VideoError([Problem(str(paths[p["index"]]), p["message"]) for p in bad])
        elif kind == "frame" and progress is not None:
            index = int(event["index"])
            progress(FrameProgress(paths[index], index, done_before + int(event["done"]), expected))
        elif kind == "error":
            raise VideoError(Problem(str(paths[int(event["index"])]), event.get("message", "failed")))
        elif kind == "video":
            index = int(event["index"])
            frames = np.load(outputs[index])
            outputs[index].unlink()
            if frames.dtype != np.float32 or frames.ndim != 3 or frames.shape[1:] != (N_POINTS, 3):
                raise WorkerFailed(f"video worker ({interpreter}): expected frames [T, {N_POINTS}, 3] float32 for "
                                   f"{paths[index]}, found {frames.dtype} {frames.shape}")
            done_before += len(frames)
            yield paths[index], frames
        elif kind == "finished":
            finished = True
    status = worker.wait()
    if not finished or status != 0:
        tail = _stderr_tail(stderr_path)
        hint = ""
        if "No module named 'signpipe" in tail:
            hint = " (signpipe is not installed there: `make video-env` installs it with --no-deps)"
        raise WorkerFailed(f"video worker ({interpreter}) exited with status {status} before finishing{hint}"
                           + (f":\n{tail}" if tail else ""))


def video_landmarks(video: str | Path, python: str | Path | None = None) -> np.ndarray:
    """`[T, 543, 3]` float32 landmarks of one video (NaN where a part was not found)."""
    for _, frames in landmark_videos([video], python=python):
        return frames
    raise WorkerFailed(f"video worker: expected the landmarks of {video}, found none")  # pragma: no cover
