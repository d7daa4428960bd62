import textwrap

from accel.cli import main


def test_accel_lower_prints_the_program(tmp_path, capsys):
    script = tmp_path / "sched.py"
    script.write_text(
        textwrap.dedent("""
        from accel import te

        def vadd():
            A = te.placeholder((4, 16), "int32", "A")
            B = te.placeholder((4, 16), "int32", "B")
            C = te.compute((4, 16), lambda i, j: A[i, j] + B[i, j], "C")
            return te.create_schedule(C.op), [A, B, C]
    """)
    )
    assert main(["lower", f"{script}:vadd", "--simple"]) == 0
    out = capsys.readouterr().out
    assert "C[((i*16) + j)] = (A[((i*16) + j)] + B[((i*16) + j)])" in out
    assert main(["lower", f"{script}:vadd", "--dump-after", "schedule_ops"]) == 0
    assert "primfn vadd(" in capsys.readouterr().out


def test_accel_passes_and_env(capsys):
    assert main(["passes"]) == 0
    assert "schedule_ops" in capsys.readouterr().out
    assert main(["env"]) == 0
    assert "sim_1x16_i8w8a32_15_15_18_17" in capsys.readouterr().out


def test_unknown_pass_is_an_error(tmp_path, capsys):
    script = tmp_path / "s.py"
    script.write_text(
        "from accel import te\ndef f():\n    A = te.placeholder((2,), 'int32', 'A')\n"
        "    B = te.compute((2,), lambda i: A[i], 'B')\n "
        "   return te.create_schedule(B.op), [A, B]\n"
    )
    assert main(["lower", f"{script}:f", "--dump-after", "nope"]) == 2
    assert "unknown pass 'nope'" in capsys.readouterr().err


def test_accel_lower_verify(tmp_path, capsys):
    script = tmp_path / "s.py"
    script.write_text(
        "from accel import te\ndef f():\n    A = te.placeholder((2,), 'int32', 'A')\n"
        "    B = te.compute((2,), lambda i: A[i] + 1, 'B')\n "
        "   return te.create_schedule(B.op), [A, B]\n"
    )
    assert main(["lower", f"{script}:f", "--verify", "--simple"]) == 0
    assert "B[i] = (A[i] + 1)" in capsys.readouterr().out
