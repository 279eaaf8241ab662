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

`champion_margin` tolerates a new champion slightly worse than the current one (newer data, equal
quality), but it is measured against the best of the chain, not only the current champion: each
promotion records the chain best (`RegistryEntry.chain_best`, the highest recorded score of any
model promoted in the registry), and with a margin a new champion must also score at least
`chain best - champion_margin` (`may_promote`). A chain of retrainings, each within the margin of
the one before, cannot slide the champion further than one margin below the best it ever was.

Reading the champion, deciding and moving it is one step across processes and machines: the local
registry holds an `flock` on `.lock` in its folder; the Vertex registry holds a lock object in
Cloud Storage (`signpipe.storage_lock.StorageLock`, `{storage}/{model_name}/.champion-lock.json`,
created with `ifGenerationMatch=0`), from looking up the model (so the first version of a display
name creates one model, not one per racing run) through the upload that moves the alias. A
publish that finds the lock held waits up to `lock_wait_s`, then fails naming the holder; a lock
older than its holder's `lock_ttl_s` is stale and broken.

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from signpipe.data.atomic import atomic_write_text
from signpipe.errors import ConfigError, SignpipeError

CHAMPION_FILE = "champion.json"
VERSIONS_DIR = "versions"
ENTRY_FILE = "entry.json"
EVALUATION_FILE = "evaluation.json"
TRAINING_CURVES_FILE = "metrics.jsonl"
"""The final model's training log (`signpipe.train.reporting`), kept beside the bundle from the
export step on, so a later gate can draw a new model's curves against the champion's."""
LOCK_FILE = ".lock"
VERTEX_LOCK_OBJECT = ".champion-lock.json"
CHAIN_BEST_KEY = "chain_best"
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
    chain_best: float | None = None
    """On the champion: the best score recorded by any model promoted in this registry (None for
    other versions, and for a champion promoted before the chain best was recorded)."""

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
        extra_files: Sequence[Path] = (),
    ) -> RegistryEntry: ...

    def local_bundle(self, entry: RegistryEntry, scratch: Path) -> Path: ...

    def version_file(self, entry: RegistryEntry, name: str) -> str | None: ...


def _finite_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def score_of(evaluation: Mapping[str, Any], where: str = "evaluation") -> float:
    """The score an evaluation reports (`signpipe.export` writes it as "score")."""
    score = _finite_or_none(evaluation.get(SCORE_KEY))
    if score is None:
        raise SignpipeError(f"{where}: expected a finite number under {SCORE_KEY!r}, found {evaluation.get(SCORE_KEY)!r}")
    return score


def beats_champion(evaluation: Mapping[str, Any], champion: RegistryEntry | None, champion_margin: float = 0.0) -> bool:
    """Whether a model with `evaluation` may replace `champion`: there is none yet, or it scores
    at least the champion's score minus `champion_margin` (ties replace, so a retrained model of
    equal quality and newer data takes over)."""
    if not (math.isfinite(champion_margin) and champion_margin >= 0):
        raise ConfigError(f"champion_margin must be 0 or more, got {champion_margin}")
    if champion is None:
        return True
    return score_of(evaluation, "new model") >= score_of(champion.evaluation, f"champion {champion.version}") - champion_margin


def chain_best_of(champion: RegistryEntry) -> float:
    """The best recorded score of `champion`'s chain: what it recorded at promotion, at least its
    own score (a champion promoted before chains were recorded starts its chain)."""
    own = score_of(champion.evaluation, f"champion {champion.version}")
    recorded = _finite_or_none(champion.chain_best)
    return own if recorded is None else max(recorded, own)


def may_promote(evaluation: Mapping[str, Any], current: RegistryEntry | None, expected_champion: str | None,
                champion_margin: float = 0.0) -> bool:
    """The rule of `publish`. With `s` the new model's recorded score, `c` the current champion's,
    `B` the chain best (`chain_best_of(current)`) and `m` the margin, the new model is promoted when

    1. there is no champion; or
    2. (compare-and-swap) the champion is still the one the gate judged against (`expected_champion`,
       "" or None for none: the gate compared them on the same corpus, so its verdict stands), or
       else `s >= c - m` (`beats_champion`: a run promoted another model meanwhile); and
    3. (no sliding) when `m > 0`, also `s >= B - m`.

    Rule 3 uses recorded scores, so it assumes one evaluation corpus across the chain, as the gate
    does (keep `--eval-data` fixed). With `m = 0` it is not applied: every promotion is then at least
    as good as the champion it replaced on the gate's corpus, so nothing slides, and a changed
    evaluation corpus (whose scores are not comparable with the recorded ones) does not block the
    gate's verdict. After a promotion the chain best is `max(B, s)` (`promoted_chain_best`)."""
    if not (math.isfinite(champion_margin) and champion_margin >= 0):
        raise ConfigError(f"champion_margin must be 0 or more, got {champion_margin}")
    if current is None:
        return True
    current_version = current.version
    if (expected_champion or None) != current_version and not beats_champion(evaluation, current, champion_margin):
        return False
    if champion_margin > 0:
        return score_of(evaluation, "new model") >= chain_best_of(current) - champion_margin
    return True


def promoted_chain_best(evaluation: Mapping[str, Any], current: RegistryEntry | None) -> float:
    """The chain best once the model with `evaluation` is promoted over `current`."""
    score = score_of(evaluation, "new model")
    return score if current is None else max(score, chain_best_of(current))


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

    def _champion_pointer(self) -> dict[str, Any] | None:
        """champion.json: the champion's version and the chain best recorded when it was promoted."""
        path = self.root / CHAMPION_FILE
        if not path.exists():
            return None
        try:
            pointer = json.loads(path.read_text(encoding="utf-8"))
            best = pointer.get(CHAIN_BEST_KEY)
            return {"version": str(pointer["version"]), CHAIN_BEST_KEY: _finite_or_none(best)}
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise SignpipeError(f"{path}: not a champion pointer ({exc!r}); expected {{\"version\": ...}}") from None

    def _champion_version(self) -> str | None:
        pointer = self._champion_pointer()
        return pointer["version"] if pointer is not None else None

    def versions(self) -> list[RegistryEntry]:
        """Every published version, oldest first, with `champion` set on the current one."""
        versions_dir = self.root / VERSIONS_DIR
        if not versions_dir.is_dir():
            return []
        pointer = self._champion_pointer() or {"version": None, CHAIN_BEST_KEY: None}
        entries = [self._read_entry(d) for d in sorted(versions_dir.iterdir()) if d.is_dir() and not d.name.startswith(".")]
        return [RegistryEntry(**{**e.to_dict(), "champion": e.version == pointer["version"],
                                 "chain_best": pointer[CHAIN_BEST_KEY] if e.version == pointer["version"] else None})
                for e in entries]

    def champion(self) -> RegistryEntry | None:
        pointer = self._champion_pointer()
        if pointer is None:
            return None
        version = pointer["version"]
        version_dir = self.root / VERSIONS_DIR / version
        if not version_dir.is_dir():
            raise SignpipeError(f"{self.root / CHAMPION_FILE}: names version {version}, which {version_dir} does not hold")
        return RegistryEntry(**{**self._read_entry(version_dir).to_dict(), "champion": True,
                                "chain_best": pointer[CHAIN_BEST_KEY]})

    def local_bundle(self, entry: RegistryEntry, scratch: Path) -> Path:
        """`entry`'s bundle file (already local; `scratch` is not needed)."""
        path = Path(entry.bundle_uri)
        if not path.is_file():
            raise SignpipeError(f"its bundle {path} cannot be read (no such file)")
        return path

    def _next_version(self) -> int:
        versions_dir = self.root / VERSIONS_DIR
        numbers = [int(d.name) for d in versions_dir.iterdir() if d.name.isdigit()] if versions_dir.is_dir() else []
        return max(numbers, default=0) + 1

    def version_file(self, entry: RegistryEntry, name: str) -> str | None:
        """The text of the file `name` kept with `entry` (`extra_files` of `publish`), None when
        that version holds none."""
        path = Path(entry.uri) / name
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def _store(self, bundle: Path, evaluation: Mapping[str, Any], metadata: Mapping[str, Any],
               extra_files: Sequence[Path] = ()) -> RegistryEntry:
        """Copy the bundle (and `extra_files`) into a new version folder, built under a temporary
        name and renamed into place; a number another process took meanwhile makes the rename fail,
        and the next is tried."""
        versions_dir = self.root / VERSIONS_DIR
        versions_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=versions_dir))
        try:
            shutil.copy2(bundle, staging / bundle.name)
            for extra in extra_files:
                shutil.copy2(extra, staging / Path(extra).name)
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
        extra_files: Sequence[Path] = (),
    ) -> RegistryEntry:
        """Store `bundle` as a new version and make it the champion by the rule of `may_promote`,
        holding the registry's lock from reading the champion to writing the pointer (which records
        the chain best). `extra_files` (the training curves) are kept beside the bundle."""
        bundle = Path(bundle)
        if not bundle.is_file():
            raise SignpipeError(f"{bundle}: no such bundle file (expected the exported model zip)")
        score_of(evaluation, "new model")
        if not (math.isfinite(champion_margin) and champion_margin >= 0):
            raise ConfigError(f"champion_margin must be 0 or more, got {champion_margin}")
        entry = self._store(bundle, evaluation, metadata or {}, [Path(extra) for extra in extra_files])
        with self._locked():
            current = self.champion()
            if not may_promote(evaluation, current, expected_champion, champion_margin):
                return entry
            best = promoted_chain_best(evaluation, current)
            atomic_write_text(self.root / CHAMPION_FILE, json.dumps(
                {"version": entry.version, "promoted": _now(), CHAIN_BEST_KEY: best}) + "\n")
        return RegistryEntry(**{**entry.to_dict(), "champion": True, "chain_best": best})


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


def _blob(uri: str, project: str, credentials: Any = None) -> Any:
    from google.cloud import storage

    bucket, name = _split_gcs(uri)
    return storage.Client(project=project, credentials=credentials).bucket(bucket).blob(name)


def _storage_errors() -> tuple[type[BaseException], ...]:
    """What reading an object raises: a file error through the mount, an API error without it."""
    from google.api_core import exceptions

    return OSError, ValueError, exceptions.GoogleAPIError


def _read_text(uri: str, project: str, credentials: Any = None) -> str:
    local = gcs_local_path(uri)
    if local is not None:
        return local.read_text(encoding="utf-8")
    return _blob(uri, project, credentials).download_as_text()


def _upload_file(source: Path, uri: str, project: str, credentials: Any = None) -> None:
    local = gcs_local_path(uri)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, local)
        return
    _blob(uri, project, credentials).upload_from_filename(str(source))


def vertex_label(value: Any) -> str:
    """`value` as a Vertex label value: lowercase letters, digits, '_' and '-', at most 63."""
    return _LABEL_PATTERN.sub("-", str(value).lower())[:63]


class VertexModelRegistry:
    """The Vertex AI Model Registry as the champion store (see the module docstring).

    `lock_ttl_s`: how long a publish may hold the champion lock before another may break it (must
    exceed the longest model upload); `lock_wait_s`: how long a publish waits for the lock before
    failing with the holder's name."""

    def __init__(self, project: str, location: str, model_name: str, storage: str, credentials: Any = None,
                 lock_ttl_s: float = 600.0, lock_wait_s: float = 900.0):
        if not (project and location and model_name):
            raise ConfigError(f"vertex registry: expected a project, a region and a model name, got {project!r}, {location!r}, {model_name!r}")
        if not storage.startswith("gs://"):
            raise ConfigError(f"vertex registry {model_name!r}: storage {storage!r} must be a gs:// folder the bundles are copied to")
        self.project, self.location, self.model_name = project, location, model_name
        self.storage = storage.rstrip("/")
        self.credentials = credentials
        self.lock_ttl_s, self.lock_wait_s = lock_ttl_s, lock_wait_s

    def __repr__(self) -> str:
        return f"VertexModelRegistry({self.uri!r}, storage={self.storage!r})"

    @property
    def uri(self) -> str:
        return f"{VERTEX_SCHEME}{self.project}/{self.location}/{self.model_name}"

    @property
    def lock_uri(self) -> str:
        return f"{self.storage}/{self.model_name}/{VERTEX_LOCK_OBJECT}"

    def champion_lock(self) -> Any:
        """The lock `publish` holds (`signpipe.storage_lock.StorageLock`), not yet taken."""
        from signpipe.storage_lock import StorageLock

        return StorageLock(self.lock_uri, self.project, self.credentials, ttl_s=self.lock_ttl_s, wait_s=self.lock_wait_s,
                           purpose=f"publish {self.model_name}")

    def _scope(self) -> dict[str, Any]:
        return {"project": self.project, "location": self.location, "credentials": self.credentials}

    def _model(self) -> Any | None:
        """The model of this display name; the oldest, should racing runs before the lock have
        created several."""
        from google.cloud import aiplatform

        found = aiplatform.Model.list(filter=f'display_name="{self.model_name}"', order_by="create_time", **self._scope())
        return found[0] if found else None

    def _entry(self, model: Any, champion: bool) -> RegistryEntry:
        where = f"{self.uri} version {model.version_id}"
        try:
            reference = json.loads(model.version_description or "")
            uri, bundle = reference["uri"], reference["bundle"]
        except (ValueError, KeyError, TypeError):
            raise SignpipeError(f"{where}: its description is not a signpipe bundle reference (expected JSON with uri and bundle)") from None
        evaluation_uri = f"{uri.rstrip('/')}/{EVALUATION_FILE}"
        try:
            evaluation = json.loads(_read_text(evaluation_uri, self.project, self.credentials))
        except _storage_errors() as exc:
            raise SignpipeError(f"{where}: its evaluation {evaluation_uri} cannot be read ({exc})") from None
        return RegistryEntry(version=str(model.version_id), uri=uri, bundle=bundle, evaluation=evaluation,
                             metadata=dict(model.labels or {}), created=str(model.create_time or ""), champion=champion,
                             chain_best=_finite_or_none(reference.get(CHAIN_BEST_KEY)) if champion else None)

    def _champion_of(self, model: Any | None) -> RegistryEntry | None:
        from google.api_core import exceptions
        from google.cloud import aiplatform

        if model is None:
            return None
        try:
            champion = aiplatform.Model(model_name=f"{model.resource_name}@{CHAMPION_ALIAS}", **self._scope())
        except exceptions.NotFound:
            return None
        return self._entry(champion, champion=True)

    def champion(self) -> RegistryEntry | None:
        return self._champion_of(self._model())

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

    def version_file(self, entry: RegistryEntry, name: str) -> str | None:
        """The text of the object `name` beside `entry`'s bundle in Cloud Storage (`extra_files` of
        `publish`), None when there is none or it cannot be read (a version published before such
        files were kept)."""
        try:
            return _read_text(f"{entry.uri.rstrip('/')}/{name}", self.project, self.credentials)
        except _storage_errors():
            return None

    def local_bundle(self, entry: RegistryEntry, scratch: Path) -> Path:
        """`entry`'s bundle as a local file: through the Cloud Storage mount inside Vertex AI, else
        downloaded into `scratch`."""
        uri = entry.bundle_uri
        local = gcs_local_path(uri)
        if local is not None:
            if not local.is_file():
                raise SignpipeError(f"its bundle {uri} cannot be read (not found at {local})")
            return local
        target = Path(scratch) / entry.bundle
        try:
            _blob(uri, self.project, self.credentials).download_to_filename(str(target))
        except _storage_errors() as exc:
            raise SignpipeError(f"its bundle {uri} cannot be read ({exc})") from None
        return target

    def publish(
        self,
        bundle: str | Path,
        evaluation: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        expected_champion: str | None = None,
        champion_margin: float = 0.0,
        extra_files: Sequence[Path] = (),
    ) -> RegistryEntry:
        """Copy the bundle, its evaluation and `extra_files` (the training curves) to `storage`,
        then, holding the champion lock (see the module docstring), look up the model and its champion, decide by the rule of
        `may_promote`, and upload the new version: as the first version of a new model if there is
        none, with the `champion` alias (and the chain best in its description) if promoted. The
        copy happens before the lock, so a publish that gives up on the lock leaves an unreferenced
        copy in `storage`."""
        from google.cloud import aiplatform

        bundle = Path(bundle)
        if not bundle.is_file():
            raise SignpipeError(f"{bundle}: no such bundle file (expected the exported model zip)")
        score_of(evaluation, "new model")
        if not (math.isfinite(champion_margin) and champion_margin >= 0):
            raise ConfigError(f"champion_margin must be 0 or more, got {champion_margin}")
        metadata = dict(metadata or {})
        folder = f"{self.storage}/{self.model_name}/{datetime.datetime.now(datetime.timezone.utc):%Y%m%d-%H%M%S-%f}"
        with tempfile.TemporaryDirectory() as scratch:
            evaluation_file = Path(scratch) / EVALUATION_FILE
            evaluation_file.write_text(json.dumps(dict(evaluation), indent=2, default=str) + "\n", encoding="utf-8")
            _upload_file(evaluation_file, f"{folder}/{EVALUATION_FILE}", self.project, self.credentials)
        _upload_file(bundle, f"{folder}/{bundle.name}", self.project, self.credentials)
        for extra in extra_files:
            _upload_file(Path(extra), f"{folder}/{Path(extra).name}", self.project, self.credentials)
        reference = {"uri": folder, "bundle": bundle.name, "score": score_of(evaluation), **{k: str(v) for k, v in metadata.items()}}
        with self.champion_lock() as lock:
            parent = self._model()
            current = self._champion_of(parent)
            promote = may_promote(evaluation, current, expected_champion, champion_margin)
            best = promoted_chain_best(evaluation, current) if promote else None
            if promote:
                reference[CHAIN_BEST_KEY] = best
            lock.check_held()
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
                             evaluation=_json_ready(evaluation), metadata=_json_ready(metadata), created=_now(),
                             champion=promote, chain_best=best)


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
