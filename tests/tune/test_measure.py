"""Timing-only runs: the simulator's cycles for the same stream, and exact action counts."""

import pytest

import accel
from accel import topi
from accel.tune import conv2d_task, dense_task, vector_task
from accel.tune.energy import EnergyModel, sram_pj_per_bit
from accel.tune.measure import build_candidate, timing_run

ENV = accel.get_env()

CASES = {
    "conv2d 2 threads": (
        lambda: conv2d_task(14, 32, 64, 3, 1),
        topi.Conv2dTiles(2, 7, 14, 1, 2, 1),
    ),
    "conv2d 1 thread s2": (
        lambda: conv2d_task(14, 32, 32, 3, 2),
        topi.Conv2dTiles(1, 7, 7, 2, 1, 1),
    ),
    "dense": (lambda: dense_task(16, 128, 64), topi.DenseTiles(4, 2, 2, 2)),
    "max_pool": (
        lambda: vector_task("max_pool2d", 32, 8, kernel=3, stride=2, padding=1),
        topi.VectorTiles(1, 2, 2),
    ),
}


@pytest.mark.parametrize("make, tiles", CASES.values(), ids=CASES.keys())
def test_timing_only_run_equals_the_full_run(make, tiles):
    task = make()
    module = build_candidate(task.template, task.op, task.env, tiles, "m")
    measured = timing_run(module)
    full = build_candidate(task.template, task.op, task.env, tiles, "m").metrics
    assert measured.cycles == full["cycles"]
    actions = measured.actions
    for kind in ("inp", "wgt", "uop"):
        assert actions.get(f"dram_read_{kind}", 0) == full["dram_bytes"][kind], kind
    # the counters charge an 8-bit accumulator load the 32-bit tile it fills; the energy model
    # charges the bytes it reads from DRAM, a quarter of that
    acc_8bit = actions.get("dram_read_acc_8bit", 0) * ENV.ACC_WIDTH // ENV.INP_WIDTH
    assert actions.get("dram_read_acc", 0) + acc_8bit == full["dram_bytes"]["acc"]
    assert actions.get("dram_write_out", 0) == full["dram_bytes"]["out"]
    assert actions.get("macs", 0) == full["gemm_counter"] * ENV.BATCH * ENV.BLOCK_IN * ENV.BLOCK_OUT
    assert actions.get("alu_lane_ops", 0) == full["alu_counter"] * ENV.BATCH * ENV.BLOCK_OUT
    assert actions["insn_fetch_bytes"] == 16 * full["instructions"]["total"]
    assert measured.sram == {s: f["used"] for s, f in full["sram"]["scopes"].items()}


def test_energy_model_reproduces_its_sources_and_scales():
    # [H14]: 64-bit reads of 8 KB, 32 KB, 1 MB SRAMs take 10, 20, 100 pJ (the fit is within 15 %)
    for size, pj in ((8 << 10, 10.0), (32 << 10, 20.0), (1 << 20, 100.0)):
        assert sram_pj_per_bit(size) * 64 == pytest.approx(pj, rel=0.15)
    base, small = EnergyModel(), EnergyModel(node_nm=22, voltage=0.8)
    assert small.mac_pj() == pytest.approx(base.mac_pj() * 22 / 45 * (0.8 / 0.9) ** 2)
    assert small.area(ENV)["total"] == pytest.approx(base.area(ENV)["total"] * (22 / 45) ** 2)
    actions = {"macs": 1000, "dram_read_inp": 64, "wgt_read": 10, "insn_fetch_bytes": 16}
    energy = base.energy(ENV, actions, cycles=1000)
    assert energy["total"] == pytest.approx(sum(v for k, v in energy.items() if k != "total"))
    assert energy["mac"] == pytest.approx(1000 * 0.3)
    assert energy["dram"] == pytest.approx(64 * 1300 / 8)
    slow = EnergyModel(clock_mhz=50).energy(ENV, actions, cycles=1000)
    assert slow["leakage"] == pytest.approx(2 * energy["leakage"])


def test_hwcomponents_plug_in_says_when_it_is_missing():
    try:
        import hwcomponents  # noqa: F401
    except ImportError:
        from accel.errors import ConfigError
        from accel.tune.energy import hwcomponents_overrides

        with pytest.raises(ConfigError, match="Python >= 3.12"):
            hwcomponents_overrides(ENV)
    else:
        from accel.tune.energy import hwcomponents_overrides

        overrides = hwcomponents_overrides(ENV)
        assert overrides["mac_pj"] > 0


def test_what_if_alu_overlap_takes_the_epilogue_off_the_compute_module():
    from accel.tune.measure import WhatIf

    task = conv2d_task(14, 32, 32, 3, 1)
    tiles = task.rule_tiles()
    module = build_candidate(task.template, task.op, task.env, tiles, "m")
    plain, overlapped = timing_run(module), timing_run(module, WhatIf(alu_overlap=True))
    assert overlapped.cycles < plain.cycles
    assert overlapped.actions == plain.actions  # the same work, priced differently
    assert overlapped.busy["compute"] < plain.busy["compute"]
    what_if = conv2d_task(14, 32, 32, 3, 1)
    what_if.what_if = WhatIf(alu_overlap=True)
    assert what_if.config == task.config + "+alu_overlap"
