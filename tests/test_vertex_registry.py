"""The Vertex model registry against a local server that answers, and records, the Cloud Storage
JSON API calls it makes (objects inserted with `ifGenerationMatch`, read, deleted on a generation)
and the Vertex AI Model Registry calls (upload a model or a version, list, get by version or
alias). No network.

What is proven: the champion lock makes read-champion / decide / upload one step across
publishers, so two runs racing on the first version create one model, and the better model ends
with the `champion` alias; without the lock the same race creates two models. A publisher that
finds the lock held waits, then fails naming the holder; a stale lock is broken on its generation.
A chain of versions, each within `champion_margin` of the previous, cannot slide the champion more
than one margin below the best it has been. And the gate's reading of a Vertex champion fails
loudly when its bundle or evaluation is gone.
"""

from __future__ import annotations

import contextlib
import datetime
import email.parser
import json
import re
import threading
import time
import types
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from fake_http import JsonHandler, serving

from signpipe.errors import SignpipeError
from signpipe.export.gate import UnreadableChampion, registry_champion
from signpipe.registry import CHAMPION_ALIAS, VertexModelRegistry
from signpipe.storage_lock import StorageLock

PROJECT, REGION = "my-project", "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
MODEL_NAME = "signpipe-fingerspelling"
STORAGE = "gs://models-bucket/models"
LOCK_OBJECT = f"models/{MODEL_NAME}/.champion-lock.json"


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Cloud:
    """What the server holds: Cloud Storage objects by (bucket, name), Vertex models by id, and
    every request in arrival order."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.objects: dict[tuple[str, str], dict] = {}
        self.models: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.counter = 0
        self.upload_waits_for_contention = False
        self.contended = threading.Event()

    def next_number(self) -> int:
        self.counter += 1
        return self.counter

    def put_object(self, bucket: str, name: str, data: bytes, created: datetime.datetime | None = None) -> dict:
        now = created or datetime.datetime.now(datetime.timezone.utc)
        stored = {"bucket": bucket, "name": name, "data": data, "generation": 1_000_000 + self.next_number(),
                  "timeCreated": rfc3339(now)}
        self.objects[(bucket, name)] = stored
        return stored

    def resource(self, stored: dict) -> dict:
        return {"kind": "storage#object", "bucket": stored["bucket"], "name": stored["name"],
                "id": f"{stored['bucket']}/{stored['name']}/{stored['generation']}", "generation": str(stored["generation"]),
                "metageneration": "1", "size": str(len(stored["data"])), "contentType": "application/octet-stream",
                "timeCreated": stored["timeCreated"], "updated": stored["timeCreated"]}

    def model_versions(self, display_name: str) -> list[dict]:
        return [m for m in self.models.values() if m["displayName"] == display_name]

    def champion_score(self) -> float | None:
        for model in self.models.values():
            for version in model["versions"]:
                if CHAMPION_ALIAS in version.get("versionAliases", []):
                    return json.loads(version["versionDescription"])["score"]
        return None


class CloudServer(JsonHandler):
    cloud: Cloud

    def _error(self, status: int, message: str) -> None:
        reason = {404: "notFound", 412: "conditionNotMet"}.get(status, "error")
        self._reply({"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}}, status)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        cloud = self.cloud
        if url.path.startswith(("/storage/", "/upload/", "/download/")):
            return self._storage(method, url.path, query, raw)
        path = unquote(url.path).removeprefix("/v1/")
        body = json.loads(raw) if raw else None
        with cloud.guard:
            cloud.requests.append({"api": "vertex", "method": method, "path": path, "query": query, "body": body})
        if method == "POST" and path == f"{PARENT}/models:upload":
            return self._upload(body)
        with cloud.guard:
            if method == "GET" and path == f"{PARENT}/models":
                wanted = re.fullmatch(r'display_name="(.*)"', query.get("filter", ""))
                found = [m for m in cloud.models.values() if wanted is None or m["displayName"] == wanted.group(1)]
                found.sort(key=lambda m: m["createTime"])
                return self._reply({"models": [self._default(m) for m in found]})
            match = re.fullmatch(rf"{PARENT}/models/(\d+)(?:@([\w-]+))?(:listVersions)?", path)
            if method == "GET" and match and match.group(1) in cloud.models:
                model = cloud.models[match.group(1)]
                if match.group(3):
                    return self._reply({"models": list(model["versions"])})
                wanted = match.group(2) or "default"
                for version in model["versions"]:
                    if wanted == version["versionId"] or wanted in version.get("versionAliases", []):
                        return self._reply(version)
        return self._error(404, f"{path} not found")

    def _default(self, model: dict) -> dict:
        return next(v for v in model["versions"] if "default" in v.get("versionAliases", []))

    def _upload(self, body: dict) -> None:
        cloud = self.cloud
        if cloud.upload_waits_for_contention:  # a slow upload: the other publisher gets time to bump into the lock
            cloud.contended.wait(timeout=10)
        time.sleep(0.05)
        with cloud.guard:
            requested = body["model"]
            parent = body.get("parentModel")
            if parent:
                model = cloud.models[parent.rsplit("/", 1)[-1]]
            else:
                model_id = str(4000 + cloud.next_number())
                model = {"id": model_id, "displayName": requested["displayName"], "versions": [],
                         "createTime": rfc3339(datetime.datetime.now(datetime.timezone.utc))}
                cloud.models[model_id] = model
            aliases = list(requested.get("versionAliases", []))
            if not model["versions"] and "default" not in aliases:
                aliases.append("default")  # a model's first version is its default
            for other in model["versions"]:  # Vertex moves an alias another version holds
                other["versionAliases"] = [a for a in other.get("versionAliases", []) if a not in aliases]
            version_id = str(len(model["versions"]) + 1)
            name = f"{PARENT}/models/{model['id']}"
            model["versions"].append({**requested, "name": name, "versionId": version_id, "versionAliases": aliases,
                                      "createTime": model["createTime"],
                                      "versionCreateTime": rfc3339(datetime.datetime.now(datetime.timezone.utc))})
            cloud.requests.append({"api": "vertex", "method": "DONE", "path": f"{PARENT}/models:upload", "query": {},
                                   "body": {"model": name, "version": version_id}})
        self._reply({"name": f"{name}/operations/{cloud.counter}", "done": True, "response": {
            "@type": "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelResponse", "model": name,
            "modelVersionId": version_id}})

    def _storage(self, method: str, path: str, query: dict, raw: bytes) -> None:
        cloud = self.cloud
        if path.startswith("/upload/"):
            bucket = unquote(path.split("/b/", 1)[1].split("/o", 1)[0])
            metadata, data = self._multipart(raw)
            name = metadata.get("name") or query["name"]
        else:
            bucket, _, name = path.split("/b/", 1)[1].partition("/o/")
            bucket, name = unquote(bucket), unquote(name)
            if not name:  # the client's background look-up of the bucket's location
                return self._reply({"kind": "storage#bucket", "name": bucket, "location": "EUROPE-WEST4",
                                   "projectNumber": "123"})
        with cloud.guard:
            cloud.requests.append({"api": "storage", "method": method, "path": path, "name": name, "query": query})
            stored = cloud.objects.get((bucket, name))
            match = query.get("ifGenerationMatch")
            if match is not None and int(match) != (stored["generation"] if stored else 0):
                if name == LOCK_OBJECT and method == "POST":
                    cloud.contended.set()
                return self._error(404 if stored is None and method != "POST" else 412, f"precondition on {name} failed")
            if method == "POST":
                return self._reply(cloud.resource(cloud.put_object(bucket, name, data)))
            if stored is None:
                return self._error(404, f"No such object: {bucket}/{name}")
            if method == "DELETE":
                del cloud.objects[(bucket, name)]
                return self._send(204)
            if path.startswith("/download/"):
                return self._send(200, stored["data"], "application/octet-stream",
                                  {"x-goog-generation": str(stored["generation"])})
            return self._reply(cloud.resource(stored))

    def _multipart(self, raw: bytes) -> tuple[dict, bytes]:
        header = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser().parsebytes(header + raw)
        metadata_part, media_part = message.get_payload()
        return json.loads(metadata_part.get_payload(decode=True)), media_part.get_payload(decode=True)



@pytest.fixture
def cloud(monkeypatch):
    """A fresh server; the SDKs pointed at it over plain HTTP without credentials, and no Cloud
    Storage mount, so every object goes through the API."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    state = Cloud()
    with serving(type("Handler", (CloudServer,), {"cloud": state})) as endpoint:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
        monkeypatch.setattr("signpipe.registry.gcs_local_path", lambda uri: None if uri.startswith("gs://") else Path(uri))
        aiplatform.init(project=PROJECT, location=REGION, api_endpoint=endpoint, api_transport="rest",
                        credentials=AnonymousCredentials())
        state.endpoint = endpoint
        yield state


def registry(**lock) -> VertexModelRegistry:
    from google.auth.credentials import AnonymousCredentials

    return VertexModelRegistry(PROJECT, REGION, MODEL_NAME, STORAGE, credentials=AnonymousCredentials(), **lock)


def bundle_file(tmp_path: Path, label: str) -> Path:
    path = tmp_path / label / "model.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"bundle {label}".encode())
    return path


def evaluation(score: float) -> dict:
    return {"score": score, "metric": "normalized_levenshtein"}


def publish_together(tmp_path: Path, scores: list[float], make=registry, **lock) -> list:
    """Publish one bundle per score from as many threads, started together; each thread's entry or
    error, in the order of `scores`."""
    start = threading.Barrier(len(scores))
    results: list = [None] * len(scores)

    def publish(k: int) -> None:
        bundle = bundle_file(tmp_path, f"run{k}")
        start.wait()
        try:
            results[k] = make(**lock).publish(bundle, evaluation(scores[k]), {"run": f"run-{k}"}, expected_champion=None)
        except Exception as exc:  # noqa: BLE001 - handed to the test to inspect
            results[k] = exc

    threads = [threading.Thread(target=publish, args=(k,)) for k in range(len(scores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


# --- racing publishers --------------------------------------------------------------------------------


def test_two_runs_racing_on_the_first_version_create_one_model_and_the_better_is_champion(cloud, tmp_path):
    cloud.upload_waits_for_contention = True
    results = publish_together(tmp_path, [0.5, 0.7], lock_wait_s=30, lock_ttl_s=60)
    assert not [r for r in results if isinstance(r, Exception)], results
    (model,) = cloud.model_versions(MODEL_NAME)
    assert len(model["versions"]) == 2
    assert cloud.champion_score() == 0.7
    assert [r.champion for r in results] in ([False, True], [True, True])  # 0.5 promoted only if it went first
    # the loser bumped into the lock and waited: its model lookup came after the winner's upload finished
    assert cloud.contended.is_set()
    vertex = [r for r in cloud.requests if r["api"] == "vertex"]
    lookups = [k for k, r in enumerate(vertex) if r["method"] == "GET" and r["path"] == f"{PARENT}/models"]
    done = [k for k, r in enumerate(vertex) if r["method"] == "DONE"]
    assert len(lookups) == 2 and len(done) == 2 and done[0] < lookups[1]
    # the lock was created on "no object yet" and released on its own generation
    lock_requests = [r for r in cloud.requests if r["api"] == "storage" and r["name"] == LOCK_OBJECT]
    assert all(r["query"].get("ifGenerationMatch") == "0" for r in lock_requests if r["method"] == "POST")
    assert all(r["query"].get("ifGenerationMatch") for r in lock_requests if r["method"] == "DELETE")
    assert ("models-bucket", LOCK_OBJECT) not in cloud.objects


def test_without_the_lock_the_same_race_creates_two_models(cloud, tmp_path, monkeypatch):
    """The server shows the bug the lock fixes: both runs look the model up before either uploads."""
    looked_up = threading.Barrier(2)
    original = VertexModelRegistry._model

    def model_after_both_looked(self):
        found = original(self)
        looked_up.wait(timeout=10)
        return found

    monkeypatch.setattr(VertexModelRegistry, "_model", model_after_both_looked)
    monkeypatch.setattr(VertexModelRegistry, "champion_lock",
                        lambda self: contextlib.nullcontext(types.SimpleNamespace(check_held=lambda: None)))
    results = publish_together(tmp_path, [0.5, 0.7])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(cloud.model_versions(MODEL_NAME)) == 2


def test_a_held_lock_makes_the_next_publisher_wait_then_fail_naming_the_holder(cloud, tmp_path):
    holder = {"owner": "someone-else", "host": "trainer-7", "pid": 42, "purpose": "publish x", "ttl_s": 600}
    planted = cloud.put_object("models-bucket", LOCK_OBJECT, json.dumps(holder).encode())
    started = time.monotonic()
    with pytest.raises(SignpipeError) as caught:
        registry(lock_wait_s=0.6).publish(bundle_file(tmp_path, "a"), evaluation(0.9))
    message = str(caught.value)
    assert time.monotonic() - started >= 0.6
    assert f"gs://models-bucket/{LOCK_OBJECT}: locked by trainer-7 pid 42 (publish x)" in message
    assert "gave up after waiting 0.6 s" in message and "gcloud storage rm" in message
    assert not [r for r in cloud.requests if r["path"].endswith("models:upload")]
    assert cloud.objects[("models-bucket", LOCK_OBJECT)]["generation"] == planted["generation"]  # not taken, not broken


def test_a_waiting_publisher_goes_on_once_the_lock_is_released(cloud, tmp_path):
    cloud.put_object("models-bucket", LOCK_OBJECT, json.dumps({"owner": "other", "ttl_s": 600}).encode())

    def release_later() -> None:
        time.sleep(0.5)
        with cloud.guard:
            del cloud.objects[("models-bucket", LOCK_OBJECT)]

    threading.Thread(target=release_later).start()
    entry = registry(lock_wait_s=20).publish(bundle_file(tmp_path, "a"), evaluation(0.9))
    assert entry.champion and cloud.champion_score() == 0.9
    assert ("models-bucket", LOCK_OBJECT) not in cloud.objects


def test_a_stale_lock_is_broken_on_its_generation(cloud, tmp_path):
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
    stale = cloud.put_object("models-bucket", LOCK_OBJECT, json.dumps({"owner": "dead", "ttl_s": 600}).encode(), long_ago)
    entry = registry(lock_wait_s=5).publish(bundle_file(tmp_path, "a"), evaluation(0.9))
    assert entry.champion
    broken = [r for r in cloud.requests if r["api"] == "storage" and r["method"] == "DELETE" and r["name"] == LOCK_OBJECT]
    assert broken[0]["query"]["ifGenerationMatch"] == str(stale["generation"])
    assert ("models-bucket", LOCK_OBJECT) not in cloud.objects


def test_a_lock_broken_under_its_holder_stops_it_before_the_write_and_is_not_released(cloud):
    from google.auth.credentials import AnonymousCredentials

    lock = StorageLock(f"gs://models-bucket/{LOCK_OBJECT}", PROJECT, AnonymousCredentials(), ttl_s=60, wait_s=1)
    with lock:
        lock.check_held()
        with cloud.guard:  # another process broke it and took it
            del cloud.objects[("models-bucket", LOCK_OBJECT)]
            theirs = cloud.put_object("models-bucket", LOCK_OBJECT, b'{"owner": "them"}')
        with pytest.raises(SignpipeError, match="the lock was lost"):
            lock.check_held()
    assert cloud.objects[("models-bucket", LOCK_OBJECT)]["generation"] == theirs["generation"]


# --- the chain best ---------------------------------------------------------------------------------


def test_a_chain_within_the_margin_step_by_step_cannot_slide_the_champion(cloud, tmp_path):
    """Each new model is within 0.05 of the champion the gate judged it against; without the chain
    best 0.60 -> 0.57 -> 0.54 -> 0.51 would all be promoted."""
    publisher = registry()
    first = publisher.publish(bundle_file(tmp_path, "a"), evaluation(0.60))
    assert first.champion and first.chain_best == 0.60
    second = publisher.publish(bundle_file(tmp_path, "b"), evaluation(0.57), expected_champion=first.version,
                               champion_margin=0.05)
    assert second.champion and second.chain_best == 0.60
    champion = publisher.champion()
    assert (champion.version, champion.chain_best) == (second.version, 0.60)
    third = publisher.publish(bundle_file(tmp_path, "c"), evaluation(0.54), expected_champion=second.version,
                              champion_margin=0.05)
    assert not third.champion and third.chain_best is None  # 0.54 < 0.60 - 0.05
    assert publisher.champion().version == second.version
    better = publisher.publish(bundle_file(tmp_path, "d"), evaluation(0.65), expected_champion=second.version,
                               champion_margin=0.05)
    assert better.champion and publisher.champion().chain_best == 0.65
    versions = publisher.versions()
    assert [v.champion for v in versions] == [False, False, False, True]
    assert [json.loads(v["versionDescription"]).get("chain_best") for v in cloud.model_versions(MODEL_NAME)[0]["versions"]] == [
        0.60, 0.60, None, 0.65]


# --- the gate reading a Vertex champion ----------------------------------------------------------------


def test_the_gate_downloads_a_readable_champion_and_fails_loudly_on_a_missing_one(cloud, tmp_path):
    publisher = registry()
    entry = publisher.publish(bundle_file(tmp_path, "a"), evaluation(0.6))
    with registry_champion(publisher) as found:
        assert found.problem == "" and found.entry.version == entry.version
        assert found.for_gate.read_bytes() == b"bundle a"  # downloaded: no Cloud Storage mount here
    bucket, name = entry.bundle_uri[len("gs://"):].split("/", 1)
    with cloud.guard:
        del cloud.objects[(bucket, name)]
    with registry_champion(publisher) as found:
        assert isinstance(found.for_gate, UnreadableChampion)
        assert f"names champion {entry.version}, but its bundle {entry.bundle_uri} cannot be read" in found.problem
    with cloud.guard:
        del cloud.objects[(bucket, name.replace("model.zip", "evaluation.json"))]
    with registry_champion(publisher) as found:
        assert found.entry is None and "names a champion that cannot be read" in found.problem
        assert "evaluation.json cannot be read" in found.problem
