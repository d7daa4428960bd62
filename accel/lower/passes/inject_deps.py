"""Inject dependencies: token pushes and pops between the load, compute and store modules.

The three modules run concurrently and order their work only through dependency tokens. First
the module scopes are merged: neighbouring statements of one module form one scope, and a loop
whose body is one module's scope moves inside it. Then, walking the program in order, wherever
one module's scope is followed by another's (``from`` then ``to``), the end of the first pushes
a token to ``to`` (``coproc_dep_push(from, to)``) and the start of the second pops it
(``coproc_dep_pop(from, to)``): read-after-write on the way forward (load -> compute -> store),
and write-after-read on the way back (compute -> load, store -> compute) so that a buffer is
not overwritten while it is still being read. Virtual-thread loops are transparent here (each
thread gets its own copies of the calls later), so they must enclose every other loop.

A loop whose body ends in a different module than it starts gets a loop-carried pair: the end
of an iteration pushes to the start of the next. Its first pop then needs a token from before
the loop and its last push a pop after it; when the neighbouring scope does not provide them, a
lone push primes the queue before, or a lone pop drains it after, so every queue is balanced
and the tokens of one run never leak into the next.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from accel.env import Environment
from accel.errors import LoweringError
from accel.lower import coproc, ir

Pair = tuple[int, int]


def inject_deps(stmt: ir.Stmt, env: Environment) -> ir.Stmt:
    """Merge module scopes and insert the token pushes and pops between them."""
    stmt = ir.rewrite_stmt(stmt, _merge_scopes)
    planner = _Planner()
    span = planner.visit(stmt)
    if span is None:
        return stmt
    for pair in sorted(span.enter_pops):
        planner.before(span.head, coproc.DEP_PUSH, pair)
    for pair in sorted(span.exit_pushes):
        planner.after(span.tail, coproc.DEP_POP, pair)
    return planner.rebuild(stmt)


def _merge_scopes(s: ir.Stmt) -> ir.Stmt | None:
    if isinstance(s, ir.Seq):
        merged: list[ir.Stmt] = []
        for child in s.stmts:
            prev = merged[-1] if merged else None
            if coproc.is_stage(child) and coproc.is_stage(prev) and prev.value == child.value:
                merged[-1] = coproc.in_stage(child.value, ir.seq(prev.body, child.body))
            else:
                merged.append(child)
        return ir.seq(*merged) if len(merged) != len(s.stmts) else None
    if isinstance(s, ir.For) and s.kind != "vthread" and coproc.is_stage(s.body):
        loop = ir.For(s.var, s.min, s.extent, s.body.body, s.kind)
        return coproc.in_stage(s.body.value, loop)
    return None


@dataclass
class _Span:
    """A piece of the program that uses the accelerator, seen from outside."""

    head: ir.Stmt  # the statement a pop on entry goes before
    tail: ir.Stmt  # the statement a push on exit goes after
    enter: int  # the module it starts in
    exit: int  # the module it ends in
    enter_pops: set[Pair] = field(default_factory=set)  # pops it already does on entry
    exit_pushes: set[Pair] = field(default_factory=set)  # pushes it already does on exit


class _Planner:
    def __init__(self):
        self._before: dict[int, list[ir.Stmt]] = {}
        self._after: dict[int, list[ir.Stmt]] = {}
        self._loops: list = []  # the serial loops around the statement being planned

    def before(self, s: ir.Stmt, kind: coproc.RuntimeCall, pair: Pair) -> None:
        self._before.setdefault(id(s), []).append(_dep(kind, pair))

    def after(self, s: ir.Stmt, kind: coproc.RuntimeCall, pair: Pair) -> None:
        self._after.setdefault(id(s), []).append(_dep(kind, pair))

    # -- planning --------------------------------------------------------------------------
    def visit(self, s: ir.Stmt) -> _Span | None:
        if coproc.is_stage(s):
            return _Span(s, s, s.value, s.value)
        if isinstance(s, ir.For) and s.kind == "vthread":
            if self._loops:  # a token primed before that loop would be popped once per thread
                raise LoweringError(
                    f"virtual thread {s.var.name} is inside loop {self._loops[-1].name}: move the "
                    "cthread axes outside every other loop (reorder them first)"
                )
            # Threads are planned as one; inject_vthread then gives each its own tokens.
            return self.visit(s.body)
        if isinstance(s, ir.For):
            self._loops.append(s.var)
            inner = self.visit(s.body)
            self._loops.pop()
            if inner is None:
                return None
            carried = self.link(inner, inner)
            return _Span(s, s, inner.enter, inner.exit, set(carried), set(carried))
        if isinstance(s, ir.IfThenElse):
            if any(coproc.is_stage(x) for x in ir.walk_stmt(s)):
                raise LoweringError(
                    f"accelerator work under the condition {s.cond}: a split that does not "
                    "divide its axis guards the body; choose a factor that divides it"
                )
            return None
        spans = [span for child in ir.child_stmts(s) if (span := self.visit(child))]
        if not spans:
            return None
        for prev, nxt in zip(spans, spans[1:]):
            self.link(prev, nxt)
        first, last = spans[0], spans[-1]
        return _Span(
            first.head, last.tail, first.enter, last.exit, first.enter_pops, last.exit_pushes
        )

    def link(self, prev: _Span, nxt: _Span) -> set[Pair]:
        """Order ``nxt`` after ``prev``; returns the pairs pushed by one and popped by the other."""
        pushes, pops = set(prev.exit_pushes), set(nxt.enter_pops)
        if prev.exit != nxt.enter:
            pair = (prev.exit, nxt.enter)
            if pair not in pushes:
                self.after(prev.tail, coproc.DEP_PUSH, pair)
                pushes.add(pair)
            if pair not in pops:
                self.before(nxt.head, coproc.DEP_POP, pair)
                pops.add(pair)
        for pair in sorted(pushes - pops):  # nobody after pops it: drain
            self.after(prev.tail, coproc.DEP_POP, pair)
        for pair in sorted(pops - pushes):  # nobody before pushed it: prime
            self.before(nxt.head, coproc.DEP_PUSH, pair)
        return pushes & pops

    # -- rewriting -------------------------------------------------------------------------
    def rebuild(self, s: ir.Stmt) -> ir.Stmt:
        if isinstance(s, ir.Seq):
            new = ir.seq(*[self.rebuild(c) for c in s.stmts])
        elif isinstance(s, (ir.For, ir.Allocate, ir.AttrStmt, ir.LetStmt)):
            new = _with_body(s, self.rebuild(s.body))
        elif isinstance(s, ir.IfThenElse):
            else_case = None if s.else_case is None else self.rebuild(s.else_case)
            new = ir.IfThenElse(s.cond, self.rebuild(s.then_case), else_case)
        else:
            new = s
        before = self._before.get(id(s), [])
        after = self._after.get(id(s), [])
        if not (before or after):
            return new
        if coproc.is_stage(new):  # keep the calls inside the module's scope
            return coproc.in_stage(new.value, ir.seq(*before, new.body, *after))
        return ir.seq(*before, new, *after)


def _with_body(s, body: ir.Stmt) -> ir.Stmt:
    return s if body is s.body else dataclasses.replace(s, body=body)


def _dep(kind: coproc.RuntimeCall, pair: Pair) -> ir.Evaluate:
    """A token call (``DEP_PUSH`` or ``DEP_POP``) between the stages of ``pair``."""
    from_stage, to_stage = pair
    return kind(from_stage=from_stage, to_stage=to_stage)
