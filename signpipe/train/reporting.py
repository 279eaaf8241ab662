"""Where a training run reports: TensorBoard scalars, a `metrics.jsonl` log, a live progress bar.

- `workdir/tb/`: TensorBoard event files (tensorboardX), for `tensorboard --logdir` and Vertex AI
  TensorBoard.
- `workdir/metrics.jsonl`: one JSON object per logged step (`{"step": 100, "train/loss": ...}`),
  readable without TensorBoard by tests, pipelines and people. Strict JSON: a value that is not
  finite (a diverged loss) is written as `null`, never as `NaN` or `Infinity`, which strict parsers
  refuse (`strict_json`; every metrics file of a training run is written with it).

A resumed run redoes the steps after its last checkpoint, so both logs are cut back to that step
when it starts again (`purge_step` for TensorBoard, a rewrite for the JSON lines); otherwise a
killed-and-resumed run would log those steps twice.

The progress bar (step, loss, steps/s, ETA) is live on a terminal; elsewhere (CI, Vertex logs)
the same figures are printed as one plain line per log interval.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from signpipe.data.atomic import atomic_write_text

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tb"


def finite_or_none(value: Any) -> Any:
    """`value` with every float that is not finite (NaN, +-inf) replaced by None, through dicts,
    lists and tuples; numpy scalars become Python numbers."""
    if isinstance(value, Mapping):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        value = value.item()  # numpy / jax scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def strict_json(value: Any, indent: int | None = None) -> str:
    """`value` as strict JSON (RFC 8259): non-finite floats as null (`finite_or_none`), and never
    a `NaN`/`Infinity` token (`allow_nan=False`)."""
    return json.dumps(finite_or_none(value), indent=indent, allow_nan=False)


def read_metrics(workdir: str | Path) -> list[dict]:
    """Every record of `workdir/metrics.jsonl`, in order."""
    path = Path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class ScalarWriter:
    """Scalars of one run to TensorBoard and `metrics.jsonl`; a no-op on hosts other than the first."""

    def __init__(self, workdir: str | Path, start_step: int = 0, enabled: bool = True):
        self.enabled = enabled
        if not enabled:
            return
        from tensorboardX import SummaryWriter

        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self._jsonl_path = workdir / METRICS_FILE
        if self._jsonl_path.exists():
            kept = [r for r in read_metrics(workdir) if r.get("step", 0) <= start_step]
            atomic_write_text(self._jsonl_path, "".join(strict_json(r) + "\n" for r in kept))
        self._tensorboard = SummaryWriter(str(workdir / TENSORBOARD_DIR), purge_step=start_step or None)
        self._jsonl = self._jsonl_path.open("a", encoding="utf-8")

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        values = {name: float(value) for name, value in scalars.items()}
        for name, value in values.items():
            if math.isfinite(value):  # a diverged value is in metrics.jsonl (as null) and in the error
                self._tensorboard.add_scalar(name, value, step)
        self._jsonl.write(strict_json({"step": int(step), **values}) + "\n")
        self._jsonl.flush()

    def flush(self) -> None:
        if self.enabled:
            self._tensorboard.flush()
            self._jsonl.flush()

    def close(self) -> None:
        if self.enabled:
            self._tensorboard.close()
            self._jsonl.close()
            self.enabled = False

    def __enter__(self) -> ScalarWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StepRate:
    """Steps per second over the steps since the last reading (excludes earlier compile time)."""

    def __init__(self, step: int):
        self._step = step
        self._time = time.perf_counter()

    def read(self, step: int) -> float:
        now = time.perf_counter()
        elapsed, steps = now - self._time, step - self._step
        self._step, self._time = step, now
        return steps / elapsed if elapsed > 0 and steps > 0 else float("nan")


class TrainingProgress:
    """Step, loss, steps/s and ETA of a run: a live bar on a terminal, plain lines elsewhere."""

    def __init__(self, description: str, total_steps: int, start_step: int = 0, console: Console | None = None, enabled: bool = True):
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.total_steps = total_steps
        self.live = enabled and self.console.is_terminal
        self._start_time = time.perf_counter()
        self._start_step = start_step
        self._progress: Progress | None = None
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[rate]} steps/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._task = self._progress.add_task(description, total=total_steps, completed=start_step, loss="-", rate="-")
        elif enabled:
            self.console.print(f"{description}: steps {start_step}..{total_steps}", highlight=False)

    def update(self, step: int, loss: float, steps_per_second: float) -> None:
        if not self.enabled:
            return
        rate = f"{steps_per_second:.2f}" if math.isfinite(steps_per_second) else "-"
        if self._progress is not None:
            self._progress.update(self._task, completed=step, loss=f"{loss:.4f}", rate=rate)
            return
        eta = self._eta(step)
        self.console.print(
            f"step {step}/{self.total_steps}  loss {loss:.4f}  {rate} steps/s  ETA {eta}", highlight=False
        )

    def _eta(self, step: int) -> str:
        done = step - self._start_step
        if done <= 0:
            return "-"
        seconds = (time.perf_counter() - self._start_time) / done * (self.total_steps - step)
        return time.strftime("%H:%M:%S", time.gmtime(seconds))

    def note(self, message: str) -> None:
        """A line above the bar (validation results, checkpoints)."""
        if self.enabled:
            self.console.print(message, highlight=False)

    def __enter__(self) -> TrainingProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
