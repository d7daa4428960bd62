"""On-chip storage: lift_alloc, allocate_sram / sram_layout, coproc_sync.

SRAM depths (docs/isa.md §1): input 2048 tiles of 16 B, weight 1024 tiles of 256 B,
accumulator 2048 tiles of 64 B. A buffer takes ceil(elements / tile elements) tiles.
"""

import pytest
from pass_helpers import (
    ENV,
    allocations,
    args,
    calls,
    lowered,
    matmul_schedule,
    vadd_schedule,
)

import accel
from accel import te
from accel.errors import AllocationError
from accel.lower import coproc, ir
from accel.lower.passes.sram import coproc_sync, sram_layout
from accel.te.visit import walk


def onchip(buffers, consumer):
    """Global inputs copied into on-chip buffers ``{name: (rows, scope)}`` (rows of 16 lanes,
    int32 for the accumulator, int8 otherwise), read by a host stage ``consumer(*bufs)``."""
    inputs, bufs = [], []
    for name, (rows, scope) in buffers.items():
        dtype = ENV.acc_dtype if scope == ENV.acc_scope else ENV.inp_dtype
        src = te.placeholder((rows, 16), name=f"{name}_dram", dtype=dtype)
        inputs.append(src)
        bufs.append((te.compute(src.shape, lambda *i, src=src: src(*i), name), scope))
    out = consumer(*[b for b, _ in bufs])
    s = te.create_schedule(out.op)
    for buf, scope in bufs:
        s[buf].set_scope(scope)
    return s, [*inputs, out]


def first_rows(*bufs):
    """A host stage adding the first row of every buffer (so each is read)."""

    def total(i, j):
        result = bufs[0][i, j].astype("int32")
        for b in bufs[1:]:
            result = result + b[i, j].astype("int32")
        return result

    return te.compute((1, 16), total, "out")


# -- lift_alloc --------------------------------------------------------------------------------


def test_lift_alloc_hoists_on_chip_allocations_in_program_order():
    # matrix_multiply allocates C_buf at the top and A_buf, B_buf inside the ko loop; after
    # lifting, the three allocations open the program in that order and nothing else is
    # allocated below them.
    body = lowered(*matmul_schedule(), "lift_alloc")
    chain = []
    while isinstance(body, (ir.Allocate, ir.AttrStmt)):
        if isinstance(body, ir.Allocate):
            chain.append(body.buffer.name)
        body = body.body
    assert chain == ["C_buf", "A_buf", "B_buf"]
    assert allocations(body) == []


# -- allocate_sram -----------------------------------------------------------------------------


def test_layout_gives_each_buffer_the_next_tiles_of_its_scope():
    # vadd keeps A_buf and B_buf (C_buf took A_buf's storage), 64 accumulator tiles each:
    # A_buf at tile 0, B_buf right after it at tile 64; 64 * 64 B = 4096 bytes each.
    layout = sram_layout(lowered(*vadd_schedule(), "lift_alloc"), ENV)
    assert layout["buffers"] == {
        "A_buf": {"scope": ENV.acc_scope, "base": 0, "tiles": 64, "bytes": 4096},
        "B_buf": {"scope": ENV.acc_scope, "base": 64, "tiles": 64, "bytes": 4096},
    }
    assert layout["scopes"][ENV.acc_scope] == {"used": 128, "capacity": 2048}
    assert layout["scopes"][ENV.inp_scope] == {"used": 0, "capacity": 2048}


def test_layout_bases_follow_program_order_per_scope():
    # Program order X (acc, 3 rows = 3 tiles), P (input, 5 rows = 5 tiles), Y (acc, 1 tile),
    # Q (input, 2 tiles), W (weight: 32 rows of 16 int8 = 512 elements = 2 tiles):
    # acc: X at 0, Y at 3; input: P at 0, Q at 5; weight: W at 0.
    buffers = {
        "X": (3, ENV.acc_scope),
        "P": (5, ENV.inp_scope),
        "Y": (1, ENV.acc_scope),
        "Q": (2, ENV.inp_scope),
        "W": (32, ENV.wgt_scope),
    }
    layout = sram_layout(lowered(*onchip(buffers, first_rows), "lift_alloc"), ENV)
    got = {name: (b["scope"], b["base"], b["tiles"]) for name, b in layout["buffers"].items()}
    assert got == {
        "X": (ENV.acc_scope, 0, 3),
        "P": (ENV.inp_scope, 0, 5),
        "Y": (ENV.acc_scope, 3, 1),
        "Q": (ENV.inp_scope, 5, 2),
        "W": (ENV.wgt_scope, 0, 2),
    }
    assert list(layout["buffers"]) == ["X", "P", "Y", "Q", "W"]


def test_allocate_sram_resolves_every_on_chip_address():
    # vadd: A_buf at 0, B_buf at 64. Load A into 0, load B into 64, add tile 64 into tile 0,
    # store from 0.
    body = lowered(*vadd_schedule(), "allocate_sram")
    assert not any(
        isinstance(node, coproc.SramAddr)
        for s in ir.walk_stmt(body)
        for e in ir.stmt_exprs(s)
        for node in walk(e)
    )
    load_a, load_b = calls(body, coproc.LOAD_2D)
    assert args(load_a).dst_sram_index == 0 and args(load_b).dst_sram_index == 64
    (push,) = calls(body, coproc.UOP_PUSH)
    assert (args(push).dst, args(push).src) == (0, 64)
    (store,) = calls(body, coproc.STORE_2D)
    assert args(store).src_sram_index == 0


@pytest.mark.parametrize(
    "scope, rows, tiles, tile_bytes, depth",
    [
        # input: 2049 rows of 16 int8 = 2049 tiles of 16 B; 2048 fit (32768 B)
        (ENV.inp_scope, 2049, 2049, 16, 2048),
        # weight: 16 * 1025 rows of 16 int8 = 1025 tiles of 256 B; 1024 fit (262144 B)
        (ENV.wgt_scope, 16 * 1025, 1025, 256, 1024),
        # accumulator: 2049 rows of 16 int32 = 2049 tiles of 64 B; 2048 fit (131072 B)
        (ENV.acc_scope, 2049, 2049, 64, 2048),
    ],
)
def test_a_buffer_larger_than_its_sram_is_refused(scope, rows, tiles, tile_bytes, depth):
    s, arguments = onchip({"big": (rows, scope)}, first_rows)
    message = (
        rf"big needs {tiles} tiles \({tiles * tile_bytes} bytes\) of {scope}, but only "
        rf"{depth} tiles \({depth * tile_bytes} bytes\) of its {depth * tile_bytes} bytes"
    )
    with pytest.raises(AllocationError, match=message):
        accel.lower(s, arguments, dump_after="allocate_sram")
    with pytest.raises(AllocationError, match=message):
        sram_layout(lowered(s, arguments, "lift_alloc"), ENV)


def test_the_refusal_counts_what_earlier_buffers_took():
    # first takes 2000 accumulator tiles; second asks 100 of the 48 left (48 * 64 = 3072 B).
    s, arguments = onchip(
        {"first": (2000, ENV.acc_scope), "second": (100, ENV.acc_scope)}, first_rows
    )
    with pytest.raises(
        AllocationError,
        match=r"second needs 100 tiles \(6400 bytes\) of local.acc_buffer, but only 48 tiles "
        r"\(3072 bytes\)",
    ):
        accel.lower(s, arguments, dump_after="allocate_sram")


# -- coproc_sync -------------------------------------------------------------------------------


def test_coproc_sync_ends_an_accelerator_program():
    body = lowered(*matmul_schedule(), "coproc_sync")
    names = [c.name for c in calls(body)]
    assert names.count(coproc.SYNC.name) == 1 and names[-1] == coproc.SYNC.name
    assert isinstance(body, ir.Seq) and coproc.SYNC.matches(body.stmts[-1])


def test_coproc_sync_leaves_a_host_program_alone():
    A = te.placeholder((4,), name="A", dtype="int32")
    B = te.compute((4,), lambda i: A[i] + 1, "B")
    body = lowered(te.create_schedule(B.op), [A, B], "allocate_sram")
    assert coproc_sync(body, ENV) is body
