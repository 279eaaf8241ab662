"""Run one pipeline step in a built image exactly as Vertex AI would: `docker/images-check.sh`.

Compiles the isolated-signs pipeline for Vertex (`signpipe compile --image-registry/--image-tag`,
so the spec names the image just built), takes the validate executor's image, command and args
from the spec, fills `--executor_input` the way Vertex AI does (artifact URIs under gs://, which
kfp's executor reads and writes through the /gcs/ mount), and runs the container with podman:
no network, the image's own user, the asl-signs sample mounted read-only where the input
artifact's URI points, a writable folder where the outputs' URIs point. Then checks the step
wrote what the spec promises: the Markdown report, the return value and executor_output.json
with the Metrics artifact's metadata.

    python docker/step_check.py --image localhost/signpipe-check/signpipe-cpu:TAG \
        --data ../shared/data/asl-signs-sample --out /tmp/step [--engine podman]

Exits non-zero, saying what is missing, when the step fails or its outputs are not there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

PIPELINE = "isolated-signs"
TASK = "validate"
# The bucket names the URIs use; the folders are mounted at kfp's /gcs/ prefix for them.
DATA_BUCKET = "signpipe-check-data"
ROOT_BUCKET = "signpipe-check-root"
GCS_MOUNT = "/gcs"
SAMPLE_SEQUENCES = 84  # /work/shared/data/README.md: 84 sequences of asl-signs


def compile_spec(image: str, workdir: Path) -> dict:
    registry, _, rest = image.rpartition("/")
    name, _, tag = rest.partition(":")
    if name != "signpipe-cpu" or not tag:
        raise SystemExit(f"{image}: expected REGISTRY/signpipe-cpu:TAG")
    out = workdir / f"{PIPELINE}.yaml"
    signpipe = Path(sys.executable).with_name("signpipe")
    subprocess.run([str(signpipe), "compile", PIPELINE, "--preset", "smoke", "--target", "vertex", "--out", str(out),
                    "--image-registry", registry, "--image-tag", tag], check=True, stdout=subprocess.DEVNULL)
    return yaml.safe_load(out.read_text(encoding="utf-8"))


def executor_input(component: dict, out_uri: str, corpus_uri: str) -> dict:
    """What Vertex AI hands the executor: every input and output of `component` with its URI."""
    inputs = component.get("inputDefinitions", {})
    outputs = component.get("outputDefinitions", {})
    artifacts_in = {}
    for name, definition in inputs.get("artifacts", {}).items():
        if name != "corpus":
            raise SystemExit(f"{TASK}: unexpected input artifact {name!r}; this check feeds only `corpus`")
        artifacts_in[name] = {"artifacts": [{
            "name": f"projects/p/locations/l/metadataStores/default/artifacts/{name}",
            "type": definition["artifactType"], "uri": corpus_uri, "metadata": {}}]}
    parameters_in = {name: spec.get("defaultValue", "") for name, spec in inputs.get("parameters", {}).items()}
    parameters_in.update({"corpus_fingerprint": "images-check", "expected_kind": PIPELINE})
    artifacts_out = {
        name: {"artifacts": [{"name": f"projects/p/locations/l/metadataStores/default/artifacts/{name}",
                              "type": definition["artifactType"], "uri": f"{out_uri}/{name}", "metadata": {}}]}
        for name, definition in outputs.get("artifacts", {}).items()
    }
    local_out = out_uri.replace("gs://", f"{GCS_MOUNT}/", 1)
    parameters_out = {name: {"outputFile": f"{local_out}/{name}"} for name in outputs.get("parameters", {})}
    return {
        "inputs": {"parameterValues": parameters_in, "artifacts": artifacts_in},
        "outputs": {"artifacts": artifacts_out, "parameters": parameters_out,
                    "outputFile": f"{local_out}/executor_output.json"},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--data", required=True, type=Path, help="the asl-signs sample corpus")
    parser.add_argument("--out", required=True, type=Path, help="an empty folder for the step's outputs")
    parser.add_argument("--engine", default="podman")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        spec = compile_spec(args.image, Path(tmp))
    task = spec["root"]["dag"]["tasks"][TASK]
    component = spec["components"][task["componentRef"]["name"]]
    container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    if container["image"] != args.image:
        raise SystemExit(f"the compiled spec runs {TASK} on {container['image']}, expected {args.image}")

    out_uri = f"gs://{ROOT_BUCKET}/run/{TASK}"
    corpus_uri = f"gs://{DATA_BUCKET}/asl-signs-sample"
    filled = json.dumps(executor_input(component, out_uri, corpus_uri))
    command = container["command"]
    step_args = [filled if a == "{{$}}" else a for a in container.get("args", [])]
    if any("{{$" in a for a in command + step_args):
        raise SystemExit(f"placeholders left unfilled in {command + step_args}")

    args.out.mkdir(parents=True, exist_ok=True)
    os.chown(args.out, 10001, 10001) if os.geteuid() == 0 else None  # the image's user writes there
    argv = [args.engine, "run", "--rm", "--network", "none", "--no-healthcheck",
            "--volume", f"{args.data.resolve()}:{GCS_MOUNT}/{DATA_BUCKET}/asl-signs-sample:ro",
            "--volume", f"{args.out.resolve()}:{GCS_MOUNT}/{ROOT_BUCKET}",
            "--entrypoint", json.dumps(command), args.image, *step_args]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"{TASK} exited {done.returncode} in {args.image}")

    local = args.out / "run" / TASK
    problems = []
    output_file = local / "executor_output.json"
    output = json.loads(output_file.read_text(encoding="utf-8")) if output_file.is_file() else {}
    if not output:
        problems.append(f"no {output_file}")
    report = local / "report"
    if not report.is_file() or not report.read_text(encoding="utf-8").strip():
        problems.append(f"no Markdown report at {report}")
    returned = output.get("parameterValues", {}).get("Output")
    if returned != SAMPLE_SEQUENCES:
        problems.append(f"returned {returned!r} sequences, expected {SAMPLE_SEQUENCES}")
    summary = {a["name"].rsplit("/", 1)[-1]: a.get("metadata", {})
               for a in output.get("artifacts", {}).get("summary", {}).get("artifacts", [])}
    metadata = summary.get("summary", {})
    if metadata.get("kind") != PIPELINE or metadata.get("corpus_fingerprint") != "images-check":
        problems.append(f"Metrics artifact metadata {metadata!r} lacks kind={PIPELINE} and the fingerprint")
    if problems:
        print(done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"{TASK} in {args.image}: " + "; ".join(problems))
    headline = report.read_text(encoding="utf-8").strip().splitlines()[0]
    print(f"   {TASK}: returned {returned} sequences; Metrics {json.dumps(metadata, sort_keys=True)[:200]}; "
          f"report: {headline!r}; files: {sorted(p.name for p in local.iterdir())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
