"""`signpipe run | compile | submit | schedule | runs`: pipelines, locally and on Vertex AI.

    signpipe run fingerspelling --local                          # the whole DAG on this machine
    signpipe run isolated-signs --local --data ../shared/data/asl-signs-sample   # k folds, ensemble, gate
    signpipe compile fingerspelling --preset small --out spec.yaml --image-registry REGION-docker.pkg.dev/P/R
    signpipe submit fingerspelling --from-terraform infra/envs/dev --data gs://BUCKET/corpus --preset small
    signpipe schedule fingerspelling --cron "0 3 * * 1" --from-terraform infra/envs/dev --data gs://BUCKET/corpus
    signpipe schedule list|pause|resume|delete ...
    signpipe runs list|show ...

`key=value` arguments override the preset: a pipeline parameter (`min_score=0.3`) or a training
stage's config field (`finetune.total_steps=300`). The pipeline code (kfp, aiplatform) is imported
inside the commands: `signpipe/` itself imports no kfp, and `signpipe --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from signpipe.errors import ConfigError

console = Console()

PIPELINE_ARGUMENT = typer.Argument("fingerspelling", help="Pipeline: fingerspelling or isolated-signs.")
OVERRIDES_ARGUMENT = typer.Argument(
    None, help="Overrides key=value: a pipeline parameter (min_score=0.3, n_folds=3) or STAGE.FIELD "
    "(finetune.total_steps=300; isolated-signs: signs.epochs=20).",
    show_default=False,
)
PRESET_HELP = ("Pipeline preset: local (the main job on this machine), smoke (plumbing check), small, large, kaggle5th "
               "(fingerspelling); local, smoke, seed (isolated-signs).")


def _settings(
    project: str | None,
    region: str | None,
    pipeline_root: str | None = None,
    service_account: str | None = None,
    from_terraform: Path | None = None,
    image_registry: str | None = None,
    api_endpoint: str | None = None,
):
    from pipelines.vertex import VertexSettings

    explicit = {"project": project, "region": region, "pipeline_root": pipeline_root, "service_account": service_account,
                "docker_registry": image_registry, "api_endpoint": api_endpoint}
    if from_terraform is not None:
        return VertexSettings.from_terraform(from_terraform, **explicit)
    return VertexSettings(**{key: value or "" for key, value in explicit.items()})


def _print_json(values: Any) -> None:
    typer.echo(json.dumps(values, indent=2, default=str))


def run(
    pipeline: str = PIPELINE_ARGUMENT,
    overrides: list[str] | None = OVERRIDES_ARGUMENT,
    local: bool = typer.Option(False, "--local", help="Run on this machine with kfp's local runner (required: Vertex runs use `signpipe submit`)."),
    preset: str = typer.Option("local", "--preset", help=PRESET_HELP),
    data: Path | None = typer.Option(None, "--data", help="Training corpus (Kaggle layout); default: a synthetic corpus generated first."),
    eval_data: Path | None = typer.Option(None, "--eval-data", help="Corpus of other signers the bundle is scored on (default: a synthetic one; with --data: participants held out of --data)."),
    allow_shared: bool = typer.Option(False, "--allow-shared-participants", help="Accept an --eval-data that shares signers with --data (the score is flagged as including them)."),
    model_registry: Path | None = typer.Option(None, "--model-registry", help="Local model registry folder (default: RUNS_DIR/registry/PIPELINE)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where runs/<name>-<time>/ folders are made."),
    name: str | None = typer.Option(None, "--name", help="Run name (default: PIPELINE-PRESET)."),
    cache: bool = typer.Option(False, "--cache/--no-cache", help="Reuse outputs of identical earlier tasks (kfp local cache)."),
) -> None:
    """Run a whole pipeline on this machine, then print a summary.

    Every step runs as a local task (kfp's subprocess runner); the summary gives the score, size,
    latency, the gate's verdict and where the bundle is. Everything stays in RUNS_DIR/NAME-TIME/.
    """
    if not local:
        raise ConfigError("`signpipe run` runs pipelines locally: pass --local (for Vertex AI use `signpipe submit`)")
    from pipelines.local import run_local

    run_local(pipeline, preset, data, eval_data, overrides or [], runs_dir, model_registry, name, console, enable_caching=cache,
              allow_shared_participants=allow_shared)


def compile_command(
    pipeline: str = PIPELINE_ARGUMENT,
    preset: str = typer.Option("smoke", "--preset", help=PRESET_HELP),
    out: Path = typer.Option(..., "--out", help="Where to write the compiled spec (.yaml)."),
    target: str = typer.Option("vertex", "--target", help="vertex (images and machines set) or local."),
    image_registry: str | None = typer.Option(None, "--image-registry", help="Docker registry of the step images (default: $SIGNPIPE_IMAGE_REGISTRY)."),
    image_tag: str | None = typer.Option(None, "--image-tag", help="Image tag (default: $SIGNPIPE_IMAGE_TAG, else the git revision)."),
) -> None:
    """Compile a pipeline to its spec and check it parses as a kfp PipelineSpec."""
    from pipelines.compile import compile_pipeline, describe

    compiled = compile_pipeline(pipeline, preset, out, target=target, registry=image_registry, tag=image_tag)
    summary = describe(compiled)
    table = Table(title=f"{summary['pipeline']} ({preset}, {target}) -> {escape(str(out))}", title_justify="left")
    for column in ("task", "image", "cpu", "memory", "accelerator"):
        table.add_column(column, overflow="fold", no_wrap=column == "image")  # an image reference is copied whole
    for task, values in sorted(summary["tasks"].items()):
        accelerator = f"{values['accelerator']} x {values['accelerator_count']}" if values.get("accelerator") else ""
        if values.get("custom_job"):
            accelerator = f"custom job: {values['custom_job']}"
        image = values["image"].rsplit("/", 1)[-1] if values.get("image") else f"({values.get('kind')})"
        table.add_row(task, escape(image), values.get("cpu", ""), values.get("memory", ""), accelerator)
    console.print(table)


def _request(pipeline, preset, settings, data, eval_data, overrides, model_registry, model_storage, image_tag, no_cache, display_name,
             allow_shared=False):
    from pipelines.vertex import build_run_request

    return build_run_request(settings, data or "", pipeline, preset, eval_data or "", overrides or [], model_registry or "",
                             model_storage or "", image_tag, False if no_cache else None, display_name or "",
                             allow_shared_participants=allow_shared)


EVAL_DATA_HELP = ("Corpus of other signers the bundle is scored on, in Cloud Storage (default: participants held out of "
                  "--data, never trained on); refused when it shares participants with --data.")
ALLOW_SHARED_HELP = "Accept an --eval-data that shares signers with --data (the gate's report flags the score)."


def _dry_run(request, **extra: Any) -> None:
    """What a submission or schedule would send, after compiling its spec (which must parse)."""
    import tempfile

    from pipelines.compile import describe
    from pipelines.vertex import compile_request

    with tempfile.TemporaryDirectory() as directory:
        compiled = compile_request(request, directory)
        tasks = sorted(describe(compiled)["tasks"])
        inputs = sorted(compiled.spec.root.input_definitions.parameters)
    _print_json({"evaluation": request.evaluation(), **extra, "parameters": request.parameters, "labels": request.labels,
                 "image_tag": request.image_tag, "spec": {"pipeline": compiled.name, "tasks": tasks, "inputs": inputs}})


# Options shared by submit and schedule (typer needs them spelled out per command).
def _project_option():
    return typer.Option(None, "--project", help="Google Cloud project (default: from --from-terraform).")


def _region_option():
    return typer.Option(None, "--region", help="Vertex AI region, e.g. us-central1.")


def _terraform_option():
    return typer.Option(None, "--from-terraform", help="infra/envs/<env> (or a saved `terraform output -json`): project, region, bucket, service account, registry.")


def _endpoint_option():
    return typer.Option(None, "--api-endpoint", help="Vertex AI API endpoint (default: the region's); http://HOST:PORT talks plain REST without credentials.")


def submit(
    pipeline: str = PIPELINE_ARGUMENT,
    overrides: list[str] | None = OVERRIDES_ARGUMENT,
    project: str | None = _project_option(),
    region: str | None = _region_option(),
    pipeline_root: str | None = typer.Option(None, "--pipeline-root", help="gs:// folder for the run's artifacts."),
    service_account: str | None = typer.Option(None, "--service-account", help="Service account the run's steps act as."),
    from_terraform: Path | None = _terraform_option(),
    preset: str = typer.Option("smoke", "--preset", help=PRESET_HELP),
    data: str | None = typer.Option(None, "--data", help="Training corpus in Cloud Storage (gs://..., Kaggle layout)."),
    eval_data: str | None = typer.Option(None, "--eval-data", help=EVAL_DATA_HELP),
    allow_shared: bool = typer.Option(False, "--allow-shared-participants", help=ALLOW_SHARED_HELP),
    model_registry: str | None = typer.Option(None, "--model-registry", help="vertex://PROJECT/REGION/NAME (default: signpipe-PIPELINE in this project)."),
    model_storage: str | None = typer.Option(None, "--model-storage", help="gs:// folder published bundles are kept in (default: gs://BUCKET/models)."),
    image_registry: str | None = typer.Option(None, "--image-registry", help="Docker registry of the step images (default: terraform's docker_registry, or $SIGNPIPE_IMAGE_REGISTRY)."),
    image_tag: str | None = typer.Option(None, "--image-tag", help="Image tag (default: $SIGNPIPE_IMAGE_TAG, else the git revision)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step again, reusing no cached outputs."),
    display_name: str | None = typer.Option(None, "--display-name", help="Run display name (default: signpipe-PIPELINE-PRESET)."),
    api_endpoint: str | None = _endpoint_option(),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the parameters and labels, compile the spec, submit nothing."),
) -> None:
    """Submit a pipeline run to Vertex AI Pipelines and print its console link."""
    from pipelines.vertex import submit as submit_run

    settings = _settings(project, region, pipeline_root, service_account, from_terraform, image_registry, api_endpoint)
    request = _request(pipeline, preset, settings, data, eval_data, overrides, model_registry, model_storage, image_tag, no_cache, display_name,
                       allow_shared)
    if dry_run:
        _dry_run(request)
        return
    submitted = submit_run(request)
    console.print(f"submitted [bold]{submitted.job_id}[/] ({preset})", highlight=False)
    console.print(f"watch it at {submitted.console_url}", highlight=False, soft_wrap=True)


class _CreateByDefault(TyperGroup):
    """`signpipe schedule PIPELINE --cron ...` means `signpipe schedule create PIPELINE ...`;
    `list`, `pause`, `resume`, `delete` are the other subcommands."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


schedule_app = typer.Typer(cls=_CreateByDefault, help="Vertex AI schedules: retrain on a cron; list, pause, resume, delete.",
                           no_args_is_help=True)


@schedule_app.command("create")
def schedule_create(
    pipeline: str = PIPELINE_ARGUMENT,
    overrides: list[str] | None = OVERRIDES_ARGUMENT,
    cron: str = typer.Option(..., "--cron", help='Cron expression, e.g. "0 3 * * 1" (optionally "TZ=Europe/Paris 0 3 * * 1").'),
    project: str | None = _project_option(),
    region: str | None = _region_option(),
    pipeline_root: str | None = typer.Option(None, "--pipeline-root", help="gs:// folder for the runs' artifacts."),
    service_account: str | None = typer.Option(None, "--service-account", help="Service account the runs act as."),
    from_terraform: Path | None = _terraform_option(),
    preset: str = typer.Option("smoke", "--preset", help=PRESET_HELP),
    data: str | None = typer.Option(None, "--data", help="Training corpus in Cloud Storage (fingerprinted by every run: changed files are read afresh)."),
    eval_data: str | None = typer.Option(None, "--eval-data", help=EVAL_DATA_HELP),
    allow_shared: bool = typer.Option(False, "--allow-shared-participants", help=ALLOW_SHARED_HELP),
    model_registry: str | None = typer.Option(None, "--model-registry", help="vertex://PROJECT/REGION/NAME (default: signpipe-PIPELINE)."),
    model_storage: str | None = typer.Option(None, "--model-storage", help="gs:// folder published bundles are kept in."),
    image_registry: str | None = typer.Option(None, "--image-registry", help="Docker registry of the step images."),
    image_tag: str | None = typer.Option(None, "--image-tag", help="Image tag (default: the git revision)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Every scheduled run recomputes every step."),
    display_name: str | None = typer.Option(None, "--display-name", help="Schedule name (default: signpipe-PIPELINE-PRESET)."),
    max_concurrent: int = typer.Option(1, "--max-concurrent", help="Runs of this schedule allowed at once."),
    max_runs: int | None = typer.Option(None, "--max-runs", help="Stop after this many runs (default: never)."),
    api_endpoint: str | None = _endpoint_option(),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what each scheduled run would be given (evaluation corpus, parameters, labels), compile the spec, create nothing."),
) -> None:
    """Create a schedule that submits the pipeline on a cron, for retraining.

    Each scheduled run's gate keeps the current champion unless the new model beats it.
    """
    from pipelines.vertex import check_cron, create_schedule, schedule_console_link

    settings = _settings(project, region, pipeline_root, service_account, from_terraform, image_registry, api_endpoint)
    request = _request(pipeline, preset, settings, data, eval_data, overrides, model_registry, model_storage, image_tag, no_cache, display_name,
                       allow_shared)
    if dry_run:
        _dry_run(request, schedule={"cron": check_cron(cron), "max_concurrent_runs": max_concurrent, "max_runs": max_runs})
        return
    info = create_schedule(request, cron, max_concurrent, max_runs)
    console.print(f"scheduled [bold]{info.display_name}[/] ({info.schedule_id}): {info.cron}, {info.state}", highlight=False)
    console.print(f"see {schedule_console_link(settings)}", highlight=False, soft_wrap=True)


def _print_schedules(infos: list) -> None:
    table = Table(title="schedules", title_justify="left")
    for column in ("id", "name", "cron", "state", "next run", "runs"):
        table.add_column(column, overflow="fold")
    for info in infos:
        table.add_row(info.schedule_id, info.display_name, info.cron, info.state, info.next_run_time, str(info.started_runs))
    console.print(table)


@schedule_app.command("list")
def schedule_list(
    project: str | None = _project_option(),
    region: str | None = _region_option(),
    from_terraform: Path | None = _terraform_option(),
    api_endpoint: str | None = _endpoint_option(),
) -> None:
    """List the project's pipeline schedules."""
    from pipelines.vertex import list_schedules

    _print_schedules(list_schedules(_settings(project, region, from_terraform=from_terraform, api_endpoint=api_endpoint)))


def _schedule_action(action: str):
    def command(
        schedule: str = typer.Argument(..., help="Schedule id or resource name (see `signpipe schedule list`)."),
        project: str | None = _project_option(),
        region: str | None = _region_option(),
        from_terraform: Path | None = _terraform_option(),
        api_endpoint: str | None = _endpoint_option(),
    ) -> None:
        from pipelines import vertex

        settings = _settings(project, region, from_terraform=from_terraform, api_endpoint=api_endpoint)
        if action == "delete":
            console.print(f"deleted {vertex.delete_schedule(settings, schedule)}", highlight=False)
            return
        info = getattr(vertex, f"{action}_schedule")(settings, schedule)
        console.print(f"{info.display_name} ({info.schedule_id}): {info.state}", highlight=False)

    command.__doc__ = {"pause": "Pause a schedule (no new runs until resumed).", "resume": "Resume a paused schedule.",
                       "delete": "Delete a schedule (runs it started are kept)."}[action]
    return command


for _action in ("pause", "resume", "delete"):
    schedule_app.command(_action)(_schedule_action(_action))


runs_app = typer.Typer(help="Vertex AI pipeline runs: list them, show one with its tasks.", no_args_is_help=True)


@runs_app.command("list")
def runs_list(
    project: str | None = _project_option(),
    region: str | None = _region_option(),
    from_terraform: Path | None = _terraform_option(),
    api_endpoint: str | None = _endpoint_option(),
    limit: int = typer.Option(20, "--limit", help="Newest runs to show."),
    pipeline: str | None = typer.Option(None, "--pipeline", help="Only runs of this pipeline (its label)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The latest pipeline runs with their states, preset and git revision."""
    from pipelines.vertex import format_runs, list_runs

    runs = list_runs(_settings(project, region, from_terraform=from_terraform, api_endpoint=api_endpoint), limit, pipeline)
    if as_json:
        _print_json(runs)
        return
    table = Table(title="pipeline runs", title_justify="left")
    for column in ("job id", "state", "created", "preset", "revision"):
        table.add_column(column, overflow="fold")
    for row in format_runs(runs):
        table.add_row(*row)
    console.print(table)


@runs_app.command("show")
def runs_show(
    job_id: str = typer.Argument(..., help="Job id or resource name (see `signpipe runs list`)."),
    project: str | None = _project_option(),
    region: str | None = _region_option(),
    from_terraform: Path | None = _terraform_option(),
    api_endpoint: str | None = _endpoint_option(),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One run: its state, error and the state of every task."""
    from pipelines.vertex import show_run

    details = show_run(_settings(project, region, from_terraform=from_terraform, api_endpoint=api_endpoint), job_id)
    if as_json:
        _print_json(details)
        return
    console.print(f"[bold]{details['job_id']}[/]: {details['state']}  {details['console_url']}", highlight=False, soft_wrap=True)
    if details["error"]:
        console.print(f"[red]{escape(details['error'])}[/]", highlight=False)
    table = Table(show_header=True)
    for column in ("task", "state", "started", "ended", "error"):
        table.add_column(column, overflow="fold")
    for task in details["tasks"]:
        table.add_row(task["task"], task["state"], task["started"], task["ended"], escape(task["error"]))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `run`, `compile`, `submit` and the `schedule` and `runs` groups to the root app."""
    app.command("run")(run)
    app.command("compile")(compile_command)
    app.command("submit")(submit)
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(runs_app, name="runs")
