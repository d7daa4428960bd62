"""The declared runtime calls (accel.lower.coproc) match the methods generated code calls."""

import inspect

import pytest

from accel.errors import LoweringError
from accel.lower import coproc
from accel.runtime.command_queue import CommandQueue
from accel.runtime.uop_kernel import KernelRecorder


@pytest.mark.parametrize("kind", coproc.RUNTIME_CALLS.values(), ids=lambda k: k.name)
def test_fields_are_the_method_parameters_in_order(kind):
    receiver = KernelRecorder if kind.in_kernel else CommandQueue
    method = getattr(receiver, kind.method)
    params = list(inspect.signature(method).parameters)[1:]  # without self
    assert tuple(params) == kind.fields


def test_calls_are_built_and_read_by_name():
    stmt = coproc.DEP_PUSH(from_stage=1, to_stage=2)
    assert coproc.DEP_PUSH.matches(stmt) and not coproc.DEP_POP.matches(stmt)
    assert coproc.DEP_PUSH.get(stmt.value, "to_stage").value == 2
    assert str(stmt) == "coproc_dep_push(1, 2)"  # printed in the classic positional form
    with pytest.raises(LoweringError, match=r"missing \['to_stage'\], unknown \['to'\]"):
        coproc.DEP_PUSH(from_stage=1, to=2)
