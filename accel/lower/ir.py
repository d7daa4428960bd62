"""The loop IR: flattened buffers, loads and stores, loops, allocations, attributes, calls.

Statements are immutable dataclasses. Buffers are one-dimensional after lowering: a load or store
carries one flat element index. :func:`rewrite_stmt` rebuilds a statement tree bottom-up,
sharing every subtree that did not change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from accel.te.expr import Const, Expr, Var, arg_str, expr_str
from accel.te.visit import rewrite

GLOBAL = "global"
LOCAL = "local"


@dataclass(frozen=True, eq=False)
class Buffer:
    """A named array in a memory scope; ``shape`` is its logical shape, stored flat."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scope: str = GLOBAL

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __repr__(self) -> str:
        return f"Buffer({self.name}, {self.shape}, {self.dtype}, {self.scope})"

    def print_expr(self, text) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Load(Expr):
    """The element ``index`` of a flat buffer."""

    buffer: Buffer
    index: Expr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.buffer.dtype

    def print_expr(self, text) -> str:
        return f"{self.buffer.name}[{text(self.index)}]"


class Stmt:
    """Base class of statements."""

    __slots__ = ()

    def __str__(self) -> str:
        return stmt_str(self)


@dataclass(frozen=True, slots=True)
class Store(Stmt):
    buffer: Buffer
    index: Expr
    value: Expr


@dataclass(frozen=True, slots=True)
class For(Stmt):
    """``for var in [min, min + extent)``; ``kind`` is serial, unrolled, vectorized or vthread."""

    var: Var
    min: Expr
    extent: Expr
    body: Stmt
    kind: str = "serial"


@dataclass(frozen=True, slots=True)
class Allocate(Stmt):
    """Storage for ``buffer`` inside ``body``."""

    buffer: Buffer
    body: Stmt


@dataclass(frozen=True, slots=True)
class IfThenElse(Stmt):
    cond: Expr
    then_case: Stmt
    else_case: Stmt | None = None


@dataclass(frozen=True, slots=True)
class LetStmt(Stmt):
    var: Var
    value: Expr
    body: Stmt


@dataclass(frozen=True, slots=True)
class Seq(Stmt):
    stmts: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True)
class AttrStmt(Stmt):
    """An annotation on ``body``: a pragma, a storage scope, a virtual thread, ..."""

    node: Any
    key: str
    value: Any
    body: Stmt


@dataclass(frozen=True, slots=True)
class Evaluate(Stmt):
    """Evaluate an expression for its effect (a runtime call)."""

    value: Expr


def seq(*stmts: Stmt | None) -> Stmt:
    """A sequence, flattening nested sequences and dropping None; one statement stays itself."""
    flat: list[Stmt] = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, Seq):
            flat.extend(s.stmts)
        else:
            flat.append(s)
    if len(flat) == 1:
        return flat[0]
    return Seq(tuple(flat))


def loop(var: Var, extent: int | Expr, body: Stmt, kind: str = "serial") -> For:
    extent = extent if isinstance(extent, Expr) else Const(int(extent))
    return For(var, Const(0), extent, body, kind)


_STMT_CHILDREN = ("body", "then_case", "else_case")
_EXPR_FIELDS = ("index", "value", "cond", "min", "extent")


def child_stmts(s: Stmt) -> Iterator[Stmt]:
    if isinstance(s, Seq):
        yield from s.stmts
        return
    for name in _STMT_CHILDREN:
        child = getattr(s, name, None)
        if isinstance(child, Stmt):
            yield child


def walk_stmt(s: Stmt) -> Iterator[Stmt]:
    """Every statement, parents first."""
    stack = [s]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(child_stmts(current))))


def stmt_exprs(s: Stmt) -> Iterator[Expr]:
    """The expressions held directly by ``s``."""
    for name in _EXPR_FIELDS:
        value = getattr(s, name, None)
        if isinstance(value, Expr):
            yield value


def rewrite_stmt(
    s: Stmt,
    fstmt: Callable[[Stmt], Stmt | None] | None = None,
    fexpr: Callable[[Expr], Expr | None] | None = None,
) -> Stmt:
    """Rebuild ``s`` bottom-up: ``fexpr`` on every expression node, ``fstmt`` on every statement."""
    changes: dict[str, Any] = {}
    if isinstance(s, Seq):
        new = tuple(rewrite_stmt(c, fstmt, fexpr) for c in s.stmts)
        if any(a is not b for a, b in zip(new, s.stmts)):
            changes["stmts"] = new
    else:
        for name in _STMT_CHILDREN:
            child = getattr(s, name, None)
            if isinstance(child, Stmt):
                new_child = rewrite_stmt(child, fstmt, fexpr)
                if new_child is not child:
                    changes[name] = new_child
        if fexpr is not None:
            for name in _EXPR_FIELDS:
                value = getattr(s, name, None)
                if isinstance(value, Expr):
                    new_value = rewrite(value, fexpr)
                    if new_value is not value:
                        changes[name] = new_value
    if changes:
        s = dataclasses.replace(s, **changes)
    if fstmt is not None:
        replacement = fstmt(s)
        if replacement is not None:
            return replacement
    return s


# -- printing (expressions print with accel.te.expr.expr_str) ------------------------------


def stmt_str(s: Stmt, indent: int = 0) -> str:
    """The statement as indented text, one statement a line."""
    lines: list[str] = []
    _emit(s, indent, lines)
    return "\n".join(lines)


def _emit(s: Stmt, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    if isinstance(s, Seq):
        for child in s.stmts:
            _emit(child, depth, out)
    elif isinstance(s, For):
        kind = "" if s.kind == "serial" else f"{s.kind} "
        out.append(f"{pad}{kind}for ({s.var.name}, {expr_str(s.min)}, {expr_str(s.extent)}) {{")
        _emit(s.body, depth + 1, out)
        out.append(pad + "}")
    elif isinstance(s, Allocate):
        b = s.buffer
        if b.scope not in (GLOBAL, LOCAL):
            out.append(f'{pad}// attr [{b.name}] storage_scope = "{b.scope}"')
        out.append(f"{pad}allocate {b.name}[{b.dtype} * {b.size}]")
        _emit(s.body, depth, out)
    elif isinstance(s, Store):
        out.append(f"{pad}{s.buffer.name}[{expr_str(s.index)}] = {expr_str(s.value)}")
    elif isinstance(s, IfThenElse):
        out.append(f"{pad}if {expr_str(s.cond)} {{")
        _emit(s.then_case, depth + 1, out)
        if s.else_case is not None:
            out.append(pad + "} else {")
            _emit(s.else_case, depth + 1, out)
        out.append(pad + "}")
    elif isinstance(s, LetStmt):
        out.append(f"{pad}let {s.var.name} = {expr_str(s.value)}")
        _emit(s.body, depth, out)
    elif isinstance(s, AttrStmt):
        node = getattr(s.node, "name", s.node)
        out.append(f"{pad}// attr [{node}] {s.key} = {arg_str(s.value)}")
        _emit(s.body, depth, out)
    elif isinstance(s, Evaluate):
        out.append(pad + expr_str(s.value))
    else:
        out.append(pad + repr(s))


def function_str(name: str, params: list[Buffer], body: Stmt) -> str:
    """A whole lowered function: its signature and body."""
    sig = ", ".join(f"{b.name}: {b.dtype}{list(b.shape)}" for b in params)
    return f"primfn {name}({sig}) {{\n{stmt_str(body, 1)}\n}}"
