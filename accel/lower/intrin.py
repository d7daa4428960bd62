"""The accelerator's tensor intrinsic: one BATCH x BLOCK_IN by BLOCK_OUT x BLOCK_IN product.

``env.gemm`` declares ``out[b, o] += sum_k int32(inp[b, k]) * int32(wgt[o, k])`` over one input
tile, one weight tile (stored output-channel-major) and one accumulator tile. Tensorizing a stage
with it (``s[C].tensorize(axis, env.gemm)``) replaces those loops by a GEMM micro-op: the reset
part zeroes the accumulator tile, the update part accumulates into it.
"""

from __future__ import annotations

import functools

from accel.arith.simplify import simplify
from accel.env import Environment, register_intrinsic
from accel.errors import TensorizeError
from accel.hw.isa import MemType
from accel.lower import coproc
from accel.lower.tensorize import BufferRegion
from accel.schedule.intrin import TensorIntrin, decl_tensor_intrin
from accel.te.expr import BinOp, Const
from accel.te.reduction import sum as te_sum
from accel.te.tensor import compute, placeholder, reduce_axis


@functools.cache
def gemm_intrin(env: Environment) -> TensorIntrin:
    """The GEMM intrinsic of configuration ``env`` (cached: one object per configuration)."""
    inp = placeholder((env.BATCH, env.BLOCK_IN), name="inp", dtype=env.inp_dtype)
    wgt = placeholder((env.BLOCK_OUT, env.BLOCK_IN), name="wgt", dtype=env.wgt_dtype)
    k = reduce_axis((0, env.BLOCK_IN), name="k")
    out = compute(
        (env.BATCH, env.BLOCK_OUT),
        lambda b, o: te_sum(
            inp[b, k].astype(env.acc_dtype) * wgt[o, k].astype(env.acc_dtype), axis=k
        ),
        name="out",
    )

    def emit(ins: list[BufferRegion], outs: list[BufferRegion]):
        x, w = ins
        (y,) = outs
        dst = _tile(env, y, env.acc_scope, MemType.ACC)
        src = _tile(env, x, env.inp_scope, MemType.INP)
        wgt_index = _tile(env, w, env.wgt_scope, MemType.WGT)

        def kernel(reset: int):
            push = coproc.UOP_PUSH(
                mode=coproc.GEMM_MODE,
                reset=reset,
                dst=dst,
                src=Const(0) if reset else src,
                wgt=Const(0) if reset else wgt_index,
                opcode=0,
                use_imm=0,
                imm=0,
            )
            return coproc.in_stage(coproc.COMPUTE_STAGE, coproc.uop_scope(coproc.GEMM_KERNEL, push))

        reset, update = kernel(1), kernel(0)
        return None, reset, update

    return decl_tensor_intrin(out, emit, name="gemm")


def _tile(env: Environment, region: BufferRegion, scope: str, mem_type: MemType):
    """The on-chip tile address of an operand region, checked to be one whole, compact tile."""
    buf = region.buffer
    if buf.scope != scope:
        raise TensorizeError(
            f"gemm: operand {buf.name} is in scope {buf.scope}, but the GEMM core reads "
            f"{scope}; set_scope({scope!r}) on its stage"
        )
    rows, cols = region.shape
    if tuple(region.strides) != (cols, 1):
        raise TensorizeError(
            f"gemm: operand {buf.name} is not one compact {rows}x{cols} tile "
            f"(strides {region.strides}); the tile axes must be its innermost dimensions"
        )
    tile = coproc.tile_elems(env, mem_type)
    offset = simplify(BinOp("floordiv", region.elem_offset, Const(tile), "int32"))
    exact = simplify(BinOp("floormod", region.elem_offset, Const(tile), "int32"))
    if exact != Const(0):
        raise TensorizeError(f"gemm: operand {buf.name} does not start on a tile boundary")
    return coproc.SramAddr(buf, offset)


register_intrinsic("gemm", gemm_intrin)
