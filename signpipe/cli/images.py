"""`signpipe images ...`: build and push the step images, or hand the build to Cloud Build.

The registry comes from `--image-registry` or `$SIGNPIPE_IMAGE_REGISTRY` (Terraform's `docker_registry`
output), the tag from `--image-tag`, `$SIGNPIPE_IMAGE_TAG` or the checkout's git revision: the same
resolution the pipeline compiler uses, so the images built here are the ones a compiled pipeline
names.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from signpipe import images
from signpipe.cli.options import examples, renamed

app = typer.Typer(help="Step images: build and push them, or build them on Cloud Build.", no_args_is_help=True,
                  epilog=examples("signpipe images list --image-registry europe-docker.pkg.dev/P/R --image-tag dev",
                                  "signpipe images build --dry-run --image-registry europe-docker.pkg.dev/P/R"))
console = Console()

_REGISTRY_HELP = f"Docker registry REGION-docker.pkg.dev/PROJECT/REPO (default: ${images.REGISTRY_ENV})."
_TAG_HELP = f"Image tag (default: ${images.TAG_ENV}, else the git revision of the checkout)."


def _context(context: Path | None) -> Path:
    return images.find_build_context(context)


@app.command("list", epilog=examples("signpipe images list --image-registry europe-docker.pkg.dev/P/R --image-tag dev --json"))
def list_images(
    registry: str = typer.Option(None, "--image-registry", help=_REGISTRY_HELP),
    tag: str = typer.Option(None, "--image-tag", help=_TAG_HELP),
    _old_registry: str | None = renamed("--registry", "--image-registry", "the Docker registry of the step images, as in compile and submit"),
    _old_tag: str | None = renamed("--tag", "--image-tag", "the tag of the step images, as in compile and submit"),
    as_json: bool = typer.Option(False, "--json", help="Print family -> image reference as JSON."),
) -> None:
    """Show each image family, the reference it gets and the pipeline steps that run on it."""
    uris = images.image_uris(registry, tag)
    if as_json:
        print(json.dumps(uris, indent=2))
        return
    table = Table(title="signpipe images")
    table.add_column("family", no_wrap=True)
    table.add_column("image", overflow="fold")
    table.add_column("steps")
    for name, uri in uris.items():
        chosen = images.FAMILIES[name]
        table.add_row(name, escape(uri), ", ".join(chosen.steps))
    console.print(table)


@app.command(epilog=examples("signpipe images build --dry-run --image-registry europe-docker.pkg.dev/P/R",
                            "signpipe images build --push -f cpu --image-registry europe-docker.pkg.dev/P/R"))
def build(
    registry: str = typer.Option(None, "--image-registry", help=_REGISTRY_HELP),
    tag: str = typer.Option(None, "--image-tag", help=_TAG_HELP),
    _old_registry: str | None = renamed("--registry", "--image-registry", "the Docker registry of the step images, as in compile and submit"),
    _old_tag: str | None = renamed("--tag", "--image-tag", "the tag of the step images, as in compile and submit"),
    family: list[str] = typer.Option(None, "--family", "-f", help=f"Build only this family (repeatable): {', '.join(images.FAMILIES)}."),
    push: bool = typer.Option(False, "--push", help="Push each image to the registry after building it."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be built, without contacting Docker."),
    context: Path = typer.Option(
        None, "--context", help="The signpipe checkout to build from (default: found from the current directory)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the built image references, not the build log."),
) -> None:
    """Build every image (or the chosen families) with the local Docker engine, optionally pushing."""
    build_context = _context(context)
    resolved_tag = images.resolve_tag(tag, build_context)
    plans = images.plan_builds(images.resolve_registry(registry), resolved_tag, family or None)
    if dry_run:
        table = Table(title=f"would build from {escape(str(build_context))}" + (" and push" if push else ""))
        table.add_column("family", no_wrap=True)
        table.add_column("image", overflow="fold")
        table.add_column("dockerfile", overflow="fold")
        table.add_column("build args", overflow="fold")
        for plan in plans:
            args = " ".join(f"{key}={value}" for key, value in plan.build_args.items())
            table.add_row(plan.family.name, escape(plan.uri), plan.family.dockerfile, escape(args))
        console.print(table)
        return

    def show(line: str) -> None:
        if not quiet:
            console.print(line, markup=False, highlight=False)

    built = images.build_images(plans, build_context, push=push, on_log=show)
    for image in built:
        pushed = f" pushed {image.pushed_digest}" if image.pushed_digest else ""
        console.print(f"[green]built[/] {escape(image.uri)} ({image.image_id}){pushed}", highlight=False)


@app.command(epilog=examples("signpipe images cloudbuild --image-registry europe-docker.pkg.dev/P/R --out build.sh"))
def cloudbuild(
    registry: str = typer.Option(None, "--image-registry", help=_REGISTRY_HELP),
    tag: str = typer.Option(None, "--image-tag", help=_TAG_HELP),
    _old_registry: str | None = renamed("--registry", "--image-registry", "the Docker registry of the step images, as in compile and submit"),
    _old_tag: str | None = renamed("--tag", "--image-tag", "the tag of the step images, as in compile and submit"),
    project: str = typer.Option(None, "--project", help="Google Cloud project to run the build in (default: gcloud's)."),
    context: Path = typer.Option(None, "--context", help="The signpipe checkout to upload (default: found from the current directory)."),
    out: Path = typer.Option(None, "--out", help="Also write the command to this file as a shell script."),
) -> None:
    """Print the Cloud Build command that builds and pushes every image (no local Docker needed).

    Runs `gcloud builds submit` with docker/cloudbuild.yaml and the registry and tag as
    substitutions; paste it, or `--out` a script to run it later.
    """
    build_context = _context(context)
    argv = images.cloudbuild_command(
        images.resolve_registry(registry),
        images.resolve_tag(tag, build_context),
        context=str(build_context),
        config=str(build_context / images.CLOUDBUILD_CONFIG),
        project=project,
    )
    command = images.format_command(argv)
    if out is not None:
        from signpipe.data.atomic import atomic_write_text

        atomic_write_text(out, f"#!/usr/bin/env sh\n# Builds and pushes every signpipe image on Cloud Build.\nset -eu\n{command}\n")
        out.chmod(0o755)
    print(command)
