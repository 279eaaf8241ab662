"""How fast `signpipe extract` turns video into landmarks on this machine (MediaPipe Holistic,
model_complexity=1, CPU), and what starting the video environment costs.

    .venv/bin/python benchmarks/extract.py                    # a 90-frame 640x480 video of a real photo
    .venv/bin/python benchmarks/extract.py --frames 300 --size 1280x720
    .venv/bin/python benchmarks/extract.py --video my.mp4     # your own recordings (repeatable)

Runs from the main environment exactly as `signpipe extract` does: one worker process in the video
environment (`make video-env`) for all videos. Prints the start-up (interpreter, mediapipe
import, first graph) until the first frame is done, the steady frames/s after it, the overall
frames/s including start-up, and the worker's CPU time, with the load average beside them: on a
shared machine the wall-clock figures fall with other processes' load, the CPU time hardly.
Without --video the input is scikit-image's astronaut photograph, moved and zoomed a little per
frame like a handheld recording, written by OpenCV in the video environment (scikit-image comes
with its test requirements).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from signpipe.errors import SignpipeError
from signpipe.video.client import FrameProgress, landmark_videos
from signpipe.video.environment import find_video_python

#: run by the video environment's python: argv = out path, frames, width, height
_WRITE_VIDEO = """
import sys
import cv2
import numpy as np
from skimage import data

out, n_frames, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
side = min(width, height)
person = cv2.cvtColor(cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
canvas = np.full((height, width, 3), 90, np.uint8)
x0, y0 = (width - side) // 2, (height - side) // 2
canvas[y0:y0 + side, x0:x0 + side] = person
writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"mp4v"), 30, (width, height))
for k in range(n_frames):
    scale = 1.0 + 0.03 * np.sin(k / 15)
    matrix = np.float32([[scale, 0, 6 * np.sin(k / 7) + width / 2 * (1 - scale)],
                         [0, scale, 4 * np.cos(k / 9) + height / 2 * (1 - scale)]])
    writer.write(cv2.warpAffine(canvas, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE))
writer.release()
"""


def write_benchmark_video(python: Path, out: Path, n_frames: int, width: int, height: int) -> Path:
    subprocess.run([str(python), "-c", _WRITE_VIDEO, str(out), str(n_frames), str(width), str(height)], check=True)
    return out


def measure(videos: list[Path], python: Path | None) -> dict:
    stamps: list[float] = []

    def record(update: FrameProgress) -> None:
        stamps.append(time.perf_counter())

    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    frames_found = {"pose": 0, "face": 0, "frames": 0}
    for _, frames in landmark_videos(videos, progress=record, python=python):
        frames_found["frames"] += len(frames)
        frames_found["pose"] += int(np.isfinite(frames[:, 489, 0]).sum())
        frames_found["face"] += int(np.isfinite(frames[:, 0, 0]).sum())
    total = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (children.ru_utime - children_before.ru_utime) + (children.ru_stime - children_before.ru_stime)
    n = len(stamps)
    steady = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 and stamps[-1] > stamps[0] else float("nan")
    return {
        "videos": len(videos),
        "frames": n,
        "frames_with_pose": frames_found["pose"],
        "frames_with_face": frames_found["face"],
        "startup_to_first_frame_s": round(stamps[0] - started, 2) if stamps else None,
        "steady_frames_per_s": round(steady, 2),
        "overall_frames_per_s": round(n / total, 2),
        "total_s": round(total, 2),
        # CPU seconds the worker used, start-up included: unlike wall time, barely affected by
        # other processes competing for the cores
        "worker_cpu_s": round(worker_cpu, 2),
        "worker_cpu_ms_per_frame": round(1000 * worker_cpu / n, 1) if n else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, action="append", help="a video to landmark (repeatable)")
    parser.add_argument("--frames", type=int, default=90, help="frames of the generated video")
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the generated video")
    parser.add_argument("--python", type=Path, help="the video environment's python (default: discovered)")
    args = parser.parse_args()
    try:
        python = args.python or find_video_python()
    except SignpipeError as exc:  # `make bench` runs every benchmark; this one needs `make video-env`
        print(f"skipped: {exc}")
        return
    with tempfile.TemporaryDirectory(prefix="signpipe-bench-") as scratch:
        videos = args.video
        if not videos:
            width, height = (int(v) for v in args.size.lower().split("x"))
            videos = [write_benchmark_video(python, Path(scratch) / "astronaut.mp4", args.frames, width, height)]
        figures = measure(videos, python)
    figures.update({
        "input": "generated astronaut video " + args.size if not args.video else ", ".join(map(str, args.video)),
        "model_complexity": 1,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "video_python": str(python),
    })
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
