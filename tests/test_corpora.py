"""The corpora a run reads: fingerprints that drive caching and lineage, held-out signers, and the
head of both DAGs (`pipelines.corpora`).

- `signpipe.data.fingerprint`: what changes a fingerprint (metadata content, a landmark file's
  size or time, an object's checksum) and what does not (hidden files, the folder's location);
  the cache period.
- `signpipe.data.holdout` on fingerspelling corpora: whole participants apart, every sequence
  kept once, landmarks unchanged; `shared_participants`.
- the components of the head through their functions; the compiled specs (every step reading a
  corpus takes its fingerprint, the fingerprint step is never cached, both forms' parameters);
- kfp's local cache over the head of the DAG: an unchanged corpus is a cache hit, one parquet
  file changed recomputes from the first step that reads it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from kfp.dsl import Artifact, Dataset, Markdown, Metrics

from components.corpus import check_held_out, fingerprint_corpus, hold_out_participants
from pipelines.compile import PIPELINES, compile_pipeline
from pipelines.presets import presets_of
from signpipe.data.corpus import open_corpus
from signpipe.data.fingerprint import cache_key, corpus_fingerprint
from signpipe.data.holdout import shared_participants, split_by_participant
from signpipe.data.synth import generate_fingerspelling
from signpipe.errors import ConfigError, SignpipeError
from signpipe.export.gate import SHARED_SIGNERS_LABEL, GateResult, with_lineage


def artifact(kind, folder: Path, name: str):
    folder.mkdir(parents=True, exist_ok=True)
    return kind(name=name, uri=str(folder / name))


@pytest.fixture(scope="module")
def spelled(tmp_path_factory) -> Path:
    """A fingerspelling corpus of 40 sequences by 8 signers (module-wide: never modified)."""
    return generate_fingerspelling(tmp_path_factory.mktemp("spelled") / "corpus", 40, seed=5, n_participants=8).root


def copy_corpus(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


# --- fingerprints ------------------------------------------------------------------------------


def test_the_fingerprint_follows_the_data_not_the_address(spelled, tmp_path):
    first = corpus_fingerprint(spelled)
    assert first.method == "local" and len(first.fingerprint) == 32 and first.n_files >= 3 and first.n_bytes > 0
    copy = copy_corpus(spelled, tmp_path / "copy")
    parquet = next(copy.rglob("*.parquet"))
    os.utime(parquet, ns=(spelled.stat().st_atime_ns, (spelled / parquet.relative_to(copy)).stat().st_mtime_ns))
    assert corpus_fingerprint(copy).fingerprint == first.fingerprint  # same files elsewhere: same data
    (copy / ".train.csv.tmp").write_text("a writer's temporary file")
    (copy / ".cache").mkdir()
    (copy / ".cache" / "x").write_text("hidden")
    assert corpus_fingerprint(copy).fingerprint == first.fingerprint
    # a landmark file rewritten (new time) changes it; so does a metadata edit of the same size
    os.utime(parquet, ns=(0, parquet.stat().st_mtime_ns + 1_000_000_000))
    touched = corpus_fingerprint(copy).fingerprint
    assert touched != first.fingerprint
    metadata = (copy / "train.csv").read_text()
    (copy / "train.csv").write_text(metadata.replace("participant_id", "participant_iX", 1))
    assert corpus_fingerprint(copy).fingerprint not in (first.fingerprint, touched)
    with pytest.raises(SignpipeError, match="no such corpus folder"):
        corpus_fingerprint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SignpipeError, match="empty corpus folder"):
        corpus_fingerprint(tmp_path / "empty")


class Listing:
    """A Cloud Storage client's `list_blobs` over fixed objects, recording what it was asked."""

    def __init__(self, blobs):
        self.blobs, self.asked = blobs, []

    def list_blobs(self, bucket, prefix=""):
        self.asked.append((bucket, prefix))
        return [b for b in self.blobs if b.name.startswith(prefix)]


def blob(name, md5="", crc32c="", size=10, generation=1):
    return SimpleNamespace(name=name, md5_hash=md5, crc32c=crc32c, size=size, generation=generation)


def test_a_cloud_corpus_is_fingerprinted_from_its_listing():
    objects = [blob("data/asl/train.csv", md5="aaa"), blob("data/asl/train_landmarks/1.parquet", md5="bbb", size=99),
               blob("data/asl/", size=0), blob("data/asl/.partial/x", md5="zzz"), blob("data/asl2/train.csv", md5="ccc")]
    client = Listing(objects)
    found = corpus_fingerprint("gs://bucket/data/asl", client)
    assert client.asked == [("bucket", "data/asl/")]
    assert (found.method, found.n_files, found.n_bytes, found.uri) == ("gcs", 2, 109, "gs://bucket/data/asl")
    # re-uploading the same bytes (new generation) keeps it; other bytes change it
    regenerated = [blob(b.name, b.md5_hash, size=b.size, generation=7) for b in objects]
    assert corpus_fingerprint("gs://bucket/data/asl/", Listing(regenerated)).fingerprint == found.fingerprint
    changed = [blob(b.name, "ddd" if b.name.endswith("1.parquet") else b.md5_hash, size=b.size) for b in objects]
    assert corpus_fingerprint("gs://bucket/data/asl", Listing(changed)).fingerprint != found.fingerprint
    # a composite object has no MD5: its CRC32C stands in
    composite = [blob("c/train.csv", crc32c="q1"), blob("c/x.parquet", crc32c="q2")]
    other = [blob("c/train.csv", crc32c="q1"), blob("c/x.parquet", crc32c="q3")]
    assert corpus_fingerprint("gs://b/c", Listing(composite)).fingerprint != corpus_fingerprint("gs://b/c", Listing(other)).fingerprint
    with pytest.raises(SignpipeError, match="no objects under this prefix"):
        corpus_fingerprint("gs://bucket/nothing", Listing(objects))
    with pytest.raises(ConfigError, match="gs://BUCKET/PATH"):
        corpus_fingerprint("gs:///x", Listing([]))


def test_the_cache_key_changes_with_the_period_only_when_outputs_age_out():
    day = 86400
    assert cache_key("abc", 0, 1e9) == "abc"
    assert cache_key("abc", 23, 23 * day * 5) == cache_key("abc", 23, 23 * day * 5 + 22 * day) == "abc-p5"
    assert cache_key("abc", 23, 23 * day * 6) == "abc-p6"
    with pytest.raises(ConfigError, match="cache_max_age_days"):
        cache_key("abc", -1, 0)


# --- held-out signers of a fingerspelling corpus -----------------------------------------------


def test_a_fingerspelling_corpus_is_split_by_participant(spelled, tmp_path):
    split = split_by_participant(spelled, tmp_path / "train", tmp_path / "held", fraction=0.25, seed=3)
    source, train, held = open_corpus(spelled), open_corpus(tmp_path / "train"), open_corpus(tmp_path / "held")
    assert set(held.metadata["participant_id"]) == set(split.held_out_participants) and split.held_out_participants
    assert not set(train.metadata["participant_id"]) & set(held.metadata["participant_id"])
    assert shared_participants(tmp_path / "train", tmp_path / "held") == ()
    assert shared_participants(spelled, tmp_path / "held") == split.held_out_participants
    # every sequence once, on one side, with its frames unchanged
    assert sorted(train.metadata["sequence_id"].tolist() + held.metadata["sequence_id"].tolist()) == sorted(
        source.metadata["sequence_id"].tolist())
    assert (split.n_train_sequences, split.n_held_out_sequences) == (len(train), len(held))
    assert 0.25 <= len(held) / len(source) < 0.6
    originals = {s.sequence_id: s for s in source.iter_sequences()}
    for corpus in (train, held):
        for sequence in corpus.iter_sequences():
            original = originals.pop(sequence.sequence_id)
            assert (sequence.label, sequence.participant_id) == (original.label, original.participant_id)
            np.testing.assert_array_equal(sequence.frames, original.frames)
    assert not originals
    # another seed, other signers
    assert split_by_participant(spelled, tmp_path / "t2", tmp_path / "h2", 0.25, seed=4).held_out_participants != (
        split.held_out_participants)


def test_a_corpus_of_one_signer_cannot_be_split(tmp_path):
    lonely = generate_fingerspelling(tmp_path / "one", 4, seed=2, n_participants=1).root
    with pytest.raises(ConfigError, match="at least 2"):
        split_by_participant(lonely, tmp_path / "a", tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --- the components of the head ----------------------------------------------------------------


def test_fingerprint_component_records_the_fingerprint_and_its_cache_key(spelled, tmp_path):
    record = artifact(Artifact, tmp_path, "record")
    outputs = fingerprint_corpus.python_func(corpus=Dataset(name="c", uri=str(spelled)), cache_max_age_days=0, record=record)
    expected = corpus_fingerprint(spelled).fingerprint
    assert outputs.fingerprint == outputs.cache_key == expected
    assert json.loads(Path(record.path).read_text())["fingerprint"] == expected == record.metadata["fingerprint"]
    aged = fingerprint_corpus.python_func(corpus=Dataset(name="c", uri=str(spelled)), cache_max_age_days=23,
                                          record=artifact(Artifact, tmp_path / "2", "record"))
    assert aged.fingerprint == expected and aged.cache_key.startswith(f"{expected}-p")


def test_hold_out_component_writes_both_corpora_and_who_went_where(spelled, tmp_path):
    outputs = {"train_corpus": artifact(Dataset, tmp_path, "train"), "eval_corpus": artifact(Dataset, tmp_path, "eval"),
               "split": artifact(Artifact, tmp_path, "split")}
    held = hold_out_participants.python_func(corpus=Dataset(name="c", uri=str(spelled)), corpus_fingerprint="f00",
                                             fraction=0.2, seed=1, **outputs)
    recorded = json.loads(Path(outputs["split"].path).read_text())
    assert held == len(recorded["held_out_participants"]) >= 1 and recorded["corpus_fingerprint"] == "f00"
    assert set(pd.read_csv(Path(outputs["eval_corpus"].path) / "train.csv")["participant_id"]) == set(
        recorded["held_out_participants"])
    assert shared_participants(outputs["train_corpus"].path, outputs["eval_corpus"].path) == ()


def test_check_held_out_refuses_shared_signers_unless_allowed(spelled, tmp_path):
    split_by_participant(spelled, tmp_path / "train", tmp_path / "held", 0.25, seed=3)
    report = artifact(Markdown, tmp_path, "report")

    def check(eval_corpus: Path, allow: bool) -> int:
        return check_held_out.python_func(corpus=Dataset(name="c", uri=str(tmp_path / "train")),
                                          eval_corpus=Dataset(name="e", uri=str(eval_corpus)), corpus_fingerprint="a",
                                          eval_corpus_fingerprint="b", allow_shared_participants=allow, report=report)

    assert check(tmp_path / "held", False) == 0
    assert "participants in both: 0" in Path(report.path).read_text()
    with pytest.raises(ConfigError, match=r"shares \d+ participant\(s\).*memorized"):
        check(spelled, False)
    shared = check(spelled, True)
    assert shared == len(set(open_corpus(tmp_path / "train").metadata["participant_id"]))
    assert "allowed by allow_shared_participants" in Path(report.path).read_text()


def test_the_gate_report_flags_shared_signers_and_names_the_evaluation_data():
    plain = GateResult(criteria=(), thresholds=None, subject="x")
    flagged = with_lineage(plain, "f00", 3)
    assert flagged.context[0][0] == SHARED_SIGNERS_LABEL and "3 participant(s)" in flagged.context[0][1]
    assert ("evaluation corpus fingerprint", "f00") in flagged.context
    assert with_lineage(plain, "", 0).context == ()


def test_validate_records_the_fingerprint_it_was_given(spelled, tmp_path):
    from components.validate import validate

    summary = artifact(Metrics, tmp_path, "summary")
    validate.python_func(corpus=Dataset(name="c", uri=str(spelled)), summary=summary,
                         report=artifact(Markdown, tmp_path, "report"), corpus_fingerprint="f00-p3")
    assert summary.metadata["corpus_fingerprint"] == "f00-p3"


# --- compiled specs ----------------------------------------------------------------------------


def _tasks(spec: dict) -> dict[str, dict]:
    """Every task of a compiled spec (sub-DAGs included), by name."""
    found = {}

    def walk(dag: dict) -> None:
        for name, task in dag.get("tasks", {}).items():
            found[name] = task
            inner = spec["components"][task["componentRef"]["name"]].get("dag")
            if inner:
                walk(inner)

    walk(spec["root"]["dag"])
    return found


def _reads_a_corpus(task: dict) -> bool:
    """Does the task take the importer's corpus (or the hold-out step's subsets) as an input?"""
    artifacts = task.get("inputs", {}).get("artifacts", {})
    producers = {a.get("taskOutputArtifact", {}).get("producerTask", "") for a in artifacts.values()}
    loops = {a.get("componentInputArtifact", "") for a in artifacts.values()}
    return any(p.startswith(("importer", "hold-out-participants")) for p in producers) or any(
        "importer" in name or "hold-out" in name for name in loops)


@pytest.mark.parametrize("hold_out", [False, True], ids=["eval-corpus", "hold-out"])
@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_every_step_reading_a_corpus_takes_its_fingerprint(pipeline, hold_out, tmp_path):
    import yaml

    preset = "smoke"
    assert preset in presets_of(pipeline)
    path = compile_pipeline(pipeline, preset, tmp_path / "spec.yaml", target="local", hold_out=hold_out).path
    spec = yaml.safe_load(path.read_text())
    tasks = _tasks(spec)
    readers = {name: task for name, task in tasks.items() if _reads_a_corpus(task) and not name.startswith("fingerprint")
               and "dag" not in spec["components"][task["componentRef"]["name"]]}  # a loop only hands the corpus on
    expected = {"validate", "plan-shards", "estimate-y-scale", "evaluate", "gate"} if pipeline == "fingerspelling" else {
        "validate", "plan-folds", "train-fold", "evaluate-signs", "gate-signs"}
    expected |= {"hold-out-participants"} if hold_out else {"validate-2", "check-held-out"}
    assert set(readers) == expected
    for name, task in readers.items():
        parameters = task["inputs"]["parameters"]
        fingerprints = [p for key, p in parameters.items() if key.endswith("corpus_fingerprint")]
        assert fingerprints, name
        for bound in fingerprints:
            producer = bound.get("taskOutputParameter", {}).get("producerTask", "") or bound.get("componentInputParameter", "")
            assert "fingerprint-corpus" in producer, (name, bound)
    # the fingerprint step always runs; the bundle and the evaluation carry the fingerprints
    for name, task in tasks.items():
        if name.startswith("fingerprint-corpus"):
            assert not task.get("cachingOptions", {}).get("enableCache", False), name
    export = tasks["export" if pipeline == "fingerspelling" else "export-ensemble"]
    assert export["inputs"]["parameters"]["corpus_fingerprint"]["taskOutputParameter"]["outputParameterKey"] == "fingerprint"
    inputs = set(spec["root"]["inputDefinitions"]["parameters"])
    form = {"holdout_fraction", "holdout_seed"} if hold_out else {"eval_corpus_uri", "allow_shared_participants"}
    other = {"eval_corpus_uri", "allow_shared_participants"} if hold_out else {"holdout_fraction", "holdout_seed"}
    assert form | {"corpus_uri", "cache_max_age_days"} <= inputs and not other & inputs


# --- kfp's local cache over the head of the DAG --------------------------------------------------


def _head_pipeline():
    from kfp import dsl

    from components.aspect import estimate_y_scale
    from pipelines.corpora import corpora
    from pipelines.presets import TaskPlacement, preset

    placement = TaskPlacement(preset("smoke", "fingerspelling"), "local")

    def head(corpus_uri):
        data = corpora(placement, "fingerspelling", True, corpus_uri, "", 0, 0.25, 1, False)
        reader = estimate_y_scale(corpus=data.train, method="rigid", corpus_fingerprint=data.train_key)
        for ready in data.ready:
            reader.after(ready)

    head.__annotations__ = {"corpus_uri": str}  # kfp reads live types (this module's annotations are strings)
    return dsl.pipeline(name="head")(head)


@pytest.mark.timeout(600)
def test_the_local_cache_reuses_an_unchanged_corpus_and_recomputes_a_changed_one(spelled, tmp_path):
    from kfp import local

    from pipelines.local import TaskProgress, hide_checkout_docker_dir

    hide_checkout_docker_dir()
    corpus = copy_corpus(spelled, tmp_path / "corpus")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"), raise_on_error=True,
               enable_caching=True, cache_root=str(tmp_path / "cache"))
    head = _head_pipeline()

    def run() -> dict[str, str]:
        from rich.console import Console

        progress = TaskProgress(Console(file=open(os.devnull, "w")))
        root = logging.getLogger()
        root.addFilter(progress)
        level = root.level
        root.setLevel(logging.INFO)
        try:
            head(corpus_uri=str(corpus))
        finally:
            root.removeFilter(progress)
            root.setLevel(level)
        return {t.task: t.status for t in progress.timings}

    first = run()
    assert set(first.values()) == {"SUCCESS"}
    assert {"fingerprint-corpus", "validate", "hold-out-participants", "estimate-y-scale"} <= set(first)
    unchanged = run()
    assert unchanged["fingerprint-corpus"] == "SUCCESS"  # never cached: it looks at the data every time
    assert unchanged["validate"] == unchanged["hold-out-participants"] == unchanged["estimate-y-scale"] == "CACHED"
    # one landmark file rewritten with other frames: every step from the first reader recomputes
    parquet = sorted((corpus / "train_landmarks").glob("*.parquet"))[0]
    table = pd.read_parquet(parquet)
    column = next(name for name in table.columns if name.startswith("x_"))
    table[column] = table[column] * 0.5
    table.to_parquet(parquet)
    changed = run()
    assert changed["validate"] == changed["hold-out-participants"] == changed["estimate-y-scale"] == "SUCCESS"
