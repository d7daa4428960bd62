"""Random instruction streams: a typed error or the right answer, never a bare exception, and the
device clean afterwards.

Streams carry no dependency flags, so every module's next instruction is always ready and the
simulator runs them in stream order; the reference below is that order, each instruction
interpreted literally from docs/isa.md §4 (loops in Python, exact integers). Fields are drawn
small but unchecked -- SRAM indices past the end, DRAM ranges outside memory -- so that
refusals are exercised too. Both execution paths run: the interpreter and the stream plan
(twice, so that the second run comes from the cache).
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from accel.errors import AccelError
from accel.hw.isa import AluInsn, AluOp, FinishInsn, GemmInsn, MemInsn, MemType, Opcode, Uop

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "sim"))
from sim_streams import Bench  # noqa: E402

DEPTH = 24  # SRAM indices drawn up to here; the data blocks hold this many elements each
BIG = 1 << 17  # element indices past the 1 MiB of device memory


class Reference:
    """The machine state, and every instruction of docs/isa.md §4 written literally."""

    def __init__(self, bench: Bench):
        env = bench.env
        self.env, self.mem = env, bench.mem.data.copy()
        self.elem = bench.mem.elem_sizes
        s = bench.sim.srams
        self.inp = s.inp[:-1].astype(np.int64).copy()
        self.wgt = s.wgt[:-1].astype(np.int64).copy()
        self.acc = s.acc.astype(np.int64).copy()
        self.uop = s.uop.copy()

    def dram(self, mem_type, index, dtype):
        size = self.elem[mem_type]
        raw = self.mem[index * size : (index + 1) * size]
        return raw.view(dtype)

    def run(self, insn) -> None:
        if isinstance(insn, MemInsn):
            (self.store if insn.opcode == Opcode.STORE else self.load)(insn)
        elif isinstance(insn, GemmInsn):
            self.loops(insn, self.gemm_step)
        elif isinstance(insn, AluInsn):
            self.loops(insn, self.alu_step)

    def load(self, insn: MemInsn) -> None:
        if insn.x_size == 0:
            return
        rows = insn.y_pad_0 + insn.y_size + insn.y_pad_1
        cols = insn.x_pad_0 + insn.x_size + insn.x_pad_1
        t = insn.memory_type
        for y in range(rows):
            for x in range(cols):
                k = insn.sram_base + y * cols + x
                yy, xx = y - insn.y_pad_0, x - insn.x_pad_0
                inside = 0 <= yy < insn.y_size and 0 <= xx < insn.x_size
                index = insn.dram_base + yy * insn.x_stride + xx
                if t == MemType.UOP:
                    self.uop[k] = self.dram(t, index, "<u4")[0] if inside else 0
                elif t == MemType.INP:
                    self.inp[k] = (
                        self.dram(t, index, np.int8).reshape(self.inp[k].shape) if inside else 0
                    )
                elif t == MemType.WGT:
                    self.wgt[k] = (
                        self.dram(t, index, np.int8).reshape(self.wgt[k].shape) if inside else 0
                    )
                elif t == MemType.ACC:
                    self.acc[k] = (
                        self.dram(t, index, "<i4").reshape(self.acc[k].shape) if inside else 0
                    )
                else:  # ACC_8BIT
                    self.acc[k] = (
                        self.dram(t, index, np.int8).reshape(self.acc[k].shape) if inside else 0
                    )

    def store(self, insn: MemInsn) -> None:
        for y in range(insn.y_size):
            for x in range(insn.x_size):
                k = insn.sram_base + y * insn.x_size + x
                index = insn.dram_base + y * insn.x_stride + x
                size = self.elem[MemType.OUT]
                low_bits = (self.acc[k].reshape(-1) & 0xFF).astype(np.uint8)
                self.mem[index * size : (index + 1) * size] = low_bits

    def loops(self, insn, step) -> None:
        uops = [self.decode_uop(int(w)) for w in self.uop[insn.uop_bgn : insn.uop_end]]
        for i in range(insn.iter_out):
            for j in range(insn.iter_in):
                for d0, s0, w0 in uops:
                    d = d0 + i * insn.dst_factor_out + j * insn.dst_factor_in
                    s = s0 + i * insn.src_factor_out + j * insn.src_factor_in
                    w = w0 + i * getattr(insn, "wgt_factor_out", 0)
                    w += j * getattr(insn, "wgt_factor_in", 0)
                    step(insn, d, s, w)

    def decode_uop(self, word: int):
        env = self.env
        a, b = env.LOG_ACC_BUFF_DEPTH, max(env.LOG_ACC_BUFF_DEPTH, env.LOG_INP_BUFF_DEPTH)
        return word & ((1 << a) - 1), (word >> a) & ((1 << b) - 1), word >> (a + b)

    def gemm_step(self, insn, d, s, w) -> None:
        if insn.reset_reg:
            self.acc[d] = 0
        else:
            self.acc[d] = wrap(self.acc[d] + self.inp[s] @ self.wgt[w].T)

    def alu_step(self, insn, d, s, w) -> None:
        a = self.acc[d].copy()
        b = np.full_like(a, insn.imm) if insn.use_imm else self.acc[s].copy()
        op = insn.alu_opcode
        if op == AluOp.MIN:
            r = np.minimum(a, b)
        elif op == AluOp.MAX:
            r = np.maximum(a, b)
        elif op == AluOp.ADD:
            r = a + b
        elif op == AluOp.MUL:
            r = a * b
        else:
            r = np.array(
                [
                    x >> y if y >= 0 else x << min(-y, 64)
                    for x, y in zip(a.ravel().tolist(), b.ravel().tolist())
                ]
            ).reshape(a.shape)
        self.acc[d] = wrap(r)


def wrap(v):
    return (np.asarray(v, dtype=object) + 2**31) % 2**32 - 2**31


# -- streams ----------------------------------------------------------------------------------


def mem_insn(draw, bench: Bench, blocks) -> MemInsn:
    kind = draw(st.sampled_from(["INP", "WGT", "ACC", "ACC_8BIT", "UOP", "OUT"]))
    t = MemType[kind]
    small = st.integers(0, 3)
    y, x = draw(st.integers(0, 3)), draw(st.integers(0, 4))
    base = (
        blocks[t] + draw(st.integers(-1, 3))
        if draw(st.integers(0, 9))
        else draw(st.integers(0, BIG))
    )
    return MemInsn(
        opcode=Opcode.STORE if t == MemType.OUT else Opcode.LOAD,
        memory_type=t,
        sram_base=draw(st.integers(0, DEPTH)),
        dram_base=max(base, 0),
        y_size=y,
        x_size=x,
        x_stride=x + draw(small),
        **(
            {}
            if t == MemType.OUT
            else dict(
                y_pad_0=draw(small), y_pad_1=draw(small), x_pad_0=draw(small), x_pad_1=draw(small)
            )
        ),
    )


def loop_insn(draw, cls):
    f = st.integers(0, 3)
    kw = dict(
        uop_bgn=draw(st.integers(0, 4)),
        iter_out=draw(st.integers(0, 3)),
        iter_in=draw(st.integers(0, 3)),
        dst_factor_out=draw(f),
        dst_factor_in=draw(f),
        src_factor_out=draw(f),
        src_factor_in=draw(f),
    )
    kw["uop_end"] = kw["uop_bgn"] + draw(st.integers(0, 3))
    if cls is GemmInsn:
        return GemmInsn(
            reset_reg=draw(st.booleans()), wgt_factor_out=draw(f), wgt_factor_in=draw(f), **kw
        )
    return AluInsn(
        alu_opcode=draw(st.sampled_from(list(AluOp))),
        use_imm=draw(st.booleans()),
        imm=draw(st.integers(-40, 40)),
        **kw,
    )


@st.composite
def streams(draw):
    return (
        draw(st.integers(0, 2**32 - 1)),
        [
            draw(st.sampled_from(["mem", "mem", "gemm", "alu"]))
            for _ in range(draw(st.integers(1, 8)))
        ],
        draw(st.data()),
    )


def build(bench: Bench, rng, kinds, data):
    env = bench.env
    blocks = {
        MemType.INP: bench.put(
            rng.integers(-128, 128, (DEPTH, env.BATCH, env.BLOCK_IN), dtype=np.int8), MemType.INP
        ),
        MemType.WGT: bench.put(
            rng.integers(-128, 128, (DEPTH, env.BLOCK_OUT, env.BLOCK_IN), dtype=np.int8),
            MemType.WGT,
        ),
        MemType.ACC: bench.put(
            rng.integers(-(2**20), 2**20, (DEPTH, env.BATCH, env.BLOCK_OUT)).astype(np.int32),
            MemType.ACC,
        ),
        MemType.ACC_8BIT: bench.put(
            rng.integers(-128, 128, (DEPTH, env.BATCH, env.BLOCK_OUT), dtype=np.int8),
            MemType.ACC_8BIT,
        ),
        MemType.UOP: bench.put(_uops(env, rng), MemType.UOP),
        MemType.OUT: bench.space(DEPTH * env.BATCH * env.BLOCK_OUT, MemType.OUT),
    }
    insns = []
    for kind in kinds:
        if kind == "mem":
            insns.append(mem_insn(data.draw, bench, blocks))
        else:
            insns.append(loop_insn(data.draw, GemmInsn if kind == "gemm" else AluInsn))
    return insns + [FinishInsn()]


def _uops(env, rng):
    from accel.hw.isa import encode_uops

    return encode_uops([Uop(*rng.integers(0, 6, 3).tolist()) for _ in range(DEPTH)], env)


@seed(20261201)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_random_streams_give_a_typed_error_or_the_right_answer(case):
    rng_seed, kinds, data = case
    insns = None
    for use_plans in (False, True):
        bench = Bench(trace=False, size=1 << 20)
        bench.sim.use_plans = use_plans
        rng = np.random.default_rng(rng_seed)
        if insns is None:
            insns = build(bench, rng, kinds, data)
        else:
            build(bench, rng, ["alu"] * 0, data)  # same data blocks at the same addresses
        addr, count = bench.write_stream(insns)
        reference = Reference(bench)
        try:
            for _ in range(2):
                bench.sim.run(addr, count)
        except AccelError:
            # Refused: nothing may be left behind for the next stream.
            assert not any(bench.sim.queues.counts().values())
            continue
        for insn in insns:
            reference.run(insn)
        # After two runs the reference ran once: run it again for the second run.
        for insn in insns:
            reference.run(insn)
        s = bench.sim.srams
        np.testing.assert_array_equal(s.acc.astype(np.int64), reference.acc.astype(np.int64))
        np.testing.assert_array_equal(s.inp[:-1].astype(np.int64), reference.inp)
        np.testing.assert_array_equal(s.wgt[:-1].astype(np.int64), reference.wgt)
        np.testing.assert_array_equal(s.uop, reference.uop)
        np.testing.assert_array_equal(bench.mem.data, reference.mem)
