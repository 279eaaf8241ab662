"""Kill-and-resume: a finetuning run killed hard mid-way (after a checkpoint, with steps done since)
and restarted on the same workdir ends exactly where an uninterrupted run ends.

Both runs are subprocesses, so the kill is a real `os._exit` with nothing flushed or closed.
Dropout, LayerDrop and augmentation are on, so the test also covers restoring the data
iterator's position and the step-keyed randomness, not only the weights.
"""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx
from train_shards import write_spelling_shards

from signpipe.fingerspelling.finetune import load_finetuned_model
from signpipe.train.loop import STOPPED_EXIT_CODE
from signpipe.train.reporting import read_metrics

RUN = """
import json, sys
from signpipe.fingerspelling.config import resolve_config
from signpipe.fingerspelling.finetune import train_and_evaluate
config = resolve_config("finetune", "smoke", sys.argv[2:])
print(json.dumps(train_and_evaluate(config, sys.argv[1])))
"""

OVERRIDES = [
    "model.layers=1", "model.width=32", "model.heads=2", "model.dropout=0.1", "model.layerdrop=0.2",
    "batch_size=8", "eval_batch_size=8", "max_length=32", "length_bucket=32", "max_label_length=8",
    "warmup_steps=2", "total_steps=12", "log_every=1", "checkpoint_every=4", "eval_every=5", "keep_checkpoints=1",
]  # fmt: skip
COMPARED = ("validation_score", "validation_loss", "best_validation_score", "best_step", "train_loss", "step")


def start(workdir, shards, *extra):
    args = [sys.executable, "-c", RUN, str(workdir), *OVERRIDES, f"data_dir={shards}", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    shards = write_spelling_shards(tmp_path / "shards", n_train=24, n_validation=8)
    # 24 sequences / batch 8 = 3 batches per epoch: the kill and the resume fall in different epochs
    uninterrupted = start(tmp_path / "whole", shards)
    killed = start(tmp_path / "killed", shards, "stop_after_step=7")
    code, out, err = finish(uninterrupted)
    assert code == 0, err
    expected = json.loads(out.splitlines()[-1])
    code, out, err = finish(killed)
    assert code == STOPPED_EXIT_CODE, err
    assert not (tmp_path / "killed" / "final_metrics.json").exists()
    assert max(r["step"] for r in read_metrics(tmp_path / "killed")) == 7

    code, out, err = finish(start(tmp_path / "killed", shards))
    assert code == 0, err
    resumed = json.loads(out.splitlines()[-1])
    assert resumed["resumed_from_step"] == 5 and resumed["steps_run"] == 7
    for key in COMPARED:
        assert resumed[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key

    # the logs: steps 5-7 done twice are logged once, with the values of the uninterrupted run
    whole, again = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "killed")
    assert [r["step"] for r in again] == [r["step"] for r in whole]
    for a, b in zip(whole, again):
        for key in ("train/loss", "train/grad_norm", "validation/score", "validation/loss"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (a["step"], key)

    for use_ema in (True, False):
        a, _, _ = load_finetuned_model(tmp_path / "whole", which="last", use_ema=use_ema)
        b, _, _ = load_finetuned_model(tmp_path / "killed", which="last", use_ema=use_ema)
        for x, y in zip(jax.tree.leaves(nnx.state(a, nnx.Param)), jax.tree.leaves(nnx.state(b, nnx.Param))):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
