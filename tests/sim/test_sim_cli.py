"""The command line: ``accel disasm`` and ``accel replay``."""

import json

from sim_streams import Bench, finish, gemm, load

from accel.cli import main
from accel.hw.isa import MemType, Uop, encode_stream
from accel.sim.replay import capture


def test_disasm_of_raw_words(tmp_path, capsys):
    bench = Bench()
    stream = [load(MemType.INP, 0, 4, 1, 2, 2, push_next_dep=True), gemm(0, 1, 2, 3), finish()]
    path = tmp_path / "insns.bin"
    path.write_bytes(encode_stream(stream, bench.env).tobytes())
    assert main(["disasm", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["LOAD", "GEMM", "FINISH"]


def test_replay_and_disasm_of_a_replay_file(tmp_path, capsys):
    bench = Bench()
    stream = [bench.uops([Uop(0, 0, 0)]), gemm(0, 1, 4, 4, dst_factor_in=1), finish()]
    addr, count = bench.write_stream(stream)
    path = tmp_path / "run.npz"
    capture(bench.sim, addr, count).save(path)
    trace = tmp_path / "trace.json"
    assert main(["replay", str(path), "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "gemm_counter" in out and "total cycles" in out and "GEMM utilization" in out
    assert len([e for e in json.loads(trace.read_text())["traceEvents"] if e["ph"] == "X"]) == 3
    assert main(["disasm", str(path)]) == 0
    assert "LOAD   UOP" in capsys.readouterr().out


def test_errors_are_reported_not_raised(tmp_path, capsys):
    path = tmp_path / "odd.bin"
    path.write_bytes(b"123")
    assert main(["disasm", str(path)]) == 2
    assert "not a whole number of 16-byte instructions" in capsys.readouterr().err
