"""Simulator speed on a ResNet-18-shaped convolution and on many small instructions.

The convolution is the 56x56, 64 -> 64 channel, 3x3 (pad 1) layer of ResNet-18: 115,605,504
multiply-accumulates. The stream is tiled the way the VTA compiler tiles it: two-row output
tiles, two virtual threads alternating between the halves of the input and accumulator SRAMs
so the loads of one tile overlap the compute of the other; per tile, one padded input load per
input-channel block, a reset GEMM, one GEMM whose micro-ops run over (row, channel block, dy,
dx) with the loops over output-channel blocks and columns, requantization on the ALU (shift
right, max 0, min 127) and one strided store. Weights and micro-op kernels are loaded once.

Prints (does not assert) simulated MACs per host second, the time of float32 numpy.matmul doing
the same arithmetic as one im2col product (with the simulator's BLAS threads: one unless
``ACCEL_BLAS_THREADS`` says otherwise), their ratio, and instructions per second on 10,000
one-micro-op GEMMs. Run: ``python benchmarks/bench_sim.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from accel.env import get_env
from accel.hw.isa import (
    AluInsn,
    AluOp,
    FinishInsn,
    GemmInsn,
    MemInsn,
    MemType,
    Opcode,
    Uop,
    encode_stream,
    encode_uops,
)
from accel.hw.memory import DeviceMemory, elem_bytes
from accel.sim import Simulator

H = W = 56
IC = OC = 64
SHIFT = 9


def mem(opcode, mem_type, sram, dram, y, x, stride, **kw) -> MemInsn:
    return MemInsn(
        opcode=opcode,
        memory_type=mem_type,
        sram_base=sram,
        dram_base=dram,
        y_size=y,
        x_size=x,
        x_stride=stride,
        **kw,
    )


class ConvStream:
    """The convolution's data in DRAM and the instruction stream that computes it."""

    def __init__(self, env, dram: DeviceMemory, rng: np.random.Generator, tile_rows: int = 2):
        self.env, self.dram, self.tile_rows = env, dram, tile_rows
        bi, bo = env.BLOCK_IN, env.BLOCK_OUT
        self.icb, self.ocb = IC // bi, OC // bo
        self.data = rng.integers(-128, 128, (self.icb, H, W, env.BATCH, bi), dtype=np.int8)
        self.wgt = rng.integers(-128, 128, (self.ocb, self.icb, 3, 3, bo, bi), dtype=np.int8)
        self.data_at = self._put(self.data, MemType.INP)
        self.wgt_at = self._put(self.wgt, MemType.WGT)
        out_bytes = self.ocb * H * W * env.BATCH * bo
        self.out_at = dram.to_elem_index(dram.alloc(out_bytes, 16), MemType.OUT)
        self.insns = self._stream()

    def _put(self, array: np.ndarray, mem_type: MemType) -> int:
        addr = self.dram.alloc(array.nbytes, elem_bytes(self.env, mem_type))
        self.dram.write(addr, array)
        return self.dram.to_elem_index(addr, mem_type)

    def _stream(self) -> list:
        env, icb, ocb, tile_rows = self.env, self.icb, self.ocb, self.tile_rows
        in_rows, in_cols = tile_rows + 2, W + 2
        inp_tile, acc_tile = icb * in_rows * in_cols, ocb * tile_rows * W
        # Double-buffer (two virtual threads) each SRAM where two tiles fit, else share it.
        inp_slots = 2 if 2 * inp_tile <= env.INP_BUFF_DEPTH else 1
        acc_slots = 2 if 2 * acc_tile <= env.ACC_BUFF_DEPTH else 1
        assert (
            inp_tile <= env.INP_BUFF_DEPTH and acc_tile <= env.ACC_BUFF_DEPTH and H % tile_rows == 0
        )
        self.slots = (inp_slots, acc_slots)

        def bases(t: int) -> tuple[int, int]:
            return (t % inp_slots) * inp_tile, (t % acc_slots) * acc_tile

        kernels, uops = [], []
        for thread in range(2):  # one micro-op kernel set per virtual thread
            inp_base, acc_base = bases(thread)
            reset = [Uop(acc_base + r * W, 0, 0) for r in range(tile_rows)]
            conv = [
                Uop(
                    acc_base + r * W,
                    inp_base + c * in_rows * in_cols + (r + dy) * in_cols + dx,
                    c * 9 + dy * 3 + dx,
                )
                for r in range(tile_rows)
                for c in range(icb)
                for dy in range(3)
                for dx in range(3)
            ]
            requant = [Uop(acc_base, acc_base, 0)]
            spans = []
            for kernel in (reset, conv, requant):
                spans.append((len(uops), len(uops) + len(kernel)))
                uops += kernel
            kernels.append(spans)
        uop_at = self._put(encode_uops(uops, env), MemType.UOP)
        n_wgt = ocb * icb * 9
        insns = [
            mem(Opcode.LOAD, MemType.UOP, 0, uop_at, 1, len(uops), len(uops)),
            mem(Opcode.LOAD, MemType.WGT, 0, self.wgt_at, 1, n_wgt, n_wgt),
        ]
        tiles = H // tile_rows
        for t in range(tiles):
            inp_base, acc_base = bases(t)
            (rb, re), (cb, ce), (ab, ae) = kernels[t % 2]
            top, bottom = (
                t * tile_rows - 1,
                t * tile_rows + tile_rows + 1,
            )  # input rows [top, bottom)
            pad0, pad1 = int(top < 0), int(bottom > H)
            first, rows = max(top, 0), min(bottom, H) - max(top, 0)
            for c in range(icb):
                insns.append(
                    mem(
                        Opcode.LOAD,
                        MemType.INP,
                        inp_base + c * in_rows * in_cols,
                        self.data_at + (c * H + first) * W,
                        rows,
                        W,
                        W,
                        y_pad_0=pad0,
                        y_pad_1=pad1,
                        x_pad_0=1,
                        x_pad_1=1,
                        pop_next_dep=t >= inp_slots and c == 0,
                        push_next_dep=c == icb - 1,
                    )
                )
            insns.append(
                GemmInsn(
                    reset_reg=True,
                    uop_bgn=rb,
                    uop_end=re,
                    iter_out=ocb,
                    iter_in=W,
                    dst_factor_out=tile_rows * W,
                    dst_factor_in=1,
                    pop_prev_dep=True,
                    pop_next_dep=t >= acc_slots,
                )
            )
            insns.append(
                GemmInsn(
                    uop_bgn=cb,
                    uop_end=ce,
                    iter_out=ocb,
                    iter_in=W,
                    dst_factor_out=tile_rows * W,
                    dst_factor_in=1,
                    src_factor_in=1,
                    wgt_factor_out=icb * 9,
                    push_prev_dep=t + inp_slots < tiles,
                )
            )
            for op, imm in ((AluOp.SHR, SHIFT), (AluOp.MAX, 0), (AluOp.MIN, 127)):
                insns.append(
                    AluInsn(
                        alu_opcode=op,
                        use_imm=True,
                        imm=imm,
                        uop_bgn=ab,
                        uop_end=ae,
                        iter_out=1,
                        iter_in=acc_tile,
                        dst_factor_in=1,
                        src_factor_in=1,
                        push_next_dep=op == AluOp.MIN,
                    )
                )
            insns.append(
                mem(
                    Opcode.STORE,
                    MemType.OUT,
                    acc_base,
                    self.out_at + t * tile_rows * W,
                    ocb,
                    tile_rows * W,
                    H * W,
                    pop_prev_dep=True,
                    push_prev_dep=t + acc_slots < tiles or t == tiles - 1,
                )
            )
        # Synchronize: wait for the last store, then finish.
        insns.append(mem(Opcode.LOAD, MemType.ACC, 0, 0, 0, 0, 0, pop_next_dep=True))
        insns.append(FinishInsn())
        return insns

    def reference(self) -> np.ndarray:
        """The requantized output computed with numpy (im2col, exact int64)."""
        cols = self.im2col().astype(np.int64)
        weights = self.weight_matrix().astype(np.int64)
        acc = (cols @ weights).astype(np.int32)
        out = np.clip(acc >> SHIFT, 0, 127).astype(np.int8)  # (H*W, OC)
        return out.reshape(H, W, self.ocb, self.env.BLOCK_OUT).transpose(2, 0, 1, 3)

    def im2col(self) -> np.ndarray:
        padded = np.pad(self.data[:, :, :, 0], ((0, 0), (1, 1), (1, 1), (0, 0)))
        patches = [padded[:, dy : dy + H, dx : dx + W] for dy in range(3) for dx in range(3)]
        cols = np.stack(patches, axis=1)  # (icb, 9, H, W, bi)
        return cols.transpose(2, 3, 0, 1, 4).reshape(H * W, -1)

    def weight_matrix(self) -> np.ndarray:
        w = self.wgt.reshape(self.ocb, self.icb, 9, self.env.BLOCK_OUT, self.env.BLOCK_IN)
        return w.transpose(1, 2, 4, 0, 3).reshape(-1, OC)

    def output(self) -> np.ndarray:
        addr = self.dram.to_byte_addr(self.out_at, MemType.OUT)
        raw = self.dram.read(addr, self.ocb * H * W * self.env.BLOCK_OUT).view(np.int8)
        return raw.reshape(self.ocb, H, W, self.env.BLOCK_OUT)


def write_stream(dram: DeviceMemory, insns, env) -> tuple[int, int]:
    words = encode_stream(insns, env)
    addr = dram.alloc(words.nbytes, 16)
    dram.write(addr, words)
    return addr, len(insns)


def bench_conv(repeat: int, tile_rows: int) -> None:
    env = get_env()
    dram = DeviceMemory(env)
    conv = ConvStream(env, dram, np.random.default_rng(0), tile_rows)
    where = write_stream(dram, conv.insns, env)
    sim = Simulator(env, dram)
    report = sim.run(*where)  # warm-up: builds the GEMM / ALU plans
    if not np.array_equal(conv.output(), conv.reference()):
        raise SystemExit("simulated convolution does not match the numpy reference")
    macs = report.stats["gemm_counter"] * env.BATCH * env.BLOCK_IN * env.BLOCK_OUT
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        sim.run(*where)
        times.append(time.perf_counter() - start)
    sim_time = statistics.median(times)

    a = conv.im2col().astype(np.float32)
    b = conv.weight_matrix().astype(np.float32)
    blas = []
    with threadpool_limits(sim.blas_threads, user_api="blas"):  # the simulator's own threads
        for _ in range(repeat):
            start = time.perf_counter()
            np.matmul(a, b)
            blas.append(time.perf_counter() - start)
    blas_time = statistics.median(blas)

    print(
        f"ResNet-18 conv 56x56 64->64 3x3, {tile_rows}-row tiles, (inp, acc) buffers "
        f"{conv.slots}: {len(conv.insns)} instructions, {macs:,} MACs"
    )
    print(
        f"  simulator (median of {repeat}):  {sim_time * 1e3:8.2f} ms  "
        f"{macs / sim_time / 1e9:6.1f} G MAC/s"
    )
    print(
        f"  float32 numpy.matmul im2col, {sim.blas_threads or 'default'} BLAS thread(s): "
        f"{blas_time * 1e3:8.2f} ms  "
        f"{macs / blas_time / 1e9:6.1f} G MAC/s"
    )
    print(f"  simulator / BLAS time:         {sim_time / blas_time:8.2f}x")
    print("  simulated: " + report.timing.summary().replace("\n", "\n  "))


def bench_small(repeat: int, count: int = 10_000) -> None:
    env = get_env()
    dram = DeviceMemory(env)
    uop_at = dram.to_elem_index(dram.alloc(64, 4), MemType.UOP)
    dram.write(
        dram.to_byte_addr(uop_at, MemType.UOP), encode_uops([Uop(d, d, d) for d in range(16)], env)
    )
    insns = [mem(Opcode.LOAD, MemType.UOP, 0, uop_at, 1, 16, 16)]
    insns += [
        GemmInsn(uop_bgn=k % 16, uop_end=k % 16 + 1, iter_out=1, iter_in=1) for k in range(count)
    ]
    insns.append(FinishInsn())
    where = write_stream(dram, insns, env)
    sim = Simulator(env, dram)
    sim.run(*where)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        sim.run(*where)
        times.append(time.perf_counter() - start)
    best = statistics.median(times)
    print(
        f"{count:,} one-micro-op GEMMs: {best * 1e3:.1f} ms, "
        f"{len(insns) / best:,.0f} instructions/s (median of {repeat})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs (median reported)")
    parser.add_argument(
        "--tile-rows", type=int, nargs="+", default=[2, 4], help="output rows per tile"
    )
    args = parser.parse_args()
    for tile_rows in args.tile_rows:
        bench_conv(args.repeat, tile_rows)
    bench_small(max(3, args.repeat // 2))


if __name__ == "__main__":
    main()
