"""Command-line subcommands of the simulator (disassembler, replay)."""


def register(subparsers) -> None:
    """Add the simulator's subcommands to the ``accel`` parser."""
