"""`make images-check` (docker/images-check.sh) without building anything: its wiring into the
Makefile and CI, its refusal to pass on a machine where it cannot run, and the executor input
docker/step_check.py hands the validate step, run here through the very command line the
compiled Vertex spec gives the container (kfp's executor in this environment instead of the
image's). The builds themselves run in CI (`make images-check`, after the tests)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docker" / "images-check.sh"
REGISTRY, TAG = "localhost/signpipe-check", "test"


def load_step_check():
    spec = importlib.util.spec_from_file_location("step_check", ROOT / "docker" / "step_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_make_target_and_ci_step_run_the_script():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^images-check:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert target and "docker/images-check.sh" in target.group(1)
    assert re.search(r"^\.PHONY:.*\bimages-check\b", makefile, re.M)
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert "make images-check" in ci and ci.index("make images-check") > ci.index("make test-guards")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to run as another user")
def test_refuses_to_pass_where_it_cannot_build(tmp_path):
    """As an unprivileged user the builds cannot run: the script says why and exits non-zero."""
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(SCRIPT)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "SIGNPIPE_IMAGES_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path)},
    )
    assert done.returncode != 0
    assert "images-check: FAILED" in done.stderr
    assert "must run as root" in done.stderr or "cannot install them here" in done.stderr
    assert not (tmp_path / "cache").exists()


@pytest.fixture(scope="module")
def compiled_validate(tmp_path_factory):
    """The isolated-signs spec compiled for Vertex, as step_check.py compiles it."""
    step_check = load_step_check()
    spec = step_check.compile_spec(f"{REGISTRY}/signpipe-cpu:{TAG}", tmp_path_factory.mktemp("spec"))
    task = spec["root"]["dag"]["tasks"][step_check.TASK]
    component = spec["components"][task["componentRef"]["name"]]
    container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    return step_check, component, container


def test_executor_input_covers_the_component(compiled_validate):
    step_check, component, container = compiled_validate
    assert container["image"] == f"{REGISTRY}/signpipe-cpu:{TAG}"
    filled = step_check.executor_input(component, "gs://root/run/validate", "gs://data/asl-signs-sample")
    definitions_in, definitions_out = component["inputDefinitions"], component["outputDefinitions"]
    assert set(filled["inputs"]["artifacts"]) == set(definitions_in["artifacts"])
    assert set(filled["inputs"]["parameterValues"]) == set(definitions_in["parameters"])
    assert set(filled["outputs"]["artifacts"]) == set(definitions_out["artifacts"])
    assert set(filled["outputs"]["parameters"]) == set(definitions_out["parameters"])
    for name, artifacts in filled["outputs"]["artifacts"].items():
        (artifact,) = artifacts["artifacts"]
        assert artifact["uri"] == f"gs://root/run/validate/{name}"
        assert artifact["type"] == definitions_out["artifacts"][name]["artifactType"]
    # Vertex AI hands the executor local file names under the /gcs mount for what it reads back.
    assert filled["outputs"]["outputFile"] == "/gcs/root/run/validate/executor_output.json"
    assert "{{$}}" in container["args"]


def test_the_specs_command_line_runs_the_validate_step(compiled_validate, signs_sample, tmp_path):
    """The compiled command and args with the filled executor input, run here by `sh` with this
    environment's python first on PATH: the same program the container runs, on the real sample."""
    step_check, component, container = compiled_validate
    out = tmp_path / "out"
    filled = step_check.executor_input(component, str(out), str(signs_sample))
    args = [json.dumps(filled) if a == "{{$}}" else a for a in container["args"]]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([*container["command"], *args], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    output = json.loads((out / "executor_output.json").read_text(encoding="utf-8"))
    assert output["parameterValues"]["Output"] == step_check.SAMPLE_SEQUENCES
    (summary,) = output["artifacts"]["summary"]["artifacts"]
    assert summary["metadata"]["kind"] == "isolated-signs"
    assert summary["metadata"]["corpus_fingerprint"] == "images-check"
    assert (out / "report").read_text(encoding="utf-8").startswith("# Corpus validation: OK")


def test_accelerator_extras_are_the_ones_the_script_resolves():
    """The script resolves the jax extra each accelerator Dockerfile pins (read from the file)."""
    for family, extra in (("jax-tpu", "tpu"), ("jax-cuda", "cuda12")):
        text = (ROOT / "docker" / f"{family}.Dockerfile").read_text(encoding="utf-8")
        assert re.findall(r'"jax\[[a-z0-9]+\]==[0-9.]+"', text)[0].startswith(f'"jax[{extra}]==')
    script = SCRIPT.read_text(encoding="utf-8")
    assert "--python-platform x86_64-manylinux_2_36" in script and "for family in none jax-tpu jax-cuda" in script

