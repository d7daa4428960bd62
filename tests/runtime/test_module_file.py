"""Module files: lowered programs saved as JSON data, read back strictly, printed identically."""

import dataclasses
import json

import numpy as np
import pytest

import accel
from accel import te
from accel.build import module_from_lowered
from accel.errors import BuildError
from accel.lower import coproc, ir
from accel.lower.codegen_accel import generate_accel_source
from accel.lower.codegen_host import generate_host_source
from accel.lower.ir import function_str, stmt_str
from accel.lower.pipeline import LoweredFunc
from accel.runtime import module_file
from accel.runtime.module_file import EXPR_FIELDS, STMT_FIELDS, dumps, loads
from accel.te.expr import BinOp, Cast, Cmp, Const, Logic, Select, Var


def round_trip(f: LoweredFunc, target: str, extra=None) -> LoweredFunc:
    env = accel.get_env()
    text = dumps(f, env, target, extra)
    g, config, loaded_target, loaded_extra = loads(text)
    assert function_str(g.name, g.params, g.body) == function_str(f.name, f.params, f.body)
    assert stmt_str(g.body) == stmt_str(f.body)
    assert config == env.to_dict() and loaded_target == target
    assert loaded_extra == ({} if extra is None else extra)
    assert dumps(g, env, target, extra) == text
    return g


# -- programs ---------------------------------------------------------------------------------


def cpu_vadd():
    env = accel.get_env()
    shape = (1, 64, env.BATCH, env.BLOCK_OUT)
    A = te.placeholder(shape, name="A", dtype=env.acc_dtype)
    B = te.placeholder(shape, name="B", dtype=env.acc_dtype)
    A_buf = te.compute(shape, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(shape, lambda *i: B(*i), "B_buf")
    C_buf = te.compute(shape, lambda *i: A_buf(*i) + B_buf(*i), "C_buf")
    C = te.compute(shape, lambda *i: C_buf(*i).astype(env.inp_dtype), "C")
    return te.create_schedule(C.op), [A, B, C]


def cpu_tiled_matmul(m=13, n=10, k=21):
    A = te.placeholder((m, k), "int8", "A")
    B = te.placeholder((n, k), "int8", "B")
    r = te.reduce_axis((0, k), "r")
    C = te.compute(
        (m, n), lambda i, j: te.sum(A[i, r].astype("int32") * B[j, r].astype("int32"), axis=r), "C"
    )
    s = te.create_schedule(C.op)
    AA = s.cache_read(A, "local", [C])
    io, jo, ii, ji = s[C].tile(*C.op.axis, 4, 4)
    ro, ri = s[C].split(r, factor=8)
    s[C].reorder(io, jo, ro, ii, ji, ri)
    s[AA].compute_at(s[C], ro)
    s[C].unroll(ri)
    return s, [A, B, C]


def accel_vadd():
    """The get-started vector add, offloaded: DMA loads, one ALU kernel, a DMA store."""
    env = accel.get_env()
    shape = (1, 64, env.BATCH, env.BLOCK_OUT)
    A = te.placeholder(shape, name="A", dtype=env.acc_dtype)
    B = te.placeholder(shape, name="B", dtype=env.acc_dtype)
    A_buf = te.compute(shape, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(shape, lambda *i: B(*i), "B_buf")
    C_buf = te.compute(shape, lambda *i: A_buf(*i) + B_buf(*i), "C_buf")
    C = te.compute(shape, lambda *i: C_buf(*i).astype(env.inp_dtype), "C")
    s = te.create_schedule(C.op)
    for t in (A_buf, B_buf, C_buf):
        s[t].set_scope(env.acc_scope)
    s[A_buf].pragma(A_buf.op.axis[0], env.dma_copy)
    s[B_buf].pragma(B_buf.op.axis[0], env.dma_copy)
    s[C_buf].pragma(C_buf.op.axis[0], env.alu)
    s[C].pragma(C.op.axis[0], env.dma_copy)
    return s, [A, B, C]


def hand_written_program():
    """An accelerator-style program written with the coproc helpers, using every node kind."""
    env = accel.get_env()
    A = ir.Buffer("A", (4, 16), "int8")
    C = ir.Buffer("C", (4, 16), "int8")
    acc = ir.Buffer("C_buf", (4, 16), "int32", env.acc_scope)
    i, j = Var("i"), Var("j")
    other_i = Var("i")  # same name, a different variable
    n = Var("n")
    x = ir.Buffer("x", (8,), "float32")
    dma = coproc.in_stage(
        coproc.LOAD_STAGE,
        ir.seq(
            coproc.LOAD_2D(
                src_addr=A,
                src_elem_offset=i,
                x_size=1,
                y_size=1,
                x_stride=1,
                x_pad_before=0,
                y_pad_before=0,
                x_pad_after=0,
                y_pad_after=0,
                dst_sram_index=i * 2,
                dst_memory_type=3,
            ),
            coproc.DEP_PUSH(from_stage=coproc.LOAD_STAGE, to_stage=coproc.COMPUTE_STAGE),
        ),
    )
    kernel = coproc.uop_scope(
        coproc.ALU_KERNEL,
        ir.seq(
            coproc.LOOP_BEGIN(extent=4, dst_factor=1, src_factor=1, wgt_factor=0),
            coproc.UOP_PUSH(
                mode=coproc.ALU_MODE,
                reset=0,
                dst=coproc.SramAddr(acc, i),
                src=j,
                wgt=0,
                opcode=2,
                use_imm=1,
                imm=-7,
            ),
            coproc.LOOP_END(),
        ),
    )
    scalar = ir.seq(
        ir.LetStmt(n, i + 1, ir.Store(x, n % 8, Const(float("-inf"), "float32"))),
        ir.IfThenElse(
            Logic("and", Cmp("lt", i, Const(3)), Logic("not", Cmp("eq", j, Const(0)))),
            ir.Store(x, Const(0), Cast("float32", Select(Cmp("ge", i, j), i, j, "int32"))),
            ir.Store(x, Const(1), ir.Load(x, Const(2)) + Const(0.5, "float32")),
        ),
        coproc.STORE_2D(
            src_sram_index=coproc.SramAddr(acc, i),
            src_memory_type=4,
            dst_addr=C,
            dst_elem_offset=BinOp("max", i, other_i, "int32"),
            x_size=1,
            y_size=1,
            x_stride=16,
        ),
    )
    body = ir.Allocate(
        acc,
        ir.loop(
            i,
            4,
            ir.seq(
                ir.AttrStmt(i, "pragma_note", "hello", dma),
                ir.loop(
                    j,
                    2,
                    ir.AttrStmt("vthread", "virtual_thread", j + 1, kernel),
                    "vthread",
                ),
                ir.loop(other_i, 3, scalar, "unrolled"),
            ),
        ),
    )
    body = ir.seq(
        body,
        ir.AttrStmt(coproc.COPROC, coproc.SCOPE_KEY, coproc.STORE_STAGE, ir.Evaluate(Const(0))),
        coproc.SYNC(),
    )
    return LoweredFunc("hand_written", [A, C, x], body)


# -- round trips ------------------------------------------------------------------------------


def test_cpu_vector_add_round_trips_and_regenerates_the_same_code():
    s, args = cpu_vadd()
    f = accel.lower(s, args, name="vadd")
    g = round_trip(f, "cpu")
    assert generate_host_source(g.name, g.params, g.body) == generate_host_source(
        f.name, f.params, f.body
    )


def test_tiled_matmul_round_trips_and_computes_the_same_product():
    s, args = cpu_tiled_matmul()
    # Before the host passes read the cached copy through, so the file holds an allocation too.
    f = accel.lower(s, args, name="matmul", dump_after="coproc_sync")
    assert "unrolled for" in str(f) and "allocate A.local" in str(f)
    g = round_trip(f, "cpu", extra={"note": "tiled", "tiles": [4, 4, 8]})
    assert (
        generate_host_source(g.name, g.params, g.body)[0]
        == (generate_host_source(f.name, f.params, f.body)[0])
    )
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (13, 21), dtype=np.int8)
    b = rng.integers(-128, 128, (10, 21), dtype=np.int8)
    c = np.full((13, 10), 7, np.int32)
    module_from_lowered(g, accel.get_env(), "cpu")(a, b, c)
    np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64).T)


def test_lowered_accelerator_program_round_trips_and_runs_on_the_simulator():
    s, args = accel_vadd()
    f = accel.lower(s, args, name="vadd_accel")
    assert coproc.LOAD_2D.name in str(f) and coproc.ALU_KERNEL in str(f)
    g = round_trip(f, "accel")
    env = accel.get_env()
    assert generate_accel_source(g.name, g.params, g.body, env) == generate_accel_source(
        f.name, f.params, f.body, env
    )
    rng = np.random.default_rng(1)
    a = rng.integers(-1000, 1000, args[0].shape, dtype=np.int32)
    b = rng.integers(-1000, 1000, args[1].shape, dtype=np.int32)
    c = np.zeros(args[2].shape, np.int8)
    module_from_lowered(g, env, "accel")(a, b, c)
    np.testing.assert_array_equal(c, (a + b).astype(np.int8))


def test_hand_written_program_with_every_node_kind_round_trips():
    f = hand_written_program()
    round_trip(f, "accel")
    doc = json.loads(dumps(f, accel.get_env(), "accel"))
    kinds = set()
    stack = [doc["body"]]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            kinds.add(node.get("type"))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    assert set(EXPR_FIELDS) | set(STMT_FIELDS) | {"Var", "Buffer"} <= kinds


def test_the_tables_name_every_dataclass_field():
    for kind, (cls, fields) in {**EXPR_FIELDS, **STMT_FIELDS}.items():
        assert cls.__name__ == kind
        assert set(fields) == {f.name for f in dataclasses.fields(cls)}, kind


def test_variable_identity_survives():
    g, _, _, _ = loads(dumps(hand_written_program(), accel.get_env(), "accel"))
    outer = g.body.stmts[0].body
    assert isinstance(outer, ir.For) and outer.var.name == "i"
    inner = outer.body.stmts[2]
    assert isinstance(inner, ir.For) and inner.var.name == "i"
    assert inner.var is not outer.var
    let = inner.body.stmts[0]
    assert let.value.a is outer.var  # the same variable used twice is one object
    store = coproc.STORE_2D.named_args(inner.body.stmts[2].value)
    offset = store["dst_elem_offset"]
    assert offset.a is outer.var and offset.b is inner.var
    assert store["dst_addr"] is g.params[1]  # a buffer argument is the parameter itself


def test_the_file_holds_data_not_code():
    s, args = cpu_vadd()
    f = accel.build(s, args, name="vadd")
    text = dumps(f.lowered, accel.get_env(), "cpu")
    assert "def " not in text and "np." not in text


# -- refusals ---------------------------------------------------------------------------------


@pytest.fixture
def doc():
    return json.loads(dumps(hand_written_program(), accel.get_env(), "accel"))


def find(node, kind):
    """The first node of ``kind`` in a JSON tree, depth first."""
    if isinstance(node, dict):
        if node.get("type") == kind:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            found = find(child, kind)
            if found is not None:
                return found
    return None


def load(doc):
    return loads(json.dumps(doc))


def test_tampered_buffer_dtype_is_refused(doc):
    doc["buffers"][0]["dtype"] = "int8); import os; os.system('x'"
    with pytest.raises(BuildError, match=r"module file: buffers\[0\]\.dtype: unknown dtype"):
        load(doc)


def test_tampered_expression_dtype_is_refused(doc):
    find(doc["body"], "Cast")["dtype"] = "float32')"
    with pytest.raises(BuildError, match=r"\.dtype: unknown dtype"):
        load(doc)


@pytest.mark.parametrize("name", ["A B", 'A"', "A'", "1A", "", "A;B"])
def test_names_with_spaces_quotes_or_leading_digits_are_refused(doc, name):
    doc["buffers"][0]["name"] = name
    with pytest.raises(BuildError, match=r"buffers\[0\]\.name: .* is not a name"):
        load(doc)


def test_bad_variable_function_and_call_names_are_refused(doc):
    bad = json.loads(json.dumps(doc))
    bad["vars"][0]["name"] = "i j"
    with pytest.raises(BuildError, match=r"vars\[0\]\.name"):
        load(bad)
    bad = json.loads(json.dumps(doc))
    bad["name"] = "f(): pass\nimport os\ndef g"
    with pytest.raises(BuildError, match=r"module file: name: .* is not a name"):
        load(bad)
    find(doc["body"], "Call")["name"] = "os.system('x')"
    with pytest.raises(BuildError, match=r"\.name: unknown runtime call"):
        load(doc)


def test_bad_scope_is_refused(doc):
    doc["buffers"][2]["scope"] = "Local buffer"
    with pytest.raises(BuildError, match=r"buffers\[2\]\.scope: .* is not a scope"):
        load(doc)


@pytest.mark.parametrize("shape", [[-1, 4], [2.5], ["4"], [True], "16"])
def test_bad_shape_is_refused(doc, shape):
    doc["buffers"][0]["shape"] = shape
    with pytest.raises(BuildError, match=r"buffers\[0\]\.shape"):
        load(doc)


def test_unknown_statement_kind_is_refused(doc):
    doc["body"]["stmts"][2] = {"type": "Exec", "code": "print(1)"}
    with pytest.raises(BuildError, match=r"body\.stmts\[2\]: unknown statement kind 'Exec'"):
        load(doc)


def test_unknown_expression_kind_is_refused(doc):
    store = find(doc["body"], "Store")
    store["value"] = {"type": "Lambda", "body": "x"}
    with pytest.raises(BuildError, match=r"\.value: unknown expression kind 'Lambda'"):
        load(doc)


def test_expression_where_a_statement_belongs_is_refused(doc):
    doc["body"]["stmts"][2] = {"type": "Const", "value": 1, "dtype": "int32"}
    with pytest.raises(BuildError, match=r"body\.stmts\[2\]: unknown statement kind 'Const'"):
        load(doc)


def test_unknown_and_missing_fields_are_refused(doc):
    bad = json.loads(json.dumps(doc))
    find(bad["body"], "Store")["source"] = "x"
    with pytest.raises(BuildError, match="unexpected field 'source'"):
        load(bad)
    del find(doc["body"], "Store")["index"]
    with pytest.raises(BuildError, match="missing field 'index'"):
        load(doc)


@pytest.mark.parametrize(
    "kind, op, message",
    [
        ("BinOp", "pow", "unknown binary operator 'pow'"),
        ("BinOp", "__import__", "unknown binary operator"),
        ("Cmp", "is", "unknown comparison 'is'"),
        ("Logic", "xor", "unknown logical operator 'xor'"),
    ],
)
def test_unknown_operators_are_refused(doc, kind, op, message):
    find(doc["body"], kind)["op"] = op
    with pytest.raises(BuildError, match=message):
        load(doc)


def test_logic_operand_count_is_checked(doc):
    find(doc["body"], "Logic")["b"] = None
    with pytest.raises(BuildError, match="'not' takes one operand"):
        load(doc)


def test_unknown_loop_kind_is_refused(doc):
    find(doc["body"], "For")["kind"] = "threaded"
    with pytest.raises(BuildError, match=r"body\.stmts\[0\]\.body\.kind: unknown loop kind"):
        load(doc)


@pytest.mark.parametrize("version", [1, 3, 0, "2", None, 2.0])
def test_other_versions_are_refused(doc, version):
    doc["version"] = version
    with pytest.raises(BuildError, match="module file: version: this accel reads version 2"):
        load(doc)


def test_wrong_format_target_and_top_level_are_refused(doc):
    with pytest.raises(BuildError, match="format: expected 'accel-module'"):
        load({**doc, "format": "pickle"})
    with pytest.raises(BuildError, match="target: expected one of cpu, accel"):
        load({**doc, "target": "gpu"})
    with pytest.raises(BuildError, match="top level: unexpected field 'source'"):
        load({**doc, "source": "def f(): pass"})
    with pytest.raises(BuildError, match="expected a JSON object, got list"):
        load([doc])
    with pytest.raises(BuildError, match="not valid JSON"):
        loads("{'format': 1}")
    with pytest.raises(BuildError, match="appears twice"):
        loads('{"format": "accel-module", "format": "accel-module"}')


def test_bad_configuration_is_refused(doc):
    doc["config"]["LOG_BLOCK"] = "4"
    with pytest.raises(BuildError, match="module file: config: LOG_BLOCK must be an integer"):
        load(doc)


@pytest.mark.parametrize("where", ["params", "Store", "Var", "Buffer"])
def test_dangling_ids_are_refused(doc, where):
    if where == "params":
        doc["params"][1] = 99
        path = r"params\[1\]"
    elif where == "Store":
        find(doc["body"], "Store")["buffer"] = len(doc["buffers"])
        path = r"\.buffer"
    else:
        find(doc["body"], where)["id"] = -1 if where == "Var" else "0"
        path = r"\.id"
    with pytest.raises(BuildError, match=path + r": .* is not a (buffer|variable) id"):
        load(doc)


def test_a_parameter_listed_twice_is_refused(doc):
    doc["params"][1] = doc["params"][0]
    with pytest.raises(BuildError, match="params: a buffer is listed twice"):
        load(doc)


@pytest.mark.parametrize("value", ["__import__('os')", {"type": "Const"}, [1], None, "1"], ids=repr)
def test_constants_must_be_numbers(doc, value):
    find(doc["body"], "Const")["value"] = value
    with pytest.raises(BuildError, match=r"\.value: a constant must be a number or a bool"):
        load(doc)


@pytest.mark.parametrize(
    "value, dtype",
    [(2**31, "int32"), (-(2**31) - 1, "int32"), (128, "int8"), (-1, "uint8"), (2, "bool")],
)
def test_integer_constants_must_fit_their_dtype(doc, value, dtype):
    const = find(doc["body"], "Const")
    const["value"], const["dtype"] = value, dtype
    with pytest.raises(BuildError, match=rf"the constant {value} does not fit {dtype}"):
        load(doc)


def test_float_constant_of_an_integer_dtype_is_refused(doc):
    find(doc["body"], "Const")["value"] = 1.5
    with pytest.raises(BuildError, match="the float 1.5 cannot be a constant of dtype int32"):
        load(doc)


def test_call_arguments_and_attribute_values_are_checked(doc):
    bad = json.loads(json.dumps(doc))
    find(bad["body"], "Call")["args"]["x_size"] = "x'); os.system('y"
    with pytest.raises(BuildError, match=r"args\.x_size: runtime call arguments are integers"):
        load(bad)
    bad = json.loads(json.dumps(doc))
    find(bad["body"], "Call")["args"]["x_size"] = 2**70
    with pytest.raises(BuildError, match=r"args\.x_size: the integer .* does not fit int64"):
        load(bad)
    bad = json.loads(json.dumps(doc))
    find(bad["body"], "Call")["args"]["x_size"] = 1.5
    with pytest.raises(BuildError, match=r"args\.x_size: expected a string, an integer or an"):
        load(bad)
    find(doc["body"], "AttrStmt")["node"] = "vta; rm"
    with pytest.raises(BuildError, match=r"\.node: .* is not a name"):
        load(doc)


def test_deep_nesting_is_refused_not_a_crash(doc):
    expr = {"type": "Var", "id": 0}
    for _ in range(module_file.MAX_DEPTH + 5):
        expr = {"type": "Cast", "dtype": "int32", "value": expr}
    doc["body"]["stmts"][2] = {"type": "Evaluate", "value": expr}
    with pytest.raises(BuildError, match=f"nested more than {module_file.MAX_DEPTH} levels"):
        load(doc)
    with pytest.raises(BuildError, match="nested too deeply"):
        loads('{"a":' * 100_000 + "1" + "}" * 100_000)


def test_dumps_refuses_what_it_cannot_store():
    env = accel.get_env()
    A = te.placeholder((4,), "int32", "A")
    buf = ir.Buffer("A", (4,), "int32")
    read = ir.Store(buf, Const(0), A[0])  # a tensor read never survives lowering
    with pytest.raises(BuildError, match=r"body\.value: cannot store the expression"):
        dumps(LoweredFunc("f", [buf], read), env, "cpu")
    unnamed = ir.AttrStmt(object(), "pragma_x", 1, ir.Evaluate(Const(0)))
    with pytest.raises(BuildError, match=r"module file: body\.node: .* is not a name"):
        dumps(LoweredFunc("f", [buf], unnamed), env, "cpu")
    float_value = ir.AttrStmt("x", "pragma_x", 1.5, ir.Evaluate(Const(0)))
    with pytest.raises(BuildError, match=r"body\.value: expected a string, an integer or an"):
        dumps(LoweredFunc("f", [buf], float_value), env, "cpu")
    with pytest.raises(BuildError, match="target: expected one of"):
        dumps(LoweredFunc("f", [buf], ir.Evaluate(Const(0))), env, "gpu")
    with pytest.raises(BuildError, match="extra data as JSON"):
        dumps(LoweredFunc("f", [buf], ir.Evaluate(Const(0))), env, "cpu", {"x": object()})


def test_runtime_calls_are_stored_by_field_name_and_checked_on_load():
    f = hand_written_program()
    doc = json.loads(dumps(f, accel.get_env(), "accel"))
    call = find(doc["body"], "Call")
    assert call["name"] == coproc.LOAD_2D.name
    assert list(call["args"]) == list(coproc.LOAD_2D.fields)
    del call["args"]["x_stride"]
    with pytest.raises(BuildError, match=r"args: missing field 'x_stride'"):
        loads(json.dumps(doc))
    call["args"]["x_stride"] = 1
    call["args"]["extra"] = 0
    with pytest.raises(BuildError, match=r"args: unexpected field 'extra'"):
        loads(json.dumps(doc))
    del call["args"]["extra"]
    call["name"] = "os_system"
    with pytest.raises(BuildError, match=r"unknown runtime call 'os_system'"):
        loads(json.dumps(doc))
    call["name"] = coproc.LOAD_2D.name
    call["args"]["x_size"] = "text"
    with pytest.raises(BuildError, match=r"args.x_size: runtime call arguments are integers"):
        loads(json.dumps(doc))


def test_unreadable_module_files_and_unwritable_paths_are_typed_errors(tmp_path):
    from accel.errors import LoadError, SaveError

    with pytest.raises(LoadError, match="cannot read module file .*missing.json"):
        accel.load_module(tmp_path / "missing.json")
    with pytest.raises(LoadError, match="cannot read module file"):
        accel.load_module(tmp_path)  # a directory
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(LoadError, match="not UTF-8 JSON text"):
        accel.load_module(binary)
    s, args = accel_vadd()
    f = accel.build(s, args, name="vadd_save")
    with pytest.raises(SaveError, match="cannot save module vadd_save to .*no/such"):
        f.save(tmp_path / "no" / "such" / "f.json")
