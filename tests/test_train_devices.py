"""Data parallelism does not change the numbers: the same finetuning steps, with the same global
batch, on a 1-device and a 4-device mesh (4 fake CPU devices) give the same losses.

Each mesh size runs in its own subprocess because the device count is fixed when jax starts
(`XLA_FLAGS=--xla_force_host_platform_device_count=N` must be set before the import). Dropout
and LayerDrop are on: their random bits must not depend on how the batch is split.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from train_shards import write_spelling_shards

from signpipe.train.reporting import read_metrics

RUN = """
import json, sys
import jax
from signpipe.fingerspelling.config import resolve_config
from signpipe.fingerspelling.finetune import train_and_evaluate
assert jax.device_count() == int(sys.argv[2]), jax.devices()
config = resolve_config("finetune", "smoke", sys.argv[3:])
print(json.dumps(train_and_evaluate(config, sys.argv[1])))
"""

OVERRIDES = [
    "model.layers=2", "model.width=32", "model.heads=2", "model.dropout=0.1", "model.layerdrop=0.2",
    "batch_size=8", "eval_batch_size=8", "max_length=32", "length_bucket=32", "max_label_length=8",
    "warmup_steps=2", "total_steps=5", "log_every=1", "checkpoint_every=5", "eval_every=5",
]  # fmt: skip


def start(workdir, shards, n_devices):
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n_devices}".strip(),
    }
    args = [sys.executable, "-c", RUN, str(workdir), str(n_devices), *OVERRIDES, f"data_dir={shards}"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_one_and_four_devices_give_the_same_losses(tmp_path):
    shards = write_spelling_shards(tmp_path / "shards", n_train=24, n_validation=12)
    runs = {n: start(tmp_path / f"devices{n}", shards, n) for n in (1, 4)}
    results = {}
    for n, process in runs.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        results[n] = json.loads(out.splitlines()[-1])
    assert (results[1]["n_devices"], results[4]["n_devices"]) == (1, 4)

    losses = {n: [r["train/loss"] for r in read_metrics(tmp_path / f"devices{n}") if "train/loss" in r] for n in runs}
    assert len(losses[1]) == 5
    assert losses[4] == pytest.approx(losses[1], rel=1e-5, abs=1e-5)
    assert len(set(losses[1])) == 5  # training moved
    for key in ("validation_loss", "validation_score", "train_loss"):
        assert results[4][key] == pytest.approx(results[1][key], rel=1e-5, abs=1e-5), key
