"""Static checks of infra/ (Terraform) without cloud access or provider downloads: every file
parses (python-hcl2), the policy holds (no public members, no primitive or project-wide storage
roles, authoritative IAM resources absent, private buckets with lifecycle rules, pinned versions),
modules are wired consistently (a lightweight `terraform validate`), and both environments expose
the outputs signpipe reads. Each policy rule is a function returning violations, also run on small
broken snippets so every rule is shown to object when it should.

Also covers `signpipe.cloud_settings.read_terraform_outputs`, the reader of those outputs.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest

from signpipe.cloud_settings import (
    TERRAFORM_OPTIONAL_OUTPUTS,
    TERRAFORM_OUTPUTS,
    VertexSettings,
    parse_terraform_outputs,
    read_terraform_outputs,
)
from signpipe.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
ENVS = ("dev", "prod")
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
# Roles the pipeline service account may hold project-wide; everything else is granted on a
# resource (the bucket, a repository, the service account itself).
PROJECT_ROLE_ALLOWLIST = {
    "roles/aiplatform.user",
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/artifactregistry.reader",
}
AUTHORITATIVE_IAM = re.compile(r"^google_.*_iam_(policy|binding)$")
PINNED_CONSTRAINT = re.compile(r"^(~>\s*\d+\.\d+(\.\d+)?|=?\s*\d+\.\d+\.\d+)$")
META_ARGUMENTS = {"source", "version", "depends_on", "for_each", "count", "providers"}


# --- loading ----------------------------------------------------------------------------------


def unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def normalize(node: Any) -> Any:
    """python-hcl2's tree without its bookkeeping keys and with string quotes removed (v8 keeps
    them, v7 does not), so checks read the same under both."""
    if isinstance(node, dict):
        return {unquote(k): normalize(v) for k, v in node.items() if not str(k).startswith("__")}
    if isinstance(node, list):
        return [normalize(item) for item in node]
    return unquote(node)


def parse_hcl(text: str) -> dict[str, Any]:
    return normalize(hcl2.loads(text))


def tf_files() -> list[Path]:
    return sorted(INFRA.rglob("*.tf"))


def module_dirs() -> list[Path]:
    return sorted({path.parent for path in tf_files()})


@functools.cache
def load_file(path: Path) -> dict[str, Any]:
    """Parsed once per session: lark parsing dominates this file's run time (tests only read it)."""
    return parse_hcl(path.read_text(encoding="utf-8"))


def load_dir(directory: Path) -> list[dict[str, Any]]:
    return [load_file(path.resolve()) for path in sorted(directory.glob("*.tf"))]


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def labelled(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """`variable`/`output`/`module` blocks of a directory: name -> body."""
    found: dict[str, dict[str, Any]] = {}
    for doc in docs:
        for entry in doc.get(kind, []):
            found.update(entry)
    return found


def resources(docs: list[dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for doc in docs:
        for entry in doc.get("resource", []):
            for kind, by_name in entry.items():
                for name, body in by_name.items():
                    yield kind, name, body


def locals_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for doc in docs:
        for block in doc.get("locals", []):
            merged.update(block)
    return merged


# --- policy rules -----------------------------------------------------------------------------


def public_member_violations(docs: list[dict[str, Any]]) -> list[str]:
    return [f"public member in {value!r}" for value in strings(docs) if any(m in value for m in PUBLIC_MEMBERS)]


def role_values(body: dict[str, Any], local_values: dict[str, Any]) -> list[str]:
    """The roles an IAM resource grants: its literal role, or the list its for_each iterates."""
    role = body.get("role", "")
    if "each." not in role:
        return [role]
    match = re.search(r"local\.(\w+)", body.get("for_each", ""))
    assert match, f"cannot resolve role {role!r}: for_each is not over a local list"
    values = local_values[match.group(1)]
    assert isinstance(values, list), f"local.{match.group(1)} is not a literal list"
    return values


def iam_violations(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    for value in strings(docs):
        for role in re.findall(r"roles/[A-Za-z.]+", value):
            if role in PRIMITIVE_ROLES:
                problems.append(f"primitive role {role}")
    local_values = locals_of(docs)
    for kind, name, body in resources(docs):
        if AUTHORITATIVE_IAM.match(kind):
            problems.append(f"{kind}.{name} is authoritative: it would remove every grant Terraform does not know")
        if kind == "google_project_iam_member":
            for role in role_values(body, local_values):
                if role.startswith("roles/storage."):
                    problems.append(f"{kind}.{name}: {role} project-wide (grant it on the bucket)")
                elif role not in PROJECT_ROLE_ALLOWLIST:
                    problems.append(f"{kind}.{name}: {role} is not an allowed project-level role")
    return problems


def bucket_violations(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    for kind, name, body in resources(docs):
        if kind != "google_storage_bucket":
            continue
        if body.get("public_access_prevention") != "enforced":
            problems.append(f"bucket {name}: public_access_prevention is not \"enforced\"")
        if body.get("uniform_bucket_level_access") is not True:
            problems.append(f"bucket {name}: uniform_bucket_level_access is not true")
        actions = [a.get("type") for rule in body.get("lifecycle_rule", []) for a in rule.get("action", [])]
        if "Delete" not in actions:
            problems.append(f"bucket {name}: no lifecycle rule deletes old runs")
    return problems


def version_violations(docs: list[dict[str, Any]], where: str) -> list[str]:
    blocks = [block for doc in docs for block in doc.get("terraform", [])]
    if not blocks:
        return [f"{where}: no terraform block (required_version, required_providers)"]
    problems = []
    required_version = next((b["required_version"] for b in blocks if "required_version" in b), None)
    if required_version is None or not PINNED_CONSTRAINT.match(required_version):
        problems.append(f"{where}: required_version {required_version!r} is not pinned (~> X.Y or an exact version)")
    providers = {name: spec for b in blocks for group in b.get("required_providers", []) for name, spec in group.items()}
    for name, spec in providers.items():
        if not isinstance(spec, dict) or "source" not in spec:
            problems.append(f"{where}: provider {name} has no source")
        elif not PINNED_CONSTRAINT.match(str(spec.get("version", ""))):
            problems.append(f"{where}: provider {name} version {spec.get('version')!r} is not pinned")
    used = {kind.split("_", 1)[0] for kind, _, _ in resources(docs)}
    for provider in used - set(providers):
        problems.append(f"{where}: resources of provider {provider} but no required_providers entry")
    return problems


# --- policy rules on broken snippets ----------------------------------------------------------

BAD_IAM = """
resource "google_project_iam_member" "x" {
  project = "p"
  role    = "roles/owner"
  member  = "allUsers"
}
resource "google_storage_bucket_iam_binding" "y" {
  bucket  = "b"
  role    = "roles/storage.objectViewer"
  members = ["allAuthenticatedUsers"]
}
locals { roles = ["roles/storage.admin", "roles/aiplatform.user"] }
resource "google_project_iam_member" "z" {
  for_each = toset(local.roles)
  project  = "p"
  role     = each.value
  member   = "serviceAccount:sa@p.iam.gserviceaccount.com"
}
"""

BAD_BUCKET = """
resource "google_storage_bucket" "b" {
  name     = "b"
  location = "US"
  public_access_prevention = "inherited"
}
"""

BAD_VERSIONS = """
terraform {
  required_version = ">= 1.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5"
    }
  }
}
resource "random_id" "r" { byte_length = 4 }
"""


def test_policy_rules_object_to_broken_snippets():
    iam = [parse_hcl(BAD_IAM)]
    assert len(public_member_violations(iam)) == 2
    problems = iam_violations(iam)
    assert any("primitive role roles/owner" in p for p in problems)
    assert any("authoritative" in p for p in problems)
    assert any("roles/storage.admin project-wide" in p for p in problems)
    assert not any("aiplatform.user" in p for p in problems)
    bucket = bucket_violations([parse_hcl(BAD_BUCKET)])
    assert len(bucket) == 3
    versions = version_violations([parse_hcl(BAD_VERSIONS)], "snippet")
    assert len(versions) == 3 and any("random" in p for p in versions)
    assert version_violations([parse_hcl(BAD_BUCKET)], "snippet") == ["snippet: no terraform block (required_version, required_providers)"]


# --- the real infra/ --------------------------------------------------------------------------


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_terraform_file_parses(path):
    assert load_file(path.resolve()), f"{path} is empty"


def test_infra_has_the_modules_and_environments():
    assert {p.name for p in (INFRA / "modules").iterdir() if p.is_dir()} >= {"apis", "storage", "registry", "iam", "tensorboard"}
    for env in ENVS:
        assert (INFRA / "envs" / env / "main.tf").is_file()
        parse_hcl((INFRA / "envs" / env / "terraform.tfvars.example").read_text(encoding="utf-8"))


@pytest.mark.parametrize("directory", module_dirs(), ids=lambda p: str(p.relative_to(INFRA)))
def test_policy_holds(directory):
    docs = load_dir(directory)
    where = str(directory.relative_to(INFRA))
    problems = public_member_violations(docs) + iam_violations(docs) + bucket_violations(docs) + version_violations(docs, where)
    assert problems == [], "\n".join(problems)


def test_every_directory_pins_the_same_provider_version():
    pins = set()
    for directory in module_dirs():
        for doc in load_dir(directory):
            for block in doc.get("terraform", []):
                for group in block.get("required_providers", []):
                    pins |= {(name, spec["source"], spec["version"]) for name, spec in group.items()}
    assert len(pins) == 1, f"modules and environments disagree on the provider: {sorted(pins)}"


def test_the_bucket_is_private_and_prunes_runs():
    bodies = [body for kind, _, body in resources(load_dir(INFRA / "modules" / "storage")) if kind == "google_storage_bucket"]
    assert len(bodies) == 1
    (bucket,) = bodies
    delete_rules = [r for r in bucket["lifecycle_rule"] if r["action"][0]["type"] == "Delete"]
    assert delete_rules and all(r["condition"][0].get("matches_prefix") for r in delete_rules), "deleting must stay under the pipeline root"


def test_pipeline_service_account_grants():
    docs = load_dir(INFRA / "modules" / "iam")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for kind, _, body in resources(docs):
        by_kind.setdefault(kind, []).append(body)
    project_roles = {role for body in by_kind["google_project_iam_member"] for role in role_values(body, locals_of(docs))}
    assert project_roles == {"roles/aiplatform.user", "roles/logging.logWriter", "roles/monitoring.metricWriter"}
    bucket_roles = {body["role"] for body in by_kind["google_storage_bucket_iam_member"]}
    assert "roles/storage.objectAdmin" in bucket_roles
    assert all(body["bucket"] == "${var.bucket_name}" for body in by_kind["google_storage_bucket_iam_member"])
    repo_roles = {body["role"] for body in by_kind["google_artifact_registry_repository_iam_member"]}
    assert "roles/artifactregistry.reader" in repo_roles
    self_use = [
        body
        for body in by_kind["google_service_account_iam_member"]
        if body["role"] == "roles/iam.serviceAccountUser" and body["member"] == "${local.pipeline_member}"
    ]
    assert len(self_use) == 1 and "google_service_account.pipeline" in self_use[0]["service_account_id"]


def test_required_apis_are_enabled():
    variables = labelled(load_dir(INFRA / "modules" / "apis"), "variable")
    services = set(variables["services"]["default"])
    for api in ("aiplatform", "artifactregistry", "cloudbuild", "storage", "iam", "logging"):
        assert f"{api}.googleapis.com" in services


def _references(docs: list[dict[str, Any]], pattern: str) -> set[tuple[str, ...]]:
    found = set()
    for value in strings(docs):
        for match in re.finditer(pattern, value):
            found.add(match.groups())
    return found


@pytest.mark.parametrize("directory", module_dirs(), ids=lambda p: str(p.relative_to(INFRA)))
def test_module_wiring(directory):
    """What `terraform validate` would say about names: every module argument is a variable of the
    called module, every required variable is given, every referenced var/local/module output exists."""
    docs = load_dir(directory)
    variables = labelled(docs, "variable")
    local_names = set(locals_of(docs))
    calls = labelled(docs, "module")
    problems = []
    for (name,) in _references(docs, r"\bvar\.(\w+)"):
        if name not in variables:
            problems.append(f"var.{name} is not declared")
    for (name,) in _references(docs, r"\blocal\.(\w+)"):
        if name not in local_names:
            problems.append(f"local.{name} is not declared")
    for call_name, call in calls.items():
        source = call["source"]
        assert source.startswith(("./", "../")), f"module {call_name}: only local module sources are used ({source})"
        target = (directory / source).resolve()
        target_docs = load_dir(target)
        assert target_docs, f"module {call_name}: {source} holds no .tf files"
        target_variables = labelled(target_docs, "variable")
        arguments = set(call) - META_ARGUMENTS
        for unknown in sorted(arguments - set(target_variables)):
            problems.append(f"module {call_name}: {unknown} is not a variable of {source}")
        required = {name for name, body in target_variables.items() if "default" not in body}
        for missing in sorted(required - arguments):
            problems.append(f"module {call_name}: required variable {missing} not given")
    for call_name, output in _references(docs, r"\bmodule\.(\w+)\.(\w+)"):
        if call_name not in calls:
            problems.append(f"module.{call_name} is not declared")
            continue
        target_outputs = labelled(load_dir((directory / calls[call_name]["source"]).resolve()), "output")
        if output not in target_outputs:
            problems.append(f"module.{call_name}.{output}: {calls[call_name]['source']} has no such output")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("env", ENVS)
def test_environment_outputs_are_what_signpipe_reads(env):
    outputs = labelled(load_dir(INFRA / "envs" / env), "output")
    assert set(outputs) == set(TERRAFORM_OUTPUTS) | set(TERRAFORM_OPTIONAL_OUTPUTS)
    platform_outputs = labelled(load_dir(INFRA / "modules" / "platform"), "output")
    assert set(platform_outputs) == set(TERRAFORM_OUTPUTS) | set(TERRAFORM_OPTIONAL_OUTPUTS)


def test_prod_is_stricter_than_dev():
    calls = {env: labelled(load_dir(INFRA / "envs" / env), "module")["signpipe"] for env in ENVS}
    assert calls["dev"]["force_destroy_bucket"] is True and calls["prod"]["force_destroy_bucket"] is False
    assert calls["prod"]["immutable_image_tags"] is True
    assert calls["prod"]["run_retention_days"] > calls["dev"]["run_retention_days"]
    backends = [b for doc in load_dir(INFRA / "envs" / "prod") for t in doc.get("terraform", []) for b in t.get("backend", [])]
    assert backends and "gcs" in backends[0], "prod state must live in a bucket"


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform not installed")
def test_terraform_fmt_is_clean():
    argv = ["terraform", "fmt", "-check", "-recursive", "-list=true", str(INFRA)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"not formatted (run terraform fmt -recursive infra):\n{done.stdout}"


# --- reading the outputs ----------------------------------------------------------------------

SAMPLE_OUTPUTS = {
    "project": {"sensitive": False, "type": "string", "value": "my-project"},
    "region": {"sensitive": False, "type": "string", "value": "us-central1"},
    "pipeline_root": {"sensitive": False, "type": "string", "value": "gs://my-project-signpipe-dev/pipeline-root"},
    "service_account_email": {"sensitive": False, "type": "string", "value": "signpipe-pipeline@my-project.iam.gserviceaccount.com"},
    "docker_registry": {"sensitive": False, "type": "string", "value": "us-central1-docker.pkg.dev/my-project/signpipe"},
    "kfp_registry": {"sensitive": False, "type": "string", "value": "https://us-central1-kfp.pkg.dev/my-project/signpipe-pipelines"},
    "tensorboard": {"sensitive": False, "type": "string", "value": "projects/my-project/locations/us-central1/tensorboards/123"},
}


def test_read_terraform_outputs_from_a_saved_file(tmp_path):
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps(SAMPLE_OUTPUTS), encoding="utf-8")
    values = read_terraform_outputs(saved)
    assert values == {name: output["value"] for name, output in SAMPLE_OUTPUTS.items()}
    # without the optional retention output the settings leave it unknown; with it, they read it
    assert VertexSettings.from_terraform(saved).run_retention_days == 0
    saved.write_text(json.dumps({**SAMPLE_OUTPUTS, "run_retention_days": {"type": "number", "value": 180}}), encoding="utf-8")
    assert VertexSettings.from_terraform(saved).run_retention_days == 180


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("{}", "run terraform apply first"),
        (json.dumps({"project": "my-project"}), "has no 'value' field"),
        (json.dumps({k: v for k, v in SAMPLE_OUTPUTS.items() if k != "tensorboard"}), "missing terraform output tensorboard"),
        (json.dumps({**SAMPLE_OUTPUTS, "pipeline_root": {"value": "/tmp/root"}}), "should start with 'gs://'"),
        (json.dumps({**SAMPLE_OUTPUTS, "region": {"value": ""}}), "non-empty string"),
    ],
    ids=["not-json", "not-object", "no-outputs", "plain-values", "missing", "bad-root", "empty"],
)
def test_bad_outputs_say_what_was_expected(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_terraform_outputs(text, "outputs.json")


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such directory or file"):
        read_terraform_outputs(tmp_path / "nowhere")


def _fake_terraform(bin_dir: Path, script: str) -> None:
    bin_dir.mkdir()
    fake = bin_dir / "terraform"
    fake.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)


def test_read_terraform_outputs_runs_terraform_in_an_env_dir(tmp_path, monkeypatch):
    env_dir = tmp_path / "envs" / "dev"
    env_dir.mkdir(parents=True)
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps(SAMPLE_OUTPUTS), encoding="utf-8")
    # The stand-in answers only the exact invocation expected, so a wrong argv fails the test.
    script = f'[ "$1" = "-chdir={env_dir}" ] && [ "$2 $3" = "output -json" ] && cat "{saved}" && exit 0\n'
    _fake_terraform(tmp_path / "bin", script + 'echo "unexpected: $*" >&2; exit 3\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert read_terraform_outputs(env_dir)["docker_registry"] == "us-central1-docker.pkg.dev/my-project/signpipe"


def test_terraform_failure_is_reported(tmp_path, monkeypatch):
    env_dir = tmp_path / "dev"
    env_dir.mkdir()
    _fake_terraform(tmp_path / "bin", 'echo "Error: Backend initialization required" >&2; exit 1\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ConfigError, match="Backend initialization required"):
        read_terraform_outputs(env_dir)


def test_without_terraform_the_error_says_to_save_the_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="output -json > outputs.json"):
        read_terraform_outputs(tmp_path)
