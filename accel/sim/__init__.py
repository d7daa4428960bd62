"""The behavioral simulator of the accelerator (being built)."""
