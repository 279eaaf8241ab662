"""The isolated-signs pipeline run locally, as `signpipe run isolated-signs --local` runs it.

Fast: which corpora a local run trains and scores on (synthetic ones from other signers, the
held-out participants of a given corpus, or the given pair). Slow (several minutes on 2 cores):
the smoke preset end to end on the real asl-signs sample; the bundle it publishes is then run by
an independent scorer written here from the competition's description (pandas reads x, y, z of
each long file, reshapes to [n_frames, 543, 3], calls the `serving_default` signature runner of
plain ai_edge_litert, takes the argmax) on the participants the run held out of training.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from pipelines.local import HOLDOUT_FILE, SUMMARY_FILE, prepare_corpora, run_local
from pipelines.presets import preset
from signpipe.data.schema import SIGN_MAP_FILE
from signpipe.errors import ConfigError
from signpipe.registry import LocalModelRegistry


def participants(corpus: Path) -> set[int]:
    return set(pd.read_csv(corpus / "train.csv")["participant_id"])


def quiet() -> Console:
    return Console(record=True, width=160, force_terminal=False)


def test_without_data_the_evaluation_corpus_has_other_signers(tmp_path):
    tiny = SimpleNamespace(synth_sequences=12, synth_participants=3)  # a preset's sizes, small enough for a test
    console = quiet()
    corpus, held_out = prepare_corpora("isolated-signs", tiny, tmp_path, None, None, console)
    assert (corpus, held_out) == (tmp_path / "corpus", tmp_path / "eval-corpus")
    assert len(pd.read_csv(corpus / "train.csv")) == 12 and len(participants(corpus)) == 3
    assert len(pd.read_csv(held_out / "train.csv")) == 20  # at least 20 evaluation sequences
    assert not participants(corpus) & participants(held_out)
    assert "other signers" in console.export_text()


def test_a_corpus_alone_is_split_by_participant(signs_sample, tmp_path):
    console = quiet()
    corpus, held_out = prepare_corpora("isolated-signs", preset("smoke", "isolated-signs"), tmp_path, signs_sample, None,
                                       console)
    assert not participants(corpus) & participants(held_out)
    assert participants(corpus) | participants(held_out) == participants(signs_sample)
    recorded = json.loads((tmp_path / HOLDOUT_FILE).read_text())
    assert set(recorded["held_out_participants"]) == participants(held_out) and Path(recorded["source"]).resolve() == signs_sample.resolve()
    assert "held out of training" in console.export_text()
    # a given evaluation corpus is used as it is
    assert prepare_corpora("isolated-signs", None, tmp_path / "x", signs_sample, held_out, console) == (
        signs_sample.resolve(), held_out.resolve())


def test_a_fingerspelling_corpus_alone_is_split_by_participant_too(tmp_path):
    from signpipe.data.synth import generate_fingerspelling

    spelled = generate_fingerspelling(tmp_path / "spelled", 30, seed=4, n_participants=6).root
    console = quiet()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    corpus, held_out = prepare_corpora("fingerspelling", preset("local", "fingerspelling"), run_dir, spelled, None, console)
    assert (corpus, held_out) == (run_dir / "corpus", run_dir / "eval-corpus")
    assert participants(held_out) and not participants(corpus) & participants(held_out)
    assert participants(corpus) | participants(held_out) == participants(spelled)
    assert json.loads((run_dir / HOLDOUT_FILE).read_text())["held_out_participants"] == sorted(participants(held_out))
    assert "held out of training" in console.export_text()


def test_an_evaluation_corpus_sharing_signers_is_refused_unless_allowed(signs_sample, tmp_path):
    from pipelines.local import check_shared_participants

    console = quiet()
    with pytest.raises(ConfigError, match=r"shares \d+ participant\(s\) with --data.*--allow-shared-participants"):
        run_local("isolated-signs", "smoke", data=signs_sample, eval_data=signs_sample, runs_dir=tmp_path / "runs",
                  console=console)
    assert not (tmp_path / "runs").exists()  # refused before any folder was made
    shared = check_shared_participants(signs_sample, signs_sample, True, console)
    assert shared == len(participants(signs_sample)) and "allowed by allow_shared_participants" in console.export_text()
    assert check_shared_participants(None, signs_sample, False, console) == 0


def test_bad_overrides_fail_before_any_folder_is_made(tmp_path):
    with pytest.raises(ConfigError, match="did you mean epochs"):
        run_local("isolated-signs", "smoke", overrides=["signs.epoch=3"], runs_dir=tmp_path, console=quiet())
    assert not any(tmp_path.iterdir())


def competition_scorer(bundle: Path, corpus: Path, sign_map: dict[str, int]) -> dict[int, str]:
    """sequence id -> predicted sign, the way the asl-signs scorer ran a submission."""
    from ai_edge_litert.interpreter import Interpreter

    with zipfile.ZipFile(bundle) as archive:
        runner = Interpreter(model_content=archive.read("model.tflite")).get_signature_runner("serving_default")
    signs = {index: sign for sign, index in sign_map.items()}
    predicted = {}
    for row in pd.read_csv(corpus / "train.csv").itertuples():
        frames = pd.read_parquet(corpus / row.path, columns=["x", "y", "z"]).to_numpy().reshape(-1, 543, 3)
        outputs = runner(inputs=frames.astype(np.float32))["outputs"]
        predicted[int(row.sequence_id)] = signs[int(np.argmax(outputs))]
    return predicted


@pytest.mark.slow
@pytest.mark.timeout(2700)
def test_smoke_run_on_the_sample_publishes_a_bundle_that_the_scorer_runs_on_unseen_signers(signs_sample, tmp_path):
    runs, console = tmp_path / "runs", quiet()
    run = run_local("isolated-signs", "smoke", data=signs_sample, runs_dir=runs, console=console)
    assert run.succeeded and run.run_dir.name.startswith("isolated-signs-smoke-")

    trained_on, scored_on = participants(run.run_dir / "corpus"), participants(run.run_dir / "eval-corpus")
    assert not trained_on & scored_on and trained_on | scored_on == participants(signs_sample)
    summary = json.loads((run.run_dir / SUMMARY_FILE).read_text())["summary"]
    assert set(summary["held_out_participants"]) == scored_on

    statuses = [(t.task, t.status) for t in run.tasks]
    assert statuses.count(("train-fold", "SUCCESS")) == 3
    assert {task for task, status in statuses if status == "SUCCESS"} >= {
        "validate", "plan-folds", "train-fold", "export-ensemble", "evaluate-signs", "gate-signs", "publish"}
    printed = console.export_text()
    for line in ("score", "top-3 accuracy", "out-of-fold", "evaluated on", "size", "latency", "gate", "champion bundle",
                 "this run's bundle", "train-fold", "publish"):
        assert line in printed, line

    bundle = Path(summary["bundle"])
    sign_map = json.loads((run.run_dir / "eval-corpus" / SIGN_MAP_FILE).read_text())
    predicted = competition_scorer(bundle, run.run_dir / "eval-corpus", sign_map)
    truth = pd.read_csv(run.run_dir / "eval-corpus" / "train.csv").set_index("sequence_id")["sign"]
    accuracy = float(np.mean([predicted[int(s)] == sign for s, sign in truth.items()]))
    evaluated = pd.read_csv(Path(run.outputs["evaluation"]["uri"]) / "predictions.csv")
    assert dict(zip(evaluated["sequence_id"], evaluated["prediction"], strict=True)) == predicted
    assert summary["score"] == pytest.approx(accuracy) and summary["eval_sequences"] == len(truth)
    baseline = float(truth.value_counts(normalize=True).max())
    print(f"\nisolated-signs smoke on the sample: trained on {len(trained_on)} participants, scored on {len(scored_on)} "
          f"unseen ({len(truth)} sequences): accuracy {accuracy:.3f} (majority {baseline:.3f}), top-3 "
          f"{summary['top3_accuracy']:.3f}, out-of-fold {summary['oof_accuracy']:.3f}; {summary['model_mb']} MB, "
          f"mean latency {summary['latency_ms']['mean']} ms; {run.seconds:.0f} s")
    assert accuracy >= baseline + 0.25

    assert 0 < summary["model_mb"] < 40 and 0 < summary["latency_ms"]["mean"] < 100
    assert summary["gate"] == "passed" and summary["published_version"] == summary["champion_version"] == "0001"
    # smoke is a plumbing preset: it publishes into a registry of its own, never the real runs' one
    assert Path(summary["registry"]) == runs / "plumbing-registry" / "isolated-signs"
    champion = LocalModelRegistry(Path(summary["registry"])).champion()
    assert Path(champion.bundle_uri).read_bytes() == bundle.read_bytes()
    assert champion.metadata["preset"] == "smoke"
    assert (Path(champion.uri) / "metrics.jsonl").is_file()  # the first fold's curves, for a later gate to compare

    # the run's page: the majority baseline it beat, the fold pages (.html) and the files, every link resolving
    page = (run.run_dir / "index.html").read_text()
    assert summary["index"] == str(run.run_dir / "index.html") and "run page" in printed
    assert f"baseline {baseline:.4f}: accuracy of always predicting the most frequent sign" in page
    links = re.findall(r'href="([^"]+)"', page)
    assert all((run.run_dir / href).is_file() for href in links), links
    pages = [href for href in links if href.endswith(".html")]
    assert len([href for href in pages if "/train-fold/" in href]) == 3 and any("/evaluate-signs/" in h for h in pages)
    assert any("/gate-signs/report.html" in h for h in pages) and summary["gate_report"].endswith("report.html")
