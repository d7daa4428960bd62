"""Fold micro-op loops: loops around a micro-op kernel become the instruction's loop levels.

First a loop whose whole body is one kernel (a compute scope holding one ``coproc_uop_scope``)
moves inside the kernel, so the kernel covers the loop. Then, inside each kernel, loops whose
micro-op indices are affine in the loop variable (constant step in every ``uop_push``) become
``VTAUopLoopBegin(extent, dst_step, src_step, wgt_step)`` levels, at most two in all with the
levels the kernel already has; the remaining loops stay inside the kernel and are unrolled
into micro-ops when it is recorded. The kernel's iterations are independent (accumulations, or
elementwise updates of distinct tiles), which is what allows choosing any two loops.
"""

from __future__ import annotations

from accel.arith.simplify import affine, simplify
from accel.env import Environment
from accel.lower import coproc, ir
from accel.lower.substitute import substitute_stmt
from accel.te.expr import Call, Const
from accel.te.visit import free_vars

MAX_LEVELS = 2
_INDEX_FIELDS = ("dst", "src", "wgt")  # the micro-op indices a kernel loop steps


def fold_uop_loops(stmt: ir.Stmt, env: Environment) -> ir.Stmt:
    """Move loops into the kernels they wrap, then fold them into loop levels."""
    stmt = ir.rewrite_stmt(stmt, _absorb_loop)
    return ir.rewrite_stmt(stmt, _fold_kernel)


def _absorb_loop(s: ir.Stmt) -> ir.Stmt | None:
    if not (isinstance(s, ir.For) and s.kind in ("serial", "unrolled")):
        return None
    stage = s.body
    if not (coproc.is_stage(stage) and stage.value == coproc.COMPUTE_STAGE):
        return None
    kernel = stage.body
    if not coproc.is_uop_scope(kernel):
        return None
    inner = ir.For(s.var, s.min, s.extent, kernel.body, s.kind)
    return coproc.in_stage(coproc.COMPUTE_STAGE, coproc.uop_scope(kernel.value, inner))


def _fold_kernel(s: ir.Stmt) -> ir.Stmt | None:
    if not coproc.is_uop_scope(s):
        return None
    outer, body = _peel_loops(s.body)
    parts = list(body.stmts) if isinstance(body, ir.Seq) else [body]
    begins = []
    while parts and coproc.LOOP_BEGIN.matches(parts[0]):
        begins.append(parts.pop(0))
    ends = []
    while parts and coproc.LOOP_END.matches(parts[-1]):
        ends.append(parts.pop())
    core = ir.seq(*parts)
    inner, leaf = _peel_loops(core) if len(parts) == 1 else ([], core)
    pushes = [c for c in _calls(leaf) if coproc.UOP_PUSH.matches(c)]
    if not pushes:
        return None
    free = MAX_LEVELS - len(begins)
    outer_levels, inner_levels, kept = [], [], []
    for position, lp in [("outer", lp) for lp in outer] + [("inner", lp) for lp in inner]:
        steps = _steps(lp, pushes, leaf) if free > 0 else None
        if steps is None:
            kept.append(lp)
            continue
        free -= 1
        dst, src, wgt = steps
        begin = coproc.LOOP_BEGIN(extent=lp.extent, dst_factor=dst, src_factor=src, wgt_factor=wgt)
        (outer_levels if position == "outer" else inner_levels).append(begin)
        leaf = substitute_stmt(leaf, {lp.var: Const(0)})
    if len(kept) == len(outer) + len(inner):
        return None
    for lp in reversed(kept):
        leaf = ir.For(lp.var, lp.min, lp.extent, leaf, lp.kind)
    levels = outer_levels + begins + inner_levels
    ends = [coproc.LOOP_END() for _ in levels]
    return coproc.uop_scope(s.value, ir.seq(*levels, leaf, *ends))


def _peel_loops(s: ir.Stmt) -> tuple[list[ir.For], ir.Stmt]:
    loops = []
    while isinstance(s, ir.For) and s.kind in ("serial", "unrolled") and s.min == Const(0):
        loops.append(s)
        s = s.body
    return loops, s


def _calls(s: ir.Stmt) -> list[Call]:
    return [
        x.value for x in ir.walk_stmt(s) if isinstance(x, ir.Evaluate) and isinstance(x.value, Call)
    ]


def _steps(lp: ir.For, pushes: list[Call], leaf: ir.Stmt) -> tuple[int, int, int] | None:
    """The constant (dst, src, wgt) steps of ``lp`` shared by every micro-op, or None."""
    if not isinstance(lp.extent, Const):
        return None
    var = lp.var
    steps = None
    for push in pushes:
        mine = []
        for field in _INDEX_FIELDS:
            index = coproc.UOP_PUSH.get(push, field)
            offset = index.offset if isinstance(index, coproc.SramAddr) else index
            form = affine(simplify(offset))
            if any(var in free_vars(a) for a in form.terms if a is not var):
                return None
            mine.append(form.coef(var))
        if steps is not None and tuple(mine) != steps:
            return None
        steps = tuple(mine)
    for x in ir.walk_stmt(leaf):
        if isinstance(x, ir.For) and var in free_vars(x.extent):
            return None
    return steps
