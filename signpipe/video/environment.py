"""Which Python interpreter runs MediaPipe: the video environment.

mediapipe 0.10.x needs protobuf < 5 and tensorflow-cpu 2.21 needs protobuf >= 5, so the two
cannot share one environment (docs/video.md). The main environment therefore never imports
mediapipe; it starts `python -m signpipe.video.worker` with the video environment's interpreter,
found in this order:

1. `SIGNPIPE_VIDEO_PYTHON`, when set (the `video` image, or any environment a user built);
2. `.venv-video/bin/python` of the source checkout this signpipe runs from, or of the current
   directory (what `make video-env` builds);
3. the current interpreter, when it has mediapipe itself (running inside the video environment).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from signpipe.errors import SignpipeError

ENV_VARIABLE = "SIGNPIPE_VIDEO_PYTHON"
VIDEO_VENV = ".venv-video"
#: the interpreter inside a virtual environment, on POSIX and on Windows
_VENV_PYTHONS = (Path("bin") / "python", Path("Scripts") / "python.exe")


def _checkout_roots() -> list[Path]:
    """Directories that may hold `.venv-video`: the checkout signpipe was imported from (its
    parent holds `pyproject.toml` in an editable install) and the current directory."""
    package_parent = Path(__file__).resolve().parents[2]
    roots = [package_parent] if (package_parent / "pyproject.toml").is_file() else []
    cwd = Path.cwd().resolve()
    return roots + ([cwd] if cwd not in roots else [])


def _venv_python(venv: Path) -> Path | None:
    for relative in _VENV_PYTHONS:
        candidate = venv / relative
        if candidate.is_file():
            return candidate
    return None


def find_video_python() -> Path:
    """The interpreter to run the MediaPipe worker with; `SignpipeError` when there is none.

    Does not start the interpreter: whether mediapipe imports there is reported by the worker
    itself on its first line, which costs nothing extra.
    """
    explicit = os.environ.get(ENV_VARIABLE, "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            found = "a directory" if path.is_dir() else "a file that is not executable" if path.exists() else "no such file"
            raise SignpipeError(f"{ENV_VARIABLE}={explicit}: expected the python executable of the video "
                                f"environment, found {found}")
        return path
    for root in _checkout_roots():
        python = _venv_python(root / VIDEO_VENV)
        if python is not None:
            return python
    if importlib.util.find_spec("mediapipe") is not None:
        return Path(sys.executable)
    searched = ", ".join(str(root / VIDEO_VENV) for root in _checkout_roots())
    raise SignpipeError(f"no video environment: expected {ENV_VARIABLE} to name a python with mediapipe 0.10.x, "
                        f"or a virtual environment at {searched} (build it with `make video-env`), or mediapipe "
                        f"in this python ({sys.executable}); found none")
