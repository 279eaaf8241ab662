"""Run configs: presets of both stages, typed `key=value` overrides, clear errors, JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from signpipe.errors import ConfigError
from signpipe.fingerspelling.config import (
    PRESETS,
    FinetuneConfig,
    PretrainConfig,
    apply_overrides,
    config_from_dict,
    dump_config,
    load_config,
    parse_overrides,
    preset,
    resolve_config,
    trajectory_differences,
)


@pytest.mark.parametrize("stage", ["finetune", "pretrain"])
def test_every_named_preset_exists_and_builds(stage):
    assert set(PRESETS[stage]) == {"local", "smoke", "small", "large", "kaggle5th"}
    for name in PRESETS[stage]:
        config = preset(stage, name)
        assert isinstance(config, FinetuneConfig if stage == "finetune" else PretrainConfig)
        config.model_config()


def test_presets_follow_the_seed():
    small, large = preset("finetune", "small").model_config(), preset("finetune", "large").model_config()
    assert (small.layers, small.width) == (24, 256)
    assert (large.layers, large.width) == (24, 1024)
    recipe = preset("finetune", "kaggle5th")
    assert (recipe.batch_size, recipe.learning_rate, recipe.warmup_steps, recipe.ema_decay) == (256, 5e-4, 1000, 0.993)
    assert (recipe.adam_b1, recipe.adam_b2, recipe.weight_decay, recipe.clip_norm) == (0.9, 0.98, 0.01, 1.0)
    pretrain = preset("pretrain", "kaggle5th")
    assert (pretrain.total_steps, pretrain.warmup_steps, pretrain.max_length) == (200_000, 10_000, 512)
    assert (pretrain.mask_ratio, pretrain.mask_block, pretrain.masks_per_sample) == (0.5, 5, 8)
    assert (pretrain.teacher_decay_start, pretrain.teacher_decay_end, pretrain.target_layers) == (0.999, 0.99999, 6)
    assert preset("finetune", "smoke").model == "tiny"


def test_overrides_are_typed():
    config = resolve_config(
        "finetune",
        "smoke",
        ["total_steps=2_000", "learning_rate=3e-4", "augment=false", "max_length=1e2", "model.dropout=0.2", "model=2x64"],
    )
    assert config.total_steps == 2000 and isinstance(config.total_steps, int)
    assert config.learning_rate == 3e-4
    assert config.augment is False
    assert config.max_length == 100
    assert config.model == "2x64"
    assert config.model_overrides == {"dropout": 0.2, "layerdrop": 0.0}
    assert config.model_config().dropout == 0.2
    # a mapping works as well, with Python values
    assert apply_overrides(config, {"seed": 7}).seed == 7


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("totl_steps=5", "unknown finetune config key 'totl_steps'; did you mean total_steps"),
        ("total_steps=abc", "expected an integer"),
        ("total_steps=1.5", "expected an integer"),
        ("augment=maybe", "expected a boolean"),
        ("learning_rate=fast", "expected a number"),
        ("batch_size=0", "batch_size must be at least 1"),
        ("ema_decay=1.0", r"ema_decay must be in \[0, 1\)"),
        ("warmup_steps=5000", "warmup_steps must be in"),
        ("schedule=linear", "schedule must be one of"),
        ("model.nope=1", "unknown key"),
        ("model.width=63", "must be even"),
        ("model=huge", "model size 'huge'"),
        ("no-equals-sign", "expected key=value"),
        ("mask_ratio=0.5", "unknown finetune config key"),
    ],
)
def test_bad_overrides_fail_clearly(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("finetune", "smoke", [override])


def test_unknown_preset_and_stage():
    with pytest.raises(ConfigError, match="unknown finetune preset 'medium'; expected one of"):
        preset("finetune", "medium")
    with pytest.raises(ConfigError, match="unknown training stage 'distil'"):
        preset("distil", "smoke")


def test_parse_overrides_last_wins():
    assert parse_overrides(["a=1", "b = x=y", "a=2"]) == {"a": "2", "b": "x=y"}


def test_json_dump_round_trip(tmp_path):
    config = resolve_config("pretrain", "smoke", ["model.layerdrop=0.05", "data_dir=/data/shards"])
    path = dump_config(config, tmp_path)
    assert json.loads(path.read_text())["stage"] == "pretrain"
    assert load_config(tmp_path) == config
    assert config_from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="no run config"):
        load_config(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="unknown pretrain config key 'color'"):
        config_from_dict({**config.to_dict(), "color": "red"})


def test_trajectory_differences_ignore_run_control_fields():
    config = preset("finetune", "smoke")
    saved = config.to_dict()
    assert trajectory_differences(saved, dataclasses.replace(config, stop_after_step=7, log_every=1)) == []
    differences = trajectory_differences(saved, dataclasses.replace(config, learning_rate=1.0))
    assert len(differences) == 1 and differences[0].startswith("learning_rate: 0.002 -> 1.0")
    assert trajectory_differences(preset("pretrain", "smoke").to_dict(), config)  # another stage
