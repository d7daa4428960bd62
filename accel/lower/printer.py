"""One printer for expressions and statements, in the style of the classic lowered programs."""

from __future__ import annotations

from accel.lower import ir
from accel.te.expr import (
    BINARY_OPS,
    COMPARE_OPS,
    BinOp,
    Call,
    Cast,
    Cmp,
    Const,
    Expr,
    Logic,
    Select,
    Var,
)

_INFIX = {
    "add",
    "sub",
    "mul",
    "floordiv",
    "floormod",
    "div",
    "shl",
    "shr",
    "bitand",
    "bitor",
    "bitxor",
}


def expr_str(e: Expr) -> str:
    """The expression as text: ``((i*16) + j)``, ``A[i, k]``, ``int32(A_buf[i])``."""
    from accel.te.tensor import Reduce, TensorRead

    if isinstance(e, Const):
        if e.dtype == "bool":
            return "True" if e.value else "False"
        if e.dtype == "int32":
            return str(e.value)
        if e.dtype.startswith("float"):
            return f"{e.value!r}f" if e.dtype == "float32" else repr(e.value)
        return f"{e.dtype}({e.value})"
    if isinstance(e, Var):
        return e.name
    if isinstance(e, BinOp):
        if e.op in _INFIX:
            sep = "*" if e.op == "mul" else f" {BINARY_OPS[e.op]} "
            return f"({expr_str(e.a)}{sep}{expr_str(e.b)})"
        return f"{e.op}({expr_str(e.a)}, {expr_str(e.b)})"
    if isinstance(e, Cmp):
        return f"({expr_str(e.a)} {COMPARE_OPS[e.op]} {expr_str(e.b)})"
    if isinstance(e, Logic):
        if e.op == "not":
            return f"!{expr_str(e.a)}"
        return f"({expr_str(e.a)} {'&&' if e.op == 'and' else '||'} {expr_str(e.b)})"
    if isinstance(e, Select):
        return f"select({expr_str(e.cond)}, {expr_str(e.true_value)}, {expr_str(e.false_value)})"
    if isinstance(e, Cast):
        return f"{e.dtype}({expr_str(e.value)})"
    if isinstance(e, Call):
        return f"{e.name}({', '.join(_arg_str(a) for a in e.args)})"
    if isinstance(e, ir.Load):
        return f"{e.buffer.name}[{expr_str(e.index)}]"
    if isinstance(e, TensorRead):
        return f"{e.tensor.name}[{', '.join(expr_str(i) for i in e.indices)}]"
    if isinstance(e, Reduce):
        axes = ", ".join(iv.name for iv in e.axes)
        where = "" if e.condition is None else f", where={expr_str(e.condition)}"
        return f"{e.combiner}({expr_str(e.source)}, axis=[{axes}]{where})"
    return repr(e)


def _arg_str(a) -> str:
    if isinstance(a, Expr):
        return expr_str(a)
    if isinstance(a, ir.Buffer):
        return a.name
    if isinstance(a, str):
        return f'"{a}"'
    return str(a)


def stmt_str(s: ir.Stmt, indent: int = 0) -> str:
    """The statement as indented text, one statement a line."""
    lines: list[str] = []
    _emit(s, indent, lines)
    return "\n".join(lines)


def _emit(s: ir.Stmt, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    if isinstance(s, ir.Seq):
        for child in s.stmts:
            _emit(child, depth, out)
    elif isinstance(s, ir.For):
        kind = "" if s.kind == "serial" else f"{s.kind} "
        out.append(f"{pad}{kind}for ({s.var.name}, {expr_str(s.min)}, {expr_str(s.extent)}) {{")
        _emit(s.body, depth + 1, out)
        out.append(pad + "}")
    elif isinstance(s, ir.Allocate):
        b = s.buffer
        if b.scope not in (ir.GLOBAL, ir.LOCAL):
            out.append(f'{pad}// attr [{b.name}] storage_scope = "{b.scope}"')
        out.append(f"{pad}allocate {b.name}[{b.dtype} * {b.size}]")
        _emit(s.body, depth, out)
    elif isinstance(s, ir.Store):
        out.append(f"{pad}{s.buffer.name}[{expr_str(s.index)}] = {expr_str(s.value)}")
    elif isinstance(s, ir.IfThenElse):
        out.append(f"{pad}if {expr_str(s.cond)} {{")
        _emit(s.then_case, depth + 1, out)
        if s.else_case is not None:
            out.append(pad + "} else {")
            _emit(s.else_case, depth + 1, out)
        out.append(pad + "}")
    elif isinstance(s, ir.LetStmt):
        out.append(f"{pad}let {s.var.name} = {expr_str(s.value)}")
        _emit(s.body, depth, out)
    elif isinstance(s, ir.AttrStmt):
        node = getattr(s.node, "name", s.node)
        out.append(f"{pad}// attr [{node}] {s.key} = {_arg_str(s.value)}")
        _emit(s.body, depth, out)
    elif isinstance(s, ir.Evaluate):
        out.append(pad + expr_str(s.value))
    else:
        out.append(pad + repr(s))


def function_str(name: str, params: list[ir.Buffer], body: ir.Stmt) -> str:
    """A whole lowered function: its signature and body."""
    sig = ", ".join(f"{b.name}: {b.dtype}{list(b.shape)}" for b in params)
    return f"primfn {name}({sig}) {{\n{stmt_str(body, 1)}\n}}"
