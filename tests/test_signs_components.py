"""The isolated-signs pipeline's components through their Python functions (`component.python_func`)
with artifacts in temporary folders, and the library code they call: the participant holdout,
the fold plan, the confusion matrix and report, the gate with its mean-latency criterion.

The data, evaluation and gate steps run in seconds on the real asl-signs sample with a toy TFLite
model built here; training two tiny folds for three epochs and converting their ensemble takes about
20 s on 2 cores, so it runs with the default suite too (`make test`, hence in CI)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Markdown, Metrics, Model

from components.publish import publish
from components.signs.evaluate import evaluate_signs
from components.signs.export import export_ensemble
from components.signs.gate import gate_signs
from components.signs.plan import plan_folds
from components.signs.train import train_fold
from signpipe.data.holdout import held_out_participants, split_by_participant
from signpipe.data.schema import N_POINTS, SIGN_MAP_FILE, packaged_map
from signpipe.errors import ConfigError, SignpipeError
from signpipe.signs.gate import (
    LATENCY_CRITERION,
    MAJORITY_CRITERION,
    SignsGateThresholds,
    evaluation_from_dict,
    judge_signs,
)
from signpipe.signs.report import confused_pairs, confusion_matrix, evaluation_report
from signpipe.registry import LocalModelRegistry
from signpipe.signs.fold_plan import check_fold_run, fold_config, read_plan

SIGN_INDEX = packaged_map(SIGN_MAP_FILE)
FAVOURED_SIGN, RUNNER_UP_SIGN = "hello", "thankyou"


def artifact(kind, folder: Path, name: str):
    """An output artifact the way the kfp executor hands it over: a URI whose parent exists."""
    folder.mkdir(parents=True, exist_ok=True)
    return kind(name=name, uri=str(folder / name))


@pytest.fixture(scope="module")
def split(signs_sample, tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    return split_by_participant(signs_sample, root / "train", root / "held-out", fraction=0.2, seed=1)


@pytest.fixture(scope="module")
def train_corpus(split) -> Dataset:
    return Dataset(name="corpus", uri=str(split.train))


@pytest.fixture(scope="module")
def eval_corpus(split) -> Dataset:
    return Dataset(name="eval-corpus", uri=str(split.held_out))


@pytest.fixture(scope="module")
def toy_bundle(tmp_path_factory) -> Model:
    """A bundle with the asl-signs interface whose answer leans on two signs: softmax of a fixed
    bias plus a small term of the mean x of the frames, so it always names `FAVOURED_SIGN`, with
    `RUNNER_UP_SIGN` second (the sample's two signs are then always in its top 3)."""
    import tensorflow as tf

    bias = np.zeros(len(SIGN_INDEX), np.float32)
    bias[SIGN_INDEX[FAVOURED_SIGN]] = 8.0
    bias[SIGN_INDEX[RUNNER_UP_SIGN]] = 4.0
    slope = np.random.default_rng(0).normal(0, 0.1, len(SIGN_INDEX)).astype(np.float32)

    class AlwaysOneSign(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, N_POINTS, 3], tf.float32, name="inputs")])
        def serving_default(self, inputs):
            present = tf.where(tf.math.is_nan(inputs), tf.zeros_like(inputs), inputs)
            mean_x = tf.reduce_mean(present[:, :, 0])
            return {"outputs": tf.nn.softmax(tf.constant(bias) + mean_x * tf.constant(slope))}

    module = AlwaysOneSign()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serving_default.get_concrete_function()], module)
    folder = tmp_path_factory.mktemp("toy-bundle") / "bundle"
    folder.mkdir()
    with zipfile.ZipFile(folder / "model.zip", "w") as archive:
        archive.writestr("model.tflite", converter.convert())
        archive.writestr("inference_args.json", json.dumps({"selected_columns": ["x", "y", "z"]}))
    return Model(name="bundle", uri=str(folder))


@pytest.fixture(scope="module")
def oracle_bundle(eval_corpus, tmp_path_factory) -> Model:
    """A bundle with the asl-signs interface that knows the evaluation corpus' answers: it
    recognizes each sequence by the sums of its present x and y and returns that sequence's sign.
    The one bundle here that beats the corpus' majority-class baseline (a constant answer cannot),
    so the gate can pass and publish."""
    import tensorflow as tf

    rows = pd.read_csv(Path(eval_corpus.path) / "train.csv")
    keys, answers = [], np.zeros((len(rows), len(SIGN_INDEX)), np.float32)
    for k, row in enumerate(rows.itertuples()):
        frames = pd.read_parquet(Path(eval_corpus.path) / row.path, columns=["x", "y"]).to_numpy().reshape(-1, N_POINTS, 2)
        keys.append(np.nansum(frames.astype(np.float64), axis=(0, 1)))
        answers[k, SIGN_INDEX[row.sign]] = 1.0
    keys = np.asarray(keys, np.float32)
    assert len(np.unique(keys.round(1), axis=0)) == len(keys)  # every sequence has its own key

    class KnowsTheAnswers(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, N_POINTS, 3], tf.float32, name="inputs")])
        def serving_default(self, inputs):
            present = tf.where(tf.math.is_nan(inputs), tf.zeros_like(inputs), inputs)
            key = tf.reduce_sum(present[:, :, :2], axis=[0, 1])
            nearest = tf.argmin(tf.reduce_sum(tf.abs(tf.constant(keys) - key), axis=1))
            return {"outputs": tf.gather(tf.constant(answers), nearest)}

    module = KnowsTheAnswers()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serving_default.get_concrete_function()], module)
    folder = tmp_path_factory.mktemp("oracle-bundle") / "bundle"
    folder.mkdir()
    with zipfile.ZipFile(folder / "model.zip", "w") as archive:
        archive.writestr("model.tflite", converter.convert())
        archive.writestr("inference_args.json", json.dumps({"selected_columns": ["x", "y", "z"]}))
    return Model(name="bundle", uri=str(folder))


def evaluate_outputs(bundle: Model, eval_corpus: Dataset, folder: Path) -> dict:
    outputs = {"evaluation": artifact(Artifact, folder, "evaluation"), "metrics": artifact(Metrics, folder, "metrics"),
               "confusion": artifact(ClassificationMetrics, folder, "confusion"), "report": artifact(HTML, folder, "report")}
    evaluate_signs.python_func(bundle=bundle, eval_corpus=eval_corpus, threads=1, **outputs)
    return outputs


@pytest.fixture(scope="module")
def evaluated(toy_bundle, eval_corpus, tmp_path_factory):
    return evaluate_outputs(toy_bundle, eval_corpus, tmp_path_factory.mktemp("evaluate"))


@pytest.fixture(scope="module")
def oracle_evaluated(oracle_bundle, eval_corpus, tmp_path_factory):
    return evaluate_outputs(oracle_bundle, eval_corpus, tmp_path_factory.mktemp("evaluate-oracle"))


# --- holding participants out --------------------------------------------------------------------


def test_holdout_keeps_whole_participants_apart(signs_sample, split):
    source = pd.read_csv(signs_sample / "train.csv")
    train, held = pd.read_csv(split.train / "train.csv"), pd.read_csv(split.held_out / "train.csv")
    assert not set(train["participant_id"]) & set(held["participant_id"])
    assert set(held["participant_id"]) == set(split.held_out_participants) and len(split.held_out_participants) >= 2
    assert sorted([*train["sequence_id"], *held["sequence_id"]]) == sorted(source["sequence_id"])
    assert (split.n_train_sequences, split.n_held_out_sequences) == (len(train), len(held))
    assert 0.1 <= len(held) / len(source) <= 0.35
    assert set(held["sign"]) == set(source["sign"])  # stratified: both signs among the held-out signers
    for corpus, rows in ((split.train, train), (split.held_out, held)):
        assert all((corpus / path).is_file() for path in rows["path"])
        assert json.loads((corpus / SIGN_MAP_FILE).read_text()) == SIGN_INDEX
    # the same seed holds out the same signers; another seed other ones
    metadata = pd.read_csv(signs_sample / "train.csv")
    assert held_out_participants(metadata, 0.2, seed=1).tolist() == list(split.held_out_participants)
    assert any(held_out_participants(metadata, 0.2, seed=s).tolist() != list(split.held_out_participants) for s in (2, 3, 4))


def test_holdout_refuses_what_it_cannot_split(signs_sample, fingerspelling_corpus, tmp_path):
    metadata = pd.read_csv(signs_sample / "train.csv")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        held_out_participants(metadata, 1.0)
    with pytest.raises(ConfigError, match="cannot be split"):
        held_out_participants(metadata[metadata["participant_id"] == 16069], 0.2)
    every_sign_once = pd.DataFrame({"participant_id": [1, 1, 2, 2], "sign": ["go", "dad", "cat", "bye"]})
    with pytest.raises(ConfigError, match="most frequent sign has 1"):
        held_out_participants(every_sign_once, 0.2)
    # fewer signers than 1/fraction groups: larger groups, still whole signers
    four = metadata[metadata["participant_id"].isin([16069, 18796, 22343, 25571])]
    held = held_out_participants(four, 0.2)
    assert len(held) == 1 and set(held) <= {16069, 18796, 22343, 25571}
    # a fingerspelling corpus is split too (tests/test_corpora.py), whole signers apart
    split = split_by_participant(fingerspelling_corpus.root, tmp_path / "a", tmp_path / "b")
    assert split.held_out_participants and not set(split.held_out_participants) & set(split.train_participants)


# --- the fold plan -------------------------------------------------------------------------------


def test_plan_folds_assigns_participants_and_estimates_the_y_scale_once(train_corpus, eval_corpus, split, tmp_path):
    from signpipe.signs.config import resolve_config
    from signpipe.signs.train import prepare_fold

    plan, metrics = artifact(Dataset, tmp_path, "plan"), artifact(Metrics, tmp_path, "metrics")
    folds = plan_folds.python_func(corpus=train_corpus, eval_corpus=eval_corpus, n_folds=3, fold_seed=0, y_scale=0.0,
                                   training_preset="smoke", training_overrides={"epochs": 2}, plan=plan, metrics=metrics)
    assert folds == [0, 1, 2]
    written = read_plan(plan.path)
    validated = [set(f.participants) for f in written.folds]
    assert set().union(*validated) == set(split.train_participants) and sum(map(len, validated)) == len(split.train_participants)
    assert sum(f.n_sequences for f in written.folds) == split.n_train_sequences == metrics.metadata["sequences"]
    assert written.eval_participants == len(split.held_out_participants) and written.eval_participants_in_training == 0
    assert metrics.metadata["eval_participants_in_training"] == 0.0 and metrics.metadata["folds/0/participants"] > 0
    assert plan.metadata["validation_participants"] == {str(f.fold): list(f.participants) for f in written.folds}
    # the y scale a fold run would have estimated by itself, so handing it over changes nothing
    config = resolve_config("smoke", ["n_folds=3", "fold=0"], data_dir=str(split.train))
    assert written.y_scale_estimated and written.y_scale == prepare_fold(config).config.y_scale

    # each fold's config comes from the plan; the plan's keys cannot be overridden
    fold_run = fold_config(written, 2, "smoke", {"epochs": "3"}, split.train)
    assert (fold_run.fold, fold_run.n_folds, fold_run.y_scale, fold_run.epochs) == (2, 3, written.y_scale, 3)
    with pytest.raises(ConfigError, match="n_folds, fold_seed and y_scale"):
        fold_config(written, 0, "smoke", {"n_folds": 2}, split.train)
    with pytest.raises(ConfigError, match="not in the plan"):
        fold_config(written, 3, "smoke", {}, split.train)
    check_fold_run(written, 1, {"n_validation_participants": len(written.folds[1].participants),
                                "n_validation": written.folds[1].n_sequences})
    with pytest.raises(SignpipeError, match="did the corpus change"):
        check_fold_run(written, 1, {"n_validation_participants": 1, "n_validation": 1})


def test_plan_folds_counts_evaluation_signers_seen_in_training_and_checks_overrides(train_corpus, split, tmp_path):
    plan, metrics = artifact(Dataset, tmp_path, "plan"), artifact(Metrics, tmp_path, "metrics")
    plan_folds.python_func(corpus=train_corpus, eval_corpus=train_corpus, n_folds=2, fold_seed=1, y_scale=1.1,
                           training_preset="smoke", training_overrides={}, plan=plan, metrics=metrics)
    written = read_plan(plan.path)
    assert written.eval_participants_in_training == len(split.train_participants)
    assert (written.y_scale, written.y_scale_estimated, written.n_folds) == (1.1, False, 2)
    for overrides, message in (({"fold_seed": 3}, "set by the pipeline"), ({"epoch": 3}, "did you mean epochs")):
        with pytest.raises(ConfigError, match=message):
            plan_folds.python_func(corpus=train_corpus, eval_corpus=train_corpus, n_folds=2, fold_seed=1, y_scale=1.1,
                                   training_preset="smoke", training_overrides=overrides,
                                   plan=artifact(Dataset, tmp_path / "bad", "plan"),
                                   metrics=artifact(Metrics, tmp_path / "bad", "metrics"))
    with pytest.raises(ConfigError, match="no sign has 40 sequences"):
        plan_folds.python_func(corpus=train_corpus, eval_corpus=train_corpus, n_folds=40, fold_seed=1, y_scale=1.1,
                               training_preset="smoke", training_overrides={}, plan=artifact(Dataset, tmp_path / "d", "plan"),
                               metrics=artifact(Metrics, tmp_path / "d", "metrics"))
    with pytest.raises(ConfigError, match="participants cannot fill"):
        plan_folds.python_func(corpus=train_corpus, eval_corpus=train_corpus, n_folds=20, fold_seed=1, y_scale=1.1,
                               training_preset="smoke", training_overrides={}, plan=artifact(Dataset, tmp_path / "c", "plan"),
                               metrics=artifact(Metrics, tmp_path / "c", "metrics"))


# --- evaluation: accuracy, the confusion matrix, the report ---------------------------------------


def test_confusion_matrix_counts_truth_rows_and_predicted_columns_in_map_order():
    signs, counts = confusion_matrix(["go", "dad", "dad", "cat", "go"], ["go", "cat", "dad", "go", "go"],
                                     {"cat": 0, "dad": 1, "go": 2})
    assert signs == ["cat", "dad", "go"]
    assert counts.tolist() == [[0, 0, 1], [1, 1, 0], [0, 0, 2]]
    assert confused_pairs(signs, counts) == [("cat", "go", 1), ("dad", "cat", 1)]
    signs, counts = confusion_matrix(["b", "a"], ["b", "b"])  # no map: by name
    assert signs == ["a", "b"] and counts.tolist() == [[0, 1], [0, 1]]
    with pytest.raises(ValueError, match="2 truths but 1"):
        confusion_matrix(["a", "b"], ["a"])


def test_evaluate_signs_records_accuracy_latency_and_the_confusion_matrix(evaluated, eval_corpus):
    scored = json.loads((Path(evaluated["evaluation"].path) / "evaluation.json").read_text())
    truths = pd.read_csv(Path(eval_corpus.path) / "train.csv")["sign"]
    assert scored["task"] == "isolated-signs" and scored["metric"] == "accuracy" and scored["n_sequences"] == len(truths)
    assert scored["score"] == pytest.approx(float(np.mean(truths == FAVOURED_SIGN)))
    predictions = pd.read_csv(Path(evaluated["evaluation"].path) / "predictions.csv")
    assert set(predictions["prediction"]) == {FAVOURED_SIGN}

    matrix = evaluated["confusion"].metadata["confusionMatrix"]
    names = [spec["displayName"] for spec in matrix["annotationSpecs"]]
    assert names == sorted(set(truths), key=SIGN_INDEX.get)
    counts = np.array([row["row"] for row in matrix["rows"]])
    assert counts.sum() == len(truths) and counts[:, names.index(FAVOURED_SIGN)].sum() == len(truths)
    assert json.loads(Path(evaluated["confusion"].path).read_text())["counts"] == counts.tolist()

    metrics = evaluated["metrics"].metadata
    assert metrics["accuracy"] == scored["score"] and metrics["top3_accuracy"] == 1.0
    assert metrics["latency_ms/mean"] > 0 and metrics["model_mb"] > 0 and metrics["signs"] == len(names)
    assert evaluated["evaluation"].metadata["score"] == scored["score"]
    page = Path(evaluated["report"].path).read_text()
    assert "Per sign, worst first" in page and "Confusion matrix" in page and "thankyou" in page
    assert "Latency per sequence" in page and 'fill="#1a73e8"' in page  # the histogram of each sequence's time
    assert evaluated["report"].uri.endswith("/report.html")


def test_evaluation_report_lists_the_worst_signs_first():
    truths = ["a"] * 3 + ["b"] * 2
    predictions = ["a", "a", "b", "a", "b"]
    signs, counts = confusion_matrix(truths, predictions)
    evaluation = {"score": 0.6, "n_sequences": 5, "latency_ms": {"mean": 1.0, "p50": 1.0, "p95": 2.0, "max": 3.0},
                  "per_sign_accuracy": {"a": {"n": 3, "accuracy": 2 / 3}, "b": {"n": 2, "accuracy": 0.5}}}
    page = evaluation_report(evaluation, signs, counts)
    assert page.index("<td>b</td><td>2</td>") < page.index("<td>a</td><td>3</td>")
    assert "a (1)" in page and "b (1)" in page  # what each is most often taken for


# --- the gate and publish ------------------------------------------------------------------------


def test_judge_signs_adds_the_mean_latency_after_the_size():
    result = judge_signs(12.0, 0.8, 55.0, SignsGateThresholds(min_accuracy=0.5), champion_accuracy=0.78,
                         latency_note="18 sequences, 1 thread")
    names = [c.name for c in result.criteria]
    assert names == ["model size", LATENCY_CRITERION, "accuracy", "accuracy vs champion"]
    assert result.passed
    slow = judge_signs(12.0, 0.8, 150.0, SignsGateThresholds(champion_margin=0.0), champion_accuracy=0.9)
    assert {c.name for c in slow.failed} == {LATENCY_CRITERION, "accuracy vs champion"}
    assert "mean latency per sequence is 150 ms" in slow.markdown()
    unlimited = judge_signs(12.0, 0.8, 1e9, SignsGateThresholds(max_mean_latency_ms=None))
    assert LATENCY_CRITERION not in [c.name for c in unlimited.criteria] and unlimited.passed
    with pytest.raises(ConfigError, match="max_mean_latency_ms"):
        SignsGateThresholds(max_mean_latency_ms=-1.0)
    with pytest.raises(ConfigError, match="max_model_mb"):
        SignsGateThresholds(max_model_mb=0.0)


def test_evaluation_round_trips_through_its_json(evaluated):
    scored = json.loads((Path(evaluated["evaluation"].path) / "evaluation.json").read_text())
    result = evaluation_from_dict(scored)
    assert result.to_dict() == scored
    with pytest.raises(ConfigError, match="missing score"):
        evaluation_from_dict({k: v for k, v in scored.items() if k != "score"})


def gate_outputs(bundle: Model, evaluation: dict, eval_corpus: Dataset, registry: Path, folder: Path, **thresholds):
    outputs = {name: artifact(kind, folder, name) for name, kind in (
        ("verdict", Artifact), ("report", HTML), ("report_markdown", Markdown), ("metrics", Metrics))}
    settings = {"min_accuracy": 0.0, "max_model_mb": 40.0, "max_mean_latency_ms": 100.0, "champion_margin": 0.0,
                **thresholds}
    passed = gate_signs.python_func(bundle=bundle, evaluation=evaluation["evaluation"], eval_corpus=eval_corpus,
                                    registry=str(registry), registry_storage="", **settings, **outputs)
    return passed, outputs


def test_gate_holds_back_a_constant_answer_at_the_majority_baseline(toy_bundle, evaluated, eval_corpus, tmp_path):
    """The toy always names one sign: it scores that sign's share of the held-out signers (0.5 of
    two balanced signs here), clears a zero floor and every limit, and fails only the baseline."""
    baseline = float(pd.read_csv(Path(eval_corpus.path) / "train.csv")["sign"].value_counts(normalize=True).max())
    passed, outputs = gate_outputs(toy_bundle, evaluated, eval_corpus, tmp_path / "registry", tmp_path / "gate")
    verdict = json.loads(Path(outputs["verdict"].path).read_text())
    assert not passed and outputs["verdict"].metadata["failed"] == [MAJORITY_CRITERION]
    assert [c["name"] for c in verdict["criteria"]] == ["model size", LATENCY_CRITERION, "accuracy", MAJORITY_CRITERION]
    majority = verdict["criteria"][-1]
    assert (majority["measured"], majority["threshold"], majority["comparison"]) == (pytest.approx(baseline), baseline, ">")
    assert outputs["verdict"].metadata["majority_baseline"] == outputs["metrics"].metadata["majority_baseline"] == baseline
    report = Path(outputs["report_markdown"].path).read_text()
    assert report.startswith("# Gate: FAIL") and f"Failed: {MAJORITY_CRITERION} is 0.5, needs > 0.5" in report
    assert "FAILED" in Path(outputs["report"].path).read_text()


def test_gate_then_publish_against_the_champion(oracle_bundle, oracle_evaluated, eval_corpus, tmp_path):
    registry = tmp_path / "registry"

    def run_gate(folder: Path, **thresholds):
        return gate_outputs(oracle_bundle, oracle_evaluated, eval_corpus, registry, folder, **thresholds)

    passed, outputs = run_gate(tmp_path / "first")
    verdict = json.loads(Path(outputs["verdict"].path).read_text())
    assert passed and verdict["champion"] is None and verdict["criteria"][2]["measured"] == 1.0
    assert [c["name"] for c in verdict["criteria"]] == ["model size", LATENCY_CRITERION, "accuracy", MAJORITY_CRITERION]
    assert outputs["metrics"].metadata[LATENCY_CRITERION] > 0
    assert Path(outputs["report_markdown"].path).read_text().startswith("# Gate: PASS")

    published = artifact(Artifact, tmp_path / "publish", "published")
    publish.python_func(bundle=oracle_bundle, evaluation=oracle_evaluated["evaluation"], verdict=outputs["verdict"],
                        registry=str(registry), registry_storage="", champion_margin=0.0, labels={"preset": "smoke"},
                        run_name="run-1", published=published)
    champion = LocalModelRegistry(registry).champion()
    assert published.metadata["champion"] and champion.version == "0001"

    # the same bundle against itself as champion passes; tight limits fail on what they name
    passed, outputs = run_gate(tmp_path / "second")
    verdict = json.loads(Path(outputs["verdict"].path).read_text())
    assert passed and verdict["champion"]["version"] == "0001"
    assert "accuracy vs champion" in [c["name"] for c in verdict["criteria"]]
    passed, outputs = run_gate(tmp_path / "tight", min_accuracy=1.01, max_model_mb=1e-4, max_mean_latency_ms=1e-6)
    assert not passed
    assert set(outputs["verdict"].metadata["failed"]) == {"model size", LATENCY_CRITERION, "accuracy"}
    assert "FAILED" in Path(outputs["report"].path).read_text()


# --- the training chain: two tiny folds, three epochs ----------------------------------------------

TINY = {"width": 32, "heads": 4, "epochs": 3, "batch_size": 8, "eval_batch_size": 16, "length_bucket": 16,
        "checkpoint_every": 100, "log_every": 5}


def test_train_two_folds_then_export_their_ensemble(train_corpus, eval_corpus, tmp_path):
    from signpipe.export.evaluate import evaluate_bundle

    plan = artifact(Dataset, tmp_path / "plan", "plan")
    folds = plan_folds.python_func(corpus=train_corpus, eval_corpus=eval_corpus, n_folds=2, fold_seed=0, y_scale=0.0,
                                   training_preset="smoke", training_overrides=TINY, plan=plan,
                                   metrics=artifact(Metrics, tmp_path / "plan", "metrics"))
    models = []
    for fold in folds:
        folder = tmp_path / f"fold-{fold}"
        outputs = {name: artifact(kind, folder, name) for name, kind in (("model", Model), ("metrics", Metrics), ("report", HTML))}
        train_fold.python_func(corpus=train_corpus, plan=plan, fold=fold, preset="smoke", overrides=TINY, **outputs)
        model = outputs["model"]
        assert model.metadata["fold"] == fold and model.metadata["validation_participants"] == list(
            read_plan(plan.path).folds[fold].participants)
        assert model.metadata["y_scale"] == read_plan(plan.path).y_scale
        assert 0.0 <= outputs["metrics"].metadata["validation_accuracy"] <= 1.0
        assert "<svg" in Path(outputs["report"].path).read_text()
        models.append(model)

    bundle, metrics = artifact(Model, tmp_path / "export", "bundle"), artifact(Metrics, tmp_path / "export", "metrics")
    export_ensemble.python_func(folds=models[::-1], quantize="fp16", checkpoint="last", bundle=bundle, metrics=metrics)
    assert bundle.metadata["n_folds"] == 2 and bundle.metadata["file"] == "model.zip"
    assert 0 < bundle.metadata["model_mb"] < 40 and metrics.metadata["n_sequences"] == len(
        pd.read_csv(Path(train_corpus.path) / "train.csv"))
    assert 0.0 <= bundle.metadata["oof_accuracy"] == metrics.metadata["oof_accuracy"] <= 1.0
    result = evaluate_bundle(Path(bundle.path) / "model.zip", eval_corpus.path)
    assert result.n_sequences == len(pd.read_csv(Path(eval_corpus.path) / "train.csv"))
