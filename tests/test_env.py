import json

import pytest

import accel
from accel.env import Environment
from accel.errors import ConfigError


def test_default_environment_matches_the_classic_design():
    env = accel.get_env()
    assert (env.BATCH, env.BLOCK_IN, env.BLOCK_OUT) == (1, 16, 16)
    assert (env.inp_dtype, env.wgt_dtype, env.acc_dtype, env.out_dtype) == (
        "int8",
        "int8",
        "int32",
        "int8",
    )
    assert (env.INP_ELEM_BYTES, env.WGT_ELEM_BYTES, env.ACC_ELEM_BYTES, env.OUT_ELEM_BYTES) == (
        16,
        256,
        64,
        16,
    )
    assert (env.UOP_BUFF_DEPTH, env.INP_BUFF_DEPTH, env.WGT_BUFF_DEPTH, env.ACC_BUFF_DEPTH) == (
        8192,
        2048,
        1024,
        2048,
    )
    assert env.OUT_BUFF_DEPTH == 2048
    assert (
        env.LOG_UOP_BUFF_DEPTH,
        env.LOG_INP_BUFF_DEPTH,
        env.LOG_WGT_BUFF_DEPTH,
        env.LOG_ACC_BUFF_DEPTH,
    ) == (13, 11, 10, 11)
    assert env.name == "sim_1x16_i8w8a32_15_15_18_17"
    assert (env.inp_scope, env.wgt_scope, env.acc_scope) == (
        "local.inp_buffer",
        "local.wgt_buffer",
        "local.acc_buffer",
    )
    assert (env.dma_copy, env.alu) == ("dma_copy", "alu")
    assert env.CLOCK_MHZ == 100


def test_using_env_overrides_temporarily():
    # A smaller accumulator keeps every instruction field encodable with 8-wide blocks.
    with accel.using_env({"LOG_BLOCK": 3, "LOG_BATCH": 1, "LOG_ACC_BUFF_SIZE": 15}) as env:
        assert accel.get_env() is env
        assert (env.BATCH, env.BLOCK_IN) == (2, 8)
        assert env.name == "sim_2x8_i8w8a32_15_15_18_15"
    assert accel.get_env().BLOCK_IN == 16


def test_config_file_lookup_from_environment_variable(tmp_path, monkeypatch):
    cfg = json.loads(accel.env.PACKAGED_CONFIG.read_text())
    cfg["LOG_ACC_BUFF_SIZE"] = 16
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    monkeypatch.setenv("ACCEL_CONFIG", str(path))
    assert accel.get_env().ACC_BUFF_DEPTH == 1024


def test_local_config_file_is_used(tmp_path, monkeypatch):
    cfg = json.loads(accel.env.PACKAGED_CONFIG.read_text())
    cfg["LOG_INP_BUFF_SIZE"] = 14
    (tmp_path / "vta_config.json").write_text(json.dumps(cfg))
    monkeypatch.delenv("ACCEL_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert accel.get_env().INP_BUFF_DEPTH == 1024


@pytest.mark.parametrize(
    "change, message",
    [
        ({"LOG_BLOCK": None}, "missing configuration key LOG_BLOCK"),
        ({"LOG_BLOCK": "4"}, "LOG_BLOCK must be an integer"),
        ({"LOG_BLOCK": 40}, r"LOG_BLOCK=40 is outside"),
        ({"TARGET": "pynq"}, "TARGET 'pynq' is not supported"),
        ({"LOG_BLOKC": 4}, "unknown configuration key"),
    ],
)
def test_invalid_configurations_name_the_key(change, message):
    cfg = json.loads(accel.env.PACKAGED_CONFIG.read_text())
    for key, value in change.items():
        if value is None:
            del cfg[key]
        else:
            cfg[key] = value
    with pytest.raises(ConfigError, match=message):
        Environment.from_dict(cfg)


def test_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCEL_CONFIG", str(tmp_path / "nope.json"))
    with pytest.raises(ConfigError, match="does not exist"):
        accel.get_env()


def test_using_env_refuses_what_is_not_a_configuration():
    with pytest.raises(accel.ConfigError, match="using_env takes an Environment, a dict"):
        with accel.using_env(42):
            pass
