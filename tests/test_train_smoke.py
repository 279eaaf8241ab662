"""The acceptance run: a fresh synthetic corpus, preprocessed as the pipeline does, finetuned with
the `smoke` preset alone (no pretraining), must score at least 0.85 normalized Levenshtein on its
validation split. Minutes on 2 CPU cores, hence slow (`pytest -m slow`)."""

from __future__ import annotations

import time

import pytest

from signpipe.data.synth import generate_fingerspelling
from signpipe.fingerspelling.preprocess import preprocess
from signpipe.fingerspelling.config import resolve_config
from signpipe.fingerspelling.finetune import train_and_evaluate

TARGET_SCORE = 0.85


@pytest.mark.slow
def test_smoke_preset_reaches_the_target_score(tmp_path):
    generate_fingerspelling(tmp_path / "corpus", n_sequences=1600, seed=11)
    manifest = preprocess(tmp_path / "corpus", tmp_path / "shards", validation_fraction=0.05)
    assert manifest["splits"]["validation"]["sequences"] == 80

    started = time.perf_counter()
    metrics = train_and_evaluate(resolve_config("finetune", "smoke", [f"data_dir={tmp_path / 'shards'}"]), tmp_path / "run")
    minutes = (time.perf_counter() - started) / 60
    print(f"smoke finetune: validation score {metrics['validation_score']:.4f} in {minutes:.1f} min", flush=True)
    assert metrics["validation_score"] >= TARGET_SCORE, metrics
