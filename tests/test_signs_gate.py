"""The isolated-signs gate's majority-class criterion: a bundle must score strictly above the share
of the evaluation corpus' most common sign, what always answering that sign would score. Unit
tests on measured values and on tiny corpora written here; the component's run on the real sample
is in test_signs_components."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from signpipe.data.schema import SIGN_MAP_FILE, packaged_map
from signpipe.errors import ConfigError
from signpipe.signs.gate import (
    MAJORITY_CRITERION,
    MajorityBaseline,
    SignsGateThresholds,
    judge_signs,
    majority_baseline,
)

HALF = MajorityBaseline(accuracy=0.5, sign="hello", n_sequences=18)


def judged(accuracy: float, majority: MajorityBaseline = HALF, **thresholds):
    return judge_signs(12.0, accuracy, 5.0, SignsGateThresholds(**thresholds), majority=majority)


def test_above_the_majority_baseline_passes_and_the_criterion_comes_last():
    result = judged(0.51)
    assert result.passed and result.failed == []
    last = result.criteria[-1]
    assert (last.name, last.measured, last.threshold, last.comparison) == (MAJORITY_CRITERION, 0.51, 0.5, ">")
    assert [c.name for c in result.criteria][:-1] == ["model size", "mean latency per sequence", "accuracy"]


@pytest.mark.parametrize("accuracy", [0.5, 0.49, 0.0])
def test_at_or_below_the_majority_baseline_fails_and_is_named(accuracy):
    result = judged(accuracy)
    assert not result.passed and [c.name for c in result.failed] == [MAJORITY_CRITERION]
    report = result.markdown()
    assert report.startswith("# Gate: FAIL")
    assert f"| {MAJORITY_CRITERION} (always 'hello': 50.0% of 18 sequences) |" in report
    assert f"Failed: {MAJORITY_CRITERION} is {accuracy:.4g}, needs > 0.5." in report
    criteria = result.to_dict()["criteria"]
    assert [c["name"] for c in criteria if not c["passed"]] == [MAJORITY_CRITERION]  # what the verdict's `failed` lists


def test_the_baseline_is_checked_beside_the_floor_not_instead_of_it():
    # above the baseline but under the floor: only the floor fails
    assert [c.name for c in judged(0.3, MajorityBaseline(0.1, "go", 30), min_accuracy=0.5).failed] == ["accuracy"]
    # over a zero floor but at the baseline: only the baseline fails
    assert [c.name for c in judged(0.1, MajorityBaseline(0.1, "go", 30)).failed] == [MAJORITY_CRITERION]
    # both
    assert {c.name for c in judged(0.05, MajorityBaseline(0.1, "go", 30), min_accuracy=0.5).failed} == {
        "accuracy", MAJORITY_CRITERION}
    # without a baseline (measured values judged alone) there is no such criterion
    alone = judge_signs(12.0, 0.0, 5.0, SignsGateThresholds())
    assert alone.passed and MAJORITY_CRITERION not in [c.name for c in alone.criteria]


def write_metadata(root, signs: list[str]):
    root.mkdir(parents=True)
    rows = [(f"train_landmark_files/1/{k}.parquet", 1 + k % 2, k, sign) for k, sign in enumerate(signs)]
    pd.DataFrame(rows, columns=["path", "participant_id", "sequence_id", "sign"]).to_csv(root / "train.csv", index=False)
    (root / SIGN_MAP_FILE).write_text(json.dumps(packaged_map(SIGN_MAP_FILE)))
    return root


def test_majority_baseline_is_the_share_of_the_most_common_sign_of_train_csv(tmp_path):
    baseline = majority_baseline(write_metadata(tmp_path / "a", ["go", "dad", "go", "cat", "go", "dad"]))
    assert baseline == MajorityBaseline(0.5, "go", 6)
    tied = majority_baseline(write_metadata(tmp_path / "b", ["go", "dad", "go", "dad"]))
    assert (tied.accuracy, tied.sign) == (0.5, "dad")  # a tie names the first in alphabetical order
    assert majority_baseline(write_metadata(tmp_path / "c", ["go"])).accuracy == 1.0  # nothing can beat one sign


def test_majority_baseline_of_the_real_sample(signs_sample):
    assert majority_baseline(signs_sample) == MajorityBaseline(0.5, "hello", 84)  # 42 hello, 42 thankyou


def test_majority_baseline_of_an_empty_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no sequences"):
        majority_baseline(write_metadata(tmp_path / "empty", []))
