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

from signpipe.cli.options import examples, renamed
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
    name: str | None = typer.Option(None, "--name", help="Run name, its display name on Vertex AI (default: signpipe-PIPELINE-PRESET)."),
    api_endpoint: str | None = _endpoint_option(),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the parameters and labels, compile the spec, submit nothing."),
    _old_display_name: str | None = renamed("--display-name", "--name"),
) -> None:
    """Submit a pipeline run to Vertex AI Pipelines and print its console link."""
    from pipelines.vertex import submit as submit_run

    settings = _settings(project, region, pipeline_root, service_account, from_terraform, image_registry, api_endpoint)
    request = _request(pipeline, preset, settings, data, eval_data, overrides, model_registry, model_storage, image_tag, no_cache, name,
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
                           no_args_is_help=True,
                           epilog=examples('signpipe schedule fingerspelling --cron "0 3 * * 1" --from-terraform infra/envs/dev '
                                           '--data gs://BUCKET/corpus --preset small',
                                           "signpipe schedule list --from-terraform infra/envs/dev"))


@schedule_app.command("create", epilog=examples(
    'signpipe schedule create fingerspelling --cron "0 3 * * 1" --project P',
    'signpipe schedule create fingerspelling --cron "0 3 * * 1" --from-terraform infra/envs/dev --data gs://BUCKET/corpus',
    'signpipe schedule create isolated-signs --cron "0 4 * * 1" --from-terraform infra/envs/dev '
    '--data gs://BUCKET/asl-signs --preset seed --name signs-weekly --dry-run'))
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
    name: str | None = typer.Option(None, "--name", help="Schedule name, also its runs' name (default: signpipe-PIPELINE-PRESET)."),
    max_concurrent: int = typer.Option(1, "--max-concurrent", help="Runs of this schedule allowed at once."),
    max_runs: int | None = typer.Option(None, "--max-runs", help="Stop after this many runs (default: never)."),
    api_endpoint: str | None = _endpoint_option(),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what each scheduled run would be given (evaluation corpus, parameters, labels), compile the spec, create nothing."),
    _old_display_name: str | None = renamed("--display-name", "--name"),
) -> None:
    """Create a schedule that submits the pipeline on a cron, for retraining.

    Each scheduled run's gate keeps the current champion unless the new model beats it.
    """
    from pipelines.vertex import check_cron, create_schedule, schedule_console_link

    settings = _settings(project, region, pipeline_root, service_account, from_terraform, image_registry, api_endpoint)
    request = _request(pipeline, preset, settings, data, eval_data, overrides, model_registry, model_storage, image_tag, no_cache, name,
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


@schedule_app.command("list", epilog=examples("signpipe schedule list --from-terraform infra/envs/dev"))
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
    schedule_app.command(_action, epilog=examples(f"signpipe schedule {_action} SCHEDULE_ID --from-terraform infra/envs/dev"))(
        _schedule_action(_action))


runs_app = typer.Typer(
    help="Pipeline runs, local or on Vertex AI: list them, show one.\n\nThis machine's runs (RUNS_DIR/NAME-TIME/) with "
         "--local or when no Vertex AI project is given; Vertex AI's with --project or --from-terraform.",
    no_args_is_help=True,
    epilog=examples("signpipe runs list", "signpipe runs show fingerspelling-smoke",
                    "signpipe runs list --from-terraform infra/envs/dev"),
)

LOCAL_OPTION_HELP = "List the runs of this machine (RUNS_DIR), not Vertex AI's (the default when no project is given)."
RUNS_DIR_OPTION_HELP = "Folder of the local runs (`signpipe run --local --runs-dir`)."


def _is_local(local: bool, project: str | None, from_terraform: Path | None) -> bool:
    """Local unless a Vertex AI project is named (by --project or --from-terraform); nothing else
    names one (signpipe reads no project from the environment)."""
    return local or (not project and from_terraform is None)


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


SHORT_METRICS = {"normalized_levenshtein": "NLev", "accuracy": "acc", "top1_accuracy": "acc"}


def _short_path(value: str) -> str:
    """A path relative to the current folder when it lies under it (what a reader would type)."""
    try:
        return str(Path(value).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return value


def _verdict(figures: dict[str, Any]) -> str:
    gate = figures.get("gate")
    if not gate:
        return ""
    failed = figures.get("gate_failed") or []
    return f"{gate} ({', '.join(map(str, failed))})" if failed else str(gate)


def _list_local(runs_dir: Path, limit: int, pipeline: str | None, as_json: bool) -> None:
    from signpipe.local_runs import list_local_registries, list_local_runs

    runs = list_local_runs(runs_dir, pipeline, limit)
    registries = list_local_registries(runs_dir, pipeline)
    if as_json:
        _print_json({"where": "local", "runs_dir": str(runs_dir), "runs": [run.row() for run in runs],
                     "registries": [{"kind": r.kind, "pipeline": r.pipeline, "root": str(r.root), "champion": r.champion,
                                     "versions": r.versions, **({"problem": r.problem} if r.problem else {})}
                                    for r in registries]})
        return
    console.print(f"local runs in {escape(str(runs_dir))} (newest first; Vertex AI runs: --project or --from-terraform)",
                  highlight=False, soft_wrap=True)
    if not runs:
        console.print("no runs" + (f" of {escape(pipeline)}" if pipeline else "") + " (start one: signpipe run --local)",
                      highlight=False)
    else:
        from rich import box

        table = Table(box=box.SIMPLE_HEAD)
        for column in ("name", "pipeline", "preset", "started", "seconds", "score", "gate", "published"):
            table.add_column(column, overflow="fold", no_wrap=column == "name",
                             justify="right" if column in ("seconds", "score") else "left")
        for run in runs:
            row = run.row()
            figures = run.figures
            score = _number(row["score"])
            if score and row["metric"]:
                score += f" ({SHORT_METRICS.get(row['metric'], row['metric'])})"
            gate = _verdict(figures) if run.complete else f"[yellow]{escape(run.state)}[/]"
            if run.complete and not run.summary.get("succeeded"):
                gate = f"[red]{escape(run.state)}[/]" + (f"; {escape(gate)}" if gate else "")
            else:
                gate = escape(gate) if run.complete else gate
            started = run.started.strftime("%Y-%m-%d %H:%M") if run.started else ""
            table.add_row(escape(run.folder.name), row["pipeline"], row["preset"], started,
                          _number(row["seconds"], 4), escape(score), gate, row["published_version"] or "")
        console.print(table)
    from rich import box

    for registry in registries:
        title = f"{registry.kind}/{registry.pipeline}: " + (f"champion {registry.champion}" if registry.champion else "no champion")
        if registry.problem:
            console.print(f"[bold]{escape(title)}[/]: [red]{escape(registry.problem)}[/]", highlight=False, soft_wrap=True)
            continue
        table = Table(title=escape(title), title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("version", "score", "published", "bundle", "champion"):
            table.add_column(column, overflow="fold", justify="right" if column == "score" else "left")
        for version in reversed(registry.versions):
            created = (version["created"] or "").replace("T", " ")[:16]
            table.add_row(version["version"], _number(version["score"]), created,
                          escape(_short_path(version["bundle"])), "*" if version["champion"] else "")
        if not registry.versions:
            table.add_row("(none)", "", "", "", "")
        console.print(table)


@runs_app.command("list", epilog=examples("signpipe runs list", "signpipe runs list --pipeline isolated-signs --limit 5",
                                          "signpipe runs list --from-terraform infra/envs/dev --json"))
def runs_list(
    project: str | None = _project_option(),
    region: str | None = _region_option(),
    from_terraform: Path | None = _terraform_option(),
    api_endpoint: str | None = _endpoint_option(),
    local: bool = typer.Option(False, "--local", help=LOCAL_OPTION_HELP),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_DIR_OPTION_HELP),
    limit: int = typer.Option(20, "--limit", help="Newest runs to show."),
    pipeline: str | None = typer.Option(None, "--pipeline", help="Only runs of this pipeline (fingerspelling, isolated-signs)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The latest pipeline runs, local (the default) or on Vertex AI.

    Local: name, pipeline, preset, start, seconds, score, gate verdict and published version of each run in
    RUNS_DIR, newest first (a run stopped before its end is "incomplete"); then every local registry's
    versions with its champion. Vertex AI (--project or --from-terraform): each run's state, preset and git
    revision.
    """
    if _is_local(local, project, from_terraform):
        _list_local(runs_dir, limit, pipeline, as_json)
        return
    from pipelines.vertex import format_runs, list_runs

    runs = list_runs(_settings(project, region, from_terraform=from_terraform, api_endpoint=api_endpoint), limit, pipeline)
    if as_json:
        _print_json(runs)
        return
    table = Table(title="Vertex AI pipeline runs", title_justify="left")
    for column in ("job id", "state", "created", "preset", "revision"):
        table.add_column(column, overflow="fold")
    for row in format_runs(runs):
        table.add_row(*row)
    console.print(table)


def _show_local(runs_dir: Path, name: str, as_json: bool) -> None:
    from signpipe.local_runs import LOG_FILE, find_local_run

    run = find_local_run(runs_dir, name)
    if as_json:
        _print_json({"where": "local", "folder": str(run.folder), **run.row(), "summary": run.summary,
                     "parameters": run.parameters})
        return
    console.print(f"[bold]{escape(run.folder.name)}[/] (local run): {escape(run.state)}", highlight=False, soft_wrap=True)
    figures = run.figures
    lines: list[tuple[str, str]] = [("folder", str(run.folder)), ("pipeline", run.pipeline), ("preset", run.preset),
                                    ("started", run.row()["started"] or "")]
    if run.summary is None:
        lines.append(("summary", run.problem or "none: the run was stopped before it finished (or is still going)"))
        if (run.folder / LOG_FILE).is_file():
            lines.append(("log", str(run.folder / LOG_FILE)))
    else:
        score = _number(figures.get("score"), 4)
        lines += [("seconds", _number(run.summary.get("seconds"), 5)),
                  ("score", f"{score} ({figures.get('metric', '')})" if score else "")]
        failed = figures.get("gate_failed") or []
        lines.append(("gate", str(figures.get("gate") or "") + (f": failed {', '.join(map(str, failed))}" if failed else "")))
        if figures.get("model_mb") is not None:
            lines.append(("size", f"{_number(figures['model_mb'])} MB" + (f" ({figures['quantize']})" if figures.get("quantize") else "")))
        latency = figures.get("latency_ms") or {}
        if isinstance(latency, dict) and latency:
            lines.append(("latency", ", ".join(f"{key} {_number(value)} ms" for key, value in latency.items())))
        for key, label in (("corpus", "corpus"), ("eval_corpus", "eval corpus"), ("published_version", "published"),
                           ("champion_version", "champion"), ("registry", "registry"), ("bundle", "bundle"),
                           ("gate_report", "gate report")):
            if figures.get(key):
                lines.append((label, str(figures[key])))
        if figures.get("n_folds"):
            lines.append(("folds", f"{figures['n_folds']}" + (f", out-of-fold accuracy {_number(figures['oof_accuracy'], 4)}"
                                                              if figures.get("oof_accuracy") is not None else "")))
        if figures.get("plumbing"):
            lines.append(("note", "a plumbing check (smoke preset): its score means nothing"))
        if figures.get("shared_participants"):
            lines.append(("note", "the eval corpus shares participants with the training corpus"))
    report = run.report
    lines.append(("report", str(report) if report else "no index.html in the run folder"))
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in lines:
        table.add_row(key, escape(value))
    console.print(table)
    tasks = (run.summary or {}).get("tasks") or []
    if tasks:
        timing = Table(title="time per task", title_justify="left")
        timing.add_column("task")
        timing.add_column("seconds", justify="right")
        timing.add_column("status")
        for task in tasks:
            timing.add_row(escape(str(task.get("task", ""))), _number(task.get("seconds"), 4), escape(str(task.get("status", ""))))
        console.print(timing)


@runs_app.command("show", epilog=examples("signpipe runs show fingerspelling-smoke",
                                          "signpipe runs show fingerspelling-smoke-20261203-132227 --json",
                                          "signpipe runs show JOB_ID --from-terraform infra/envs/dev"))
def runs_show(
    job_id: str = typer.Argument(..., help="Local: a run folder's name (or the run name: its newest run); "
                                           "Vertex AI: job id or resource name (see `signpipe runs list`)."),
    project: str | None = _project_option(),
    region: str | None = _region_option(),
    from_terraform: Path | None = _terraform_option(),
    api_endpoint: str | None = _endpoint_option(),
    local: bool = typer.Option(False, "--local", help="Show a run of this machine (the default when no project is given)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help=RUNS_DIR_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One run: its figures and time per task, local (the default) or on Vertex AI.

    Local: score, gate verdict with the failed criteria, size, latency, corpora, preset, time per task and the
    path of its page (index.html). Vertex AI (--project or --from-terraform): its state, error and the state
    of every task.
    """
    if _is_local(local, project, from_terraform):
        _show_local(runs_dir, job_id, as_json)
        return
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
    app.command("run", epilog=examples("signpipe run fingerspelling --local --preset smoke",
                                       "signpipe run isolated-signs --local --data corpus --name signs-try",
                                       "signpipe run fingerspelling --local finetune.total_steps=3000"))(run)
    app.command("compile", epilog=examples("signpipe compile fingerspelling --preset smoke --target local --out spec.yaml"))(
        compile_command)
    app.command("submit", epilog=examples(
        "signpipe submit fingerspelling --from-terraform infra/envs/dev --dry-run",
        "signpipe submit fingerspelling --from-terraform infra/envs/dev --data gs://BUCKET/corpus --preset small",
        "signpipe submit isolated-signs --from-terraform infra/envs/dev --data gs://BUCKET/asl-signs --name try-1 "
        "--dry-run"))(submit)
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(runs_app, name="runs")
