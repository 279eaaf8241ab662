"""Vertex AI: submit runs, schedule retraining, read run states, and launch custom training jobs.

Everything goes through `google-cloud-aiplatform` (the locked SDK):

- `submit`: compile the pipeline for Vertex (images tagged with the checkout's revision, machines
  from the preset) and create a `PipelineJob` with the preset's parameters, `key=value`
  overrides, the run's service account and labels (preset, git revision); returns the console link.
  The bundle is scored on `--eval-data`, a corpus of other signers (refused when it shares
  participants with `--data`, unless `allow_shared_participants`), or, without it, on
  participants the run holds out of `--data` (the hold-out form of `pipelines.corpora`).
  Cached outputs are reused only while younger than the bucket keeps run artifacts
  (`cache_max_age_days`, below Terraform's `run_retention_days`), and never across a change of
  the data at the same address (the corpus fingerprint).
- `create_schedule`: the same job as a `PipelineJobSchedule` with a cron expression, so retraining
  runs on its own; `list_schedules`, `pause_schedule`, `resume_schedule`, `delete_schedule`.
- `list_runs`, `show_run`: job states and per-task states.
- `run_training_custom_job` (re-exported from `signpipe.custom_jobs`, where it lives so that the
  component running it imports no pipeline code): what the TPU pretraining step runs, the
  `signpipe train` command as a retry-safe, cancel-safe custom job on machines a pipeline step
  cannot request (a TPU v5e slice with its topology, several replicas).

`VertexSettings` (from `signpipe.cloud_settings`) says where: a project and region, the pipeline
root, the service account, the image registry, the TensorBoard;
`VertexSettings.from_terraform(infra/envs/dev)` reads them from the Terraform outputs. Its
`api_endpoint` also accepts a plain `http://host:port`, which talks REST to that address without
credentials: how the tests record the requests this module makes without any network.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from signpipe.cloud_settings import VertexSettings
from signpipe.cloud_settings import vertex_errors as _vertex_errors
from signpipe.custom_jobs import (  # noqa: F401  (the launcher lives in the library; re-exported for callers)
    custom_job_spec,
    run_training_custom_job,
    training_command_args,
)
from signpipe.errors import ConfigError

CONSOLE = "https://console.cloud.google.com/vertex-ai"
DEFAULT_PIPELINE = "fingerspelling"
MODELS_FOLDER = "models"
DEFAULT_RUN_RETENTION_DAYS = 30
"""The dev environment's retention (infra/envs/dev), assumed when the settings do not say."""
CACHE_AGE_MARGIN_DAYS = 7
"""A cached output is reused while younger than the retention minus this: a run that hits the cache
has a week to read it before the bucket deletes it (pretraining on the large preset takes days)."""
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?LW#]+$")


def console_link(settings: VertexSettings, job_id: str) -> str:
    return f"{CONSOLE}/locations/{settings.region}/pipelines/runs/{job_id}?project={settings.project}"


def schedule_console_link(settings: VertexSettings) -> str:
    return f"{CONSOLE}/pipelines/schedules?project={settings.project}"


def check_cron(cron: str) -> str:
    """A five-field cron expression, optionally prefixed by `TZ=Zone/City ` or `CRON_TZ=...`."""
    text = cron.strip()
    fields = text.split()
    if fields and re.match(r"^(CRON_)?TZ=\S+$", fields[0]):
        fields = fields[1:]
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ConfigError(f"cron {cron!r}: expected five fields (minute hour day month weekday), e.g. \"0 3 * * 1\", "
                          "optionally prefixed by TZ=Europe/Paris")
    return text


def run_labels(preset_name: str, pipeline: str, revision: str) -> dict[str, str]:
    """Labels every run carries, so the Vertex UI filters runs by preset and code revision."""
    from signpipe import __version__
    from signpipe.registry import vertex_label

    return {"signpipe-pipeline": vertex_label(pipeline), "preset": vertex_label(preset_name),
            "git-revision": vertex_label(revision), "signpipe-version": vertex_label(__version__)}


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """Everything one submission (or schedule) sends, decided before contacting Vertex."""

    pipeline: str
    preset: str
    settings: VertexSettings
    parameters: dict[str, Any]
    labels: dict[str, str]
    image_tag: str
    enable_caching: bool | None = None
    display_name: str = ""
    hold_out: bool = False
    """The pipeline's hold-out form: no evaluation corpus given, participants of the corpus held out."""

    def evaluation(self) -> dict[str, Any]:
        """What the bundle is scored on, as a dry run or a schedule's listing shows it."""
        if self.hold_out:
            return {"corpus": "participants held out of --data (never trained on)", "source": self.parameters["corpus_uri"],
                    "holdout_fraction": self.parameters.get("holdout_fraction", "preset default"),
                    "holdout_seed": self.parameters.get("holdout_seed", "default")}
        return {"corpus": self.parameters["eval_corpus_uri"],
                "allow_shared_participants": bool(self.parameters.get("allow_shared_participants", False))}


def build_run_request(
    settings: VertexSettings,
    corpus_uri: str,
    pipeline: str = DEFAULT_PIPELINE,
    preset_name: str = "small",
    eval_corpus_uri: str = "",
    overrides: Iterable[str] = (),
    registry: str = "",
    registry_storage: str = "",
    image_tag: str | None = None,
    enable_caching: bool | None = None,
    display_name: str = "",
    allow_shared_participants: bool = False,
) -> RunRequest:
    """Parameters and labels of a Vertex run: the preset's run-time parameters, `key=value`
    overrides (checked against the training configs here), the corpora (`eval_corpus_uri`, or
    none: the hold-out form), the cache age, and the registry (by default the project's Vertex
    Model Registry, bundles kept under gs://BUCKET/models)."""
    from pipelines.compile import check_pipeline_name
    from pipelines.corpora import HOLDOUT_SEED
    from pipelines.presets import apply_overrides, check_training_overrides, preset
    from signpipe.images import resolve_tag

    check_pipeline_name(pipeline)
    for name, uri in (("--data", corpus_uri), ("--eval-data", eval_corpus_uri)):
        if uri and not uri.startswith("gs://"):
            raise ConfigError(f"{name} {uri!r}: a Vertex AI run reads its corpus from Cloud Storage (expected gs://...)")
    if not corpus_uri:
        raise ConfigError("no corpus: pass --data gs://BUCKET/PATH (a corpus in the Kaggle layout)")
    if not settings.pipeline_root:
        raise ConfigError("no pipeline root: pass --pipeline-root gs://BUCKET/PATH (or --from-terraform)")
    if eval_corpus_uri and eval_corpus_uri.rstrip("/") == corpus_uri.rstrip("/"):
        raise ConfigError(f"--eval-data {eval_corpus_uri}: the training corpus itself; a model scored on the signers it "
                          "trained on shows what it memorized. Pass a corpus of other signers, or no --eval-data to hold "
                          "participants of --data out of training")
    if allow_shared_participants and not eval_corpus_uri:
        raise ConfigError("allow_shared_participants needs --eval-data (without it the run holds participants out of --data, "
                          "so none are shared)")
    tag = resolve_tag(image_tag, Path(__file__).resolve().parent.parent)
    hold_out = not eval_corpus_uri
    chosen = preset(preset_name, pipeline)
    base = {**chosen.runtime_parameters(), "cache_max_age_days": cache_max_age_days(settings)}
    if hold_out:  # the hold-out form's own parameters, which `key=value` may override too
        base.update(holdout_fraction=chosen.holdout_fraction, holdout_seed=HOLDOUT_SEED)
    parameters = apply_overrides(base, overrides)
    check_training_overrides(parameters)
    if not hold_out:
        parameters.update(eval_corpus_uri=eval_corpus_uri, allow_shared_participants=allow_shared_participants)
    parameters.update({
        "corpus_uri": corpus_uri,
        "registry": registry or f"vertex://{settings.project}/{settings.region}/signpipe-{pipeline}",
        "registry_storage": registry_storage or f"gs://{settings.bucket}/{MODELS_FOLDER}",
        "labels": {"preset": preset_name, "revision": tag},
        "vertex": settings.vertex_parameter(),
    })
    return RunRequest(pipeline, preset_name, settings, parameters, run_labels(preset_name, pipeline, tag), tag,
                      enable_caching, display_name or f"signpipe-{pipeline}-{preset_name}", hold_out)


def cache_max_age_days(settings: VertexSettings) -> int:
    """How old a cached output may be when a run reuses it: the bucket's retention of run artifacts
    (`run_retention_days`, by default the dev environment's) less `CACHE_AGE_MARGIN_DAYS`, at least 1."""
    retention = settings.run_retention_days or DEFAULT_RUN_RETENTION_DAYS
    return max(1, retention - CACHE_AGE_MARGIN_DAYS)


def _pipeline_job(request: RunRequest, template: Path, job_id: str | None = None) -> Any:
    from google.cloud import aiplatform

    return aiplatform.PipelineJob(
        display_name=request.display_name,
        template_path=str(template),
        job_id=job_id,
        pipeline_root=request.settings.pipeline_root,
        parameter_values=request.parameters,
        enable_caching=request.enable_caching,
        labels=request.labels,
        **request.settings.client_options(),
    )


def compile_request(request: RunRequest, directory: str | Path) -> Any:
    """The spec `request` runs (its form: with an evaluation corpus or holding participants out),
    compiled into `directory` and checked (`pipelines.compile.CompiledPipeline`)."""
    from pipelines.compile import compile_to_directory, resolve_images

    images = resolve_images(request.settings.docker_registry or None, request.image_tag)
    return compile_to_directory(request.pipeline, request.preset, "vertex", images, directory, request.hold_out)


def _compiled(request: RunRequest, directory: str) -> Path:
    return compile_request(request, directory).path


@dataclasses.dataclass(frozen=True)
class SubmittedRun:
    job_id: str
    resource_name: str
    console_url: str
    labels: dict[str, str]


def submit(request: RunRequest, job_id: str | None = None) -> SubmittedRun:
    """Compile and submit one run; returns where to watch it."""
    request.settings.connect()
    with tempfile.TemporaryDirectory() as directory, _vertex_errors("submit"):
        job = _pipeline_job(request, _compiled(request, directory), job_id)
        job.submit(service_account=request.settings.service_account or None)
    return SubmittedRun(job.job_id, job.resource_name, console_link(request.settings, job.job_id), request.labels)


@dataclasses.dataclass(frozen=True)
class ScheduleInfo:
    resource_name: str
    display_name: str
    cron: str
    state: str
    next_run_time: str = ""
    started_runs: int = 0

    @property
    def schedule_id(self) -> str:
        return self.resource_name.rsplit("/", 1)[-1]


def _schedule_info(schedule: Any) -> ScheduleInfo:
    resource = schedule.gca_resource
    state = resource.state.name if hasattr(resource.state, "name") else str(resource.state)
    next_run = resource.next_run_time.isoformat() if getattr(resource, "next_run_time", None) else ""
    return ScheduleInfo(resource.name, resource.display_name, resource.cron, state, next_run,
                        int(getattr(resource, "started_run_count", 0) or 0))


def create_schedule(request: RunRequest, cron: str, max_concurrent_runs: int = 1, max_runs: int | None = None) -> ScheduleInfo:
    """A Vertex schedule that submits `request`'s run on `cron`; at most `max_concurrent_runs`
    at once (1: a slow retraining is never overtaken by the next one)."""
    cron = check_cron(cron)
    if max_concurrent_runs < 1:
        raise ConfigError(f"max concurrent runs must be at least 1, got {max_concurrent_runs}")
    request.settings.connect()
    with tempfile.TemporaryDirectory() as directory, _vertex_errors("schedule"):
        job = _pipeline_job(request, _compiled(request, directory))
        schedule = job.create_schedule(
            cron=cron,
            display_name=request.display_name,
            max_concurrent_run_count=max_concurrent_runs,
            max_run_count=max_runs,
            service_account=request.settings.service_account or None,
        )
    return _schedule_info(schedule)


def _schedule(settings: VertexSettings, name: str) -> Any:
    from google.cloud import aiplatform

    if not name:
        raise ConfigError("expected a schedule id or resource name (see `signpipe schedule list`)")
    return aiplatform.PipelineJobSchedule.get(schedule_id=name, **settings.client_options())


def list_schedules(settings: VertexSettings) -> list[ScheduleInfo]:
    from google.cloud import aiplatform

    settings.connect()
    with _vertex_errors("schedule list"):
        return [_schedule_info(s) for s in aiplatform.PipelineJobSchedule.list(**settings.client_options())]


def pause_schedule(settings: VertexSettings, name: str) -> ScheduleInfo:
    settings.connect()
    with _vertex_errors("schedule pause"):
        schedule = _schedule(settings, name)
        schedule.pause()
        return _schedule_info(_schedule(settings, name))


def resume_schedule(settings: VertexSettings, name: str) -> ScheduleInfo:
    settings.connect()
    with _vertex_errors("schedule resume"):
        schedule = _schedule(settings, name)
        schedule.resume()
        return _schedule_info(_schedule(settings, name))


def delete_schedule(settings: VertexSettings, name: str) -> str:
    settings.connect()
    with _vertex_errors("schedule delete"):
        schedule = _schedule(settings, name)
        resource_name = schedule.resource_name
        schedule.delete()
    return resource_name


def _time(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime.datetime) else (str(value) if value else "")


def _state(value: Any) -> str:
    return value.name if hasattr(value, "name") else str(value)


def list_runs(settings: VertexSettings, limit: int = 20, pipeline: str | None = None) -> list[dict[str, Any]]:
    """The latest runs, newest first: id, state, times, preset and revision labels."""
    from google.cloud import aiplatform

    settings.connect()
    label_filter = f'labels.signpipe-pipeline="{pipeline}"' if pipeline else None
    with _vertex_errors("runs list"):
        jobs = aiplatform.PipelineJob.list(filter=label_filter, order_by="create_time desc", **settings.client_options())
    runs = []
    for job in jobs[:limit]:
        resource = job.gca_resource
        runs.append({
            "job_id": resource.name.rsplit("/", 1)[-1],
            "display_name": resource.display_name,
            "state": _state(resource.state),
            "created": _time(resource.create_time),
            "ended": _time(resource.end_time),
            "preset": dict(resource.labels).get("preset", ""),
            "revision": dict(resource.labels).get("git-revision", ""),
        })
    return runs


def show_run(settings: VertexSettings, job_id: str) -> dict[str, Any]:
    """One run's state, error, parameters and per-task states."""
    from google.cloud import aiplatform

    settings.connect()
    with _vertex_errors("runs show"):
        job = aiplatform.PipelineJob.get(resource_name=job_id, **settings.client_options())
    resource = job.gca_resource
    tasks = [
        {"task": task.task_name, "state": _state(task.state), "started": _time(task.start_time), "ended": _time(task.end_time),
         "error": task.error.message if task.error and task.error.message else ""}
        for task in resource.job_detail.task_details
        if task.task_name
    ]
    return {
        "job_id": resource.name.rsplit("/", 1)[-1],
        "resource_name": resource.name,
        "state": _state(resource.state),
        "created": _time(resource.create_time),
        "ended": _time(resource.end_time),
        "error": resource.error.message if resource.error and resource.error.message else "",
        "labels": dict(resource.labels),
        "console_url": console_link(settings, resource.name.rsplit("/", 1)[-1]),
        "tasks": tasks,
    }


def format_runs(runs: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Rows for a terminal table of `list_runs`."""
    return [[r["job_id"], r["state"].replace("PIPELINE_STATE_", ""), r["created"], r["preset"], r["revision"]] for r in runs]
