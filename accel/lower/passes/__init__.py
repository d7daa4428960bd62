"""Lowering passes, one module each; the pipeline lists them in order (accel.lower.pipeline)."""
