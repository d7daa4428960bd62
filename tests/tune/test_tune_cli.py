"""``accel env --presets``, ``accel tune`` and ``accel sweep``."""

import json

import pytest

from accel.cli import main
from accel.tune import read


def test_env_lists_and_saves_presets(capsys, tmp_path):
    assert main(["env", "--presets"]) == 0
    out = capsys.readouterr().out
    assert "default" in out and "1x32" in out and "LOG_BLOCK=5" in out
    assert main(["env", "--preset", "1x32", "--save", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["LOG_BLOCK"] == 5


def test_tune_logs_and_exports(capsys, tmp_path):
    log, table = tmp_path / "t.jsonl", tmp_path / "table.json"
    argv = ["tune", "--conv", "8,32,32,3,1", "--trials", "4", "--serial", "--no-progress"]
    assert main([*argv, "--log", str(log), "--export", str(table)]) == 0
    out = capsys.readouterr().out
    assert "conv2d_8x8_32-32_k3s1" in out and "best" in out and "wrote 1 entries" in out
    assert len(read(log)) == 4
    assert main(["tune", "--conv", "8,32,32,3"]) != 0  # four numbers, not five
    assert "expected 5 integers" in capsys.readouterr().err


def test_sweep_reports_every_point_and_the_front(capsys, tmp_path):
    out_json = tmp_path / "points.json"
    argv = ["sweep", "--conv", "8,32,32,3,1", "--set", "DRAM_BUS_BYTES=8,16", "--trials", "0"]
    assert main([*argv, "--serial", "--no-progress", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "DRAM_BUS_BYTES=8" in out and "DRAM_BUS_BYTES=16" in out
    points = json.loads(out_json.read_text())
    assert [p["config"]["DRAM_BUS_BYTES"] for p in points] == [8, 16]
    assert points[1]["cycles"] <= points[0]["cycles"]
    assert all(p["area_mm2"] > 0 and p["energy_uj"] > 0 for p in points)


def test_plots_of_a_sweep_and_a_roofline(tmp_path):
    pytest.importorskip("matplotlib")
    from accel.tune import conv2d_task, tune
    from accel.tune.plots import plot_roofline

    png = tmp_path / "front.png"
    argv = ["sweep", "--conv", "8,32,32,3,1", "--set", "ALU_CYCLES_PER_VECTOR=1,2"]
    assert main([*argv, "--trials", "0", "--serial", "--no-progress", "--plot", str(png)]) == 0
    assert png.stat().st_size > 0
    results = [
        tune(conv2d_task(8, 32, 32, 3, 1), trials=3, log=None, executor="serial", progress=False)
    ]
    plot_roofline(results, str(tmp_path / "roof.png"))
    assert (tmp_path / "roof.png").stat().st_size > 0
