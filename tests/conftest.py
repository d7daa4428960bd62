"""Suite-wide options: ``--update-golden`` rewrites the golden files instead of comparing."""


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.txt from the current code (review the diff before committing)",
    )
