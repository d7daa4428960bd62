"""What a call costs as a user sees it: built modules called on device arrays, against BLAS.

For every ResNet-18 convolution, with the default ``topi`` tiles (two virtual threads), with
our ``convolution_opt`` tutorial's schedule (store pragma on the column axis of a tile: one
STORE per tile row) and with the classic schedule of the original VTA tutorial (the same, with
the store pragma on the output's block axis: one STORE per 16-byte output tile, about 13,000
instructions for 56x56 64->64), it builds the module and times, through the public API:

- **cold**: the first call after the build (host code runs the command queue instruction by
  instruction and records the streams; the simulator decodes, schedules and translates them);
- **warm**: later calls with the same arrays (replayed streams, cached plans);
- **new arrays**: later calls, each with arrays allocated just before it (other addresses);
- **BLAS**: the same arithmetic as one float32 im2col product ``(OH*OW, C*KH*KW) @ (C*KH*KW, O)``
  in the same process, with the same BLAS threads as the simulator, timed alternately with the
  warm calls (one call, one product, ...), so that a slow period of the shared machine slows
  both sides of the ratio; warm calls and products are at least 30 each.

**build** is ``accel.build`` itself (lowering, code generation, and preparing the module: one
call on scratch arrays that records its streams and translates them into simulator plans).

Then the whole ResNet-18 convolution set with its layers repeated as in the network, the cost
of a call with almost no arithmetic (a one-tile convolution: the floor of a call), the 1x1
stride-2 layers written directly in numpy (the floor of any numpy-level simulation), a stream of
10,000 single-tile STOREs (instructions per second through ``Simulator.run``), and the README's
tiled host matmul against numpy's int32 product. Every accelerator result is checked against
numpy first. Times are medians over ``--repeat`` calls with the min-max spread in brackets.

Run: ``python benchmarks/bench_api.py [--repeat 7] [--threads 1] [--layers 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from bench_resnet import reference
from threadpoolctl import threadpool_info, threadpool_limits

import accel
from accel import te, topi
from accel.hw.isa import FinishInsn, MemInsn, MemType, Opcode, encode_stream

ENV = accel.get_env()
B = ENV.BLOCK_IN

# (height, in channels, out channels, kernel, stride) and how often ResNet-18 has each.
NETWORK = [
    ((56, 64, 64, 3, 1), 4),
    ((56, 64, 128, 3, 2), 1),
    ((56, 64, 128, 1, 2), 1),
    ((28, 128, 128, 3, 1), 3),
    ((28, 128, 256, 3, 2), 1),
    ((28, 128, 256, 1, 2), 1),
    ((14, 256, 256, 3, 1), 3),
    ((14, 256, 512, 3, 2), 1),
    ((14, 256, 512, 1, 2), 1),
    ((7, 512, 512, 3, 1), 3),
]


# -- timing ------------------------------------------------------------------------------------


class Times:
    def __init__(self, samples: list[float]):
        self.samples = samples
        self.median = statistics.median(samples)

    def __str__(self) -> str:
        return f"{ms(self.median)} [{ms(min(self.samples))}-{ms(max(self.samples))}]"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def timed(fn, repeat: int, setup=None) -> Times:
    samples = []
    for _ in range(repeat):
        args = setup() if setup else ()
        start = time.perf_counter()
        fn(*args)
        samples.append(time.perf_counter() - start)
    return Times(samples)


# -- the two schedules ---------------------------------------------------------------------------


def topi_module(layer):
    hw, ci, co, k, stride = layer
    data = te.placeholder((1, ci // B, hw, hw, 1, B), name="data", dtype="int8")
    kernel = te.placeholder((co // B, ci // B, k, k, B, B), name="kernel", dtype="int8")
    op = topi.conv2d_packed(data, kernel, ENV, stride, k // 2, shift=8)
    s = topi.schedule_conv2d_packed(op, ENV, topi.default_tiles(op, ENV, threads=2))
    return accel.build(s, op.args, name="conv"), op.args


def tutorial_module(layer, store_per_tile=False):
    s, args = tutorial_schedule(layer, store_per_tile)
    return accel.build(s, args, name="conv_tutorial"), args


def tutorial_schedule(layer, store_per_tile=False):
    """The ``tutorials/convolution_opt.py`` schedule for another layer, and its tensors: tiles of
    up to 8 output channel blocks, 7 rows and 14 columns, the store pragma on the column-block
    axis, and two virtual threads over output channels where the channels allow.
    ``store_per_tile``: the store pragma on the output's block axis instead, as the original
    tutorial has it. (tests/replay checks that these schedules replay like the JIT path.)"""
    hw, ci, co, k, stride = layer
    pad = k // 2
    out = (hw + 2 * pad - k) // stride + 1
    data = te.placeholder((1, ci // B, hw, hw, 1, B), name="data", dtype=ENV.inp_dtype)
    kernel = te.placeholder((co // B, ci // B, k, k, B, B), name="kernel", dtype=ENV.wgt_dtype)
    padded = (1, ci // B, hw + 2 * pad, hw + 2 * pad, 1, B)
    data_buf = te.compute(
        padded,
        lambda *i: te.if_then_else(
            te.all(i[2] >= pad, i[2] < hw + pad, i[3] >= pad, i[3] < hw + pad),
            data[i[0], i[1], i[2] - pad, i[3] - pad, i[4], i[5]],
            te.const(0, "int8"),
        ),
        "data_buf",
    )
    kernel_buf = te.compute(kernel.shape, lambda *i: kernel(*i), "kernel_buf")
    ic = te.reduce_axis((0, ci // B), name="ic")
    ic_tns = te.reduce_axis((0, B), name="ic_tns")
    dy, dx = te.reduce_axis((0, k), name="dy"), te.reduce_axis((0, k), name="dx")
    oshape = (1, co // B, out, out, 1, B)
    res_conv = te.compute(
        oshape,
        lambda bo, c, y, x, bi, ci_: te.sum(
            data_buf[bo, ic, y * stride + dy, x * stride + dx, bi, ic_tns].astype("int32")
            * kernel_buf[c, ic, dy, dx, ci_, ic_tns].astype("int32"),
            axis=[ic, dy, dx, ic_tns],
        ),
        name="res_conv",
    )
    res_shr = te.compute(oshape, lambda *i: res_conv(*i) >> 8, name="res_shr")
    res_max = te.compute(oshape, lambda *i: te.max(res_shr(*i), 0), "res_max")
    res_min = te.compute(oshape, lambda *i: te.min(res_max(*i), 127), "res_min")
    res = te.compute(oshape, lambda *i: res_min(*i).astype("int8"), name="res")
    s = te.create_schedule(res.op)
    b, oc, y, x, b_tns, oc_tns = s[res].op.axis
    oc_factor = min(8, co // B)
    threads = 2 if (co // B) // oc_factor >= 2 else 1
    oc_out, oc_inn = s[res].split(oc, factor=oc_factor)
    y_bo, y_bi = s[res].split(y, factor=7 if out % 7 == 0 else out)
    x_bo, x_bi = s[res].split(x, factor=14 if out % 14 == 0 else out)
    s[res].reorder(oc_out, y_bo, x_bo, b, oc_inn, y_bi, x_bi, b_tns, oc_tns)
    for stage in (res_conv, res_shr, res_max, res_min):
        s[stage].set_scope(ENV.acc_scope)
        s[stage].compute_at(s[res], x_bo)
    b_inn, oc_inn, y_inn, x_inn, b_tns, oc_tns = s[res_conv].op.axis
    ic_out, ic_inn = s[res_conv].split(ic, factor=1)
    s[res_conv].reorder(ic_out, b_inn, oc_inn, y_inn, ic_inn, dy, dx, x_inn, b_tns, oc_tns, ic_tns)
    if threads > 1:
        oc_rest, tx = s[res].split(oc_out, factor=threads)
        s[res].reorder(tx, oc_rest)
        s[res].bind(tx, te.thread_axis("cthread"))
    s[data_buf].set_scope(ENV.inp_scope)
    s[kernel_buf].set_scope(ENV.wgt_scope)
    s[data_buf].compute_at(s[res_conv], ic_out)
    s[kernel_buf].compute_at(s[res_conv], ic_out)
    s[data_buf].pragma(s[data_buf].op.axis[0], ENV.dma_copy)
    s[kernel_buf].pragma(s[kernel_buf].op.axis[0], ENV.dma_copy)
    s[res].pragma(s[res].op.axis[4] if store_per_tile else x_bi, ENV.dma_copy)
    for stage in (res_shr, res_max, res_min):
        s[stage].pragma(s[stage].op.axis[0], ENV.alu)
    s[res_conv].tensorize(b_tns, ENV.gemm)
    return s, [data, kernel, res]


def classic_module(layer):
    return tutorial_module(layer, store_per_tile=True)


SCHEDULES = (("topi", topi_module), ("tutorial", tutorial_module), ("classic", classic_module))


# -- references ----------------------------------------------------------------------------------


def blas_operands(layer, rng):
    hw, ci, co, k, stride = layer
    out = (hw + 2 * (k // 2) - k) // stride + 1
    a = rng.standard_normal((out * out, ci * k * k)).astype(np.float32)
    w = rng.standard_normal((ci * k * k, co)).astype(np.float32)
    return a, w


# -- measurements --------------------------------------------------------------------------------


def alternately(fn, other, repeat: int) -> tuple[Times, Times]:
    """``fn`` and ``other`` timed call after call, so that both see the same state of a shared
    machine (a slow period slows both, and their ratio holds)."""
    first, second = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        middle = time.perf_counter()
        other()
        first.append(middle - start)
        second.append(time.perf_counter() - middle)
    return Times(first), Times(second)


def measure_layer(make, layer, repeat, rng, reference_product=None):
    """Build, cold call, warm calls (alternating with ``reference_product`` when given, whose
    times come last), calls with new arrays, and the instruction count."""
    hw, ci, co, k, stride = layer
    dev = accel.ext_dev(0)
    start = time.perf_counter()
    module, args = make(layer)
    build = time.perf_counter() - start
    x = rng.integers(-128, 128, (1, ci, hw, hw), dtype=np.int8)
    w = rng.integers(-128, 128, (co, ci, k, k), dtype=np.int8)
    xp, wp = topi.pack_nchw(x, ENV), topi.pack_kernel(w, ENV)
    out_shape = tuple(int(d) for d in args[-1].shape)

    def arrays():
        return (
            accel.nd.array(xp, dev),
            accel.nd.array(wp, dev),
            accel.nd.empty(out_shape, "int8", dev),
        )

    fixed = arrays()
    start = time.perf_counter()
    module(*fixed)
    cold = time.perf_counter() - start
    bias = np.zeros(co, np.int32)
    np.testing.assert_array_equal(
        topi.unpack_nchw(fixed[2].numpy()), reference(x, w, bias, stride, k // 2)
    )
    if reference_product is None:
        warm, blas = timed(lambda: module(*fixed), repeat), None
    else:
        warm, blas = alternately(lambda: module(*fixed), reference_product, repeat)
    fresh = timed(module, repeat, setup=arrays)
    instructions = module.metrics["instructions"]["total"]
    return build, cold, warm, fresh, instructions, blas


def layer_table(repeat: int, count: int, threads: int) -> None:
    rng = np.random.default_rng(0)
    print(
        f"{'layer':<22}{'schedule':<10}{'insns':>7}{'build ms':>9}{'cold ms':>9}"
        f"{'warm ms [min-max]':>22}"
        f"{'new arrays ms':>22}{'BLAS ms':>9}{'warm/BLAS':>10}{'cold/warm':>10}"
    )
    for (layer, _), _k in zip(NETWORK, range(count)):
        a, wt = blas_operands(layer, rng)
        hw, ci, co, k, stride = layer
        name = f"{hw}x{hw} {ci}->{co} {k}x{k}/{stride}"
        for label, make in SCHEDULES:
            with threadpool_limits(threads, user_api="blas"):  # the simulator sets its own
                build, cold, warm, fresh, insns, blas = measure_layer(
                    make, layer, max(repeat, 30), rng, lambda a=a, wt=wt: a @ wt
                )
            print(
                f"{name:<22}{label:<10}{insns:>7}{ms(build):>9}{ms(cold):>9}{str(warm):>22}"
                f"{str(fresh):>22}"
                f"{ms(blas.median):>9}{warm.median / blas.median:>10.2f}"
                f"{cold / warm.median:>10.2f}"
            )


def network(repeat: int, threads: int) -> None:
    """The convolutions of ResNet-18 (stages 2-5), each layer as often as the network has it."""
    rng = np.random.default_rng(1)
    dev = accel.ext_dev(0)
    calls, blas_ops, macs = [], [], 0
    for layer, times in NETWORK:
        module, args = topi_module(layer)
        hw, ci, co, k, stride = layer
        x = accel.nd.array(
            rng.integers(-128, 128, [int(d) for d in args[0].shape], dtype=np.int8), dev
        )
        w = accel.nd.array(
            rng.integers(-128, 128, [int(d) for d in args[1].shape], dtype=np.int8), dev
        )
        y = accel.nd.empty([int(d) for d in args[2].shape], "int8", dev)
        module(x, w, y)  # cold call out of the way
        calls.extend([(module, x, w, y)] * times)
        a, wt = blas_operands(layer, rng)
        blas_ops.extend([(a, wt)] * times)
        out = (hw + 2 * (k // 2) - k) // stride + 1
        macs += times * out * out * ci * k * k * co

    def run_all():
        for module, x, w, y in calls:
            module(x, w, y)

    def blas_all():
        for a, wt in blas_ops:
            a @ wt

    sim = timed(run_all, repeat)
    with threadpool_limits(threads, user_api="blas"):
        blas = timed(blas_all, repeat)
    print(
        f"ResNet-18 convolutions ({len(calls)} calls, {macs / 1e9:.2f} G MAC): simulator {sim} ms,"
        f" BLAS {blas} ms, ratio {sim.median / blas.median:.2f}"
    )


def numpy_floor(repeat: int, threads: int) -> None:
    """The 1x1 stride-2 layers written directly in numpy on the packed layouts, with nothing but
    their arithmetic: a strided slice of the input converted to float32, one BLAS product with
    weights converted once, the int32 shift and clip, and the narrowing copy into the packed
    output. What any simulator made of numpy operations pays at least for these layers."""
    rng = np.random.default_rng(4)
    for layer, _ in NETWORK:
        hw, ci, co, k, stride = layer
        if k != 1:
            continue
        out = (hw - 1) // stride + 1
        x = rng.integers(-128, 128, (1, ci, hw, hw), dtype=np.int8)
        w = rng.integers(-128, 128, (co, ci, 1, 1), dtype=np.int8)
        data, kernel = topi.pack_nchw(x, ENV), topi.pack_kernel(w, ENV)
        weights = kernel[:, :, 0, 0].transpose(1, 3, 0, 2).reshape(ci, co).astype(np.float32)
        result = np.empty((1, co // B, out, out, 1, B), np.int8)

        def layer_in_numpy(data=data, weights=weights, result=result, out=out, stride=stride):
            lhs = data[0, :, ::stride, ::stride, 0, :].transpose(1, 2, 0, 3)
            sums = lhs.reshape(out * out, -1).astype(np.float32) @ weights
            acc = sums.astype(np.int32)
            np.right_shift(acc, 8, out=acc)
            np.clip(acc, 0, 127, out=acc)
            result[0, :, :, :, 0, :] = acc.reshape(out, out, -1, B).transpose(2, 0, 1, 3)

        with threadpool_limits(threads, user_api="blas"):
            layer_in_numpy()
            expected = reference(x, w, np.zeros(co, np.int32), stride, 0)
            np.testing.assert_array_equal(topi.unpack_nchw(result), expected)
            floor = timed(layer_in_numpy, max(repeat, 50))
            a, wt = blas_operands(layer, rng)
            blas = timed(lambda a=a, wt=wt: a @ wt, max(repeat, 50))
        print(
            f"numpy floor {hw}x{hw} {ci}->{co} 1x1/{stride}: {floor} ms, BLAS {blas} ms, "
            f"ratio {floor.median / blas.median:.2f}"
        )


def call_floor(repeat: int) -> None:
    """What a call costs with almost no arithmetic: a 1x1 convolution of 2x2 pixels, 16 to 16
    channels (one GEMM tile row per pixel), through the same public API as the layers."""
    layer = (2, B, B, 1, 1)
    rng = np.random.default_rng(3)
    _, cold, warm, fresh, insns, _ = measure_layer(topi_module, layer, max(repeat, 50), rng)
    print(
        f"call floor (2x2 {B}->{B} 1x1 convolution, {insns} instructions): cold {ms(cold)} ms, "
        f"warm {warm} ms, new arrays {fresh} ms"
    )


def store_stream(repeat: int) -> None:
    """10,000 single-tile STOREs (the shape of a store pragma on the block axis)."""
    device = accel.sim.get_device()
    memory, sim = device.memory, device.simulator
    n = 10_000
    out = memory.alloc(n * memory.elem_sizes[MemType.OUT])
    base = memory.to_elem_index(out, MemType.OUT)
    insns = [
        MemInsn(
            opcode=Opcode.STORE,
            memory_type=MemType.OUT,
            sram_base=i % ENV.ACC_BUFF_DEPTH,
            dram_base=base + i,
            y_size=1,
            x_size=1,
            x_stride=1,
        )
        for i in range(n)
    ] + [FinishInsn()]
    words = encode_stream(insns, ENV)
    addr = memory.alloc(words.nbytes, align=16)
    memory.write(addr, words)
    start = time.perf_counter()
    sim.run(addr, len(insns))
    cold = time.perf_counter() - start
    warm = timed(lambda: sim.run(addr, len(insns)), repeat)
    print(
        f"{n:,}-STORE stream: cold {ms(cold)} ms ({len(insns) / cold / 1e6:.2f} M insn/s), "
        f"warm {warm} ms ({len(insns) / warm.median / 1e6:.2f} M insn/s)"
    )
    memory.free(addr)
    memory.free(out)


def host_matmul(repeat: int, threads: int) -> None:
    """The README's tiled host matmul against numpy's int32 product."""
    A = te.placeholder((1024, 256), "int8", "A")
    Bt = te.placeholder((512, 256), "int8", "B")
    k = te.reduce_axis((0, 256), "k")
    C = te.compute(
        (1024, 512),
        lambda i, j: te.sum(A[i, k].astype("int32") * Bt[j, k].astype("int32"), axis=k),
        "C",
    )
    s = te.create_schedule(C.op)
    AA = s.cache_read(A, "local", [C])
    io, jo, ii, ji = s[C].tile(*C.op.axis, 16, 16)
    ko, ki = s[C].split(k, factor=16)
    s[C].reorder(io, jo, ko, ii, ji, ki)
    s[AA].compute_at(s[C], ko)
    f = accel.build(s, [A, Bt, C], name="matmul")
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 128, (1024, 256), dtype=np.int8)
    b = rng.integers(-128, 128, (512, 256), dtype=np.int8)
    c = np.zeros((1024, 512), np.int32)
    start = time.perf_counter()
    f(a, b, c)
    first = time.perf_counter() - start
    np.testing.assert_array_equal(c, a.astype(np.int32) @ b.astype(np.int32).T)
    host = timed(lambda: f(a, b, c), max(1, min(repeat, 3 if first > 1 else repeat)))
    with threadpool_limits(threads, user_api="blas"):
        ref = timed(lambda: a.astype(np.int32) @ b.astype(np.int32).T, repeat)
    print(
        f"README tiled host matmul 1024x512x256: {host} ms, numpy int32 product {ref} ms, "
        f"ratio {host.median / ref.median:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for both sides")
    parser.add_argument("--layers", type=int, default=len(NETWORK))
    args = parser.parse_args()
    accel.sim.get_device().simulator.blas_threads = args.threads
    blas = [
        (i["internal_api"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"
    ]
    print(
        f"configuration {ENV.name}; BLAS {blas}, limited to {args.threads} thread(s) for both sides"
    )
    layer_table(args.repeat, args.layers, args.threads)
    network(max(3, args.repeat // 2), args.threads)
    call_floor(args.repeat)
    numpy_floor(args.repeat, args.threads)
    store_stream(args.repeat)
    host_matmul(args.repeat, args.threads)


if __name__ == "__main__":
    main()
