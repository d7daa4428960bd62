"""Every tutorial runs to the end (each checks its own results against numpy)."""

import pathlib
import runpy

import pytest

TUTORIALS = sorted((pathlib.Path(__file__).parents[2] / "tutorials").glob("*.py"))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, capsys):
    runpy.run_path(str(path), run_name="__main__")
    assert "matches numpy" in capsys.readouterr().out
