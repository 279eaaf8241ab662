"""One test per pipeline component, through its Python function (`component.python_func`) with
artifact objects pointing at temporary folders: what each stage writes, and what it records as
artifact metadata and metrics.

The data stages run in seconds; the chain from finetuning to the gate trains tiny models for two
steps on 24 sequences and converts one to TFLite: about half a minute on 2 cores, so it runs with the
default suite (`make test`, hence in CI). The promotion guard has a test of its own with two real
bundles whose order is known by construction: a model worse than the champion must fail the gate on
its "vs champion" criterion and leave the champion in place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from kfp.dsl import HTML, Artifact, Dataset, Markdown, Metrics, Model

from components.aspect import estimate_y_scale
from components.fingerspelling.align import align
from components.fingerspelling.distill import distill
from components.fingerspelling.evaluate import evaluate
from components.fingerspelling.export import export
from components.fingerspelling.finetune import finetune
from components.fingerspelling.gate import gate
from components.fingerspelling.noisy_student import noisy_student
from components.fingerspelling.preprocess import gather_shards, plan_shards, write_shard
from components.fingerspelling.pretrain import pretrain, pretrain_on_custom_job
from components.publish import publish
from components.validate import validate
from signpipe.errors import CorpusError, SignpipeError
from signpipe.registry import LocalModelRegistry

TRAIN_FAST = {"total_steps": 2, "warmup_steps": 0, "batch_size": 4, "eval_batch_size": 8, "max_length": 32, "length_bucket": 16,
              "eval_every": 2, "checkpoint_every": 2, "log_every": 1}


def artifact(kind, folder: Path, name: str):
    """An output artifact the way the kfp executor hands it over: a URI whose parent exists."""
    folder.mkdir(parents=True, exist_ok=True)
    return kind(name=name, uri=str(folder / name))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Dataset:
    from signpipe.data.synth import generate_fingerspelling

    root = tmp_path_factory.mktemp("corpus") / "fingerspelling"
    generate_fingerspelling(root, 24, seed=3)
    return Dataset(name="corpus", uri=str(root))


def run_preprocess(corpus: Dataset, folder: Path, y_scale: float = 0.6) -> tuple[list[int], Dataset, list[Dataset], Dataset, Metrics]:
    plan = artifact(Dataset, folder / "plan-shards", "plan")
    indices = plan_shards.python_func(corpus=corpus, n_shards=1, validation_fraction=0.25, group_by_participant=False,
                                      split_seed=42, plan=plan)
    shards = []
    for index in indices:
        shard = artifact(Dataset, folder / f"iteration-{index}", "shard")
        write_shard.python_func(plan=plan, index=index, shard=shard)
        shards.append(shard)
    features = artifact(Dataset, folder / "gather", "features")
    metrics = artifact(Metrics, folder / "gather", "metrics")
    gather_shards.python_func(plan=plan, shards=shards, y_scale=y_scale, features=features, metrics=metrics)
    return indices, plan, shards, features, metrics


@pytest.fixture(scope="module")
def features(corpus, tmp_path_factory) -> Dataset:
    return run_preprocess(corpus, tmp_path_factory.mktemp("preprocess"))[3]


def test_validate_records_the_corpus_and_fails_on_a_broken_one(corpus, tmp_path):
    summary, report = artifact(Metrics, tmp_path, "summary"), artifact(Markdown, tmp_path, "report")
    assert validate.python_func(corpus=corpus, summary=summary, report=report) == 24
    assert summary.metadata["train/sequences"] == 24.0 and summary.metadata["kind"] == "fingerspelling"
    assert Path(report.path).read_text().startswith("# Corpus validation: OK")
    broken = tmp_path / "broken"
    shutil.copytree(corpus.path, broken)
    for landmarks in (broken / "train_landmarks").glob("*.parquet"):
        landmarks.unlink()
    report = artifact(Markdown, tmp_path / "b", "report")
    with pytest.raises(CorpusError):
        validate.python_func(corpus=Dataset(name="c", uri=str(broken)), summary=artifact(Metrics, tmp_path / "b", "s"), report=report)
    assert "FAILED" in Path(report.path).read_text()


def test_estimate_y_scale_returns_the_planted_aspect(corpus, tmp_path):
    from signpipe.data.synth import planted_y_scale

    estimate, metrics = artifact(Artifact, tmp_path, "estimate"), artifact(Metrics, tmp_path, "metrics")
    y_scale = estimate_y_scale.python_func(corpus=corpus, method="rigid", estimate=estimate, metrics=metrics)
    assert y_scale == pytest.approx(planted_y_scale(corpus.path), rel=0.05)
    assert json.loads(Path(estimate.path).read_text())["y_scale"] == y_scale == estimate.metadata["y_scale"]
    assert metrics.metadata["y_scale"] == y_scale and metrics.metadata["ci_low"] <= y_scale <= metrics.metadata["ci_high"]


def test_plan_shards_splits_and_lists_shard_indices(corpus, tmp_path):
    plan = artifact(Dataset, tmp_path, "plan")
    indices = plan_shards.python_func(corpus=corpus, n_shards=2, validation_fraction=0.25, group_by_participant=False,
                                      split_seed=42, plan=plan)
    planned = json.loads((Path(plan.path) / "plan.json").read_text())
    assert indices == list(range(len(planned["shards"]))) and len(indices) == 4  # 2 per split
    assert plan.metadata["sequences"] == {"train": 18, "validation": 6}


def test_write_shard_writes_one_shard_with_its_statistics(corpus, tmp_path):
    plan = artifact(Dataset, tmp_path, "plan")
    plan_shards.python_func(corpus=corpus, n_shards=1, validation_fraction=0.25, group_by_participant=False, split_seed=42,
                            plan=plan)
    shard = artifact(Dataset, tmp_path / "one", "shard")
    write_shard.python_func(plan=plan, index=1, shard=shard)
    stats = json.loads((Path(shard.path) / "shard_stats.json").read_text())
    assert (Path(shard.path) / stats["name"]).is_file()
    assert shard.metadata == {"name": "validation-00000.parquet", "split": "validation", "sequences": 6,
                              "frames": sum(stats["n_frames"])}


def test_gather_shards_assembles_one_shard_directory(corpus, tmp_path):
    from signpipe.fingerspelling.shards import load_split, read_manifest

    indices, _, shards, features, metrics = run_preprocess(corpus, tmp_path, y_scale=0.61)
    manifest = read_manifest(features.path)
    assert manifest["y_scale"] == 0.61 == features.metadata["y_scale"]
    assert features.metadata["sequences"] == {"train": 18, "validation": 6}
    assert len(load_split(features.path, "train")) == 18 and len(indices) == len(shards) == 2
    assert metrics.metadata["train/sequences"] == 18.0


def test_pretrain_on_custom_job_records_what_the_job_left(features, tmp_path, monkeypatch):
    """The launcher's artifact side; the job request itself is tested in test_vertex_requests."""
    calls = []

    def finished_job(stage, data_dir, workdir, preset, overrides, image_uri, machine, vertex, run_name, task_name):
        calls.append((stage, data_dir, workdir, preset, overrides, image_uri, machine["tpu_topology"], vertex["project"],
                      run_name, task_name))
        Path(workdir).mkdir(parents=True)
        (Path(workdir) / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "train/loss": 1.0 / s}) + "\n" for s in (1, 2)))
        return {"step": 2, "train_loss": 0.5, "n_sequences": 18}

    monkeypatch.setattr("signpipe.custom_jobs.run_training_custom_job", finished_job)
    model, metrics, report = (artifact(k, tmp_path, n) for k, n in ((Model, "model"), (Metrics, "metrics"), (HTML, "report")))
    machine = {"machine_type": "ct5lp-hightpu-4t", "tpu_topology": "2x2"}
    pretrain_on_custom_job.python_func(features=features, preset="small", overrides={"total_steps": 2}, image_uri="r/tpu:t",
                                       machine=machine, vertex={"project": "p"}, run_name="run-1", task_name="pretrain-on-custom-job",
                                       model=model, metrics=metrics, report=report)
    assert calls == [("pretrain", features.path, model.path, "small", {"total_steps": 2}, "r/tpu:t", "2x2", "p", "run-1",
                      "pretrain-on-custom-job")]
    assert metrics.metadata == {"step": 2.0, "train_loss": 0.5, "n_sequences": 18.0}
    assert model.metadata["machine"] == machine and model.metadata["tensorboard_logdir"] == f"{model.uri}/tb"
    assert "<svg" in Path(report.path).read_text()


def test_publish_promotes_in_the_local_registry(tmp_path):
    bundle = artifact(Model, tmp_path, "bundle")
    Path(bundle.path).mkdir()
    (Path(bundle.path) / "model.zip").write_bytes(b"bundle")
    evaluation = artifact(Artifact, tmp_path, "evaluation")
    Path(evaluation.path).mkdir()
    (Path(evaluation.path) / "evaluation.json").write_text(json.dumps({"score": 0.4, "metric": "normalized_levenshtein"}))
    verdict = artifact(Artifact, tmp_path, "verdict")
    Path(verdict.path).write_text(json.dumps({"passed": True, "champion": None}))
    registry = tmp_path / "registry"
    published = artifact(Artifact, tmp_path / "p1", "published")
    publish.python_func(bundle=bundle, evaluation=evaluation, verdict=verdict, registry=str(registry), registry_storage="",
                        champion_margin=0.0, labels={"preset": "smoke"}, run_name="run-1", published=published)
    assert published.metadata["version"] == "0001" and published.metadata["champion"]
    champion = LocalModelRegistry(registry).champion()
    assert champion.metadata == {"preset": "smoke", "run": "run-1"}
    assert Path(champion.bundle_uri).read_bytes() == b"bundle"
    # a second model judged against "no champion" meets champion 0001 at publish time and loses
    (Path(evaluation.path) / "evaluation.json").write_text(json.dumps({"score": 0.3}))
    published = artifact(Artifact, tmp_path / "p2", "published")
    publish.python_func(bundle=bundle, evaluation=evaluation, verdict=verdict, registry=str(registry), registry_storage="",
                        champion_margin=0.0, labels={}, run_name="run-2", published=published)
    assert published.metadata["version"] == "0002" and not published.metadata["champion"]
    assert LocalModelRegistry(registry).champion().version == "0001"
    # a verdict that did not pass is never published, whatever calls publish
    Path(verdict.path).write_text(json.dumps({"passed": False, "champion": None, "criteria": [
        {"name": "normalized_levenshtein", "passed": False}, {"name": "model size", "passed": True}]}))
    with pytest.raises(SignpipeError, match=r"did not pass this bundle \(normalized_levenshtein\)"):
        publish.python_func(bundle=bundle, evaluation=evaluation, verdict=verdict, registry=str(registry), registry_storage="",
                            champion_margin=0.0, labels={}, run_name="run-3", published=artifact(Artifact, tmp_path / "p3", "published"))
    assert [v.version for v in LocalModelRegistry(registry).versions()] == ["0001", "0002"]


# --- the training chain: two steps per stage, tiny models ---------------------------------------


@pytest.fixture(scope="module")
def teacher(features, tmp_path_factory):
    folder = tmp_path_factory.mktemp("finetune")
    outputs = {name: artifact(kind, folder, name) for name, kind in (("model", Model), ("metrics", Metrics), ("report", HTML))}
    finetune.python_func(features=features, preset="smoke", overrides=TRAIN_FAST, **outputs)
    return outputs


@pytest.fixture(scope="module")
def alignments(features, teacher, tmp_path_factory):
    folder = tmp_path_factory.mktemp("align")
    outputs = {name: artifact(kind, folder, name) for name, kind in (("alignments", Dataset), ("metrics", Metrics), ("report", HTML))}
    align.python_func(features=features, teacher=teacher["model"], min_confidence=0.0, min_character_confidence=0.0, **outputs)
    return outputs


@pytest.fixture(scope="module")
def student(features, alignments, teacher, tmp_path_factory):
    folder = tmp_path_factory.mktemp("distill")
    outputs = {name: artifact(kind, folder, name) for name, kind in (("model", Model), ("metrics", Metrics), ("report", HTML))}
    distill.python_func(features=features, teacher=teacher["model"], preset="smoke", overrides=TRAIN_FAST,
                        alignments=alignments["alignments"], **outputs)
    return outputs


@pytest.fixture(scope="module")
def bundle(features, student, tmp_path_factory):
    exported = artifact(Model, tmp_path_factory.mktemp("export"), "bundle")
    export.python_func(student=student["model"], features=features, quantize="fp16", graph="dynamic", bundle=exported)
    return exported


@pytest.fixture(scope="module")
def evaluation(bundle, corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    outputs = {"evaluation": artifact(Artifact, folder, "evaluation"), "metrics": artifact(Metrics, folder, "metrics"),
               "report": artifact(HTML, folder, "report")}
    evaluate.python_func(bundle=bundle, eval_corpus=corpus, threads=1, **outputs)
    return outputs


def test_pretrain_leaves_a_workdir_with_curves(features, tmp_path):
    outputs = {name: artifact(kind, tmp_path, name) for name, kind in (("model", Model), ("metrics", Metrics), ("report", HTML))}
    overrides = {key: value for key, value in TRAIN_FAST.items() if key not in ("eval_batch_size", "eval_every")}
    pretrain.python_func(features=features, preset="smoke", overrides=overrides, **outputs)
    assert (Path(outputs["model"].path) / "final_metrics.json").is_file()
    assert any((Path(outputs["model"].path) / "tb").iterdir())
    assert outputs["model"].metadata["step"] == 2 and outputs["metrics"].metadata["step"] == 2.0
    assert Path(outputs["report"].path).read_text().count("<svg") >= 2


def test_finetune_from_features(teacher):
    model, metrics, report = teacher["model"], teacher["metrics"], teacher["report"]
    assert model.metadata["stage"] == "finetune" and model.metadata["step"] == 2 and not model.metadata["pretrained"]
    assert (Path(model.path) / "checkpoints").is_dir() and (Path(model.path) / "tb").is_dir()
    assert "validation_score" in metrics.metadata and metrics.metadata["n_train"] == 18.0
    page = Path(report.path).read_text()
    assert "train/loss" in page and "<svg" in page


def test_align_writes_the_artifact_and_examples(alignments):
    from signpipe.fingerspelling.align import read_alignments

    records = read_alignments(alignments["alignments"].path)
    assert len(records) == 18 == alignments["alignments"].metadata["sequences"]
    assert alignments["metrics"].metadata["train/sequences"] == 18.0
    assert alignments["report"].path and "<table>" in Path(alignments["report"].path).read_text()


def test_noisy_student_trains_on_cutmix_batches(features, alignments, tmp_path):
    outputs = {name: artifact(kind, tmp_path, name) for name, kind in (("model", Model), ("metrics", Metrics), ("report", HTML))}
    noisy_student.python_func(features=features, alignments=alignments["alignments"], preset="smoke", overrides=TRAIN_FAST,
                              **outputs)
    assert outputs["model"].metadata["stage"] == "noisy_student" and outputs["model"].metadata["step"] == 2
    assert outputs["model"].metadata["cutmix_probability"] > 0
    assert (Path(outputs["model"].path) / "final_metrics.json").is_file()


def test_distill_trains_the_student_from_the_teacher(student, teacher):
    assert student["model"].metadata["stage"] == "distill" and student["model"].metadata["kd_weight"] == 10.0
    config = json.loads((Path(student["model"].path) / "config.json").read_text())
    assert config["teacher"] == teacher["model"].path


def test_export_writes_the_kaggle_bundle(bundle, features):
    from signpipe.export.bundle import read_bundle
    from signpipe.fingerspelling.shards import read_manifest

    read = read_bundle(Path(bundle.path) / "model.zip")
    assert bundle.metadata["quantize"] == "fp16" and bundle.metadata["graph"] == "dynamic"
    assert bundle.metadata["y_scale"] == read_manifest(features.path)["y_scale"]
    assert bundle.metadata["model_bytes"] == read.model_bytes and bundle.metadata["file"] == "model.zip"


def test_evaluate_scores_the_bundle_on_the_corpus(evaluation):
    scored = json.loads((Path(evaluation["evaluation"].path) / "evaluation.json").read_text())
    assert scored["n_sequences"] == 24 and scored["score"] <= 1.0  # 1 - distance / length: negative when worse than empty
    predictions = (Path(evaluation["evaluation"].path) / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "sequence_id,truth,prediction,latency_ms" and len(predictions) == 25
    assert all(float(line.rsplit(",", 1)[1]) > 0 for line in predictions[1:])
    assert evaluation["report"].uri.endswith("/report.html") and evaluation["report"].path.endswith("report.html")
    page = Path(evaluation["report"].path).read_text()
    for section in ("Score by phrase kind", "Score by phrase length", "Best predictions", "Worst predictions",
                    "Most confused characters", "Latency per sequence", "empty outputs"):
        assert section in page, section
    assert evaluation["metrics"].metadata["score"] == scored["score"] == evaluation["evaluation"].metadata["score"]
    assert evaluation["metrics"].metadata["latency_ms/p95"] > 0


def test_gate_judges_against_thresholds_and_the_champion(bundle, evaluation, corpus, tmp_path):
    registry = tmp_path / "registry"

    def run_gate(folder: Path, **thresholds):
        outputs = {name: artifact(kind, folder, name) for name, kind in (
            ("verdict", Artifact), ("report", HTML), ("report_markdown", Markdown), ("metrics", Metrics))}
        settings = {"min_score": -1.0, "max_model_mb": 40.0, "max_latency_p95_ms": 0.0, "latency_frames": 16,
                    "champion_margin": 0.0, **thresholds}
        passed = gate.python_func(bundle=bundle, evaluation=evaluation["evaluation"], eval_corpus=corpus, registry=str(registry),
                                  registry_storage="", **settings, **outputs)
        return passed, outputs

    passed, outputs = run_gate(tmp_path / "first")
    assert passed and {key: outputs["verdict"].metadata[key] for key in ("passed", "champion_version", "failed")} == {
        "passed": True, "champion_version": "", "failed": []}
    assert "none yet" in Path(outputs["report"].path).read_text()
    assert Path(outputs["report_markdown"].path).read_text().startswith("# Gate: PASS")
    scored = json.loads((Path(evaluation["evaluation"].path) / "evaluation.json").read_text())
    LocalModelRegistry(registry).publish(Path(bundle.path) / "model.zip", scored)
    passed, outputs = run_gate(tmp_path / "second", max_latency_p95_ms=10_000.0)
    verdict = json.loads(Path(outputs["verdict"].path).read_text())
    assert passed and verdict["champion"]["version"] == "0001"
    assert {c["name"] for c in verdict["criteria"]} >= {"latency p95", "normalized_levenshtein vs champion"}
    passed, outputs = run_gate(tmp_path / "tight", min_score=1.5, max_model_mb=0.001)
    assert not passed
    assert set(outputs["verdict"].metadata["failed"]) == {"model size", "normalized_levenshtein"}
    assert outputs["metrics"].metadata["passed"] == 0.0
    assert "FAILED" in Path(outputs["report"].path).read_text()


# --- promotion: a model worse than the champion is refused -------------------------------------


def hand_set_bundle(folder: Path, corpus: Dataset, babbling: bool) -> Model:
    """A real bundle (the tiny CTC model converted to TFLite, scored for real) whose quality is known
    without training. Mute: the blank wins every frame, so it spells nothing, which scores exactly 0.
    Babbling: the blank never wins and the head's weights are scaled up, so the winning character
    changes from frame to frame; more characters come out than the phrases have, and extra
    characters cost as much as missing ones, so it scores below 0: worse than mute."""
    import jax.numpy as jnp
    from flax import nnx

    from signpipe.data.synth import planted_y_scale
    from signpipe.fingerspelling.export import export_model
    from signpipe.fingerspelling.model import build_ctc_model, model_config

    model = build_ctc_model(model_config("tiny"), rngs=nnx.Rngs(params=1, dropout=1))
    head, blank = model.ctc_head.projection, model.config.blank_index
    head.kernel[...] = head.kernel[...] * 100.0 if babbling else jnp.zeros_like(head.kernel[...])
    head.bias[...] = jnp.zeros_like(head.bias[...]).at[blank].set(-1000.0 if babbling else 10.0)
    bundle = artifact(Model, folder, "bundle")
    export_model(model, planted_y_scale(corpus.path), Path(bundle.path) / "model.zip", quantize="none", graph="dynamic")
    return bundle


def test_gate_refuses_a_model_worse_than_the_champion_and_the_champion_stays(corpus, tmp_path):
    registry = tmp_path / "registry"
    bundles, evaluations = {}, {}
    for name in ("mute", "babbling"):
        bundles[name] = hand_set_bundle(tmp_path / name, corpus, babbling=name == "babbling")
        evaluations[name] = artifact(Artifact, tmp_path / f"evaluate-{name}", "evaluation")
        evaluate.python_func(bundle=bundles[name], eval_corpus=corpus, threads=1, evaluation=evaluations[name],
                             metrics=artifact(Metrics, tmp_path / f"evaluate-{name}", "metrics"),
                             report=artifact(HTML, tmp_path / f"evaluate-{name}", "report"))
    mute_score, babbling_score = (evaluations[name].metadata["score"] for name in ("mute", "babbling"))
    assert mute_score == 0.0 and babbling_score < -0.1, (mute_score, babbling_score)

    def run_gate(name: str, folder: str, champion_margin: float = 0.0):
        outputs = {key: artifact(kind, tmp_path / folder, key) for key, kind in (
            ("verdict", Artifact), ("report", HTML), ("report_markdown", Markdown), ("metrics", Metrics))}
        passed = gate.python_func(bundle=bundles[name], evaluation=evaluations[name], eval_corpus=corpus,
                                  registry=str(registry), registry_storage="", min_score=-100.0, max_model_mb=40.0,
                                  max_latency_p95_ms=0.0, latency_frames=16, champion_margin=champion_margin, **outputs)
        return passed, json.loads(Path(outputs["verdict"].path).read_text()), outputs

    def run_publish(name: str, verdict: Artifact, run_name: str) -> Artifact:
        published = artifact(Artifact, tmp_path / f"publish-{run_name}", "published")
        publish.python_func(bundle=bundles[name], evaluation=evaluations[name], verdict=verdict, registry=str(registry),
                            registry_storage="", champion_margin=0.0, labels={}, run_name=run_name, published=published)
        return published

    passed, verdict, outputs = run_gate("mute", "gate-mute")  # no champion yet
    assert passed and verdict["champion"] is None
    assert run_publish("mute", outputs["verdict"], "run-1").metadata["champion"]
    champion = LocalModelRegistry(registry).champion()
    assert champion.version == "0001"

    # the worse model meets every threshold but one: the champion, scored again on the same corpus
    passed, verdict, outputs = run_gate("babbling", "gate-babbling")
    assert not passed and verdict["champion"]["version"] == "0001"
    assert outputs["verdict"].metadata["passed"] is False and outputs["verdict"].metadata["champion_version"] == "0001"
    assert outputs["verdict"].metadata["failed"] == ["normalized_levenshtein vs champion"]
    (failed,) = [c for c in verdict["criteria"] if not c["passed"]]
    assert failed["measured"] == pytest.approx(babbling_score) and failed["threshold"] == pytest.approx(mute_score)
    assert outputs["metrics"].metadata["passed"] == 0.0
    markdown = Path(outputs["report_markdown"].path).read_text()
    assert markdown.startswith("# Gate: FAIL") and "Failed: normalized_levenshtein vs champion is" in markdown
    assert "FAILED" in Path(outputs["report"].path).read_text()
    # the pipeline publishes only when the gate passed (test_pipeline_compile checks the condition,
    # test_local_run a failed gate): the registry is as it was
    assert LocalModelRegistry(registry).champion() == champion
    assert [v.version for v in LocalModelRegistry(registry).versions()] == ["0001"]

    # the criterion is what held it back: a margin wider than the gap lets it through
    assert run_gate("babbling", "gate-babbling-margin", champion_margin=mute_score - babbling_score + 0.01)[0]

    # the other way round, the better model replaces the worse champion
    registry = tmp_path / "registry-babbling"
    passed, _, outputs = run_gate("babbling", "gate-babbling-first")
    assert passed and run_publish("babbling", outputs["verdict"], "run-2").metadata["champion"]
    passed, verdict, outputs = run_gate("mute", "gate-mute-second")
    assert passed and verdict["champion"]["version"] == "0001"
    compared = next(c for c in verdict["criteria"] if c["name"] == "normalized_levenshtein vs champion")
    assert compared["passed"] and compared["threshold"] == pytest.approx(babbling_score)
    published = run_publish("mute", outputs["verdict"], "run-3")
    assert published.metadata["version"] == "0002" and published.metadata["champion"]
    assert LocalModelRegistry(registry).champion().version == "0002"


def test_reports_flatten_metrics_and_draw_curves(tmp_path):
    from signpipe.reports import line_chart_svg, metric_series, scalar_metrics, training_report

    assert scalar_metrics({"a": 1, "b": {"c": 2.5, "d": "text", "e": float("nan")}, "f": True, "g": None}) == {
        "a": 1.0, "b/c": 2.5, "f": 1.0}
    series = metric_series([{"step": 1, "train/loss": 2.0}, {"step": 2, "train/loss": "nan"}, {"step": 3, "train/loss": 1.0},
                            {"step": 3, "validation/score": 0.5}])
    assert series["train/loss"][0].tolist() == [1.0, 3.0] and series["validation/score"][1].tolist() == [0.5]
    chart = line_chart_svg({"loss": series["train/loss"]}, "loss")
    assert chart.startswith("<svg") and "<polyline" in chart
    assert "no data" in line_chart_svg({}, "empty")
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "train/loss": 3.0}\n{"step": 2, "train/loss": 2.0}\n')
    page = training_report(tmp_path, "finetune <teacher>", {"step": 2, "nested": {"x": 1}})
    assert "finetune &lt;teacher&gt;" in page and page.count("<svg") == 1 and "nested" not in page
