"""The get-started vector add: its default lowering reads like the classic tutorial's."""

import numpy as np

import accel
from accel import te
from accel.lower import ir
from accel.lower.pipeline import PASSES, lower, pass_names
from accel.lower.verify import verify


def vadd():
    env = accel.get_env()
    shape = (1, 64, env.BATCH, env.BLOCK_OUT)
    A = te.placeholder(shape, name="A", dtype=env.acc_dtype)
    B = te.placeholder(shape, name="B", dtype=env.acc_dtype)
    A_buf = te.compute(shape, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(shape, lambda *i: B(*i), "B_buf")
    C_buf = te.compute(shape, lambda *i: A_buf(*i) + B_buf(*i), "C_buf")
    C = te.compute(shape, lambda *i: C_buf(*i).astype(env.inp_dtype), "C")
    return A, B, C


def test_printed_program_has_four_nests_and_three_allocations():
    A, B, C = vadd()
    s = te.create_schedule(C.op)
    text = str(accel.lower(s, [A, B, C], simple_mode=True))
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("allocate")] == [
        "allocate A_buf[int32 * 1024]",
        "allocate B_buf[int32 * 1024]",
        "allocate C_buf[int32 * 1024]",
    ]
    assert [line for line in lines if line.startswith("for")] == ["for (i1, 0, 64) {"] * 4
    assert "    C_buf[((i1*16) + i3)] = (A_buf[((i1*16) + i3)] + B_buf[((i1*16) + i3)])" in lines
    assert "    C[((i1*16) + i3)] = int8(C_buf[((i1*16) + i3)])" in lines


def test_full_mode_prints_the_signature():
    A, B, C = vadd()
    s = te.create_schedule(C.op)
    text = str(accel.lower(s, [A, B, C], name="vadd"))
    assert text.startswith(
        "primfn vadd(A: int32[1, 64, 1, 16], B: int32[1, 64, 1, 16], C: int8[1, 64, 1, 16]) {"
    )


def test_scopes_are_printed():
    A, B, C = vadd()
    s = te.create_schedule(C.op)
    s[C.op.input_tensors[0]].set_scope(accel.get_env().acc_scope)
    text = str(accel.lower(s, [A, B, C], simple_mode=True))
    assert '// attr [C_buf] storage_scope = "local.acc_buffer"' in text


def test_pragma_annotates_the_loop():
    A, B, C = vadd()
    s = te.create_schedule(C.op)
    s[C].pragma(C.op.axis[1], "unroll_hint")
    text = str(accel.lower(s, [A, B, C], simple_mode=True))
    assert "// attr [i1] pragma_unroll_hint = 1" in text


def test_every_pass_output_verifies_and_dump_after_stops_there():
    A, B, C = vadd()
    s = te.create_schedule(C.op)
    env = accel.get_env()
    for name in pass_names():
        f = lower(s, [A, B, C], dump_after=name)
        verify(f.body, f.params, env.scopes, where=f"after {name}")
    assert pass_names()[0] == "schedule_ops" and [n for n, _ in PASSES]
    # Stopping before simplify keeps the unit loop over the batch axis that simplify removes.
    raw = str(lower(s, [A, B, C], simple_mode=True, dump_after="schedule_ops"))
    done = str(lower(s, [A, B, C], simple_mode=True))
    assert "for (i0, 0, 1) {" in raw and "for (i0, 0, 1) {" not in done


def test_the_module_computes_int8_wraparound():
    A, B, C = vadd()
    s = te.create_schedule(C.op)
    f = accel.build(s, [A, B, C], name="vadd")
    rng = np.random.default_rng(0)
    a = rng.integers(-(2**31), 2**31, A.shape, dtype=np.int64).astype(np.int32)
    b = rng.integers(-(2**31), 2**31, B.shape, dtype=np.int64).astype(np.int32)
    c = accel.nd.empty(C.shape, "int8")
    f(accel.nd.array(a), accel.nd.array(b), c)
    expected = ((a.astype(np.int64) + b.astype(np.int64)) & 0xFF).astype(np.uint8).view(np.int8)
    np.testing.assert_array_equal(c.numpy(), expected)
    assert "def vadd(" in f.source


def test_verifier_catches_an_unbound_variable():
    import pytest

    from accel.errors import LoweringError

    buf = ir.Buffer("X", (4,), "int32")
    stray = te.var("stray")
    with pytest.raises(LoweringError, match="variable stray is used but not bound"):
        verify(ir.Store(buf, stray, te.const(0)), [buf], ())
