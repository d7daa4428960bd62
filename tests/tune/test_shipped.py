"""The shipped table: default builds of ResNet-18's layers on the default configuration are
tuned out of the box; presets and saved configurations."""

import json

import pytest

import accel
from accel import topi
from accel.env import PRESETS, Environment, preset
from accel.errors import ConfigError
from accel.topi import tuning
from accel.tune import resnet18_tasks, untuned

ENV = accel.get_env()


def test_default_tiles_of_resnet18_layers_come_from_the_shipped_table():
    table = tuning.shipped_tables()
    tasks = resnet18_tasks(ENV)
    assert {(t.config, t.key) for t in tasks} <= set(table)
    for task in tasks:
        expected = topi.Conv2dTiles(**table[task.config, task.key])
        assert topi.default_tiles(task.op, ENV) == expected
        with untuned():
            assert topi.default_tiles(task.op, ENV) == task.rule_tiles()


def test_shipped_entries_are_at_least_as_fast_as_the_rule():
    data = json.loads(tuning.TABLE_DIR.joinpath("resnet18.json").read_text())
    assert data["format"] == tuning.TABLE_FORMAT
    for entry in data["entries"]:
        assert entry["cycles"] > 0 and 0 < entry["utilization"] < 1


def test_presets_load_and_save(tmp_path):
    assert "default" in PRESETS and "1x32" in PRESETS
    for name in PRESETS:
        env = preset(name)
        env.save(tmp_path / f"{name}.json")
        assert Environment.from_file(tmp_path / f"{name}.json") == env
    assert preset("default") == Environment.from_file(accel.env.PACKAGED_CONFIG)
    assert preset("1x32").BLOCK_IN == 32
    with pytest.raises(ConfigError, match="unknown configuration preset 'nope'"):
        preset("nope")
