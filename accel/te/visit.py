"""Generic traversal and rewriting of expression trees.

Children are found from the dataclass fields of each node (expressions, and tuples of them), so
new node kinds need no visitor boilerplate. Rewrites return the same object when nothing
changed, so unchanged subtrees stay shared.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from accel.te.expr import Expr, Var

_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(node: Expr) -> tuple[str, ...]:
    cls = type(node)
    names = _CHILD_FIELDS.get(cls)
    if names is None:
        names = (
            tuple(
                f.name
                for f in dataclasses.fields(cls)
                if f.name not in ("dtype", "tensor", "buffer")
            )
            if dataclasses.is_dataclass(cls)
            else ()
        )
        _CHILD_FIELDS[cls] = names
    return names


def children(node: Expr) -> Iterator[Expr]:
    """The direct sub-expressions of ``node``."""
    for name in _child_fields(node):
        value = getattr(node, name)
        if isinstance(value, Expr):
            yield value
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Expr):
                    yield item


def walk(node: Expr) -> Iterator[Expr]:
    """Every node of the tree, parents before children."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(children(current))))


def rewrite(node: Expr, fn: Callable[[Expr], Expr | None]) -> Expr:
    """Rebuild ``node`` bottom-up; ``fn`` may return a replacement for any (rebuilt) node.

    ``fn`` sees each node after its children were rewritten; returning None keeps the node.
    """
    changes = {}
    for name in _child_fields(node):
        value = getattr(node, name)
        if isinstance(value, Expr):
            new = rewrite(value, fn)
            if new is not value:
                changes[name] = new
        elif isinstance(value, tuple) and any(isinstance(v, Expr) for v in value):
            new_items = tuple(rewrite(v, fn) if isinstance(v, Expr) else v for v in value)
            if any(a is not b for a, b in zip(new_items, value)):
                changes[name] = new_items
    if changes:
        node = dataclasses.replace(node, **changes)
    replacement = fn(node)
    return node if replacement is None else replacement


def substitute(node: Expr, mapping: dict[Var, Expr]) -> Expr:
    """Replace variables by expressions."""
    if not mapping:
        return node
    return rewrite(node, lambda e: mapping.get(e) if isinstance(e, Var) else None)


def free_vars(node: Expr) -> set[Var]:
    """The variables that occur in ``node``."""
    return {e for e in walk(node) if isinstance(e, Var)}
