"""inject_dma: copy nests under ``dma_copy`` become VTALoadBuffer2D / VTAStoreBuffer2D calls.

Every expected field is derived from the shapes in a comment. Sizes, strides and offsets are in
DMA elements ("tiles"): 16 int8 for the input buffer, 256 int8 for the weight buffer, 16 int32
for the accumulator (BATCH = 1, BLOCK = 16).
"""

import numpy as np
import pytest
from pass_helpers import (
    ENV,
    args,
    blocked_matmul_schedule,
    lowered,
    matmul_schedule,
    sram,
    vadd_schedule,
    value,
)

import accel
from accel import te
from accel.errors import LoweringError
from accel.hw.isa import MemType
from accel.lower import coproc, ir

# One vocabulary for loads and stores, from their declared fields: the DRAM side, the SRAM side.
ROLES = {
    "src_addr": "dram",
    "dst_addr": "dram",
    "src_elem_offset": "offset",
    "dst_elem_offset": "offset",
    "dst_sram_index": "sram",
    "src_sram_index": "sram",
    "dst_memory_type": "mem_type",
    "src_memory_type": "mem_type",
    "x_pad_before": "x_pad_0",
    "y_pad_before": "y_pad_0",
    "x_pad_after": "x_pad_1",
    "y_pad_after": "y_pad_1",
}


def dma_calls(body: ir.Stmt) -> list[dict]:
    """Every DMA call of ``body`` in program order, as a dict of its named fields plus the
    module (``stage``) it runs on and the host loops (``loops``: name -> extent) around it."""
    found = []

    def visit(s: ir.Stmt, stage, loops):
        if coproc.is_stage(s):
            stage = s.value
        if isinstance(s, ir.For):
            loops = {**loops, s.var.name: value(s.extent)}
        name = coproc.call_name(s)
        if name in (coproc.LOAD_2D.name, coproc.STORE_2D.name):
            fields = {ROLES.get(k, k): v for k, v in args(s.value)._asdict().items()}
            fields.update(call=name, stage=stage, loops=loops)
            found.append(fields)
        for child in ir.child_stmts(s):
            visit(child, stage, loops)

    visit(body, None, {})
    return found


def the_dma(body: ir.Stmt) -> dict:
    (found,) = dma_calls(body)
    return found


def onchip_copy(A, shape, fbody, scope):
    """``A_buf = fbody(*i)`` in ``scope`` under ``dma_copy``, read back by a host stage ``C``."""
    A_buf = te.compute(shape, fbody, "A_buf")
    C = te.compute(shape, lambda *i: A_buf(*i).astype("int32") + 1, "C")
    s = te.create_schedule(C.op)
    if scope is not None:
        s[A_buf].set_scope(scope)
    s[A_buf].pragma(s[A_buf].op.axis[0], ENV.dma_copy)
    return s, [A, C], A_buf, C


def tiled_copy(grid, tile, dtype, scope):
    """A global ``A`` of ``grid`` tiles of 16 lanes; its copy ``A_buf`` is computed for one
    ``tile`` region of the consumer ``C`` (C is split by ``tile`` on every grid axis).
    Returns the schedule, its arguments and the outer loop variables of C."""
    A = te.placeholder((*grid, 16), name="A", dtype=dtype)
    s, arguments, A_buf, C = onchip_copy(A, A.shape, lambda *i: A(*i), scope)
    outers, inners = [], []
    for axis, factor in zip(s[C].op.axis, tile):
        outer, inner = s[C].split(axis, factor)
        outers.append(outer)
        inners.append(inner)
    s[C].reorder(*outers, *inners, s[C].op.axis[-1])
    s[A_buf].compute_at(s[C], outers[-1])
    return s, arguments, [o.var.name for o in outers]


# -- loads -------------------------------------------------------------------------------------


def test_plain_2d_input_load_from_outer_loops():
    # A is a 6 x 8 grid of input tiles; each iteration of C's outer loops (ho, wo) loads a
    # 3 x 4 block. Rows are 4 contiguous tiles (x_size 4), 3 of them (y_size 3), 8 tiles apart
    # in DRAM (x_stride = grid width 8). The block starts at row 3*ho, column 4*wo:
    # offset = 3*ho*8 + 4*wo = 24*ho + 4*wo. It lands compactly at the start of A_buf.
    s, arguments, (ho, wo) = tiled_copy((6, 8), (3, 4), ENV.inp_dtype, ENV.inp_scope)
    dma = the_dma(lowered(s, arguments, "inject_dma"))
    assert dma["call"] == coproc.LOAD_2D.name and dma["stage"] == coproc.LOAD_STAGE
    assert dma["mem_type"] == MemType.INP == 2
    assert dma["dram"].name == "A"
    assert (dma["x_size"], dma["y_size"], dma["x_stride"]) == (4, 3, 8)
    assert [dma[k] for k in ("x_pad_0", "y_pad_0", "x_pad_1", "y_pad_1")] == [0, 0, 0, 0]
    assert sram(dma["sram"]) == ("A_buf", 0)
    for h, w in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        assert value(dma["offset"], **{ho: h, wo: w}) == 24 * h + 4 * w
    assert dma["loops"] == {ho: 2, wo: 2}  # the consumer's outer loops, not the copy's


def test_blocked_weight_load_is_2d_with_the_offset_of_both_blocks():
    # weight is 64 x 64 weight tiles (1024 / 16 each way); one block is 16 x 16 tiles. Rows are
    # 16 input-channel tiles (x_size 16), 16 output-channel rows (y_size 16), 64 tiles apart
    # (x_stride 64). Block (oc_out, ic_out) starts at row 16*oc_out, column 16*ic_out:
    # offset = 16*oc_out*64 + 16*ic_out = 1024*oc_out + 16*ic_out.
    # The data block is 16 contiguous input tiles at 16*ic_out: x_size 16, y_size 1.
    data, weight = dma_calls(lowered(*blocked_matmul_schedule(), "inject_dma"))[:2]
    assert (weight["mem_type"], weight["stage"]) == (MemType.WGT, coproc.LOAD_STAGE)
    assert (weight["x_size"], weight["y_size"], weight["x_stride"]) == (16, 16, 64)
    for oc_out, ic_out in [(0, 0), (1, 2), (3, 3)]:
        at = {"i1.outer": oc_out, "ic.outer": ic_out}
        assert value(weight["offset"], **at) == 1024 * oc_out + 16 * ic_out
        assert value(data["offset"], **at) == 16 * ic_out
    assert (data["mem_type"], data["x_size"], data["y_size"], data["x_stride"]) == (
        MemType.INP,
        16,
        1,
        16,
    )


def test_strided_tile_loop_gives_one_tile_rows():
    # matrix_multiply's B is 16 x 16 weight tiles; at reduction block ko, B_buf holds column ko:
    # 16 tiles, one per output row, 16 tiles apart in DRAM. No row has two contiguous tiles, so
    # x_size = 1 and y walks the 16 rows: y_size 16, x_stride 16, offset ko.
    # A_buf is the one input tile ko: x_size 1, y_size 1, offset ko.
    a, b, _store = dma_calls(lowered(*matmul_schedule(), "inject_dma"))
    assert (b["dram"].name, b["mem_type"]) == ("B", MemType.WGT)
    assert (b["x_size"], b["y_size"], b["x_stride"]) == (1, 16, 16)
    assert (a["dram"].name, a["x_size"], a["y_size"]) == ("A", 1, 1)
    for ko in (0, 7, 15):
        assert value(b["offset"], ko=ko) == ko
        assert value(a["offset"], ko=ko) == ko
    assert sram(b["sram"]) == ("B_buf", 0) and sram(a["sram"]) == ("A_buf", 0)


def test_contiguous_tile_loops_merge_into_one_row():
    # A is 2 x 6 x 8 accumulator tiles; the block is 2 x 3 x 8: each of its 3 rows of 8 tiles
    # follows the previous one in DRAM (6*8 grid, full width), so those two loops merge into
    # rows of 3*8 = 24 tiles; the 2 planes are 6*8 = 48 tiles apart, which does not continue
    # the 24, so they stay the y loop: x_size 24, y_size 2, x_stride 48, offset 3*8*ho = 24*ho.
    s, arguments, (_p, ho, _w) = tiled_copy((2, 6, 8), (2, 3, 8), ENV.acc_dtype, ENV.acc_scope)
    dma = the_dma(lowered(s, arguments, "inject_dma"))
    assert (dma["mem_type"], dma["stage"]) == (MemType.ACC, coproc.COMPUTE_STAGE)
    assert (dma["x_size"], dma["y_size"], dma["x_stride"]) == (24, 2, 48)
    assert [value(dma["offset"], **{ho: h}) for h in (0, 1)] == [0, 24]


def test_whole_grid_copies_merge_to_a_single_row():
    # vadd: A_buf is all 64 accumulator tiles of A, contiguous on both sides: x_size 64,
    # y_size 1, x_stride 64 (the row width when there is one row), offset 0.
    a, b, _store = dma_calls(lowered(*vadd_schedule(), "inject_dma"))
    for dma, name in ((a, "A"), (b, "B")):
        assert dma["dram"].name == name
        assert [dma[k] for k in ("offset", "x_size", "y_size", "x_stride")] == [0, 64, 1, 64]
        assert (dma["mem_type"], dma["stage"]) == (MemType.ACC, coproc.COMPUTE_STAGE)


def test_a_third_tile_loop_stays_a_host_loop():
    # The block is 2 x 3 x 4 of a 2 x 6 x 8 grid: no two loops merge (rows of 4 tiles, 8 apart;
    # planes 48 apart while a plane holds 3*4 = 12 block tiles). x = the 4 tiles, y = the 3 rows
    # (x_stride 8), and the planes loop (extent 2) stays on the host around the call: plane p
    # starts at tile 12*p of A_buf and at 48*p + 3*8*ho + 4*wo of A.
    s, arguments, (_p, ho, wo) = tiled_copy((2, 6, 8), (2, 3, 4), ENV.acc_dtype, ENV.acc_scope)
    body = lowered(s, arguments, "inject_dma")
    dma = the_dma(body)
    (plane,) = [v for v in dma["loops"] if v not in (ho, wo)]
    assert dma["loops"][plane] == 2
    assert (dma["x_size"], dma["y_size"], dma["x_stride"]) == (4, 3, 8)
    for p, h, w in [(0, 0, 0), (1, 0, 0), (1, 1, 1)]:
        at = {plane: p, ho: h, wo: w}
        assert value(dma["sram"], **at) == 12 * p
        assert value(dma["offset"], **at) == 48 * p + 24 * h + 4 * w
    # The host loop sits inside the compute module's scope, around the call only.
    (stage,) = [s for s in ir.walk_stmt(body) if coproc.is_stage(s)]
    assert isinstance(stage.body, ir.For) and stage.body.var.name == plane
    assert coproc.LOAD_2D.matches(stage.body.body)


def test_int8_into_the_accumulator_is_an_acc_8bit_load():
    # int8 A widened to int32 on the way in: memory type ACC_8BIT (5), run by compute.
    # 2 tiles, contiguous: x_size 2, y_size 1, x_stride 2.
    A = te.placeholder((2, 16), name="A", dtype="int8")
    s, arguments, *_ = onchip_copy(A, A.shape, lambda i, j: A[i, j].astype("int32"), ENV.acc_scope)
    dma = the_dma(lowered(s, arguments, "inject_dma"))
    assert dma["mem_type"] == MemType.ACC_8BIT == 5
    assert dma["stage"] == coproc.COMPUTE_STAGE
    assert [dma[k] for k in ("offset", "x_size", "y_size", "x_stride")] == [0, 2, 1, 2]


# -- stores ------------------------------------------------------------------------------------


def test_vadd_store_is_memory_type_out_on_the_store_module():
    # C is 64 output tiles; after inject_dma (before inject_alu) the source is C_buf.
    *_loads, store = dma_calls(lowered(*vadd_schedule(), "inject_dma"))
    assert store["call"] == coproc.STORE_2D.name and store["stage"] == coproc.STORE_STAGE
    assert store["mem_type"] == MemType.OUT == 4
    assert sram(store["sram"]) == ("C_buf", 0)
    assert store["dram"].name == "C"
    assert [store[k] for k in ("offset", "x_size", "y_size", "x_stride")] == [0, 64, 1, 64]


def test_blocked_store_offset_follows_the_output_block():
    # res is 64 output tiles, stored 16 at a time from res_min: block oc_out starts at tile
    # 16*oc_out; x_size 16, y_size 1, x_stride 16.
    store = dma_calls(lowered(*blocked_matmul_schedule(), "inject_dma"))[-1]
    assert (store["call"], store["mem_type"]) == (coproc.STORE_2D.name, MemType.OUT)
    assert sram(store["sram"]) == ("res_min", 0)
    assert [store[k] for k in ("x_size", "y_size", "x_stride")] == [16, 1, 16]
    assert [value(store["offset"], **{"i1.outer": o}) for o in range(4)] == [0, 16, 32, 48]


# -- padding -----------------------------------------------------------------------------------


def padded(H, W, pad, rows=None):
    """P = A zero-padded by ``pad`` tiles on each side of an H x W grid of accumulator tiles,
    stored as int8 by C; with ``rows``, P is computed per block of ``rows`` rows of C."""
    A = te.placeholder((H, W, 16), name="A", dtype="int32")
    P = te.compute(
        (H + 2 * pad, W + 2 * pad, 16),
        lambda i, j, lane: te.if_then_else(
            te.all(i >= pad, i < H + pad, j >= pad, j < W + pad), A[i - pad, j - pad, lane], 0
        ),
        "P",
    )
    C = te.compute(P.shape, lambda *i: P(*i).astype("int8"), "C")
    s = te.create_schedule(C.op)
    s[P].set_scope(ENV.acc_scope)
    s[P].pragma(s[P].op.axis[0], ENV.dma_copy)
    outer = None
    if rows is None:
        s[C].pragma(s[C].op.axis[0], ENV.dma_copy)
    else:
        outer, inner = s[C].split(s[C].op.axis[0], rows)
        s[P].compute_at(s[C], outer)
        s[C].pragma(inner, ENV.dma_copy)
    return s, [A, C], outer


def assert_runs_like_numpy_pad(s, arguments, pad):
    """Build and run the padded copy on the simulator: C equals numpy's zero padding of A."""
    A, C = arguments
    a = (np.arange(np.prod(A.shape), dtype=np.int32).reshape(A.shape) % 101) - 50
    c = np.zeros(C.shape, np.int8)
    accel.build(s, arguments)(a, c)
    np.testing.assert_array_equal(c, np.pad(a, ((pad, pad), (pad, pad), (0, 0))).astype(np.int8))


def test_constant_padding_from_if_then_else_bounds():
    # P is (3 + 2) x (5 + 2) tiles around a 3 x 5 A: one zero row before and after
    # (y_pad 1, 1), one zero tile before and after each row (x_pad 1, 1); the 3 rows of 5 tiles
    # in between come from A: x_size 5, y_size 3, x_stride 5 (A's width), offset 0 (A's first
    # tile: P's index (1, 1) minus the pad).
    s, arguments, _ = padded(3, 5, 1)
    load, store = dma_calls(lowered(s, arguments, "inject_dma"))
    assert [load[k] for k in ("x_size", "y_size", "x_stride", "offset")] == [5, 3, 5, 0]
    assert [load[k] for k in ("x_pad_0", "y_pad_0", "x_pad_1", "y_pad_1")] == [1, 1, 1, 1]
    # The store has no padding: all 5 * 7 tiles of P, contiguous.
    assert [store[k] for k in ("x_size", "y_size", "x_stride")] == [35, 1, 35]
    assert_runs_like_numpy_pad(s, arguments, pad=1)


def test_padding_that_depends_on_an_outer_loop():
    # P pads a 4 x 3 grid by 1 (6 x 5 tiles) and is computed 2 rows at a time (outer loop h):
    # block h holds padded rows 2h and 2h+1; padded row r is A's row r - 1 when 1 <= r <= 4.
    #   h = 0: rows 0, 1 -> one zero row, then A row 0:  y_pad (1, 0), y_size 1, offset 0
    #   h = 1: rows 2, 3 -> A rows 1, 2:                y_pad (0, 0), y_size 2, offset 1*3
    #   h = 2: rows 4, 5 -> A row 3, then a zero row:   y_pad (0, 1), y_size 1, offset 3*3
    # Every row has one zero tile either side of A's 3 tiles: x_pad (1, 1), x_size 3, and the
    # rows are A's width, 3 tiles, apart.
    s, arguments, outer = padded(4, 3, 1, rows=2)
    load, _store = dma_calls(lowered(s, arguments, "inject_dma"))
    h = outer.var.name
    expected = {0: (1, 0, 1, 0), 1: (0, 0, 2, 3), 2: (0, 1, 1, 9)}
    for block, (y_pad_0, y_pad_1, y_size, offset) in expected.items():
        at = {h: block}
        got = [value(load[k], **at) for k in ("y_pad_0", "y_pad_1", "y_size", "offset")]
        assert got == [y_pad_0, y_pad_1, y_size, offset], block
        got = [value(load[k], **at) for k in ("x_pad_0", "x_pad_1", "x_size", "x_stride")]
        assert got == [1, 1, 3, 3]
    assert_runs_like_numpy_pad(s, arguments, pad=1)


def test_a_block_entirely_in_the_padding_reads_nothing():
    # Padding 2 around 4 x 3, two rows at a time: padded rows 0..7, A's rows at 2..5.
    #   h = 0: rows 0, 1 -> all padding: y_pad (2, 0), y_size 0
    #   h = 1: rows 2, 3 -> A rows 0, 1: y_pad (0, 0), y_size 2, offset 0
    #   h = 2: rows 4, 5 -> A rows 2, 3: y_pad (0, 0), y_size 2, offset 2*3
    #   h = 3: rows 6, 7 -> all padding: y_pad (0, 2), y_size 0
    s, arguments, outer = padded(4, 3, 2, rows=2)
    load, _store = dma_calls(lowered(s, arguments, "inject_dma"))
    expected = {0: [2, 0, 0], 1: [0, 0, 2], 2: [0, 0, 2], 3: [0, 2, 0]}
    for block, want in expected.items():
        at = {outer.var.name: block}
        assert [value(load[k], **at) for k in ("y_pad_0", "y_pad_1", "y_size")] == want
    assert [value(load["offset"], **{outer.var.name: b}) for b in (1, 2)] == [0, 6]
    assert_runs_like_numpy_pad(s, arguments, pad=2)


def test_padding_that_depends_on_no_copy_loop_pads_whole_rows():
    # Computed one padded row at a time (outer loop h over the 4 + 2 rows), the copy has no
    # row loop: whether row h is padding depends only on h. Rows 0 and 5 are all padding: one
    # zero row, nothing read (y_pad (1, 0), y_size 0; the runtime loads zeros). Rows 1..4 read
    # A's row h - 1: y_size 1 at offset (h - 1) * 3. Every row: x_pad (1, 1), x_size 3.
    s, arguments, outer = padded(4, 3, 1, rows=1)
    load, _store = dma_calls(lowered(s, arguments, "inject_dma"))
    h = outer.var.name
    for row in range(6):
        at = {h: row}
        got = [value(load[k], **at) for k in ("y_pad_0", "y_pad_1", "y_size")]
        assert got == ([1, 0, 0] if row in (0, 5) else [0, 0, 1]), row
        if row not in (0, 5):
            assert value(load["offset"], **at) == (row - 1) * 3
        assert [value(load[k], **at) for k in ("x_pad_0", "x_pad_1", "x_size")] == [1, 1, 3]
    assert_runs_like_numpy_pad(s, arguments, pad=1)


# -- refusals ----------------------------------------------------------------------------------


def lower_copy(src_shape, dtype, buf_shape, fbody, scope):
    A = te.placeholder(src_shape, name="A", dtype=dtype)
    s, arguments, *_ = onchip_copy(A, buf_shape, lambda *i: fbody(A, *i), scope)
    return accel.lower(s, arguments, dump_after="inject_dma")


def test_refuses_a_global_to_global_copy():
    with pytest.raises(LoweringError, match=r"copies A \(global\) into A_buf \(global\)"):
        lower_copy((2, 16), "int32", (2, 16), lambda A, i, j: A[i, j], None)


@pytest.mark.parametrize(
    "dtype, cast, scope, message",
    [
        ("int32", None, ENV.inp_scope, "local.inp_buffer holds int8; A is int32, A_buf int32"),
        ("int32", None, ENV.wgt_scope, "local.wgt_buffer holds int8; A is int32, A_buf int32"),
        ("int16", "int32", ENV.acc_scope, "the accumulator loads int32 or int8, not int16"),
        ("int8", None, ENV.acc_scope, "the accumulator buffer A_buf must be int32, not int8"),
        ("int32", "int8", ENV.acc_scope, "the accumulator buffer A_buf must be int32, not int8"),
    ],
)
def test_refuses_the_wrong_data_type(dtype, cast, scope, message):
    def fbody(A, i, j):
        return A[i, j] if cast is None else A[i, j].astype(cast)

    with pytest.raises(LoweringError, match=message):
        lower_copy((2, 16), dtype, (2, 16), fbody, scope)


def test_refuses_a_tile_that_is_not_contiguous():
    # A transposed copy: the lane loop j steps 1 on chip but 2 (A's row length) in DRAM.
    with pytest.raises(LoweringError, match=r"loop i1 inside a tile of 16 elements is not contig"):
        lower_copy((16, 2), "int32", (2, 16), lambda A, i, j: A[j, i], ENV.acc_scope)


def test_refuses_an_offset_off_the_tile_boundary():
    # Reading from lane 8 of A's 32-lane rows: the DRAM start, 8, is half a tile.
    with pytest.raises(LoweringError, match="the offset 8 is not on a tile boundary of 16"):
        lower_copy((2, 32), "int32", (2, 16), lambda A, i, j: A[i, j + 8], ENV.acc_scope)


def test_refuses_a_non_affine_index():
    with pytest.raises(LoweringError, match=r"is not affine in the copy loops"):
        lower_copy((4, 16), "int32", (2, 16), lambda A, i, j: A[i * i, j], ENV.acc_scope)


def test_refuses_a_stride_the_instruction_cannot_encode():
    # Column 0 of a 2 x 70000 grid: rows 70000 tiles apart, beyond x_stride's 16 bits.
    with pytest.raises(LoweringError, match=r"x_stride = 70000 does not fit the instruction"):
        lower_copy(
            (2, 70000, 16), "int32", (2, 1, 16), lambda A, i, j, k: A[i, j, k], ENV.acc_scope
        )


def test_refuses_storing_int32_to_global():
    shape = (2, 16)
    A = te.placeholder(shape, name="A", dtype="int32")
    A_buf = te.compute(shape, lambda *i: A(*i), "A_buf")
    C = te.compute(shape, lambda *i: A_buf(*i), "C")  # no cast: int32 into global
    s = te.create_schedule(C.op)
    s[A_buf].set_scope(ENV.acc_scope)
    s[A_buf].pragma(s[A_buf].op.axis[0], ENV.dma_copy)
    s[C].pragma(s[C].op.axis[0], ENV.dma_copy)
    with pytest.raises(LoweringError, match=r"a store writes int8, but the destination C is int32"):
        accel.lower(s, [A, C], dump_after="inject_dma")


def test_refuses_padding_that_is_not_affine_in_the_copy_loops():
    A = te.placeholder((4, 16), name="A", dtype="int32")
    s, arguments, *_ = onchip_copy(
        A, A.shape, lambda i, j: te.if_then_else(i * i >= 1, A[i, j], 0), ENV.acc_scope
    )
    with pytest.raises(
        LoweringError, match=r"padding condition .* is not affine in the copy loops"
    ):
        accel.lower(s, arguments, dump_after="inject_dma")
