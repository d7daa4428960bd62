"""The ``models`` package lives at the repository root, outside the installed ``accel``
package: put the root on the import path for these tests."""

import pathlib
import sys

ROOT = str(pathlib.Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
