"""accel.tune.tune: measured bests, logs that round-trip and resume, any executor, and the
tuned tiles applied at build time, still equal to numpy."""

import json
from concurrent.futures import ProcessPoolExecutor

import pytest
from tune_reference import check_conv2d, check_dense, check_relu

import accel
from accel import topi
from accel.errors import LoadError
from accel.tune import (
    apply_history_best,
    conv2d_task,
    dense_task,
    extract_tasks,
    pareto_front,
    read,
    tune,
    untuned,
    vector_task,
)
from accel.tune.measure import build_candidate
from accel.tune.search import dominates

ENV = accel.get_env()


def small_conv():
    return conv2d_task(14, 32, 32, 3, 1)


def fresh_cycles(task, tiles_dict):
    tiles = task.template.tiles(tiles_dict)
    return build_candidate(task.template, task.op, task.env, tiles, "fresh").metrics["cycles"]


def test_the_best_is_measured_never_worse_than_the_rule_and_equals_numpy(tmp_path):
    task = small_conv()
    result = tune(task, trials=12, log=tmp_path / "t.jsonl", executor="serial", progress=False)
    assert result.best.ok and result.rule.ok
    assert result.best.cycles <= result.rule.cycles
    assert result.best.cycles == fresh_cycles(task, result.best.tiles)
    module = build_candidate(task.template, task.op, task.env, result.best_tiles, "tuned")
    check_conv2d(module, task)
    assert len(result.records) == 12 and result.measured_now == 12


def test_candidates_that_fail_to_build_are_logged_with_the_reason_and_never_chosen(tmp_path):
    # a micro-op SRAM of 64 entries: large GEMM kernels no longer fit and fail when run
    env = accel.Environment.from_dict({**ENV.to_dict(), "LOG_UOP_BUFF_SIZE": 8})
    task = conv2d_task(14, 32, 32, 3, 1, env=env)
    result = tune(
        task,
        trials=24,
        log=tmp_path / "t.jsonl",
        executor="serial",
        strategy="exhaustive",
        progress=False,
    )
    failed = [r for r in result.records if not r.ok]
    assert failed, "expected some candidates to fail"
    assert all(
        r.status == "rejected" and r.stage in ("build", "measure") and r.reason for r in failed
    )
    assert any("micro-op" in r.reason or "AllocationError" in r.reason for r in failed)
    assert result.best.ok
    assert result.best.cycles == fresh_cycles(task, result.best.tiles)
    logged = read(tmp_path / "t.jsonl")
    assert [r.status for r in logged] == [r.status for r in result.records]


def test_logs_round_trip_and_resume(tmp_path):
    path = tmp_path / "t.jsonl"
    task = small_conv()
    first = tune(task, trials=6, batch=3, log=path, executor="serial", progress=False)
    records = read(path)
    assert [r.to_json() for r in records] == [
        json.loads(line) for line in path.read_text().splitlines()
    ]
    assert [r.tiles for r in records] == [r.tiles for r in first.records]
    # an interrupted write leaves half a line: readers skip it, the next run cuts it
    with path.open("a") as f:
        f.write('{"version": 1, "config": "cut sh')
    assert len(read(path)) == 6
    second = tune(task, trials=10, batch=3, log=path, executor="serial", progress=False)
    assert second.measured_now == 4
    assert len(read(path)) == 10
    done = [r.candidate for r in read(path)]
    assert len(set(done)) == 10  # nothing measured twice
    again = tune(task, trials=10, log=path, executor="serial", progress=False)
    assert again.measured_now == 0 and again.best.tiles == second.best.tiles


def test_malformed_logs_are_refused_naming_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"version": 1}\n{}\n')
    with pytest.raises(LoadError, match=r"bad.jsonl:1: field 'config'"):
        read(path)
    path.write_text("not json\n")
    with pytest.raises(LoadError, match=r"bad.jsonl:1: not JSON"):
        read(path)


def run_on(executor):
    task = small_conv()
    return tune(task, trials=10, batch=4, log=None, executor=executor, progress=False)


def summary(result):
    return [(r.tiles, r.status, r.cycles) for r in result.records], result.best.tiles


def test_serial_process_pool_and_dask_give_the_same_search():
    serial = summary(run_on("serial"))
    with ProcessPoolExecutor(2) as pool:
        assert summary(run_on(pool)) == serial
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            assert summary(run_on(client)) == serial


def test_apply_history_best_changes_what_topi_builds(tmp_path):
    task = small_conv()
    path = tmp_path / "t.jsonl"
    result = tune(task, trials=10, log=path, executor="serial", progress=False)
    rule = task.rule_tiles()
    assert result.best_tiles != rule, "pick a task whose best is not the rule's"
    with apply_history_best(path) as table:
        assert len(table) == 1
        assert topi.default_tiles(task.op, ENV) == result.best_tiles
        s = topi.schedule_conv2d_packed(task.op, ENV)  # no tiles: the tuned ones
        tuned = accel.build(s, task.op.args, name="tuned")
        assert tuned.metrics["cycles"] == result.best.cycles
        check_conv2d(tuned, task, seed=3)
        # an explicit thread request is the caller's choice: the rule answers it
        with untuned():
            one_thread = topi.default_tiles(task.op, ENV, threads=1)
        assert topi.default_tiles(task.op, ENV, threads=1) == one_thread
        with untuned():
            assert topi.default_tiles(task.op, ENV) == rule
    assert topi.default_tiles(task.op, ENV) == rule
    # another configuration does not match the log's entries
    other = accel.Environment.from_dict({**ENV.to_dict(), "DRAM_BUS_BYTES": 16})
    with apply_history_best(path):
        assert topi.default_tiles(task.op, other) == rule


def test_several_objectives_give_a_pareto_front(tmp_path):
    task = small_conv()
    result = tune(
        task,
        objective=("cycles", "energy", "sram"),
        trials=12,
        log=None,
        executor="serial",
        progress=False,
    )
    front = result.front
    names = ("cycles", "energy", "sram")
    values = [(r.cycles, r.energy_pj, r.result["sram_bytes"]) for r in front]
    assert all(not dominates(a, b) for a in values for b in values)
    for r in result.records:
        if r.ok:
            point = (r.cycles, r.energy_pj, r.result["sram_bytes"])
            assert point in values or any(dominates(v, point) for v in values)
    assert front == pareto_front(result.records, names)
    assert min(r.cycles for r in result.records if r.ok) == front[0].cycles


def test_tuned_dense_and_vector_operators_equal_numpy():
    for task, check in (
        (dense_task(16, 128, 64), check_dense),
        (vector_task("relu", 32, 8), check_relu),
    ):
        result = tune(task, trials=6, log=None, executor="serial", progress=False)
        module = build_candidate(task.template, task.op, task.env, result.best_tiles, "tuned")
        check(module, task)


def test_tasks_are_extracted_from_any_build():
    a, b = small_conv(), dense_task(1, 64, 32)

    def build_all():
        for task in (a, b, a):
            task.template.schedule(task.op, task.env, None)

    tasks = extract_tasks(build_all)
    assert [t.key for t in tasks] == [a.key, b.key]
    assert tasks[0].repeats == 2


def test_every_strategy_returns_a_measured_valid_best_without_repeats():
    task = conv2d_task(4, 32, 32, 3, 1)
    bests = {}
    for strategy in ("exhaustive", "guided", "evolutionary"):
        result = tune(
            task, trials=10, batch=4, log=None, executor="serial", strategy=strategy, progress=False
        )
        tiles = [r.candidate for r in result.records]
        assert len(tiles) == len(set(tiles)) == 10
        assert result.best.ok and result.strategy == strategy
        assert task.template.check(task.op, ENV, result.best_tiles) is None
        bests[strategy] = result.best.cycles
    everything = tune(task, trials=None, log=None, executor="serial", progress=False)
    assert everything.strategy == "exhaustive"
    assert everything.best.cycles <= min(bests.values())
