"""Schedules for the accelerator tests, with their numpy references."""

from __future__ import annotations

import numpy as np

from accel import te


def packed_matmul(env, batch, in_ch, out_ch, i_block, o_block, shift=None):
    """The blocked fully-connected layer of ``tutorials/matrix_multiply_opt.py``.

    ``i_block`` / ``o_block`` are input / output channels per block (multiples of the tile);
    ``shift`` adds the ``>> shift``, clip to [0, 127] epilogue on the ALU. Returns the schedule,
    its arguments and a numpy reference taking the packed inputs.
    """
    dshape = (batch // env.BATCH, in_ch // env.BLOCK_IN, env.BATCH, env.BLOCK_IN)
    wshape = (out_ch // env.BLOCK_OUT, in_ch // env.BLOCK_IN, env.BLOCK_OUT, env.BLOCK_IN)
    oshape = (batch // env.BATCH, out_ch // env.BLOCK_OUT, env.BATCH, env.BLOCK_OUT)
    data = te.placeholder(dshape, name="data", dtype=env.inp_dtype)
    weight = te.placeholder(wshape, name="weight", dtype=env.wgt_dtype)
    data_buf = te.compute(dshape, lambda *i: data(*i), "data_buf")
    weight_buf = te.compute(wshape, lambda *i: weight(*i), "weight_buf")
    ko = te.reduce_axis((0, dshape[1]), name="ko")
    ki = te.reduce_axis((0, env.BLOCK_IN), name="ki")
    gemm = te.compute(
        oshape,
        lambda bo, co, bi, ci: te.sum(
            data_buf[bo, ko, bi, ki].astype(env.acc_dtype)
            * weight_buf[co, ko, ci, ki].astype(env.acc_dtype),
            axis=[ko, ki],
        ),
        name="gemm",
    )
    last, alu_stages = gemm, []
    if shift is not None:
        shr = te.compute(oshape, lambda *i: gemm(*i) >> shift, name="shr")
        hi = te.compute(oshape, lambda *i: te.max(shr(*i), 0), name="hi")
        lo = te.compute(oshape, lambda *i: te.min(hi(*i), 127), name="lo")
        last, alu_stages = lo, [shr, hi, lo]
    res = te.compute(oshape, lambda *i: last(*i).astype(env.out_dtype), name="res")

    s = te.create_schedule(res.op)
    b, oc, _bt, _ot = s[res].op.axis
    b_out, b_inn = s[res].split(b, 1)
    oc_out, oc_inn = s[res].split(oc, o_block // env.BLOCK_OUT)
    s[res].reorder(b_out, oc_out, b_inn, oc_inn)
    for stage in [gemm, *alu_stages]:
        s[stage].set_scope(env.acc_scope)
        s[stage].compute_at(s[res], oc_out)
    for stage in alu_stages:
        s[stage].pragma(s[stage].op.axis[0], env.alu)
    s[res].pragma(oc_inn, env.dma_copy)
    b, oc, b_tns, oc_tns = s[gemm].op.axis
    ko_out, ko_inn = s[gemm].split(ko, i_block // env.BLOCK_IN)
    s[gemm].reorder(ko_out, b, oc, ko_inn, b_tns, oc_tns, ki)
    for buf, scope in ((data_buf, env.inp_scope), (weight_buf, env.wgt_scope)):
        s[buf].compute_at(s[gemm], ko_out)
        s[buf].set_scope(scope)
        s[buf].pragma(s[buf].op.axis[0], env.dma_copy)
    s[gemm].tensorize(b_tns, env.gemm)

    def reference(d: np.ndarray, w: np.ndarray) -> np.ndarray:
        dm = d.transpose(0, 2, 1, 3).reshape(batch, in_ch).astype(np.int64)
        wm = w.transpose(0, 2, 1, 3).reshape(out_ch, in_ch).astype(np.int64)
        acc = (dm @ wm.T).astype(np.int32)  # exact, then int32 wrap-around
        if shift is not None:
            acc = np.clip(acc >> shift, 0, 127)
        out = acc.astype(np.int8)
        return out.reshape(oshape[0], env.BATCH, oshape[1], env.BLOCK_OUT).transpose(0, 2, 1, 3)

    return s, [data, weight, res], reference


def random_int8(rng, shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)
