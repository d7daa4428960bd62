"""Simplify: fold arithmetic with loop ranges in scope, drop decided branches and unit loops.

Matches every expression of the program; produces the canonical forms of ``accel.arith.simplify``.
A loop of extent 1 is replaced by its body with the variable set to its minimum; an ``if`` whose
condition the loop ranges decide keeps only the branch taken. Refuses nothing.
"""

from __future__ import annotations

import dataclasses

from accel.arith.simplify import simplify
from accel.lower import ir
from accel.lower.substitute import substitute_stmt
from accel.te.expr import Const, Expr, Logic


def simplify_pass(stmt: ir.Stmt, env=None) -> ir.Stmt:
    """The simplified program (an empty program becomes an empty sequence)."""
    result = _visit(stmt, {})
    return ir.Seq(()) if result is None else result


def _visit(s: ir.Stmt, ranges: dict) -> ir.Stmt | None:
    if isinstance(s, ir.For):
        extent = simplify(s.extent, ranges)
        minimum = simplify(s.min, ranges)
        if isinstance(extent, Const) and extent.value == 1 and s.kind != "vthread":
            body = substitute_stmt(s.body, {s.var: minimum})
            return _visit(body, ranges)
        inner = dict(ranges)
        if isinstance(extent, Const) and isinstance(minimum, Const):
            inner[s.var] = (minimum.value, minimum.value + extent.value - 1)
        body = _visit(s.body, inner)
        if body is None:
            return None
        if body is s.body and extent is s.extent and minimum is s.min:
            return s
        return ir.For(s.var, minimum, extent, body, s.kind)
    if isinstance(s, ir.Seq):
        stmts = [_visit(c, ranges) for c in s.stmts]
        kept = [c for c in stmts if c is not None]
        if not kept:
            return None
        if len(kept) == len(s.stmts) and all(a is b for a, b in zip(kept, s.stmts)):
            return s
        return ir.seq(*kept)
    if isinstance(s, ir.IfThenElse):
        cond = simplify(s.cond, ranges)
        if isinstance(cond, Const):
            branch = s.then_case if cond.value else s.else_case
            return None if branch is None else _visit(branch, ranges)
        then_case = _visit(s.then_case, ranges)
        else_case = None if s.else_case is None else _visit(s.else_case, ranges)
        if then_case is None and else_case is None:
            return None
        if then_case is None:
            return ir.IfThenElse(Logic("not", cond), else_case)
        return ir.IfThenElse(cond, then_case, else_case)
    if isinstance(s, (ir.Allocate, ir.AttrStmt, ir.LetStmt)):
        if isinstance(s, ir.LetStmt):
            value = simplify(s.value, ranges)
            body = _visit(s.body, ranges)
            return None if body is None else ir.LetStmt(s.var, value, body)
        body = _visit(s.body, ranges)
        if body is None:
            return None
        if isinstance(s, ir.AttrStmt) and isinstance(s.value, Expr):
            return ir.AttrStmt(s.node, s.key, simplify(s.value, ranges), body)
        return s if body is s.body else dataclasses.replace(s, body=body)
    if isinstance(s, ir.Store):
        return ir.Store(s.buffer, simplify(s.index, ranges), simplify(s.value, ranges))
    if isinstance(s, ir.Evaluate):
        return ir.Evaluate(simplify(s.value, ranges))
    return s
