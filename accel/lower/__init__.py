"""Lowering: from a schedule to a loop program, through a named list of passes.

``accel.lower(s, args)`` is this package called as a function: the package stays importable
(``from accel.lower import ir``) while the name users type from the classic tutorials works.
"""

import sys
import types

from accel.lower import intrin  # noqa: F401 - declares env.gemm
from accel.lower.pipeline import lower as _lower


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return _lower(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
