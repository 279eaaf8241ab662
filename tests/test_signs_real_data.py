"""The isolated-signs recipe on real data (shared/data/asl-signs-sample: 14 participants, hello and
thankyou): train one fold of the smoke preset on some participants, export it, and score the
bundle the competition's way on the participants it never saw. It must beat the majority-class
baseline clearly. About two minutes on 2 cores, hence slow:

    .venv/bin/pytest -m slow tests/test_signs_real_data.py -s
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signpipe.data.schema import SIGN_MAP_FILE
from signpipe.export.evaluate import evaluate_bundle
from signpipe.signs.config import resolve_config
from signpipe.signs.export import export_ensemble
from signpipe.signs.train import train_and_evaluate

SHARED_MAPS = Path(__file__).parents[2] / "shared" / "data" / "maps"


def held_out_corpus(sample: Path, participants: set[int], root: Path) -> Path:
    """A corpus of the sample's sequences of `participants` only (files copied, map beside them)."""
    metadata = pd.read_csv(sample / "train.csv")
    kept = metadata[metadata["participant_id"].isin(participants)]
    for relative in kept["path"]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample / relative, root / relative)
    kept.to_csv(root / "train.csv", index=False)
    shutil.copyfile(SHARED_MAPS / SIGN_MAP_FILE, root / SIGN_MAP_FILE)
    return root


def competition_accuracy(bundle: Path, corpus: Path) -> float:
    """The scorer as the competition describes it: pandas x, y, z -> [n, 543, 3] -> argmax."""
    from ai_edge_litert.interpreter import Interpreter

    with zipfile.ZipFile(bundle) as archive:
        runner = Interpreter(model_content=archive.read("model.tflite")).get_signature_runner("serving_default")
    sign_map = json.loads((corpus / SIGN_MAP_FILE).read_text())
    hits = []
    for row in pd.read_csv(corpus / "train.csv").itertuples():
        data = pd.read_parquet(corpus / row.path, columns=["x", "y", "z"])
        outputs = runner(inputs=data.to_numpy().reshape(-1, 543, 3).astype(np.float32))["outputs"]
        hits.append(int(np.argmax(outputs)) == sign_map[row.sign])
    return float(np.mean(hits))


@pytest.mark.slow
def test_trained_on_some_participants_beats_the_majority_baseline_on_the_others(signs_sample: Path,
                                                                                tmp_path: Path) -> None:
    config = resolve_config("smoke", ["n_folds=3", "fold=0"], data_dir=str(signs_sample))
    metrics = train_and_evaluate(config, tmp_path / "fold_0")
    assert metrics["y_scale"] > 0.5 and metrics["n_validation_participants"] >= 4

    exported = export_ensemble([tmp_path / "fold_0"], tmp_path / "bundle.zip")
    metadata = pd.read_csv(signs_sample / "train.csv")
    with np.load(tmp_path / "fold_0" / "validation_predictions.npz") as saved:
        unseen = set(metadata[metadata["sequence_id"].isin(saved["sequence_ids"])]["participant_id"])
    trained = set(metadata["participant_id"]) - unseen
    assert len(trained) == metrics["n_train_participants"] and len(unseen) == metrics["n_validation_participants"]
    corpus = held_out_corpus(signs_sample, unseen, tmp_path / "unseen")

    result = evaluate_bundle(exported.path, corpus)
    labels = pd.read_csv(corpus / "train.csv")["sign"]
    baseline = float(labels.value_counts(normalize=True).max())
    print(
        f"\nasl-signs sample: trained on {len(trained)} participants, scored on {len(unseen)} unseen "
        f"({result.n_sequences} sequences): accuracy {result.score:.3f} (top-3 {result.details['top3_accuracy']:.3f}), "
        f"majority baseline {baseline:.3f}; in-training validation {metrics['validation_accuracy']:.3f}; "
        f"y scale {metrics['y_scale']}; model {exported.model_bytes / 1e6:.2f} MB; latency p50 "
        f"{result.latency_ms['p50']} ms"
    )
    assert result.score == pytest.approx(competition_accuracy(exported.path, corpus))
    assert result.score >= baseline + 0.25
