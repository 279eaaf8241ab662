"""The runs of this machine, `RUNS_DIR/<name>-<time>/` folders, and the local model registries
beside them: what `signpipe runs list|show` lists and what a run's page compares itself with.

What `signpipe run --local` leaves (pipelines/local.py): each run folder holds `parameters.json`
(written before the first task), `pipeline.log`, `summary.json` (written when the run ends: score,
gate verdict, size, latency, time per task) and, when the report was written, `index.html`. A
folder without `summary.json` is a run that was stopped (killed, or still going): it is listed as
incomplete. Registries live in `RUNS_DIR/registry/<pipeline>/` and
`RUNS_DIR/plumbing-registry/<pipeline>/` (`signpipe.registry.LocalModelRegistry`).

Nothing here imports kfp: only JSON files are read.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signpipe.errors import ConfigError, SignpipeError

SUMMARY_FILE = "summary.json"
PARAMETERS_FILE = "parameters.json"
LOG_FILE = "pipeline.log"
INDEX_FILE = "index.html"
"""the run's page (`signpipe.pages.run_index_page`)"""
HOLDOUT_FILE = "holdout.json"
REGISTRY_DIR = "registry"
PLUMBING_REGISTRY_DIR = "plumbing-registry"
REGISTRY_DIRS = (REGISTRY_DIR, PLUMBING_REGISTRY_DIR)
#: `<name>-YYYYmmdd-HHMMSS`, with `-N` when two runs of one name started in the same second
_RUN_FOLDER = re.compile(r"^(?P<name>.+)-(?P<stamp>\d{8}-\d{6})(?:-(?P<extra>\d+))?$")


@dataclass
class LocalRunInfo:
    """One run folder, read (never trusted to be complete)."""

    folder: Path
    name: str
    started: datetime.datetime | None
    summary: dict[str, Any] | None
    parameters: dict[str, Any] = field(default_factory=dict)
    problem: str = ""
    """why `summary.json` could not be read, when it is there but damaged"""

    @property
    def complete(self) -> bool:
        return self.summary is not None

    @property
    def figures(self) -> dict[str, Any]:
        return dict((self.summary or {}).get("summary") or {})

    @property
    def pipeline(self) -> str:
        if self.summary and self.summary.get("pipeline"):
            return str(self.summary["pipeline"])
        for known in ("fingerspelling", "isolated-signs"):  # the default run name is PIPELINE-PRESET
            if self.name.startswith(known):
                return known
        return ""

    @property
    def preset(self) -> str:
        if self.summary and self.summary.get("preset"):
            return str(self.summary["preset"])
        return str((self.parameters.get("labels") or {}).get("preset", ""))

    @property
    def state(self) -> str:
        if self.summary is None:
            return "incomplete"
        return "succeeded" if self.summary.get("succeeded") else f"failed at {self.summary.get('failed_task') or '?'}"

    @property
    def report(self) -> Path | None:
        path = self.folder / INDEX_FILE
        return path if path.is_file() else None

    def row(self) -> dict[str, Any]:
        """What `runs list --json` prints for the run."""
        figures = self.figures
        return {
            "name": self.folder.name,
            "folder": str(self.folder),
            "pipeline": self.pipeline,
            "preset": self.preset,
            "started": self.started.isoformat(sep=" ") if self.started else None,
            "state": self.state,
            "seconds": (self.summary or {}).get("seconds"),
            "score": figures.get("score"),
            "metric": figures.get("metric"),
            "gate": figures.get("gate"),
            "gate_failed": figures.get("gate_failed") or [],
            "published_version": figures.get("published_version"),
            "report": str(self.report) if self.report else None,
        }


def _read_json(path: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, ""
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name} unreadable ({exc})"
    if not isinstance(values, dict):
        return None, f"{path.name} holds no JSON object"
    return values, ""


def read_run(folder: Path) -> LocalRunInfo:
    match = _RUN_FOLDER.match(folder.name)
    started = None
    if match:
        try:
            started = datetime.datetime.strptime(match["stamp"], "%Y%m%d-%H%M%S")
        except ValueError:
            started = None
    if started is None:
        started = datetime.datetime.fromtimestamp(folder.stat().st_mtime).replace(microsecond=0)
    summary, problem = _read_json(folder / SUMMARY_FILE)
    parameters, _ = _read_json(folder / PARAMETERS_FILE)
    return LocalRunInfo(folder, match["name"] if match else folder.name, started, summary, parameters or {}, problem)


def _is_run_folder(path: Path) -> bool:
    if not path.is_dir() or path.name.startswith(".") or path.name in REGISTRY_DIRS:
        return False
    return bool(_RUN_FOLDER.match(path.name)) or any((path / name).exists() for name in (SUMMARY_FILE, PARAMETERS_FILE, LOG_FILE))


def list_local_runs(runs_dir: str | Path, pipeline: str | None = None, limit: int | None = None) -> list[LocalRunInfo]:
    """The run folders of `runs_dir`, newest first (by the time in the folder's name)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [read_run(path) for path in root.iterdir() if _is_run_folder(path)]
    if pipeline:
        runs = [run for run in runs if run.pipeline == pipeline]
    runs.sort(key=lambda run: (run.started or datetime.datetime.min, run.folder.name), reverse=True)
    return runs[:limit] if limit is not None else runs


def find_local_run(runs_dir: str | Path, name: str) -> LocalRunInfo:
    """A run by its folder name, its path, or its run name (the newest run of that name)."""
    given = Path(name)
    if given.is_dir() and any((given / file).exists() for file in (SUMMARY_FILE, PARAMETERS_FILE, LOG_FILE)):
        return read_run(given)
    runs = list_local_runs(runs_dir)
    for run in runs:
        if run.folder.name == name:
            return run
    named = [run for run in runs if run.name == name]
    if named:
        return named[0]
    known = ", ".join(run.folder.name for run in runs[:5]) or "none"
    raise ConfigError(f"{name}: no such local run in {runs_dir} (expected a folder name as `signpipe runs list --local` "
                      f"shows it, or a run name; newest there: {known})")


@dataclass
class RegistryListing:
    kind: str
    """`registry` or `plumbing-registry`"""
    pipeline: str
    root: Path
    versions: list[dict[str, Any]]
    champion: str | None
    problem: str = ""


def list_local_registries(runs_dir: str | Path, pipeline: str | None = None) -> list[RegistryListing]:
    """Every `RUNS_DIR/{registry,plumbing-registry}/<pipeline>/` with its versions, oldest first."""
    from signpipe.registry import LocalModelRegistry

    listings = []
    for kind in REGISTRY_DIRS:
        base = Path(runs_dir) / kind
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if pipeline and folder.name != pipeline:
                continue
            registry = LocalModelRegistry(folder)
            try:
                entries = registry.versions()
            except SignpipeError as exc:
                listings.append(RegistryListing(kind, folder.name, folder, [], None, str(exc)))
                continue
            versions = [{
                "version": entry.version,
                "score": entry.evaluation.get("score"),
                "metric": entry.evaluation.get("metric"),
                "created": entry.created,
                "bundle": entry.bundle_uri,
                "run": entry.metadata.get("run"),
                "champion": entry.champion,
            } for entry in entries]
            champion = next((entry.version for entry in entries if entry.champion), None)
            listings.append(RegistryListing(kind, folder.name, folder, versions, champion))
    return listings
