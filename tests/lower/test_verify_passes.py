"""The IR verifier after every pass of the three tutorial schedules, and what it catches in the
accelerator's vocabulary (runtime calls and on-chip addresses)."""

import pytest
from pass_helpers import ENV, TUTORIAL_SCHEDULES, lowered

from accel.errors import LoweringError
from accel.lower import coproc, ir
from accel.lower.pipeline import lower, pass_names
from accel.lower.verify import verify
from accel.te.expr import Const, Var


def alu_push(dst):
    return coproc.UOP_PUSH(
        mode=coproc.ALU_MODE, reset=0, dst=dst, src=0, wgt=0, opcode=0, use_imm=0, imm=0
    )


@pytest.mark.parametrize("name", sorted(TUTORIAL_SCHEDULES))
def test_every_pass_output_verifies(name):
    s, arguments = TUTORIAL_SCHEDULES[name]()
    for pass_name in pass_names():
        f = lower(s, arguments, dump_after=pass_name)
        verify(f.body, f.params, ENV.scopes, where=f"{name} after {pass_name}")


def test_catches_an_on_chip_address_of_a_buffer_never_allocated():
    stray = ir.Buffer("stray", (16,), "int32", ENV.acc_scope)
    push = alu_push(coproc.SramAddr(stray, Const(0)))
    with pytest.raises(LoweringError, match="buffer stray is accessed outside its allocation"):
        verify(push, [], ENV.scopes)
    verify(ir.Allocate(stray, push), [], ENV.scopes)


def test_catches_an_on_chip_address_outside_the_on_chip_scopes():
    glob = ir.Buffer("G", (16,), "int32")
    push = alu_push(coproc.SramAddr(glob, Const(0)))
    with pytest.raises(LoweringError, match="on-chip address of G, which is in scope 'global'"):
        verify(push, [glob], ENV.scopes)


def test_catches_a_call_on_a_buffer_that_is_not_a_parameter():
    # The matmul program after inject_dma, verified without its parameters: the first load's
    # global buffer A is then unknown.
    s, arguments = TUTORIAL_SCHEDULES["matrix_multiply"]()
    body = lowered(s, arguments, "inject_dma")
    with pytest.raises(LoweringError, match="buffer A is accessed outside its allocation"):
        verify(body, [], ENV.scopes)


def _unbinding_pass(body, env):
    """A broken pass: it wraps the program in a store indexed by a variable nothing binds."""
    stray = ir.Buffer("stray_out", (4,), "int32")
    return ir.Allocate(stray, ir.seq(ir.Store(stray, Var("unbound"), Const(0)), body))


def test_lower_with_verify_names_the_pass_that_broke_an_invariant(monkeypatch):
    from accel.lower import pipeline

    passes = [*pipeline.PASSES[:2], ("broken", _unbinding_pass), *pipeline.PASSES[2:]]
    monkeypatch.setattr(pipeline, "PASSES", passes)
    s, arguments = TUTORIAL_SCHEDULES["vta_get_started"]()
    with pytest.raises(LoweringError, match="after broken.*unbound"):
        lower(s, arguments, verify=True)
    s, arguments = TUTORIAL_SCHEDULES["vta_get_started"]()
    lower(s, arguments, verify=False)  # without verification the broken program goes through
