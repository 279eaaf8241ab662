"""The recipe ablation's statistics and plot (benchmarks/recipe_ablation.py), on made-up results."""

from __future__ import annotations

import importlib.util
import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("recipe_ablation", ROOT / "benchmarks" / "recipe_ablation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["recipe_ablation"] = module
    spec.loader.exec_module(module)
    return module


def model_job(ablation, row: str, seed: int, heldout: float, train: float = 0.9):
    job = ablation.Job(f"{row}/{seed}", "model", {"workdir": f"/nowhere/{row}/{seed}"})
    job.result = {"heldout_score": heldout, "train_score": train, "heldout_empty": 0, "wall_seconds": 10.0}
    return job


def test_paired_differences_and_t_interval(ablation):
    teacher = [0.70, 0.75, 0.72]
    cutmix = [0.73, 0.77, 0.76]  # differences 0.03, 0.02, 0.04
    jobs = [model_job(ablation, "teacher", s, v) for s, v in enumerate(teacher)]
    jobs += [model_job(ablation, "cutmix", s, v) for s, v in enumerate(cutmix)]
    table, comparisons = ablation.summarize(ablation.row_values(jobs))
    rows = {entry["row"]: entry for entry in table}
    assert rows["teacher"]["heldout_mean"] == pytest.approx(sum(teacher) / 3)
    assert rows["teacher"]["heldout_sd"] == pytest.approx(0.025166, abs=1e-5)
    (comparison,) = comparisons
    assert comparison["row"] == "cutmix" and comparison["baseline"] == "teacher"
    assert comparison["differences"] == pytest.approx([0.03, 0.02, 0.04])
    # t(0.975, 2) = 4.3027; sd of the differences 0.01; half width 4.3027 * 0.01 / sqrt(3)
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert comparison["low"] == pytest.approx(0.03 - half, abs=1e-5)
    assert comparison["high"] == pytest.approx(0.03 + half, abs=1e-5)
    assert comparison["verdict"] == "helps"


def test_an_interval_across_zero_is_not_resolved_and_unpaired_seeds_are_left_out(ablation):
    jobs = [model_job(ablation, "teacher", s, v) for s, v in enumerate([0.70, 0.75, 0.72, 0.71])]
    jobs += [model_job(ablation, "cutmix", s, v) for s, v in enumerate([0.72, 0.74, 0.73])]  # seed 3 missing
    _, (comparison,) = ablation.summarize(ablation.row_values(jobs))
    assert comparison["seeds"] == [0, 1, 2]
    assert comparison["low"] < 0 < comparison["high"]
    assert comparison["verdict"] == "not resolved"


def test_failed_runs_do_not_count(ablation):
    jobs = [model_job(ablation, "teacher", s, 0.7) for s in range(3)]
    broken = ablation.Job("cutmix/0", "model", {}, error="NonFiniteLossError: loss nan at step 10")
    _, comparisons = ablation.summarize(ablation.row_values([*jobs, broken]))
    assert comparisons == []


def test_plot_is_well_formed_svg_with_one_mark_per_row_and_comparison(ablation):
    jobs = [model_job(ablation, "teacher", s, v) for s, v in enumerate([0.70, 0.75, 0.72])]
    jobs += [model_job(ablation, "cutmix", s, v) for s, v in enumerate([0.60, 0.62, 0.61])]
    table, comparisons = ablation.summarize(ablation.row_values(jobs))
    svg = ablation.interval_svg(table, comparisons, "test <plot>".replace("<", "").replace(">", ""))
    root = ET.fromstring(svg)
    circles = root.findall("{http://www.w3.org/2000/svg}circle")
    assert len(circles) == len(table) + len(comparisons) == 3
    assert '#d93025' in svg  # the CutMix interval lies below zero: drawn red
    text = ablation.text_report(table, comparisons)
    assert "hurts" in text and "teacher" in text
