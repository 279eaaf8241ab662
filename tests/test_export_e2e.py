"""The whole way from a corpus to a scored bundle, as the pipeline runs it: a synthetic corpus in the
Kaggle layout, preprocessed, finetuned with the `smoke` preset (the run of `test_train_smoke.py`,
which is what it takes for the model to emit characters at all), exported with the default
options (fp16, `signpipe export --workdir`), then scored by `signpipe evaluate` and by the
independent scorer of `test_export.py`, and compared with the checkpoint's JAX model. Minutes on
2 CPU cores (training), hence slow."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from flax import nnx
from test_export import kaggle_score

from signpipe.cli import main
from signpipe.data.corpus import open_corpus
from signpipe.data.synth import generate_fingerspelling
from signpipe.fingerspelling.decode import decode_phrases
from signpipe.export.evaluate import evaluate_bundle
from signpipe.landmarks import features
from signpipe.fingerspelling.preprocess import preprocess
from signpipe.fingerspelling.shards import read_manifest
from signpipe.fingerspelling.config import resolve_config
from signpipe.fingerspelling.finetune import load_finetuned_model, train_and_evaluate

pytestmark = pytest.mark.slow

N_SEQUENCES = 800


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("e2e")
    generate_fingerspelling(root / "corpus", N_SEQUENCES, seed=31)
    preprocess(root / "corpus", root / "shards", validation_fraction=0.1)
    metrics = train_and_evaluate(resolve_config("finetune", "smoke", [f"data_dir={root / 'shards'}"]), root / "run")
    assert main(["export", "--workdir", str(root / "run"), "--out", str(root / "bundle.zip")]) == 0
    return {"root": root, "corpus": root / "corpus", "workdir": root / "run", "bundle": root / "bundle.zip", "metrics": metrics}


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_both_scorers_agree_on_the_smoke_trained_bundle(pipeline: dict, capsys) -> None:
    capsys.readouterr()
    assert main(["evaluate", "--model", str(pipeline["bundle"]), "--data", str(pipeline["corpus"])]) == 0
    report = json.loads(capsys.readouterr().out)
    score, predictions = kaggle_score(pipeline["bundle"], pipeline["corpus"])
    assert report["score"] == pytest.approx(score, abs=1e-12)
    assert report["n_sequences"] == N_SEQUENCES
    assert report["model_mb"] < 1.0  # tiny, fp16
    assert sum(bool(p) for p in predictions.values()) > N_SEQUENCES // 2, "the model must emit characters"
    assert score > 0.5, f"smoke-trained model scored {score}"
    print(f"smoke-trained fp16 bundle: score {score:.4f}, validation score in training "
          f"{pipeline['metrics']['validation_score']:.4f}, latency {report['latency_ms']}")  # fmt: skip


def test_bundle_decodes_what_the_checkpoints_jax_model_decodes(pipeline: dict) -> None:
    model, config, _ = load_finetuned_model(pipeline["workdir"])
    y_scale = read_manifest(config.data_dir)["y_scale"]
    corpus = open_corpus(pipeline["corpus"])
    sequences = list(corpus.iter_sequences(points=features.INPUT_POINTS))
    longest = max(s.n_frames for s in sequences)
    graphdef, state = nnx.split(model)
    run = jax.jit(lambda state, x, mask: nnx.merge(graphdef, state)(x, mask, deterministic=True))
    expected = {}
    batch = 100  # masked calls on padded batches of one shape: the encoder ignores padding, jax compiles once
    for start in range(0, len(sequences), batch):
        chunk = sequences[start : start + batch]
        x = np.zeros((batch, longest, features.N_FEATURES), np.float32)
        lengths = np.zeros(batch, np.int64)
        for k, sequence in enumerate(chunk):
            x[k, : sequence.n_frames] = features.featurize(sequence.frames, y_scale, xp=np).reshape(sequence.n_frames, -1)
            lengths[k] = sequence.n_frames
        mask = np.arange(longest)[None, :] < lengths[:, None]
        phrases = decode_phrases(run(state, x, mask), mask, corpus.label_map)
        expected.update({s.sequence_id: p for s, p in zip(chunk, phrases, strict=False)})
    got = {i: p for i, _, p in evaluate_bundle(pipeline["bundle"], pipeline["corpus"]).predictions}
    agreement = np.mean([got[i] == expected[i] for i in expected])
    print(f"JAX (fp32) vs TFLite (fp16) decoded phrases: {agreement:.4f} identical")
    assert agreement >= 0.99
