"""Distribute tiles: a loop over tiles around several statements becomes one loop per statement.

``distribute_loops`` splits a loop when each iteration accesses a shared buffer only in a window
of elements that no other iteration touches. Loops over tiles fail that test, since the rows of
one tile interleave with the rows of its neighbours: after ``tile(i, j, 16, 16)`` the
initialisation and the reduction of ``C`` stay together inside ``j.outer``, and host code runs
an array step per tile. This pass splits them with another argument: disjoint footprints.

Matches ``for v: {S1; S2; ...}`` and produces ``for v: S1; for v: S2; ...`` (same variable,
bounds and kind). It runs bottom-up, so a whole nest of tile loops splits into one nest per
statement. The split is legal when every buffer that two statements access (and one writes) is
accessed, by every access, at one index pattern that is injective in ``v`` and the loops inside:
then two iterations of ``v`` never touch the same element, so no statement can see another's
writes from a different iteration. A pattern is the part of the index from outside the loop and
the terms of ``v`` and the inner loops, where a tile loop and its inner loop count as one term
(``j.outer*3 + j.inner`` steps like ``j.inner`` over ``3 * extent(j.outer)`` points, see
:func:`merge_axes`) whose range the guards around the access may shorten (``j.outer*3 + j.inner
< 10`` for a split that does not divide 10).

Refuses (leaves the loop as it is) when the body is not a sequence, when that test fails (an
index not affine in loop variables, patterns that differ, or one that is not injective), when
``v`` does not start at 0 or its extent is not constant, and when the body holds anywhere
  - an allocation, a runtime call or an attribute scope, as ``distribute_loops`` does;
  - a let binding, whose variable may change from one iteration to the next.

The tile arithmetic here (:func:`merge_axes`, :func:`axis_limit`, :func:`injective`) is shared
with the host code generator, which regroups the loops of one nest the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence

from accel.arith.simplify import affine, simplify
from accel.env import Environment
from accel.lower import ir
from accel.lower.passes.distribute_loops import split_loops
from accel.lower.passes.inline_copies import conjuncts, loop_ranges
from accel.te.expr import Cmp, Const, Expr, Var
from accel.te.visit import walk

_UNSPLITTABLE = (ir.Allocate, ir.Evaluate, ir.AttrStmt, ir.LetStmt)


def distribute_tiles(stmt: ir.Stmt, env: Environment | None = None) -> ir.Stmt:
    """``stmt`` with every loop that :func:`distribute` allows split, innermost loops first
    (``env`` is unused: the pass needs no configuration)."""
    return split_loops(stmt, distribute)


def distribute(s: ir.For) -> list[ir.For] | None:
    """The loops ``s`` splits into, one per statement of its body, or None if it cannot split."""
    body = s.body
    if not (
        isinstance(body, ir.Seq)
        and isinstance(s.min, Const)
        and s.min.value == 0
        and isinstance(s.extent, Const)
    ):
        return None
    if any(isinstance(node, _UNSPLITTABLE) for node in ir.walk_stmt(body)):
        return None
    inner = loop_ranges(body)
    accesses: dict[ir.Buffer, list[tuple[int, Expr, bool, tuple[Expr, ...]]]] = {}
    for position, child in enumerate(body.stmts):
        for buf, index, write, conds in _accesses(child, ()):
            accesses.setdefault(buf, []).append((position, index, write, conds))
    for items in accesses.values():
        if len({item[0] for item in items}) < 2 or not any(item[2] for item in items):
            continue
        patterns = {
            _pattern(s.var, s.extent.value, index, conds, inner) for _, index, _, conds in items
        }
        if len(patterns) != 1 or None in patterns:
            return None
        _, terms = patterns.pop()
        if not injective([(abs(coef), size) for coef, _, size, _, _ in terms]):
            return None
    return [ir.For(s.var, s.min, s.extent, child, s.kind) for child in body.stmts]


def _pattern(v: Var, extent: int, index: Expr, conds: tuple[Expr, ...], inner: dict):
    """The access pattern of ``index`` (see the module docstring) as a hashable value: the part
    from outside the loop, and per term ``(coef, start, points, extents of its loops, position
    of v among them)``; None if ``index`` is not affine in variables or ignores ``v``."""
    form = affine(simplify(index))
    if form.coef(v) == 0 or not all(isinstance(atom, Var) for atom in form.terms):
        return None
    ranges = {v: (0, extent - 1)}
    ranges.update((a, inner[a]) for a in form.terms if a in inner)
    local = list(ranges)
    outer = frozenset((a, c) for a, c in form.terms.items() if a not in ranges)
    extents = [ranges[a][1] - ranges[a][0] + 1 for a in local]
    keep = {m for m, a in enumerate(local) if ranges[a][0] != 0 or extents[m] == float("inf")}
    coefs = [form.coef(a) for a in local]
    terms = []
    for axis in merge_axes(extents, [coefs], keep):
        weights = axis_weights(axis, extents)
        size = int(weights[0] * extents[axis[0]]) if len(axis) > 1 else extents[axis[0]]
        for cond in conds:
            limit = axis_limit(cond, {local[m]: w for m, w in zip(axis, weights)})
            if limit is not None:
                size = min(size, limit)
        v_at = axis.index(0) if 0 in axis else -1
        start = ranges[local[axis[0]]][0] if len(axis) == 1 else 0
        shape = tuple(extents[m] for m in axis)
        terms.append((coefs[axis[-1]], start, size, shape, v_at))
    return (outer, form.const), tuple(sorted(terms))


def _accesses(s: ir.Stmt, conds: tuple[Expr, ...]) -> Iterator:
    """(buffer, index, is a write, the conditions known to hold there) of every load and store
    in ``s``; ``conds`` are those around ``s``."""
    for e in ir.stmt_exprs(s):
        for n in walk(e):
            if isinstance(n, ir.Load):
                yield n.buffer, n.index, False, conds
    if isinstance(s, ir.Store):
        yield s.buffer, s.index, True, conds
    if isinstance(s, ir.IfThenElse):
        yield from _accesses(s.then_case, conds + tuple(conjuncts(s.cond)))
        if s.else_case is not None:
            yield from _accesses(s.else_case, conds)
        return
    for child in ir.child_stmts(s):
        yield from _accesses(child, conds)


# -- tile arithmetic, shared with the host code generator ---------------------------------------


def merge_axes(
    extents: Sequence[int], accesses: Sequence[Sequence[int]], keep: set[int] = frozenset()
) -> tuple[tuple[int, ...], ...]:
    """Group loops into axes, merging tile loops back into whole axes.

    Loop ``o`` merges with loop ``n`` when every access steps ``extent(n)`` times further along
    ``o`` than along ``n`` (``io*16 + ii`` in every index): the pair then runs over
    ``o*extent(n) + n``, one axis of ``extent(o)*extent(n)`` points that steps like ``n``, and
    visits the same elements. Merged axes merge again, so a three-level split becomes one axis.
    Loops in ``keep`` stay axes of their own. ``accesses`` hold the coefficients of each index,
    one per loop. Returns the loops of each axis, outermost first.
    """
    axes = [[m] for m in range(len(extents))]
    sizes = list(extents)
    merged = True
    while merged:
        merged = False
        for x, y in itertools.permutations(range(len(axes)), 2):
            outer, inner = axes[x], axes[y]
            if keep & {*outer, *inner}:
                continue
            if all(c[outer[-1]] == sizes[y] * c[inner[-1]] for c in accesses):
                axes[x], sizes[x] = outer + inner, sizes[x] * sizes[y]
                del axes[y], sizes[y]
                merged = True
                break
    return tuple(tuple(axis) for axis in axes)


def axis_weights(axis: Sequence[int], extents: Sequence[int]) -> tuple[int, ...]:
    """What one step of each loop of a merged axis moves along it (the innermost moves 1)."""
    weights = [1] * len(axis)
    for j in range(len(axis) - 2, -1, -1):
        weights[j] = weights[j + 1] * extents[axis[j + 1]]
    return tuple(weights)


def axis_limit(cond: Expr, weights: Mapping[Var, int]) -> int | None:
    """The bound ``t < limit`` that ``cond`` puts on an axis ``t = sum(weights[v] * v)``, when
    ``cond`` is ``g*t + c < b`` or ``g*t + c <= b`` for constants ``g > 0``, ``c`` and ``b`` and
    names no other variable (a non-dividing split's guard, ``i.outer*16 + i.inner < 1000``);
    else None."""
    if not (isinstance(cond, Cmp) and cond.op in ("lt", "le") and isinstance(cond.b, Const)):
        return None
    form = affine(simplify(cond.a))
    if set(form.terms) != set(weights):
        return None
    first = next(iter(weights))
    scale, rem = divmod(form.coef(first), weights[first])
    if rem or scale <= 0 or any(form.coef(a) != scale * w for a, w in weights.items()):
        return None
    room = cond.b.value - form.const + (1 if cond.op == "le" else 0)  # g*t < room
    return max(0, -(-room // scale))


def injective(steps: Sequence[tuple[int, int]]) -> bool:
    """Whether ``sum(c * i)`` over ``0 <= i < e`` for the ``(c, e)`` in ``steps`` takes distinct
    values at distinct points (each step larger than all the smaller ones can reach)."""
    reach = 0
    for c, e in sorted(steps):
        if e <= 1:
            continue
        if c <= reach:
            return False
        reach += c * (e - 1)
    return True
