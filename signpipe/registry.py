"""The model registry a pipeline publishes to: where the champion lives and how it is replaced.

Two backends behind one interface (`champion()`, `versions()`, `publish(...)`):

- `LocalModelRegistry(root)`: a folder. Every published bundle gets its own numbered version
  directory (`versions/0001/`: the bundle, `evaluation.json`, `entry.json`), and `champion.json`
  names the version currently in production. Versions are written under a temporary name and
  renamed into place, and the champion pointer is replaced atomically under a lock, so a killed
  or concurrent publish never leaves a half-written version or a pointer to one.
- `VertexModelRegistry(project, location, model_name, storage)`: the Vertex AI Model Registry.
  The bundle is copied out of the pipeline root (whose runs expire, infra/modules/storage) into
  `storage` (a `gs://` folder) and registered as a new version of one model, and the `champion`
  version alias names the production version (Vertex moves an alias that another version holds).
  A TFLite bundle is not served by Vertex, and the registry only attaches `artifactUri` to models
  with a serving container, so each version is a reference: its description holds the bundle's
  `gs://` folder and score (JSON), its labels the run's preset and revision.

`publish` stores every bundle it is given and moves the champion like a compare-and-swap: the gate
judged the new model against the champion it saw (`expected_champion`, scored on the same
evaluation corpus); if that is still the champion, the new model takes over. If another run
promoted a different model in between, the new one takes over only if it beats that one by the
scores recorded at publication (`beats_champion`). So a retraining can never replace a better
model by a worse one, even when a scheduled and a manual run race.

`open_registry("runs/registry/fingerspelling")` or `open_registry("vertex://PROJECT/REGION/NAME",
storage="gs://BUCKET/models")` picks the backend from the URI a pipeline parameter carries.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from signpipe.data.atomic import atomic_write_text
from signpipe.errors import ConfigError, SignpipeError

CHAMPION_FILE = "champion.json"
VERSIONS_DIR = "versions"
ENTRY_FILE = "entry.json"
EVALUATION_FILE = "evaluation.json"
LOCK_FILE = ".lock"
CHAMPION_ALIAS = "champion"
VERTEX_SCHEME = "vertex://"
SCORE_KEY = "score"
_GCS_MOUNT = "/gcs/"
_LABEL_PATTERN = re.compile(r"[^a-z0-9_-]")


@dataclass(frozen=True)
class RegistryEntry:
    """One published model version: where its files are and how it scored."""

    version: str
    uri: str
    """The version's folder (a local path, or `gs://` for Vertex)."""
    bundle: str
    """File name of the bundle inside `uri`."""
    evaluation: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    champion: bool = False

    @property
    def bundle_uri(self) -> str:
        return f"{self.uri.rstrip('/')}/{self.bundle}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ModelRegistry(Protocol):
    def champion(self) -> RegistryEntry | None: ...

    def versions(self) -> list[RegistryEntry]: ...

    def publish(
        self,
        bundle: str | Path,
        evaluation: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        expected_champion: str | None = None,
        champion_margin: float = 0.0,
    ) -> RegistryEntry: ...


def score_of(evaluation: Mapping[str, Any], where: str = "evaluation") -> float:
    """The score an evaluation reports (`signpipe.export` writes it as "score")."""
    value = evaluation.get(SCORE_KEY)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SignpipeError(f"{where}: expected a finite number under {SCORE_KEY!r}, found {value!r}")
    return float(value)


def beats_champion(evaluation: Mapping[str, Any], champion: RegistryEntry | None, champion_margin: float = 0.0) -> bool:
    """Whether a model with `evaluation` may replace `champion`: there is none yet, or it scores
    at least the champion's score minus `champion_margin` (ties replace, so a retrained model of
    equal quality and newer data takes over)."""
    if not (math.isfinite(champion_margin) and champion_margin >= 0):
        raise ConfigError(f"champion_margin must be 0 or more, got {champion_margin}")
    if champion is None:
        return True
    return score_of(evaluation, "new model") >= score_of(champion.evaluation, f"champion {champion.version}") - champion_margin


def may_promote(evaluation: Mapping[str, Any], current: RegistryEntry | None, expected_champion: str | None,
                champion_margin: float = 0.0) -> bool:
    """The compare-and-swap rule of `publish`: promote when the champion is still the one the gate
    judged against (`expected_champion`, "" or None for none), else only over a champion it beats."""
    current_version = current.version if current is not None else None
    if (expected_champion or None) == current_version:
        return True
    return beats_champion(evaluation, current, champion_margin)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _json_ready(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` as they will read back from JSON (so a returned entry equals a re-read one)."""
    return json.loads(json.dumps(dict(values), default=str))


class LocalModelRegistry:
    """A model registry in a folder (see the module docstring for its layout)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalModelRegistry({str(self.root)!r})"

    @property
    def uri(self) -> str:
        return str(self.root)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the registry, so read-compare-promote is one step across processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_entry(self, version_dir: Path) -> RegistryEntry:
        try:
            raw = json.loads((version_dir / ENTRY_FILE).read_text(encoding="utf-8"))
            return RegistryEntry(**raw)
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise SignpipeError(f"{version_dir}: unreadable registry entry ({exc}); expected {ENTRY_FILE} written by publish") from None

    def _champion_version(self) -> str | None:
        path = self.root / CHAMPION_FILE
        if not path.exists():
            return None
        try:
            return str(json.loads(path.read_text(encoding="utf-8"))["version"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SignpipeError(f"{path}: not a champion pointer ({exc!r}); expected {{\"version\": ...}}") from None

    def versions(self) -> list[RegistryEntry]:
        """Every published version, oldest first, with `champion` set on the current one."""
        versions_dir = self.root / VERSIONS_DIR
        if not versions_dir.is_dir():
            return []
        champion = self._champion_version()
        entries = [self._read_entry(d) for d in sorted(versions_dir.iterdir()) if d.is_dir() and not d.name.startswith(".")]
        return [RegistryEntry(**{**e.to_dict(), "champion": e.version == champion}) for e in entries]

    def champion(self) -> RegistryEntry | None:
        version = self._champion_version()
        if version is None:
            return None
        version_dir = self.root / VERSIONS_DIR / version
        if not version_dir.is_dir():
            raise SignpipeError(f"{self.root / CHAMPION_FILE}: names version {version}, which {version_dir} does not hold")
        return RegistryEntry(**{**self._read_entry(version_dir).to_dict(), "champion": True})

    def _next_version(self) -> int:
        versions_dir = self.root / VERSIONS_DIR
        numbers = [int(d.name) for d in versions_dir.iterdir() if d.name.isdigit()] if versions_dir.is_dir() else []
        return max(numbers, default=0) + 1

    def _store(self, bundle: Path, evaluation: Mapping[str, Any], metadata: Mapping[str, Any]) -> RegistryEntry:
        """Copy the bundle into a new version folder, built under a temporary name and renamed into
        place; a number another process took meanwhile makes the rename fail, and the next is tried."""
        versions_dir = self.root / VERSIONS_DIR
        versions_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=versions_dir))
        try:
            shutil.copy2(bundle, staging / bundle.name)
            atomic_write_text(staging / EVALUATION_FILE, json.dumps(dict(evaluation), indent=2, default=str) + "\n")
            for _ in range(1000):
                version = f"{self._next_version():04d}"
                target = versions_dir / version
                entry = RegistryEntry(
                    version=version,
                    uri=str(target.resolve()),
                    bundle=bundle.name,
                    evaluation=_json_ready(evaluation),
                    metadata=_json_ready(metadata),
                    created=_now(),
                )
                atomic_write_text(staging / ENTRY_FILE, json.dumps(entry.to_dict(), indent=2) + "\n")
                try:
                    os.rename(staging, target)
                except OSError:
                    if target.exists():
                        continue
                    raise
                return entry
            raise SignpipeError(f"{versions_dir}: could not claim a new version number")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def publish(
        self,
        bundle: str | Path,
        evaluation: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        expected_champion: str | None = None,
        champion_margin: float = 0.0,
    ) -> RegistryEntry:
        """Store `bundle` as a new version and make it the champion by the rule of `may_promote`."""
        bundle = Path(bundle)
        if not bundle.is_file():
            raise SignpipeError(f"{bundle}: no such bundle file (expected the exported model zip)")
        score_of(evaluation, "new model")
        entry = self._store(bundle, evaluation, metadata or {})
        with self._locked():
            if not may_promote(evaluation, self.champion(), expected_champion, champion_margin):
                return entry
            atomic_write_text(self.root / CHAMPION_FILE, json.dumps({"version": entry.version, "promoted": _now()}) + "\n")
        return RegistryEntry(**{**entry.to_dict(), "champion": True})


def gcs_local_path(uri: str) -> Path | None:
    """Where Cloud Storage FUSE shows a `gs://` object inside Vertex AI steps and jobs, or None
    when it is not mounted here (a laptop)."""
    if not uri.startswith("gs://"):
        return Path(uri)
    mounted = Path(_GCS_MOUNT + uri[len("gs://"):])
    return mounted if Path(_GCS_MOUNT).is_dir() else None


def _split_gcs(uri: str) -> tuple[str, str]:
    bucket, _, name = uri[len("gs://"):].partition("/")
    return bucket, name


def _read_text(uri: str, project: str, credentials: Any = None) -> str:
    local = gcs_local_path(uri)
    if local is not None:
        return local.read_text(encoding="utf-8")
    from google.cloud import storage

    bucket, name = _split_gcs(uri)
    return storage.Client(project=project, credentials=credentials).bucket(bucket).blob(name).download_as_text()


def _upload_file(source: Path, uri: str, project: str, credentials: Any = None) -> None:
    local = gcs_local_path(uri)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, local)
        return
    from google.cloud import storage

    bucket, name = _split_gcs(uri)
    storage.Client(project=project, credentials=credentials).bucket(bucket).blob(name).upload_from_filename(str(source))


def vertex_label(value: Any) -> str:
    """`value` as a Vertex label value: lowercase letters, digits, '_' and '-', at most 63."""
    return _LABEL_PATTERN.sub("-", str(value).lower())[:63]


class VertexModelRegistry:
    """The Vertex AI Model Registry as the champion store (see the module docstring)."""

    def __init__(self, project: str, location: str, model_name: str, storage: str, credentials: Any = None):
        if not (project and location and model_name):
            raise ConfigError(f"vertex registry: expected a project, a region and a model name, got {project!r}, {location!r}, {model_name!r}")
        if not storage.startswith("gs://"):
            raise ConfigError(f"vertex registry {model_name!r}: storage {storage!r} must be a gs:// folder the bundles are copied to")
        self.project, self.location, self.model_name = project, location, model_name
        self.storage = storage.rstrip("/")
        self.credentials = credentials

    def __repr__(self) -> str:
        return f"VertexModelRegistry({self.uri!r}, storage={self.storage!r})"

    @property
    def uri(self) -> str:
        return f"{VERTEX_SCHEME}{self.project}/{self.location}/{self.model_name}"

    def _scope(self) -> dict[str, Any]:
        return {"project": self.project, "location": self.location, "credentials": self.credentials}

    def _model(self) -> Any | None:
        from google.cloud import aiplatform

        found = aiplatform.Model.list(filter=f'display_name="{self.model_name}"', **self._scope())
        return found[0] if found else None

    def _entry(self, model: Any, champion: bool) -> RegistryEntry:
        where = f"{self.uri} version {model.version_id}"
        try:
            reference = json.loads(model.version_description or "")
            uri, bundle = reference["uri"], reference["bundle"]
        except (ValueError, KeyError, TypeError):
            raise SignpipeError(f"{where}: its description is not a signpipe bundle reference (expected JSON with uri and bundle)") from None
        try:
            evaluation = json.loads(_read_text(f"{uri.rstrip('/')}/{EVALUATION_FILE}", self.project, self.credentials))
        except (OSError, ValueError) as exc:
            raise SignpipeError(f"{where}: no readable {EVALUATION_FILE} in {uri} ({exc})") from None
        return RegistryEntry(version=str(model.version_id), uri=uri, bundle=bundle, evaluation=evaluation,
                             metadata=dict(model.labels or {}), created=str(model.create_time or ""), champion=champion)

    def champion(self) -> RegistryEntry | None:
        from google.api_core import exceptions
        from google.cloud import aiplatform

        model = self._model()
        if model is None:
            return None
        try:
            champion = aiplatform.Model(model_name=f"{model.resource_name}@{CHAMPION_ALIAS}", **self._scope())
        except exceptions.NotFound:
            return None
        return self._entry(champion, champion=True)

    def versions(self) -> list[RegistryEntry]:
        from google.cloud import aiplatform

        model = self._model()
        if model is None:
            return []
        registry = aiplatform.models.ModelRegistry(model.resource_name, **self._scope())
        entries = []
        for info in registry.list_versions():
            version = registry.get_model(version=info.version_id)
            entries.append(self._entry(version, champion=CHAMPION_ALIAS in (info.version_aliases or [])))
        return entries

    def publish(
        self,
        bundle: str | Path,
        evaluation: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        expected_champion: str | None = None,
        champion_margin: float = 0.0,
    ) -> RegistryEntry:
        """Copy the bundle and its evaluation to `storage`, upload them as a new model version, and
        give it the `champion` alias by the rule of `may_promote` (Vertex has no lock to hold
        across the check and the upload, so the window is the upload's duration)."""
        from google.cloud import aiplatform

        bundle = Path(bundle)
        if not bundle.is_file():
            raise SignpipeError(f"{bundle}: no such bundle file (expected the exported model zip)")
        score_of(evaluation, "new model")
        metadata = dict(metadata or {})
        folder = f"{self.storage}/{self.model_name}/{datetime.datetime.now(datetime.timezone.utc):%Y%m%d-%H%M%S-%f}"
        with tempfile.TemporaryDirectory() as scratch:
            evaluation_file = Path(scratch) / EVALUATION_FILE
            evaluation_file.write_text(json.dumps(dict(evaluation), indent=2, default=str) + "\n", encoding="utf-8")
            _upload_file(evaluation_file, f"{folder}/{EVALUATION_FILE}", self.project, self.credentials)
        _upload_file(bundle, f"{folder}/{bundle.name}", self.project, self.credentials)
        parent = self._model()
        promote = may_promote(evaluation, self.champion(), expected_champion, champion_margin)
        reference = {"uri": folder, "bundle": bundle.name, "score": score_of(evaluation), **{k: str(v) for k, v in metadata.items()}}
        uploaded = aiplatform.Model.upload(
            display_name=self.model_name,
            parent_model=parent.resource_name if parent is not None else None,
            is_default_version=promote,
            version_aliases=[CHAMPION_ALIAS] if promote else None,
            version_description=json.dumps(reference),
            labels={vertex_label(k): vertex_label(v) for k, v in metadata.items()},
            sync=True,
            **self._scope(),
        )
        return RegistryEntry(version=str(uploaded.version_id), uri=folder, bundle=bundle.name,
                             evaluation=_json_ready(evaluation), metadata=_json_ready(metadata), created=_now(), champion=promote)


def open_registry(uri: str, storage: str = "", credentials: Any = None) -> LocalModelRegistry | VertexModelRegistry:
    """The registry a URI names: `vertex://PROJECT/REGION/MODEL_NAME` (with `storage`, the gs://
    folder bundles are kept in) or a local folder."""
    if not uri:
        raise ConfigError("model registry: expected a folder or vertex://PROJECT/REGION/MODEL_NAME, got nothing")
    if uri.startswith(VERTEX_SCHEME):
        parts = uri[len(VERTEX_SCHEME):].strip("/").split("/")
        if len(parts) != 3 or not all(parts):
            raise ConfigError(f"model registry {uri!r}: expected vertex://PROJECT/REGION/MODEL_NAME")
        return VertexModelRegistry(*parts, storage=storage, credentials=credentials)
    if "://" in uri:
        raise ConfigError(f"model registry {uri!r}: expected a local folder or vertex://PROJECT/REGION/MODEL_NAME")
    return LocalModelRegistry(uri)
