"""Time the local smoke run (`make run`): wall time per task and in total, against the 10-minute
budget on 2 cores.

    .venv/bin/python benchmarks/local_smoke_run.py [--runs-dir DIR] [--keep]

Wall time on a shared machine says as much about the neighbours as about the pipeline, so the
benchmark also prints the machine's load average before and after and the CPU time the run's
processes used (this one and every task subprocess): on an otherwise idle 2-core machine the wall
time approaches CPU time divided by the cores the tasks keep busy.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402

from pipelines.local import run_local  # noqa: E402

BUDGET_S = 600.0


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=None, help="where the run folder goes (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary runs folder")
    args = parser.parse_args()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="signpipe-bench-"))
    console = Console()
    load_before = os.getloadavg()
    cpu_before, started = cpu_seconds(), time.perf_counter()
    try:
        run = run_local("fingerspelling", "smoke", runs_dir=runs_dir, console=console)
    finally:
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        load_after = os.getloadavg()
        if args.runs_dir is None and not args.keep:
            shutil.rmtree(runs_dir, ignore_errors=True)
    print()
    print(f"machine: {os.cpu_count()} cores; load average (1/5/15 min) before {load_before[0]:.1f}/{load_before[1]:.1f}/"
          f"{load_before[2]:.1f}, after {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f}")
    print(f"{'task':<20} {'seconds':>8}  share")
    for item in sorted(run.tasks, key=lambda t: -t.seconds):
        print(f"{item.task:<20} {item.seconds:>8.1f}  {item.seconds / wall:6.1%}")
    print(f"{'total (wall)':<20} {wall:>8.1f}  budget {BUDGET_S:.0f} s: {'within' if wall <= BUDGET_S else 'OVER'}")
    print(f"{'CPU time, all procs':<20} {cpu:>8.1f}")
    return 0 if run.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
