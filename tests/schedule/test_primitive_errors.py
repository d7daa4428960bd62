"""Every schedule primitive refuses misuse with an error naming the stage and the axis."""

import pytest

import accel
from accel import te
from accel.errors import ScheduleError, TensorizeError


def matmul(m=8, n=8, k=16):
    A = te.placeholder((m, k), "int8", "A")
    B = te.placeholder((n, k), "int8", "B")
    r = te.reduce_axis((0, k), "r")
    C = te.compute(
        (m, n), lambda i, j: te.sum(A[i, r].astype("int32") * B[j, r].astype("int32"), axis=r), "C"
    )
    return A, B, C, r


def test_axis_from_another_stage():
    A, B, C, r = matmul()
    D = te.compute(C.shape, lambda i, j: C[i, j] + 1, "D")
    s = te.create_schedule(D.op)
    with pytest.raises(ScheduleError, match=r"split on stage C: axis i does not belong"):
        s[C].split(D.op.axis[0], factor=2)


def test_splitting_an_axis_twice():
    A, B, C, r = matmul()
    s = te.create_schedule(C.op)
    s[C].split(C.op.axis[0], factor=2)
    with pytest.raises(ScheduleError, match="split on stage C: axis i was already split or fused"):
        s[C].split(C.op.axis[0], factor=2)


def test_splitting_a_fused_axis_input():
    A, B, C, r = matmul()
    s = te.create_schedule(C.op)
    s[C].fuse(C.op.axis[0], C.op.axis[1])
    with pytest.raises(ScheduleError, match="axis j was already split or fused"):
        s[C].split(C.op.axis[1], factor=2)


@pytest.mark.parametrize("factor", [0, -3, 2.5])
def test_split_by_a_bad_factor(factor):
    A, B, C, r = matmul()
    s = te.create_schedule(C.op)
    with pytest.raises(
        ScheduleError, match="split of i in stage C: factor must be a positive integer"
    ):
        s[C].split(C.op.axis[0], factor=factor)


def test_split_needs_factor_or_nparts():
    A, B, C, r = matmul()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match="exactly one of factor= and nparts="):
        s[C].split(C.op.axis[0])


def test_reorder_with_a_repeated_axis():
    A, B, C, r = matmul()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    with pytest.raises(ScheduleError, match="reorder in stage C: axis i is repeated"):
        s[C].reorder(i, j, i)


def test_fuse_needs_adjacent_axes_of_the_same_kind():
    A, B, C, r = matmul()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    with pytest.raises(ScheduleError, match="must be adjacent"):
        s[C].fuse(i, r)
    with pytest.raises(ScheduleError, match="cannot fuse data_par axis j with reduce axis r"):
        s[C].fuse(j, r)


def test_compute_at_a_stage_that_does_not_consume():
    A, B, C, r = matmul()
    A2 = te.compute(A.shape, lambda i, k: A[i, k], "A2")
    D = te.compute(C.shape, lambda i, j: C[i, j] + A2[i, 0].astype("int32"), "D")
    s = te.create_schedule(D.op)
    with pytest.raises(ScheduleError, match="compute_at of stage A2: stage C does not use A2"):
        s[A2].compute_at(s[C], C.op.axis[0])


def test_compute_at_an_axis_of_the_wrong_stage():
    A, B, C, r = matmul()
    D = te.compute(C.shape, lambda i, j: C[i, j] + 1, "D")
    s = te.create_schedule(D.op)
    with pytest.raises(ScheduleError, match="axis i does not belong to this stage"):
        s[C].compute_at(s[D], C.op.axis[0])


def test_unknown_scope():
    A, B, C, r = matmul()
    A2 = te.compute(A.shape, lambda i, k: A[i, k], "A2")
    s = te.create_schedule(te.compute(A.shape, lambda i, k: A2[i, k], "A3").op)
    with pytest.raises(ScheduleError, match="set_scope of stage A2: unknown scope 'local.bogus'"):
        s[A2].set_scope("local.bogus")


def test_placeholder_has_no_stage():
    A, B, C, r = matmul()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match="A is a placeholder"):
        s[A]


def test_inline_reduction_or_output():
    A, B, C, r = matmul()
    D = te.compute(C.shape, lambda i, j: C[i, j] + 1, "D")
    s = te.create_schedule(D.op)
    with pytest.raises(ScheduleError, match="a reduction cannot be inlined"):
        s[C].compute_inline()
    with pytest.raises(ScheduleError, match="an output cannot be inlined"):
        s[D].compute_inline()


def test_bind_and_loop_kinds():
    A, B, C, r = matmul()
    s = te.create_schedule(C.op)
    i, j = C.op.axis
    with pytest.raises(ScheduleError, match="only virtual threads"):
        s[C].bind(i, te.thread_axis("threadIdx.x"))
    with pytest.raises(ScheduleError, match="cannot bind a reduction axis"):
        s[C].bind(r, te.thread_axis("cthread"))
    s[C].unroll(j)
    with pytest.raises(ScheduleError, match="already unrolled"):
        s[C].vectorize(j)


def test_cache_write_after_transforms_is_refused():
    A, B, C, r = matmul()
    s = te.create_schedule(C.op)
    s[C].split(C.op.axis[0], factor=2)
    with pytest.raises(ScheduleError, match="before any other primitive"):
        s.cache_write(C, "local")


def gemv_intrin(n, k, body="mul"):
    from accel.lower import ir

    a = te.placeholder((k,), "int8", "a")
    b = te.placeholder((n, k), "int8", "b")
    rr = te.reduce_axis((0, k), "rr")
    if body == "mul":
        c = te.compute(
            (n,), lambda i: te.sum(a[rr].astype("int32") * b[i, rr].astype("int32"), axis=rr), "c"
        )
    else:
        c = te.compute(
            (n,), lambda i: te.sum(a[rr].astype("int32") + b[i, rr].astype("int32"), axis=rr), "c"
        )

    def fcompute(ins, outs):
        A_, B_ = ins
        C_ = outs[0]
        i, q = te.var("ii"), te.var("q")
        reset = ir.loop(i, n, C_.vstore([i], 0))
        update = ir.loop(
            i,
            n,
            ir.loop(
                q,
                k,
                C_.vstore(
                    [i], C_.vload(i) + A_.vload(q).astype("int32") * B_.vload(i, q).astype("int32")
                ),
            ),
        )
        return None, reset, update

    return te.decl_tensor_intrin(c.op, fcompute, "gemv")


def tensorized(intrin, reorder=True):
    A, B, C, r = matmul(4, 16, 32)
    s = te.create_schedule(C.op)
    jo, ji = s[C].split(C.op.axis[1], factor=8)
    ko, ki = s[C].split(r, factor=8)
    if reorder:
        s[C].reorder(C.op.axis[0], jo, ko, ji, ki)
    s[C].tensorize(ji, intrin)
    return s, [A, B, C]


def test_tensorize_body_mismatch():
    s, args = tensorized(gemv_intrin(8, 8, body="add"))
    with pytest.raises(
        TensorizeError,
        match=r"tensorize of stage C at axis j.inner with gemv: the body does not match",
    ):
        accel.lower(s, args)


def test_tensorize_extent_mismatch():
    s, args = tensorized(gemv_intrin(8, 4))
    with pytest.raises(
        TensorizeError, match="loop r.inner has extent 8 but the intrinsic's axis rr has extent 4"
    ):
        accel.lower(s, args)


def test_tensorize_with_extra_loops_inside():
    s, args = tensorized(gemv_intrin(8, 8), reorder=False)
    with pytest.raises(TensorizeError, match="tensorize of stage C at axis j.inner"):
        accel.lower(s, args)


def test_tensorize_needs_an_intrinsic():
    A, B, C, r = matmul()
    s = te.create_schedule(C.op)
    with pytest.raises(ScheduleError, match="expected a tensor intrinsic"):
        s[C].tensorize(C.op.axis[0], "gemm")


def test_splitting_the_loop_a_stage_is_computed_at():
    A, B, C, r = matmul()
    D = te.compute(C.shape, lambda i, j: C[i, j] + 1, "D")
    s = te.create_schedule(D.op)
    s[C].compute_at(s[D], D.op.axis[0])
    s[D].split(D.op.axis[0], factor=2)
    with pytest.raises(ScheduleError, match=r"stage C is computed at D.i, which was split"):
        accel.lower(s, [A, B, D])


def test_messages_name_the_stage_that_owns_a_foreign_axis():
    from accel import te
    from accel.errors import ScheduleError

    A = te.placeholder((4,), "int32", "A")
    B = te.compute((4,), lambda i: A[i] + 1, "B")
    C = te.compute((4,), lambda i: B[i] * 2, "C")
    s = te.create_schedule(C.op)
    with pytest.raises(
        ScheduleError, match="axis i does not belong to this stage; it is an axis of stage B"
    ):
        s[C].split(s[B].op.axis[0], 2)


def test_a_compute_returning_several_values_is_refused():
    from accel import te
    from accel.errors import ExprError

    A = te.placeholder((4,), "int32", "A")
    with pytest.raises(ExprError, match="returned 2 values; a compute defines one tensor"):
        te.compute((4,), lambda i: (A[i], A[i]), "T")


def test_an_argument_listed_twice_is_refused():
    import accel
    from accel import te
    from accel.errors import LoweringError

    A = te.placeholder((4,), "int32", "A")
    B = te.compute((4,), lambda i: A[i] + 1, "B")
    with pytest.raises(LoweringError, match="tensor A is listed twice"):
        accel.build(te.create_schedule(B.op), [A, A, B])
