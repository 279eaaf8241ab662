"""The container images the pipeline steps run in, and how they are built and pushed.

This module is the single source of truth for the image families: which Dockerfile builds each,
what the image is called, and which pipeline step runs on which. The compiled pipelines, the
`signpipe images` commands and `docker/cloudbuild.yaml` all read (or are tested against) these
definitions, so a step can never point at an image that nothing builds.

Images are tagged with the git revision of the checkout they were built from, so the tag in a
compiled pipeline names exactly the code the image contains; a checkout with uncommitted changes
to tracked files gets a `-dirty` suffix rather than passing for the commit.

Pipeline components that run on these images must be built with `install_kfp_package=False`:
kfp is already in the locked environment, the images' virtual environments carry no pip, and
steps run as an unprivileged user who could not install into them anyway.

Building talks to a Docker engine through the Docker SDK (`pip install docker`), which is not part
of the project's locked environment: it is imported only when a build starts. Without a local
engine, `signpipe images cloudbuild` prints the Cloud Build command that builds the same images.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signpipe.errors import ConfigError, SignpipeError

REGISTRY_ENV = "SIGNPIPE_IMAGE_REGISTRY"
TAG_ENV = "SIGNPIPE_IMAGE_TAG"
DOCKER_DIR = "docker"
CLOUDBUILD_CONFIG = f"{DOCKER_DIR}/cloudbuild.yaml"
# Every image is built for the machines Vertex AI runs steps on; the TPU and CUDA wheels exist
# for x86-64 only.
PLATFORM = "linux/amd64"
REVISION_BUILD_ARG = "SIGNPIPE_REVISION"

# Steps whose work is plain numpy/pandas/TFLite and never needs an accelerator.
CPU_STEPS = ("synth", "validate", "aspect_ratio", "preprocess", "align", "export", "evaluate", "gate", "publish")
# Steps that train a model: they run on the accelerator image their preset asks for, or on the
# cpu image (whose locked jax runs on the CPU) when the preset asks for none.
TRAINING_STEPS = ("pretrain", "finetune", "distill")
VIDEO_STEPS = ("extract",)


@dataclass(frozen=True)
class ImageFamily:
    """One image: what it is called, the Dockerfile that builds it and the steps that run on it.

    `lock_file` is the committed file the image's environment is installed from, so a test can
    check the Dockerfile installs from it and nothing else.
    """

    name: str
    image: str
    dockerfile: str
    lock_file: str
    steps: tuple[str, ...]
    summary: str


FAMILIES: dict[str, ImageFamily] = {
    family.name: family
    for family in (
        ImageFamily(
            name="cpu",
            image="signpipe-cpu",
            dockerfile=f"{DOCKER_DIR}/cpu.Dockerfile",
            lock_file="uv.lock",
            steps=CPU_STEPS + TRAINING_STEPS,
            summary="the locked environment (jax on CPU, TensorFlow for conversion): data, export, evaluation, gate, publish",
        ),
        ImageFamily(
            name="jax-tpu",
            image="signpipe-jax-tpu",
            dockerfile=f"{DOCKER_DIR}/jax-tpu.Dockerfile",
            lock_file="uv.lock",
            steps=TRAINING_STEPS,
            summary="the locked environment plus jax's TPU plugin (libtpu): training on Cloud TPU",
        ),
        ImageFamily(
            name="jax-cuda",
            image="signpipe-jax-cuda",
            dockerfile=f"{DOCKER_DIR}/jax-cuda.Dockerfile",
            lock_file="uv.lock",
            steps=TRAINING_STEPS,
            summary="the locked environment plus jax's CUDA 12 plugin on an NVIDIA CUDA base: training on GPUs",
        ),
        ImageFamily(
            name="video",
            image="signpipe-video",
            dockerfile=f"{DOCKER_DIR}/video.Dockerfile",
            lock_file="video/requirements.txt",
            steps=VIDEO_STEPS,
            summary="MediaPipe 0.10.14 (legacy holistic) with its own protobuf, no TensorFlow: video -> landmarks",
        ),
    )
}

# Accelerator type prefixes as Vertex AI spells them (`TPU_V5_LITEPOD`, `NVIDIA_L4`, ...).
_ACCELERATOR_FAMILIES = (("TPU", "jax-tpu"), ("NVIDIA", "jax-cuda"))
_TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# A Docker repository reference: an optional host[:port], then lowercase path components.
_REGISTRY_PATTERN = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_ARTIFACT_REGISTRY_HINT = "REGION-docker.pkg.dev/PROJECT/REPO (terraform output docker_registry)"


def family(name: str) -> ImageFamily:
    """The family called `name`, or a `ConfigError` listing the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"unknown image family {name!r} (expected one of: {', '.join(FAMILIES)})") from None


def family_for_step(step: str, accelerator: str | None = None) -> ImageFamily:
    """The image a pipeline step runs on.

    Training steps follow the accelerator (a Vertex AI accelerator type such as `TPU_V5_LITEPOD`
    or `NVIDIA_L4`); every other step has one image, and asking for an accelerator there is a
    preset mistake that would pay for hardware the step cannot use.
    """
    if step in TRAINING_STEPS:
        if not accelerator:
            return FAMILIES["cpu"]
        for prefix, family_name in _ACCELERATOR_FAMILIES:
            if accelerator.upper().startswith(prefix):
                return FAMILIES[family_name]
        raise ConfigError(
            f"step {step!r}: accelerator {accelerator!r} has no image "
            f"(expected a Vertex AI type starting with {' or '.join(p for p, _ in _ACCELERATOR_FAMILIES)})"
        )
    for candidate in FAMILIES.values():
        if step in candidate.steps:
            if accelerator:
                raise ConfigError(
                    f"step {step!r} runs on the {candidate.name} image and cannot use accelerator {accelerator!r} "
                    f"(only {', '.join(TRAINING_STEPS)} take one)"
                )
            return candidate
    known = sorted({s for f in FAMILIES.values() for s in f.steps})
    raise ConfigError(f"unknown pipeline step {step!r} (expected one of: {', '.join(known)})")


def check_registry(registry: str) -> str:
    """`registry` without a trailing slash, or a `ConfigError` saying what a registry looks like."""
    cleaned = registry.strip().rstrip("/")
    if "://" in cleaned:
        raise ConfigError(f"image registry {registry!r}: expected no scheme, like {_ARTIFACT_REGISTRY_HINT}")
    if not _REGISTRY_PATTERN.match(cleaned):
        raise ConfigError(
            f"image registry {registry!r} is not a Docker repository path "
            f"(expected lowercase path components, like {_ARTIFACT_REGISTRY_HINT})"
        )
    return cleaned


def check_tag(tag: str) -> str:
    if not _TAG_PATTERN.match(tag):
        raise ConfigError(
            f"image tag {tag!r}: expected 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        )
    return tag


def image_uri(family_name: str, registry: str, tag: str) -> str:
    """`REGISTRY/IMAGE:TAG` for a family, the reference both the build and the pipeline use."""
    return f"{check_registry(registry)}/{family(family_name).image}:{check_tag(tag)}"


def resolve_registry(registry: str | None = None) -> str:
    """The registry given, else `$SIGNPIPE_IMAGE_REGISTRY`; there is no sensible default."""
    chosen = registry or os.environ.get(REGISTRY_ENV, "")
    if not chosen:
        raise ConfigError(f"no image registry: pass --image-registry {_ARTIFACT_REGISTRY_HINT} or set ${REGISTRY_ENV}")
    return check_registry(chosen)


def git_revision(repo_root: str | Path | None = None) -> str:
    """The short commit hash of `repo_root`'s checkout, with `-dirty` when tracked files changed."""
    root = Path(repo_root) if repo_root is not None else Path.cwd()

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"cannot run git in {root} to name the image tag ({exc}); pass --image-tag or set ${TAG_ENV}") from exc
        if done.returncode != 0:
            raise ConfigError(
                f"{root}: not a git checkout with a commit ({done.stderr.strip() or 'git failed'}); "
                f"pass --image-tag or set ${TAG_ENV}"
            )
        return done.stdout.strip()

    revision = git("rev-parse", "--short", "HEAD")
    if git("status", "--porcelain", "--untracked-files=no"):
        revision += "-dirty"
    return revision


def resolve_tag(tag: str | None = None, repo_root: str | Path | None = None) -> str:
    """The tag given, else `$SIGNPIPE_IMAGE_TAG`, else the checkout's git revision."""
    return check_tag(tag or os.environ.get(TAG_ENV, "") or git_revision(repo_root))


def image_uris(
    registry: str | None = None,
    tag: str | None = None,
    families: Iterable[str] | None = None,
    repo_root: str | Path | None = None,
) -> dict[str, str]:
    """Family name -> image reference, with the same defaults as `signpipe images build`."""
    resolved_registry, resolved_tag = resolve_registry(registry), resolve_tag(tag, repo_root)
    names = list(families) if families is not None else list(FAMILIES)
    return {name: image_uri(name, resolved_registry, resolved_tag) for name in names}


def find_build_context(start: str | Path | None = None) -> Path:
    """The checkout root holding `docker/` and the lock files: the build context for every image.

    Searched upwards from `start` (the current directory by default), because an installed
    signpipe has no Dockerfiles: images are built from a source checkout.
    """
    origin = Path(start).resolve() if start is not None else Path.cwd().resolve()
    for candidate in (origin, *origin.parents):
        if (candidate / FAMILIES["cpu"].dockerfile).is_file() and (candidate / "uv.lock").is_file():
            return candidate
    raise ConfigError(
        f"{origin}: no signpipe checkout here or above (expected {FAMILIES['cpu'].dockerfile} and uv.lock); "
        "run from the source checkout or pass --context"
    )


@dataclass(frozen=True)
class ImageBuild:
    """Everything one image build needs, decided before any engine is contacted (`--dry-run`)."""

    family: ImageFamily
    repository: str
    tag: str
    build_args: dict[str, str]
    labels: dict[str, str]

    @property
    def uri(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass
class BuiltImage:
    uri: str
    image_id: str | None
    pushed_digest: str | None = None
    log_tail: list[str] = field(default_factory=list)


def plan_builds(registry: str, tag: str, families: Sequence[str] | None = None, revision: str | None = None) -> list[ImageBuild]:
    """One `ImageBuild` per family (all by default, in a fixed order), tagged `registry/image:tag`."""
    registry, tag = check_registry(registry), check_tag(tag)
    names = list(FAMILIES) if not families else list(dict.fromkeys(families))
    plans = []
    for name in names:
        chosen = family(name)
        labels = {
            "org.opencontainers.image.title": chosen.image,
            "org.opencontainers.image.description": chosen.summary,
            "org.opencontainers.image.revision": revision or tag,
            "dev.signpipe.family": chosen.name,
        }
        plans.append(
            ImageBuild(
                family=chosen,
                repository=f"{registry}/{chosen.image}",
                tag=tag,
                build_args={REVISION_BUILD_ARG: revision or tag},
                labels=labels,
            )
        )
    return plans


def docker_client() -> Any:
    """A Docker SDK client that has answered a ping, or a `SignpipeError` saying what to do instead."""
    try:
        import docker
    except ImportError:
        raise SignpipeError(
            "building images needs the Docker SDK, which is not in signpipe's environment: "
            "`pip install docker` (with a running Docker engine), or build on Google Cloud with `signpipe images cloudbuild`"
        ) from None
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise SignpipeError(
            f"no Docker engine answered ({exc}); start one (or set DOCKER_HOST), "
            "or build on Google Cloud with `signpipe images cloudbuild`"
        ) from None
    return client


def _stream_errors(chunk: Mapping[str, Any]) -> str | None:
    if "error" in chunk or "errorDetail" in chunk:
        detail = chunk.get("errorDetail") or {}
        return str(detail.get("message") or chunk.get("error") or "unknown error").strip()
    return None


def _push_hint(message: str, repository: str) -> str:
    if any(word in message.lower() for word in ("denied", "unauthorized", "authentication", "permission")):
        host = repository.split("/", 1)[0]
        return f" (authenticate Docker to the registry: `gcloud auth configure-docker {host}`)"
    return ""


def build_image(
    client: Any,
    plan: ImageBuild,
    context: Path,
    push: bool = False,
    on_log: Callable[[str], None] | None = None,
    log_lines_kept: int = 30,
) -> BuiltImage:
    """Build one image with the engine behind `client` (and push it), streaming its log.

    Uses the SDK's low-level API so the build log arrives line by line; a failed step raises a
    `SignpipeError` carrying the last lines of the log, which is where Docker says what broke.
    """
    built = BuiltImage(uri=plan.uri, image_id=None)

    def keep(line: str) -> None:
        built.log_tail.append(line)
        del built.log_tail[:-log_lines_kept]
        if on_log is not None:
            on_log(line)

    chunks: Iterator[Mapping[str, Any]] = client.api.build(
        path=str(context),
        dockerfile=plan.family.dockerfile,
        tag=plan.uri,
        buildargs=dict(plan.build_args),
        labels=dict(plan.labels),
        platform=PLATFORM,
        pull=True,
        rm=True,
        forcerm=True,
        decode=True,
    )
    for chunk in chunks:
        error = _stream_errors(chunk)
        if error is not None:
            tail = "\n".join(built.log_tail[-10:])
            raise SignpipeError(f"building {plan.uri} from {plan.family.dockerfile} failed: {error}" + (f"\n{tail}" if tail else ""))
        text = chunk.get("stream")
        if text:
            for line in text.rstrip("\n").splitlines():
                keep(line)
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and aux.get("ID"):
            built.image_id = str(aux["ID"])
    if built.image_id is None:
        raise SignpipeError(f"building {plan.uri}: the Docker engine finished without reporting an image id")
    if push:
        for chunk in client.api.push(plan.repository, tag=plan.tag, stream=True, decode=True):
            error = _stream_errors(chunk)
            if error is not None:
                raise SignpipeError(f"pushing {plan.uri} failed: {error}{_push_hint(error, plan.repository)}")
            status = chunk.get("status")
            if status and "id" not in chunk:  # per-layer progress lines carry an id; keep the summary ones
                keep(str(status))
            aux = chunk.get("aux")
            if isinstance(aux, Mapping) and aux.get("Digest"):
                built.pushed_digest = str(aux["Digest"])
        if built.pushed_digest is None:
            raise SignpipeError(f"pushing {plan.uri}: the registry never confirmed the upload with a digest")
    return built


def build_images(
    plans: Sequence[ImageBuild],
    context: str | Path,
    push: bool = False,
    client: Any | None = None,
    on_log: Callable[[str], None] | None = None,
) -> list[BuiltImage]:
    """Build (and push) every planned image in order, stopping at the first failure.

    `client` is a Docker SDK client; by default one is made from the environment (DOCKER_HOST or
    the local socket), which needs the `docker` package and a running engine.
    """
    context = Path(context)
    missing = [plan.family.dockerfile for plan in plans if not (context / plan.family.dockerfile).is_file()]
    if missing:
        raise ConfigError(f"{context}: missing {', '.join(missing)} (expected the signpipe checkout as build context)")
    client = client if client is not None else docker_client()
    return [build_image(client, plan, context, push=push, on_log=on_log) for plan in plans]


def cloudbuild_command(
    registry: str, tag: str, context: str = ".", config: str = CLOUDBUILD_CONFIG, project: str | None = None
) -> list[str]:
    """The `gcloud builds submit` argv that builds and pushes every image on Cloud Build.

    The config (`docker/cloudbuild.yaml`) takes the registry and tag as substitutions, so Cloud
    Build tags the images exactly as `signpipe images build` and the compiled pipelines name them.
    """
    registry, tag = check_registry(registry), check_tag(tag)
    argv = ["gcloud", "builds", "submit", "--config", config, f"--substitutions=_REGISTRY={registry},_TAG={tag}"]
    if project:
        argv.append(f"--project={project}")
    argv.append(context)
    return argv


def format_command(argv: Sequence[str]) -> str:
    return shlex.join(argv)
