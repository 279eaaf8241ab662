"""Vertex AI custom jobs: training on machines a pipeline step cannot ask for (a TPU slice with its
topology, several hosts), launched from a pipeline step that may be retried or cancelled.

A launcher that only submitted a job and waited would do harm twice. Retried after it died (its VM
preempted, its pod evicted), it would start a second TPU job writing to the workdir the first one,
still running, writes to. Cancelled with its pipeline, it would leave the job running and billing.
`launch_custom_job` does neither:

- identity: the job carries labels naming the pipeline run and the task that launched it
  (`JobIdentity`; the component fills it from kfp's run and task placeholders), and both names in
  its display name, so every attempt of one task finds the jobs its earlier attempts created;
- before creating, it lists those jobs. One still queued, pending or running is attached to and
  awaited: no second job. One that succeeded is the result. When all of them failed or were
  cancelled, a new job is created on the same workdir, where training resumes from the last
  checkpoint (`signpipe.train`); at most `max_jobs` are created for one task, so a job that fails
  for a reason a retry cannot fix is not relaunched for ever;
- while it waits, SIGTERM or SIGINT (what a cancelled step's process receives) cancels the job and
  fails the step; the handlers that were there before are put back afterwards. On Linux the
  process also asks for SIGTERM when its parent dies, since a kfp step runs Python under `sh -c`,
  which does not pass a SIGTERM on to its child;
- the environment's Vertex TensorBoard is attached to the job (Vertex accepts one only for a job
  that runs as a service account).

Nothing here imports kfp or the pipelines: a component calls `run_training_custom_job` with plain
values, and the requests it makes are tested offline against a recording server
(tests/test_vertex_requests.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from signpipe.cloud_settings import VertexSettings, vertex_errors
from signpipe.errors import ConfigError, SignpipeError
from signpipe.job_env import TPU_HOSTS_ENV

# Label keys that find a task's jobs again. Underscores, not dashes: they appear in list filters
# (`labels.signpipe_run="..."`), where a dash could read as an operator.
RUN_LABEL = "signpipe_run"
TASK_LABEL = "signpipe_task"
STAGE_LABEL = "signpipe-stage"

ACTIVE_STATES = frozenset({"JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_UPDATING"})
"""A job in one of these will still use its machines: a retried launcher waits for it."""
SUCCEEDED = "JOB_STATE_SUCCEEDED"
ENDED_UNSUCCESSFULLY = frozenset({"JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"})
"""A job in one of these left a workdir to resume from, and no machines running."""
CANCELLING = "JOB_STATE_CANCELLING"
PAUSED = "JOB_STATE_PAUSED"
DEFAULT_POLL_SECONDS = 60.0
DEFAULT_MAX_JOBS = 3  # one per attempt of a training step (the pipelines give it 2 retries)
_LABEL_MAX = 63
_DISPLAY_NAME_MAX = 128
_UNSAFE_LABEL_CHARS = re.compile(r"[^a-z0-9_-]")
_PLACEHOLDER = "{{$"


def label_value(value: str) -> str:
    """`value` as a Vertex label value (lowercase letters, digits, '_', '-'; at most 63). A value
    that had to be cut keeps a hash of the whole, so two long names do not become one label."""
    text = _UNSAFE_LABEL_CHARS.sub("-", str(value).lower())
    if len(text) <= _LABEL_MAX:
        return text
    digest = hashlib.sha256(str(value).encode()).hexdigest()[:8]
    return f"{text[:_LABEL_MAX - 9]}-{digest}"


@dataclasses.dataclass(frozen=True)
class JobIdentity:
    """Which pipeline run and which task of it a custom job belongs to: the same for every attempt
    (retry) of one task, different for every other task and run."""

    run: str
    task: str

    def __post_init__(self) -> None:
        for what, value in (("pipeline run", self.run), ("task", self.task)):
            if not value or not str(value).strip():
                raise ConfigError(f"custom job identity: no {what} name (the pipeline passes its run and task names)")
            if _PLACEHOLDER in str(value):
                raise ConfigError(f"custom job identity: the {what} name {value!r} is an unresolved kfp placeholder "
                                  "(only a pipeline run fills it in)")

    @property
    def labels(self) -> dict[str, str]:
        return {RUN_LABEL: label_value(self.run), TASK_LABEL: label_value(self.task)}

    @property
    def list_filter(self) -> str:
        """The `customJobs.list` filter that finds this task's jobs."""
        return " AND ".join(f'labels.{key}="{value}"' for key, value in self.labels.items())

    def display_name(self, name: str, attempt: int) -> str:
        """`signpipe-NAME-RUN-TASK-ATTEMPT`, cut to Vertex's 128 characters (the attempt is kept)."""
        suffix = f"-{attempt}"
        stem = f"signpipe-{label_value(name)}-{self.labels[RUN_LABEL]}-{self.labels[TASK_LABEL]}"
        return stem[:_DISPLAY_NAME_MAX - len(suffix)] + suffix

    def __str__(self) -> str:
        return f"run {self.run!r}, task {self.task!r}"


# --- what a training job runs ---------------------------------------------------------------------

def training_command_args(stage: str, data_dir: str, workdir: str, preset: str, overrides: Mapping[str, Any]) -> list[str]:
    """`signpipe train STAGE ...` arguments (the images' entrypoint is `signpipe`)."""
    items = [f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in overrides.items()]
    return ["train", stage.replace("_", "-"), "--shards", data_dir, "--workdir", workdir, "--preset", preset, *items]


# TPU VM machine types Vertex AI custom training accepts, as its documentation lists them
# (https://cloud.google.com/vertex-ai/docs/training/configure-compute#tpu, docs/pipelines.md
# "Checked against the Vertex AI documentation"): the machine type bundles its chips, so the
# machine spec carries no acceleratorType/acceleratorCount; `tpuTopology` names the slice; the
# worker pool has one replica, and Vertex provisions the VMs the topology implies.
@dataclasses.dataclass(frozen=True)
class TpuVmType:
    accelerator: str
    """The Vertex accelerator the machine type bundles (it names the image family, not a request)."""
    chips_per_vm: int
    topologies: tuple[str, ...]
    """The slice shapes Vertex AI trains on with this machine type."""


TPU_VM_MACHINE_TYPES = {
    "ct5lp-hightpu-1t": TpuVmType("TPU_V5_LITEPOD", 1, ("1x1",)),
    "ct5lp-hightpu-4t": TpuVmType("TPU_V5_LITEPOD", 4, ("2x2", "2x4", "4x4", "4x8", "8x8", "8x16", "16x16")),
    "ct5lp-hightpu-8t": TpuVmType("TPU_V5_LITEPOD", 8, ("2x4",)),
}
_TPU_VM_PATTERN = re.compile(r"^ct[0-9][a-z0-9]*-[a-z]+-[0-9]+t$")


def is_tpu_vm(machine_type: str) -> bool:
    """Whether `machine_type` is a Cloud TPU VM type (`ct5lp-hightpu-4t`), whose chips come with it."""
    return bool(_TPU_VM_PATTERN.match(machine_type or ""))


def tpu_vm_problems(machine: Mapping[str, Any]) -> list[str]:
    """What the Vertex AI documentation does not allow in a TPU VM machine (a `Machine` as a dict);
    empty for a machine that is not a TPU VM."""
    machine_type = machine.get("machine_type") or ""
    if not is_tpu_vm(machine_type):
        return ["tpu_topology is for a TPU VM machine type (ct5lp-hightpu-4t)"] if machine.get("tpu_topology") else []
    tpu = TPU_VM_MACHINE_TYPES.get(machine_type)
    if tpu is None:
        return [f"{machine_type}: a TPU VM type this project has not checked against the Vertex AI documentation "
                f"(known: {', '.join(TPU_VM_MACHINE_TYPES)})"]
    problems = []
    if machine.get("accelerator_type") or machine.get("accelerator_count"):
        problems.append(f"{machine_type} bundles its {tpu.accelerator} chips: no accelerator_type/accelerator_count "
                        "(Vertex AI takes the machine type and tpu_topology only)")
    if machine.get("tpu_topology") not in tpu.topologies:
        problems.append(f"{machine_type}: tpu_topology {machine.get('tpu_topology')!r} is not one Vertex AI trains on "
                        f"(expected one of {', '.join(tpu.topologies)})")
    if int(machine.get("replica_count") or 1) != 1:
        problems.append(f"{machine_type}: replica_count must be 1; the topology decides the number of VMs "
                        f"({tpu.chips_per_vm} chips each)")
    return problems


def tpu_vm_hosts(machine_type: str, topology: str) -> int:
    """The number of VMs of a TPU slice: its chips over the chips of one VM (4x4 on ct5lp-hightpu-4t: 4)."""
    tpu = TPU_VM_MACHINE_TYPES[machine_type]
    return max(1, math.prod(int(side) for side in topology.split("x")) // tpu.chips_per_vm)


def worker_pool_specs(machine: Mapping[str, Any], image_uri: str, command: Sequence[str],
                      args: Sequence[str]) -> list[dict[str, Any]]:
    """A custom job's worker pools (`WorkerPoolSpec` fields of the SDK's `CustomJob`) on `machine`
    (`machine_type`, `accelerator_type`, `accelerator_count`, `tpu_topology`, `replica_count`, as a
    `pipelines.presets.Machine` holds them).

    A TPU VM slice is one pool of one replica whose machine spec is the machine type and the
    topology; Vertex AI starts every VM of the slice and runs the container on each (a multi-host
    slice's containers also get `TPU_HOSTS_ENV`). Any other machine: the primary replica, then the
    other replicas as a second pool with the same machine, Vertex's layout for distributed
    training (`CLUSTER_SPEC`, which `signpipe.train.mesh` numbers processes from)."""
    machine_type = machine.get("machine_type") or ""
    if not machine_type:
        raise ConfigError("worker pools exist only for a machine with a machine_type (a custom job)")
    problems = tpu_vm_problems(machine)
    if problems:
        raise ConfigError(f"machine {machine_type}: " + "; ".join(problems))
    container: dict[str, Any] = {"image_uri": image_uri, "command": list(command), "args": list(args)}
    if is_tpu_vm(machine_type):
        topology = machine["tpu_topology"]
        hosts = tpu_vm_hosts(machine_type, topology)
        if hosts > 1:
            container["env"] = [{"name": TPU_HOSTS_ENV, "value": str(hosts)}]
        return [{"machine_spec": {"machine_type": machine_type, "tpu_topology": topology}, "replica_count": 1,
                 "container_spec": container}]
    replicas = int(machine.get("replica_count") or 1)
    if replicas < 1:
        raise ConfigError(f"machine {machine_type}: replica_count must be at least 1, got {replicas}")
    machine_spec: dict[str, Any] = {"machine_type": machine_type}
    if machine.get("accelerator_type"):
        machine_spec["accelerator_type"] = machine["accelerator_type"]
        machine_spec["accelerator_count"] = int(machine.get("accelerator_count") or 0)
    pools = [{"machine_spec": machine_spec, "replica_count": 1, "container_spec": container}]
    if replicas > 1:
        pools.append({"machine_spec": dict(machine_spec), "replica_count": replicas - 1, "container_spec": dict(container)})
    return pools


def custom_job_spec(stage: str, data_dir: str, workdir: str, preset: str, overrides: Mapping[str, Any], image_uri: str,
                    machine: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The worker pools of a training custom job on `machine` (a `Machine` as a dict)."""
    return worker_pool_specs(machine, image_uri, ["signpipe"], training_command_args(stage, data_dir, workdir, preset, overrides))


def job_workdir(job: Any) -> str:
    """The `--workdir` a training job (a `CustomJob`) was given, or "" if it has none."""
    pools = job.gca_resource.job_spec.worker_pool_specs
    args = list(pools[0].container_spec.args) if pools else []
    return args[args.index("--workdir") + 1] if "--workdir" in args[:-1] else ""


# --- states, signals ------------------------------------------------------------------------------

def job_state(job: Any, refresh: bool = False) -> str:
    """The job's state name (`JOB_STATE_RUNNING`); `refresh` asks Vertex again first."""
    state = job.state if refresh else job.gca_resource.state
    return getattr(state, "name", str(state))


def _job_error(job: Any) -> str:
    error = getattr(job.gca_resource, "error", None)
    return error.message if error is not None and error.message else "no error message"


class _Stopped(BaseException):
    """Raised by the signal handler; a BaseException so that no `except Exception` in the SDK
    swallows it between the signal and the cancellation."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _parent_death_signal(signum: int) -> bool:
    """Ask Linux to send `signum` to this process when its parent dies (0: stop asking)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, signum, 0, 0, 0) == 0  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def _stop_on_signals(signums: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """Turn the first of `signums` into `_Stopped` (later ones are ignored while the job is being
    cancelled); the previous handlers are restored on the way out. Handlers exist only in the main
    thread: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        if not fired:
            fired.append(signum)
            raise _Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in signums}
    asked_parent_death = _parent_death_signal(signal.SIGTERM)
    try:
        yield
    finally:
        if asked_parent_death:
            _parent_death_signal(0)
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


# --- the launcher ---------------------------------------------------------------------------------

def _say(message: str) -> None:
    print(f"[custom job] {message}", flush=True)


def _jobs_of(identity: JobIdentity, settings: VertexSettings) -> list[Any]:
    """The custom jobs of `identity`, oldest first (the labels are checked again here: the list
    filter is the server's business, a wrong adoption would be ours)."""
    from google.cloud import aiplatform

    listed = aiplatform.CustomJob.list(filter=identity.list_filter, **settings.client_options())
    mine = [job for job in listed if all(job.labels.get(k) == v for k, v in identity.labels.items())]
    return sorted(mine, key=lambda job: (job.create_time.timestamp() if job.create_time else 0.0, job.resource_name))


def _wait(job: Any, poll_seconds: float, action: str, until: Callable[[str], bool]) -> str:
    """Poll `job` every `poll_seconds` until `until(state)`; says each new state."""
    said = ""
    while True:
        with vertex_errors(action):
            state = job_state(job, refresh=True)
        if state != said:
            _say(f"{job.resource_name}: {state}")
            said = state
        if until(state):
            return state
        time.sleep(poll_seconds)


def _cancel(job: Any | None, identity: JobIdentity, settings: VertexSettings, action: str) -> list[str]:
    """Cancel `job`, or (when the signal came before this attempt knew its job, e.g. during the
    create call) every active job of `identity`; returns what was cancelled."""
    with vertex_errors(f"{action}: cancelling"):
        targets = [job] if job is not None else [j for j in _jobs_of(identity, settings) if job_state(j) in ACTIVE_STATES]
        for target in targets:
            target.cancel()
    return [target.resource_name for target in targets]


def launch_custom_job(
    settings: VertexSettings,
    identity: JobIdentity,
    name: str,
    worker_pools: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str] | None = None,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    max_jobs: int = DEFAULT_MAX_JOBS,
    on_relaunch: Callable[[Any], None] | None = None,
) -> Any:
    """Run `worker_pools` as the custom job of `identity` and return it once it has succeeded,
    creating it only if no earlier attempt's job is running or has succeeded (see the module
    docstring). `name` says what the job does (`pretrain`), in its display name and in errors;
    `on_relaunch(previous_job)` runs before a job replaces one that failed. Raises a
    `SignpipeError` naming the job and its state if it fails or is cancelled."""
    if max_jobs < 1:
        raise ConfigError(f"{name} custom job: max_jobs must be at least 1, got {max_jobs}")
    if poll_seconds < 0:
        raise ConfigError(f"{name} custom job: poll_seconds must not be negative, got {poll_seconds}")
    if not settings.pipeline_root:
        raise ConfigError(f"{name} custom job: no pipeline root (gs://...) for the job's staging and output folders")
    if settings.tensorboard and not settings.service_account:
        raise ConfigError(f"{name} custom job: the Vertex TensorBoard {settings.tensorboard} is given but no service "
                          "account; Vertex attaches a TensorBoard only to a job that runs as a service account "
                          "(set `service_account` in the pipeline's `vertex` parameter, or leave `tensorboard` empty)")
    action = f"{name} custom job ({identity})"
    settings.connect()
    job = None
    with _stop_on_signals():
        try:
            while True:
                with vertex_errors(action):
                    jobs = _jobs_of(identity, settings)
                states = [job_state(j) for j in jobs]
                ending = [j for j, state in zip(jobs, states) if state == CANCELLING]
                active = [j for j, state in zip(jobs, states) if state in ACTIVE_STATES]
                succeeded = [j for j, state in zip(jobs, states) if state == SUCCEEDED]
                paused = [j for j, state in zip(jobs, states) if state == PAUSED]
                if paused and not (active or succeeded):  # it may be resumed: a second job would share its workdir
                    raise SignpipeError(f"{action}: {paused[-1].resource_name} is {PAUSED}; resume or cancel it in the "
                                        "Vertex AI console, then retry this step")
                if ending and not active:  # an earlier attempt's cancellation: let it finish, then decide
                    for previous in ending:
                        _wait(previous, poll_seconds, action, lambda state: state != CANCELLING)
                    continue
                if active:
                    job = active[-1]
                    _say(f"{job.resource_name} ({job.display_name}) of an earlier attempt is {job_state(job)}: waiting for it")
                elif succeeded:
                    _say(f"{succeeded[-1].resource_name} of an earlier attempt has succeeded")
                    return succeeded[-1]
                else:
                    job = _create(settings, identity, name, worker_pools, labels, jobs, max_jobs, on_relaunch, action)
                state = _wait(job, poll_seconds, action, lambda state: state not in ACTIVE_STATES and state != CANCELLING)
                if state == SUCCEEDED:
                    return job
                used = len(jobs) + (0 if active else 1)
                raise SignpipeError(
                    f"{action}: {job.resource_name} ended {state}: {_job_error(job)}"
                    + (f"; a retry of this step resumes from the last checkpoint in a new job ({used} of at most "
                       f"{max_jobs} used)" if used < max_jobs else f"; that was the last of at most {max_jobs} jobs")
                )
        except _Stopped as stopped:
            cancelled = _cancel(job, identity, settings, action)
            what = f"cancelled {', '.join(cancelled)}" if cancelled else "no job was running"
            raise SignpipeError(f"{action}: stopped by {signal.Signals(stopped.signum).name} (the pipeline run was "
                                f"cancelled?); {what}") from None


def _create(settings: VertexSettings, identity: JobIdentity, name: str, worker_pools: Sequence[Mapping[str, Any]],
            labels: Mapping[str, str] | None, previous: Sequence[Any], max_jobs: int,
            on_relaunch: Callable[[Any], None] | None, action: str) -> Any:
    from google.cloud import aiplatform

    if len(previous) >= max_jobs:
        last = previous[-1]
        raise SignpipeError(f"{action}: {len(previous)} jobs already ran for this task and none succeeded (the last, "
                            f"{last.resource_name}, ended {job_state(last)}: {_job_error(last)}); not launching another "
                            f"(at most {max_jobs})")
    if previous:
        _say(f"{previous[-1].resource_name} of an earlier attempt ended {job_state(previous[-1])}: launching a new job")
        if on_relaunch is not None:
            on_relaunch(previous[-1])
    display_name = identity.display_name(name, len(previous) + 1)
    root = settings.pipeline_root.rstrip("/")
    with vertex_errors(action):
        job = aiplatform.CustomJob(
            display_name=display_name,
            worker_pool_specs=[dict(pool) for pool in worker_pools],
            base_output_dir=f"{root}/custom-jobs/{display_name}",
            staging_bucket=settings.pipeline_root,
            labels={STAGE_LABEL: label_value(name), **dict(labels or {}), **identity.labels},
            **settings.client_options(),
        )
        job.submit(service_account=settings.service_account or None, tensorboard=settings.tensorboard or None)
    _say(f"created {job.resource_name} ({display_name})")
    return job


def _adopt_workdir(previous: str, workdir: str) -> None:
    """Copy an earlier attempt's workdir into this attempt's, when kfp gave the two different
    paths: training resumes from (or the result is read from) this attempt's workdir. The
    checkpoints are copied where `signpipe.train.checkpoint` keeps them (`gs://` for a workdir on
    the /gcs mount), the rest through the mount."""
    if not previous or Path(previous) == Path(workdir):
        return
    if not Path(previous).is_dir():
        _say(f"the earlier job's workdir {previous} is not readable here: nothing to carry over")
        return
    from signpipe.train.checkpoint import CHECKPOINT_DIR, copy_checkpoints

    _say(f"carrying the earlier job's workdir {previous} over to {workdir}")
    shutil.copytree(previous, workdir, dirs_exist_ok=True,
                    ignore=lambda folder, names: [CHECKPOINT_DIR] if Path(folder) == Path(previous) else [])
    copy_checkpoints(previous, workdir)


def run_training_custom_job(
    stage: str,
    data_dir: str,
    workdir: str,
    preset: str,
    overrides: Mapping[str, Any],
    image_uri: str,
    machine: Mapping[str, Any],
    vertex: Mapping[str, Any],
    *,
    run_name: str,
    task_name: str,
    labels: Mapping[str, str] | None = None,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    max_jobs: int = DEFAULT_MAX_JOBS,
) -> dict[str, Any]:
    """Run `signpipe train STAGE` as the Vertex AI custom job of (`run_name`, `task_name`) on
    `machine` (a `Machine` as a dict) running `image_uri`, wait for it, and return the stage's
    final metrics from `workdir`. `vertex` is the pipeline's `vertex` parameter (project, region,
    pipeline root, service account, TensorBoard); `data_dir` and `workdir` are /gcs/... paths, which
    the job's machines see through Cloud Storage FUSE as the launching step does (the training
    checkpoints go to the workdir's `gs://` twin directly: `signpipe.train.checkpoint`)."""
    settings = VertexSettings.from_parameter(vertex)
    if not settings.pipeline_root:
        raise ConfigError(f"{stage} custom job: no pipeline_root in the pipeline's `vertex` parameter (submit sets it)")
    name = stage.replace("_", "-")
    pools = custom_job_spec(stage, data_dir, workdir, preset, overrides, image_uri, machine)
    job = launch_custom_job(settings, JobIdentity(run_name, task_name), name, pools, labels=labels,
                            poll_seconds=poll_seconds, max_jobs=max_jobs,
                            on_relaunch=lambda previous: _adopt_workdir(job_workdir(previous), workdir))
    _adopt_workdir(job_workdir(job), workdir)
    final_metrics = Path(workdir) / "final_metrics.json"
    if not final_metrics.is_file():
        raise SignpipeError(f"{stage} custom job {job.resource_name} succeeded but left no {final_metrics}")
    return json.loads(final_metrics.read_text(encoding="utf-8"))
