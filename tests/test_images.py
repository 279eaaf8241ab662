"""signpipe.images: names, step -> image mapping, tag/registry resolution, and the build logic
driven through a fake Docker SDK client that records every call (no engine needed)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from signpipe import images
from signpipe.cli import main
from signpipe.errors import ConfigError, SignpipeError

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = "us-central1-docker.pkg.dev/my-project/signpipe"


class FakeDockerAPI:
    """Stands in for `docker.APIClient`: records calls and replays scripted stream chunks."""

    def __init__(self, fail_build: str | None = None, push_error: str | None = None, report_id: bool = True, report_digest: bool = True):
        self.calls: list[tuple[str, dict]] = []
        self.fail_build = fail_build
        self.push_error = push_error
        self.report_id = report_id
        self.report_digest = report_digest

    def build(self, **kwargs):
        self.calls.append(("build", kwargs))
        chunks = [{"stream": "Step 1/9 : FROM python:3.11.13-slim-bookworm\n"}, {"stream": " ---> 1a2b3c\nStep 2/9 : RUN uv sync\n"}]
        if self.fail_build and self.fail_build in kwargs["dockerfile"]:
            chunks.append({"errorDetail": {"message": "uv sync: lock file out of date"}, "error": "uv sync: lock file out of date"})
        elif self.report_id:
            chunks.append({"aux": {"ID": f"sha256:{len(self.calls):064x}"}})
            chunks.append({"stream": f"Successfully tagged {kwargs['tag']}\n"})
        return iter(chunks)

    def push(self, repository, tag=None, stream=False, decode=False):
        self.calls.append(("push", {"repository": repository, "tag": tag, "stream": stream, "decode": decode}))
        chunks = [{"status": f"The push refers to repository [{repository}]"}, {"status": "Pushing", "id": "layer1", "progressDetail": {}}]
        if self.push_error:
            chunks.append({"error": self.push_error, "errorDetail": {"message": self.push_error}})
        elif self.report_digest:
            chunks.append({"status": f"{tag}: digest: sha256:{'d' * 64} size: 1234"})
            chunks.append({"progressDetail": {}, "aux": {"Tag": tag, "Digest": f"sha256:{'d' * 64}", "Size": 1234}})
        return iter(chunks)


class FakeDockerClient:
    def __init__(self, **kwargs):
        self.api = FakeDockerAPI(**kwargs)


# --- names and mapping ------------------------------------------------------------------------


def test_image_uri_joins_registry_image_and_tag():
    assert images.image_uri("jax-tpu", REGISTRY + "/", "abc1234") == f"{REGISTRY}/signpipe-jax-tpu:abc1234"
    assert images.image_uri("cpu", "localhost:5000/team", "v1.2.3") == "localhost:5000/team/signpipe-cpu:v1.2.3"


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        ("https://us-docker.pkg.dev/p/r", "no scheme"),
        ("us-docker.pkg.dev/My_Project/R", "not a Docker repository path"),
        ("", "not a Docker repository path"),
    ],
)
def test_bad_registries_are_refused(registry, message):
    with pytest.raises(ConfigError, match=message):
        images.image_uri("cpu", registry, "abc")


@pytest.mark.parametrize("tag", ["", "-dirty", "a" * 129, "has space", "x:y"])
def test_bad_tags_are_refused(tag):
    with pytest.raises(ConfigError, match="image tag"):
        images.image_uri("cpu", REGISTRY, tag)


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(ConfigError, match="cpu, jax-tpu, jax-cuda, video"):
        images.image_uri("gpu", REGISTRY, "abc")


@pytest.mark.parametrize(
    ("step", "accelerator", "family"),
    [
        ("validate", None, "cpu"),
        ("export", None, "cpu"),
        ("gate", None, "cpu"),
        ("pretrain", None, "cpu"),
        ("pretrain", "TPU_V5_LITEPOD", "jax-tpu"),
        ("finetune", "tpu_v6e", "jax-tpu"),
        ("distill", "NVIDIA_L4", "jax-cuda"),
        ("extract", None, "video"),
    ],
)
def test_family_for_step(step, accelerator, family):
    assert images.family_for_step(step, accelerator).name == family


def test_family_for_step_refuses_mismatches():
    with pytest.raises(ConfigError, match="cannot use accelerator"):
        images.family_for_step("evaluate", "NVIDIA_L4")
    with pytest.raises(ConfigError, match="has no image"):
        images.family_for_step("pretrain", "AMD_MI300")
    with pytest.raises(ConfigError, match="unknown pipeline step 'train'"):
        images.family_for_step("train")


def test_every_step_belongs_to_exactly_one_non_training_family():
    owners: dict[str, list[str]] = {}
    for family in images.FAMILIES.values():
        for step in family.steps:
            owners.setdefault(step, []).append(family.name)
    for step, names in owners.items():
        if step in images.TRAINING_STEPS:
            assert sorted(names) == ["cpu", "jax-cuda", "jax-tpu"]
        else:
            assert len(names) == 1, f"{step} runs on {names}"


def test_families_point_at_files_in_the_checkout():
    for family in images.FAMILIES.values():
        assert (ROOT / family.dockerfile).is_file()
        assert (ROOT / family.lock_file).is_file()


# --- registry and tag resolution --------------------------------------------------------------


def test_registry_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(images.REGISTRY_ENV, raising=False)
    with pytest.raises(ConfigError, match="--image-registry"):
        images.resolve_registry()
    monkeypatch.setenv(images.REGISTRY_ENV, "europe-west4-docker.pkg.dev/p/r")
    assert images.resolve_registry() == "europe-west4-docker.pkg.dev/p/r"
    assert images.resolve_registry(REGISTRY) == REGISTRY


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "file.txt").write_text("one\n")
    _git(repo, "add", "file.txt")
    _git(repo, "commit", "-q", "-m", "first")
    return repo


def test_tag_is_the_git_revision_and_marks_uncommitted_changes(git_repo, monkeypatch):
    monkeypatch.delenv(images.TAG_ENV, raising=False)
    head = _git(git_repo, "rev-parse", "--short", "HEAD")
    assert images.resolve_tag(repo_root=git_repo) == head
    (git_repo / "untracked.txt").write_text("ignored for the tag\n")
    assert images.resolve_tag(repo_root=git_repo) == head
    (git_repo / "file.txt").write_text("two\n")
    assert images.resolve_tag(repo_root=git_repo) == f"{head}-dirty"


def test_tag_from_argument_or_environment_wins(git_repo, monkeypatch):
    monkeypatch.setenv(images.TAG_ENV, "from-env")
    assert images.resolve_tag(repo_root=git_repo) == "from-env"
    assert images.resolve_tag("given", repo_root=git_repo) == "given"


def test_tag_outside_a_checkout_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(images.TAG_ENV, raising=False)
    with pytest.raises(ConfigError, match="pass --image-tag"):
        images.resolve_tag(repo_root=tmp_path)


def test_image_uris_cover_every_family(monkeypatch):
    monkeypatch.setenv(images.REGISTRY_ENV, REGISTRY)
    monkeypatch.setenv(images.TAG_ENV, "abc1234")
    uris = images.image_uris()
    assert uris == {name: f"{REGISTRY}/{family.image}:abc1234" for name, family in images.FAMILIES.items()}


def test_build_context_is_found_from_a_subdirectory():
    assert images.find_build_context(ROOT / "signpipe" / "data") == ROOT


def test_build_context_outside_a_checkout_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="pass --context"):
        images.find_build_context(tmp_path)


# --- building through the fake client ---------------------------------------------------------


def test_build_and_push_every_family():
    client = FakeDockerClient()
    logged: list[str] = []
    plans = images.plan_builds(REGISTRY, "abc1234")
    built = images.build_images(plans, ROOT, push=True, client=client, on_log=logged.append)

    assert [b.uri for b in built] == [f"{REGISTRY}/{f.image}:abc1234" for f in images.FAMILIES.values()]
    builds = [kwargs for name, kwargs in client.api.calls if name == "build"]
    pushes = [kwargs for name, kwargs in client.api.calls if name == "push"]
    assert [name for name, _ in client.api.calls] == ["build", "push"] * len(images.FAMILIES)
    for family, build, push in zip(images.FAMILIES.values(), builds, pushes):
        assert build["path"] == str(ROOT)
        assert build["dockerfile"] == family.dockerfile
        assert build["tag"] == f"{REGISTRY}/{family.image}:abc1234"
        assert build["buildargs"] == {images.REVISION_BUILD_ARG: "abc1234"}
        assert build["labels"]["org.opencontainers.image.title"] == family.image
        assert build["labels"]["dev.signpipe.family"] == family.name
        assert build["platform"] == "linux/amd64" and build["decode"] is True
        assert push == {"repository": f"{REGISTRY}/{family.image}", "tag": "abc1234", "stream": True, "decode": True}
    assert all(b.image_id and b.image_id.startswith("sha256:") for b in built)
    assert all(b.pushed_digest == "sha256:" + "d" * 64 for b in built)
    assert "Step 2/9 : RUN uv sync" in logged
    assert not any("Pushing" == line for line in logged), "per-layer progress is not logged line by line"


def test_build_without_push_and_a_subset_of_families():
    client = FakeDockerClient()
    plans = images.plan_builds(REGISTRY, "v1", families=["video", "cpu", "video"], revision="0123abc")
    built = images.build_images(plans, ROOT, client=client)
    assert [b.uri for b in built] == [f"{REGISTRY}/signpipe-video:v1", f"{REGISTRY}/signpipe-cpu:v1"]
    assert [name for name, _ in client.api.calls] == ["build", "build"]
    assert client.api.calls[0][1]["buildargs"] == {images.REVISION_BUILD_ARG: "0123abc"}
    assert all(b.pushed_digest is None for b in built)


def test_a_failed_build_stops_with_the_docker_message_and_log():
    client = FakeDockerClient(fail_build="jax-tpu")
    with pytest.raises(SignpipeError, match="jax-tpu.Dockerfile failed: uv sync: lock file out of date") as caught:
        images.build_images(images.plan_builds(REGISTRY, "abc"), ROOT, push=True, client=client)
    assert "Step 2/9 : RUN uv sync" in str(caught.value)
    built_files = [kwargs["dockerfile"] for name, kwargs in client.api.calls if name == "build"]
    assert built_files == ["docker/cpu.Dockerfile", "docker/jax-tpu.Dockerfile"], "families after a failure are not built"


def test_a_denied_push_says_how_to_authenticate():
    client = FakeDockerClient(push_error="denied: Permission \"artifactregistry.repositories.uploadArtifacts\" denied")
    with pytest.raises(SignpipeError, match=r"gcloud auth configure-docker us-central1-docker\.pkg\.dev"):
        images.build_images(images.plan_builds(REGISTRY, "abc", ["cpu"]), ROOT, push=True, client=client)


def test_streams_without_confirmation_are_errors():
    with pytest.raises(SignpipeError, match="without reporting an image id"):
        images.build_images(images.plan_builds(REGISTRY, "abc", ["cpu"]), ROOT, client=FakeDockerClient(report_id=False))
    with pytest.raises(SignpipeError, match="never confirmed the upload"):
        images.build_images(images.plan_builds(REGISTRY, "abc", ["cpu"]), ROOT, push=True, client=FakeDockerClient(report_digest=False))


def test_missing_dockerfiles_are_reported_before_docker_is_contacted(tmp_path):
    with pytest.raises(ConfigError, match="missing docker/cpu.Dockerfile"):
        images.build_images(images.plan_builds(REGISTRY, "abc", ["cpu"]), tmp_path, client=None)


def test_without_the_docker_sdk_the_error_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "docker", None)
    with pytest.raises(SignpipeError, match="pip install docker.*signpipe images cloudbuild"):
        images.docker_client()


def test_without_an_engine_the_error_says_what_to_do(monkeypatch):
    class DockerException(Exception):
        pass

    def from_env():
        raise DockerException("Error while fetching server API version: Connection refused")

    fake = types.ModuleType("docker")
    fake.errors = types.SimpleNamespace(DockerException=DockerException)
    fake.from_env = from_env
    monkeypatch.setitem(sys.modules, "docker", fake)
    with pytest.raises(SignpipeError, match="no Docker engine answered.*Connection refused.*cloudbuild"):
        images.docker_client()


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_dry_run_lists_the_builds(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    status = main(["images", "build", "--image-registry", REGISTRY, "--image-tag", "abc1234", "--dry-run", "--push", "--context", str(ROOT)])
    out = capsys.readouterr().out
    assert status == 0
    for family in images.FAMILIES.values():
        assert f"{REGISTRY}/{family.image}:abc1234" in out
        assert family.dockerfile in out


def test_cli_build_without_registry_fails_cleanly(capsys, monkeypatch):
    monkeypatch.delenv(images.REGISTRY_ENV, raising=False)
    status = main(["images", "build", "--image-tag", "abc", "--dry-run", "--context", str(ROOT)])
    assert status == 2
    assert "no image registry" in capsys.readouterr().err


def test_cli_cloudbuild_prints_and_writes_the_command(capsys, tmp_path):
    script = tmp_path / "build-images.sh"
    status = main(
        ["images", "cloudbuild", "--image-registry", REGISTRY, "--image-tag", "abc1234", "--project", "my-project"]
        + ["--context", str(ROOT), "--out", str(script)]
    )
    out = capsys.readouterr().out.strip()
    assert status == 0
    assert out.startswith("gcloud builds submit --config ")
    assert f"--substitutions=_REGISTRY={REGISTRY},_TAG=abc1234" in out
    assert "--project=my-project" in out and out.endswith(str(ROOT))
    assert out in script.read_text() and script.stat().st_mode & 0o100


def test_cli_list_as_json(capsys):
    status = main(["images", "list", "--image-registry", REGISTRY, "--image-tag", "t1", "--json"])
    assert status == 0
    assert json.loads(capsys.readouterr().out) == {name: images.image_uri(name, REGISTRY, "t1") for name in images.FAMILIES}
