"""Matchers shared by the passes that turn a loop nest over tiles into instructions.

``inject_dma`` (a copy between DRAM and an SRAM) and ``inject_alu`` (an elementwise update of
accumulator tiles) both look at a perfect nest ``for v1, ..., vn: dst[f(v)] = ... src[g(v)]``
whose index expressions must be affine in the nest, whose innermost loops must cover exactly one
tile contiguously on every side of the access, and whose outer loops step by whole tiles. This
module answers those questions once; each pass passes its own ``fail`` so refusals name the
pass, the axis and the buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NoReturn

from accel.arith.simplify import Affine, affine, from_affine, simplify
from accel.te.expr import Expr, Var
from accel.te.visit import free_vars

Fail = Callable[[str], NoReturn]
Nest = Sequence[tuple[Var, int]]  # (variable, constant extent), outermost first


@dataclass(frozen=True)
class TileLoop:
    """A loop outside the tile: its variable, extent, and step in whole tiles on each named side
    of the access (``sram`` and ``dram`` for a DMA, ``dst`` and ``src`` for an ALU kernel)."""

    var: Var
    extent: int
    steps: Mapping[str, int]


def affine_in(index: Expr, nest: Nest, fail: Fail, loops_name: str) -> Affine:
    """The affine form of ``index``; refuses a non-affine term that depends on the nest."""
    form = affine(simplify(index))
    nest_vars = {v for v, _ in nest}
    for atom in form.terms:
        if not isinstance(atom, Var) and free_vars(atom) & nest_vars:
            fail(f"the index {index} is not affine in {loops_name}")
    return form


def split_tile(
    nest: Nest, forms: Mapping[str, Affine], tile: int, fail: Fail
) -> tuple[list[tuple[Var, int]], list[tuple[Var, int]]]:
    """(inner, outer): the innermost loops, which must cover one tile of ``tile`` elements with
    unit-stride steps on every side (``forms``: side name -> index form), and the loops outside
    them."""
    size, count = 1, 0
    for var, ext in reversed(nest):
        if size >= tile:
            break
        if any(form.coef(var) != size for form in forms.values()):
            steps = " and ".join(f"{form.coef(var)} {side}" for side, form in forms.items())
            fail(
                f"loop {var.name} inside a tile of {tile} elements is not contiguous "
                f"(steps {steps}, expected {size})"
            )
        size *= ext
        count += 1
    if size != tile:
        fail(f"the innermost loops cover {size} elements, not one tile of {tile}")
    split = len(nest) - count
    return list(nest[split:]), list(nest[:split])


def tile_loops(
    outer: Sequence[tuple[Var, int]], forms: Mapping[str, Affine], tile: int, fail: Fail
) -> list[TileLoop]:
    """The outer loops with their step in whole tiles on each side."""
    loops = []
    for var, ext in outer:
        steps = {}
        for side, form in forms.items():
            coef = form.coef(var)
            if coef % tile:
                fail(f"loop {var.name} steps {coef} elements, not whole tiles of {tile}")
            steps[side] = coef // tile
        loops.append(TileLoop(var, ext, steps))
    return loops


def merge_loops(loops: Sequence[TileLoop], keep: set[Var] = frozenset()) -> list[TileLoop]:
    """Merge each loop into the one inside it where every side stays contiguous (the outer step
    is the inner step times the inner extent); loops in ``keep`` are never merged."""
    merged: list[TileLoop] = []
    for lp in reversed(loops):
        if merged:
            inner = merged[-1]
            contiguous = all(
                lp.steps[side] == step * inner.extent for side, step in inner.steps.items()
            )
            if contiguous and lp.var not in keep and inner.var not in keep:
                merged[-1] = replace(inner, extent=inner.extent * lp.extent)
                continue
        merged.append(lp)
    return list(reversed(merged))


def tile_base(form: Affine, nest: Nest, tile: int, fail: Fail) -> Expr:
    """The index with the nest's loops at 0, in tiles; refuses an offset off a tile boundary."""
    nest_vars = {v for v, _ in nest}
    rest = Affine({a: c for a, c in form.terms.items() if a not in nest_vars}, form.const)
    if rest.const % tile or any(c % tile for c in rest.terms.values()):
        fail(f"the offset {from_affine(rest)} is not on a tile boundary of {tile}")
    return simplify(
        from_affine(Affine({a: c // tile for a, c in rest.terms.items()}, rest.const // tile))
    )
