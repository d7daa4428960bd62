"""Schedules and IR helpers shared by the tests of the accelerator passes.

The three tutorial schedules are rebuilt here exactly as the tutorials build them, so the pass
tests can lower them to any prefix of the pipeline and walk the result.
"""

from __future__ import annotations

import collections
import functools

import accel
from accel import te
from accel.arith.simplify import simplify
from accel.lower import coproc, ir
from accel.te.expr import Call, Const, Expr, Var
from accel.te.visit import rewrite

ENV = accel.get_env()


def vadd_schedule():
    """``tutorials/vta_get_started.py``: C = int8(A + B) over 64 accumulator tiles."""
    shape = (1, 64, ENV.BATCH, ENV.BLOCK_OUT)
    A = te.placeholder(shape, name="A", dtype=ENV.acc_dtype)
    B = te.placeholder(shape, name="B", dtype=ENV.acc_dtype)
    A_buf = te.compute(shape, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(shape, lambda *i: B(*i), "B_buf")
    C_buf = te.compute(shape, lambda *i: A_buf(*i) + B_buf(*i), "C_buf")
    C = te.compute(shape, lambda *i: C_buf(*i).astype(ENV.inp_dtype), "C")
    s = te.create_schedule(C.op)
    for buf in (A_buf, B_buf, C_buf):
        s[buf].set_scope(ENV.acc_scope)
    s[A_buf].pragma(s[A_buf].op.axis[0], ENV.dma_copy)
    s[B_buf].pragma(s[B_buf].op.axis[0], ENV.dma_copy)
    s[C_buf].pragma(s[C_buf].op.axis[0], ENV.alu)
    s[C].pragma(s[C].op.axis[0], ENV.dma_copy)
    return s, [A, B, C]


def matmul_schedule():
    """``tutorials/matrix_multiply.py``: 1x256 by 256x256, one reduction block (ko) at a time."""
    batch, in_ch, out_ch = 1, 256, 256
    A = te.placeholder(
        (batch // ENV.BATCH, in_ch // ENV.BLOCK_IN, ENV.BATCH, ENV.BLOCK_IN),
        name="A",
        dtype=ENV.inp_dtype,
    )
    B = te.placeholder(
        (out_ch // ENV.BLOCK_OUT, in_ch // ENV.BLOCK_IN, ENV.BLOCK_OUT, ENV.BLOCK_IN),
        name="B",
        dtype=ENV.wgt_dtype,
    )
    A_buf = te.compute(A.shape, lambda *i: A(*i), "A_buf")
    B_buf = te.compute(B.shape, lambda *i: B(*i), "B_buf")
    ko = te.reduce_axis((0, in_ch // ENV.BLOCK_IN), name="ko")
    ki = te.reduce_axis((0, ENV.BLOCK_IN), name="ki")
    out_shape = (batch // ENV.BATCH, out_ch // ENV.BLOCK_OUT, ENV.BATCH, ENV.BLOCK_OUT)
    C_buf = te.compute(
        out_shape,
        lambda bo, co, bi, ci: te.sum(
            A_buf[bo, ko, bi, ki].astype(ENV.acc_dtype)
            * B_buf[co, ko, ci, ki].astype(ENV.acc_dtype),
            axis=[ko, ki],
        ),
        name="C_buf",
    )
    C = te.compute(out_shape, lambda *i: C_buf(*i).astype(ENV.inp_dtype), name="C")
    s = te.create_schedule(C.op)
    s[A_buf].set_scope(ENV.inp_scope)
    s[B_buf].set_scope(ENV.wgt_scope)
    s[C_buf].set_scope(ENV.acc_scope)
    s[B_buf].compute_at(s[C_buf], ko)
    s[A_buf].compute_at(s[C_buf], ko)
    s[A_buf].pragma(s[A_buf].op.axis[0], ENV.dma_copy)
    s[B_buf].pragma(s[B_buf].op.axis[0], ENV.dma_copy)
    s[C].pragma(s[C].op.axis[0], ENV.dma_copy)
    bo, co, bi, ci = s[C_buf].op.axis
    s[C_buf].reorder(ko, bo, co, bi, ci, ki)
    s[C_buf].tensorize(bi, ENV.gemm)
    return s, [A, B, C]


def blocked_matmul_schedule():
    """``tutorials/matrix_multiply_opt.py``: 1x1024 by 1024x1024 in 256-channel blocks, then
    ``>> 8`` and a clip to [0, 127] on the ALU."""
    batch, in_ch, out_ch = 1, 1024, 1024
    data_shape = (batch // ENV.BATCH, in_ch // ENV.BLOCK_IN, ENV.BATCH, ENV.BLOCK_IN)
    weight_shape = (out_ch // ENV.BLOCK_OUT, in_ch // ENV.BLOCK_IN, ENV.BLOCK_OUT, ENV.BLOCK_IN)
    output_shape = (batch // ENV.BATCH, out_ch // ENV.BLOCK_OUT, ENV.BATCH, ENV.BLOCK_OUT)
    data = te.placeholder(data_shape, name="data", dtype=ENV.inp_dtype)
    weight = te.placeholder(weight_shape, name="weight", dtype=ENV.wgt_dtype)
    data_buf = te.compute(data_shape, lambda *i: data(*i), "data_buf")
    weight_buf = te.compute(weight_shape, lambda *i: weight(*i), "weight_buf")
    ic = te.reduce_axis((0, in_ch // ENV.BLOCK_IN), name="ic")
    ic_tns = te.reduce_axis((0, ENV.BLOCK_IN), name="ic_tns")
    res_gemm = te.compute(
        output_shape,
        lambda bo, co, bi, ci: te.sum(
            data_buf[bo, ic, bi, ic_tns].astype(ENV.acc_dtype)
            * weight_buf[co, ic, ci, ic_tns].astype(ENV.acc_dtype),
            axis=[ic, ic_tns],
        ),
        name="res_gemm",
    )
    inp_max = (1 << (ENV.INP_WIDTH - 1)) - 1
    res_shr = te.compute(output_shape, lambda *i: res_gemm(*i) >> ENV.INP_WIDTH, name="res_shr")
    res_max = te.compute(output_shape, lambda *i: te.max(res_shr(*i), 0), "res_max")
    res_min = te.compute(output_shape, lambda *i: te.min(res_max(*i), inp_max), "res_min")
    res = te.compute(output_shape, lambda *i: res_min(*i).astype(ENV.inp_dtype), name="res")

    s = te.create_schedule(res.op)
    b, oc, _b_tns, _oc_tns = s[res].op.axis
    b_out, b_inn = s[res].split(b, batch // ENV.BATCH)
    oc_out, oc_inn = s[res].split(oc, 256 // ENV.BLOCK_OUT)
    s[res].reorder(b_out, oc_out, b_inn, oc_inn)
    for stage in (res_gemm, res_shr, res_max, res_min):
        s[stage].set_scope(ENV.acc_scope)
        s[stage].compute_at(s[res], oc_out)
    for stage in (res_shr, res_max, res_min):
        s[stage].pragma(s[stage].op.axis[0], ENV.alu)
    s[res].pragma(oc_inn, ENV.dma_copy)
    b, oc, b_tns, oc_tns = s[res_gemm].op.axis
    ic_out, ic_inn = s[res_gemm].split(ic, 256 // ENV.BLOCK_IN)
    s[res_gemm].reorder(ic_out, b, oc, ic_inn, b_tns, oc_tns, ic_tns)
    s[data_buf].compute_at(s[res_gemm], ic_out)
    s[weight_buf].compute_at(s[res_gemm], ic_out)
    s[data_buf].set_scope(ENV.inp_scope)
    s[weight_buf].set_scope(ENV.wgt_scope)
    s[data_buf].pragma(s[data_buf].op.axis[0], ENV.dma_copy)
    s[weight_buf].pragma(s[weight_buf].op.axis[0], ENV.dma_copy)
    s[res_gemm].tensorize(b_tns, ENV.gemm)
    return s, [data, weight, res]


TUTORIAL_SCHEDULES = {
    "vta_get_started": vadd_schedule,
    "matrix_multiply": matmul_schedule,
    "matrix_multiply_opt": blocked_matmul_schedule,
}


def lowered(s, args, after: str) -> ir.Stmt:
    """The program body after the pass ``after``."""
    return accel.lower(s, args, dump_after=after).body


def calls(stmt: ir.Stmt, *kinds: coproc.RuntimeCall) -> list[Call]:
    """The runtime calls of ``stmt`` of the given kinds (all when none), in program order."""
    names = {k.name for k in kinds}
    found = []
    for s in ir.walk_stmt(stmt):
        name = coproc.call_name(s)
        if name is not None and (not names or name in names):
            found.append(s.value)
    return found


def args(c: Call) -> tuple:
    """The arguments of a runtime call as a named tuple of its declared fields (``.x_size``),
    constants as Python ints (buffers and expressions as they are)."""
    values = (a.value if isinstance(a, Const) else a for a in c.args)
    return _named_tuple(coproc.RUNTIME_CALLS[c.name])(*values)


@functools.cache
def _named_tuple(kind: coproc.RuntimeCall):
    return collections.namedtuple(kind.name, kind.fields)


def value(e: Expr | int, **at: int) -> int:
    """The constant value of ``e`` with the variables named in ``at`` set."""
    if isinstance(e, int):
        return e
    if isinstance(e, coproc.SramAddr):
        e = e.offset

    def fn(x):
        if isinstance(x, Var) and x.name in at:
            return Const(at[x.name])
        return None

    folded = simplify(rewrite(e, fn))
    assert isinstance(folded, Const), f"{e} is not constant with {at}"
    return folded.value


def sram(e) -> tuple[str, int]:
    """(buffer name, constant tile offset) of an on-chip address."""
    assert isinstance(e, coproc.SramAddr), e
    return e.buffer.name, value(e.offset)


def allocations(stmt: ir.Stmt) -> list[str]:
    """Names of the allocated buffers, in program order."""
    return [s.buffer.name for s in ir.walk_stmt(stmt) if isinstance(s, ir.Allocate)]
