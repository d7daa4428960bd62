"""distribute_tiles: a loop over tiles around several statements becomes one loop per statement.

The matched case is a tiled host matmul (10 x 6 in 4 x 4 tiles, so both tile splits are
guarded): after inline_copies, ``i.outer`` and ``j.outer`` hold the initialisation of C and its
reduction together; the pass gives each its own nest. Each refusal is a one-change variant of a
small tile loop that splits (``base``), and the pass must give that very program back.
"""

from __future__ import annotations

import numpy as np
from pass_helpers import lowered

import accel
from accel import te
from accel.lower import coproc, ir
from accel.lower.passes.distribute_tiles import distribute_tiles
from accel.lower.pipeline import pass_names
from accel.te.expr import Call, Const, Expr, Var
from accel.te.visit import walk

ENV = accel.get_env()
PASS = "distribute_tiles"
PREVIOUS = pass_names()[pass_names().index(PASS) - 1]
M, N, K, TILE = 10, 6, 8, 4


def tiled_matmul():
    """C[i, j] = sum_k A[i, k] * B[j, k], tiled 4 x 4 on (i, j) and by 4 on k."""
    A = te.placeholder((M, K), "int8", "A")
    B = te.placeholder((N, K), "int8", "B")
    k = te.reduce_axis((0, K), "k")
    C = te.compute(
        (M, N), lambda i, j: te.sum(A[i, k].astype("int32") * B[j, k].astype("int32"), axis=k), "C"
    )
    s = te.create_schedule(C.op)
    io, jo, ii, ji = s[C].tile(*C.op.axis, TILE, TILE)
    ko, ki = s[C].split(k, factor=TILE)
    s[C].reorder(io, jo, ko, ii, ji, ki)
    return s, [A, B, C]


def nests(program: ir.Stmt) -> list[list[str]]:
    """For each statement of ``program``'s top sequence, the variables of the loops that nest
    perfectly from it (each loop the whole body of the one outside it), outermost first."""
    stmts = program.stmts if isinstance(program, ir.Seq) else (program,)
    found = []
    for s in stmts:
        names = []
        while isinstance(s, ir.For):
            names.append(s.var.name)
            s = s.body
        found.append(names)
    return found


def stores(s: ir.Stmt) -> list[ir.Store]:
    return [n for n in ir.walk_stmt(s) if isinstance(n, ir.Store)]


def test_it_runs_after_inline_copies():
    assert PREVIOUS == "inline_copies"


# -- the matched case ---------------------------------------------------------------------------


def test_the_tile_loops_of_a_reduction_split_into_one_nest_per_statement():
    before = lowered(*tiled_matmul(), PREVIOUS)
    # One nest: i.outer, j.outer, then {initialisation nest; reduction nest}.
    assert nests(before) == [["i.outer", "j.outer"]]
    inner = before.body.body
    assert isinstance(inner, ir.Seq) and len(inner.stmts) == 2

    after = lowered(*tiled_matmul(), PASS)
    # Two nests over the same tile loops: the first only initialises C, the second only
    # accumulates into it; each is a perfect nest down to its guard.
    assert nests(after) == [
        ["i.outer", "j.outer", "i.inner", "j.inner"],
        ["i.outer", "j.outer", "k.outer", "i.inner", "j.inner", "k.inner"],
    ]
    init, update = after.stmts
    assert init.var is update.var and init.kind == update.kind == before.kind
    for nest in (init, update):
        assert (nest.min, nest.extent, nest.body.min, nest.body.extent) == (
            Const(0),
            Const(3),  # ceil(10 / 4) row tiles
            Const(0),
            Const(2),  # ceil(6 / 4) column tiles
        )
    ((zero,), (acc,)) = stores(init), stores(update)
    assert zero.buffer.name == acc.buffer.name == "C"
    assert zero.value == Const(0, "int32")
    assert any(isinstance(n, ir.Load) and n.buffer is acc.buffer for n in walk(acc.value))
    # Each keeps the guard of the non-dividing splits around its store.
    for nest in (init, update):
        assert sum(isinstance(n, ir.IfThenElse) for n in ir.walk_stmt(nest)) == 1


def test_the_split_matmul_runs_like_numpy():
    s, args = tiled_matmul()
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 128, (M, K), dtype=np.int8)
    b = rng.integers(-128, 128, (N, K), dtype=np.int8)
    c = np.full((M, N), -7, np.int32)
    accel.build(s, args)(a, b, c)
    expected = (a.astype(np.int64) @ b.astype(np.int64).T).astype(np.int32)
    assert c.dtype == np.int32
    np.testing.assert_array_equal(c, expected)


# -- refusals, on a small hand-built tile loop ----------------------------------------------------

V, AX = Var("v"), Var("a")
C = ir.Buffer("C", (20,), "int32")
A = ir.Buffer("A", (16,), "int32")
D = ir.Buffer("D", (4,), "int32")


def base(init_index: Expr | None = None, update_index: Expr | None = None, *extra: ir.Stmt):
    """``for v in [0, 4): {for a: C[v*4 + a] = 0; for a: C[..] = C[..] + A[v*4 + a]; extra}``,
    the indices of C replaceable; as it stands, tile v touches only C[4v, 4v + 4)."""
    init_index = V * 4 + AX if init_index is None else init_index
    update_index = V * 4 + AX if update_index is None else update_index
    init = ir.loop(AX, 4, ir.Store(C, init_index, Const(0, "int32")))
    update = ir.loop(
        AX, 4, ir.Store(C, update_index, ir.Load(C, update_index) + ir.Load(A, V * 4 + AX))
    )
    return init, update, *extra


def tile_loop(*stmts: ir.Stmt, start: int = 0, extent: int | Expr = 4) -> ir.For:
    """``for v in [start, start + extent): stmts``."""
    extent = extent if isinstance(extent, Expr) else Const(extent)
    return ir.For(V, Const(start), extent, ir.seq(*stmts))


def test_the_base_loop_splits():
    program = tile_loop(*base())
    init, update = base()
    assert distribute_tiles(program, ENV) == ir.Seq((tile_loop(init), tile_loop(update)))


def test_refuses_a_body_that_is_not_a_sequence():
    init, _update = base()
    program = tile_loop(init)
    assert distribute_tiles(program, ENV) is program


def test_refuses_an_index_not_affine_in_the_loop_variables():
    # C[v*4 + a*a]: a*a reaches 9, so tile v touches tile v + 2's elements.
    index = V * 4 + AX * AX
    program = tile_loop(*base(index, index))
    assert distribute_tiles(program, ENV) is program


def test_refuses_patterns_that_differ():
    # The update works on C[v*4 + a + 4], the elements the next tile initialises.
    program = tile_loop(*base(None, V * 4 + AX + 4))
    assert distribute_tiles(program, ENV) is program


def test_refuses_a_pattern_that_is_not_injective():
    # C[v + a] for a in [0, 4): tiles v and v + 1 share three elements.
    index = V + AX
    program = tile_loop(*base(index, index))
    assert distribute_tiles(program, ENV) is program


def test_refuses_a_loop_that_does_not_start_at_zero():
    program = tile_loop(*base(), start=1, extent=3)
    assert distribute_tiles(program, ENV) is program


def test_refuses_a_loop_of_unknown_extent():
    program = tile_loop(*base(), extent=Var("n"))
    assert distribute_tiles(program, ENV) is program


def test_refuses_an_allocation_in_the_body():
    tmp = ir.Buffer("tmp", (1,), "int32", ir.LOCAL)
    program = tile_loop(*base(None, None, ir.Allocate(tmp, ir.Store(tmp, Const(0), ir.Load(A, V)))))
    assert distribute_tiles(program, ENV) is program


def test_refuses_a_runtime_call_in_the_body():
    program = tile_loop(*base(None, None, ir.Evaluate(Call("coproc_sync", ()))))
    assert distribute_tiles(program, ENV) is program


def test_refuses_an_attribute_scope_in_the_body():
    init, update = base()
    program = tile_loop(init, coproc.in_stage(coproc.COMPUTE_STAGE, update))
    assert distribute_tiles(program, ENV) is program


def test_refuses_a_let_binding_in_the_body():
    t = Var("t")
    program = tile_loop(*base(None, None, ir.LetStmt(t, V * 2, ir.Store(D, V, t))))
    assert distribute_tiles(program, ENV) is program
