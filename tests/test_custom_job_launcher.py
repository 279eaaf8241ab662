"""The custom-job launcher (`signpipe.custom_jobs`) against the recording Vertex server of
test_vertex_requests: a retried launcher attaches to its earlier job instead of creating a second
one, relaunches a failed one on the same workdir (at most `max_jobs` times), cancels its job on
SIGTERM, and hands the environment's TensorBoard to the job."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_vertex_requests import PARENT, SERVICE_ACCOUNT, VertexRecorder, recorded, server, vertex  # noqa: F401 (fixtures)

from signpipe.custom_jobs import RUN_LABEL, TASK_LABEL, JobIdentity, label_value, run_training_custom_job
from signpipe.errors import ConfigError, SignpipeError

RUN, TASK = "signpipe-fingerspelling-small-20260105030000", "pretrain-on-custom-job"
IDENTITY = JobIdentity(RUN, TASK)
IMAGE = "europe-west4-docker.pkg.dev/my-project/signpipe/signpipe-jax-tpu:abc123"
MACHINE = {"cpu": "24", "memory": "48G", "machine_type": "ct5lp-hightpu-4t", "accelerator_type": "", "accelerator_count": 0,
           "tpu_topology": "2x2", "replica_count": 1}
TENSORBOARD = f"{PARENT}/tensorboards/42"
RUNNING, SUCCEEDED, FAILED = "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"


def finished_workdir(path: Path) -> Path:
    """A workdir as a succeeded training job leaves it (through Cloud Storage FUSE)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "final_metrics.json").write_text(json.dumps({"step": 40, "train_loss": 0.5}))
    return path


def earlier_job(job_id: int, states: list[str], workdir: Path, minute: int = 0, identity: JobIdentity = IDENTITY) -> str:
    """A custom job an earlier attempt of the task created, answering `states` one GET at a time."""
    name = f"{PARENT}/customJobs/{job_id}"
    VertexRecorder.store[name] = {
        "name": name, "displayName": identity.display_name("pretrain", 1), "labels": identity.labels,
        "state": states[0], "_states": list(states), "createTime": f"2026-01-05T03:{minute:02d}:00Z",
        "error": {"code": 13, "message": "the TPU host was preempted"} if states[-1] == FAILED else {},
        "jobSpec": {"workerPoolSpecs": [{
            "machineSpec": {"machineType": "ct5lp-hightpu-4t"}, "replicaCount": "1",
            "containerSpec": {"imageUri": IMAGE, "command": ["signpipe"],
                              "args": ["train", "pretrain", "--workdir", str(workdir), "--preset", "small"]}}]},
    }
    return name


def launch(settings, workdir: Path, vertex_overrides: dict | None = None, **kwargs) -> dict:
    parameter = {**settings.vertex_parameter(), "api_endpoint": settings.api_endpoint, **(vertex_overrides or {})}
    return run_training_custom_job("pretrain", "/gcs/bucket/features", str(workdir), "small", {"total_steps": 40}, IMAGE,
                                   MACHINE, parameter, run_name=RUN, task_name=TASK, poll_seconds=0.01, **kwargs)


def creates() -> list[dict]:
    return recorded("POST", "/customJobs")


def test_job_identity_is_stable_and_fits_vertex_labels():
    assert IDENTITY.labels == {RUN_LABEL: RUN, TASK_LABEL: TASK}
    assert IDENTITY.list_filter == f'labels.{RUN_LABEL}="{RUN}" AND labels.{TASK_LABEL}="{TASK}"'
    assert label_value("My Run/2026") == "my-run-2026"
    long_a, long_b = "Run-" + "a" * 80 + "-1", "Run-" + "a" * 80 + "-2"
    assert len(label_value(long_a)) == 63 and label_value(long_a) != label_value(long_b)
    assert label_value(long_a) == label_value(long_a)
    name = JobIdentity(long_a, long_b).display_name("pretrain", 2)
    assert len(name) <= 128 and name.startswith("signpipe-pretrain-run-aaa") and name.endswith("-2")
    with pytest.raises(ConfigError, match="placeholder"):
        JobIdentity("{{$.pipeline_job_name}}", TASK)
    with pytest.raises(ConfigError, match="task"):
        JobIdentity(RUN, "")


def test_first_launch_creates_one_labelled_job_and_waits_for_it(vertex, tmp_path):
    VertexRecorder.custom_job_states = [RUNNING, RUNNING, SUCCEEDED]
    workdir = finished_workdir(tmp_path / "model")
    assert launch(vertex, workdir) == {"step": 40, "train_loss": 0.5}
    (listing,) = recorded("GET", "/customJobs")
    assert listing["query"]["filter"] == IDENTITY.list_filter
    (create,) = creates()
    body = create["body"]
    assert body["labels"] == {"signpipe-stage": "pretrain", RUN_LABEL: RUN, TASK_LABEL: TASK}
    assert body["displayName"] == f"signpipe-pretrain-{RUN}-{TASK}-1"
    job = next(iter(VertexRecorder.store))
    assert len(recorded("GET", job)) == 3  # polled until it succeeded
    assert not recorded("POST", ":cancel")


def test_a_retry_waits_for_the_running_job_and_creates_none(vertex, tmp_path):
    workdir = finished_workdir(tmp_path / "model")
    job = earlier_job(77, [RUNNING, RUNNING, RUNNING, SUCCEEDED], workdir)
    earlier_job(78, [FAILED], workdir, identity=JobIdentity("another-run", TASK))  # not this run's: ignored
    assert launch(vertex, workdir) == {"step": 40, "train_loss": 0.5}
    assert creates() == []
    assert len(recorded("GET", job)) == 4


def test_a_retry_after_success_reads_the_result_without_any_job(vertex, tmp_path):
    workdir = finished_workdir(tmp_path / "model")
    job = earlier_job(77, [SUCCEEDED], workdir)
    assert launch(vertex, workdir)["step"] == 40
    assert creates() == [] and recorded("GET", job) == []


def test_a_failed_job_is_relaunched_once_on_the_same_workdir(vertex, tmp_path):
    workdir = finished_workdir(tmp_path / "model")
    earlier_job(77, [FAILED], workdir)
    VertexRecorder.custom_job_states = [RUNNING, SUCCEEDED]
    assert launch(vertex, workdir)["step"] == 40
    (create,) = creates()
    args = create["body"]["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["args"]
    assert args[args.index("--workdir") + 1] == str(workdir)
    assert create["body"]["displayName"].endswith("-2")


def test_a_relaunch_carries_over_a_workdir_kfp_moved(vertex, tmp_path):
    earlier = tmp_path / "attempt-1" / "model"
    (earlier / "checkpoints" / "40").mkdir(parents=True)
    (earlier / "checkpoints" / "40" / "state").write_text("weights")
    finished_workdir(earlier)  # (what the recorder's job, which trains nothing, is read back from)
    earlier_job(77, [FAILED], earlier)
    workdir = tmp_path / "attempt-2" / "model"
    VertexRecorder.custom_job_states = [SUCCEEDED]
    assert launch(vertex, workdir)["step"] == 40
    assert (workdir / "checkpoints" / "40" / "state").read_text() == "weights"  # the new job resumes from it
    args = creates()[0]["body"]["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["args"]
    assert args[args.index("--workdir") + 1] == str(workdir)


def test_a_relaunch_copies_the_checkpoints_where_training_keeps_them(vertex, tmp_path, monkeypatch):
    """On Vertex the checkpoints of a /gcs workdir live at its gs:// twin, not under the mount
    (`signpipe.train.checkpoint`): the carried-over workdir gets them there, its other files through
    the mount. Here a local folder stands in for the bucket."""
    from etils import epath

    import signpipe.train.checkpoint as checkpoint

    mount, bucket = tmp_path / "gcs", tmp_path / "bucket"
    monkeypatch.setattr(checkpoint, "storage_path", lambda path: epath.Path(str(path).replace(str(mount), str(bucket), 1)))
    earlier = finished_workdir(mount / "attempt-1" / "model")
    (earlier / "metrics.jsonl").write_text("{}\n")
    (bucket / "attempt-1" / "model" / "checkpoints" / "40").mkdir(parents=True)
    (bucket / "attempt-1" / "model" / "checkpoints" / "40" / "commit_success.txt").write_text("done")
    earlier_job(77, [FAILED], earlier)
    workdir = mount / "attempt-2" / "model"
    VertexRecorder.custom_job_states = [SUCCEEDED]
    assert launch(vertex, workdir)["step"] == 40
    assert (bucket / "attempt-2" / "model" / "checkpoints" / "40" / "commit_success.txt").read_text() == "done"
    assert (workdir / "metrics.jsonl").is_file() and not (workdir / "checkpoints").exists()


def test_a_job_still_being_cancelled_is_let_finish_then_replaced(vertex, tmp_path):
    workdir = finished_workdir(tmp_path / "model")
    job = earlier_job(77, ["JOB_STATE_CANCELLING", "JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED"], workdir)
    assert launch(vertex, workdir)["step"] == 40
    assert len(recorded("GET", job)) == 3 and len(creates()) == 1  # polled until it was cancelled


def test_a_paused_job_is_neither_awaited_nor_duplicated(vertex, tmp_path):
    workdir = finished_workdir(tmp_path / "model")
    earlier_job(77, ["JOB_STATE_PAUSED"], workdir)
    with pytest.raises(SignpipeError, match="customJobs/77 is JOB_STATE_PAUSED"):
        launch(vertex, workdir)
    assert creates() == []


def test_relaunches_are_capped(vertex, tmp_path):
    workdir = finished_workdir(tmp_path / "model")
    for minute, job_id in enumerate((71, 72, 73)):
        earlier_job(job_id, [FAILED], workdir, minute=minute)
    with pytest.raises(SignpipeError, match=r"3 jobs already ran .*customJobs/73.*JOB_STATE_FAILED.*preempted"):
        launch(vertex, workdir, max_jobs=3)
    assert creates() == []


def test_a_job_that_fails_is_named_with_its_state(vertex, tmp_path):
    VertexRecorder.custom_job_states = [RUNNING, FAILED]
    with pytest.raises(SignpipeError, match=r"customJobs/\d+ ended JOB_STATE_FAILED.*retry of this step resumes"):
        launch(vertex, tmp_path / "model")


def test_the_tensorboard_goes_to_the_job_and_needs_a_service_account(vertex, tmp_path):
    workdir = finished_workdir(tmp_path / "model")
    launch(vertex, workdir, vertex_overrides={"tensorboard": TENSORBOARD})
    job_spec = creates()[0]["body"]["jobSpec"]
    assert job_spec["tensorboard"] == TENSORBOARD and job_spec["serviceAccount"] == SERVICE_ACCOUNT
    VertexRecorder.requests.clear()
    with pytest.raises(ConfigError, match="service account"):
        launch(vertex, workdir, vertex_overrides={"tensorboard": TENSORBOARD, "service_account": ""})
    assert VertexRecorder.requests == []


def signal_once_created(signum: int, target=None) -> threading.Thread:
    """A thread that sends `signum` (to `target`, default this process) once a job was created."""

    def send() -> None:
        deadline = time.monotonic() + 60
        while not creates() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # the launcher is polling by now
        if target is None:
            os.kill(os.getpid(), signum)
        else:
            target.send_signal(signum)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_sigterm_cancels_the_job_and_restores_the_handlers(vertex, tmp_path):
    VertexRecorder.custom_job_states = [RUNNING]  # runs until cancelled
    caught = []
    sigint = signal.getsignal(signal.SIGINT)
    previous = signal.signal(signal.SIGTERM, lambda *_: caught.append("sentinel"))  # a missed SIGTERM lands here
    try:
        signal_once_created(signal.SIGTERM)
        with pytest.raises(SignpipeError, match="stopped by SIGTERM.*cancelled .*customJobs/"):
            launch(vertex, tmp_path / "model")
        assert caught == []
        job = next(iter(VertexRecorder.store))
        assert [r["path"] for r in recorded("POST", ":cancel")] == [f"{job}:cancel"]
        handler = signal.getsignal(signal.SIGTERM)
        handler(signal.SIGTERM, None)
        assert caught == ["sentinel"]  # the launcher put the previous handler back
        assert signal.getsignal(signal.SIGINT) is sigint
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_to_the_steps_shell_cancels_the_job(vertex, tmp_path):
    """The step's process tree on Vertex: kfp runs Python under `sh -c`, and the signal goes to the
    shell, which does not forward it; the launcher's parent-death signal still cancels the job."""
    VertexRecorder.custom_job_states = [RUNNING]
    parameter = {**vertex.vertex_parameter(), "api_endpoint": vertex.api_endpoint}
    code = (
        "import sys; from signpipe.custom_jobs import run_training_custom_job\n"
        f"run_training_custom_job('pretrain', '/gcs/b/f', {str(tmp_path / 'model')!r}, 'small', {{}}, {IMAGE!r}, "
        f"{MACHINE!r}, {parameter!r}, run_name={RUN!r}, task_name={TASK!r}, poll_seconds=0.05)\n"
    )
    script = tmp_path / "launcher.py"
    script.write_text(code)
    # the trailing command keeps the shell from replacing itself with Python
    shell = subprocess.Popen(["sh", "-c", f'"{sys.executable}" "{script}"; echo "launcher exited $?"'],
                             cwd=Path(__file__).parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        signal_once_created(signal.SIGTERM, shell).join(timeout=90)
        deadline = time.monotonic() + 30
        while not recorded("POST", ":cancel") and time.monotonic() < deadline:
            time.sleep(0.05)
        shell.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the launcher, if the test failed before it stopped
            os.killpg(shell.pid, signal.SIGKILL)
    assert [r["path"] for r in recorded("POST", ":cancel")] == [f"{next(iter(VertexRecorder.store))}:cancel"]
    assert len(creates()) == 1
