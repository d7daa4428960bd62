"""Stream plans (accel/sim/plan.py) give exactly what instruction-by-instruction runs give,
and are not used where they would not: stores feeding loads of the same run, loads that shared
a slot but no longer read the same DRAM, changed micro-ops."""

import numpy as np
import pytest
from sim_streams import Bench, alu, finish, gemm, load, rand_int8, rand_int32, store

from accel.errors import DeadlockError
from accel.hw.isa import AluOp, MemType, Uop

N = 8  # tiles of each kind


def state(bench: Bench) -> dict:
    srams = bench.sim.srams
    return {
        "inp": srams.inp.copy(),
        "wgt": srams.wgt.copy(),
        "acc": srams.acc.copy(),
        "uop": srams.uop.copy(),
        "dram": bench.mem.data.copy(),
        "stats": dict(bench.sim.stats),
    }


def run_both(build):
    """Run the stream ``build(bench)`` returns on a planning and an interpreting simulator,
    twice each (the second run of the planning one comes from the cache); states must agree."""
    results = []
    for use_plans in (False, True):
        bench = Bench(trace=False)
        bench.sim.use_plans = use_plans
        rng = np.random.default_rng(0)
        insns = build(bench, rng)
        addr, count = bench.write_stream(insns)
        states = []
        for _ in range(2):
            bench.sim.run(addr, count)
            states.append(state(bench))
        results.append(states)
    for run, (want, got) in enumerate(zip(*results)):
        for key in want:
            if key == "stats":
                assert got[key] == want[key]
            else:
                np.testing.assert_array_equal(got[key], want[key], err_msg=f"run {run}: {key}")


def conv_like(bench, rng, out_base=None, second_input=None, uop_load=None):
    """Two input loads (the second possibly of the same DRAM, like a virtual thread's copy),
    weights, a reset and GEMMs, an ALU shift, and a store (``uop_load``: the LOAD UOP of an
    earlier stream, so that both streams load the same micro-op block)."""
    env = bench.env
    inp = bench.put(rand_int8(rng, (N, env.BATCH, env.BLOCK_IN)), MemType.INP)
    wgt = bench.put(rand_int8(rng, (N, env.BLOCK_OUT, env.BLOCK_IN)), MemType.WGT)
    out = bench.space(N * env.BATCH * env.BLOCK_OUT, MemType.OUT) if out_base is None else out_base
    uops = [Uop(d, d, d) for d in range(N)] + [Uop(d, N + d, d) for d in range(N)]
    shift = [Uop(d, d, 0) for d in range(N)]
    return [
        load(MemType.INP, 0, inp, 1, N, N),
        load(MemType.INP, N, inp if second_input is None else second_input, 1, N, N),
        load(MemType.WGT, 0, wgt, 1, N, N),
        bench.uops(uops + shift) if uop_load is None else uop_load,
        gemm(0, N, reset_reg=1),
        gemm(0, 2 * N),
        alu(AluOp.SHR, 2 * N, 3 * N, use_imm=True, imm=3),
        store(0, out, 1, N, N),
        finish(),
    ]


def test_a_conv_like_stream_with_shared_loads_equals_the_interpreter():
    run_both(conv_like)


def test_a_store_read_back_by_a_later_load_falls_back_to_the_interpreter():
    def build(bench, rng):
        env = bench.env
        acc = bench.put(rand_int32(rng, (N, env.BATCH, env.BLOCK_OUT), bound=100), MemType.ACC)
        out = bench.space(2 * N * env.BATCH * env.BLOCK_OUT, MemType.OUT)
        inp = bench.put(rand_int8(rng, (N, env.BATCH, env.BLOCK_IN)), MemType.INP)
        wgt = bench.put(rand_int8(rng, (N, env.BLOCK_OUT, env.BLOCK_IN)), MemType.WGT)
        # The output stored is loaded back as inputs (OUT and INP elements are both one int8
        # tile): hoisting that load above the store would read the old inputs.
        assert bench.mem.elem_sizes[MemType.OUT] == bench.mem.elem_sizes[MemType.INP]
        return [
            load(MemType.INP, 0, inp, 1, N, N),
            load(MemType.WGT, 0, wgt, 1, N, N),
            load(MemType.ACC, 0, acc, 1, N, N, push_next_dep=True),
            store(0, out, 1, N, N, pop_prev_dep=True, push_prev_dep=True),
            load(MemType.ACC, 0, acc, 1, N, N, pop_next_dep=True, push_prev_dep=True),
            load(MemType.INP, 0, out, 1, N, N, pop_next_dep=True, push_next_dep=True),
            bench.uops([Uop(d, d, d) for d in range(N)], pop_prev_dep=True),
            gemm(0, N),
            store(0, out + N, 1, N, N),
            finish(),
        ]

    run_both(build)


def test_loads_that_stop_reading_the_same_dram_are_not_merged():
    """The same words (data addresses aside) first with both input loads reading one block,
    then with the second reading another: the plan made for the first must not serve the
    second, which has different data in the two copies."""
    bench = Bench(trace=False)
    reference = Bench(trace=False)
    reference.sim.use_plans = False
    for b in (bench, reference):
        rng = np.random.default_rng(1)
        first = conv_like(b, rng)
        addr, count = b.write_stream(first)
        b.sim.run(addr, count)
        data = rand_int8(np.random.default_rng(2), (N, b.env.BATCH, b.env.BLOCK_IN))
        other = b.put(data, MemType.INP)
        second = conv_like(b, np.random.default_rng(1), second_input=other, uop_load=first[3])
        addr, count = b.write_stream(second)
        b.sim.run(addr, count)
    np.testing.assert_array_equal(bench.sim.srams.acc, reference.sim.srams.acc)
    np.testing.assert_array_equal(bench.mem.data, reference.mem.data)


def test_changed_micro_ops_give_another_plan():
    bench = Bench(trace=False)
    reference = Bench(trace=False)
    reference.sim.use_plans = False
    for b in (bench, reference):
        rng = np.random.default_rng(3)
        insns = conv_like(b, rng)
        addr, count = b.write_stream(insns)
        b.sim.run(addr, count)
        uop_load = insns[3]
        size = b.mem.elem_sizes[MemType.UOP]
        words = b.mem.view(uop_load.dram_base * size, N * size, np.uint32)
        words[:] = words[0]  # the same stream words, other micro-ops
        b.sim.run(addr, count)
    np.testing.assert_array_equal(bench.sim.srams.acc, reference.sim.srams.acc)
    np.testing.assert_array_equal(bench.mem.data, reference.mem.data)


def test_a_deadlocked_stream_changes_nothing():
    bench = Bench(trace=False)
    rng = np.random.default_rng(4)
    env = bench.env
    acc = bench.put(rand_int32(rng, (N, env.BATCH, env.BLOCK_OUT)), MemType.ACC)
    insns = [load(MemType.ACC, 0, acc, 1, N, N), gemm(0, 0, pop_next_dep=True), finish()]
    addr, count = bench.write_stream(insns)
    before = state(bench)
    with pytest.raises(DeadlockError):
        bench.sim.run(addr, count)
    after = state(bench)
    for key in ("inp", "wgt", "acc", "uop", "dram"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    assert bench.sim.queues.counts() == {label: 0 for label in bench.sim.queues.counts()}


def test_blas_threads_come_from_the_environment_and_do_not_change_results(monkeypatch):
    from accel.errors import ConfigError
    from accel.sim.blas import default_blas_threads

    monkeypatch.setenv("ACCEL_BLAS_THREADS", "2")
    assert Bench().sim.blas_threads == 2
    monkeypatch.setenv("ACCEL_BLAS_THREADS", "default")
    assert Bench().sim.blas_threads is None
    monkeypatch.setenv("ACCEL_BLAS_THREADS", "two")
    with pytest.raises(ConfigError, match="ACCEL_BLAS_THREADS must be a positive integer"):
        default_blas_threads()
    monkeypatch.delenv("ACCEL_BLAS_THREADS")
    assert Bench().sim.blas_threads == 1
    states = []
    for threads in (None, 1):
        bench = Bench(trace=False)
        bench.sim.blas_threads = threads
        addr, count = bench.write_stream(conv_like(bench, np.random.default_rng(9)))
        bench.sim.run(addr, count)
        states.append(bench.sim.srams.acc.copy())
    np.testing.assert_array_equal(states[0], states[1])


def test_a_plan_does_not_outlive_the_micro_ops_it_inherited():
    """A stream that runs micro-ops an earlier stream left in SRAM: after a third stream loads
    other micro-ops there, the plan made with the first ones must not be reused."""
    results = []
    for use_plans in (False, True):
        bench = Bench(trace=False)
        bench.sim.use_plans = use_plans
        env = bench.env
        rng = np.random.default_rng(0)
        inp = bench.put(rand_int8(rng, (N, env.BATCH, env.BLOCK_IN)), MemType.INP)
        wgt = bench.put(rand_int8(rng, (N, env.BLOCK_OUT, env.BLOCK_IN)), MemType.WGT)
        out = bench.space(N * env.BATCH * env.BLOCK_OUT, MemType.OUT)
        first = [bench.uops([Uop(d, d, d) for d in range(N)]), finish()]
        other = [bench.uops([Uop(d, d, (d + 1) % N) for d in range(N)]), finish()]
        compute = [
            load(MemType.INP, 0, inp, 1, N, N),
            load(MemType.WGT, 0, wgt, 1, N, N),
            gemm(0, N, reset_reg=1),
            gemm(0, N),
            store(0, out, 1, N, N),
            finish(),
        ]
        addr, count = bench.write_stream(compute)
        bench.run(first)
        bench.sim.run(addr, count)
        bench.run(other)
        bench.sim.run(addr, count)
        results.append(bench.get(out, MemType.OUT, (N, env.BATCH, env.BLOCK_OUT), np.int8))
    np.testing.assert_array_equal(results[1], results[0])


def tiled(bench, rng, tiles=4, clip=((AluOp.MAX, -20), (AluOp.MIN, 20))):
    """The shape of a compiled layer: per tile an input load, a reset, a GEMM, a bias added
    from accumulator rows loaded once, a shift and a clip, and a store; every tile reuses the
    same accumulator rows, as compiled programs do."""
    env = bench.env
    inp = bench.put(rand_int8(rng, (tiles * N, env.BATCH, env.BLOCK_IN)), MemType.INP)
    wgt = bench.put(rand_int8(rng, (N, env.BLOCK_OUT, env.BLOCK_IN)), MemType.WGT)
    bias = bench.put(rand_int32(rng, (N, env.BATCH, env.BLOCK_OUT), bound=1 << 12), MemType.ACC)
    out = bench.space(tiles * N * env.BATCH * env.BLOCK_OUT, MemType.OUT)
    uops = [Uop(d, d, (d + 1) % N) for d in range(N)]  # row d: input d, weight d + 1
    bias_add = [Uop(d, N + d, 0) for d in range(N)]  # row d += row N + d
    insns = [
        load(MemType.WGT, 0, wgt, 1, N, N),
        load(MemType.ACC, N, bias, 1, N, N),
        bench.uops(uops + bias_add),
    ]
    for t in range(tiles):
        insns += [
            load(MemType.INP, t * N, inp + t * N, 1, N, N),
            gemm(0, N, reset_reg=1),
            # the input rows of tile t: move the micro-ops' source index by t * N
            gemm(0, N, iter_out=1, iter_in=1, src_factor_in=0, src_factor_out=t * N),
            alu(AluOp.ADD, N, 2 * N),
            alu(AluOp.SHR, 0, N, use_imm=True, imm=5),
            *(alu(op, 0, N, use_imm=True, imm=imm) for op, imm in clip),
            store(0, out + t * N, 1, N, N),
        ]
    return [*insns, finish()]


def test_tiles_reusing_accumulators_run_as_one_product_and_one_operation_per_kind():
    run_both(tiled)
    bench = Bench(trace=False)
    bench.run(tiled(bench, np.random.default_rng(0)))
    (program,) = bench.sim.plans()
    kinds = [step.kind for step in program.steps]
    # Renamed accumulator rows: the four tiles' GEMMs are one step, each ALU operation one
    # step over every tile (MAX then MIN: one clip), and the four stores one scatter.
    assert kinds == ["gemm", "alu", "alu", "clip", "store"]


@pytest.mark.parametrize(
    "clip",
    [
        ((AluOp.MIN, 20), (AluOp.MAX, -20)),
        ((AluOp.MAX, 20), (AluOp.MIN, -20)),  # bounds crossed: every value is -20
        ((AluOp.MIN, -20), (AluOp.MAX, 20)),  # every value is 20
        ((AluOp.MAX, -20), (AluOp.MAX, 20)),
    ],
)
def test_clips_fused_or_not_equal_the_interpreter(clip):
    run_both(lambda bench, rng: tiled(bench, rng, clip=clip))


def test_gemm_accumulating_into_rows_loaded_from_dram_equals_the_interpreter():
    def build(bench, rng):
        env = bench.env
        acc = bench.put(rand_int32(rng, (N, env.BATCH, env.BLOCK_OUT)), MemType.ACC)
        inp = bench.put(rand_int8(rng, (N, env.BATCH, env.BLOCK_IN)), MemType.INP)
        wgt = bench.put(rand_int8(rng, (N, env.BLOCK_OUT, env.BLOCK_IN)), MemType.WGT)
        out = bench.space(N * env.BATCH * env.BLOCK_OUT, MemType.OUT)
        return [
            load(MemType.INP, 0, inp, 1, N, N),
            load(MemType.WGT, 0, wgt, 1, N, N),
            load(MemType.ACC, 0, acc, 1, N, N),  # wraps when the products are added
            bench.uops([Uop(d, d, d) for d in range(N)]),
            gemm(0, N),
            gemm(0, N),
            alu(AluOp.MUL, 0, N, use_imm=True, imm=3),
            store(0, out, 1, N, N),
            finish(),
        ]

    run_both(build)


def test_an_alu_instruction_reading_what_it_wrote_runs_in_order():
    def build(bench, rng):
        env = bench.env
        acc = bench.put(rand_int32(rng, (N, env.BATCH, env.BLOCK_OUT), bound=1000), MemType.ACC)
        out = bench.space(N * env.BATCH * env.BLOCK_OUT, MemType.OUT)
        chain = [Uop(d + 1, d, 0) for d in range(N - 1)]  # row d+1 += row d: a prefix sum
        return [
            load(MemType.ACC, 0, acc, 1, N, N),
            bench.uops(chain),
            alu(AluOp.ADD, 0, N - 1),
            alu(AluOp.ADD, 0, N - 1, iter_out=2),  # the same rows twice in one instruction
            store(0, out, 1, N, N),
            finish(),
        ]

    run_both(build)


def test_stores_writing_the_same_dram_keep_their_order():
    def build(bench, rng):
        env = bench.env
        acc = bench.put(rand_int32(rng, (2 * N, env.BATCH, env.BLOCK_OUT)), MemType.ACC)
        out = bench.space(N * env.BATCH * env.BLOCK_OUT, MemType.OUT)
        return [
            load(MemType.ACC, 0, acc, 1, 2 * N, 2 * N),
            store(0, out, 1, N, N),
            store(N, out, 1, N, N),  # the second store must win
            finish(),
        ]

    run_both(build)


def test_new_weights_in_dram_are_used_by_the_next_run():
    """The plan keeps the weights it converted for BLAS while they are unchanged; weights
    rewritten in DRAM between runs must be read again."""
    results = []
    for use_plans in (False, True):
        bench = Bench(trace=False)
        bench.sim.use_plans = use_plans
        rng = np.random.default_rng(5)
        insns = conv_like(bench, rng)
        addr, count = bench.write_stream(insns)
        wgt = insns[2]
        size = bench.mem.elem_sizes[MemType.WGT]
        weights = bench.mem.view(wgt.dram_base * size, N * size, np.int8)
        runs = []
        for k in range(3):
            if k == 2:
                weights[:] = rand_int8(np.random.default_rng(6), weights.shape)
            bench.sim.run(addr, count)
            runs.append(state(bench))
        results.append(runs)
    for k, (want, got) in enumerate(zip(*results)):
        for key in ("acc", "wgt", "dram"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"run {k}: {key}")
    # The third run really computed with other weights.
    assert not np.array_equal(results[1][1]["acc"], results[1][2]["acc"])


def test_blas_threads_are_limited_inside_and_restored_after_however_the_body_ends():
    from threadpoolctl import threadpool_info

    from accel.sim.blas import blas_threads

    def blas_counts():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_counts()
    assert before, "numpy's BLAS should be visible to threadpoolctl"
    with blas_threads(1):
        assert blas_counts() == [1] * len(before)
    assert blas_counts() == before
    with pytest.raises(KeyboardInterrupt), blas_threads(1):
        raise KeyboardInterrupt
    assert blas_counts() == before
    with blas_threads(None):
        assert blas_counts() == before


def test_stores_that_stop_forming_a_strided_view_still_land_where_they_address():
    """Two stores writing the halves of one output region form one strided view; when a later
    run of the same plan (new addresses) sends the second half elsewhere, the plan must scatter
    by index, and going back must use the view again."""
    half = N // 2
    results = []
    for use_plans in (False, True):
        bench = Bench(trace=False)
        bench.sim.use_plans = use_plans
        env = bench.env
        rng = np.random.default_rng(4)
        out = bench.space(N * env.BATCH * env.BLOCK_OUT, MemType.OUT)
        elsewhere = bench.space(N * env.BATCH * env.BLOCK_OUT, MemType.OUT) + 3

        body = conv_like(bench, rng, out_base=out)[:-2]  # up to the ALU shift

        def stream(second, body=body, out=out):
            return [
                *body,
                store(0, out, 1, half, half),
                store(half, second, 1, half, half),
                finish(),
            ]

        states = []
        for second in (out + half, elsewhere, out + half):
            bench.run(stream(second))
            states.append(state(bench))
        if use_plans:
            (plan,) = bench.sim.plans()
            (stores,) = [step.stores for step in plan.steps if step.kind == "store"]
            assert stores.strided is not None and stores.shift is not None
        results.append(states)
    for run, (want, got) in enumerate(zip(*results)):
        for key in want:
            if key != "stats":
                np.testing.assert_array_equal(got[key], want[key], err_msg=f"run {run}: {key}")


def test_sram_contents_a_plan_leaves_pending_are_what_the_next_interpreted_stream_reads():
    """A plan leaves its final SRAM rows as pending copies (``Srams.defer``). A stream run
    instruction by instruction afterwards -- here one whose decoded STORE was prepared before
    the plan ran, so it never asks the SRAMs for their arrays -- must read the plan's rows."""
    results = []
    for use_plans in (False, True):
        bench = Bench(trace=False)
        env = bench.env
        rng = np.random.default_rng(6)
        copy_out = bench.space(N * env.BATCH * env.BLOCK_OUT, MemType.OUT)
        read_back = bench.write_stream([store(0, copy_out, 1, N, N), finish()])
        conv = bench.write_stream(conv_like(bench, rng))
        bench.sim.use_plans = False
        bench.sim.run(*read_back)  # decoded and prepared now
        bench.sim.use_plans = use_plans
        for _ in range(2):
            bench.sim.run(*conv)
        bench.sim.use_plans = False
        bench.sim.run(*read_back)
        results.append(bench.get(copy_out, MemType.OUT, (N, env.BATCH, env.BLOCK_OUT), np.int8))
    assert results[0].any()
    np.testing.assert_array_equal(results[1], results[0])


@pytest.mark.parametrize("step", ["compute_products", "apply_alu"])
def test_a_run_interrupted_after_a_complete_one_leaves_that_runs_sram_contents(monkeypatch, step):
    """The copies a plan's run leaves pending stay valid until the next complete run of the
    same plan replaces them, and the accumulators they read are not the ones the next run
    writes. So a third run interrupted (Ctrl-C) at its products, or after them at its ALU
    step, leaves the SRAMs as the second run left them: as the interpreter's after two runs."""
    import accel.sim.plan as plan_module

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    results = []
    for use_plans in (False, True):
        bench = Bench(trace=False)
        env = bench.env
        conv = bench.write_stream(conv_like(bench, np.random.default_rng(7)))
        copy_out = bench.space(N * env.BATCH * env.BLOCK_OUT, MemType.OUT)
        read_back = bench.write_stream([store(0, copy_out, 1, N, N), finish()])
        bench.sim.use_plans = use_plans
        bench.sim.run(*conv)
        bench.sim.run(*conv)  # planned: its final rows are left pending
        if use_plans:
            with monkeypatch.context() as patch:
                patch.setattr(plan_module, step, interrupt)
                with pytest.raises(KeyboardInterrupt):
                    bench.sim.run(*conv)
            bench.sim.queues.set_counts({})
        bench.sim.use_plans = False
        bench.sim.run(*read_back)
        srams = bench.sim.srams
        results.append(
            (
                srams.acc[:N].copy(),
                srams.inp[: 2 * N].copy(),
                bench.get(copy_out, MemType.OUT, (N, env.BATCH, env.BLOCK_OUT), np.int8),
            )
        )
    for name, want, got in zip(("acc", "inp", "stored"), *results):
        assert want.any(), name
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_loads_and_stores_of_no_rows_move_nothing():
    """y_size 0 is legal (docs/isa.md): the instruction moves nothing, planned or not."""

    def build(bench, rng, store_rows):
        env = bench.env
        acc = bench.put(rand_int32(rng, (4, env.BATCH, env.BLOCK_OUT)), MemType.ACC)
        out = bench.space(4 * env.BATCH * env.BLOCK_OUT, MemType.OUT)
        return [
            load(MemType.ACC, 0, acc, 1 - store_rows, 4, 4),
            store(0, out, store_rows, 4, 4),
            finish(),
        ]

    run_both(lambda bench, rng: build(bench, rng, store_rows=1))  # the load moves nothing
    run_both(lambda bench, rng: build(bench, rng, store_rows=0))  # the store moves nothing


def test_a_store_whose_rows_overlap_lets_its_later_row_win():
    """A STORE with x_stride < x_size writes some DRAM elements twice; the later row wins. A
    plan that renumbers the accumulator rows (here a GEMM writing them in shuffled order)
    would scatter them in another order, so such a stream is interpreted."""
    n_inp, n_wgt = 8, 16
    rows = n_inp * n_wgt
    order = np.random.default_rng(100).permutation(rows)

    def build(bench, rng):
        env = bench.env
        inp = bench.put(rand_int8(rng, (n_inp, env.BATCH, env.BLOCK_IN)), MemType.INP)
        wgt = bench.put(rand_int8(rng, (n_wgt, env.BLOCK_OUT, env.BLOCK_IN)), MemType.WGT)
        out = bench.space(rows * env.BATCH * env.BLOCK_OUT, MemType.OUT)
        uops = [Uop(int(order[s * n_wgt + g]), s, g) for s in range(n_inp) for g in range(n_wgt)]
        return [
            load(MemType.INP, 0, inp, 1, n_inp, n_inp),
            load(MemType.WGT, 0, wgt, 1, n_wgt, n_wgt),
            bench.uops(uops),
            gemm(0, rows, reset_reg=1),
            gemm(0, rows),
            store(0, out, 2, rows // 2, 3),  # row 1 starts 3 elements after row 0
            finish(),
        ]

    run_both(build)
