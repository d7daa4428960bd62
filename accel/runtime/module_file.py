"""Module files: a built program saved as data, never as code.

A module file is JSON text holding the *lowered program* of a module (its buffers, variables and
statement tree) plus the hardware configuration and the target it was built for. Loading one
rebuilds only the IR node kinds listed in :data:`STMT_FIELDS` and :data:`EXPR_FIELDS`, from fields
that are checked one by one (names, dtypes, scopes, operators, constants, references); the caller
then regenerates the host code from the program with accel's own code generators. Nothing in the
file is ever evaluated, so a tampered file can make loading fail but cannot run code.

Buffers and variables are stored once, in tables, and referenced by their index there: variables
compare by identity, so two variables of the same name stay two variables, and a variable used in
many places is one object again after loading. See ``docs/module_format.md``.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from accel.env import Environment
from accel.errors import BuildError, ConfigError, LoadError
from accel.lower import ir
from accel.lower.coproc import RUNTIME_CALLS, SramAddr
from accel.lower.pipeline import LoweredFunc
from accel.te import dtype as dt
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

FORMAT = "accel-module"
# 2: runtime-call arguments are stored by field name (accel.lower.coproc.RuntimeCall).
VERSION = 2

TARGETS = ("cpu", "accel")
FOR_KINDS = ("serial", "unrolled", "vectorized", "vthread", "parallel")
LOGIC_OPS = ("and", "or", "not")
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
SCOPE_RE = re.compile(r"[a-z_.]+")
# String arguments of calls and string values of attributes: plain words, nothing to quote.
TEXT_RE = re.compile(r"[A-Za-z0-9_. \-]*")

# Generous for programs (a few dozen levels deep), and well inside Python's recursion limit.
MAX_DEPTH = 200
MAX_TEXT_CHARS = 64 << 20
PLAIN_INT_RANGE = dt.value_range("int64")

# The node kinds a file may hold and the kind of value each field takes; the reader and the writer
# both follow these tables, and the tests check them against the dataclass fields.
EXPR_FIELDS: dict[str, tuple[type, dict[str, str]]] = {
    "Const": (Const, {"value": "const", "dtype": "dtype"}),
    "BinOp": (BinOp, {"op": "binop", "a": "expr", "b": "expr", "dtype": "dtype"}),
    "Cmp": (Cmp, {"op": "cmpop", "a": "expr", "b": "expr", "dtype": "dtype"}),
    "Logic": (Logic, {"op": "logicop", "a": "expr", "b": "expr?", "dtype": "dtype"}),
    "Select": (
        Select,
        {"cond": "expr", "true_value": "expr", "false_value": "expr", "dtype": "dtype"},
    ),
    "Cast": (Cast, {"dtype": "dtype", "value": "expr"}),
    "Call": (Call, {"name": "callname", "args": "callargs", "dtype": "dtype"}),
    "Load": (ir.Load, {"buffer": "buffer", "index": "expr"}),
    "SramAddr": (SramAddr, {"buffer": "buffer", "offset": "expr"}),
}
STMT_FIELDS: dict[str, tuple[type, dict[str, str]]] = {
    "Store": (ir.Store, {"buffer": "buffer", "index": "expr", "value": "expr"}),
    "For": (
        ir.For,
        {"var": "var", "min": "expr", "extent": "expr", "body": "stmt", "kind": "forkind"},
    ),
    "Allocate": (ir.Allocate, {"buffer": "buffer", "body": "stmt"}),
    "IfThenElse": (ir.IfThenElse, {"cond": "expr", "then_case": "stmt", "else_case": "stmt?"}),
    "LetStmt": (ir.LetStmt, {"var": "var", "value": "expr", "body": "stmt"}),
    "Seq": (ir.Seq, {"stmts": "stmts"}),
    "AttrStmt": (
        ir.AttrStmt,
        {"node": "attrnode", "key": "name", "value": "attrvalue", "body": "stmt"},
    ),
    "Evaluate": (ir.Evaluate, {"value": "expr"}),
}
_TOP_KEYS = (
    "format",
    "version",
    "target",
    "config",
    "name",
    "params",
    "buffers",
    "vars",
    "body",
    "extra",
)


def dumps(lowered: LoweredFunc, env: Environment, target: str, extra: dict | None = None) -> str:
    """The module file text of a lowered program.

    Args:
        lowered: the program (``Module.lowered``); only its name, parameters and body are stored.
        env: the configuration it was built for (stored as ``env.to_dict()``).
        target: ``"cpu"`` or ``"accel"``, the code generator the loader should use.
        extra: JSON-serializable data the caller wants kept alongside (never interpreted here).

    Raises:
        BuildError: the program holds something a file cannot represent (an unknown node kind,
        an attribute on an unnamed object, a name or value the reader would refuse, ...).
    """
    writer = _Writer()
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "target": target,
        "config": env.to_dict(),
        "name": lowered.name,
        "params": [writer.buffer(b) for b in lowered.params],
        "body": writer.node(lowered.body, "stmt", "body", 0),
        "extra": {} if extra is None else extra,
    }
    doc["buffers"] = [
        {"name": b.name, "shape": list(b.shape), "dtype": b.dtype, "scope": b.scope}
        for b in writer.buffers
    ]
    doc["vars"] = [{"name": v.name, "dtype": v.dtype} for v in writer.vars]
    try:
        text = json.dumps({key: doc[key] for key in _TOP_KEYS}, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise BuildError(f"module file: cannot store the extra data as JSON: {exc}") from None
    # Read it back: a file the loader would refuse is never written.
    loads(text)
    return text


def loads(text: str) -> tuple[LoweredFunc, dict, str, dict]:
    """Parse and check a module file.

    Returns ``(lowered, config, target, extra)``: the program (regenerate its code with the
    generator of ``target``), the configuration dict (accepted by ``Environment.from_dict``), the
    target name and the caller's extra data.

    Raises:
        BuildError: naming the first field that is malformed, and where it is.
    """
    if not isinstance(text, str):
        _fail("", f"expected text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        _fail("", f"{len(text)} characters is more than the limit of {MAX_TEXT_CHARS}")
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except RecursionError:
        _fail("", "the JSON is nested too deeply")
    except ValueError as exc:  # json.JSONDecodeError, duplicate keys, over-long integers
        _fail("", f"not valid JSON: {exc}")
    if not isinstance(doc, dict):
        _fail("", f"expected a JSON object, got {type(doc).__name__}")
    _check_keys(doc, _TOP_KEYS, "top level")
    if doc["format"] != FORMAT:
        _fail("format", f"expected {FORMAT!r}, got {_show(doc['format'])}")
    if type(doc["version"]) is not int or doc["version"] != VERSION:
        _fail("version", f"this accel reads version {VERSION}, the file is {_show(doc['version'])}")
    if doc["target"] not in TARGETS:
        _fail("target", f"expected one of {', '.join(TARGETS)}, got {_show(doc['target'])}")
    config = _config(doc["config"])
    extra = doc["extra"]
    if not isinstance(extra, dict):
        _fail("extra", f"expected an object, got {type(extra).__name__}")
    reader = _Reader(_buffers(doc["buffers"]), _vars(doc["vars"]))
    name = _name(doc["name"], "name")
    params = _list(doc["params"], "params")
    param_bufs = [_ref(b, reader.buffers, "buffer", f"params[{i}]") for i, b in enumerate(params)]
    if len(set(param_bufs)) != len(param_bufs):
        _fail("params", "a buffer is listed twice")
    try:
        body = reader.node(doc["body"], "stmt", "body", 0)
    except RecursionError:  # MAX_DEPTH keeps clear of this unless the caller's stack is deep
        _fail("body", "the program is nested too deeply for the Python stack")
    return LoweredFunc(name, param_bufs, body), config, doc["target"], extra


# -- writing --------------------------------------------------------------------------------------


class _Writer:
    """Turns IR nodes into JSON values, numbering buffers and variables as it meets them."""

    def __init__(self) -> None:
        self.buffers: dict[ir.Buffer, int] = {}
        self.vars: dict[Var, int] = {}

    def buffer(self, b: ir.Buffer) -> int:
        return self.buffers.setdefault(b, len(self.buffers))

    def var(self, v: Var) -> int:
        return self.vars.setdefault(v, len(self.vars))

    def node(self, node: Any, code: str, path: str, depth: int) -> dict:
        """The JSON object of a statement (``code`` "stmt") or an expression ("expr")."""
        if depth > MAX_DEPTH:
            _fail(path, f"the program is nested more than {MAX_DEPTH} levels deep")
        if code == "expr" and isinstance(node, Var):
            return {"type": "Var", "id": self.var(node)}
        table = STMT_FIELDS if code == "stmt" else EXPR_FIELDS
        kind = type(node).__name__
        if kind not in table or type(node) is not table[kind][0]:
            _fail(path, f"cannot store the {_WHAT[code]} {_show(node)} ({kind})")
        out: dict[str, Any] = {"type": kind}
        for name, field_code in table[kind][1].items():
            value = getattr(node, name)
            if field_code == "callargs":  # a runtime call's arguments, by field name
                value = RUNTIME_CALLS[node.name].named_args(node)
            out[name] = self.field(field_code, value, f"{path}.{name}", depth + 1)
        return out

    def field(self, code: str, value: Any, path: str, depth: int) -> Any:
        if value is None and code.endswith("?"):
            return None
        code = code.rstrip("?")
        if code in ("expr", "stmt"):
            return self.node(value, code, path, depth)
        if code == "buffer":
            return self.buffer(value)
        if code == "var":
            return self.var(value)
        if code == "attrnode":
            return value if isinstance(value, str) else getattr(value, "name", str(value))
        if code == "stmts":
            return [self.node(s, "stmt", f"{path}[{i}]", depth) for i, s in enumerate(value)]
        if code == "callargs":
            return {k: self.field("arg", a, f"{path}.{k}", depth) for k, a in value.items()}
        if code == "callname" and value not in RUNTIME_CALLS:
            _fail(path, f"cannot store a call of {value!r}, which is not a runtime call")
        if code == "arg" and isinstance(value, ir.Buffer):
            return {"type": "Buffer", "id": self.buffer(value)}
        if code in ("arg", "attrvalue") and isinstance(value, Expr):
            return self.node(value, "expr", path, depth)
        # A scalar: dtype, operator, loop kind, name, constant, or a plain int or str argument;
        # anything the reader would refuse is refused when the text is read back.
        return value


# -- reading --------------------------------------------------------------------------------------


class _Reader:
    """Rebuilds IR nodes from JSON values, refusing anything outside the tables."""

    def __init__(self, buffers: list[ir.Buffer], variables: list[Var]) -> None:
        self.buffers = buffers
        self.vars = variables

    def node(self, data: Any, code: str, path: str, depth: int) -> Any:
        """The statement (``code`` "stmt") or expression ("expr") described by ``data``."""
        if depth > MAX_DEPTH:
            _fail(path, f"the program is nested more than {MAX_DEPTH} levels deep")
        what = _WHAT[code]
        if not isinstance(data, dict):
            _fail(path, f"{_article(what)} must be an object, got {_type(data)}")
        kind = data.get("type")
        if code == "expr" and kind == "Var":
            _check_keys(data, ("type", "id"), path)
            return _ref(data["id"], self.vars, "variable", f"{path}.id")
        table = STMT_FIELDS if code == "stmt" else EXPR_FIELDS
        if not isinstance(kind, str) or kind not in table:
            _fail(path, f"unknown {what} kind {_show(kind)}")
        cls, fields = table[kind]
        _check_keys(data, ("type", *fields), path)
        values = {}
        for name, field_code in fields.items():
            if field_code == "callargs":
                values[name] = self.call_args(values["name"], data[name], f"{path}.{name}", depth)
                continue
            values[name] = self.field(field_code, data[name], f"{path}.{name}", depth + 1)
        if cls is Const:
            _check_const(values["value"], values["dtype"], f"{path}.value")
        if cls is Logic and (values["op"] == "not") != (values["b"] is None):
            _fail(f"{path}.b", "'not' takes one operand, 'and' and 'or' take two")
        return cls(**values)

    def call_args(self, name: str, data: Any, path: str, depth: int) -> tuple:
        """The arguments of the runtime call ``name``, given by field name: exactly its fields."""
        if not isinstance(data, dict):
            _fail(path, f"the arguments of {name} must be an object, got {_type(data)}")
        _check_keys(data, RUNTIME_CALLS[name].fields, path)
        args = []
        for f in RUNTIME_CALLS[name].fields:
            if isinstance(data[f], str):
                _fail(
                    f"{path}.{f}",
                    "runtime call arguments are integers, expressions or buffers, not strings",
                )
            args.append(self.field("arg", data[f], f"{path}.{f}", depth + 1))
        return tuple(args)

    def field(self, code: str, value: Any, path: str, depth: int) -> Any:
        if value is None and code.endswith("?"):
            return None
        code = code.rstrip("?")
        if code in ("expr", "stmt"):
            return self.node(value, code, path, depth)
        if code == "callname":
            if not isinstance(value, str) or value not in RUNTIME_CALLS:
                _fail(
                    path,
                    f"unknown runtime call {_show(value)}; expected one of "
                    f"{', '.join(RUNTIME_CALLS)}",
                )
            return value
        if code == "buffer":
            return _ref(value, self.buffers, "buffer", path)
        if code == "var":
            return _ref(value, self.vars, "variable", path)
        if code == "stmts":
            items = []
            for i, item in enumerate(_list(value, path)):
                items.append(self.field("stmt", item, f"{path}[{i}]", depth))
            return tuple(items)
        if code == "arg" and isinstance(value, dict) and value.get("type") == "Buffer":
            _check_keys(value, ("type", "id"), path)
            return _ref(value["id"], self.buffers, "buffer", f"{path}.id")
        if code in ("arg", "attrvalue"):
            # A plain string or integer, else an expression.
            if isinstance(value, str):
                return _text(value, path)
            if isinstance(value, int):
                return _plain_int(value, path)
            if not isinstance(value, dict):
                _fail(path, f"expected a string, an integer or an expression, got {_type(value)}")
            return self.node(value, "expr", path, depth)
        if code in ("attrnode", "name"):
            return _name(value, path)
        if code == "dtype":
            return _dtype(value, path)
        if code == "const":
            return value  # checked against the dtype once the node's dtype is known
        choices = _CHOICES[code]
        if not isinstance(value, str) or value not in choices:
            _fail(
                path, f"unknown {_WHAT[code]} {_show(value)}; expected one of {', '.join(choices)}"
            )
        return value


_CHOICES = {
    "binop": tuple(BINARY_OPS),
    "cmpop": tuple(COMPARE_OPS),
    "logicop": LOGIC_OPS,
    "forkind": FOR_KINDS,
}
_WHAT = {
    "stmt": "statement",
    "expr": "expression",
    "binop": "binary operator",
    "cmpop": "comparison",
    "logicop": "logical operator",
    "forkind": "loop kind",
}


def _buffers(data: Any) -> list[ir.Buffer]:
    out = []
    for i, b in enumerate(_list(data, "buffers")):
        path = f"buffers[{i}]"
        if not isinstance(b, dict):
            _fail(path, f"a buffer must be an object, got {_type(b)}")
        _check_keys(b, ("name", "shape", "dtype", "scope"), path)
        shape = _list(b["shape"], f"{path}.shape")
        for d, extent in enumerate(shape):
            if type(extent) is not int or extent < 0:
                _fail(f"{path}.shape[{d}]", f"expected a non-negative integer, got {_show(extent)}")
        scope = b["scope"]
        if not isinstance(scope, str) or not SCOPE_RE.fullmatch(scope):
            _fail(
                f"{path}.scope", f"{_show(scope)} is not a scope name (lowercase letters, '_', '.')"
            )
        name, dtype = _name(b["name"], f"{path}.name"), _dtype(b["dtype"], f"{path}.dtype")
        out.append(ir.Buffer(name, tuple(shape), dtype, scope))
    return out


def _vars(data: Any) -> list[Var]:
    out = []
    for i, v in enumerate(_list(data, "vars")):
        path = f"vars[{i}]"
        if not isinstance(v, dict):
            _fail(path, f"a variable must be an object, got {_type(v)}")
        _check_keys(v, ("name", "dtype"), path)
        out.append(Var(_name(v["name"], f"{path}.name"), _dtype(v["dtype"], f"{path}.dtype")))
    return out


def _config(data: Any) -> dict:
    if not isinstance(data, dict):
        _fail("config", f"expected an object, got {_type(data)}")
    try:
        return Environment.from_dict(data, "module file: config").to_dict()
    except ConfigError as exc:
        raise LoadError(str(exc)) from None


def _ref(ref: Any, table: list, what: str, path: str) -> Any:
    if type(ref) is not int or not 0 <= ref < len(table):
        _fail(path, f"{_show(ref)} is not a {what} id (the file defines {len(table)} {what}s)")
    return table[ref]


def _check_const(value: Any, dtype: str, path: str) -> None:
    if type(value) not in (int, float, bool):
        _fail(path, f"a constant must be a number or a bool, got {_type(value)}")
    if dt.is_float(dtype):
        return
    if isinstance(value, float):
        _fail(path, f"the float {value!r} cannot be a constant of dtype {dtype}")
    low, high = dt.value_range(dtype)
    if not low <= value <= high:
        _fail(path, f"the constant {value} does not fit {dtype} [{low}, {high}]")


def _plain_int(value: int, path: str) -> int:
    low, high = PLAIN_INT_RANGE
    if not low <= value <= high:
        _fail(path, f"the integer {_show(value)} does not fit int64")
    return value


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        _fail(
            path, f"{_show(value)} is not a name (letters, digits, '_' and '.', not first a digit)"
        )
    return value


def _text(value: str, path: str) -> str:
    if not TEXT_RE.fullmatch(value):
        _fail(path, f"{_show(value)} may only hold letters, digits, spaces, '_', '.' and '-'")
    return value


def _dtype(value: Any, path: str) -> str:
    if not isinstance(value, str) or value not in dt.ALL_DTYPES:
        _fail(path, f"unknown dtype {_show(value)}; expected one of {', '.join(dt.ALL_DTYPES)}")
    return value


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        _fail(path, f"expected a list, got {_type(value)}")
    return value


def _check_keys(data: dict, expected: tuple[str, ...], path: str) -> None:
    missing = [k for k in expected if k not in data]
    if missing:
        _fail(path, f"missing field {_show(missing[0])}")
    unexpected = [k for k in data if k not in expected]
    if unexpected:
        _fail(path, f"unexpected field {_show(unexpected[0])}")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {_show(key)} appears twice in one object")
        out[key] = value
    return out


def _article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _show(value: Any) -> str:
    """``repr(value)``, shortened: a tampered file may hold very long strings."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}...{text[-10:]}"


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _fail(path: str, message: str) -> NoReturn:
    if len(path) > 160:  # deep nesting: keep where it starts and where it went wrong
        path = f"{path[:70]}...{path[-70:]}"
    where = f"{path}: " if path else ""
    raise LoadError(f"module file: {where}{message}")


__all__ = ["FORMAT", "VERSION", "dumps", "loads"]
