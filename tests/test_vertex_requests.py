"""Submit, schedule, runs and custom jobs against a local HTTP server that records the Vertex AI
REST requests (no network): the request bodies must carry the compiled spec, the parameters, the
service account, the labels, the machine specs and the cron."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from fake_http import JsonHandler, serving

from pipelines.presets import PRESETS
from pipelines.vertex import (
    VertexSettings,
    build_run_request,
    check_cron,
    create_schedule,
    delete_schedule,
    list_runs,
    list_schedules,
    pause_schedule,
    resume_schedule,
    run_training_custom_job,
    show_run,
    submit,
)
from signpipe.cli import main
from signpipe.errors import ConfigError

PROJECT, REGION = "my-project", "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
SERVICE_ACCOUNT = f"signpipe-pipeline@{PROJECT}.iam.gserviceaccount.com"
REGISTRY = f"{REGION}-docker.pkg.dev/{PROJECT}/signpipe"


class VertexRecorder(JsonHandler):
    """Answers the few Vertex AI REST calls signpipe makes, from an in-memory store, and records
    every request (method, path, query, JSON body)."""

    requests: list[dict] = []
    store: dict[str, dict] = {}
    counter = [0]
    custom_job_states: list[str] = []
    """What a created custom job answers, one state per GET, the last for good (empty: succeeded)."""

    def _next_id(self) -> str:
        self.counter[0] += 1
        return str(1000 + self.counter[0])

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        url = urlparse(self.path)
        path = unquote(url.path).removeprefix("/v1/")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.requests.append({"method": method, "path": path, "query": query, "body": body})
        collection = path.rsplit("/", 1)[-1]
        if method == "POST" and collection in ("pipelineJobs", "schedules", "customJobs"):
            resource_id = query.get("pipelineJobId") or self._next_id()
            states = {"pipelineJobs": "PIPELINE_STATE_PENDING", "schedules": "ACTIVE", "customJobs": "JOB_STATE_PENDING"}
            created = {**body, "name": f"{path}/{resource_id}", "state": states[collection], "createTime": "2026-01-05T03:00:00Z"}
            if collection == "customJobs":
                created["_states"] = list(self.custom_job_states) or ["JOB_STATE_SUCCEEDED"]
            self.store[created["name"]] = created
            return self._reply(public(created))
        if method == "POST" and path.endswith("/models:upload"):
            model_id = self._next_id()
            name = f"{path.removesuffix(':upload')}/{model_id}"
            self.store[name] = {**body["model"], "name": name, "versionId": "1", "createTime": "2026-01-05T03:00:00Z"}
            return self._reply({"name": f"{name}/operations/1", "done": True, "response": {
                "@type": "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelResponse", "model": name,
                "modelVersionId": "1"}})
        if method == "GET" and collection == "models":
            return self._reply({"models": [r for n, r in self.store.items() if "/models/" in n]})
        if method == "GET" and "/models/" in path:
            name, _, version = path.partition("@")
            if name in self.store and version in ("", "1", *self.store[name].get("versionAliases", [])):
                return self._reply(self.store[name])
        if method == "POST" and "/customJobs/" in path and path.endswith(":cancel"):
            job = self.store[path.removesuffix(":cancel")]
            job["state"], job["_states"] = "JOB_STATE_CANCELLED", ["JOB_STATE_CANCELLED"]
            return self._reply({})
        if method == "POST" and (path.endswith(":pause") or path.endswith(":resume")):
            name, action = path.rsplit(":", 1)
            self.store[name]["state"] = "PAUSED" if action == "pause" else "ACTIVE"
            return self._reply({})
        if method == "DELETE":
            self.store.pop(path, None)
            return self._reply({"name": f"{PARENT}/operations/1", "done": True,
                                "response": {"@type": "type.googleapis.com/google.protobuf.Empty"}})
        if method == "GET" and path in self.store:
            resource = self.store[path]
            if "/customJobs/" in path:  # each GET moves a custom job on to its next scripted state
                states = resource.setdefault("_states", ["JOB_STATE_SUCCEEDED"])
                resource["state"] = states.pop(0) if len(states) > 1 else states[0]
            return self._reply(public(resource))
        if method == "GET" and collection in ("pipelineJobs", "schedules", "customJobs"):
            wanted = dict(re.findall(r'labels\.([\w-]+)="([^"]*)"', query.get("filter", "")))
            listed = [public(r) for name, r in self.store.items() if name.startswith(path + "/")
                      and all(r.get("labels", {}).get(k) == v for k, v in wanted.items())]
            return self._reply({collection: listed})
        return self._reply({"error": {"code": 404, "message": f"{path} not found", "status": "NOT_FOUND"}}, 404)


@pytest.fixture(scope="module")
def server():
    with serving(VertexRecorder) as endpoint:
        yield endpoint


@pytest.fixture
def vertex(server, monkeypatch):
    """Settings pointing at the recorder, with a clean record; the SDK's check that the
    pipeline-root bucket exists (a real GCS call) is switched off."""
    VertexRecorder.requests.clear()
    VertexRecorder.store.clear()
    VertexRecorder.custom_job_states = []
    monkeypatch.setattr(
        "google.cloud.aiplatform.utils.gcs_utils.create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist",
        lambda **kwargs: None,
    )
    return VertexSettings(project=PROJECT, region=REGION, pipeline_root=f"gs://{PROJECT}-signpipe/pipeline-root",
                          service_account=SERVICE_ACCOUNT, docker_registry=REGISTRY, api_endpoint=server)


def public(resource: dict) -> dict:
    """A stored resource as the API shows it (without the recorder's own `_` fields)."""
    return {key: value for key, value in resource.items() if not key.startswith("_")}


def recorded(method: str, suffix: str) -> list[dict]:
    return [r for r in VertexRecorder.requests if r["method"] == method and r["path"].endswith(suffix)]


def executor(spec: dict, task: str) -> dict:
    return spec["deploymentSpec"]["executors"][spec["components"][f"comp-{task}"]["executorLabel"]]["container"]


def test_submit_sends_spec_parameters_service_account_labels_and_machines(vertex):
    request = build_run_request(vertex, f"gs://{PROJECT}-data/fingerspelling", preset_name="small",
                                overrides=["min_score=0.3", "finetune.total_steps=5000"], image_tag="abc123")
    submitted = submit(request)
    (create,) = recorded("POST", "/pipelineJobs")
    assert create["path"] == f"{PARENT}/pipelineJobs"
    assert create["query"]["pipelineJobId"] == submitted.job_id
    body = create["body"]
    assert body["serviceAccount"] == SERVICE_ACCOUNT
    assert body["labels"] == {"signpipe-pipeline": "fingerspelling", "preset": "small", "git-revision": "abc123",
                              "signpipe-version": "0-1-0"}
    runtime = body["runtimeConfig"]
    assert runtime["gcsOutputDirectory"] == f"gs://{PROJECT}-signpipe/pipeline-root"
    values = runtime["parameterValues"]
    # no --eval-data: the hold-out form, scored on participants the run holds out of the corpus
    assert values["corpus_uri"] == f"gs://{PROJECT}-data/fingerspelling" and "eval_corpus_uri" not in values
    assert (values["holdout_fraction"], values["holdout_seed"]) == (0.2, 1)
    assert values["cache_max_age_days"] == 23  # the dev bucket's 30 days of retention, less a week
    assert values["min_score"] == 0.3
    assert values["finetune_preset"] == "small" and values["finetune_overrides"] == {"total_steps": "5000"}
    assert values["registry"] == f"vertex://{PROJECT}/{REGION}/signpipe-fingerspelling"
    assert values["registry_storage"] == f"gs://{PROJECT}-signpipe/models"
    assert values["vertex"] == {"project": PROJECT, "region": REGION, "service_account": SERVICE_ACCOUNT, "tensorboard": "",
                                "pipeline_root": f"gs://{PROJECT}-signpipe/pipeline-root"}
    spec = body["pipelineSpec"]
    assert spec["pipelineInfo"]["name"] == "signpipe-fingerspelling"
    assert "hold-out-participants" in spec["root"]["dag"]["tasks"]
    assert set(spec["root"]["inputDefinitions"]["parameters"]) >= {"holdout_fraction", "holdout_seed", "cache_max_age_days"}
    assert not {"eval_corpus_uri", "allow_shared_participants"} & set(spec["root"]["inputDefinitions"]["parameters"])
    gpu = executor(spec, "finetune")
    assert gpu["image"] == f"{REGISTRY}/signpipe-jax-cuda:abc123"
    assert gpu["resources"]["accelerator"]["resourceType"] == "NVIDIA_L4"
    assert gpu["resources"]["accelerator"]["resourceCount"] == "1"
    assert gpu["resources"]["resourceCpuLimit"] == "8" and gpu["resources"]["resourceMemoryLimit"] == "32G"
    assert executor(spec, "distill")["resources"]["accelerator"]["resourceType"] == "NVIDIA_L4"
    assert executor(spec, "gate")["image"] == f"{REGISTRY}/signpipe-cpu:abc123"
    assert "accelerator" not in executor(spec, "gate").get("resources", {})
    launcher = spec["root"]["dag"]["tasks"]["pretrain-on-custom-job"]["inputs"]["parameters"]
    assert launcher["machine"]["runtimeValue"]["constant"]["tpu_topology"] == "2x2"
    assert launcher["machine"]["runtimeValue"]["constant"]["machine_type"] == "ct5lp-hightpu-4t"
    assert launcher["image_uri"]["runtimeValue"]["constant"] == f"{REGISTRY}/signpipe-jax-tpu:abc123"
    assert submitted.console_url == (
        f"https://console.cloud.google.com/vertex-ai/locations/{REGION}/pipelines/runs/{submitted.job_id}?project={PROJECT}"
    )


def test_no_cache_turns_caching_off_for_every_task(vertex):
    submit(build_run_request(vertex, "gs://data/corpus", preset_name="smoke", image_tag="abc123", enable_caching=False))
    spec = recorded("POST", "/pipelineJobs")[0]["body"]["pipelineSpec"]
    root = spec["root"]["dag"]["tasks"]
    assert root and all(task["cachingOptions"].get("enableCache", False) is False for task in root.values())


def test_smoke_submission_runs_on_cpu_only(vertex):
    submit(build_run_request(vertex, "gs://data/corpus", preset_name="smoke", image_tag="abc123"))
    spec = recorded("POST", "/pipelineJobs")[0]["body"]["pipelineSpec"]
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values() if "container" in e}
    assert images == {f"{REGISTRY}/signpipe-cpu:abc123"}


def test_schedule_sends_cron_and_the_job_it_starts(vertex):
    request = build_run_request(vertex, "gs://data/corpus", preset_name="small", image_tag="abc123",
                                overrides=["champion_margin=0.01"])
    info = create_schedule(request, "TZ=Europe/Paris 0 3 * * 1", max_concurrent_runs=1)
    (create,) = recorded("POST", "/schedules")
    assert create["path"] == f"{PARENT}/schedules"
    body = create["body"]
    assert body["cron"] == "TZ=Europe/Paris 0 3 * * 1"
    assert body["displayName"] == "signpipe-fingerspelling-small"
    assert int(body["maxConcurrentRunCount"]) == 1
    job = body["createPipelineJobRequest"]
    assert job["parent"] == PARENT
    assert job["pipelineJob"]["serviceAccount"] == SERVICE_ACCOUNT
    assert job["pipelineJob"]["labels"]["preset"] == "small"
    assert job["pipelineJob"]["runtimeConfig"]["parameterValues"]["champion_margin"] == 0.01
    assert executor(job["pipelineJob"]["pipelineSpec"], "noisy-student")["resources"]["accelerator"]["resourceType"] == "NVIDIA_L4"
    assert info.cron == "TZ=Europe/Paris 0 3 * * 1" and info.state == "ACTIVE"
    assert info.resource_name == f"{PARENT}/schedules/{info.schedule_id}" and info.schedule_id.isdigit()


def test_schedule_list_pause_resume_delete(vertex):
    info = create_schedule(build_run_request(vertex, "gs://data/corpus", preset_name="smoke", image_tag="abc123"), "0 3 * * *")
    assert [s.resource_name for s in list_schedules(vertex)] == [info.resource_name]
    assert pause_schedule(vertex, info.schedule_id).state == "PAUSED"
    assert recorded("POST", f"schedules/{info.schedule_id}:pause")
    assert resume_schedule(vertex, info.resource_name).state == "ACTIVE"
    assert recorded("POST", f"schedules/{info.schedule_id}:resume")
    assert delete_schedule(vertex, info.schedule_id) == info.resource_name
    assert recorded("DELETE", f"schedules/{info.schedule_id}")
    assert list_schedules(vertex) == []


def test_runs_list_and_show_read_job_states(vertex):
    submitted = submit(build_run_request(vertex, "gs://data/corpus", preset_name="smoke", image_tag="abc123"))
    stored = VertexRecorder.store[submitted.resource_name]
    stored["state"] = "PIPELINE_STATE_RUNNING"
    stored["jobDetail"] = {"taskDetails": [
        {"taskName": "validate", "state": "SUCCEEDED", "startTime": "2026-01-05T03:01:00Z", "endTime": "2026-01-05T03:02:00Z"},
        {"taskName": "finetune", "state": "RUNNING", "startTime": "2026-01-05T03:05:00Z"},
    ]}
    runs = list_runs(vertex, pipeline="fingerspelling")
    assert [(r["job_id"], r["state"], r["preset"], r["revision"]) for r in runs] == [
        (submitted.job_id, "PIPELINE_STATE_RUNNING", "smoke", "abc123")]
    listing = recorded("GET", "/pipelineJobs")[-1]
    assert listing["query"]["filter"] == 'labels.signpipe-pipeline="fingerspelling"'
    details = show_run(vertex, submitted.job_id)
    assert details["state"] == "PIPELINE_STATE_RUNNING"
    assert [(t["task"], t["state"]) for t in details["tasks"]] == [("validate", "SUCCEEDED"), ("finetune", "RUNNING")]
    assert details["console_url"] == submitted.console_url


def test_runs_commands_go_to_vertex_when_a_project_is_named(vertex, tmp_path, capsys):
    """`signpipe runs list|show` with --project: Vertex AI's runs; without one (or with --local):
    this machine's (tests/test_runs_local.py)."""
    submitted = submit(build_run_request(vertex, "gs://data/corpus", preset_name="smoke", image_tag="abc123"))
    where = ["--project", PROJECT, "--region", REGION, "--api-endpoint", vertex.api_endpoint]
    assert main(["runs", "list", *where, "--json"]) == 0
    assert [run["job_id"] for run in json.loads(capsys.readouterr().out)] == [submitted.job_id]
    assert main(["runs", "show", submitted.job_id, *where, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["job_id"] == submitted.job_id
    assert main(["runs", "list", *where, "--local", "--runs-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"where": "local", "runs_dir": str(tmp_path), "runs": [],
                                                  "registries": []}


@pytest.mark.parametrize("preset", ["small", "large"])
def test_tpu_pretraining_custom_job_machine_specs(vertex, tmp_path, preset):
    workdir = tmp_path / "model"
    workdir.mkdir()
    (workdir / "final_metrics.json").write_text(json.dumps({"step": 40, "train_loss": 0.5}))
    machine = PRESETS[preset].machine("pretrain")
    import dataclasses

    final = run_training_custom_job(
        "pretrain", "/gcs/bucket/features", str(workdir), preset, {"total_steps": 40, "model_overrides": {"dropout": 0.0}},
        f"{REGISTRY}/signpipe-jax-tpu:abc123", dataclasses.asdict(machine),
        {"project": PROJECT, "region": REGION, "service_account": SERVICE_ACCOUNT, "api_endpoint": vertex.api_endpoint,
         "pipeline_root": "gs://bucket/pipeline-root"},
        run_name="signpipe-fingerspelling-20260105", task_name="pretrain-on-custom-job", poll_seconds=0.01,
    )
    assert final == {"step": 40, "train_loss": 0.5}
    (create,) = recorded("POST", "/customJobs")
    assert create["path"] == f"{PARENT}/customJobs"
    job_spec = create["body"]["jobSpec"]
    assert job_spec["serviceAccount"] == SERVICE_ACCOUNT
    assert job_spec["baseOutputDirectory"]["outputUriPrefix"].startswith("gs://bucket/pipeline-root/custom-jobs/signpipe-pretrain-")
    # the documented shape of a TPU VM job: one worker pool of one replica, its machine spec the
    # machine type and topology only (docs/pipelines.md, "Checked against the Vertex AI documentation")
    (pool,) = job_spec["workerPoolSpecs"]
    assert pool["machineSpec"] == {"machineType": "ct5lp-hightpu-4t", "tpuTopology": machine.tpu_topology}
    assert int(pool["replicaCount"]) == 1
    container = pool["containerSpec"]
    assert container.get("env", []) == ([{"name": "SIGNPIPE_TPU_HOSTS", "value": "4"}] if preset == "large" else [])
    assert container["imageUri"] == f"{REGISTRY}/signpipe-jax-tpu:abc123"
    assert container["command"] == ["signpipe"]
    assert container["args"] == ["train", "pretrain", "--shards", "/gcs/bucket/features", "--workdir", str(workdir), "--preset",
                                 preset, "total_steps=40", 'model_overrides={"dropout": 0.0}']


def test_cli_submit_from_terraform_outputs(vertex, tmp_path, capsys):
    outputs = {
        "project": PROJECT, "region": REGION, "pipeline_root": f"gs://{PROJECT}-signpipe/pipeline-root",
        "service_account_email": SERVICE_ACCOUNT, "docker_registry": REGISTRY,
        "kfp_registry": f"https://{REGION}-kfp.pkg.dev/{PROJECT}/signpipe-pipelines",
        "tensorboard": f"projects/{PROJECT}/locations/{REGION}/tensorboards/42",
    }
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps({name: {"value": value, "type": "string"} for name, value in outputs.items()}))
    status = main(["submit", "fingerspelling", "--from-terraform", str(saved), "--data", "gs://data/corpus",
                   "--preset", "smoke", "--image-tag", "abc123", "--api-endpoint", vertex.api_endpoint, "--no-cache",
                   "distill.kd_weight=5"])
    assert status == 0
    printed = capsys.readouterr().out
    assert re.search(rf"https://console.cloud.google.com/vertex-ai/locations/{REGION}/pipelines/runs/signpipe-fingerspelling-\d+",
                     printed.replace("\n", ""))
    body = recorded("POST", "/pipelineJobs")[0]["body"]
    assert body["serviceAccount"] == SERVICE_ACCOUNT
    assert body["runtimeConfig"]["parameterValues"]["vertex"]["tensorboard"] == outputs["tensorboard"]
    assert body["runtimeConfig"]["parameterValues"]["distill_overrides"]["kd_weight"] == "5"


def test_cli_schedule_and_its_subcommands(vertex, capsys):
    common = ["--project", PROJECT, "--region", REGION, "--api-endpoint", vertex.api_endpoint]
    status = main(["schedule", "fingerspelling", "--cron", "30 2 * * 0", "--pipeline-root", "gs://b/root",
                   "--service-account", SERVICE_ACCOUNT, "--image-registry", REGISTRY, "--image-tag", "abc123",
                   "--data", "gs://data/corpus", *common])
    assert status == 0
    (create,) = recorded("POST", "/schedules")
    assert create["body"]["cron"] == "30 2 * * 0"
    schedule_id = VertexRecorder.store[next(iter(VertexRecorder.store))]["name"].rsplit("/", 1)[-1]
    assert main(["schedule", "list", *common]) == 0
    assert schedule_id in capsys.readouterr().out
    assert main(["schedule", "pause", schedule_id, *common]) == 0
    assert "PAUSED" in capsys.readouterr().out
    assert main(["schedule", "delete", schedule_id, *common]) == 0
    assert recorded("DELETE", schedule_id)


def test_a_given_evaluation_corpus_is_checked_for_shared_signers(vertex):
    request = build_run_request(vertex, "gs://data/train", preset_name="smoke", eval_corpus_uri="gs://data/held-out",
                                image_tag="abc123")
    assert not request.hold_out and request.evaluation() == {"corpus": "gs://data/held-out",
                                                             "allow_shared_participants": False}
    submit(request)
    body = recorded("POST", "/pipelineJobs")[0]["body"]
    values = body["runtimeConfig"]["parameterValues"]
    assert values["eval_corpus_uri"] == "gs://data/held-out" and values["allow_shared_participants"] is False
    assert "holdout_fraction" not in values
    tasks = body["pipelineSpec"]["root"]["dag"]["tasks"]
    # both corpora fingerprinted (never cached) and validated; the signer check before training
    assert {"fingerprint-corpus", "fingerprint-corpus-2", "validate", "validate-2", "check-held-out"} <= set(tasks)
    assert "hold-out-participants" not in tasks
    assert tasks["fingerprint-corpus-2"]["cachingOptions"].get("enableCache", False) is False
    assert tasks["validate-2"]["taskInfo"]["name"] == "validate evaluation corpus"
    assert "check-held-out" in tasks["plan-shards"]["dependentTasks"]
    assert tasks["gate"]["inputs"]["parameters"]["shared_participants"]["taskOutputParameter"]["producerTask"] == "check-held-out"
    flagged = build_run_request(vertex, "gs://data/train", preset_name="smoke", eval_corpus_uri="gs://data/held-out",
                                image_tag="abc123", allow_shared_participants=True)
    assert flagged.parameters["allow_shared_participants"] is True
    with pytest.raises(ConfigError, match="the training corpus itself"):
        build_run_request(vertex, "gs://data/train", preset_name="smoke", eval_corpus_uri="gs://data/train/", image_tag="t")
    with pytest.raises(ConfigError, match="needs --eval-data"):
        build_run_request(vertex, "gs://data/train", preset_name="smoke", image_tag="t", allow_shared_participants=True)
    # the hold-out form's own parameters may be overridden; the cache age follows the bucket's retention
    held = build_run_request(dataclasses.replace(vertex, run_retention_days=180), "gs://data/train", preset_name="smoke",
                             image_tag="t", overrides=["holdout_fraction=0.1", "holdout_seed=7"])
    assert held.hold_out and (held.parameters["holdout_fraction"], held.parameters["holdout_seed"]) == (0.1, 7)
    assert held.parameters["cache_max_age_days"] == 173 and held.evaluation()["holdout_fraction"] == 0.1
    with pytest.raises(ConfigError, match="unknown pipeline parameter 'holdout_fraction'"):
        build_run_request(vertex, "gs://data/train", preset_name="smoke", eval_corpus_uri="gs://data/h", image_tag="t",
                          overrides=["holdout_fraction=0.1"])


def test_schedule_dry_run_shows_its_evaluation_corpus_and_creates_nothing(vertex, capsys):
    common = ["--project", PROJECT, "--region", REGION, "--api-endpoint", vertex.api_endpoint, "--pipeline-root",
              "gs://b/root", "--image-registry", REGISTRY, "--image-tag", "abc123", "--cron", "0 3 * * 1"]
    assert main(["schedule", "fingerspelling", "--data", "gs://data/train", "--eval-data", "gs://data/held-out",
                 "--dry-run", *common]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["evaluation"] == {"corpus": "gs://data/held-out", "allow_shared_participants": False}
    assert shown["schedule"] == {"cron": "0 3 * * 1", "max_concurrent_runs": 1, "max_runs": None}
    assert shown["parameters"]["cache_max_age_days"] == 23
    assert {"check-held-out", "fingerprint-corpus", "fingerprint-corpus-2"} <= set(shown["spec"]["tasks"])
    assert main(["schedule", "fingerspelling", "--data", "gs://data/train", "--dry-run", *common]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["evaluation"]["corpus"].startswith("participants held out of --data")
    assert shown["evaluation"]["source"] == "gs://data/train" and "hold-out-participants" in shown["spec"]["tasks"]
    assert {"holdout_fraction", "holdout_seed"} <= set(shown["spec"]["inputs"])
    assert VertexRecorder.requests == []  # nothing was created


def test_user_errors_fail_before_any_request(vertex, capsys):
    assert main(["submit", "--project", PROJECT, "--region", REGION, "--pipeline-root", "gs://b/root",
                 "--api-endpoint", vertex.api_endpoint, "--data", "/local/corpus"]) == 2
    assert "gs://" in capsys.readouterr().err
    assert main(["submit", "--project", PROJECT, "--region", REGION, "--pipeline-root", "gs://b/root", "--image-tag", "t",
                 "--image-registry", REGISTRY, "--api-endpoint", vertex.api_endpoint, "--data", "gs://d/c",
                 "finetune.total_step=5"]) == 2
    assert "total_step" in capsys.readouterr().err
    assert main(["schedule", "--cron", "every monday", "--project", PROJECT, "--region", REGION, "--pipeline-root",
                 "gs://b/root", "--image-tag", "t", "--image-registry", REGISTRY, "--data", "gs://d/c",
                 "--api-endpoint", vertex.api_endpoint]) == 2
    assert VertexRecorder.requests == []


def test_cron_and_settings_checks(tmp_path):
    assert check_cron(" 0 3 * * 1 ") == "0 3 * * 1"
    assert check_cron("CRON_TZ=America/New_York 1 * * * *").startswith("CRON_TZ")
    for bad in ("0 3 * *", "@daily", "0 3 * * 1 2026"):
        with pytest.raises(ConfigError):
            check_cron(bad)
    with pytest.raises(ConfigError, match="region"):
        VertexSettings(project="p", region="")
    with pytest.raises(ConfigError, match="gs://"):
        VertexSettings(project="p", region="r", pipeline_root="/tmp/root")
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps({name: {"value": value} for name, value in {
        "project": PROJECT, "region": REGION, "pipeline_root": "gs://b/root", "service_account_email": SERVICE_ACCOUNT,
        "docker_registry": REGISTRY, "kfp_registry": "https://r-kfp.pkg.dev/p/k", "tensorboard": "projects/p/t/1"}.items()}))
    settings = VertexSettings.from_terraform(saved, region="us-east1", service_account=None)
    assert (settings.project, settings.region, settings.service_account) == (PROJECT, "us-east1", SERVICE_ACCOUNT)
    assert settings.bucket == "b" and settings.docker_registry == REGISTRY


def test_vertex_registry_uploads_a_version_with_the_champion_alias(vertex, tmp_path, monkeypatch):
    from signpipe.registry import VertexModelRegistry

    mounted = tmp_path / "gcs"
    monkeypatch.setattr("signpipe.registry.gcs_local_path",
                        lambda uri: mounted / uri[len("gs://"):] if uri.startswith("gs://") else Path(uri))
    import contextlib, types  # the champion lock's Cloud Storage requests are tested in test_vertex_registry.py
    monkeypatch.setattr(VertexModelRegistry, "champion_lock",
                        lambda self: contextlib.nullcontext(types.SimpleNamespace(check_held=lambda: None)))
    bundle = tmp_path / "export" / "model.zip"
    bundle.parent.mkdir()
    bundle.write_bytes(b"bundle bytes")
    registry = VertexModelRegistry(PROJECT, REGION, "signpipe-fingerspelling", "gs://models-bucket/models",
                                   credentials=vertex.credentials())
    vertex.connect()
    assert registry.champion() is None
    entry = registry.publish(bundle, {"score": 0.42, "metric": "normalized_levenshtein"}, {"preset": "small", "run": "Run_1"})
    assert entry.champion and entry.version == "1"
    (upload,) = recorded("POST", "/models:upload")
    model = upload["body"]["model"]
    assert upload["path"] == f"{PARENT}/models:upload"
    assert model["displayName"] == "signpipe-fingerspelling"
    assert entry.uri.startswith("gs://models-bucket/models/signpipe-fingerspelling/")
    assert json.loads(model["versionDescription"]) == {"uri": entry.uri, "bundle": "model.zip", "score": 0.42,
                                                       "preset": "small", "run": "Run_1", "chain_best": 0.42}
    assert set(model["versionAliases"]) == {"champion", "default"}  # the SDK adds "default" for the default version
    assert model["labels"] == {"preset": "small", "run": "run_1"}
    assert "parentModel" not in upload["body"]
    stored = mounted / entry.uri[len("gs://"):]
    assert (stored / "model.zip").read_bytes() == b"bundle bytes"
    assert json.loads((stored / "evaluation.json").read_text())["score"] == 0.42
    champion = registry.champion()
    assert (champion.version, champion.uri, champion.evaluation["score"]) == ("1", entry.uri, 0.42)
    # a worse model, judged against no champion, is registered as a version without the alias
    second = registry.publish(bundle, {"score": 0.2}, {"preset": "small"})
    assert not second.champion
    upload = recorded("POST", "/models:upload")[-1]["body"]
    assert upload["parentModel"].endswith(f"/models/{champion_model_id()}")
    assert not {"champion", "default"} & set(upload["model"].get("versionAliases", []))


def champion_model_id() -> str:
    return next(name for name in VertexRecorder.store if "/models/" in name).rsplit("/", 1)[-1]
