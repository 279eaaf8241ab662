"""Where a Google Cloud deployment lives, read from the Terraform that created it (infra/).

`infra/envs/<env>` declares outputs named exactly as `TERRAFORM_OUTPUTS` lists, so submitting a
pipeline needs no copied-by-hand project ids, buckets or service accounts: `signpipe submit
--from-terraform infra/envs/dev` reads them here, from `terraform output -json` run in that
directory or from a file it was saved to (for machines without terraform or state access).

`VertexSettings` is what those outputs (or command-line options) amount to: where Vertex AI calls
go, used by submission (`pipelines.vertex`) and by the custom-job launcher a pipeline step runs
(`signpipe.custom_jobs`); `vertex_errors` turns SDK and auth failures into one-line errors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from signpipe.errors import ConfigError, SignpipeError

# The outputs every environment under infra/envs declares (tests check the .tf files agree).
TERRAFORM_OUTPUTS = (
    "project",
    "region",
    "pipeline_root",
    "service_account_email",
    "docker_registry",
    "kfp_registry",
    "tensorboard",
)
# Outputs read when present: an environment deployed before they existed still works without them.
TERRAFORM_OPTIONAL_OUTPUTS = ("run_retention_days",)
# Output name -> prefix its value must start with: catches a wrong or hand-edited outputs file
# before it becomes a pipeline writing to the wrong place.
_VALUE_PREFIXES = {"pipeline_root": "gs://", "kfp_registry": "https://", "tensorboard": "projects/"}
TERRAFORM_TIMEOUT_S = 120


def _terraform_output_json(env_dir: Path) -> str:
    terraform = shutil.which("terraform")
    if terraform is None:
        raise ConfigError(
            f"{env_dir}: terraform is not on PATH; on a machine that has it, save "
            f"`terraform -chdir={env_dir} output -json > outputs.json` and pass that file instead"
        )
    try:
        done = subprocess.run(
            [terraform, f"-chdir={env_dir}", "output", "-json"],
            capture_output=True,
            text=True,
            timeout=TERRAFORM_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{env_dir}: `terraform output -json` did not answer within {TERRAFORM_TIMEOUT_S} s") from None
    if done.returncode != 0:
        message = (done.stderr.strip() or done.stdout.strip() or "no message").splitlines()
        raise ConfigError(
            f"{env_dir}: `terraform output -json` failed: {' '.join(message[-3:])} "
            f"(expected an initialized and applied environment: terraform -chdir={env_dir} init && ... apply)"
        )
    return done.stdout


def parse_terraform_outputs(text: str, where: str, required: Iterable[str] = TERRAFORM_OUTPUTS) -> dict[str, Any]:
    """Output name -> value from `terraform output -json` text, checking the required ones exist."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not JSON ({exc.msg} at line {exc.lineno}); expected `terraform output -json`") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a JSON object of outputs (`terraform output -json`), found {type(raw).__name__}")
    values: dict[str, Any] = {}
    for name, output in raw.items():
        if not isinstance(output, Mapping) or "value" not in output:
            raise ConfigError(
                f"{where}: output {name!r} has no 'value' field; expected `terraform output -json` "
                "(objects like {\"value\": ..., \"type\": ...}), not plain values"
            )
        values[name] = output["value"]
    required = list(required)
    missing = [name for name in required if name not in values]
    if missing:
        hint = "the environment has no outputs yet: run terraform apply first" if not values else "is this a signpipe infra/envs directory?"
        raise ConfigError(f"{where}: missing terraform output{'s' if len(missing) > 1 else ''} {', '.join(missing)} ({hint})")
    for name in required:
        value = values[name]
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: output {name!r} should be a non-empty string, found {value!r}")
        prefix = _VALUE_PREFIXES.get(name)
        if prefix and not value.startswith(prefix):
            raise ConfigError(f"{where}: output {name!r} = {value!r} should start with {prefix!r}")
    return values


def read_terraform_outputs(source: str | Path, required: Iterable[str] = TERRAFORM_OUTPUTS) -> dict[str, Any]:
    """The outputs of a deployed environment: `source` is an `infra/envs/<env>` directory (where
    `terraform output -json` is run) or a JSON file that command's output was saved to."""
    path = Path(source)
    if path.is_dir():
        return parse_terraform_outputs(_terraform_output_json(path), str(path), required)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read terraform outputs ({exc})") from None
        return parse_terraform_outputs(text, str(path), required)
    raise ConfigError(f"{path}: no such directory or file (expected infra/envs/<env> or a saved `terraform output -json`)")


@dataclasses.dataclass(frozen=True)
class VertexSettings:
    """Where runs go: the Google Cloud side of a signpipe environment (see infra/)."""

    project: str
    region: str
    pipeline_root: str = ""
    service_account: str = ""
    docker_registry: str = ""
    tensorboard: str = ""
    api_endpoint: str = ""
    """Default: the region's Vertex AI endpoint. `http://host:port`: plain REST, no credentials."""
    run_retention_days: int = 0
    """Days the bucket keeps run artifacts under the pipeline root (Terraform's output; 0: unknown).
    A cached output is reused only while younger than that (`cache_max_age_days`)."""

    def __post_init__(self) -> None:
        problems = []
        if not self.project:
            problems.append("no project (pass --project, or --from-terraform)")
        if not self.region:
            problems.append("no region (pass --region, or --from-terraform)")
        if self.pipeline_root and not self.pipeline_root.startswith("gs://"):
            problems.append(f"pipeline root {self.pipeline_root!r} must be a gs:// folder")
        if self.tensorboard and not self.tensorboard.startswith("projects/"):
            problems.append(f"tensorboard {self.tensorboard!r} must be a resource name "
                            "(projects/P/locations/R/tensorboards/ID)")
        if problems:
            raise ConfigError("Vertex AI settings: " + "; ".join(problems))

    @classmethod
    def from_terraform(cls, source: str | Path, **overrides: Any) -> VertexSettings:
        """Settings from an `infra/envs/<env>` directory's Terraform outputs (or a saved
        `terraform output -json` file); explicit, non-empty `overrides` win."""
        outputs = read_terraform_outputs(source)
        values = {
            "project": outputs["project"],
            "region": outputs["region"],
            "pipeline_root": outputs["pipeline_root"],
            "service_account": outputs["service_account_email"],
            "docker_registry": outputs["docker_registry"],
            "tensorboard": outputs["tensorboard"],
        }
        if outputs.get("run_retention_days"):  # an environment deployed before this output existed has none
            values["run_retention_days"] = int(outputs["run_retention_days"])
        values.update({key: value for key, value in overrides.items() if value})
        return cls(**values)

    @classmethod
    def from_parameter(cls, vertex: Mapping[str, Any]) -> VertexSettings:
        """Settings from a pipeline's `vertex` parameter (`vertex_parameter`, plus `api_endpoint`
        where a test points the SDK at a local server)."""
        fields = ("project", "region", "pipeline_root", "service_account", "tensorboard", "api_endpoint")
        return cls(**{name: str(vertex.get(name) or "") for name in fields})

    def client_options(self) -> dict[str, Any]:
        """project/location/credentials for every aiplatform call (nothing global is changed)."""
        return {"project": self.project, "location": self.region, "credentials": self.credentials()}

    def credentials(self) -> Any:
        if self.api_endpoint.startswith("http://"):
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()
        return None

    def connect(self) -> None:
        """Point the SDK at this project, region and endpoint (REST for a plain-HTTP endpoint)."""
        from google.cloud import aiplatform

        kwargs: dict[str, Any] = {"project": self.project, "location": self.region}
        if self.api_endpoint:
            kwargs["api_endpoint"] = self.api_endpoint
        if self.api_endpoint.startswith("http://"):
            kwargs.update(api_transport="rest", credentials=self.credentials())
        aiplatform.init(**kwargs)

    @property
    def bucket(self) -> str:
        if not self.pipeline_root:
            raise ConfigError("no pipeline root (pass --pipeline-root gs://BUCKET/PATH, or --from-terraform)")
        return self.pipeline_root[len("gs://"):].split("/", 1)[0]

    def vertex_parameter(self) -> dict[str, str]:
        """The pipeline's `vertex` parameter: what the custom-job launcher needs."""
        return {"project": self.project, "region": self.region, "service_account": self.service_account,
                "tensorboard": self.tensorboard, "pipeline_root": self.pipeline_root}


@contextlib.contextmanager
def vertex_errors(action: str) -> Iterator[None]:
    """SDK and auth failures as one-line `SignpipeError`s that say which action failed."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    try:
        yield
    except auth_exceptions.DefaultCredentialsError:
        raise SignpipeError(f"{action}: no Google Cloud credentials (run `gcloud auth application-default login`)") from None
    except api_exceptions.GoogleAPICallError as exc:
        raise SignpipeError(f"{action}: Vertex AI answered {exc.code}: {exc.message}") from None
