"""Suite-wide settings: every lowering in the suite runs the IR verifier after each pass, and
``--update-golden`` rewrites the golden files instead of comparing."""

import os

from accel.lower.pipeline import VERIFY_ENV_VAR

os.environ[VERIFY_ENV_VAR] = "1"


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.txt from the current code (review the diff before committing)",
    )
