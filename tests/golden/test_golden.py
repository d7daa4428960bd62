"""Golden files: the program after every pass, the instruction stream, the host code and the
tutorials' printed output, pinned so that refactors show every change they make.

Regenerate on purpose with ``pytest tests/golden --update-golden`` and review the diff.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import runpy

import numpy as np
import pytest
from cases import ACCEL_CASES, HOST_CASES
from golden import check_golden

import accel
from accel.hw.disasm import disassemble
from accel.hw.isa import encode_stream
from accel.hw.memory import DeviceMemory
from accel.lower.pipeline import pass_names
from accel.runtime.command_queue import CommandQueue
from accel.sim import Device, Simulator

ENV = accel.get_env()
TUTORIALS = sorted((pathlib.Path(__file__).parents[2] / "tutorials").glob("*.py"))


def passes_text(case) -> str:
    sections = []
    for name in pass_names():
        s, args = case()
        sections.append(f"### after {name}\n{accel.lower(s, args, name='main', dump_after=name)}")
    return "\n\n".join(sections)


def stream_text(module) -> str:
    """The disassembled stream of one call on a fresh device (so DRAM addresses are fixed)."""
    memory = DeviceMemory(ENV)
    device = Device(ENV, memory, Simulator(ENV, memory, trace=False))
    queue = CommandQueue(device)
    addrs = [memory.alloc(max(b.size * np.dtype(b.dtype).itemsize, 1)) for b in module.params]
    module._run(queue, addrs)
    assert queue.counters["runs"] == 1, "a golden stream must fit one run"
    return disassemble(encode_stream(queue.last_stream, ENV), ENV)


@pytest.mark.parametrize("name", sorted(ACCEL_CASES))
def test_accelerator_program(request, name):
    check_golden(request, f"{name}.passes", passes_text(ACCEL_CASES[name]))
    s, args = ACCEL_CASES[name]()
    check_golden(request, f"{name}.stream", stream_text(accel.build(s, args, name=name)))


@pytest.mark.parametrize("name", sorted(HOST_CASES))
def test_host_program(request, name):
    check_golden(request, f"{name}.passes", passes_text(HOST_CASES[name]))
    s, args = HOST_CASES[name]()
    check_golden(request, f"{name}.source", accel.build(s, args, name=name).source)


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_output(request, path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(path), run_name="__main__")
    check_golden(request, f"tutorial_{path.stem}.stdout", out.getvalue())
