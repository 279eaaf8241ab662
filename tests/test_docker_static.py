"""Static checks of docker/: every Dockerfile parses and follows the image rules, without a Docker
engine. The rules are functions returning the violations they find, run on the real Dockerfiles
(expecting none) and on small broken ones (expecting each rule to object), so a check that could
never fail would show up here.

Rules: multi-stage; every base image a build argument (`ARG PYTHON_BASE=...` before the first
`FROM`, so `docker/images-check.sh` can build on a local stand-in) whose default is pinned to an
exact version tag or a digest (never `latest` or a floating `3.11-slim`); a non-root user in the final stage; `signpipe` as entrypoint with
`--version` as the default command and as the health check; the environment installed from a
committed lock (uv.lock with `uv sync --frozen`, or the video image's hash-pinned requirements);
accelerator plugins pinned to the locked jax version; build context allowed by .dockerignore; and
docker/cloudbuild.yaml building exactly the families signpipe/images.py defines.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

from signpipe import images

ROOT = Path(__file__).resolve().parents[1]
DOCKER_DIR = ROOT / images.DOCKER_DIR
PINNED_TAG = re.compile(r"^\d+\.\d+\.\d+(?:[-_.+][A-Za-z0-9_.+-]*)?$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
SHELL_OPERATORS = {"&&", "||", ";", "|", "&"}


# --- a small Dockerfile parser ---------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int
    flags: dict[str, str] = field(default_factory=dict)

    def exec_form(self) -> list[str] | None:
        """The JSON-array form of the arguments (`["signpipe"]`), or None for shell form."""
        if self.args.startswith("["):
            try:
                value = json.loads(self.args)
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, list) else None
        return None


@dataclass
class Stage:
    index: int
    base: str  # the base with the global ARGs' defaults substituted: what a plain build uses
    name: str | None
    platform: str | None
    instructions: list[Instruction] = field(default_factory=list)
    written: str = ""  # the base as the FROM line spells it (`${PYTHON_BASE}`)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    path: str
    global_args: list[Instruction]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage_names(self) -> set[str]:
        return {s.name for s in self.stages if s.name} | {str(s.index) for s in self.stages}

    def runs(self) -> list[tuple[Stage, Instruction]]:
        return [(s, i) for s in self.stages for i in s.all("RUN")]


class DockerfileSyntaxError(ValueError):
    pass


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join `\\` continuations, dropping comment and blank lines (also inside a continuation)."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        lines.append((start, " ".join(part for part in pending if part)))
        pending = []
    if pending:
        raise DockerfileSyntaxError(f"line {start}: continuation runs past the end of the file")
    return lines


def _split_flags(args: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags[name] = value
        rest = rest.lstrip()
    return flags, rest


def substitute_args(value: str, global_args: list[Instruction]) -> str:
    """`value` with `${NAME}`/`$NAME` replaced by the default of the global `ARG NAME=default`
    (what a build without --build-arg uses); a name without a default is left as written."""
    defaults = {}
    for arg in global_args:
        name, has_default, default = arg.args.partition("=")
        if has_default:
            defaults[name.strip()] = default.strip().strip('"')
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults.get(m.group(1) or m.group(2), m.group(0)), value)


def parse_dockerfile(text: str, path: str = "Dockerfile") -> Dockerfile:
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    for line, content in _logical_lines(text):
        keyword, _, args = content.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if not re.fullmatch(r"[A-Z]+", keyword):
            raise DockerfileSyntaxError(f"{path}:{line}: not an instruction: {content[:40]!r}")
        flags: dict[str, str] = {}
        if keyword in {"FROM", "COPY", "ADD", "RUN"}:
            flags, args = _split_flags(args)
        instruction = Instruction(keyword, args, line, flags)
        if keyword == "FROM":
            words = args.split()
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                raise DockerfileSyntaxError(f"{path}:{line}: expected FROM IMAGE [AS NAME], found {args!r}")
            stages.append(Stage(len(stages), substitute_args(words[0], global_args), words[2] if len(words) == 3 else None,
                                flags.get("platform"), written=words[0]))
        elif not stages:
            if keyword != "ARG":
                raise DockerfileSyntaxError(f"{path}:{line}: {keyword} before the first FROM")
            global_args.append(instruction)
        else:
            stages[-1].instructions.append(instruction)
    if not stages:
        raise DockerfileSyntaxError(f"{path}: no FROM instruction")
    return Dockerfile(path, global_args, stages)


def shell_commands(run: Instruction) -> list[list[str]]:
    """The simple commands of a shell-form RUN, each as argv: split at `&&`, `||`, `;` and `|`
    outside quotes, so `python -c "a; b"` stays one command."""
    lexer = shlex.shlex(run.args, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in SHELL_OPERATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [argv for argv in commands if argv]


# --- rules ------------------------------------------------------------------------------------


def is_pinned(reference: str) -> bool:
    if DIGEST.search(reference):
        return True
    name = reference.rsplit("/", 1)[-1]
    if ":" not in name:
        return False
    tag = name.rsplit(":", 1)[1]
    return tag != "latest" and bool(PINNED_TAG.match(tag))


def base_image_violations(dockerfile: Dockerfile) -> list[str]:
    problems = []
    known: set[str] = set()
    for stage in dockerfile.stages:
        if stage.base not in known and not is_pinned(stage.base):
            problems.append(f"stage {stage.index}: base image {stage.base!r} is not pinned to an exact version tag or digest")
        for copy in stage.all("COPY"):
            source = copy.flags.get("from")
            if source and source not in known and not source.isdigit() and not is_pinned(source):
                problems.append(f"line {copy.line}: COPY --from={source} is neither an earlier stage nor a pinned image")
        known |= {stage.name} if stage.name else set()
        known.add(str(stage.index))
    return problems


def base_argument_violations(dockerfile: Dockerfile) -> list[str]:
    """Every base that is not an earlier stage is a build argument (`FROM ${PYTHON_BASE}`) declared
    before the first FROM with a default, so the pinned public base is what a plain build uses and
    a stand-in can replace it (`--build-arg PYTHON_BASE=...`)."""
    problems = []
    declared = {arg.args.partition("=")[0].strip(): "=" in arg.args for arg in dockerfile.global_args}
    known: set[str] = set()
    for stage in dockerfile.stages:
        if stage.written not in known:
            match = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", stage.written)
            if not match:
                problems.append(f"stage {stage.index}: FROM {stage.written} is not a build argument (expected FROM ${{NAME_BASE}})")
            else:
                name = match.group(1) or match.group(2)
                if name not in declared:
                    problems.append(f"stage {stage.index}: FROM {stage.written}: no `ARG {name}=...` before the first FROM")
                elif not declared[name]:
                    problems.append(f"stage {stage.index}: ARG {name} has no default (a plain build would have no base)")
        known |= {stage.name} if stage.name else set()
        known.add(str(stage.index))
    return problems


def multi_stage_violations(dockerfile: Dockerfile) -> list[str]:
    if len(dockerfile.stages) < 2:
        return ["single stage: build tools and caches would ship in the image (expected a builder and a runtime stage)"]
    if not any(copy.flags.get("from") in dockerfile.stage_names() for copy in dockerfile.final.all("COPY")):
        return ["the final stage copies nothing from a build stage"]
    return []


def non_root_violations(dockerfile: Dockerfile) -> list[str]:
    final = dockerfile.final
    users = final.all("USER")
    if not users:
        return ["the final stage has no USER: the container would run as root"]
    user = users[-1].args.split(":")[0]
    if user in {"root", "0"}:
        return [f"line {users[-1].line}: USER {users[-1].args} is root"]
    creates = [
        argv
        for run in final.all("RUN")
        for argv in shell_commands(run)
        if argv and argv[0] in {"useradd", "adduser"}
    ]
    if not any(argv[-1] == user or user in argv for argv in creates):
        return [f"USER {user} is never created in the final stage (expected useradd ... {user})"]
    last_user_line = users[-1].line
    late = [i for i in final.instructions if i.line > last_user_line and i.keyword == "USER"]
    return [f"line {i.line}: USER changes back after the non-root user" for i in late]


def entrypoint_violations(dockerfile: Dockerfile) -> list[str]:
    final = dockerfile.final
    problems = []
    entrypoints, cmds, checks = final.all("ENTRYPOINT"), final.all("CMD"), final.all("HEALTHCHECK")
    if not entrypoints or entrypoints[-1].exec_form() != ["signpipe"]:
        problems.append('expected ENTRYPOINT ["signpipe"] (exec form) in the final stage')
    if not cmds or cmds[-1].exec_form() != ["--version"]:
        problems.append('expected CMD ["--version"] in the final stage')
    if not checks:
        problems.append("no HEALTHCHECK in the final stage")
    else:
        _, command = checks[-1].args.split("CMD", 1) if "CMD" in checks[-1].args else ("", "")
        command = command.strip()
        argv = json.loads(command) if command.startswith("[") else shlex.split(command)
        if argv != ["signpipe", "--version"]:
            problems.append(f"HEALTHCHECK runs {argv}, expected signpipe --version")
    return problems


def _copied_sources(dockerfile: Dockerfile) -> list[str]:
    sources = []
    for stage in dockerfile.stages:
        for copy in stage.all("COPY") + stage.all("ADD"):
            if "from" in copy.flags:
                continue
            parts = copy.exec_form() or copy.args.split()
            sources.extend(parts[:-1])
    return sources


def lock_install_violations(dockerfile: Dockerfile, family: images.ImageFamily) -> list[str]:
    """The environment comes from the family's committed lock file and nothing is resolved afresh."""
    problems = []
    sources = _copied_sources(dockerfile)
    commands = [argv for _, run in dockerfile.runs() for argv in shell_commands(run)]
    if family.lock_file not in sources:
        problems.append(f"{family.lock_file} is never copied into the image")
    for argv in commands:
        if argv[:2] == ["uv", "sync"] and not {"--frozen", "--locked"} & set(argv):
            problems.append(f"`{shlex.join(argv)}` may re-resolve: expected --frozen or --locked")
        if argv[:2] in (["uv", "lock"], ["uv", "add"], ["poetry", "lock"]):
            problems.append(f"`{shlex.join(argv)}` re-resolves dependencies inside the build")
        if argv[:1] == ["pip"] and "install" in argv:
            wanted = [a for a in argv[argv.index("install") + 1 :] if not a.startswith("-")]
            loose = [a for a in wanted if "==" not in a]
            if loose:
                problems.append(f"`{shlex.join(argv)}`: {', '.join(loose)} not pinned with ==")
        if argv[:3] == ["uv", "pip", "install"]:
            wanted = [a for a in argv[3:] if not a.startswith("-") and a not in _option_values(argv)]
            if "--no-deps" in argv:
                if wanted != ["."]:
                    problems.append(f"`{shlex.join(argv)}`: --no-deps is only for the project itself (.)")
            elif not ({"--constraints", "-c"} & set(argv)) or not all("==" in a for a in wanted):
                problems.append(f"`{shlex.join(argv)}`: expected exact pins held to the lock with --constraints")
    if family.lock_file == "uv.lock":
        syncs = [argv for argv in commands if argv[:2] == ["uv", "sync"]]
        if not syncs:
            problems.append("no `uv sync --frozen`: the environment is not installed from uv.lock")
        if not any("--no-install-project" in argv for argv in syncs):
            problems.append("dependencies are not installed before the sources are copied (uv sync --no-install-project)")
    else:
        syncs = [argv for argv in commands if argv[:3] == ["uv", "pip", "sync"]]
        if not any(family.lock_file in argv and "--require-hashes" in argv for argv in syncs):
            problems.append(f"expected `uv pip sync --require-hashes {family.lock_file}`")
        if "uv.lock" in sources:
            problems.append("copies uv.lock, whose TensorFlow this image must not have")
        if any(argv[:2] == ["uv", "sync"] for argv in commands):
            problems.append("runs `uv sync`, which installs the main lock")
    return problems


def _option_values(argv: list[str]) -> set[str]:
    """Values of options that take one (`--python X`, `--constraints Y`), which are not packages."""
    takes_value = {"--python", "-p", "--constraints", "-c", "--output-file", "-o", "--index-url", "--extra-index-url"}
    return {argv[k + 1] for k, token in enumerate(argv[:-1]) if token in takes_value}


def pip_pins(dockerfile: Dockerfile) -> dict[str, str]:
    """Package (with extras) -> version for every `name==version` requested by a RUN."""
    pins = {}
    for _, run in dockerfile.runs():
        for argv in shell_commands(run):
            for token in argv:
                match = re.fullmatch(r"([A-Za-z0-9_.-]+(?:\[[a-z0-9,_-]+\])?)==([0-9][0-9A-Za-z.+-]*)", token)
                if match:
                    pins[match.group(1)] = match.group(2)
    return pins


def dockerignore_includes(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    included = True
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        body = body.strip("/")
        if body.startswith("**/"):
            matches = any(fnmatch(c.split("/")[-1], body[3:]) or fnmatch(c, body[3:]) for c in candidates)
        else:
            matches = any(fnmatch(c, body) and c.count("/") == body.count("/") for c in candidates)
        if matches:
            included = negated
    return included


def read_dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def locked_version(package: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    versions = {p["name"]: p["version"] for p in lock["package"]}
    return versions[package]


def makefile_uv_version() -> str:
    match = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    assert match, "Makefile has no UV_VERSION"
    return match.group(1)


def load(family: images.ImageFamily) -> Dockerfile:
    path = ROOT / family.dockerfile
    return parse_dockerfile(path.read_text(encoding="utf-8"), str(path))


FAMILY_NAMES = list(images.FAMILIES)


# --- the parser itself ------------------------------------------------------------------------


def test_parser_joins_continuations_and_skips_comments():
    text = """# syntax note
ARG BASE=python:3.11.13-slim
FROM python:3.11.13-slim AS build
RUN apt-get update \\
    # a comment inside the continuation
    && apt-get install -y curl
FROM --platform=linux/amd64 python:3.11.13-slim
COPY --from=build --chown=1:1 /opt/venv /opt/venv
CMD ["--version"]
"""
    parsed = parse_dockerfile(text)
    assert [a.args for a in parsed.global_args] == ["BASE=python:3.11.13-slim"]
    assert [(s.name, s.base, s.platform) for s in parsed.stages] == [
        ("build", "python:3.11.13-slim", None),
        (None, "python:3.11.13-slim", "linux/amd64"),
    ]
    (run,) = parsed.stages[0].all("RUN")
    assert run.args == "apt-get update && apt-get install -y curl" and run.line == 4
    assert shell_commands(run) == [["apt-get", "update"], ["apt-get", "install", "-y", "curl"]]
    (copy,) = parsed.final.all("COPY")
    assert copy.flags == {"from": "build", "chown": "1:1"} and copy.args == "/opt/venv /opt/venv"
    assert parsed.final.all("CMD")[0].exec_form() == ["--version"]


def test_shell_commands_split_outside_quotes_only():
    run = Instruction("RUN", """uv sync --frozen && python -c "import a; print('x | y')" ; echo done | cat""", 1)
    assert shell_commands(run) == [
        ["uv", "sync", "--frozen"],
        ["python", "-c", "import a; print('x | y')"],
        ["echo", "done"],
        ["cat"],
    ]


@pytest.mark.parametrize(
    "text",
    ["RUN echo hi\nFROM python:3.11.13-slim\n", "FROM python:3.11.13-slim\nRUN echo \\\n", "", "FROM a b c d\n"],
    ids=["run-before-from", "dangling-continuation", "empty", "bad-from"],
)
def test_parser_rejects_malformed_dockerfiles(text):
    with pytest.raises(DockerfileSyntaxError):
        parse_dockerfile(text)


@pytest.mark.parametrize(
    ("reference", "pinned"),
    [
        ("python:3.11.13-slim-bookworm", True),
        ("nvidia/cuda:12.9.1-base-ubuntu24.04", True),
        ("localhost:5000/team/python:3.11.13", True),
        ("python@sha256:" + "a" * 64, True),
        ("python:3.11-slim", False),
        ("python:latest", False),
        ("python", False),
        ("localhost:5000/python", False),
        ("python:slim-bookworm", False),
    ],
)
def test_pinned_image_references(reference, pinned):
    assert is_pinned(reference) is pinned


BROKEN = """FROM python:latest
COPY . /src
RUN pip install /src && uv sync && pip install jax
USER root
ENTRYPOINT signpipe
"""


def test_every_rule_objects_to_a_broken_dockerfile():
    broken = parse_dockerfile(BROKEN)
    cpu = images.FAMILIES["cpu"]
    assert any("not pinned" in p for p in base_image_violations(broken))
    assert any("not a build argument" in p for p in base_argument_violations(broken))
    assert multi_stage_violations(broken)
    assert any("is root" in p for p in non_root_violations(broken))
    assert len(entrypoint_violations(broken)) == 3
    lock_problems = lock_install_violations(broken, cpu)
    assert any("uv.lock is never copied" in p for p in lock_problems)
    assert any("--frozen" in p for p in lock_problems)
    assert any("not pinned with ==" in p for p in lock_problems)


def test_rules_catch_subtler_mistakes():
    text = """FROM python:3.11.13-slim AS build
COPY uv.lock pyproject.toml ./
RUN pip install uv==0.13.8 && uv sync --frozen --no-install-project && uv pip install --python /opt/venv/bin/python "jax[tpu]==0.10.2"
FROM python:3.11.13-slim
COPY --from=ghcr.io/astral-sh/uv:latest /uv /bin/uv
COPY --from=build /opt/venv /opt/venv
USER app
ENTRYPOINT ["signpipe"]
CMD ["--version"]
HEALTHCHECK CMD signpipe --help
"""
    parsed = parse_dockerfile(text)
    assert any("COPY --from=ghcr.io/astral-sh/uv:latest" in p for p in base_image_violations(parsed))
    assert any("never created" in p for p in non_root_violations(parsed))
    assert entrypoint_violations(parsed) == ["HEALTHCHECK runs ['signpipe', '--help'], expected signpipe --version"]
    assert any("--constraints" in p for p in lock_install_violations(parsed, images.FAMILIES["jax-tpu"]))
    video = lock_install_violations(parsed, images.FAMILIES["video"])
    assert any("TensorFlow" in p for p in video) and any("--require-hashes" in p for p in video)


def test_dockerignore_matching_follows_docker_rules():
    patterns = ["*", "!signpipe", "!video/requirements.txt", "**/__pycache__"]
    assert dockerignore_includes("signpipe/images.py", patterns)
    assert dockerignore_includes("video/requirements.txt", patterns)
    assert not dockerignore_includes("video/requirements.in", patterns)
    assert not dockerignore_includes(".venv/bin/python", patterns)
    assert not dockerignore_includes("signpipe/__pycache__/x.pyc", patterns)


# --- the real Dockerfiles ---------------------------------------------------------------------


def test_every_dockerfile_belongs_to_a_family():
    on_disk = {p.relative_to(ROOT).as_posix() for p in DOCKER_DIR.glob("*Dockerfile*")}
    assert on_disk == {f.dockerfile for f in images.FAMILIES.values()}


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_dockerfile_follows_the_image_rules(name):
    family = images.FAMILIES[name]
    dockerfile = load(family)
    problems = (
        base_image_violations(dockerfile)
        + base_argument_violations(dockerfile)
        + multi_stage_violations(dockerfile)
        + non_root_violations(dockerfile)
        + entrypoint_violations(dockerfile)
        + lock_install_violations(dockerfile, family)
    )
    assert problems == [], f"{family.dockerfile}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_dockerfile_names_its_family(name):
    family = images.FAMILIES[name]
    final = load(family).final
    labels = " ".join(i.args for i in final.all("LABEL"))
    assert f'org.opencontainers.image.title="{family.image}"' in labels
    env = " ".join(i.args for i in final.all("ENV"))
    assert f"SIGNPIPE_IMAGE_FAMILY={family.name}" in env
    assert any(arg.args.startswith(f"{images.REVISION_BUILD_ARG}=") for arg in final.all("ARG"))


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_copied_sources_exist_and_reach_the_build_context(name):
    patterns = read_dockerignore()
    for source in _copied_sources(load(images.FAMILIES[name])):
        assert (ROOT / source).exists(), f"COPY source {source} missing from the repository"
        assert dockerignore_includes(source, patterns), f"{source} is excluded by .dockerignore"


def test_dockerignore_keeps_environments_and_data_out():
    patterns = read_dockerignore()
    kept_out = (".venv/lib", ".venv-video/bin", ".tools/bin", ".git/config", "runs/x/corpus", "tests/conftest.py")
    for path in (*kept_out, "infra/envs/dev/terraform.tfstate"):
        assert not dockerignore_includes(path, patterns), path


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_uv_is_the_makefile_version(name):
    assert pip_pins(load(images.FAMILIES[name])).get("uv") == makefile_uv_version()


@pytest.mark.parametrize(("name", "extra"), [("jax-tpu", "jax[tpu]"), ("jax-cuda", "jax[cuda12]")])
def test_accelerator_plugin_matches_the_locked_jax(name, extra):
    assert pip_pins(load(images.FAMILIES[name])).get(extra) == locked_version("jax")


# What the images may leave out of the locked environment (measured unused, docker/cpu.Dockerfile):
# packages skipped by `uv sync --no-install-package`, and folders deleted from site-packages.
LEFT_OUT_PACKAGES = {"libclang"}
LEFT_OUT_FOLDERS = {"/opt/venv/lib/python3.11/site-packages/tensorflow/include"}


def _left_out(dockerfile: Dockerfile) -> tuple[list[set[str]], set[str]]:
    skipped, removed = [], set()
    for _, run in dockerfile.runs():
        for argv in shell_commands(run):
            if argv[:2] == ["uv", "sync"]:
                skipped.append({argv[k + 1] for k, a in enumerate(argv[:-1]) if a == "--no-install-package"})
            if argv[:1] == ["rm"]:
                removed |= {a for a in argv[1:] if not a.startswith("-")}
    return skipped, removed


def test_cpu_image_keeps_tensorflow_and_no_plugin():
    dockerfile = load(images.FAMILIES["cpu"])
    assert not [k for k in pip_pins(dockerfile) if k.startswith("jax")]
    for _, run in dockerfile.runs():
        for argv in shell_commands(run):
            assert not (argv[:1] in (["pip"], ["uv"]) and "uninstall" in argv), f"uninstalls a locked package: {argv}"
    skipped, _ = _left_out(dockerfile)
    assert not [name for names in skipped for name in names if name.startswith("tensorflow")], (
        "the cpu image converts to TFLite: it must keep the lock's TensorFlow")


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_only_measured_unused_parts_are_left_out(name):
    """Every `uv sync` of an image skips the same packages (a later sync would install what an
    earlier one skipped), only those known unused, and only known-unused folders are deleted."""
    skipped, removed = _left_out(load(images.FAMILIES[name]))
    assert all(names == skipped[0] for names in skipped), skipped
    assert set().union(*skipped) <= LEFT_OUT_PACKAGES
    assert removed <= LEFT_OUT_FOLDERS | {"/var/lib/apt/lists/*"}, removed


def test_jax_cuda_runs_on_an_nvidia_cuda_base():
    final = load(images.FAMILIES["jax-cuda"]).final
    assert final.base.startswith("nvidia/cuda:") and is_pinned(final.base)


def test_base_arguments_are_substituted_and_checked():
    parsed = parse_dockerfile("""ARG PYTHON_BASE=python:3.11.13-slim-bookworm
ARG LOOSE
FROM ${PYTHON_BASE} AS build
RUN true
FROM $LOOSE
COPY --from=build /a /a
FROM build
FROM $UNDECLARED
""")
    assert [(s.written, s.base) for s in parsed.stages] == [
        ("${PYTHON_BASE}", "python:3.11.13-slim-bookworm"), ("$LOOSE", "$LOOSE"), ("build", "build"),
        ("$UNDECLARED", "$UNDECLARED"),
    ]
    problems = base_argument_violations(parsed)
    assert len(problems) == 2 and "ARG LOOSE has no default" in problems[0] and "no `ARG UNDECLARED" in problems[1]
    assert any("'$LOOSE' is not pinned" in p for p in base_image_violations(parsed))
    floating = parse_dockerfile("ARG PYTHON_BASE=python:3.11-slim\nFROM ${PYTHON_BASE}\n")
    assert base_argument_violations(floating) == [] and base_image_violations(floating)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_python_stages_take_one_base_argument(name):
    """Every Python stage is `FROM ${PYTHON_BASE}` with the same pinned default in every file (the
    argument docker/images-check.sh replaces with its local Debian 12 stand-in); the CUDA runtime
    stage is `FROM ${CUDA_BASE}`."""
    dockerfile = load(images.FAMILIES[name])
    written = [s.written for s in dockerfile.stages]
    expected = ["${PYTHON_BASE}", "${CUDA_BASE}"] if name == "jax-cuda" else ["${PYTHON_BASE}", "${PYTHON_BASE}"]
    assert written == expected
    assert dockerfile.stages[0].base == "python:3.11.13-slim-bookworm"
    script = (DOCKER_DIR / "images-check.sh").read_text(encoding="utf-8")
    assert '--build-arg "PYTHON_BASE=$BASE_IMAGE"' in script


def test_video_image_has_the_pinned_mediapipe_and_protobuf_below_5():
    requirements = (ROOT / images.FAMILIES["video"].lock_file).read_text(encoding="utf-8")
    pins = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", requirements, re.M))
    assert pins.get("mediapipe") == "0.10.14"
    assert int(pins["protobuf"].split(".")[0]) < 5
    assert "tensorflow" not in " ".join(pins), "the video environment must not contain TensorFlow"


# --- Cloud Build ------------------------------------------------------------------------------


def test_cloudbuild_builds_exactly_the_families():
    config = yaml.safe_load((ROOT / images.CLOUDBUILD_CONFIG).read_text(encoding="utf-8"))
    steps = {step["id"]: step for step in config["steps"]}
    assert set(steps) == set(images.FAMILIES)
    expected_images = set()
    for name, family in images.FAMILIES.items():
        step = steps[name]
        assert is_pinned(step["name"]), f"cloud build step {name} uses unpinned {step['name']}"
        args = step["args"]
        tag = f"${{_REGISTRY}}/{family.image}:${{_TAG}}"
        assert args[0] == "build" and args[-1] == "."
        assert f"--file={family.dockerfile}" in args
        assert f"--tag={tag}" in args
        assert f"--platform={images.PLATFORM}" in args
        assert f"--build-arg={images.REVISION_BUILD_ARG}=${{_TAG}}" in args
        expected_images.add(tag)
    assert set(config["images"]) == expected_images
    assert config["options"]["substitutionOption"] == "MUST_MATCH"


def test_cloudbuild_command_matches_the_config_substitutions():
    argv = images.cloudbuild_command("us-central1-docker.pkg.dev/p/signpipe", "abc1234")
    config_text = (ROOT / images.CLOUDBUILD_CONFIG).read_text(encoding="utf-8")
    substitutions = dict(pair.split("=", 1) for pair in argv[5].removeprefix("--substitutions=").split(","))
    assert set(substitutions) == set(re.findall(r"\$\{(_[A-Z]+)\}", config_text))
