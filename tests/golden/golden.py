"""Compare text with a golden file under ``tests/golden/files``, or rewrite it on request.

Golden files pin whole printed programs and instruction streams, so a refactor that changes
either shows up as a reviewed diff. Regenerate them only on purpose: ``pytest tests/golden
--update-golden``, then read ``git diff tests/golden/files`` before committing.
"""

from __future__ import annotations

import difflib
import pathlib

import pytest

FILES = pathlib.Path(__file__).parent / "files"


def check_golden(request: pytest.FixtureRequest, name: str, text: str) -> None:
    """Fail with a diff when ``text`` differs from ``files/<name>.txt``."""
    path = FILES / f"{name}.txt"
    text = text.rstrip("\n") + "\n"
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"no golden file {path.name}; run pytest with --update-golden to write it")
    expected = path.read_text()
    if text != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), text.splitlines(), "golden", "now", lineterm="", n=2
        )
        shown = "\n".join(list(diff)[:80])
        pytest.fail(f"{path.name} differs from the golden file (first lines of the diff):\n{shown}")
