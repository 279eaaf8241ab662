"""`signpipe presets`: what each pipeline preset trains with, the same resolution the pipeline's
steps make; and `signpipe train presets` for every training stage."""

from __future__ import annotations

import json

import pytest

from pipelines.local import run_parameters
from pipelines.presets import presets_of, resolve_preset, resolved_stage_configs
from signpipe.cli import main


def cli(capsys, *args) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return status, captured.out, captured.err


def test_the_smoke_pipeline_trains_finetune_for_its_own_steps() -> None:
    from signpipe.fingerspelling.config import PRESETS

    resolved = resolve_preset("fingerspelling", "smoke")
    finetune = resolved["training"]["finetune"]
    assert finetune["preset"] == "smoke" and PRESETS["finetune"]["smoke"]["total_steps"] == 2000
    assert finetune["config"]["total_steps"] == 100 and finetune["overrides"]["total_steps"] == 100
    assert set(resolved["training"]) == {"finetune", "noisy_student", "distill"}  # smoke has no pretraining
    assert "pretrain" not in resolved["stages"] and "align" in resolved["stages"]
    assert resolved["parameters"]["max_latency_p95_ms"] == 1000.0 and "finetune_overrides" not in resolved["parameters"]


@pytest.mark.parametrize("pipeline", ["fingerspelling", "isolated-signs"])
def test_presets_resolve_as_the_pipeline_does(pipeline: str) -> None:
    """The configs shown are those of the parameters a run is given (`pipelines.local.run_parameters`,
    overrides applied), resolved as each training step resolves its own."""
    from signpipe.signs.config import resolve_config as resolve_signs
    from signpipe.fingerspelling.config import resolve_config

    overrides = ["finetune.learning_rate=0.00123"] if pipeline == "fingerspelling" else ["signs.epochs=7", "n_folds=4"]
    for name in presets_of(pipeline):
        parameters = run_parameters(name, overrides, {}, pipeline)
        shown = resolve_preset(pipeline, name, overrides)
        configs = resolved_stage_configs(parameters)
        assert set(shown["training"]) == set(configs)
        for stage, config in configs.items():
            if pipeline == "fingerspelling":  # components/fingerspelling/finetune.py and the others
                expected = resolve_config(stage, parameters[f"{stage}_preset"], parameters[f"{stage}_overrides"])
            else:  # signpipe.signs.fold_plan.fold_config, less the fold number and data
                expected = resolve_signs(parameters["signs_preset"], dict(parameters["signs_overrides"]),
                                         n_folds=parameters["n_folds"], fold_seed=parameters["fold_seed"],
                                         y_scale=parameters["y_scale"])
            assert config == expected
            assert shown["training"][stage]["config"] == {k: v for k, v in expected.to_dict().items()
                                                          if k not in ("data_dir", "fold")}
        if pipeline == "fingerspelling":
            assert shown["training"]["finetune"]["config"]["learning_rate"] == 0.00123
        else:
            assert shown["training"]["signs"]["config"]["epochs"] == 7
            assert shown["training"]["signs"]["config"]["n_folds"] == shown["parameters"]["n_folds"] == 4


def test_presets_command_prints_one_preset_and_json(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    status, out, _ = cli(capsys, "presets", "fingerspelling", "--preset", "smoke")
    assert status == 0
    assert "fingerspelling --preset smoke" in out and "stages: validate" in out
    total = next(line for line in out.splitlines() if "total_steps" in line)
    assert "100 *" in total and "30 *" in total and "2000" not in total
    assert "max_latency_p95_ms" in out and "1000.0" in out
    status, out, _ = cli(capsys, "presets", "isolated-signs", "--preset", "local", "--json")
    (shown,) = json.loads(out)
    assert shown["pipeline"] == "isolated-signs" and shown["preset"] == "local"
    assert shown["training"]["signs"]["config"]["n_folds"] == 2 and shown["parameters"]["min_accuracy"] == 0.5
    status, out, _ = cli(capsys, "presets", "--json")
    listed = json.loads(out)
    assert {(p["pipeline"], p["preset"]) for p in listed} == {
        *(("fingerspelling", n) for n in presets_of("fingerspelling")),
        *(("isolated-signs", n) for n in presets_of("isolated-signs"))}
    status, out, _ = cli(capsys, "presets", "--preset", "smoke", "finetune.total_steps=7", "--json")
    assert status == 2  # isolated-signs has a smoke preset too, with no finetune stage
    status, out, _ = cli(capsys, "presets", "fingerspelling", "--preset", "smoke", "finetune.total_steps=70", "--json")
    assert status == 0 and json.loads(out)[0]["training"]["finetune"]["config"]["total_steps"] == 70


def test_presets_command_refuses_unknown_names(capsys) -> None:
    status, _, err = cli(capsys, "presets", "fingerspeling")
    assert status == 2 and "unknown pipeline" in err
    status, _, err = cli(capsys, "presets", "fingerspelling", "--preset", "huge")
    assert status == 2 and "unknown pipeline preset 'huge'" in err


@pytest.mark.parametrize("stage", ["finetune", "pretrain", "noisy-student", "distill", "noisy_student"])
def test_train_presets_lists_every_stage_and_points_to_the_pipeline_presets(stage: str, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    status, out, _ = cli(capsys, "train", "presets", stage)
    assert status == 0
    assert "total_steps" in out and "smoke" in out
    assert "signpipe presets" in " ".join(out.split())
    if stage == "distill":
        assert "kd_weight" in out


def test_train_presets_refuses_an_unknown_stage(capsys) -> None:
    status, _, err = cli(capsys, "train", "presets", "finetuning")
    assert status == 2 and "noisy-student" in err
