"""Each operator's tunable space and its SRAM footprint, against what the compiler allocates."""

import random

import pytest

import accel
from accel import te, topi
from accel.errors import AllocationError
from accel.lower.passes.sram import sram_layout
from accel.tune import conv2d_task, dense_task, template_of, vector_task
from accel.tune.tasks import Task

ENV = accel.get_env()


def allocated(task, tiles):
    """Tiles per scope the compiler allocates for ``tiles`` (raises AllocationError)."""
    sch = task.template.schedule(task.op, task.env, tiles)
    lowered = accel.lower(sch, task.op.args, verify=False)
    scopes = sram_layout(lowered.body, task.env)["scopes"]
    return {scope: figures["used"] for scope, figures in scopes.items() if figures["used"]}


def fitting(task, count, seed=0):
    template = task.template
    points = [
        p
        for p in template.space(task.op, task.env)
        if template.check(task.op, task.env, template.tiles(p)) is None
    ]
    random.Random(seed).shuffle(points)
    return [template.tiles(p) for p in points[:count]]


def group_task():
    b = ENV.BLOCK_IN
    data = te.placeholder((1, 8, 6, 6, 1, b), "int8", "data")
    kernel = te.placeholder((8, 2, 3, 3, b, b), "int8", "kernel")
    bias = te.placeholder((8, 1, b), "int32", "bias")
    return Task(topi.group_conv2d_packed(data, kernel, ENV, 4, 1, 1, bias=bias), ENV, "group")


EXACT = {
    "conv2d 3x3 s1": lambda: conv2d_task(8, 32, 64, 3, 1),
    "conv2d 3x3 s2": lambda: conv2d_task(14, 32, 32, 3, 2),
    "conv2d 1x1 s2 no bias": lambda: conv2d_task(14, 32, 64, 1, 2, bias=False),
    "grouped": group_task,
    "dense": lambda: dense_task(1, 256, 128),
}


@pytest.mark.parametrize("make", EXACT.values(), ids=EXACT.keys())
def test_footprint_is_what_the_compiler_allocates(make):
    task = make()
    for tiles in fitting(task, 6):
        assert task.template.footprint(task.op, task.env, tiles) == allocated(task, tiles), tiles


@pytest.mark.parametrize(
    "make",
    [
        lambda: vector_task("max_pool2d", 32, 8, kernel=3, stride=2, padding=1),
        lambda: vector_task("add", 32, 6, shift=1),
    ],
    ids=["max_pool", "add"],
)
def test_vector_footprint_is_a_lower_bound(make):
    task = make()
    acc = ENV.acc_scope
    for tiles in fitting(task, 5):
        assert task.template.footprint(task.op, task.env, tiles)[acc] <= allocated(task, tiles)[acc]


def test_candidates_that_cannot_fit_are_rejected_with_the_reason_and_do_fail_to_build():
    task = conv2d_task(28, 128, 16, 3, 1)
    too_big = topi.Conv2dTiles(oc_blocks=1, rows=28, cols=28, ic_blocks=8, threads=1)
    reason = task.template.check(task.op, task.env, too_big)
    assert reason.startswith("local.inp_buffer needs") and "holds 2048" in reason
    with pytest.raises(AllocationError):
        allocated(task, too_big)


def test_threads_that_cannot_share_the_tiles_are_rejected():
    task = conv2d_task(14, 64, 48, 3, 1)  # 3 output-channel blocks
    tiles = topi.Conv2dTiles(oc_blocks=1, rows=14, cols=14, ic_blocks=1, threads=2)
    assert "cannot be shared by 2 virtual threads" in task.template.check(task.op, ENV, tiles)


def test_every_operator_kind_has_a_template_over_its_tiles_fields():
    tasks = [conv2d_task(8, 32, 32, 3), dense_task(1, 64, 32), vector_task("relu", 32, 4)]
    for task in tasks:
        space = task.template.space(task.op, task.env)
        default = task.rule_tiles()
        assert set(space.names) == set(task.template.point(default))
        assert task.template.point(default) in space
    assert template_of(tasks[0].op).kind == "conv2d"
