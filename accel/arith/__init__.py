"""Integer arithmetic on expressions, shared by the schedule and lowering layers (as TVM keeps
``tvm.arith`` under both): affine forms, constant bounds, proofs and simplification."""

from accel.arith.simplify import (
    INF,
    Affine,
    Ranges,
    affine,
    const_bounds,
    from_affine,
    prove,
    simplify,
    with_ranges,
)

__all__ = [
    "INF",
    "Affine",
    "Ranges",
    "affine",
    "const_bounds",
    "from_affine",
    "prove",
    "simplify",
    "with_ranges",
]
