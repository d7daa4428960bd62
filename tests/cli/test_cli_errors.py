"""The command line never shows a traceback: every mistake is one line and exit code 2."""

import zipfile

from accel.cli import main


def error_of(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_missing_file_and_directory(tmp_path, capsys):
    assert "is not a file" in error_of(capsys, "lower", f"{tmp_path / 'nope.py'}:f")
    assert "is not a file" in error_of(capsys, "lower", f"{tmp_path}:f")
    assert "No such file" in error_of(capsys, "disasm", str(tmp_path / "nope.bin"))
    assert "accel replay: error" in error_of(capsys, "replay", str(tmp_path))


def test_a_schedule_function_returning_none(tmp_path, capsys):
    script = tmp_path / "s.py"
    script.write_text("def f():\n    return None\n")
    assert "must return (schedule, [tensors])" in error_of(capsys, "lower", f"{script}:f")
    assert "defines no function 'g'" in error_of(capsys, "lower", f"{script}:g")


def test_truncated_and_non_zip_replays(tmp_path, capsys):
    good = tmp_path / "good.npz"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("meta.npy", b"x" * 100)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:40])
    assert "not a readable replay archive" in error_of(capsys, "disasm", str(truncated))
    assert "not a readable replay archive" in error_of(capsys, "replay", str(truncated))
    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(b"\x80\x04K\x01.")
    assert "not a readable replay archive" in error_of(capsys, "replay", str(pickled))


def test_bad_configuration_from_the_environment(tmp_path, capsys, monkeypatch):
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)))
    monkeypatch.setenv("ACCEL_CONFIG", str(binary))
    assert "not UTF-8 text" in error_of(capsys, "env")
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 30_000 + "]" * 30_000)  # deep, yet under the size limit
    monkeypatch.setenv("ACCEL_CONFIG", str(nested))
    assert "nested too deeply" in error_of(capsys, "env")
    monkeypatch.setenv("ACCEL_CONFIG", str(tmp_path / "missing.json"))
    assert "does not exist" in error_of(capsys, "env")


def test_unwritable_trace_path(tmp_path, capsys):
    from sim_helpers import write_replay

    path = write_replay(tmp_path / "r.npz")
    out = tmp_path / "no" / "such" / "dir" / "trace.json"
    message = error_of(capsys, "replay", str(path), "--trace", str(out))
    assert "trace.json" in message and "No such file" in message
