"""inline_copies: a ``local`` copy of a buffer is read through, at the composed index.

The matched case is a tiled host matmul with ``cache_read(A, "local")`` at the reduction tile,
whose 10 rows do not divide by the tile of 4, so both the copy and its reader are guarded. Each
refusal is the program after the previous pass (or a schedule lowered to it) with one change,
and the pass must give that very program back.
"""

from __future__ import annotations

import numpy as np
from pass_helpers import allocations, lowered, value

import accel
from accel import te
from accel.lower import coproc, ir
from accel.lower.passes.inline_copies import inline_copies
from accel.lower.pipeline import pass_names
from accel.te.expr import Call, Cast, Const, Expr
from accel.te.visit import walk

ENV = accel.get_env()
PASS = "inline_copies"
PREVIOUS = pass_names()[pass_names().index(PASS) - 1]
M, N, K, TILE = 10, 6, 8, 4


def tiled_matmul(scope: str = "local"):
    """C[i, j] = sum_k A[i, k] * B[j, k] in 4 x 4 tiles, with A copied to ``scope`` per tile of
    i and k (at k.outer): A.local[ax0*4 + ax1] = A[(i.outer*4 + ax0)*8 + k.outer*4 + ax1] under
    the guard i.outer*4 + ax0 < 10."""
    A = te.placeholder((M, K), "int8", "A")
    B = te.placeholder((N, K), "int8", "B")
    k = te.reduce_axis((0, K), "k")
    C = te.compute(
        (M, N), lambda i, j: te.sum(A[i, k].astype("int32") * B[j, k].astype("int32"), axis=k), "C"
    )
    s = te.create_schedule(C.op)
    AA = s.cache_read(A, scope, [C])
    io, jo, ii, ji = s[C].tile(*C.op.axis, TILE, TILE)
    ko, ki = s[C].split(k, factor=TILE)
    s[C].reorder(io, jo, ko, ii, ji, ki)
    s[AA].compute_at(s[C], ko)
    return s, [A, B, C]


def loads(stmt: ir.Stmt) -> list[tuple[ir.Load, tuple[Expr, ...]]]:
    """Every load of ``stmt`` with the conditions of the ``if`` statements around it."""
    found = []

    def visit(s: ir.Stmt, conds: tuple[Expr, ...]):
        for e in ir.stmt_exprs(s):
            found.extend((n, conds) for n in walk(e) if isinstance(n, ir.Load))
        for child in ir.child_stmts(s):
            inner = conds + (s.cond,) if child is getattr(s, "then_case", None) else conds
            visit(child, inner)

    visit(stmt, ())
    return found


def the_allocation(program: ir.Stmt) -> ir.Allocate:
    (alloc,) = [s for s in ir.walk_stmt(program) if isinstance(s, ir.Allocate)]
    return alloc


def with_body(program: ir.Stmt, fbody) -> ir.Stmt:
    """``program`` with the statements of its one allocation replaced by ``fbody(stmts)``."""

    def fstmt(s: ir.Stmt) -> ir.Stmt | None:
        if isinstance(s, ir.Allocate):
            return ir.Allocate(s.buffer, ir.seq(*fbody(s.body.stmts)))
        return None

    return ir.rewrite_stmt(program, fstmt)


def the_output(program: ir.Stmt) -> ir.Buffer:
    (C,) = {s.buffer for s in ir.walk_stmt(program) if isinstance(s, ir.Store)} - {
        the_allocation(program).buffer
    }
    return C


def matmul_before() -> tuple[ir.Stmt, ir.Buffer, ir.Buffer]:
    """The matched program after the previous pass, the copy A.local and its source A."""
    program = lowered(*tiled_matmul(), PREVIOUS)
    alloc = the_allocation(program)
    copy, _reader = alloc.body.stmts
    (store,) = [s for s in ir.walk_stmt(copy) if isinstance(s, ir.Store)]
    return program, alloc.buffer, store.value.buffer


def test_it_runs_after_the_accelerator_passes_and_before_distribute_tiles():
    names = pass_names()
    assert names.index(PASS) == names.index("coproc_sync") + 1
    assert names.index("distribute_tiles") == names.index(PASS) + 1


# -- the matched case ---------------------------------------------------------------------------


def test_a_local_copy_is_read_through_at_the_composed_index():
    before, local, source = matmul_before()
    assert (local.name, local.scope, source.name) == ("A.local", ir.LOCAL, "A")
    after = lowered(*tiled_matmul(), PASS)
    assert allocations(before) == ["A.local"] and allocations(after) == []
    read = [(e, conds) for e, conds in loads(after) if e.buffer.name in ("A", "A.local")]
    # One read of A in the reduction, none of A.local. It stays under the consumer's guard,
    # which implies the copy's (i.outer*4 + ax0 < 10 with ax0 = i.inner): row 4*2 + 2 = 10 is
    # skipped, row 4*2 + 1 = 9 is read.
    ((load, (guard,)),) = read
    assert load.buffer.name == "A" and load.buffer.scope == ir.GLOBAL
    at = {"j.outer": 0, "j.inner": 0, "i.outer": 2}
    assert [value(guard, **at, **{"i.inner": ii}) for ii in (1, 2)] == [1, 0]
    # A.local[i.inner*4 + k.inner] was A[(i.outer*4 + ax0)*8 + k.outer*4 + ax1] with
    # ax0 = i.inner, ax1 = k.inner: row 4*i.outer + i.inner, column 4*k.outer + k.inner.
    for io, ii, ko, ki in [(0, 0, 0, 0), (0, 3, 1, 2), (2, 1, 1, 3), (1, 2, 0, 1)]:
        at = {"i.outer": io, "i.inner": ii, "k.outer": ko, "k.inner": ki}
        assert value(load.index, **at) == (TILE * io + ii) * K + TILE * ko + ki
    # The copy nest is gone: the reduction tile loop holds the reading nest directly.
    (k_outer,) = [
        s for s in ir.walk_stmt(after) if isinstance(s, ir.For) and s.var.name == "k.outer"
    ]
    assert isinstance(k_outer.body, ir.For) and k_outer.body.var.name == "i.inner"


def test_the_inlined_matmul_runs_like_numpy():
    s, args = tiled_matmul()
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (M, K), dtype=np.int8)
    b = rng.integers(-128, 128, (N, K), dtype=np.int8)
    c = np.full((M, N), 12345, np.int32)
    accel.build(s, args)(a, b, c)
    expected = (a.astype(np.int64) @ b.astype(np.int64).T).astype(np.int32)
    assert c.dtype == np.int32
    np.testing.assert_array_equal(c, expected)


# -- refusals -----------------------------------------------------------------------------------


def test_refuses_a_buffer_outside_the_local_scope():
    program = lowered(*tiled_matmul(scope="global"), PREVIOUS)
    assert the_allocation(program).buffer.scope == ir.GLOBAL
    assert inline_copies(program, ENV) is program


def test_refuses_a_runtime_call_in_the_body():
    before, _local, _source = matmul_before()
    program = with_body(before, lambda stmts: (*stmts, ir.Evaluate(Call("coproc_sync", ()))))
    assert inline_copies(program, ENV) is program


def test_refuses_an_attribute_scope_in_the_body():
    before, _local, _source = matmul_before()
    program = with_body(
        before, lambda stmts: (stmts[0], coproc.in_stage(coproc.COMPUTE_STAGE, stmts[1]))
    )
    assert inline_copies(program, ENV) is program


def test_refuses_a_local_buffer_that_is_computed_not_copied():
    # B = A * 2 is stored, not copied: no statement of the allocation is a copy.
    A = te.placeholder((8,), "int8", "A")
    B = te.compute((8,), lambda i: A[i].astype("int32") * 2, "B")
    C = te.compute((8,), lambda i: B[i] + 1, "C")
    s = te.create_schedule(C.op)
    s[B].set_scope("local")
    program = lowered(s, [A, C], PREVIOUS)
    assert the_allocation(program).buffer.scope == ir.LOCAL
    assert inline_copies(program, ENV) is program


def test_refuses_a_second_write_of_the_copy():
    # After the reader, A.local[0] = 0: the copy is not the only writer.
    before, local, _source = matmul_before()
    program = with_body(before, lambda stmts: (*stmts, ir.Store(local, Const(0), Const(0, "int8"))))
    assert inline_copies(program, ENV) is program


def test_refuses_a_read_of_the_copy_before_it_is_written():
    # C[0] = A.local[0] before the copy: it reads what the copy has not written yet.
    before, local, _source = matmul_before()
    C = the_output(before)
    early = ir.Store(C, Const(0), Cast("int32", ir.Load(local, Const(0))))
    program = with_body(before, lambda stmts: (early, *stmts))
    assert inline_copies(program, ENV) is program


def test_refuses_a_write_of_the_source_after_the_copy():
    # A[0] = 0 after the copy: A.local still holds the old A[0], A no longer does.
    before, _local, source = matmul_before()
    late = ir.Store(source, Const(0), Const(0, "int8"))
    program = with_body(before, lambda stmts: (stmts[0], late, stmts[1]))
    assert inline_copies(program, ENV) is program


def test_refuses_a_read_that_would_become_a_gather():
    # C[i] = A[i] * W.local[i % 4]: W[i % 4] is not affine in i.
    A = te.placeholder((8,), "int8", "A")
    W = te.placeholder((4,), "int8", "W")
    C = te.compute((8,), lambda i: A[i].astype("int32") * W[i % 4].astype("int32"), "C")
    s = te.create_schedule(C.op)
    s.cache_read(W, "local", [C])
    program = lowered(s, [A, W, C], PREVIOUS)
    assert the_allocation(program).buffer.name == "W.local"
    assert inline_copies(program, ENV) is program


def test_refuses_a_read_outside_the_copy_guard():
    # C[0] = A.local[15] with no guard: element 15 (ax0 = 3) was copied only where
    # i.outer*4 + 3 < 10, which fails for i.outer = 2.
    before, local, _source = matmul_before()
    C = the_output(before)
    unguarded = ir.Store(C, Const(0), Cast("int32", ir.Load(local, Const(15))))
    program = with_body(before, lambda stmts: (*stmts, unguarded))
    assert inline_copies(program, ENV) is program
